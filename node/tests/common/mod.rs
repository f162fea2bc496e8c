//! The workload and the checks shared by the crash test and the madsim tests.
//!
//! Every client appends its own tokens `c<client>.<n>;` to its own key, one at a time, so the
//! final value of each key must hold every acknowledged token exactly once and in order (an
//! unacknowledged one — the client gave up — may be there or not, at most once). That is the
//! labs' append check: it catches lost, duplicated and reordered writes.
//!
//! Between its appends a client reads any client's key and writes shared keys, and every
//! operation goes into one history ([`history::Recorder`]) that must be linearizable: that
//! catches what a final value cannot show, such as a read of a value already overwritten.

#![allow(dead_code)]

pub mod history;

use history::Recorder;
use services::clerk::{Clerk, ClerkError, Transport};
use services::kv::Op;
use std::sync::atomic::{AtomicBool, Ordering};

/// Keys every client writes (put or append) and reads, besides its own.
pub const SHARED_KEYS: [&str; 2] = ["s0", "s1"];

/// What one client did: tokens acknowledged, and tokens whose outcome is unknown.
#[derive(Clone, Debug, Default)]
pub struct History {
    /// Appends the servers acknowledged.
    pub acked: Vec<u64>,
    /// Appends the client gave up on (they may or may not have taken effect).
    pub unknown: Vec<u64>,
}

/// The key client `id` appends to.
pub fn key(id: u64) -> String {
    format!("k{id}")
}

/// The `n`th token of client `id`.
pub fn token(id: u64, n: u64) -> String {
    format!("c{id}.{n};")
}

/// The number of client `id`'s token `c<id>.<n>` (without its `;`).
pub fn token_number(id: u64, token: &str) -> Option<u64> {
    token
        .strip_prefix('c')
        .and_then(|t| t.split_once('.'))
        .filter(|(client, _)| *client == id.to_string())
        .and_then(|(_, n)| n.parse::<u64>().ok())
}

/// The `n`th operation of client `id` among `clients`, chosen by `roll` (a random number): half
/// are appends to its own key (the append check's), a third reads of any client's key or a
/// shared key, the rest puts and appends on the shared keys.
pub fn choose_op(id: u64, clients: u64, n: u64, roll: u64) -> Op {
    let shared = SHARED_KEYS.len() as u64;
    let (kind, which) = (roll % 100, roll / 100);
    let shared_key = SHARED_KEYS[(which % shared) as usize].to_owned();
    match kind {
        0..50 => Op::Append {
            key: key(id),
            value: token(id, n),
        },
        50..85 => {
            let target = which % (clients + shared);
            let key = if target < clients {
                key(target)
            } else {
                SHARED_KEYS[(target - clients) as usize].to_owned()
            };
            Op::Get { key }
        }
        85..92 => Op::Put {
            key: shared_key,
            value: token(id, n),
        },
        _ => Op::Append {
            key: shared_key,
            value: token(id, n),
        },
    }
}

/// Client `id` of `clients` runs [`choose_op`]'s workload until `stop`, each operation with
/// `op_timeout_us` to complete, recording everything. `random` rolls the dice. A clerk error
/// other than giving up (a stale or undecodable reply) is a server bug and panics.
pub async fn run_client<T: Transport>(
    id: u64,
    clients: u64,
    clerk: &mut Clerk<T>,
    recorder: &Recorder,
    stop: &AtomicBool,
    mut random: impl FnMut() -> u64,
    op_timeout_us: u64,
) {
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let op = choose_op(id, clients, n, random());
        let deadline = clerk.transport().now_us().saturating_add(op_timeout_us);
        match recorder.execute(clerk, id, op, deadline).await {
            Ok(_) | Err(ClerkError::GaveUp { .. }) => {}
            Err(error) => panic!("client {id}: {error}"),
        }
    }
}

/// What [`check_run`] found in a run that passed.
#[derive(Clone, Copy, Debug)]
pub struct Checked {
    /// Operations in the history.
    pub operations: usize,
    /// Operations whose client gave up.
    pub gave_up: usize,
    /// Own-key appends acknowledged (each present once, in order).
    pub acked: usize,
    /// Own-key appends whose client gave up.
    pub unknown: usize,
    /// The linearizability check's verdict.
    pub verdict: history::Verdict,
}

/// Every check of a run, panicking with what is wrong and `run` (the seed): the append check
/// of each client's key against `final_values` (indexed by client), the linearizability of
/// `operations`, and that the checker rejects them with a stale read of client 0's key planted.
pub fn check_run(
    operations: &[lincheck::KvOperation],
    final_values: &[String],
    run: &str,
) -> Checked {
    let (mut acked, mut unknown) = (0, 0);
    for (id, value) in final_values.iter().enumerate() {
        let appended = history::appends(operations, id as u64);
        if let Err(error) = verify(id as u64, value, &appended) {
            panic!("{run}: {error}");
        }
        acked += appended.acked.len();
        unknown += appended.unknown.len();
    }
    let verdict = history::check_linearizable(operations, run);
    let stale = history::with_stale_read(operations, 0)
        .unwrap_or_else(|| panic!("{run}: no read of client 0's key saw its appends"));
    assert!(
        history::verify_linearizable(&stale).is_err(),
        "{run}: the checker accepted the history with a stale read planted"
    );
    Checked {
        operations: operations.len(),
        gave_up: operations.iter().filter(|op| op.return_.is_none()).count(),
        acked,
        unknown,
        verdict,
    }
}

/// Checks the append invariant for client `id`'s key, whose final value is `value`; panics with
/// what is wrong.
pub fn check(id: u64, value: &str, history: &History) {
    if let Err(error) = verify(id, value, history) {
        panic!("{error}");
    }
}

/// The append invariant for client `id`'s key: `Err` says what is wrong.
pub fn verify(id: u64, value: &str, history: &History) -> Result<(), String> {
    let mut tokens = Vec::new();
    for t in value.split(';').filter(|t| !t.is_empty()) {
        match token_number(id, t) {
            Some(n) => tokens.push(n),
            None => return Err(format!("k{id}: a token that is not this client's: {t:?}")),
        }
    }
    if !tokens.windows(2).all(|w| w[0] < w[1]) {
        return Err(format!(
            "k{id}: tokens duplicated or out of order: {tokens:?}"
        ));
    }
    if let Some(n) = history.acked.iter().find(|n| !tokens.contains(n)) {
        return Err(format!("k{id}: acknowledged append {n} was lost"));
    }
    if let Some(n) = tokens
        .iter()
        .find(|n| !history.acked.contains(n) && !history.unknown.contains(n))
    {
        return Err(format!("k{id}: append {n} was never issued"));
    }
    Ok(())
}

#[test]
fn the_check_fails_on_lost_duplicated_and_foreign_appends() {
    let history = History {
        acked: vec![1, 2],
        unknown: vec![3],
    };
    assert_eq!(verify(0, "c0.1;c0.2;c0.3;", &history), Ok(()));
    assert_eq!(verify(0, "c0.1;c0.2;", &history), Ok(()));
    let bad = [
        "c0.1;",
        "c0.1;c0.1;c0.2;",
        "c0.2;c0.1;",
        "c0.1;c0.2;c0.4;",
        "c1.1;c0.1;c0.2;",
    ];
    for value in bad {
        assert!(
            verify(0, value, &history).is_err(),
            "{value:?} passed the check"
        );
    }
}
