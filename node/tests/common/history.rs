//! Every clerk operation of a test, recorded and checked with the linearizability checker.
//!
//! A [`Recorder`] wraps each clerk call: the call time is read before the clerk sends anything
//! and the return time after the reply is in, on one clock shared by every client (real time in
//! the crash test, simulated time under madsim, in nanoseconds). An operation therefore takes
//! effect inside its recorded interval, and one that returned no later than another was called
//! really did take effect first: the history the checker sees is the one the clients lived.

use super::{History, key, token_number};
use lincheck::history::to_json;
use lincheck::{Budget, CheckResult, KvInput, KvOperation, KvOutput};
use services::clerk::{Clerk, ClerkError, Transport};
use services::kv::{Op, Reply};
use std::sync::Mutex;
use tokio::time::Instant;

/// The operations of every client, in the order they returned (or gave up).
#[derive(Debug)]
pub struct Recorder {
    start: Instant,
    operations: Mutex<Vec<KvOperation>>,
}

impl Recorder {
    /// An empty history whose clock starts now.
    pub fn new() -> Recorder {
        Recorder {
            start: Instant::now(),
            operations: Mutex::new(Vec::new()),
        }
    }

    /// Nanoseconds since the recorder was made.
    pub fn now_ns(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Runs `op` with `clerk` until `deadline_us` (the clerk's clock) and records it for client
    /// `client_id`: with its output (a Get's value) if it returned, as an operation of unknown
    /// outcome (`return: null`) if the clerk gave up or failed.
    pub async fn execute<T: Transport>(
        &self,
        clerk: &mut Clerk<T>,
        client_id: u64,
        op: Op,
        deadline_us: u64,
    ) -> Result<Reply, ClerkError> {
        let input = kv_input(&op);
        let call = self.now_ns();
        let result = clerk.execute_by(op, deadline_us).await;
        let returned = self.now_ns();
        let (output, return_) = match &result {
            Ok(reply) => {
                let output = matches!(input, KvInput::Get { .. }).then(|| KvOutput {
                    value: reply.value.clone(),
                });
                (output, Some(returned))
            }
            Err(_) => (None, None),
        };
        let operation = KvOperation {
            client_id,
            input,
            output,
            call,
            return_,
        };
        self.operations
            .lock()
            .expect("no client panics while recording")
            .push(operation);
        result
    }

    /// A copy of the operations recorded so far.
    pub fn operations(&self) -> Vec<KvOperation> {
        self.operations
            .lock()
            .expect("no client panics while recording")
            .clone()
    }
}

/// The checker's form of a clerk operation. The tests never delete (the checker's key/value
/// model has no delete), so a delete here is a bug in the test.
pub fn kv_input(op: &Op) -> KvInput {
    match op {
        Op::Get { key } => KvInput::Get { key: key.clone() },
        Op::Put { key, value } => KvInput::Put {
            key: key.clone(),
            value: value.clone(),
        },
        Op::Append { key, value } => KvInput::Append {
            key: key.clone(),
            value: value.clone(),
        },
        Op::Delete { .. } => panic!("the tests' workload never deletes"),
    }
}

/// Client `id`'s appends to its own key, as the append check takes them.
pub fn appends(operations: &[KvOperation], id: u64) -> History {
    let own = key(id);
    let mut history = History::default();
    for op in operations.iter().filter(|op| op.client_id == id) {
        let KvInput::Append { key, value } = &op.input else {
            continue;
        };
        if *key != own {
            continue;
        }
        let n = token_number(id, value.trim_end_matches(';'))
            .unwrap_or_else(|| panic!("client {id} appended {value:?}, not one of its tokens"));
        match op.return_ {
            Some(_) => history.acked.push(n),
            None => history.unknown.push(n),
        }
    }
    history
}

/// What a check that did not fail decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The history is linearizable.
    Linearizable,
    /// The checker's step budget ran out first; as in MIT's tester this passes, with a note.
    Undecided,
}

/// Checks `operations` for linearizability: `Err` holds the checker's explanation.
pub fn verify_linearizable(operations: &[KvOperation]) -> Result<Verdict, String> {
    match lincheck::check_kv(operations, Budget::DEFAULT) {
        CheckResult::Ok => Ok(Verdict::Linearizable),
        CheckResult::Unknown => Ok(Verdict::Undecided),
        CheckResult::Illegal(explanation) => Err(explanation.to_string()),
    }
}

/// Checks `operations` for linearizability and panics if they are not, naming `run` (which
/// says how to reproduce it: the seed) and a file holding the history for `sim lincheck`.
pub fn check_linearizable(operations: &[KvOperation], run: &str) -> Verdict {
    match verify_linearizable(operations) {
        Ok(Verdict::Undecided) => {
            eprintln!(
                "{run}: the linearizability check of {} operations ran out of budget; \
                 assuming the history is ok",
                operations.len()
            );
            Verdict::Undecided
        }
        Ok(verdict) => verdict,
        Err(explanation) => {
            let name: String = run
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                .collect();
            let path = std::env::temp_dir().join(format!("node-history-{name}.json"));
            let history = lincheck::History::Kv(operations.to_vec());
            let saved = match std::fs::write(&path, to_json(&history)) {
                Ok(()) => format!(
                    "history in {} (`cargo run --release --bin sim -- lincheck {}` checks it \
                     again)",
                    path.display(),
                    path.display()
                ),
                Err(error) => format!("the history could not be saved: {error}"),
            };
            panic!("{run}: the clients' history is {explanation}\n{saved}");
        }
    }
}

/// `operations` with a stale read planted: the last read of client `id`'s own key that saw an
/// append which had returned before the read was called now sees the value from before that
/// append. `None` if no read qualifies. A checker that accepts the result checks nothing.
pub fn with_stale_read(operations: &[KvOperation], id: u64) -> Option<Vec<KvOperation>> {
    let own = key(id);
    let acked_appends: Vec<(&str, u64)> = operations
        .iter()
        .filter_map(|op| match (&op.input, op.return_) {
            (KvInput::Append { key, value }, Some(ret)) if *key == own => {
                Some((value.as_str(), ret))
            }
            _ => None,
        })
        .collect();
    let (position, cut) = operations.iter().enumerate().rev().find_map(|(i, op)| {
        let KvInput::Get { key } = &op.input else {
            return None;
        };
        let seen = &op.output.as_ref()?.value;
        if *key != own || op.return_.is_none() {
            return None;
        }
        // The latest append that returned before this read was called: the read must see it.
        let (token, _) = acked_appends
            .iter()
            .filter(|(_, ret)| *ret <= op.call)
            .max_by_key(|(_, ret)| *ret)?;
        Some((i, seen.find(token)?))
    })?;
    let mut doctored = operations.to_vec();
    if let Some(output) = doctored[position].output.as_mut() {
        output.value.truncate(cut);
    }
    Some(doctored)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(client_id: u64, input: KvInput, read: Option<&str>, call: u64, ret: u64) -> KvOperation {
        KvOperation {
            client_id,
            input,
            output: read.map(|value| KvOutput {
                value: value.into(),
            }),
            call,
            return_: Some(ret),
        }
    }

    fn append(client_id: u64, n: u64, call: u64, ret: u64) -> KvOperation {
        let input = KvInput::Append {
            key: key(client_id),
            value: super::super::token(client_id, n),
        };
        op(client_id, input, None, call, ret)
    }

    fn get(client_id: u64, of: u64, read: &str, call: u64, ret: u64) -> KvOperation {
        op(
            client_id,
            KvInput::Get { key: key(of) },
            Some(read),
            call,
            ret,
        )
    }

    #[test]
    fn a_stale_read_fails_the_check_and_a_concurrent_one_does_not() {
        let history = vec![
            append(0, 1, 0, 10),
            append(0, 2, 10, 20),
            get(1, 0, "c0.1;c0.2;", 30, 40),
        ];
        assert_eq!(verify_linearizable(&history), Ok(Verdict::Linearizable));
        let stale = with_stale_read(&history, 0).expect("the read saw an acknowledged append");
        assert_eq!(stale[2].output.as_ref().unwrap().value, "c0.1;");
        let explanation = verify_linearizable(&stale).unwrap_err();
        assert!(explanation.contains("key \"k0\""), "{explanation}");
        assert!(
            explanation.contains("get(\"k0\") -> \"c0.1;\""),
            "{explanation}"
        );

        // The same read while the second append was still in flight may miss it.
        let mut concurrent = stale.clone();
        concurrent[1].return_ = Some(35);
        assert_eq!(verify_linearizable(&concurrent), Ok(Verdict::Linearizable));
    }

    #[test]
    fn an_illegal_history_panics_with_the_run_the_explanation_and_the_saved_history() {
        let history = vec![append(0, 1, 0, 10), get(1, 0, "", 20, 30)];
        let panic = std::panic::catch_unwind(|| check_linearizable(&history, "seed 7 (unit test)"))
            .expect_err("a stale read must fail the check");
        let message = panic
            .downcast_ref::<String>()
            .expect("the panic carries a formatted message");
        assert!(
            message.starts_with("seed 7 (unit test): the clients' history is not linearizable"),
            "{message}"
        );
        let path = std::env::temp_dir().join("node-history-seed-7--unit-test-.json");
        let saved = std::fs::read_to_string(&path).expect("the history is saved");
        std::fs::remove_file(&path).expect("the saved history can be removed");
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert_eq!(
            lincheck::history::from_json(&saved),
            Ok(lincheck::History::Kv(history))
        );
    }

    #[test]
    fn appends_are_read_back_for_the_append_check() {
        let mut history = vec![
            append(0, 1, 0, 10),
            append(1, 1, 0, 10),
            get(0, 1, "c1.1;", 20, 30),
            append(0, 3, 40, 50),
        ];
        history[3].return_ = None;
        let own = appends(&history, 0);
        assert_eq!(own.acked, vec![1]);
        assert_eq!(own.unknown, vec![3]);
    }
}
