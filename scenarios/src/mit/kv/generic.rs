//! MIT's `GenericTest` and `GenericTestSpeed` (`KV_SCENARIOS.md` §1.6, §1.7), and the checks
//! they share: `checkClntAppends`, `checkConcurrentAppends`, the partitioner.

use super::{LOG_SIZE_FACTOR, SPEED_OPS, SPEED_US_PER_OP_MAX};
use crate::kv_client::{
    self, History, KvClerk, abbreviate, append, check_history, get, make_clerk_to_all, put,
};
use sim::tester::RAFT_ELECTION_TIMEOUT_MS;
use sim::{JoinHandle, TestResult, Tester, bail, ensure};
use std::cell::Cell;
use std::rc::Rc;

/// The labs' iterations per GenericTest.
const ITERATIONS: u32 = 3;

/// How long clients run per iteration (after the 1 s lead-in when there are partitions).
const CLIENT_PHASE_MS: u64 = 5_000;

/// `GenericTest(part, nclients, nservers, unreliable, crash, partitions, maxraftstate,
/// randomkeys)`; the servers and the network come from the scenario's setup.
#[derive(Clone, Copy, Debug)]
pub struct Generic {
    /// Concurrent worker clients.
    pub clients: u64,
    /// Crash and restart the whole cluster after each iteration.
    pub crash: bool,
    /// Random two-way partitions while clients run.
    pub partitions: bool,
    /// MIT's `maxraftstate`: `None` is −1 (no snapshots; the snapshot must stay empty).
    pub max_raft_state: Option<usize>,
    /// Workers pick keys at random among `"0".."clients-1"` (no per-worker checks).
    pub random_keys: bool,
}

/// The worker `cli`'s tag for its `j`-th write: `x cli j y`.
fn tag(cli: u64, j: u64) -> String {
    format!("x {cli} {j} y")
}

