//! Serving a replicated state machine to clients over TCP, and the client's side of the wire.
//!
//! The protocol is framed like the peer transport ([`crate::transport::frame`]): a client sends
//! [`ClientRequest`]s, each carrying an id of its choosing and a postcard-encoded command of the
//! state machine; the server answers each with a [`ClientResponse`] carrying the same id. A
//! connection may have several requests in flight; responses can come back in any order.
//!
//! The server hands every command to its node as a proposal: a follower answers
//! [`ClientReply::NotLeader`] at once, with the leader's id and client address when it knows
//! them; a leader answers with the state machine's output once the command is applied, or
//! [`ClientReply::Unknown`] if it lost leadership first, or [`ClientReply::Timeout`] after
//! `request_timeout` (a leader cut off in a minority never hangs a client).

use crate::runtime::{Handle, ProposeError};
use crate::tasks::TaskGroup;
use crate::transport::frame::{self, FrameError};
use raft::{NodeId, StateMachine};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};

/// A client's request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientRequest {
    /// Chosen by the client; echoed in the response.
    pub id: u64,
    /// The postcard-encoded command.
    pub command: Vec<u8>,
}

/// The server's answer to one request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientResponse {
    /// The request's id.
    pub id: u64,
    /// What happened.
    pub reply: ClientReply,
}

/// What happened to a request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientReply {
    /// The command was committed and applied; this is the postcard-encoded output.
    Applied(Vec<u8>),
    /// This server is not the leader.
    NotLeader {
        /// The leader it knows of.
        leader: Option<NodeId>,
        /// That leader's client address, when configured.
        leader_addr: Option<String>,
    },
    /// Leadership changed before the command was applied here: it may or may not take effect.
    Unknown,
    /// The command was not applied within the server's timeout: it may or may not take effect.
    Timeout,
    /// The command does not decode.
    BadRequest(String),
    /// The node has stopped.
    Stopped,
}

/// How a server treats its clients.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// How long a proposal may wait to be applied before the client gets `Timeout`.
    pub request_timeout: Duration,
    /// Largest request frame accepted.
    pub max_frame_bytes: usize,
    /// Requests in flight on one connection (more wait for a free slot).
    pub inflight_per_connection_max: usize,
    /// Every node's client address, to tell a client where the leader is.
    pub client_addrs: BTreeMap<NodeId, String>,
}

impl Default for ServeOptions {
    fn default() -> ServeOptions {
        ServeOptions {
            request_timeout: Duration::from_secs(1),
            max_frame_bytes: 16 << 20,
            inflight_per_connection_max: 1024,
            client_addrs: BTreeMap::new(),
        }
    }
}

