//! The simulated cluster: nodes, their durable stores and applications, the network, the event
//! queue, the checkers and the trace, advanced one event at a time.
//!
//! Every node step goes through `Cluster::step`, which performs the step's outputs strictly in
//! order (`Persist` → the node's store, `Send` → the network, `Apply`/`Restore` → the tester's
//! application and its checks), hands each output and then the node to the checkers, and writes
//! one trace record. Snapshots the application asks for (MIT's `applierSnap`) are stepped right
//! after, each as its own event.

use crate::checkers::{Checkers, Violation};
use crate::clock::{NodeClock, SimTime};
use crate::engine::{Event, EventQueue, Incarnation, RpcRequest, TaskId};
use crate::fault::MidStepCrash;
use crate::network::{
    Counters, InFlight, LostReason, Network, NetworkProfile, Reorder, Route, slot,
};
use crate::rng::{Purpose, SimRng, derive_seed};
use crate::run::{Failure, FailureKind, RunOptions};
use crate::scenario::Setup;
use crate::service::{ClientId, RpcError, RpcStep, SERVER_TIMEOUT_US, UNREACHABLE_DELAY_US_MAX};
use crate::storage::Store;
use crate::tester::apps::{Apps, Compaction};
use crate::trace::{EventKind, MessageKind, NodeView, Trace, TraceRecord};
use raft::{
    Accepted, Config, DurableState, HardState, Index, Input, Log, Message, Node, NodeId, Output,
    Rejected, Role, Term,
};
use std::collections::BTreeMap;
use std::task::Waker;

/// The most events a queue may hold at once (a runaway sender fails the run instead of eating
/// memory).
pub const PENDING_EVENTS_MAX: usize = 4_000_000;

/// The most message bytes (postcard sizes) in flight at once, by default
/// ([`RunOptions::in_flight_bytes_max`]). A message storm (a core that resends or answers without
/// end) fails the run as a liveness failure instead of eating the machine's memory; correct runs
/// stay far below it.
pub const IN_FLIGHT_BYTES_MAX: u64 = 256 << 20;

/// What `Cluster::next_event` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Handled a node event (or skipped a stale one).
    Handled,
    /// Fired a task's timer: the executor has a task to poll.
    Woke,
    /// Nothing is scheduled.
    Idle,
    /// The run has failed (a violation, the time limit or the event budget).
    Stop,
}

/// Per-node bookkeeping that outlives a node's incarnations.
#[derive(Clone, Copy, Debug)]
struct NodeMeta {
    incarnation: Incarnation,
    alive: bool,
    /// How many times the node was started (0 before its first start).
    starts: u32,
    clock: NodeClock,
    /// While set and in the future: the process is paused (no ticks, no deliveries) until then.
    paused_until: Option<SimTime>,
    /// A crash armed for the node's next persisting step, after this many of its outputs.
    crash_after_outputs: Option<u32>,
}

/// The random streams of a run, one per purpose.
#[derive(Clone, Debug)]
pub(crate) struct Rngs {
    pub network: SimRng,
    pub timers: SimRng,
    pub tester: SimRng,
    pub workload: SimRng,
    pub faults: SimRng,
}

/// Everything a step's outputs touch (split from the nodes so both can be borrowed at once).
struct Env {
    setup: Setup,
    root_seed: u64,
    ids: Vec<NodeId>,
    meta: Vec<NodeMeta>,
    stores: Vec<Store>,
    network: Network,
    apps: Apps,
    queue: EventQueue,
    checkers: Option<Checkers>,
    trace: Trace,
    rngs: Rngs,
    now: SimTime,
    events: u64,
    max_events: u64,
    /// While a request is being handled: its sender and the sender's incarnation, so replies
    /// go to that incarnation only (labrpc: no reply reaches a restarted caller).
    reply_route: Option<(NodeId, Incarnation)>,
    compactions: Vec<Compaction>,
    failure: Option<Failure>,
    /// Per client: whether its link to each server is enabled.
    client_links: Vec<Vec<bool>>,
    /// Per node: client requests its current incarnation proposed and has not answered.
    pending: Vec<Vec<PendingRpc>>,
    /// Client calls not yet collected by their caller.
    rpcs: BTreeMap<u64, RpcSlot>,
    next_rpc: u64,
    /// The run's last mid-step crash, with what it cut short.
    last_mid_step_crash: Option<MidStepCrash>,
    /// Postcard bytes of the messages scheduled for delivery and not yet delivered or lost.
    in_flight_bytes: u64,
    /// The cap on `in_flight_bytes` ([`RunOptions::in_flight_bytes_max`]).
    in_flight_bytes_max: u64,
}

/// A client request a leader proposed and has not answered yet.
#[derive(Clone, Copy, Debug)]
struct PendingRpc {
    rpc: u64,
    client: ClientId,
    index: u64,
    term: Term,
}

/// A client call: its result once it is in, and the task waiting for it.
#[derive(Debug, Default)]
struct RpcSlot {
    result: Option<Result<Vec<u8>, RpcError>>,
    waker: Option<Waker>,
}

/// The simulated system. The scenario's [`crate::Tester`] is its public face.
pub struct Cluster {
    nodes: Vec<Option<Node>>,
    /// Reused output buffer (no allocation per step).
    outputs: Vec<Output>,
    env: Env,
}

