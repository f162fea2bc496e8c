//! The driver: one task that owns a [`raft::Node`], its [`Storage`], its [`Transport`] and the
//! service's state machine, and turns inputs into executed outputs.
//!
//! # What the task does
//!
//! It waits for the next input — a tick of a `tokio` interval, a message from a peer, or a
//! request from a [`Handle`] — then also takes every input already waiting (up to
//! `batch_inputs_max`), steps the node on each in order, and executes the collected outputs:
//!
//! 1. every `Persist` output, in order, staged into the storage;
//! 2. one [`Storage::sync`] (fsync): from here on all of them are durable;
//! 3. every other output, in order: `Send` to the transport, `Apply` and `Restore` to the
//!    state machine (answering the clients whose proposals were applied).
//!
//! This honours the persistence contract for the whole batch: no message, and no answer to a
//! client, leaves the process before every `Persist` output of its own step (and of every earlier
//! step) is on disk. Batching only delays sends and applies; it never moves one ahead of a
//! persist it follows, so one fsync covers many steps (group commit).
//!
//! When the node's persisted Raft state passes `compact_threshold_bytes`, the driver asks the
//! state machine for a snapshot and steps `Input::Compact`, which persists the snapshot and
//! rewrites the log file without the entries it covers.
//!
//! Storage and transport errors are fatal: the task stops (crash-stop), it never carries on with
//! a disk it cannot trust. The storage does blocking file I/O on the task; run the node on a
//! multi-threaded runtime so the transport keeps moving during an fsync.

use crate::storage::disk::{Disk, OsDisk};
use crate::storage::{RecoveryReport, Storage, StorageError, StorageStats};
use crate::transport::{Inbound, Transport, TransportConfig};
use raft::{
    Accepted, Applied, Applier, ApplyError, Index, Input, Node, NodeId, Output, Rejected,
    RestoreError, Role, StateMachine, Term,
};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

/// A batch whose flush and compaction take longer than this is logged: the node answers
/// nothing meanwhile, and at the election timeout its followers stop waiting for it.
const SLOW_BATCH: Duration = Duration::from_millis(100);

/// Everything a node needs to start.
#[derive(Debug)]
pub struct NodeOptions {
    /// The core's configuration. Give every incarnation of a node a different `seed`.
    pub raft: raft::Config,
    /// Real time per `Input::Tick`.
    pub tick: Duration,
    /// Where the node keeps its durable state (created if missing).
    pub data_dir: PathBuf,
    /// The file system `data_dir` is on: the real one ([`OsDisk`]) unless a test simulates
    /// one ([`crate::storage::disk::SimDisk`]).
    pub disk: Box<dyn Disk>,
    /// The listener for peer connections.
    pub listener: TcpListener,
    /// The peers' addresses (this node's own entry, if present, is ignored).
    pub peers: BTreeMap<NodeId, SocketAddr>,
    /// Transport tuning.
    pub transport: TransportConfig,
    /// Snapshot the state machine when the persisted Raft state (hard state and log entries)
    /// reaches this many bytes; `None` never compacts.
    pub compact_threshold_bytes: Option<usize>,
    /// Inputs stepped before one flush (one fsync).
    pub batch_inputs_max: usize,
    /// Requests from handles waiting for the driver.
    pub request_capacity: usize,
}

impl NodeOptions {
    /// Options with the defaults: a 10 ms tick, a 4 MiB compaction threshold, batches of 256.
    #[must_use]
    pub fn new(
        raft: raft::Config,
        data_dir: PathBuf,
        listener: TcpListener,
        peers: BTreeMap<NodeId, SocketAddr>,
    ) -> NodeOptions {
        NodeOptions {
            raft,
            tick: Duration::from_millis(10),
            data_dir,
            disk: Box::new(OsDisk::new()),
            listener,
            peers,
            transport: TransportConfig::default(),
            compact_threshold_bytes: Some(4 << 20),
            batch_inputs_max: 256,
            request_capacity: 4096,
        }
    }
}