/// Accepts clients on `listener` forever, one task per connection.
pub async fn serve<S>(listener: TcpListener, handle: Handle<S>, options: ServeOptions)
where
    S: StateMachine + Send + 'static,
    S::Command: Send + 'static,
    S::Output: Serialize + Send + 'static,
{
    let options = Arc::new(options);
    let mut connections = TaskGroup::default();
    loop {
        match listener.accept().await {
            Ok((stream, remote)) => {
                let handle = handle.clone();
                let options = options.clone();
                let _ = connections.spawn(async move {
                    if let Err(error) = connection(stream, handle, options).await {
                        tracing::debug!(%remote, %error, "client connection closed");
                    }
                });
            }
            Err(error) => {
                tracing::warn!(%error, "accepting a client failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

async fn connection<S>(
    stream: TcpStream,
    handle: Handle<S>,
    options: Arc<ServeOptions>,
) -> Result<(), FrameError>
where
    S: StateMachine + Send + 'static,
    S::Command: Send + 'static,
    S::Output: Serialize + Send + 'static,
{
    stream.set_nodelay(true)?;
    let (read, mut write) = tokio::io::split(stream);
    let mut read = BufReader::new(read);
    let inflight = Arc::new(Semaphore::new(options.inflight_per_connection_max.max(1)));
    let (responses_tx, mut responses) = mpsc::channel::<ClientResponse>(1024);
    let max = options.max_frame_bytes;
    let writer = tokio::spawn(async move {
        let mut bytes = Vec::new();
        while let Some(response) = responses.recv().await {
            bytes.clear();
            frame::encode(&response, usize::MAX, &mut bytes)?;
            // Write every response already waiting in the same syscall.
            while let Ok(more) = responses.try_recv() {
                frame::encode(&more, usize::MAX, &mut bytes)?;
            }
            write.write_all(&bytes).await?;
            // A no-op on a real socket; madsim's simulated stream sends on flush.
            write.flush().await?;
        }
        Ok::<(), FrameError>(())
    });
    let mut buf = Vec::new();
    let result = loop {
        let request: ClientRequest = match frame::read(&mut read, max, &mut buf).await {
            Ok(request) => request,
            Err(FrameError::Closed) => break Ok(()),
            Err(error) => break Err(error),
        };
        let Ok(permit) = inflight.clone().acquire_owned().await else {
            break Ok(());
        };
        let handle = handle.clone();
        let options = options.clone();
        let responses = responses_tx.clone();
        tokio::spawn(async move {
            let reply = execute(&handle, &options, &request.command).await;
            let _ = responses
                .send(ClientResponse {
                    id: request.id,
                    reply,
                })
                .await;
            drop(permit);
        });
    };
    drop(responses_tx);
    if result.is_ok() {
        // Let the answers to requests already taken go out before closing.
        let _ = writer.await;
    } else {
        writer.abort();
    }
    result
}

async fn execute<S>(handle: &Handle<S>, options: &ServeOptions, command: &[u8]) -> ClientReply
where
    S: StateMachine + Send + 'static,
    S::Command: Send + 'static,
    S::Output: Serialize + Send + 'static,
{
    let command: S::Command = match postcard::from_bytes(command) {
        Ok(command) => command,
        Err(error) => return ClientReply::BadRequest(error.to_string()),
    };
    match tokio::time::timeout(options.request_timeout, handle.propose(command)).await {
        Err(_) => ClientReply::Timeout,
        Ok(Ok(output)) => ClientReply::Applied(raft::encode_command(&output)),
        Ok(Err(ProposeError::NotLeader { leader_hint })) => ClientReply::NotLeader {
            leader: leader_hint,
            leader_addr: leader_hint.and_then(|id| options.client_addrs.get(&id).cloned()),
        },
        Ok(Err(ProposeError::Unknown | ProposeError::Rejected(_))) => ClientReply::Unknown,
        Ok(Err(ProposeError::Stopped)) => ClientReply::Stopped,
    }
}

/// A client's connection to one server, one request at a time.
#[derive(Debug)]
pub struct ClientConnection {
    stream: BufReader<TcpStream>,
    next_id: u64,
    buf: Vec<u8>,
    max_frame_bytes: usize,
}

impl ClientConnection {
    /// Connects to a server's client address.
    pub async fn connect(addr: SocketAddr) -> std::io::Result<ClientConnection> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(ClientConnection {
            stream: BufReader::new(stream),
            next_id: 1,
            buf: Vec::new(),
            max_frame_bytes: 64 << 20,
        })
    }

    /// Sends one encoded command and waits for its reply.
    pub async fn call(&mut self, command: Vec<u8>) -> Result<ClientReply, FrameError> {
        let id = self.next_id;
        self.next_id += 1;
        let request = ClientRequest { id, command };
        frame::write(self.stream.get_mut(), &request, self.max_frame_bytes).await?;
        loop {
            let response: ClientResponse =
                frame::read(&mut self.stream, self.max_frame_bytes, &mut self.buf).await?;
            // Answers to earlier requests (abandoned by a caller's timeout) are skipped.
            if response.id == id {
                return Ok(response.reply);
            }
        }
    }
}