impl Cluster {
    /// A cluster for `setup` under root seed `seed`, every node started and connected.
    pub(crate) fn new(setup: &Setup, seed: u64, options: &RunOptions) -> Cluster {
        let count = usize::try_from(setup.nodes).unwrap_or(0);
        let ids: Vec<NodeId> = (0..setup.nodes).map(NodeId).collect();
        let mut timers = SimRng::new(seed, Purpose::Timers);
        let meta = (0..count)
            .map(|_| NodeMeta {
                incarnation: Incarnation(0),
                alive: false,
                starts: 0,
                clock: NodeClock::draw(&mut timers, setup.tick_us, setup.tick_skew_per_mille_max),
                paused_until: None,
                crash_after_outputs: None,
            })
            .collect();
        let env = Env {
            setup: *setup,
            root_seed: seed,
            meta,
            stores: vec![Store::new(); count],
            network: Network::new(count, setup.network_profile(setup.reliable)),
            apps: Apps::new(setup.app, count),
            queue: EventQueue::new(PENDING_EVENTS_MAX),
            checkers: options.checkers.then(|| Checkers::new(&ids)),
            trace: Trace::new(options.record_trace),
            rngs: Rngs {
                network: SimRng::new(seed, Purpose::Network),
                timers,
                tester: SimRng::new(seed, Purpose::Tester),
                workload: SimRng::new(seed, Purpose::Workload),
                faults: SimRng::new(seed, Purpose::Faults),
            },
            ids,
            now: SimTime::ZERO,
            events: 0,
            max_events: options.max_events,
            reply_route: None,
            compactions: Vec::new(),
            failure: None,
            client_links: Vec::new(),
            pending: vec![Vec::new(); count],
            rpcs: BTreeMap::new(),
            next_rpc: 0,
            last_mid_step_crash: None,
            in_flight_bytes: 0,
            in_flight_bytes_max: options.in_flight_bytes_max,
        };
        let mut cluster = Cluster {
            nodes: vec![None; count],
            outputs: Vec::with_capacity(64),
            env,
        };
        if count == 0 {
            cluster.env.fail(
                FailureKind::Check,
                "a cluster needs at least one node".into(),
            );
        }
        for id in cluster.env.ids.clone() {
            cluster.boot(id);
        }
        cluster
    }

    // ----- Queries -----

    /// Current virtual time.
    #[must_use]
    pub fn now(&self) -> SimTime {
        self.env.now
    }

    /// Events handled so far.
    #[must_use]
    pub fn events(&self) -> u64 {
        self.env.events
    }

    /// The setup the cluster was built from.
    #[must_use]
    pub fn setup(&self) -> &Setup {
        &self.env.setup
    }

    /// Node ids, in order.
    #[must_use]
    pub fn ids(&self) -> &[NodeId] {
        &self.env.ids
    }

    /// The live incarnation of `node`, if it is up.
    #[must_use]
    pub fn node(&self, node: NodeId) -> Option<&Node> {
        self.nodes.get(slot(node))?.as_ref()
    }

    /// `node`'s durable store (kept across crashes).
    #[must_use]
    pub fn store(&self, node: NodeId) -> Option<&Store> {
        self.env.stores.get(slot(node))
    }

    /// Every store, by node id.
    #[must_use]
    pub fn stores(&self) -> &[Store] {
        &self.env.stores
    }

    /// The run's root seed.
    #[must_use]
    pub fn seed(&self) -> u64 {
        self.env.root_seed
    }

    /// Whether `node` is paused right now (see [`crate::Tester::pause`]).
    #[must_use]
    pub fn is_paused(&self, node: NodeId) -> bool {
        self.env.paused_until(node).is_some()
    }

    /// The run's last mid-step crash and what it cut short, if there was one.
    #[must_use]
    pub fn last_mid_step_crash(&self) -> Option<&MidStepCrash> {
        self.env.last_mid_step_crash.as_ref()
    }

    /// The network (connectivity, profile, counters).
    #[must_use]
    pub fn network(&self) -> &Network {
        &self.env.network
    }

    /// The network's counters.
    #[must_use]
    pub fn counters(&self) -> &Counters {
        self.env.network.counters()
    }

    /// The tester's applications.
    #[must_use]
    pub fn apps(&self) -> &Apps {
        &self.env.apps
    }

    /// The first failure of the run, if any.
    #[must_use]
    pub fn failure(&self) -> Option<&Failure> {
        self.env.failure.as_ref()
    }

    /// The random streams (for the tester's draws).
    pub(crate) fn rngs(&mut self) -> &mut Rngs {
        &mut self.env.rngs
    }

    /// Records the first failure of the run, stamped with the current time and event.
    pub(crate) fn fail(&mut self, kind: FailureKind, message: String) {
        self.env.fail(kind, message);
    }

    // ----- The event loop -----

