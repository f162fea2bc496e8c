//! The labs' tester, in virtual time: the helpers a scenario calls (`check_one_leader`, `one`,
//! `wait`, `crash`, …) with the timing rules of MIT's `config.go` and SJTU's
//! `raft_test_utils.h` (`LAB_SCENARIOS.md` §1.3 and §3.2), and concurrent clients.
//!
//! A [`Tester`] is a cheap handle (clone it into every client task). Servers are numbered
//! `0..servers()` as in the labs. Helpers that sleep are `async`; the others act at once. A
//! failed check returns a [`TestError`], which the scenario propagates with `?`; the run then
//! stops and reports it.
//!
//! Where the labs differ ([`Flavour`]), each helper follows the scenario's lab: see
//! [`Tester::check_one_leader`], [`Tester::check_terms`], [`Tester::restart`] and
//! [`Tester::rpc_count`].

pub mod apps;
pub mod cmd;
pub mod exec;
pub mod service;

pub use apps::AppKind;
pub use cmd::{Cmd, cmd};
pub use exec::JoinHandle;

use crate::clock::{SimTime, US_PER_MS};
use crate::cluster::{Cluster, Next};
use crate::fault::{CrashPoint, MidStepCrash};
use crate::network::{NetworkProfile, Reorder};
use crate::run::{Failure, FailureKind, RunReport};
use crate::scenario::{Flavour, Setup};
use crate::trace::EventKind;
use exec::{Executor, MainHandle};
use raft::{Accepted, Index, Input, Node, NodeId, Role, Term};
use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

/// The labs' `RaftElectionTimeout`: 1 s, what tests sleep to let an election happen.
pub const RAFT_ELECTION_TIMEOUT_MS: u64 = 1000;

/// MIT's `MAXLOGSIZE`: the persisted Raft state must stay below this many bytes in the
/// snapshot tests.
pub const MAX_LOG_SIZE: usize = 2000;

/// A failed check of a scenario.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestError {
    /// The kind of failure (a lab check by default).
    pub kind: FailureKind,
    /// What failed, in the lab's words where it has them.
    pub message: String,
}

impl TestError {
    /// A failed lab check.
    #[must_use]
    pub fn check(message: impl Into<String>) -> TestError {
        TestError {
            kind: FailureKind::Check,
            message: message.into(),
        }
    }

    /// A safety violation seen by the tester (inconsistent committed values).
    #[must_use]
    pub fn safety(message: impl Into<String>) -> TestError {
        TestError {
            kind: FailureKind::Safety,
            message: message.into(),
        }
    }

    /// No progress within the lab's budget.
    #[must_use]
    pub fn liveness(message: impl Into<String>) -> TestError {
        TestError {
            kind: FailureKind::Liveness,
            message: message.into(),
        }
    }
}

impl fmt::Display for TestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

impl std::error::Error for TestError {}

/// What scenario code returns.
pub type TestResult<T = ()> = Result<T, TestError>;

/// Fails the scenario with a lab check failure unless `cond` holds:
/// `ensure!(count == 0, "{count} committed before Start()")`.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($message:tt)+) => {
        if !$cond {
            return Err($crate::TestError::check(format!($($message)+)));
        }
    };
}

/// Returns a lab check failure: `bail!("expected one leader, got none")`.
#[macro_export]
macro_rules! bail {
    ($($message:tt)+) => {
        return Err($crate::TestError::check(format!($($message)+)))
    };
}

struct Inner {
    cluster: RefCell<Cluster>,
    executor: Executor,
    setup: Setup,
    /// Whether the run keeps a published history ([`crate::RunOptions::record_history`]).
    record_history: bool,
    history: RefCell<Option<String>>,
}

/// The scenario's handle on the simulated cluster. Clone it freely (into clients too).
#[derive(Clone)]
pub struct Tester {
    inner: Rc<Inner>,
}

impl fmt::Debug for Tester {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tester")
            .field("setup", &self.inner.setup)
            .field("now", &self.now())
            .finish()
    }
}

fn id(server: usize) -> NodeId {
    NodeId(u32::try_from(server).unwrap_or(u32::MAX))
}

impl Tester {
    pub(crate) fn new(cluster: Cluster, executor: Executor, record_history: bool) -> Tester {
        let setup = *cluster.setup();
        Tester {
            inner: Rc::new(Inner {
                cluster: RefCell::new(cluster),
                executor,
                setup,
                record_history,
                history: RefCell::new(None),
            }),
        }
    }

