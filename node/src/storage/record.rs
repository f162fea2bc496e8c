//! The record framing shared by every storage file: `[len: u32 LE][crc32: u32 LE][payload]`.
//!
//! The checksum covers the four length bytes and the payload, so a flipped bit in either is
//! caught. A file is a sequence of records; [`scan`] walks one and tells a torn tail (the last
//! write was cut short by a crash) from corruption (a bad record with data after it).

/// Bytes of a record's header (length and checksum).
pub const HEADER_BYTES: usize = 8;

/// The largest payload a record may carry. A length field above it is corruption, not a torn
/// write: no writer produces such a record.
pub const MAX_PAYLOAD_BYTES: usize = 1 << 30;

/// Appends one record carrying `payload` to `out`.
///
/// # Panics
/// If `payload` is longer than [`MAX_PAYLOAD_BYTES`] (the storage checks sizes before framing).
pub fn encode(payload: &[u8], out: &mut Vec<u8>) {
    assert!(
        payload.len() <= MAX_PAYLOAD_BYTES,
        "record payload too large"
    );
    let len = u32::try_from(payload.len()).expect("MAX_PAYLOAD_BYTES fits in u32");
    let len_bytes = len.to_le_bytes();
    out.extend_from_slice(&len_bytes);
    out.extend_from_slice(&checksum(&len_bytes, payload).to_le_bytes());
    out.extend_from_slice(payload);
}

fn checksum(len_bytes: &[u8; 4], payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(len_bytes);
    hasher.update(payload);
    hasher.finalize()
}

/// One intact record found by [`scan`].
#[derive(Debug, PartialEq, Eq)]
pub struct Record<'a> {
    /// Byte offset of the record's header in the file.
    pub offset: u64,
    /// The payload.
    pub payload: &'a [u8],
}

/// What [`scan`] found: the intact records, and where the torn tail starts if there is one.
#[derive(Debug, PartialEq, Eq)]
pub struct Scan<'a> {
    /// Every intact record, in file order.
    pub records: Vec<Record<'a>>,
    /// Offset of the first byte after the last intact record, when bytes follow it that do not
    /// form a record and can only be the remains of an interrupted final write.
    pub torn_at: Option<u64>,
}

/// A record that is damaged where a crash cannot have damaged it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Corruption {
    /// Offset of the damaged record's header.
    pub offset: u64,
    /// What is wrong with it.
    pub reason: String,
}

/// Walks the records of `bytes`.
///
/// A crash can only damage the end of an append-only file: what its last, unsynced write left.
/// These count as a torn tail, cut from the first bad record on: a record that runs past the end
/// of the file, a tail of zero bytes, and a record with a bad checksum that looks torn (see
/// [`is_torn`]: it ends the file, or zeros follow it, or part of it reads as a zeroed sector —
/// file systems extend a file before its data lands, and write pages back in any order). Anything else — a bad checksum with data after it, a length above
/// [`MAX_PAYLOAD_BYTES`] — is corruption.
pub fn scan(bytes: &[u8]) -> Result<Scan<'_>, Corruption> {
    let mut records = Vec::new();
    let mut at = 0usize;
    while at < bytes.len() {
        let offset = at as u64;
        let rest = &bytes[at..];
        if rest.iter().all(|&b| b == 0) {
            return Ok(Scan {
                records,
                torn_at: Some(offset),
            });
        }
        if rest.len() < HEADER_BYTES {
            return Ok(Scan {
                records,
                torn_at: Some(offset),
            });
        }
        let len_bytes: [u8; 4] = rest[0..4].try_into().expect("slice of four bytes");
        let stored_crc = u32::from_le_bytes(rest[4..8].try_into().expect("slice of four bytes"));
        let len = u32::from_le_bytes(len_bytes) as usize;
        if len > MAX_PAYLOAD_BYTES {
            return Err(Corruption {
                offset,
                reason: format!("record length {len} exceeds the limit {MAX_PAYLOAD_BYTES}"),
            });
        }
        let end = HEADER_BYTES + len;
        if rest.len() < end {
            return Ok(Scan {
                records,
                torn_at: Some(offset),
            });
        }
        let payload = &rest[HEADER_BYTES..end];
        if checksum(&len_bytes, payload) != stored_crc {
            if is_torn(bytes, at, at + end) {
                return Ok(Scan {
                    records,
                    torn_at: Some(offset),
                });
            }
            return Err(Corruption {
                offset,
                reason: "checksum mismatch".to_string(),
            });
        }
        records.push(Record { offset, payload });
        at += end;
    }
    Ok(Scan {
        records,
        torn_at: None,
    })
}

/// The sector size a torn write is judged by: a page the file system never wrote back reads as
/// zeros, and pages are whole sectors.
pub const SECTOR_BYTES: usize = 512;