    /// Pops and handles the next event, enforcing the run's time limit and event budget.
    pub(crate) fn next_event(&mut self) -> Next {
        if self.env.failure.is_some() {
            return Next::Stop;
        }
        let Some(at) = self.env.queue.peek_time() else {
            return Next::Idle;
        };
        if at.as_us() > self.env.setup.time_limit_us {
            self.env.now = SimTime(self.env.setup.time_limit_us);
            let limit_s = self.env.setup.time_limit_us / 1_000_000;
            let message = format!("test took longer than {limit_s} seconds of virtual time");
            self.env.fail(FailureKind::Liveness, message);
            return Next::Stop;
        }
        if self.env.events >= self.env.max_events {
            let message = format!("event budget of {} events exhausted", self.env.max_events);
            self.env.fail(FailureKind::Liveness, message);
            return Next::Stop;
        }
        let Some(scheduled) = self.env.queue.pop() else {
            return Next::Idle;
        };
        self.env.now = scheduled.at;
        match scheduled.event {
            Event::Tick { node, incarnation } => self.tick(node, incarnation),
            Event::Deliver(flight) => self.deliver(flight),
            Event::RpcRequest(request) => self.serve(request),
            Event::RpcDone {
                rpc,
                client,
                server,
                result,
            } => self.env.complete_rpc(rpc, client, server, result),
            Event::RpcExpire { server, rpc } => {
                self.env
                    .answer_pending(server, |p| p.rpc == rpc, |_| Err(RpcError::Timeout));
            }
            Event::Wake { task, waker } => {
                let event = self.env.begin_event();
                self.env
                    .record(event, None, EventKind::Wake { task: task.0 }, 0, None);
                waker.wake();
                return Next::Woke;
            }
        }
        Next::Handled
    }

    /// Schedules `waker` to be woken at `at` (a sleeping task's timer).
    pub(crate) fn schedule_wake(&mut self, at: SimTime, task: TaskId, waker: Waker) {
        self.env.schedule(at, Event::Wake { task, waker });
    }

    fn tick(&mut self, node: NodeId, incarnation: Incarnation) {
        let Some(meta) = self.env.meta.get(slot(node)) else {
            return;
        };
        if !meta.alive || meta.incarnation != incarnation {
            return; // A tick of a crashed incarnation: stale, not an event.
        }
        if let Some(until) = self.env.paused_until(node) {
            // A paused process misses its timers; the first one fires late, on resuming.
            self.env.schedule(until, Event::Tick { node, incarnation });
            return;
        }
        let next = self.env.now.plus_us(meta.clock.tick_interval_us);
        self.env.schedule(next, Event::Tick { node, incarnation });
        self.step(node, Input::Tick, |_| EventKind::Tick);
    }

    fn deliver(&mut self, flight: InFlight) {
        if let Some(until) = self.env.paused_until(flight.to) {
            // The message waits in the paused process's socket buffer, in arrival order.
            self.env.schedule(until, Event::Deliver(flight));
            return;
        }
        self.env.in_flight_bytes = self.env.in_flight_bytes.saturating_sub(flight.bytes);
        let InFlight {
            from,
            to,
            from_incarnation,
            to_incarnation,
            bytes,
            message,
            ..
        } = flight;
        let kind = MessageKind::of(&message.payload);
        let is_request = message.payload.is_request();
        if let Some(reason) = self
            .env
            .lost_reason(from, from_incarnation, to, to_incarnation)
        {
            self.env.network.on_lost_in_flight();
            let event = self.env.begin_event();
            let what = EventKind::Lost {
                from: from.0,
                message: kind,
                reason,
            };
            self.env.record(event, Some(to), what, 0, None);
            return;
        }
        self.env.network.on_delivered(to, is_request, bytes);
        if is_request {
            self.env.reply_route = Some((from, from_incarnation));
        }
        let term = message.term.0;
        let describe = move |_: &Result<Accepted, Rejected>| EventKind::Deliver {
            from: from.0,
            message: kind,
            term,
        };
        self.step(to, Input::Receive { from, message }, describe);
        self.env.reply_route = None;
    }

    // ----- Stepping nodes -----

    /// Steps `node` with `input`, performs its outputs in order, runs the checkers, records the
    /// event (described by `describe` from the step's result), then runs the compactions the
    /// application asked for. None if the node is down or the run has failed.
    pub(crate) fn step<F>(
        &mut self,
        id: NodeId,
        input: Input,
        describe: F,
    ) -> Option<Result<Accepted, Rejected>>
    where
        F: FnOnce(&Result<Accepted, Rejected>) -> EventKind,
    {
        if self.env.failure.is_some() || self.env.paused_until(id).is_some() {
            return None;
        }
        let node = self.nodes.get_mut(slot(id))?.as_mut()?;
        let event = self.env.begin_event();
        let result = node.step_into(input, &mut self.outputs);
        let count = self.outputs.len();
        if let Some(performed) = self.env.crash_cut(id, &self.outputs) {
            let what = describe(&result);
            self.crash_mid_step(id, event, what, performed);
            return Some(result);
        }
        for output in self.outputs.drain(..) {
            if self.env.failure.is_none() {
                self.env.perform(id, output);
            }
        }
        if self.env.failure.is_none()
            && let Some(checkers) = &mut self.env.checkers
            && let Err(violation) = checkers.after_step(node)
        {
            self.env.violation(violation);
        }
        let view = NodeView::of(node);
        self.env
            .record(event, Some(id), describe(&result), count, Some(view));
        self.after_service_step(id);
        self.run_compactions(id);
        Some(result)
    }

    /// Steps the compactions the application asked for during the last step, in order.
    fn run_compactions(&mut self, id: NodeId) {
        if self.env.compactions.is_empty() {
            return;
        }
        let pending = std::mem::take(&mut self.env.compactions);
        for Compaction { index, snapshot } in pending {
            let describe = move |result: &Result<Accepted, Rejected>| EventKind::Compact {
                index: index.0,
                accepted: result.is_ok(),
            };
            let result = self.step(id, Input::Compact { index, snapshot }, describe);
            if let Some(Err(rejected)) = result {
                let message =
                    format!("{id} refused the application's snapshot at {index}: {rejected}");
                self.env.fail(FailureKind::Safety, message);
            }
        }
    }

