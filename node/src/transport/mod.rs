//! Peer-to-peer messaging over TCP: length-prefixed postcard [`frame`]s, one outgoing connection
//! per peer, inbound connections handled one per peer.
//!
//! * **Outgoing.** Each peer has a task that connects, introduces this node with a
//!   [`Wire::Hello`], then writes queued messages. A failed connection is retried with capped
//!   exponential backoff (`backoff_min` doubling up to `backoff_max`; a connection that lived at
//!   least `backoff_max` resets it), so a dead peer costs one connect attempt per `backoff_max`.
//!   A peer that connects to us is up: its hello cuts our backoff towards it short, so a
//!   restarted node hears from the leader at once rather than time out and disrupt the term.
//! * **Queues.** Each peer's send queue holds at most `queue_capacity` messages. When it is full
//!   the **oldest** message is dropped: Raft tolerates loss, a newer message carries newer state
//!   (term, commit index, entries the leader will resend anyway), and a peer that comes back
//!   should see the freshest traffic first.
//! * **Inbound.** The listener accepts connections; the first frame must be a `Hello` from a
//!   known peer. A newer connection from the same peer replaces the older one. Messages go to
//!   one bounded channel (a full channel pushes back on the sockets).
//! * **Errors.** A frame above `max_frame_bytes` is a [`frame::FrameError::TooLarge`]: refused
//!   at the sender ([`Transport::send`] returns [`SendError::TooLarge`]) and at the receiver (the connection is
//!   closed). A malformed frame closes its connection with a logged error. Nothing panics on
//!   input from the network.

pub mod frame;

use crate::tasks::TaskGroup;
use raft::{Message, NodeId};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::AbortHandle;

/// What travels on a peer connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Wire {
    /// The first frame on every connection: who is calling.
    Hello {
        /// The sender's id.
        from: NodeId,
    },
    /// A Raft message.
    Raft(Message),
}

/// Tuning of the transport.
#[derive(Clone, Debug)]
pub struct TransportConfig {
    /// Largest frame payload accepted or sent.
    pub max_frame_bytes: usize,
    /// Messages queued per peer before the oldest is dropped.
    pub queue_capacity: usize,
    /// Messages written to a socket in one batch.
    pub write_batch_max: usize,
    /// First reconnect delay.
    pub backoff_min: Duration,
    /// Largest reconnect delay.
    pub backoff_max: Duration,
    /// Capacity of the inbound channel to the driver.
    pub inbound_capacity: usize,
    /// How long a new inbound connection may take to say hello.
    pub hello_timeout: Duration,
}

impl Default for TransportConfig {
    fn default() -> TransportConfig {
        TransportConfig {
            max_frame_bytes: frame::DEFAULT_MAX_FRAME_BYTES,
            queue_capacity: 1024,
            write_batch_max: 256,
            backoff_min: Duration::from_millis(10),
            // Below the default election timeout (300 ms at a 10 ms tick), so a peer that comes
            // back hears from us before it times out.
            backoff_max: Duration::from_millis(200),
            inbound_capacity: 4096,
            hello_timeout: Duration::from_secs(5),
        }
    }
}

/// A message received from a peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inbound {
    /// The sender (as it introduced itself).
    pub from: NodeId,
    /// The message.
    pub message: Message,
}

/// Why a message was not queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The destination is not one of the configured peers.
    #[error("unknown peer {0}")]
    UnknownPeer(NodeId),
    /// The encoded message exceeds the frame limit; it would be refused by the receiver.
    #[error("message of {len} bytes exceeds the frame limit of {max} bytes")]
    TooLarge {
        /// The message's encoded size (with its wire tag).
        len: usize,
        /// The limit.
        max: usize,
    },
}