/// MIT's `checkClntAppends`: `clnt`'s tags `0..count` each appear exactly once in `v`, in order.
///
/// The lab searches `v` twice per tag (first and last occurrence), quadratic in the value's
/// length; this finds every occurrence of every tag of `clnt` in one pass and then applies the
/// same three checks in the same order. An occurrence of `x clnt j y` starts with `x clnt ` (which
/// cannot overlap itself: its only `x` is its first byte), followed by exactly `j`'s decimal digits
/// and ` y`.
pub fn check_clnt_appends(clnt: u64, v: &str, count: u64) -> TestResult {
    let prefix = format!("x {clnt} ");
    let slots = usize::try_from(count).unwrap_or(usize::MAX);
    // (first, last) byte offset of each tag.
    let mut seen: Vec<Option<(usize, usize)>> = vec![None; slots.min(v.len() + 1)];
    for (at, _) in v.match_indices(&prefix) {
        let rest = &v[at + prefix.len()..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let canonical = digits == 1 || (digits > 1 && !rest.starts_with('0'));
        if !canonical || !rest[digits..].starts_with(" y") {
            continue;
        }
        let Some(j) = rest[..digits]
            .parse::<usize>()
            .ok()
            .filter(|&j| j < seen.len())
        else {
            continue;
        };
        seen[j] = Some(match seen[j] {
            None => (at, at),
            Some((first, _)) => (first, at),
        });
    }
    let mut last: Option<usize> = None;
    for j in 0..count {
        let wanted = tag(clnt, j);
        let found = usize::try_from(j)
            .ok()
            .and_then(|j| seen.get(j).copied().flatten());
        let Some((first, final_)) = found else {
            bail!(
                "{clnt} missing element {wanted} in Append result {}",
                abbreviate(v)
            );
        };
        ensure!(
            final_ == first,
            "duplicate element {wanted} in Append result {}",
            abbreviate(v)
        );
        ensure!(
            last.is_none_or(|last| first > last),
            "wrong order for element {wanted} in Append result {}",
            abbreviate(v)
        );
        last = Some(first);
    }
    Ok(())
}

/// MIT's `checkConcurrentAppends`: every client `i`'s tags `0..counts[i]` appear once, in order.
pub fn check_concurrent_appends(v: &str, counts: &[u64]) -> TestResult {
    for (clnt, &count) in (0u64..).zip(counts) {
        check_clnt_appends(clnt, v, count)?;
    }
    Ok(())
}

/// One worker of an iteration (`spawn_clients_and_wait`'s body): Appends, Puts (random keys
/// only) and Gets until `done`; returns how many writes it made.
async fn worker(
    t: Tester,
    cli: u64,
    params: Generic,
    log: History,
    done: Rc<Cell<bool>>,
) -> TestResult<u64> {
    let mut ck = make_clerk_to_all(&t);
    let mut j = 0;
    let mut last = String::new();
    let own_key = cli.to_string();
    if !params.random_keys {
        put(&mut ck, &own_key, &last, &log, cli).await?;
    }
    while !done.get() {
        let key = if params.random_keys {
            t.random_below(params.clients).to_string()
        } else {
            own_key.clone()
        };
        let value = tag(cli, j);
        if t.random_below(1000) < 500 {
            append(&mut ck, &key, &value, &log, cli).await?;
            if !params.random_keys {
                last.push_str(&value);
            }
            j += 1;
        } else if params.random_keys && t.random_below(1000) < 100 {
            put(&mut ck, &key, &value, &log, cli).await?;
            j += 1;
        } else {
            let got = get(&mut ck, &key, &log, cli).await?;
            // The worker is its key's only writer: a linearizable service returns its history.
            ensure!(
                params.random_keys || got == last,
                "get wrong value, key {key}, wanted:\n{}\n, got\n{}",
                abbreviate(&last),
                abbreviate(&got)
            );
        }
    }
    Ok(j)
}

/// MIT's `partitioner`: until `done`, split the servers by fair coins into two groups (either may
/// be empty) every 1000–1199 ms.
async fn partitioner(t: Tester, done: Rc<Cell<bool>>) -> TestResult {
    while !done.get() {
        let mut groups: [Vec<usize>; 2] = [Vec::new(), Vec::new()];
        for server in 0..t.servers() {
            let side = usize::from(t.fault_chance(1, 2));
            groups[side].push(server);
        }
        t.partition(&groups[0], &groups[1]);
        let hold_ms = RAFT_ELECTION_TIMEOUT_MS + t.random_below(200);
        t.sleep_ms(hold_ms).await;
    }
    Ok(())
}

/// MIT's `ShutdownServer` for every server, 1 s down, `StartServer` for every server,
/// `ConnectAll`.
async fn crash_and_restart_all(t: &Tester) {
    for server in 0..t.servers() {
        t.crash(server);
    }
    t.sleep_ms(RAFT_ELECTION_TIMEOUT_MS).await;
    for server in 0..t.servers() {
        t.restart(server);
    }
    t.connect_all();
}

/// The per-iteration size checks: with snapshots, the persisted Raft state stays within
/// [`LOG_SIZE_FACTOR`] × `maxraftstate` ("logs were not trimmed"); without, no server may hold a
/// snapshot at all.
pub fn check_sizes(t: &Tester, max_raft_state: Option<usize>) -> TestResult {
    match max_raft_state {
        Some(max) => {
            let size = t.log_size();
            ensure!(
                size <= LOG_SIZE_FACTOR * max,
                "logs were not trimmed ({size} > {LOG_SIZE_FACTOR}*{max})"
            );
        }
        None => {
            let size = t.snapshot_size();
            ensure!(size == 0, "snapshot size is {size} but should be 0");
        }
    }
    Ok(())
}

/// MIT's `GenericTest`: three iterations of concurrent clients under the chosen faults, each
/// followed by per-client checks and size checks; then the linearizability check of the whole
/// history.
pub async fn generic_test(t: Tester, params: Generic) -> TestResult {
    let log = History::new(&t);
    // The checker clerk lives through every iteration, partition and restart.
    let mut ck = make_clerk_to_all(&t);
    let checker_id = params.clients;
    for _ in 0..ITERATIONS {
        let clients_done = Rc::new(Cell::new(false));
        let partitioner_done = Rc::new(Cell::new(false));
        let workers: Vec<JoinHandle<u64>> = (0..params.clients)
            .map(|cli| {
                let body = worker(
                    t.clone(),
                    cli,
                    params,
                    log.clone(),
                    Rc::clone(&clients_done),
                );
                t.spawn(body)
            })
            .collect();
        let partitions = if params.partitions {
            // Let the clients make progress before the first partition.
            t.sleep_ms(RAFT_ELECTION_TIMEOUT_MS).await;
            Some(t.spawn(partitioner(t.clone(), Rc::clone(&partitioner_done))))
        } else {
            None
        };
        t.sleep_ms(CLIENT_PHASE_MS).await;
        clients_done.set(true);
        partitioner_done.set(true);
        if let Some(partitions) = partitions {
            partitions.await;
            t.connect_all();
            // Let a new term start, so that a request stuck at a stale minority leader returns.
            t.sleep_ms(RAFT_ELECTION_TIMEOUT_MS).await;
        }
        if params.crash {
            crash_and_restart_all(&t).await;
        }
        for (cli, handle) in (0u64..).zip(workers) {
            let Some(count) = handle.await else {
                bail!("client {cli} failed");
            };
            let key = cli.to_string();
            let value = get(&mut ck, &key, &log, checker_id).await?;
            if !params.random_keys {
                check_clnt_appends(cli, &value, count)?;
            }
        }
        check_sizes(&t, params.max_raft_state)?;
    }
    check_history(&t, &log)
}

/// MIT's `GenericTestSpeed`: [`SPEED_OPS`] sequential Appends on a reliable network must average
/// at most [`SPEED_US_PER_OP_MAX`] µs (3 per 100 ms heartbeat), all present once and in order.
pub async fn generic_test_speed(t: Tester) -> TestResult {
    let log = History::new(&t);
    let mut ck: KvClerk = make_clerk_to_all(&t);
    // Wait until a leader serves.
    get(&mut ck, "x", &log, 0).await?;
    let start = t.now();
    for i in 0..SPEED_OPS {
        append(&mut ck, "x", &tag(0, i), &log, 0).await?;
    }
    let elapsed_us = t.now().since_us(start);
    let value = get(&mut ck, "x", &log, 0).await?;
    check_clnt_appends(0, &value, SPEED_OPS)?;
    ensure!(
        elapsed_us <= SPEED_OPS * SPEED_US_PER_OP_MAX,
        "Operations completed too slowly {} µs/op > {SPEED_US_PER_OP_MAX} µs/op",
        elapsed_us / SPEED_OPS
    );
    kv_client::check_history(&t, &log)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_checks_catch_missing_duplicate_and_reordered_tags() {
        assert!(check_clnt_appends(0, "x 0 0 yx 0 1 yx 0 2 y", 3).is_ok());
        // Other clients' tags in between are fine; "x 0 1 y" does not match inside "x 0 11 y".
        assert!(check_clnt_appends(0, "x 0 0 yx 1 0 yx 0 1 y", 2).is_ok());
        let missing = check_clnt_appends(0, "x 0 0 yx 0 11 y", 2).unwrap_err();
        assert!(
            missing.message.contains("missing element x 0 1 y"),
            "{missing}"
        );
        let duplicate = check_clnt_appends(0, "x 0 0 yx 0 0 y", 1).unwrap_err();
        assert!(duplicate.message.contains("duplicate"), "{duplicate}");
        let order = check_clnt_appends(0, "x 0 1 yx 0 0 y", 2).unwrap_err();
        assert!(order.message.contains("wrong order"), "{order}");
        assert!(check_concurrent_appends("x 1 0 yx 0 0 y", &[1, 1]).is_ok());
        assert!(check_concurrent_appends("x 1 0 y", &[1, 1]).is_err());
        // Leading zeros are not the tag.
        assert!(check_clnt_appends(0, "x 0 00 y", 1).is_err());
    }

    /// The lab's version: `find` and `rfind` per tag.
    fn lab_check(clnt: u64, v: &str, count: u64) -> Result<(), String> {
        let mut last: Option<usize> = None;
        for j in 0..count {
            let wanted = tag(clnt, j);
            let Some(first) = v.find(&wanted) else {
                return Err(format!("missing {j}"));
            };
            if v.rfind(&wanted) != Some(first) {
                return Err(format!("duplicate {j}"));
            }
            if last.is_some_and(|last| first <= last) {
                return Err(format!("order {j}"));
            }
            last = Some(first);
        }
        Ok(())
    }

    proptest::proptest! {
        /// The one-pass check agrees with the lab's on values built from tags, junk and
        /// truncated tags, including which check fails first.
        #[test]
        fn one_pass_check_matches_the_labs(
            pieces in proptest::collection::vec((0u64..3, 0u64..12, 0u8..6), 0..24),
            count in 0u64..12,
        ) {
            let mut v = String::new();
            for (clnt, j, shape) in pieces {
                match shape {
                    0 => v.push_str("x "),
                    1 => v.push_str(&format!("x {clnt} 0{j} y")),
                    2 => v.push_str(&format!("x {clnt} {j}")),
                    _ => v.push_str(&tag(clnt, j)),
                }
            }
            let ours = check_clnt_appends(1, &v, count).map_err(|e| {
                ["missing", "duplicate"]
                    .into_iter()
                    .find(|kind| e.message.contains(kind))
                    .unwrap_or("order")
                    .to_string()
            });
            let lab = lab_check(1, &v, count)
                .map_err(|m| m.split(' ').next().unwrap_or("").to_string());
            proptest::prop_assert_eq!(ours, lab, "on {:?}", v);
        }
    }
}