    // ----- Crashes and restarts -----

    /// Crashes `id` inside the step just taken (event `event`, described by `what`): its first
    /// `performed` outputs are performed, the rest never happen, and the node is gone.
    fn crash_mid_step(&mut self, id: NodeId, event: u64, what: EventKind, performed: usize) {
        let outputs = std::mem::take(&mut self.outputs);
        let durable_before = self.env.stores[slot(id)].durable().clone();
        for output in outputs.iter().take(performed).cloned() {
            if self.env.failure.is_none() {
                self.env.perform(id, output);
            }
        }
        let count = outputs.len();
        self.env.record(event, Some(id), what, count, None);
        self.env.compactions.clear();
        self.env.last_mid_step_crash = Some(MidStepCrash {
            node: id,
            durable_before,
            outputs,
            performed,
        });
        let kind = EventKind::CrashMidStep {
            performed: u32::try_from(performed).unwrap_or(u32::MAX),
            outputs: u32::try_from(count).unwrap_or(u32::MAX),
        };
        self.crash_recorded_as(id, kind);
    }

    /// Arms a crash of `id` inside its next step that persists something, after
    /// `after_outputs` of that step's outputs (see [`crate::CrashPoint::MidStep`]). Cleared by
    /// any crash. False if the node is down.
    pub(crate) fn arm_crash(&mut self, id: NodeId, after_outputs: u32) -> bool {
        match self.env.meta.get_mut(slot(id)) {
            Some(meta) if meta.alive => {
                meta.crash_after_outputs = Some(after_outputs);
                true
            }
            Some(_) | None => false,
        }
    }

    /// Disarms a crash armed with [`Cluster::arm_crash`].
    pub(crate) fn disarm_crash(&mut self, id: NodeId) {
        if let Some(meta) = self.env.meta.get_mut(slot(id)) {
            meta.crash_after_outputs = None;
        }
    }

    /// Pauses `id`'s process until `until`: it misses its ticks and its messages wait for it
    /// (a stop-the-world pause, a swapped-out VM). False if the node is down.
    pub(crate) fn pause(&mut self, id: NodeId, until: SimTime) -> bool {
        let now = self.env.now;
        let Some(meta) = self.env.meta.get_mut(slot(id)).filter(|m| m.alive) else {
            return false;
        };
        if until <= now {
            return false;
        }
        meta.paused_until = Some(until);
        let event = self.env.begin_event();
        let kind = EventKind::Pause {
            until_us: until.as_us(),
        };
        self.env.record(event, Some(id), kind, 0, None);
        true
    }

    /// Ends a pause early. The node's next tick and the messages that waited still come at the
    /// time the pause was to end (its timers were not reset by the early resume).
    pub(crate) fn resume(&mut self, id: NodeId) {
        let paused = self.env.paused_until(id).is_some();
        if let Some(meta) = self.env.meta.get_mut(slot(id))
            && meta.paused_until.take().is_some()
            && paused
        {
            let event = self.env.begin_event();
            self.env.record(event, Some(id), EventKind::Resume, 0, None);
        }
    }

    /// Skews `id`'s clock: from its next tick on, it ticks every `tick_us * (1000 + per_mille)
    /// / 1000` (per mille clamped to ±500).
    pub(crate) fn set_tick_skew(&mut self, id: NodeId, per_mille: i32) {
        let tick_us = self.env.setup.tick_us;
        let factor = u64::try_from(1000 + per_mille.clamp(-500, 500)).unwrap_or(1000);
        let Some(meta) = self.env.meta.get_mut(slot(id)) else {
            return;
        };
        meta.clock.tick_interval_us = (tick_us.saturating_mul(factor) / 1000).max(1);
        let kind = EventKind::Skew {
            tick_interval_us: meta.clock.tick_interval_us,
        };
        let event = self.env.begin_event();
        self.env.record(event, Some(id), kind, 0, None);
    }

    /// The canary: corrupts `id`'s durable log (the term of its last committed entry and of
    /// every entry after it goes up by one, as a bit flip on disk would do it), then restarts
    /// the node from it. The checkers must report this run as a safety violation; a campaign
    /// whose canary passes cannot find bugs. Returns the corrupted index, or why nothing could
    /// be corrupted (the node is down or paused, or has no committed entry above its snapshot).
    pub(crate) fn canary_corrupt(&mut self, id: NodeId) -> Result<Index, String> {
        let i = slot(id);
        let Some(node) = self.nodes.get(i).and_then(Option::as_ref) else {
            return Err(format!("{id} is down"));
        };
        if self.env.paused_until(id).is_some() {
            return Err(format!("{id} is paused"));
        }
        let index = node.commit_index();
        let durable = self.env.stores[i].durable();
        let log = &durable.log;
        if index <= log.snapshot_index() || index > log.last_index() {
            return Err(format!(
                "{id} has no committed entry above its snapshot in its durable log"
            ));
        }
        let entries = log
            .entries()
            .iter()
            .cloned()
            .map(|mut entry| {
                if entry.index >= index {
                    entry.term = entry.term.next();
                }
                entry
            })
            .collect();
        let corrupted = Log::from_parts(log.snapshot().cloned(), entries)
            .map_err(|error| format!("the corrupted log does not fit together: {error}"))?;
        let term = durable.hard_state.term.max(corrupted.last_term());
        let hard_state = HardState {
            term,
            voted_for: durable
                .hard_state
                .voted_for
                .filter(|_| term == durable.hard_state.term),
        };
        self.env.stores[i].overwrite(DurableState {
            hard_state,
            log: corrupted,
        });
        let event = self.env.begin_event();
        let kind = EventKind::Corrupt { index: index.0 };
        self.env.record(event, Some(id), kind, 0, None);
        self.restart(id);
        Ok(index)
    }

