//! A hosted service and its clients: replies come from applied entries, followers refuse,
//! dead links and crashed servers fail calls, and the service snapshots at `max_raft_state`.

use raft::Index;
use sim::tester::AppKind;
use sim::tester::service::RpcCall;
use sim::{
    Lab, RpcError, RunOptions, Scenario, ScenarioFuture, Service, ServiceSpec, Setup, TestError,
    Tester, bail, ensure,
};

/// A service that appends every command to a list and replies with the list's length.
#[derive(Default)]
struct Journal {
    entries: Vec<Vec<u8>>,
}

impl Service for Journal {
    fn apply(&mut self, _index: Index, command: &[u8]) -> Vec<u8> {
        self.entries.push(command.to_vec());
        (self.entries.len() as u64).to_le_bytes().to_vec()
    }

    fn snapshot(&self) -> Vec<u8> {
        postcard::to_allocvec(&self.entries).unwrap_or_default()
    }

    fn restore(&mut self, snapshot: &[u8]) -> Result<(), String> {
        self.entries = postcard::from_bytes(snapshot).map_err(|e| e.to_string())?;
        Ok(())
    }
}

fn journal() -> Box<dyn Service> {
    Box::new(Journal::default())
}

const JOURNAL: ServiceSpec = ServiceSpec {
    name: "journal",
    make: journal,
    max_raft_state: None,
};

const JOURNAL_SNAPSHOTS: ServiceSpec = ServiceSpec {
    max_raft_state: Some(1000),
    ..JOURNAL
};

fn setup(spec: ServiceSpec) -> Setup {
    Setup {
        app: AppKind::Service(spec),
        ..Setup::mit(3)
    }
}

fn scenario(name: &'static str, spec: ServiceSpec, run: fn(Tester) -> ScenarioFuture) -> Scenario {
    Scenario {
        name,
        lab: Lab::Swarm,
        part: "service",
        summary: "service test",
        setup: setup(spec),
        run,
    }
}

fn run(scenario: &Scenario, seed: u64) -> sim::RunReport {
    sim::run(scenario, seed, &RunOptions::default())
}

fn length(reply: &[u8]) -> u64 {
    let mut bytes = [0; 8];
    bytes.copy_from_slice(&reply[..8]);
    u64::from_le_bytes(bytes)
}

async fn call(
    t: &Tester,
    client: sim::ClientId,
    server: usize,
    value: u8,
) -> Result<Vec<u8>, RpcError> {
    let call: RpcCall = t.call(client, server, vec![value; 16]);
    call.await
}

fn leader_answers_and_followers_refuse(t: Tester) -> ScenarioFuture {
    Box::pin(async move {
        let leader = t.check_one_leader().await?;
        let client = t.make_client_to_all();
        for n in 1..=5 {
            let reply = call(&t, client, leader, n)
                .await
                .map_err(|e| TestError::check(format!("call {n}: {e}")))?;
            ensure!(
                length(&reply) == u64::from(n),
                "reply {n} says {}",
                length(&reply)
            );
        }
        let follower = (leader + 1) % t.servers();
        let refused = call(&t, client, follower, 9).await;
        ensure!(
            refused == Err(RpcError::WrongLeader),
            "follower answered {refused:?}"
        );
        // A disabled client link fails the call without reaching the server.
        t.disconnect_client(client, &[leader]);
        let before = t.service_last_applied(leader);
        let cut = call(&t, client, leader, 9).await;
        ensure!(
            cut == Err(RpcError::Unreachable),
            "cut link answered {cut:?}"
        );
        t.sleep_ms(500).await;
        ensure!(
            t.service_last_applied(leader) == before,
            "a call over a cut link was applied"
        );
        Ok(())
    })
}

#[test]
fn leader_answers_with_the_applied_result_and_followers_refuse() {
    let s = scenario("t/answers", JOURNAL, leader_answers_and_followers_refuse);
    for seed in 0..20 {
        let report = run(&s, seed);
        assert!(report.passed(), "seed {seed}: {:?}", report.failure);
    }
}

fn crash_fails_pending_calls(t: Tester) -> ScenarioFuture {
    Box::pin(async move {
        let leader = t.check_one_leader().await?;
        let client = t.make_client_to_all();
        // Cut the leader off from its followers so the proposal cannot commit, then crash it.
        for other in 0..t.servers() {
            if other != leader {
                t.set_link(leader, other, false);
            }
        }
        let pending = t.call(client, leader, vec![1; 8]);
        let waiter = t.spawn(async move { Ok(pending.await) });
        t.sleep_ms(100).await;
        t.crash(leader);
        let Some(result) = waiter.await else {
            bail!("the waiting client failed");
        };
        ensure!(
            result == Err(RpcError::Unreachable),
            "pending call got {result:?}"
        );
        Ok(())
    })
}

#[test]
fn a_crash_fails_the_calls_its_server_was_handling() {
    let s = scenario("t/crash", JOURNAL, crash_fails_pending_calls);
    for seed in 0..20 {
        let report = run(&s, seed);
        assert!(report.passed(), "seed {seed}: {:?}", report.failure);
    }
}

fn stale_leader_times_out(t: Tester) -> ScenarioFuture {
    Box::pin(async move {
        let leader = t.check_one_leader().await?;
        let client = t.make_client_to_all();
        t.partition(
            &[leader],
            &(0..t.servers())
                .filter(|&s| s != leader)
                .collect::<Vec<_>>(),
        );
        let result = call(&t, client, leader, 3).await;
        ensure!(
            result == Err(RpcError::Timeout) || result == Err(RpcError::WrongLeader),
            "a leader without a majority answered {result:?}"
        );
        Ok(())
    })
}

#[test]
fn a_leader_without_a_majority_never_hangs_a_client() {
    let s = scenario("t/stale", JOURNAL, stale_leader_times_out);
    for seed in 0..20 {
        let report = run(&s, seed);
        assert!(report.passed(), "seed {seed}: {:?}", report.failure);
    }
}

fn snapshots_bound_the_log(t: Tester) -> ScenarioFuture {
    Box::pin(async move {
        let client = t.make_client_to_all();
        let mut done = 0;
        while done < 200 {
            let leader = t.check_one_leader().await?;
            if call(&t, client, leader, 7).await.is_ok() {
                done += 1;
            }
        }
        t.sleep_ms(500).await;
        ensure!(t.snapshot_size() > 0, "no snapshot was taken");
        ensure!(t.log_size() < 3000, "log size {} not bounded", t.log_size());
        // A restarted server rebuilds its instance from the snapshot and the log.
        let leader = t.check_one_leader().await?;
        let follower = (leader + 1) % t.servers();
        let before = t.service_last_applied(follower);
        t.restart(follower);
        t.connect(follower);
        t.sleep_ms(2000).await;
        ensure!(
            t.service_last_applied(follower) >= before,
            "restarted instance applied {} < {before}",
            t.service_last_applied(follower)
        );
        Ok(())
    })
}

#[test]
fn the_service_snapshots_when_the_raft_state_reaches_its_limit() {
    let s = scenario("t/snapshots", JOURNAL_SNAPSHOTS, snapshots_bound_the_log);
    for seed in 0..10 {
        let report = run(&s, seed);
        assert!(report.passed(), "seed {seed}: {:?}", report.failure);
    }
}