/// A node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The data directory could not be opened or is corrupt.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The durable state does not fit the config.
    #[error("cannot resume from the durable state: {0}")]
    Restore(#[from] RestoreError),
    /// The state machine refused the durable snapshot.
    #[error("the state machine cannot restore the durable snapshot: {0}")]
    Snapshot(#[from] ApplyError),
    /// The transport could not start.
    #[error("transport: {0}")]
    Transport(#[from] std::io::Error),
}

/// Why the driver stopped on its own.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// A write failed or was refused: the node stops rather than run on an untrusted disk.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The state machine was handed something that would move it wrongly.
    #[error(transparent)]
    Apply(#[from] ApplyError),
    /// The transport's inbound channel closed.
    #[error("the transport stopped")]
    TransportStopped,
    /// The driver task panicked (a bug) or was cancelled.
    #[error("the driver task failed: {0}")]
    TaskFailed(String),
}

/// Why a proposal has no result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProposeError {
    /// This node is not the leader; try `leader_hint`.
    #[error("not the leader (leader hint: {leader_hint:?})")]
    NotLeader {
        /// The leader this node last heard from.
        leader_hint: Option<NodeId>,
    },
    /// The node lost leadership (or its entry was replaced, or covered by a snapshot) before the
    /// entry was applied here: the command may or may not have been committed.
    #[error("outcome unknown: leadership changed before the command was applied")]
    Unknown,
    /// The core refused the proposal for another reason.
    #[error(transparent)]
    Rejected(Rejected),
    /// The node has stopped.
    #[error("the node has stopped")]
    Stopped,
}

/// A snapshot of what the node believes, published after every batch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Status {
    /// The node's id.
    pub id: NodeId,
    /// Its role.
    pub role: Option<Role>,
    /// Its term.
    pub term: Term,
    /// The leader it knows of.
    pub leader: Option<NodeId>,
    /// Its commit index.
    pub commit_index: Index,
    /// The last index applied to the state machine.
    pub last_applied: Index,
    /// The last index of its log.
    pub last_index: Index,
    /// The index its snapshot covers.
    pub snapshot_index: Index,
    /// Storage counters.
    pub storage: StorageStats,
    /// Messages the transport dropped because a peer's queue was full.
    pub messages_dropped: u64,
    /// Messages handed to the transport.
    pub messages_sent: u64,
}

type Reply<T> = oneshot::Sender<Result<T, ProposeError>>;

enum Request<S: StateMachine> {
    Propose {
        command: S::Command,
        reply: Reply<S::Output>,
    },
    Read(Box<dyn FnOnce(&S) + Send>),
    Compact(oneshot::Sender<Result<Index, Rejected>>),
}

/// A cloneable way to talk to a running node.
pub struct Handle<S: StateMachine> {
    requests: mpsc::Sender<Request<S>>,
    status: watch::Receiver<Status>,
}

impl<S: StateMachine> Clone for Handle<S> {
    fn clone(&self) -> Self {
        Handle {
            requests: self.requests.clone(),
            status: self.status.clone(),
        }
    }
}

impl<S> Handle<S>
where
    S: StateMachine + Send + 'static,
    S::Command: Send + 'static,
    S::Output: Send + 'static,
{
    /// Proposes `command` and waits until this node applies it; returns the state machine's
    /// output. Fails at once on a follower with the leader hint.
    pub async fn propose(&self, command: S::Command) -> Result<S::Output, ProposeError> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(Request::Propose { command, reply })
            .await
            .map_err(|_| ProposeError::Stopped)?;
        answer.await.map_err(|_| ProposeError::Stopped)?
    }

    /// Runs `f` on the state machine as this node has applied it (not a linearizable read).
    pub async fn read<R, F>(&self, f: F) -> Result<R, ProposeError>
    where
        R: Send + 'static,
        F: FnOnce(&S) -> R + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let run = Box::new(move |state: &S| {
            let _ = reply.send(f(state));
        });
        self.requests
            .send(Request::Read(run))
            .await
            .map_err(|_| ProposeError::Stopped)?;
        answer.await.map_err(|_| ProposeError::Stopped)
    }

    /// Snapshots the state machine now and compacts the log up to what is applied; returns the
    /// snapshot's index.
    pub async fn compact(&self) -> Result<Index, ProposeError> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send(Request::Compact(reply))
            .await
            .map_err(|_| ProposeError::Stopped)?;
        answer
            .await
            .map_err(|_| ProposeError::Stopped)?
            .map_err(ProposeError::Rejected)
    }

    /// The latest published status.
    #[must_use]
    pub fn status(&self) -> Status {
        *self.status.borrow()
    }

    /// A receiver that sees every published status (to wait for a condition).
    #[must_use]
    pub fn watch_status(&self) -> watch::Receiver<Status> {
        self.status.clone()
    }
}

