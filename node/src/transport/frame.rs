//! Length-prefixed postcard frames: `[len: u32 LE][postcard payload]`, used for peer messages
//! and client requests alike.

use serde::Serialize;
use serde::de::DeserializeOwned;
use std::io;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Bytes of the length prefix.
pub const PREFIX_BYTES: usize = 4;

/// The default limit on one frame's payload (a whole snapshot travels in one frame).
pub const DEFAULT_MAX_FRAME_BYTES: usize = 64 << 20;

/// A frame could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The frame's payload is larger than the limit; the connection cannot be trusted further.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// The payload length (announced by the prefix, or encoded).
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The payload is not a valid encoding of the expected type.
    #[error("malformed frame: {0}")]
    Malformed(#[from] postcard::Error),
    /// The peer closed the connection between frames.
    #[error("connection closed")]
    Closed,
    /// The socket failed (including a close in the middle of a frame).
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
}

/// Appends `value` as one frame to `out`; checks the limit before anything is appended.
pub fn encode<T: Serialize>(value: &T, max: usize, out: &mut Vec<u8>) -> Result<(), FrameError> {
    let payload = postcard::to_allocvec(value)?;
    if payload.len() > max || u32::try_from(payload.len()).is_err() {
        return Err(FrameError::TooLarge {
            len: payload.len(),
            max,
        });
    }
    let len = u32::try_from(payload.len()).expect("checked above");
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&payload);
    Ok(())
}

/// Writes `value` as one frame.
pub async fn write<W, T>(writer: &mut W, value: &T, max: usize) -> Result<(), FrameError>
where
    W: AsyncWrite + Unpin,
    T: Serialize,
{
    let mut bytes = Vec::new();
    encode(value, max, &mut bytes)?;
    writer.write_all(&bytes).await?;
    writer.flush().await?;
    Ok(())
}

/// Reads one frame and decodes it; `buf` is scratch space reused across calls. A prefix above
/// `max` is rejected before any payload is read or buffer allocated.
pub async fn read<R, T>(reader: &mut R, max: usize, buf: &mut Vec<u8>) -> Result<T, FrameError>
where
    R: AsyncRead + Unpin,
    T: DeserializeOwned,
{
    let mut prefix = [0u8; PREFIX_BYTES];
    let mut filled = 0;
    while filled < PREFIX_BYTES {
        let n = reader.read(&mut prefix[filled..]).await?;
        if n == 0 {
            return Err(if filled == 0 {
                FrameError::Closed
            } else {
                FrameError::Io(io::ErrorKind::UnexpectedEof.into())
            });
        }
        filled += n;
    }
    let len = u32::from_le_bytes(prefix) as usize;
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    buf.clear();
    buf.resize(len, 0);
    reader.read_exact(buf).await?;
    Ok(postcard::from_bytes(buf)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_round_trip_and_limits_are_typed_errors() {
        let mut bytes = Vec::new();
        encode(&(7u32, "seven".to_string()), 100, &mut bytes).unwrap();
        encode(&(8u32, "eight".to_string()), 100, &mut bytes).unwrap();
        let mut reader = &bytes[..];
        let mut buf = Vec::new();
        let first: (u32, String) = read(&mut reader, 100, &mut buf).await.unwrap();
        let second: (u32, String) = read(&mut reader, 100, &mut buf).await.unwrap();
        assert_eq!((first.0, second.1.as_str()), (7, "eight"));
        assert!(matches!(
            read::<_, (u32, String)>(&mut reader, 100, &mut buf).await,
            Err(FrameError::Closed)
        ));

        let mut out = Vec::new();
        assert!(matches!(
            encode(&vec![0u8; 50], 10, &mut out),
            Err(FrameError::TooLarge { len: 51, max: 10 })
        ));
        assert!(out.is_empty());

        let huge = (1u32 << 31).to_le_bytes();
        assert!(matches!(
            read::<_, u8>(&mut &huge[..], 1 << 20, &mut buf).await,
            Err(FrameError::TooLarge { .. })
        ));
        let truncated = [5u8, 0, 0, 0, 1];
        assert!(matches!(
            read::<_, u8>(&mut &truncated[..], 100, &mut buf).await,
            Err(FrameError::Io(_))
        ));
        let garbage = [2u8, 0, 0, 0, 0xff, 0xff];
        assert!(matches!(
            read::<_, (u32, String)>(&mut &garbage[..], 100, &mut buf).await,
            Err(FrameError::Malformed(_))
        ));
    }
}