    /// Kills `node`'s current incarnation: its volatile state is gone, its store stays, and
    /// messages to or from it still in flight will be lost. False if it was already down.
    pub(crate) fn crash(&mut self, id: NodeId) -> bool {
        self.crash_recorded_as(id, EventKind::Crash)
    }

    /// [`Cluster::crash`], recorded in the trace as `kind`.
    fn crash_recorded_as(&mut self, id: NodeId, kind: EventKind) -> bool {
        let i = slot(id);
        let Some(node) = self.nodes.get_mut(i) else {
            return false;
        };
        if node.take().is_none() {
            return false;
        }
        let event = self.env.begin_event();
        if let Some(meta) = self.env.meta.get_mut(i) {
            meta.alive = false;
            meta.incarnation.0 += 1;
            meta.paused_until = None;
            meta.crash_after_outputs = None;
        }
        if let Some(checkers) = &mut self.env.checkers {
            checkers.on_crash(id);
        }
        self.env.record(event, Some(id), kind, 0, None);
        // Calls the dead incarnation was handling fail (labrpc: the server was deleted).
        self.env
            .answer_pending(id, |_| true, |_| Err(RpcError::Unreachable));
        true
    }

    /// Starts a new incarnation of `node` from its durable store (crashing the current one
    /// first), with a fresh core seed; the application restarts per its lab's semantics. The
    /// node's connectivity is unchanged. False if the node could not start.
    pub(crate) fn restart(&mut self, id: NodeId) -> bool {
        if self.env.failure.is_some() || slot(id) >= self.nodes.len() {
            return false;
        }
        self.crash(id);
        self.boot(id)
    }

    /// Starts `node` (which must be down) from its store.
    fn boot(&mut self, id: NodeId) -> bool {
        let i = slot(id);
        let Some(meta) = self.env.meta.get(i).copied() else {
            return false;
        };
        // The first boot is part of building the cluster, not an event.
        let event = if meta.starts > 0 {
            self.env.begin_event()
        } else {
            0
        };
        let config = self.env.config_for(id, meta.starts);
        let durable = self.env.stores[i].durable().clone();
        let node = match Node::restore(config, durable) {
            Ok(node) => node,
            Err(error) => {
                let message = format!("{id} cannot start from its durable state: {error}");
                self.env.fail(FailureKind::Safety, message);
                return false;
            }
        };
        if meta.starts > 0 {
            if let Err(message) = self.env.apps.on_restart(i, node.log().snapshot()) {
                self.env.fail(FailureKind::Safety, message);
                return false;
            }
            self.env.network.reset_node_counters(id);
            if let Some(checkers) = &mut self.env.checkers
                && let Err(violation) = checkers.on_restart(&node)
            {
                self.env.violation(violation);
            }
            self.env.record(
                event,
                Some(id),
                EventKind::Restart,
                0,
                Some(NodeView::of(&node)),
            );
        }
        let first_tick = meta
            .clock
            .first_tick(&mut self.env.rngs.timers, self.env.now);
        let tick = Event::Tick {
            node: id,
            incarnation: meta.incarnation,
        };
        self.env.schedule(first_tick, tick);
        self.env.meta[i].alive = true;
        self.env.meta[i].starts += 1;
        self.nodes[i] = Some(node);
        true
    }

    // ----- The network -----

    /// Connects (MIT `connect`, SJTU `enable_node`) or disconnects `node`.
    pub(crate) fn set_connected(&mut self, id: NodeId, connected: bool) {
        let event = self.env.begin_event();
        self.env.network.set_connected(id, connected);
        let kind = if connected {
            EventKind::Connect
        } else {
            EventKind::Disconnect
        };
        self.env.record(event, Some(id), kind, 0, None);
    }

    /// Cuts or restores the one-way link `from → to`.
    pub(crate) fn set_link_cut(&mut self, from: NodeId, to: NodeId, cut: bool) {
        let event = self.env.begin_event();
        self.env.network.set_link_cut(from, to, cut);
        let kind = EventKind::Link { to: to.0, cut };
        self.env.record(event, Some(from), kind, 0, None);
    }

    /// Restores every cut link.
    pub(crate) fn heal_links(&mut self) {
        let event = self.env.begin_event();
        self.env.network.heal_links();
        self.env.record(event, None, EventKind::HealLinks, 0, None);
    }

    /// Sets the network's extra reordering ([`Reorder`]).
    pub(crate) fn set_reorder(&mut self, reorder: Reorder) {
        let event = self.env.begin_event();
        self.env.network.set_reorder(reorder);
        let kind = EventKind::Reorder {
            per_mille: reorder.per_mille,
            delay_us_max: reorder.delay_us_max,
        };
        self.env.record(event, None, kind, 0, None);
    }

    /// Changes the network's fault profile and long-reordering flag.
    pub(crate) fn set_network(&mut self, profile: NetworkProfile, long_reordering: bool) {
        let event = self.env.begin_event();
        self.env.network.set_profile(profile);
        self.env.network.set_long_reordering(long_reordering);
        let reliable = profile.request.drop_per_mille == 0
            && profile.reply.drop_per_mille == 0
            && profile.request.delay_us_max == profile.request.delay_us_min;
        let kind = EventKind::Network {
            reliable,
            long_reordering,
        };
        self.env.record(event, None, kind, 0, None);
    }