/// A started node: its handle, and the driver task.
pub struct RunningNode<S: StateMachine> {
    handle: Handle<S>,
    local_addr: SocketAddr,
    recovery: RecoveryReport,
    task: JoinHandle<Result<(), DriverError>>,
    stop: oneshot::Sender<()>,
}

impl<S> RunningNode<S>
where
    S: StateMachine + Send + 'static,
    S::Command: Send + 'static,
    S::Output: Send + 'static,
{
    /// Opens the data directory, restores the node and the state machine from it, starts the
    /// transport and spawns the driver task. `service` must be in its initial state.
    pub async fn start(options: NodeOptions, service: S) -> Result<RunningNode<S>, StartError> {
        let data_dir = options.data_dir.clone();
        let (storage, recovery) = Storage::open_on(options.disk, &data_dir)?;
        tracing::info!(dir = %data_dir.display(), ?recovery, "storage opened");
        let durable = storage.durable().clone();
        let applier = Applier::restored(service, durable.log.snapshot())?;
        let node = Node::restore(options.raft, durable)?;
        tracing::info!(
            id = %node.id(),
            term = %node.term(),
            last_index = %node.log().last_index(),
            snapshot_index = %node.log().snapshot_index(),
            "restored"
        );
        let (transport, inbound) = Transport::start(
            node.id(),
            options.listener,
            &options.peers,
            options.transport,
        )?;
        let local_addr = transport.local_addr();
        let (requests_tx, requests) = mpsc::channel(options.request_capacity.max(1));
        let (status_tx, status) = watch::channel(Status::default());
        let (stop, stopped) = oneshot::channel();
        let driver = Driver {
            node,
            storage,
            transport,
            applier,
            inbound,
            requests,
            pending: BTreeMap::new(),
            outputs: Vec::new(),
            status: status_tx,
            tick: options.tick,
            compact_threshold_bytes: options.compact_threshold_bytes,
            batch_inputs_max: options.batch_inputs_max.max(1),
            messages_sent: 0,
        };
        let task = tokio::spawn(driver.run(stopped));
        Ok(RunningNode {
            handle: Handle {
                requests: requests_tx,
                status,
            },
            local_addr,
            recovery,
            task,
            stop,
        })
    }

    /// A handle to the node.
    #[must_use]
    pub fn handle(&self) -> Handle<S> {
        self.handle.clone()
    }

    /// The address the node's peer listener is bound to.
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// What the storage recovered at startup.
    #[must_use]
    pub fn recovery(&self) -> &RecoveryReport {
        &self.recovery
    }

    /// Stops the driver (after the batch in progress) and closes the transport; returns why the
    /// driver had stopped if it stopped on its own first.
    pub async fn shutdown(self) -> Result<(), DriverError> {
        let _ = self.stop.send(());
        match self.task.await {
            Ok(result) => result,
            Err(join) => Err(DriverError::TaskFailed(join.to_string())),
        }
    }

    /// Waits until the driver stops on its own (a fatal error).
    pub async fn wait(&mut self) -> Result<(), DriverError> {
        match (&mut self.task).await {
            Ok(result) => result,
            Err(join) => Err(DriverError::TaskFailed(join.to_string())),
        }
    }
}

struct Driver<S: StateMachine> {
    node: Node,
    storage: Storage,
    transport: Transport,
    applier: Applier<S>,
    inbound: mpsc::Receiver<Inbound>,
    requests: mpsc::Receiver<Request<S>>,
    /// Proposals accepted by this node as leader, by log index, waiting to be applied.
    pending: BTreeMap<Index, (Term, Reply<S::Output>)>,
    /// Outputs of the steps of the current batch, in order.
    outputs: Vec<Output>,
    status: watch::Sender<Status>,
    tick: Duration,
    compact_threshold_bytes: Option<usize>,
    batch_inputs_max: usize,
    messages_sent: u64,
}

/// One thing the driver takes from its sources.
enum Event<S: StateMachine> {
    Tick,
    Inbound(Inbound),
    Request(Request<S>),
}