/// Counters of the transport's work.
#[derive(Debug, Default)]
pub struct TransportStats {
    /// Messages written to sockets.
    pub sent: AtomicU64,
    /// Messages received and handed to the driver.
    pub received: AtomicU64,
    /// Messages dropped because a peer's queue was full.
    pub dropped_queue_full: AtomicU64,
    /// Messages dropped because they exceeded the frame limit.
    pub dropped_too_large: AtomicU64,
    /// Outgoing connections established.
    pub connects: AtomicU64,
    /// Failed connection attempts.
    pub connect_failures: AtomicU64,
    /// Inbound connections closed for a protocol error (malformed or oversized frame, bad hello).
    pub inbound_errors: AtomicU64,
}

/// A bounded queue of messages for one peer that drops the oldest when full.
#[derive(Debug)]
pub struct PeerQueue {
    messages: Mutex<VecDeque<Message>>,
    capacity: usize,
    ready: Notify,
}

impl PeerQueue {
    /// An empty queue holding at most `capacity` messages (at least one).
    #[must_use]
    pub fn new(capacity: usize) -> PeerQueue {
        PeerQueue {
            messages: Mutex::new(VecDeque::new()),
            capacity: capacity.max(1),
            ready: Notify::new(),
        }
    }

    /// Queues `message`; returns true when the oldest message was dropped to make room.
    pub fn push(&self, message: Message) -> bool {
        let dropped = {
            let mut messages = self.lock();
            let full = messages.len() >= self.capacity;
            if full {
                messages.pop_front();
            }
            messages.push_back(message);
            full
        };
        self.ready.notify_one();
        dropped
    }

    /// Takes up to `max` messages, oldest first.
    pub fn take(&self, max: usize) -> Vec<Message> {
        let mut messages = self.lock();
        let n = messages.len().min(max);
        messages.drain(..n).collect()
    }