    // ----- Clients of a hosted service -----

    /// A new client with enabled links to `servers` (labrpc `makeClient(to)`).
    pub(crate) fn add_client(&mut self, servers: &[NodeId]) -> ClientId {
        let id = ClientId(u32::try_from(self.env.client_links.len()).unwrap_or(u32::MAX));
        let mut links = vec![false; self.env.ids.len()];
        for server in servers {
            if let Some(link) = links.get_mut(slot(*server)) {
                *link = true;
            }
        }
        self.env.client_links.push(links);
        id
    }

    /// Enables or disables `client`'s link to `server`.
    pub(crate) fn set_client_link(&mut self, client: ClientId, server: NodeId, enabled: bool) {
        let links = usize::try_from(client.0)
            .ok()
            .and_then(|c| self.env.client_links.get_mut(c));
        if let Some(link) = links.and_then(|l| l.get_mut(slot(server))) {
            *link = enabled;
        }
    }

    /// Starts a call from `client` to `server` proposing `request`; returns the call's id for
    /// [`Cluster::poll_rpc`].
    pub(crate) fn call(&mut self, client: ClientId, server: NodeId, request: Vec<u8>) -> u64 {
        let env = &mut self.env;
        let rpc = env.next_rpc;
        env.next_rpc += 1;
        env.rpcs.insert(rpc, RpcSlot::default());
        let bytes = request.len() as u64;
        env.network.count_client_request(bytes);
        let incarnation = env.meta.get(slot(server)).map(|m| (m.alive, m.incarnation));
        let reachable =
            env.client_link_up(client, server) && incarnation.is_some_and(|(alive, _)| alive);
        let now = env.now;
        let Some((_, server_incarnation)) = incarnation.filter(|_| reachable) else {
            let delay = env.rngs.network.below(UNREACHABLE_DELAY_US_MAX);
            env.schedule_done(
                now.plus_us(delay),
                rpc,
                client,
                server,
                Err(RpcError::Unreachable),
            );
            return rpc;
        };
        let faults = env.network.profile().request;
        let delay = env
            .rngs
            .network
            .between(faults.delay_us_min, faults.delay_us_max);
        if env.rngs.network.chance_per_mille(faults.drop_per_mille) {
            env.schedule_done(
                now.plus_us(delay),
                rpc,
                client,
                server,
                Err(RpcError::Unreachable),
            );
            return rpc;
        }
        let request = RpcRequest {
            rpc,
            client,
            server,
            server_incarnation,
            request,
        };
        env.schedule(now.plus_us(delay), Event::RpcRequest(request));
        rpc
    }

    /// The result of call `rpc` if it is in (the slot is then freed); otherwise `waker` is woken
    /// when it is.
    pub(crate) fn poll_rpc(
        &mut self,
        rpc: u64,
        waker: &Waker,
    ) -> Option<Result<Vec<u8>, RpcError>> {
        let slot = self.env.rpcs.get_mut(&rpc)?;
        match slot.result.take() {
            Some(result) => {
                self.env.rpcs.remove(&rpc);
                Some(result)
            }
            None => {
                slot.waker = Some(waker.clone());
                None
            }
        }
    }

    /// The caller gave up on call `rpc`: its result, if it comes, is dropped.
    pub(crate) fn forget_rpc(&mut self, rpc: u64) {
        self.env.rpcs.remove(&rpc);
    }

    /// A client request arrives at its server: the server proposes it to its node.
    fn serve(&mut self, request: RpcRequest) {
        let RpcRequest {
            rpc,
            client,
            server,
            server_incarnation,
            request,
        } = request;
        if !self.env.is_current(server, server_incarnation)
            || !self.env.client_link_up(client, server)
        {
            let now = self.env.now;
            self.env
                .schedule_done(now, rpc, client, server, Err(RpcError::Unreachable));
            return;
        }
        self.env.network.on_delivered(server, true, 0);
        let event = self.env.begin_event();
        let what = EventKind::Rpc {
            client: client.0,
            rpc,
            step: RpcStep::Delivered,
        };
        self.env.record(event, Some(server), what, 0, None);
        let describe = |result: &Result<Accepted, Rejected>| EventKind::Propose {
            index: match result {
                Ok(Accepted::Proposed { index, .. }) => Some(index.0),
                Ok(_) | Err(_) => None,
            },
        };
        match self.step(server, Input::Propose(request.into()), describe) {
            Some(Ok(Accepted::Proposed { index, term })) => {
                let pending = PendingRpc {
                    rpc,
                    client,
                    index: index.0,
                    term,
                };
                if let Some(list) = self.env.pending.get_mut(slot(server)) {
                    list.push(pending);
                }
                let at = self.env.now.plus_us(SERVER_TIMEOUT_US);
                self.env.schedule(at, Event::RpcExpire { server, rpc });
            }
            Some(Ok(_) | Err(_)) | None => {
                self.env
                    .answer(server, rpc, client, Err(RpcError::WrongLeader));
            }
        }
    }