impl<S: StateMachine> Driver<S> {
    async fn run(mut self, mut stop: oneshot::Receiver<()>) -> Result<(), DriverError> {
        let mut ticker = tokio::time::interval(self.tick);
        // Ticks are the node's clock: after a stall, carry on rather than fire a burst of
        // elections' worth of ticks at once.
        ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
        self.publish_status();
        let result = loop {
            // `biased`: a fixed polling order draws no randomness, so a run on madsim replays
            // exactly from its seed. The batch below drains both queues, so neither starves.
            let event = tokio::select! {
                biased;
                _ = &mut stop => break Ok(()),
                _ = ticker.tick() => Event::Tick,
                inbound = self.inbound.recv() => match inbound {
                    Some(inbound) => Event::Inbound(inbound),
                    None => break Err(DriverError::TransportStopped),
                },
                request = self.requests.recv() => match request {
                    Some(request) => Event::Request(request),
                    // Every handle is gone: nobody can talk to the node any more.
                    None => break Ok(()),
                },
            };
            if let Err(error) = self.handle_batch(event) {
                break Err(error);
            }
        };
        if let Err(error) = &result {
            tracing::error!(id = %self.node.id(), %error, "driver stopped");
        }
        self.fail_pending(ProposeError::Stopped);
        // Wait for the transport's tasks to end, so the listener's port is free on return.
        self.transport.shutdown().await;
        result
    }

    /// Steps `first` and every input already waiting (up to the batch limit), then executes the
    /// outputs, then compacts if the log has grown past the threshold.
    fn handle_batch(&mut self, first: Event<S>) -> Result<(), DriverError> {
        self.handle_event(first);
        let mut taken = 1;
        while taken < self.batch_inputs_max {
            let mut progressed = false;
            if let Ok(inbound) = self.inbound.try_recv() {
                self.handle_event(Event::Inbound(inbound));
                taken += 1;
                progressed = true;
            }
            if let Ok(request) = self.requests.try_recv() {
                self.handle_event(Event::Request(request));
                taken += 1;
                progressed = true;
            }
            if !progressed {
                break;
            }
        }
        let started = tokio::time::Instant::now();
        self.flush()?;
        let flushed = started.elapsed();
        self.maybe_compact()?;
        let elapsed = started.elapsed();
        if elapsed > SLOW_BATCH {
            tracing::warn!(
                id = %self.node.id(),
                flush_ms = flushed.as_millis(),
                compact_ms = (elapsed - flushed).as_millis(),
                inputs = taken,
                "slow batch: the driver was busy this long, with nothing else moving"
            );
        }
        self.fail_stale_pending();
        self.publish_status();
        Ok(())
    }

    fn handle_event(&mut self, event: Event<S>) {
        match event {
            Event::Tick => {
                let _ = self.node.step_into(Input::Tick, &mut self.outputs);
            }
            Event::Inbound(Inbound { from, message }) => {
                let _ = self
                    .node
                    .step_into(Input::Receive { from, message }, &mut self.outputs);
            }
            Event::Request(Request::Propose { command, reply }) => {
                let bytes = raft::encode_command(&command);
                match self
                    .node
                    .step_into(Input::Propose(bytes.into()), &mut self.outputs)
                {
                    Ok(Accepted::Proposed { index, term }) => {
                        if let Some((_, older)) = self.pending.insert(index, (term, reply)) {
                            // An older proposal at this index was overwritten by a new leader.
                            let _ = older.send(Err(ProposeError::Unknown));
                        }
                    }
                    Ok(Accepted::Done) => {
                        debug_assert!(false, "a proposal is either proposed or rejected");
                        let _ = reply.send(Err(ProposeError::Unknown));
                    }
                    Err(Rejected::NotLeader { leader_hint }) => {
                        let _ = reply.send(Err(ProposeError::NotLeader { leader_hint }));
                    }
                    Err(rejected) => {
                        let _ = reply.send(Err(ProposeError::Rejected(rejected)));
                    }
                }
            }
            Event::Request(Request::Read(run)) => run(self.applier.state()),
            Event::Request(Request::Compact(reply)) => {
                let input = self.applier.compact_input();
                let index = self.applier.last_applied();
                let result = self.node.step_into(input, &mut self.outputs);
                let _ = reply.send(result.map(|_| index));
            }
        }
    }