    /// Number of queued messages.
    #[must_use]
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when nothing is queued.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waits until a message may be available.
    async fn wait(&self) {
        if !self.is_empty() {
            return;
        }
        self.ready.notified().await;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Message>> {
        // A panic while holding this lock cannot leave the queue inconsistent: every critical
        // section is a single VecDeque operation.
        self.messages
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The running transport. Dropping it stops every task and closes every connection.
#[derive(Debug)]
pub struct Transport {
    id: NodeId,
    local_addr: SocketAddr,
    queues: BTreeMap<NodeId, Arc<PeerQueue>>,
    max_frame_bytes: usize,
    stats: Arc<TransportStats>,
    tasks: TaskGroup,
}

impl Transport {
    /// Starts the transport for node `id`: accepts on `listener` and connects to `peers` (which
    /// must not include `id`). Returns the transport and the channel of inbound messages.
    pub fn start(
        id: NodeId,
        listener: TcpListener,
        peers: &BTreeMap<NodeId, SocketAddr>,
        config: TransportConfig,
    ) -> std::io::Result<(Transport, mpsc::Receiver<Inbound>)> {
        let local_addr = listener.local_addr()?;
        let stats = Arc::new(TransportStats::default());
        let (inbound_tx, inbound_rx) = mpsc::channel(config.inbound_capacity.max(1));
        let config = Arc::new(config);
        let mut tasks = TaskGroup::default();
        let mut queues = BTreeMap::new();
        let mut peer_up = BTreeMap::new();
        for (&peer, &addr) in peers.iter().filter(|(peer, _)| **peer != id) {
            let queue = Arc::new(PeerQueue::new(config.queue_capacity));
            let up = Arc::new(Notify::new());
            queues.insert(peer, queue.clone());
            peer_up.insert(peer, up.clone());
            let link = Link {
                id,
                peer,
                addr,
                queue,
                peer_up: up,
            };
            tasks.spawn(outgoing(link, config.clone(), stats.clone()));
        }
        let max_frame_bytes = config.max_frame_bytes;
        tasks.spawn(accept(listener, peer_up, inbound_tx, config, stats.clone()));
        Ok((
            Transport {
                id,
                local_addr,
                queues,
                max_frame_bytes,
                stats,
                tasks,
            },
            inbound_rx,
        ))
    }

    /// This node's id.
    #[must_use]
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The address the listener is bound to.
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Queues `message` for `to` without waiting (the oldest queued message is dropped if the
    /// queue is full).
    pub fn send(&self, to: NodeId, message: Message) -> Result<(), SendError> {
        let queue = self.queues.get(&to).ok_or(SendError::UnknownPeer(to))?;
        // One byte of `Wire` variant tag precedes the message.
        let len = message.encoded_len() + 1;
        if len > self.max_frame_bytes {
            self.stats.dropped_too_large.fetch_add(1, Ordering::Relaxed);
            return Err(SendError::TooLarge {
                len,
                max: self.max_frame_bytes,
            });
        }
        if queue.push(message) {
            self.stats
                .dropped_queue_full
                .fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// The transport's counters.
    #[must_use]
    pub fn stats(&self) -> &TransportStats {
        &self.stats
    }

    /// Stops every task and closes every connection.
    pub async fn shutdown(&mut self) {
        self.tasks.shutdown().await;
    }
}

/// One outgoing link: who we are, the peer, its queue, and the signal that it connected to us.
struct Link {
    id: NodeId,
    peer: NodeId,
    addr: SocketAddr,
    queue: Arc<PeerQueue>,
    peer_up: Arc<Notify>,
}

/// Keeps one connection to `peer` alive and writes its queue into it.
async fn outgoing(link: Link, config: Arc<TransportConfig>, stats: Arc<TransportStats>) {
    let Link {
        id,
        peer,
        addr,
        queue,
        peer_up,
    } = link;
    let mut backoff = config.backoff_min;
    loop {
        match TcpStream::connect(addr).await {
            Ok(stream) => {
                stats.connects.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(%peer, %addr, "connected");
                let started = Instant::now();
                let error = write_queue(id, stream, &queue, &config, &stats).await;
                tracing::debug!(%peer, %addr, %error, "connection lost");
                if started.elapsed() >= config.backoff_max {
                    backoff = config.backoff_min;
                }
            }
            Err(error) => {
                stats.connect_failures.fetch_add(1, Ordering::Relaxed);
                tracing::trace!(%peer, %addr, %error, "connect failed");
            }
        }
        tokio::select! {
            biased;
            () = tokio::time::sleep(backoff) => {}
            () = peer_up.notified() => tracing::debug!(%peer, "peer is back; reconnecting now"),
        }
        backoff = (backoff * 2).min(config.backoff_max);
    }
}

/// Writes the hello, then queued messages in batches, until the connection fails.
async fn write_queue(
    id: NodeId,
    mut stream: TcpStream,
    queue: &PeerQueue,
    config: &TransportConfig,
    stats: &TransportStats,
) -> frame::FrameError {
    // Latency matters more than packet count: a heartbeat must not wait for Nagle.
    if let Err(error) = stream.set_nodelay(true) {
        return error.into();
    }
    let mut bytes = Vec::new();
    if let Err(error) = frame::encode(
        &Wire::Hello { from: id },
        config.max_frame_bytes,
        &mut bytes,
    ) {
        return error;
    }
    loop {
        let mut batch_len = 0u64;
        for message in queue.take(config.write_batch_max) {
            match frame::encode(&Wire::Raft(message), config.max_frame_bytes, &mut bytes) {
                Ok(()) => batch_len += 1,
                Err(error) => {
                    stats.dropped_too_large.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(%error, "dropped an outgoing message");
                }
            }
        }
        if !bytes.is_empty() {
            // A no-op on a real socket; madsim's simulated stream sends on flush.
            if let Err(error) = async {
                stream.write_all(&bytes).await?;
                stream.flush().await
            }
            .await
            {
                return error.into();
            }
            stats.sent.fetch_add(batch_len, Ordering::Relaxed);
            bytes.clear();
        }
        queue.wait().await;
    }
}

/// Accepts inbound connections, one task each; a newer connection from a peer replaces the
/// older one.
async fn accept(
    listener: TcpListener,
    peer_up: BTreeMap<NodeId, Arc<Notify>>,
    inbound: mpsc::Sender<Inbound>,
    config: Arc<TransportConfig>,
    stats: Arc<TransportStats>,
) {
    let current: Arc<Mutex<BTreeMap<NodeId, AbortHandle>>> = Arc::default();
    // Dropped with this task, which aborts every connection.
    let mut connections = TaskGroup::default();
    loop {
        let (stream, remote) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(config.backoff_min).await;
                continue;
            }
        };
        let task = InboundConnection {
            peer_up: peer_up.clone(),
            inbound: inbound.clone(),
            config: config.clone(),
            stats: stats.clone(),
            current: current.clone(),
        };
        // The task learns its own abort handle so a newer connection from its peer can end it.
        let (handle_tx, handle_rx) = oneshot::channel();
        let handle = connections.spawn(async move { task.run(stream, remote, handle_rx).await });
        let _ = handle_tx.send(handle);
    }
}

struct InboundConnection {
    /// The known peers, and the signal that wakes our outgoing link to each.
    peer_up: BTreeMap<NodeId, Arc<Notify>>,
    inbound: mpsc::Sender<Inbound>,
    config: Arc<TransportConfig>,
    stats: Arc<TransportStats>,
    current: Arc<Mutex<BTreeMap<NodeId, AbortHandle>>>,
}

impl InboundConnection {
    async fn run(self, stream: TcpStream, remote: SocketAddr, me: oneshot::Receiver<AbortHandle>) {
        let mut reader = BufReader::new(stream);
        let mut buf = Vec::new();
        let max = self.config.max_frame_bytes;
        let hello = tokio::time::timeout(
            self.config.hello_timeout,
            frame::read(&mut reader, max, &mut buf),
        )
        .await;
        let from = match hello {
            Ok(Ok(Wire::Hello { from })) if self.peer_up.contains_key(&from) => from,
            Ok(Ok(Wire::Hello { from })) => {
                return self.reject(remote, "hello from unknown peer", from);
            }
            Ok(Ok(Wire::Raft(_))) => return self.fail(remote, "message before hello"),
            Ok(Err(frame::FrameError::Closed)) => return,
            Ok(Err(error)) => return self.fail(remote, &error.to_string()),
            Err(_) => return self.fail(remote, "no hello in time"),
        };
        if let Ok(me) = me.await {
            self.replace_older_connection(from, me);
        }
        if let Some(up) = self.peer_up.get(&from) {
            // Only a link waiting out its backoff right now needs waking; no permit is stored,
            // so a link that is connected does not later skip a backoff for a stale reason.
            up.notify_waiters();
        }
        loop {
            match frame::read(&mut reader, max, &mut buf).await {
                Ok(Wire::Raft(message)) => {
                    if self.inbound.send(Inbound { from, message }).await.is_err() {
                        return; // the driver is gone
                    }
                    self.stats.received.fetch_add(1, Ordering::Relaxed);
                }
                Ok(Wire::Hello { .. }) => return self.fail(remote, "second hello"),
                Err(frame::FrameError::Closed) => return,
                Err(error) => return self.fail(remote, &error.to_string()),
            }
        }
    }

    /// Registers this task as `from`'s connection, aborting the one it replaces (a peer
    /// reconnects only after losing its old connection, which may linger half-open here).
    fn replace_older_connection(&self, from: NodeId, me: AbortHandle) {
        let mut current = self
            .current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(older) = current.insert(from, me) {
            older.abort();
        }
    }

    fn reject(&self, remote: SocketAddr, why: &str, from: NodeId) {
        self.stats.inbound_errors.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(%remote, %from, "closing inbound connection: {why}");
    }

    fn fail(&self, remote: SocketAddr, why: &str) {
        self.stats.inbound_errors.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(%remote, "closing inbound connection: {why}");
    }
}

#[cfg(test)]
mod tests;