    /// After a step of `id`: answer the clients whose entries it applied or whose term it lost,
    /// and snapshot the service when the persisted Raft state reached `max_raft_state`.
    fn after_service_step(&mut self, id: NodeId) {
        let i = slot(id);
        let Some(services) = self.env.apps.services_mut() else {
            return;
        };
        let fresh = services.take_fresh();
        let spec = services.spec();
        let (term, leader) = match self.nodes.get(i).and_then(Option::as_ref) {
            Some(node) => (node.term(), node.role() == Role::Leader),
            None => return,
        };
        if self.env.pending.get(i).is_some_and(|p| !p.is_empty()) {
            for (index, entry_term) in fresh {
                self.env.answer_pending(
                    id,
                    |p| p.index == index,
                    |p| {
                        if p.term == entry_term {
                            Ok(())
                        } else {
                            Err(RpcError::WrongLeader)
                        }
                    },
                );
            }
            self.env.answer_pending(
                id,
                |p| !leader || p.term != term,
                |_| Err(RpcError::WrongLeader),
            );
        }
        if let Some(max) = spec.max_raft_state {
            let size = self
                .env
                .stores
                .get(i)
                .map_or(0, crate::storage::Store::raft_state_size_bytes);
            let snapshot_index = self.nodes[i]
                .as_ref()
                .map_or(0, |n| n.log().snapshot_index().0);
            let services = self.env.apps.services();
            let applied = services.map_or(0, |s| s.last_applied(i));
            if size >= max
                && applied > snapshot_index
                && self.env.compactions.is_empty()
                && let Some(compaction) = services.and_then(|s| s.snapshot_of(i))
            {
                self.env.compactions.push(compaction);
            }
        }
    }

    /// Ends the run's bookkeeping: the trace hash and the kept records.
    pub(crate) fn finish_trace(&mut self) -> (u64, Option<Vec<TraceRecord>>) {
        (self.env.trace.hash(), self.env.trace.take_records())
    }
}

impl Env {
    fn begin_event(&mut self) -> u64 {
        self.events += 1;
        self.events
    }

    fn record(
        &mut self,
        event: u64,
        node: Option<NodeId>,
        kind: EventKind,
        outputs: usize,
        after: Option<NodeView>,
    ) {
        self.trace.push(TraceRecord {
            event,
            at_us: self.now.as_us(),
            node: node.map(|n| n.0),
            kind,
            outputs: u32::try_from(outputs).unwrap_or(u32::MAX),
            after,
        });
    }

    fn fail(&mut self, kind: FailureKind, message: String) {
        if self.failure.is_none() {
            self.failure = Some(Failure {
                kind,
                message,
                at_us: self.now.as_us(),
                event: self.events,
            });
        }
    }

    fn violation(&mut self, violation: Violation) {
        let message = format!("checker {}: {}", violation.checker, violation.message);
        self.fail(FailureKind::Safety, message);
    }

    fn schedule(&mut self, at: SimTime, event: Event) {
        if let Err(full) = self.queue.push(at, event) {
            self.fail(FailureKind::Liveness, full.to_string());
        }
    }

    fn client_link_up(&self, client: ClientId, server: NodeId) -> bool {
        usize::try_from(client.0)
            .ok()
            .and_then(|c| self.client_links.get(c))
            .and_then(|links| links.get(slot(server)))
            .copied()
            .unwrap_or(false)
    }

    fn schedule_done(
        &mut self,
        at: SimTime,
        rpc: u64,
        client: ClientId,
        server: NodeId,
        result: Result<Vec<u8>, RpcError>,
    ) {
        let done = Event::RpcDone {
            rpc,
            client,
            server,
            result,
        };
        self.schedule(at, done);
    }

    /// Answers the pending calls of `server` selected by `which`: `reply` gives `Ok(())` to
    /// send the service's result for the call's index, or the error to send.
    fn answer_pending(
        &mut self,
        server: NodeId,
        which: impl Fn(&PendingRpc) -> bool,
        reply: impl Fn(&PendingRpc) -> Result<(), RpcError>,
    ) {
        let Some(list) = self.pending.get_mut(slot(server)) else {
            return;
        };
        if list.is_empty() {
            return;
        }
        let (answered, kept): (Vec<PendingRpc>, Vec<PendingRpc>) =
            list.drain(..).partition(|p| which(p));
        *list = kept;
        for pending in answered {
            let result = reply(&pending).and_then(|()| {
                self.apps
                    .services()
                    .and_then(|s| s.result(slot(server), pending.index))
                    .filter(|(term, _)| *term == pending.term)
                    .map(|(_, bytes)| bytes.to_vec())
                    .ok_or(RpcError::WrongLeader)
            });
            self.answer(server, pending.rpc, pending.client, result);
        }
    }

    /// The server's answer leaves for the client (and may be lost on the way).
    fn answer(
        &mut self,
        server: NodeId,
        rpc: u64,
        client: ClientId,
        result: Result<Vec<u8>, RpcError>,
    ) {
        let event = self.begin_event();
        let what = EventKind::Rpc {
            client: client.0,
            rpc,
            step: RpcStep::Answered,
        };
        self.record(event, Some(server), what, 0, None);
        let faults = self.network.profile().reply;
        let delay = self
            .rngs
            .network
            .between(faults.delay_us_min, faults.delay_us_max);
        let lost = self.rngs.network.chance_per_mille(faults.drop_per_mille);
        let result = if lost {
            Err(RpcError::Unreachable)
        } else {
            if let Ok(bytes) = &result {
                self.network.count_client_reply(bytes.len() as u64);
            }
            result
        };
        let at = self.now.plus_us(delay);
        self.schedule_done(at, rpc, client, server, result);
    }