    /// Executes the batch's outputs: persists first, one fsync, then the rest in order.
    fn flush(&mut self) -> Result<(), DriverError> {
        if self.outputs.is_empty() {
            return Ok(());
        }
        for output in &self.outputs {
            if let Output::Persist(op) = output {
                self.storage.apply(op)?;
            }
        }
        self.storage.sync()?;
        let mut outputs = std::mem::take(&mut self.outputs);
        for output in outputs.drain(..) {
            match output {
                Output::Persist(_) => {}
                Output::Send { to, message } => {
                    self.messages_sent += 1;
                    if let Err(error) = self.transport.send(to, message) {
                        tracing::warn!(%to, %error, "message not sent");
                    }
                }
                Output::Apply(_) | Output::Restore(_) => {
                    for applied in self.applier.handle(&output)? {
                        self.answer(applied);
                    }
                }
            }
        }
        // Keep the buffer's capacity for the next batch.
        self.outputs = outputs;
        Ok(())
    }

    fn answer(&mut self, applied: Applied<S::Output>) {
        match applied {
            Applied::Command {
                index,
                term,
                output,
            } => {
                if let Some((proposed_term, reply)) = self.pending.remove(&index) {
                    let _ = reply.send(if proposed_term == term {
                        Ok(output)
                    } else {
                        Err(ProposeError::Unknown)
                    });
                }
            }
            Applied::Undecodable { index, error } => {
                tracing::warn!(%index, %error, "skipped a committed entry that does not decode");
                if let Some((_, reply)) = self.pending.remove(&index) {
                    let _ = reply.send(Err(ProposeError::Unknown));
                }
            }
            Applied::Restored { index } => {
                let rest = self.pending.split_off(&index.next());
                for (_, (_, reply)) in std::mem::replace(&mut self.pending, rest) {
                    let _ = reply.send(Err(ProposeError::Unknown));
                }
            }
        }
    }

    /// Proposals of an earlier term, or on a node that is no longer leader, may never be applied
    /// here with their term: answer them now rather than let clients hang.
    fn fail_stale_pending(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let (role, term) = (self.node.role(), self.node.term());
        if role != Role::Leader {
            self.fail_pending(ProposeError::Unknown);
            return;
        }
        let stale: Vec<Index> = self
            .pending
            .iter()
            .filter(|(_, (t, _))| *t != term)
            .map(|(i, _)| *i)
            .collect();
        for index in stale {
            if let Some((_, reply)) = self.pending.remove(&index) {
                let _ = reply.send(Err(ProposeError::Unknown));
            }
        }
    }

    fn fail_pending(&mut self, error: ProposeError) {
        for (_, (_, reply)) in std::mem::take(&mut self.pending) {
            let _ = reply.send(Err(error));
        }
    }

    /// Snapshots the state machine when the persisted Raft state has passed the threshold.
    fn maybe_compact(&mut self) -> Result<(), DriverError> {
        let Some(threshold) = self.compact_threshold_bytes else {
            return Ok(());
        };
        if self.node.raft_state_size_bytes() < threshold
            || self.applier.last_applied() <= self.node.log().snapshot_index()
        {
            return Ok(());
        }
        let index = self.applier.last_applied();
        let input = self.applier.compact_input();
        match self.node.step_into(input, &mut self.outputs) {
            Ok(_) => tracing::debug!(%index, "compacted the log"),
            Err(rejected) => tracing::warn!(%rejected, "compaction refused"),
        }
        self.flush()
    }

    fn publish_status(&self) {
        let log = self.node.log();
        let before = *self.status.borrow();
        if before.role != Some(self.node.role()) || before.leader != self.node.leader() {
            tracing::info!(
                id = %self.node.id(),
                role = ?self.node.role(),
                term = %self.node.term(),
                leader = ?self.node.leader().map(|l| l.0),
                "role or leader changed"
            );
        }
        let status = Status {
            id: self.node.id(),
            role: Some(self.node.role()),
            term: self.node.term(),
            leader: self.node.leader(),
            commit_index: self.node.commit_index(),
            last_applied: self.applier.last_applied(),
            last_index: log.last_index(),
            snapshot_index: log.snapshot_index(),
            storage: self.storage.stats(),
            messages_dropped: self
                .transport
                .stats()
                .dropped_queue_full
                .load(std::sync::atomic::Ordering::Relaxed),
            messages_sent: self.messages_sent,
        };
        self.status.send_if_modified(|current| {
            let changed = *current != status;
            *current = status;
            changed
        });
    }
}