    // ----- The run loop's side -----

    pub(crate) fn next_event(&self) -> Next {
        self.inner.cluster.borrow_mut().next_event()
    }

    pub(crate) fn failed(&self) -> bool {
        self.inner.cluster.borrow().failure().is_some()
    }

    pub(crate) fn fail_liveness(&self, message: String) {
        self.fail(&TestError::liveness(message));
    }

    fn fail(&self, error: &TestError) {
        self.inner
            .cluster
            .borrow_mut()
            .fail(error.kind, error.message.clone());
    }

    pub(crate) fn finish(&self, scenario: &'static str, seed: u64) -> RunReport {
        let mut cluster = self.inner.cluster.borrow_mut();
        let failure: Option<Failure> = cluster.failure().cloned();
        let events = cluster.events();
        let virtual_us = cluster.now().as_us();
        let messages = cluster.counters().messages_sent;
        let (trace_hash, trace) = cluster.finish_trace();
        RunReport {
            scenario,
            seed,
            failure,
            trace_hash,
            events,
            virtual_us,
            messages,
            trace,
            history: self.inner.history.borrow_mut().take(),
        }
    }

    /// Publishes the run's client history (JSON in `sim lincheck`'s format) so that
    /// `sim run --history FILE` can write it; the last one published wins. `json` is called only
    /// when the run was asked to keep the history ([`crate::RunOptions::record_history`]), so
    /// runs that never write it (fuzz campaigns, benchmarks, tests) do not pay for building it.
    pub fn publish_history(&self, json: impl FnOnce() -> String) {
        if self.inner.record_history {
            *self.inner.history.borrow_mut() = Some(json());
        }
    }

    pub(crate) fn spawn_main(&self, body: crate::scenario::ScenarioFuture) -> MainHandle {
        let tester = self.clone();
        self.inner.executor.spawn_main(body, move |result| {
            if let Err(error) = result {
                tester.fail(&error);
            }
        })
    }

    // ----- Time -----

    /// The current virtual time.
    #[must_use]
    pub fn now(&self) -> SimTime {
        self.inner.cluster.borrow().now()
    }

    /// Virtual milliseconds since the start of the run.
    #[must_use]
    pub fn now_ms(&self) -> u64 {
        self.now().as_us() / US_PER_MS
    }

    /// Sleeps `ms` virtual milliseconds (the cluster runs meanwhile).
    pub fn sleep_ms(&self, ms: u64) -> Sleep {
        self.sleep_us(ms.saturating_mul(US_PER_MS))
    }

    /// Sleeps `us` virtual microseconds.
    pub fn sleep_us(&self, us: u64) -> Sleep {
        Sleep {
            tester: self.clone(),
            deadline: self.now().plus_us(us),
            scheduled: false,
        }
    }

    /// Sleeps the labs' `RaftElectionTimeout` (1 s).
    pub fn sleep_election_timeout(&self) -> Sleep {
        self.sleep_ms(RAFT_ELECTION_TIMEOUT_MS)
    }

    // ----- Clients -----