/// Whether the bad record at `bytes[start..end]` looks like the remains of an interrupted
/// write rather than damage to written data. A write starts at a record boundary (every sync
/// ends at one), and a page of it that never landed reads as zeros, so:
/// * it ends exactly at the end of the file (the write stopped in it);
/// * it ends in zeros and only zeros follow (the file system extended the file and the data
///   never landed);
/// * its header is all zeros (no writer produces that header);
/// * it reads as zeros from its start to the end of that sector (the page holding the previous
///   sync point was not written again), or one whole aligned sector of it reads as zeros (a
///   page in the middle of the write never landed, while a later one did).
fn is_torn(bytes: &[u8], start: usize, end: usize) -> bool {
    let zero = |range: std::ops::Range<usize>| bytes[range].iter().all(|&b| b == 0);
    if end == bytes.len() || (bytes[end - 1] == 0 && zero(end..bytes.len())) {
        return true;
    }
    if zero(start..start + HEADER_BYTES) {
        return true;
    }
    let mut sector = (start / SECTOR_BYTES + 1) * SECTOR_BYTES;
    if zero(start..sector.min(bytes.len())) {
        return true;
    }
    while sector < end {
        if zero(sector..(sector + SECTOR_BYTES).min(bytes.len())) {
            return true;
        }
        sector += SECTOR_BYTES;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_of(payloads: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for p in payloads {
            encode(p, &mut out);
        }
        out
    }

    #[test]
    fn intact_records_scan_back() {
        let bytes = file_of(&[b"one", b"", b"three"]);
        let scan = scan(&bytes).unwrap();
        assert_eq!(scan.torn_at, None);
        let payloads: Vec<&[u8]> = scan.records.iter().map(|r| r.payload).collect();
        assert_eq!(payloads, vec![&b"one"[..], b"", b"three"]);
        assert_eq!(scan.records[1].offset, 11);
    }

    #[test]
    fn every_cut_of_the_last_record_is_a_torn_tail() {
        let bytes = file_of(&[b"first", b"second record"]);
        let second_at = (HEADER_BYTES + 5) as u64;
        for cut in second_at as usize + 1..bytes.len() {
            let scan = scan(&bytes[..cut]).unwrap();
            assert_eq!(scan.records.len(), 1, "cut at {cut}");
            assert_eq!(scan.torn_at, Some(second_at), "cut at {cut}");
        }
    }

    #[test]
    fn bad_checksum_in_last_record_is_torn_but_in_the_middle_is_corrupt() {
        let mut bytes = file_of(&[b"first", b"second"]);
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        assert_eq!(scan(&bytes).unwrap().torn_at, Some(13));

        let mut bytes = file_of(&[b"first", b"second"]);
        bytes[HEADER_BYTES] ^= 0x01;
        assert_eq!(
            scan(&bytes),
            Err(Corruption {
                offset: 0,
                reason: "checksum mismatch".to_string()
            })
        );
    }

    #[test]
    fn a_record_cut_short_then_zero_filled_is_torn() {
        let whole = file_of(&[b"first", b"second record", b"third"]);
        let second_at = HEADER_BYTES + 5;
        for cut in second_at + 1..whole.len() {
            let mut bytes = whole[..cut].to_vec();
            bytes.resize(whole.len() + 7, 0);
            let scan = scan(&bytes).unwrap();
            let intact = if cut >= second_at + HEADER_BYTES + 13 {
                2
            } else {
                1
            };
            assert_eq!(scan.records.len(), intact, "cut at {cut}");
            assert!(scan.torn_at.is_some(), "cut at {cut}");
        }
        // A damaged record with real data after it is still corruption.
        let mut bytes = whole.clone();
        bytes[second_at + HEADER_BYTES] ^= 0x01;
        bytes.extend_from_slice(&[0; 16]);
        assert_eq!(scan(&bytes).unwrap_err().offset, second_at as u64);
    }

    #[test]
    fn a_zeroed_sector_in_a_record_followed_by_data_is_torn_but_a_few_zeros_are_not() {
        let big = vec![7u8; 3 * SECTOR_BYTES];
        let whole = file_of(&[b"first", &big, b"third"]);
        let second_at = HEADER_BYTES + 5;
        // A page of the write that never landed: one whole aligned sector inside the record.
        let mut holed = whole.clone();
        holed[SECTOR_BYTES..2 * SECTOR_BYTES].fill(0);
        let scan_result = scan(&holed).unwrap();
        assert_eq!(scan_result.records.len(), 1);
        assert_eq!(scan_result.torn_at, Some(second_at as u64));
        // A hole from the record's start (its header zero) is torn too.
        let mut holed = whole.clone();
        holed[second_at..SECTOR_BYTES].fill(0);
        assert_eq!(scan(&holed).unwrap().torn_at, Some(second_at as u64));
        // The page holding the previous sync point was not written again: zeros from the
        // record's start to the sector's end, however few (found by the madsim tests: 7 bytes).
        let pad = vec![1u8; SECTOR_BYTES - HEADER_BYTES - 7];
        let whole = file_of(&[&pad, b"next record", b"more"]);
        let mut holed = whole.clone();
        holed[SECTOR_BYTES - 7..SECTOR_BYTES].fill(0);
        assert_eq!(
            scan(&holed).unwrap().torn_at,
            Some((SECTOR_BYTES - 7) as u64)
        );
        // A few zero bytes in a damaged record, with data after it, are corruption.
        let whole = file_of(&[b"first", &big, b"third"]);
        let mut damaged = whole.clone();
        damaged[SECTOR_BYTES..SECTOR_BYTES + 3].fill(0);
        assert_eq!(scan(&damaged).unwrap_err().offset, second_at as u64);
    }

    #[test]
    fn zero_tail_is_torn_and_huge_length_is_corrupt() {
        let mut bytes = file_of(&[b"first"]);
        bytes.extend_from_slice(&[0; 64]);
        let scan_result = scan(&bytes).unwrap();
        assert_eq!(scan_result.records.len(), 1);
        assert_eq!(scan_result.torn_at, Some(13));

        let mut bytes = file_of(&[b"first"]);
        bytes.extend_from_slice(&u32::MAX.to_le_bytes());
        bytes.extend_from_slice(&[1; 12]);
        assert_eq!(scan(&bytes).unwrap_err().offset, 13);
    }
}