    /// A call's result reaches its caller.
    fn complete_rpc(
        &mut self,
        rpc: u64,
        client: ClientId,
        server: NodeId,
        result: Result<Vec<u8>, RpcError>,
    ) {
        let event = self.begin_event();
        let step = if result.is_ok() {
            RpcStep::Replied
        } else {
            RpcStep::Failed
        };
        let what = EventKind::Rpc {
            client: client.0,
            rpc,
            step,
        };
        self.record(event, Some(server), what, 0, None);
        if let Some(slot) = self.rpcs.get_mut(&rpc) {
            slot.result = Some(result);
            if let Some(waker) = slot.waker.take() {
                waker.wake();
            }
        }
    }

    fn config_for(&self, id: NodeId, starts: u32) -> Config {
        let purpose = Purpose::NodeSeed {
            node: id.0,
            incarnation: starts,
        };
        let mut config = Config::new(id, self.ids.clone(), derive_seed(self.root_seed, purpose));
        config.election_ticks = self.setup.election_ticks;
        config.heartbeat_ticks = self.setup.heartbeat_ticks;
        config
    }

    /// When `node`'s pause ends, if it is paused now.
    fn paused_until(&self, node: NodeId) -> Option<SimTime> {
        let until = self.meta.get(slot(node))?.paused_until?;
        (self.now < until).then_some(until)
    }

    /// How many of `outputs` (the step `id` just took) to perform before an armed crash: `None`
    /// when no crash is armed or the step persists nothing.
    fn crash_cut(&self, id: NodeId, outputs: &[Output]) -> Option<usize> {
        let after = self.meta.get(slot(id))?.crash_after_outputs?;
        if !outputs.iter().any(|o| matches!(o, Output::Persist(_))) {
            return None;
        }
        Some(
            usize::try_from(after)
                .unwrap_or(usize::MAX)
                .min(outputs.len()),
        )
    }

    fn is_current(&self, node: NodeId, incarnation: Incarnation) -> bool {
        self.meta
            .get(slot(node))
            .is_some_and(|meta| meta.alive && meta.incarnation == incarnation)
    }

    fn lost_reason(
        &self,
        from: NodeId,
        from_incarnation: Incarnation,
        to: NodeId,
        to_incarnation: Incarnation,
    ) -> Option<LostReason> {
        if !self.network.link_up(from, to) {
            Some(LostReason::LinkDown)
        } else if !self.is_current(from, from_incarnation) {
            Some(LostReason::SenderGone)
        } else if !self.is_current(to, to_incarnation) {
            Some(LostReason::ReceiverGone)
        } else {
            None
        }
    }

    /// Performs one output of `id`'s step.
    fn perform(&mut self, id: NodeId, output: Output) {
        if let Some(checkers) = &mut self.checkers
            && let Err(violation) = checkers.on_output(id, &output)
        {
            self.violation(violation);
            return;
        }
        let i = slot(id);
        match output {
            Output::Persist(op) => {
                if let Err(error) = self.stores[i].apply_owned(op) {
                    let message = format!("{id}'s store rejected a persist: {error}");
                    self.fail(FailureKind::Safety, message);
                }
            }
            Output::Send { to, message } => self.send(id, to, message),
            Output::Apply(entries) => {
                if let Err(message) = self.apps.apply(i, entries, &mut self.compactions) {
                    self.fail(FailureKind::Safety, message);
                }
            }
            Output::Restore(snapshot) => {
                if let Err(message) = self.apps.restore(i, &snapshot) {
                    self.fail(FailureKind::Safety, message);
                }
            }
        }
    }

    fn send(&mut self, from: NodeId, to: NodeId, message: Message) {
        let Some(receiver) = self.meta.get(slot(to)).copied() else {
            self.fail(
                FailureKind::Safety,
                format!("{from} sent to unknown node {to}"),
            );
            return;
        };
        let is_request = message.payload.is_request();
        let to_incarnation = match self.reply_route {
            Some((requester, incarnation)) if !is_request && requester == to => incarnation,
            Some(_) | None => receiver.incarnation,
        };
        let receiver_up = receiver.alive && receiver.incarnation == to_incarnation;
        let bytes = message.encoded_len() as u64;
        let rng = &mut self.rngs.network;
        let route = self
            .network
            .route(rng, from, to, is_request, bytes, receiver_up);
        let Route::Deliver {
            delay_us,
            duplicate_delay_us,
        } = route
        else {
            return;
        };
        let from_incarnation = self.meta[slot(from)].incarnation;
        let flight = InFlight {
            from,
            to,
            from_incarnation,
            to_incarnation,
            sent_at: self.now,
            bytes,
            message,
        };
        let duplicate = duplicate_delay_us.map(|delay_us| (delay_us, flight.clone()));
        let copies = 1 + u64::from(duplicate.is_some());
        self.in_flight_bytes = self.in_flight_bytes.saturating_add(bytes * copies);
        if self.in_flight_bytes > self.in_flight_bytes_max {
            let message = format!(
                "{} bytes of messages in flight, over the cap of {}: a message storm",
                self.in_flight_bytes, self.in_flight_bytes_max
            );
            self.fail(FailureKind::Liveness, message);
            return;
        }
        self.schedule(self.now.plus_us(delay_us), Event::Deliver(flight));
        if let Some((delay_us, copy)) = duplicate {
            self.schedule(self.now.plus_us(delay_us), Event::Deliver(copy));
        }
    }
}