    /// Runs `client` beside the scenario's body, as the labs' goroutines and threads do. A
    /// client's error fails the whole run; awaiting the handle gives its result (`None` if it
    /// failed).
    pub fn spawn<T: 'static>(
        &self,
        client: impl Future<Output = TestResult<T>> + 'static,
    ) -> JoinHandle<T> {
        let tester = self.clone();
        self.inner.executor.spawn_joinable(async move {
            match client.await {
                Ok(value) => Some(value),
                Err(error) => {
                    tester.fail(&error);
                    None
                }
            }
        })
    }

    // ----- Randomness -----

    /// A workload draw in `0..bound` (the labs' `rand.Int() % bound`); 0 if `bound` is 0.
    #[must_use]
    pub fn random_below(&self, bound: u64) -> u64 {
        if bound == 0 {
            return 0;
        }
        self.inner.cluster.borrow_mut().rngs().workload.below(bound)
    }

    /// A non-negative random command value (the labs' `rand.Int()`).
    #[must_use]
    pub fn random_value(&self) -> i64 {
        let value = self.inner.cluster.borrow_mut().rngs().workload.next_u64() >> 1;
        i64::try_from(value).unwrap_or(i64::MAX)
    }

    /// A server index in `0..servers()` for a fault (which server to crash, disconnect, …),
    /// drawn from the faults stream.
    #[must_use]
    pub fn random_server(&self) -> usize {
        let servers = self.servers() as u64;
        let drawn = self
            .inner
            .cluster
            .borrow_mut()
            .rngs()
            .faults
            .below(servers.max(1));
        usize::try_from(drawn).unwrap_or(0)
    }

    /// A fault decision with chance `numerator / denominator` (faults stream).
    #[must_use]
    pub fn fault_chance(&self, numerator: u64, denominator: u64) -> bool {
        self.inner
            .cluster
            .borrow_mut()
            .rngs()
            .faults
            .chance(numerator, denominator)
    }

    // ----- Queries -----

    /// Number of servers.
    #[must_use]
    pub fn servers(&self) -> usize {
        usize::try_from(self.inner.setup.nodes).unwrap_or(0)
    }

    /// The lab whose semantics this run follows.
    #[must_use]
    pub fn flavour(&self) -> Flavour {
        self.inner.setup.flavour
    }

    /// `GetState()` of a running server: its term and whether it believes it is leader. `None`
    /// if the server is crashed.
    #[must_use]
    pub fn get_state(&self, server: usize) -> Option<(u64, bool)> {
        let cluster = self.inner.cluster.borrow();
        let node = cluster.node(id(server))?;
        Some((node.term().0, node.role() == Role::Leader))
    }

    /// Whether the server is running and believes it is leader.
    #[must_use]
    pub fn is_leader(&self, server: usize) -> bool {
        self.get_state(server).is_some_and(|(_, leader)| leader)
    }

    /// Whether the server is connected (MIT) / reachable (SJTU).
    #[must_use]
    pub fn is_connected(&self, server: usize) -> bool {
        self.inner
            .cluster
            .borrow()
            .network()
            .is_connected(id(server))
    }

    /// Whether the server is running (not crashed).
    #[must_use]
    pub fn is_up(&self, server: usize) -> bool {
        self.inner.cluster.borrow().node(id(server)).is_some()
    }

    /// Reads a running server's node (for checks beyond the labs' API).
    pub fn with_node<R>(&self, server: usize, read: impl FnOnce(&Node) -> R) -> Option<R> {
        let cluster = self.inner.cluster.borrow();
        cluster.node(id(server)).map(read)
    }

    /// Running servers the lab's checks look at: connected ones (MIT `connected[i]`, SJTU
    /// reachable).
    fn connected_up(&self) -> Vec<usize> {
        let cluster = self.inner.cluster.borrow();
        (0..self.servers())
            .filter(|&s| cluster.network().is_connected(id(s)) && cluster.node(id(s)).is_some())
            .collect()
    }

    // ----- The labs' checks -----

    /// MIT `checkOneLeader` / SJTU `check_exact_one_leader`: the leader of the highest term
    /// among connected servers; two leaders in one term fail the test.
    ///
    /// MIT sleeps 450–550 ms before each of 10 rounds; SJTU checks first and sleeps 500–770 ms
    /// between rounds (so it returns at once when a leader exists).
    pub async fn check_one_leader(&self) -> TestResult<usize> {
        for _ in 0..10 {
            if self.flavour() == Flavour::Mit {
                let ms = 450 + self.tester_draw(100);
                self.sleep_ms(ms).await;
            }
            if let Some(leader) = self.leader_of_highest_term()? {
                return Ok(leader);
            }
            if self.flavour() == Flavour::Sjtu {
                let ms = 500 + 30 * self.tester_draw(10);
                self.sleep_ms(ms).await;
            }
        }
        match self.flavour() {
            Flavour::Mit => Err(TestError::liveness("expected one leader, got none")),
            Flavour::Sjtu => Err(TestError::liveness("There is no leader")),
        }
    }

    fn tester_draw(&self, bound: u64) -> u64 {
        self.inner.cluster.borrow_mut().rngs().tester.below(bound)
    }

    fn leader_of_highest_term(&self) -> TestResult<Option<usize>> {
        let mut best: Option<(u64, usize)> = None;
        for server in self.connected_up() {
            let Some((term, true)) = self.get_state(server) else {
                continue;
            };
            match best {
                Some((best_term, other)) if best_term == term => {
                    return Err(TestError::safety(format!(
                        "term {term} has >1 leaders ({other} and {server})"
                    )));
                }
                Some((best_term, _)) if best_term > term => {}
                Some(_) | None => best = Some((term, server)),
            }
        }
        // Two leaders in a lower term than the best are caught by the election-safety checker.
        Ok(best.map(|(_, server)| server))
    }

    /// MIT `checkTerms` (connected servers agree on a term) / SJTU `check_same_term` (every
    /// running server agrees). Returns the term.
    pub fn check_terms(&self) -> TestResult<u64> {
        let servers: Vec<usize> = match self.flavour() {
            Flavour::Mit => self.connected_up(),
            Flavour::Sjtu => (0..self.servers()).filter(|&s| self.is_up(s)).collect(),
        };
        let mut agreed: Option<u64> = None;
        for server in servers {
            let Some((term, _)) = self.get_state(server) else {
                continue;
            };
            match agreed {
                None => agreed = Some(term),
                Some(seen) if seen != term => {
                    return Err(TestError::check(format!(
                        "servers disagree on term ({seen} vs {term} at server {server})"
                    )));
                }
                Some(_) => {}
            }
        }
        agreed.ok_or_else(|| TestError::check("no running server to ask for its term"))
    }

    /// MIT `checkNoLeader` / SJTU `check_no_leader`: no connected server claims leadership.
    pub fn check_no_leader(&self) -> TestResult {
        for server in self.connected_up() {
            if self.is_leader(server) {
                return Err(TestError::check(format!(
                    "expected no leader among connected servers, but {server} claims to be leader"
                )));
            }
        }
        Ok(())
    }

    /// MIT `nCommitted` / SJTU `num_committed`: how many servers have applied `index` (MIT counts
    /// its record, kept across crashes; SJTU counts live state machines), and the value they
    /// agree on. Disagreement fails the run.
    pub fn n_committed(&self, index: u64) -> TestResult<(usize, Option<Cmd>)> {
        let cluster = self.inner.cluster.borrow();
        let (count, value) = cluster
            .apps()
            .n_committed(Index(index))
            .map_err(TestError::safety)?;
        Ok((usize::try_from(count).unwrap_or(usize::MAX), value))
    }

    /// SJTU `get_committed_value`: the value some server applied at `index`.
    pub fn get_committed_value(&self, index: u64) -> TestResult<Cmd> {
        match self.n_committed(index)? {
            (_, Some(value)) => Ok(value),
            (_, None) => Err(TestError::check(format!(
                "no server has applied index {index}"
            ))),
        }
    }

    /// The highest index any server applied (the labs' "agreements").
    #[must_use]
    pub fn max_index(&self) -> u64 {
        self.inner.cluster.borrow().apps().max_index()
    }

    /// `rf.Start(cmd)` / `new_command`: proposes on `server`. `Some((index, term))` if it is a
    /// running leader that accepted; `None` otherwise.
    pub fn start(&self, server: usize, command: impl Into<Cmd>) -> Option<(u64, u64)> {
        let command: Cmd = command.into();
        let result = self.inner.cluster.borrow_mut().step(
            id(server),
            Input::Propose(command.into_bytes()),
            |result| EventKind::Propose {
                index: match result {
                    Ok(Accepted::Proposed { index, .. }) => Some(index.0),
                    Ok(_) | Err(_) => None,
                },
            },
        )?;
        match result {
            Ok(Accepted::Proposed { index, term }) => Some((index.0, term.0)),
            Ok(_) | Err(_) => None,
        }
    }

    /// MIT `one(cmd, expectedServers, retry)` / SJTU `append_new_command(value, expected)`
    /// (always `retry = true`): submit `command` to connected servers in round-robin order
    /// starting at server 1 until one accepts, then poll every 20 ms for up to 2 s until at
    /// least `expected` servers have applied it at that index; retry or fail after 2 s; give up
    /// after 10 s. Returns the index.
    pub async fn one(
        &self,
        command: impl Into<Cmd>,
        expected: usize,
        retry: bool,
    ) -> TestResult<u64> {
        let command: Cmd = command.into();
        let started = self.now();
        let mut cursor = 0;
        while self.now().since_us(started) < 10_000 * US_PER_MS {
            let mut index = None;
            for _ in 0..self.servers() {
                cursor = (cursor + 1) % self.servers().max(1);
                if !self.is_connected(cursor) || !self.is_up(cursor) {
                    continue;
                }
                if let Some((at, _)) = self.start(cursor, command.clone()) {
                    index = Some(at);
                    break;
                }
            }
            let Some(index) = index else {
                self.sleep_ms(50).await;
                continue;
            };
            let submitted = self.now();
            while self.now().since_us(submitted) < 2_000 * US_PER_MS {
                let (count, value) = self.n_committed(index)?;
                if count > 0 && count >= expected && value.as_ref() == Some(&command) {
                    return Ok(index);
                }
                self.sleep_ms(20).await;
            }
            if !retry {
                return Err(TestError::liveness(format!(
                    "one({command}) failed to reach agreement"
                )));
            }
        }
        Err(TestError::liveness(match self.flavour() {
            Flavour::Mit => format!("one({command}) failed to reach agreement"),
            Flavour::Sjtu => format!("Cannot make agreement on {command}!"),
        }))
    }

    /// MIT `wait(index, n, startTerm)` / SJTU `wait_commit`: up to 30 polls with sleeps of 10 ms
    /// doubling to 1280 ms, until `n` servers have applied `index`. `Ok(None)` if some server
    /// moved past `start_term` (the labs' -1); fewer than `n` at the end fails.
    pub async fn wait(
        &self,
        index: u64,
        n: usize,
        start_term: Option<u64>,
    ) -> TestResult<Option<Cmd>> {
        let mut pause_ms = 10;
        for _ in 0..30 {
            let (count, _) = self.n_committed(index)?;
            if count >= n {
                break;
            }
            self.sleep_ms(pause_ms).await;
            if pause_ms < 1000 {
                pause_ms *= 2;
            }
            if let Some(start_term) = start_term {
                let moved_on = (0..self.servers())
                    .filter_map(|s| self.get_state(s))
                    .any(|(term, _)| term > start_term);
                if moved_on {
                    return Ok(None);
                }
            }
        }
        let (count, value) = self.n_committed(index)?;
        if count < n {
            return Err(TestError::liveness(format!(
                "only {count} decided for index {index}; wanted {n}"
            )));
        }
        Ok(value)
    }

    // ----- Faults -----

    /// MIT `connect(i)` / SJTU `enable_node(i)`.
    pub fn connect(&self, server: usize) {
        self.inner
            .cluster
            .borrow_mut()
            .set_connected(id(server), true);
    }

    /// MIT `disconnect(i)` / SJTU `disable_node(i)`: the server keeps running, cut off.
    pub fn disconnect(&self, server: usize) {
        self.inner
            .cluster
            .borrow_mut()
            .set_connected(id(server), false);
    }

    /// Cuts (or restores) the one-way link `from → to` (an asymmetric partition).
    pub fn set_link(&self, from: usize, to: usize, up: bool) {
        self.inner
            .cluster
            .borrow_mut()
            .set_link_cut(id(from), id(to), !up);
    }

    /// Restores every link cut with [`Tester::set_link`].
    pub fn heal_links(&self) {
        self.inner.cluster.borrow_mut().heal_links();
    }

    /// MIT `crash1(i)`: disconnect, then kill; only what was persisted survives. (SJTU has no
    /// bare crash; its tests call [`Tester::restart`].)
    pub fn crash(&self, server: usize) {
        let mut cluster = self.inner.cluster.borrow_mut();
        cluster.set_connected(id(server), false);
        cluster.crash(id(server));
    }

    /// MIT `start1(i)`: crash if running, then start from the persisted state; the server
    /// **stays disconnected** until [`Tester::connect`]. The tester keeps its record of applied
    /// entries and ingests the persisted snapshot.
    ///
    /// SJTU `restart(i)`: stop, start a fresh node and an empty state machine (rebuilt from the
    /// snapshot), and **re-enable** the node at once.
    pub fn restart(&self, server: usize) {
        let mut cluster = self.inner.cluster.borrow_mut();
        match self.inner.setup.flavour {
            Flavour::Mit => {
                cluster.set_connected(id(server), false);
                cluster.restart(id(server));
            }
            Flavour::Sjtu => {
                cluster.restart(id(server));
                cluster.set_connected(id(server), true);
            }
        }
    }

    /// `setReliable` / `set_reliable`: the lab's unreliable profile, or the reliable one.
    pub fn set_reliable(&self, reliable: bool) {
        let profile = self.inner.setup.network_profile(reliable);
        let mut cluster = self.inner.cluster.borrow_mut();
        let long = cluster.network().long_reordering();
        cluster.set_network(profile, long);
    }

    /// Replaces the network's fault profile (beyond the labs' two).
    pub fn set_network(&self, profile: NetworkProfile) {
        let mut cluster = self.inner.cluster.borrow_mut();
        let long = cluster.network().long_reordering();
        cluster.set_network(profile, long);
    }

    /// MIT `setlongreordering`: 2/3 of replies delayed 200–2200 ms.
    pub fn set_long_reordering(&self, on: bool) {
        let mut cluster = self.inner.cluster.borrow_mut();
        let profile = cluster.network().profile();
        cluster.set_network(profile, on);
    }

    // ----- Faults beyond the labs' -----

    /// Events handled so far in the run.
    #[must_use]
    pub fn events(&self) -> u64 {
        self.inner.cluster.borrow().events()
    }

    /// The run's root seed (for scenarios that derive their own plan from it).
    #[must_use]
    pub fn seed(&self) -> u64 {
        self.inner.cluster.borrow().seed()
    }

    /// Crashes `server` at `point`, without touching its connectivity: at once
    /// ([`CrashPoint::BetweenSteps`]), or inside its next step that persists something
    /// ([`CrashPoint::MidStep`], armed now and fired by that step; only what the performed
    /// outputs persisted survives). False if the server is down.
    pub fn crash_at(&self, server: usize, point: CrashPoint) -> bool {
        let mut cluster = self.inner.cluster.borrow_mut();
        match point {
            CrashPoint::BetweenSteps => cluster.crash(id(server)),
            CrashPoint::MidStep { after_outputs } => cluster.arm_crash(id(server), after_outputs),
        }
    }

    /// Disarms a mid-step crash armed by [`Tester::crash_at`] that has not fired yet.
    pub fn disarm_crash(&self, server: usize) {
        self.inner.cluster.borrow_mut().disarm_crash(id(server));
    }

    /// What the run's last mid-step crash cut short (its step's outputs, how many were
    /// performed, and the durable state before the step).
    #[must_use]
    pub fn last_mid_step_crash(&self) -> Option<MidStepCrash> {
        self.inner.cluster.borrow().last_mid_step_crash().cloned()
    }

    /// Pauses `server`'s process for `ms` virtual milliseconds: no ticks, no deliveries (its
    /// messages wait and arrive when it resumes), no proposals. False if it is down.
    pub fn pause(&self, server: usize, ms: u64) -> bool {
        let mut cluster = self.inner.cluster.borrow_mut();
        let until = cluster.now().plus_us(ms.saturating_mul(US_PER_MS));
        cluster.pause(id(server), until)
    }

    /// Ends `server`'s pause now. Its next tick and the messages that waited for it still come
    /// at the time the pause was to end: an early resume does not reset its timers.
    pub fn resume(&self, server: usize) {
        self.inner.cluster.borrow_mut().resume(id(server));
    }

    /// Whether `server` is paused.
    #[must_use]
    pub fn is_paused(&self, server: usize) -> bool {
        self.inner.cluster.borrow().is_paused(id(server))
    }

    /// Skews `server`'s clock by `per_mille` (±500 at most): it ticks that much slower (or
    /// faster, when negative) from its next tick on.
    pub fn set_tick_skew(&self, server: usize, per_mille: i32) {
        self.inner
            .cluster
            .borrow_mut()
            .set_tick_skew(id(server), per_mille);
    }

    /// Holds messages back at random beyond the profile's delays ([`Reorder`]).
    pub fn set_reorder(&self, reorder: Reorder) {
        self.inner.cluster.borrow_mut().set_reorder(reorder);
    }

    /// The canary's test-only hook: corrupts `server`'s durable log from its last committed
    /// entry on and restarts it from there. A correct pipeline reports the run as a safety
    /// violation. Returns the corrupted index, or why nothing could be corrupted yet.
    pub fn canary_corrupt(&self, server: usize) -> Result<u64, String> {
        let mut cluster = self.inner.cluster.borrow_mut();
        cluster.canary_corrupt(id(server)).map(|index| index.0)
    }

    /// `server`'s applied state: its application's last applied index and a hash of everything
    /// it applied (SJTU list machines and MIT records; `None` for hosted services and for
    /// servers that do not exist). Equal pairs mean equal applied states.
    #[must_use]
    pub fn applied_digest(&self, server: usize) -> Option<(u64, u64)> {
        self.inner.cluster.borrow().apps().applied_digest(server)
    }

    // ----- Counters -----

    /// MIT `rpcCount(i)`: requests delivered to server i's current incarnation. SJTU
    /// `rpc_count(i)`: requests server i's current incarnation attempted to send.
    #[must_use]
    pub fn rpc_count(&self, server: usize) -> u64 {
        let cluster = self.inner.cluster.borrow();
        let counters = cluster.counters();
        let per_node = match self.flavour() {
            Flavour::Mit => &counters.delivered_requests,
            Flavour::Sjtu => &counters.attempted_requests,
        };
        per_node.get(server).copied().unwrap_or(0)
    }

    /// MIT `rpcTotal()` (every request sent, network-wide) / SJTU `rpc_count(-1)` (the sum over
    /// current incarnations).
    #[must_use]
    pub fn rpc_total(&self) -> u64 {
        let cluster = self.inner.cluster.borrow();
        let counters = cluster.counters();
        match self.flavour() {
            Flavour::Mit => counters.rpc_total,
            Flavour::Sjtu => counters.attempted_requests.iter().sum(),
        }
    }

    /// MIT `bytesTotal()`: postcard bytes of every request sent and every reply delivered.
    #[must_use]
    pub fn bytes_total(&self) -> u64 {
        self.inner.cluster.borrow().counters().bytes_total
    }

    /// MIT `LogSize()`: the largest persisted Raft state (hard state and log, without the
    /// snapshot) over all servers, in bytes.
    #[must_use]
    pub fn log_size(&self) -> usize {
        let cluster = self.inner.cluster.borrow();
        cluster
            .stores()
            .iter()
            .map(crate::storage::Store::raft_state_size_bytes)
            .max()
            .unwrap_or(0)
    }

    // ----- SJTU part 4 -----

    /// SJTU `save_snapshot()` on `server`: snapshot its list state machine at its last applied
    /// index and compact the log. False if the server is down or refused.
    pub fn save_snapshot(&self, server: usize) -> bool {
        let mut cluster = self.inner.cluster.borrow_mut();
        let Some(compaction) = cluster.apps().snapshot_of(server) else {
            return false;
        };
        if compaction.index == Index(0) {
            return true; // Nothing applied yet: nothing to compact.
        }
        let index = compaction.index;
        let input = Input::Compact {
            index,
            snapshot: compaction.snapshot,
        };
        let result = cluster.step(id(server), input, move |result| EventKind::Compact {
            index: index.0,
            accepted: result.is_ok(),
        });
        matches!(result, Some(Ok(_)))
    }

    /// SJTU `num_append_logs` of `server`'s state machine (0 for MIT applications).
    #[must_use]
    pub fn num_append_logs(&self, server: usize) -> u64 {
        self.inner
            .cluster
            .borrow()
            .apps()
            .num_append_logs(server)
            .unwrap_or(0)
    }

    /// The term of `server`'s last log entry (for scenario checks beyond the labs').
    #[must_use]
    pub fn last_log_term(&self, server: usize) -> Option<Term> {
        self.with_node(server, |node| node.log().last_term())
    }

    /// A copy of what `server`'s durable store holds (term, vote, snapshot and log): what
    /// survives a crash and what the next restart resumes from. Readable while the server is
    /// crashed; `None` only for a server that does not exist.
    #[must_use]
    pub fn durable_state(&self, server: usize) -> Option<raft::DurableState> {
        let cluster = self.inner.cluster.borrow();
        cluster
            .store(id(server))
            .map(|store| store.durable().clone())
    }
}

/// A virtual-time sleep (see [`Tester::sleep_ms`]).
pub struct Sleep {
    tester: Tester,
    deadline: SimTime,
    scheduled: bool,
}

impl fmt::Debug for Sleep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sleep")
            .field("deadline", &self.deadline)
            .finish()
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.tester.now() >= self.deadline {
            return Poll::Ready(());
        }
        if !self.scheduled {
            self.scheduled = true;
            let task = self.tester.inner.executor.current();
            let deadline = self.deadline;
            self.tester.inner.cluster.borrow_mut().schedule_wake(
                deadline,
                task,
                cx.waker().clone(),
            );
        }
        Poll::Pending
    }
}
