//! The key/value service in the simulator: the [`ServiceSpec`] that hosts a
//! [`services::kv::KvStore`] on every node, a [`Transport`] that carries a
//! [`services::clerk::Clerk`]'s calls over the tester's client RPCs, and a [`History`] of every
//! clerk operation for the linearizability check (`sim run … --history FILE` writes it).

use serde::Serialize;
use services::clerk::{CallError, Clerk, Transport};
use services::kv::{KvStore, Op, Reply};
use sim::service::Typed;
use sim::{ClientId, RpcError, Service, ServiceSpec, TestError, TestResult, Tester};
use std::cell::RefCell;
use std::rc::Rc;

/// How long a clerk waits after every server failed once, before the next round: a cluster
/// without a leader (an election is under way) is not asked again at once.
pub const CLERK_PAUSE_MS: u64 = 50;

fn make_kv() -> Box<dyn Service> {
    Box::new(Typed(KvStore::new()))
}

/// The key/value store on every node; `max_raft_state` is MIT's `maxraftstate` (`None` for −1:
/// never snapshot).
#[must_use]
pub const fn kv_spec(max_raft_state: Option<usize>) -> ServiceSpec {
    ServiceSpec {
        name: "kv",
        make: make_kv,
        max_raft_state,
    }
}

/// A clerk's way to the servers: the tester's client calls over the simulated network.
///
/// Like labrpc's `makeClient`, the clerk sees the servers in a shuffled order (its server `k` is
/// not cluster server `k`), so it has to find the leader.
#[derive(Debug)]
pub struct SimTransport {
    t: Tester,
    client: ClientId,
    order: Vec<usize>,
}

impl SimTransport {
    /// A transport for a new network client whose links to `servers` are enabled.
    #[must_use]
    pub fn new(t: &Tester, servers: &[usize]) -> SimTransport {
        let client = t.make_client(servers);
        let mut order: Vec<usize> = (0..t.servers()).collect();
        // Fisher–Yates with the workload stream.
        for i in (1..order.len()).rev() {
            let j = usize::try_from(t.random_below(i as u64 + 1)).unwrap_or(0);
            order.swap(i, j);
        }
        SimTransport {
            t: t.clone(),
            client,
            order,
        }
    }

    /// The network client (for [`Tester::connect_client`]).
    #[must_use]
    pub fn client(&self) -> ClientId {
        self.client
    }
}

impl Transport for SimTransport {
    fn servers(&self) -> usize {
        self.order.len()
    }

    async fn call(&mut self, server: usize, request: Vec<u8>) -> Result<Vec<u8>, CallError> {
        let Some(&target) = self.order.get(server) else {
            return Err(CallError::Unreachable);
        };
        self.t
            .call(self.client, target, request)
            .await
            .map_err(|e| match e {
                RpcError::Unreachable => CallError::Unreachable,
                RpcError::WrongLeader => CallError::WrongLeader,
                RpcError::Timeout => CallError::Timeout,
            })
    }

    async fn pause(&mut self) {
        self.t.sleep_ms(CLERK_PAUSE_MS).await;
    }

    fn now_us(&self) -> u64 {
        self.t.now().as_us()
    }
}

/// A clerk in the simulator.
pub type KvClerk = Clerk<SimTransport>;

/// labrpc `makeClient(to)` + `MakeClerk`: a clerk with a fresh random id whose links to
/// `servers` are enabled.
#[must_use]
pub fn make_clerk(t: &Tester, servers: &[usize]) -> KvClerk {
    let transport = SimTransport::new(t, servers);
    let id = u64::try_from(t.random_value()).unwrap_or(0);
    Clerk::new(transport, id)
}

/// A clerk that can reach every server.
#[must_use]
pub fn make_clerk_to_all(t: &Tester) -> KvClerk {
    let all: Vec<usize> = (0..t.servers()).collect();
    make_clerk(t, &all)
}

/// An operation's input, as the history's JSON spells it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HistoryInput {
    /// `get`, `put` or `append` (or `delete`, which the MIT model does not know).
    pub op: &'static str,
    /// The key.
    pub key: String,
    /// The value written (empty for `get`).
    pub value: String,
}

/// An operation's output: the value read (empty for `put` and `append`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HistoryOutput {
    /// The value.
    pub value: String,
}

/// One clerk operation: who, what, what came back, and when (virtual µs).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HistoryOp {
    /// The worker's index (only for reading the history).
    pub client_id: u64,
    /// What was asked.
    pub input: HistoryInput,
    /// What came back; `None` when the outcome is unknown.
    pub output: Option<HistoryOutput>,
    /// When the clerk was called.
    pub call: u64,
    /// When it returned; `None` when the outcome is unknown (it never returned).
    #[serde(rename = "return")]
    pub return_: Option<u64>,
}

/// The op log of a run, shared by every client (MIT's `OpLog`). An operation is recorded when it
/// is called and completed when it returns; one that never returns stays unknown.
#[derive(Clone, Debug)]
pub struct History {
    t: Tester,
    ops: Rc<RefCell<Vec<HistoryOp>>>,
}

impl History {
    /// An empty log.
    #[must_use]
    pub fn new(t: &Tester) -> History {
        History {
            t: t.clone(),
            ops: Rc::new(RefCell::new(Vec::new())),
        }
    }

    /// Records the call of `op` by `client_id` now; returns its position for
    /// [`History::complete`].
    pub fn begin(&self, client_id: u64, op: &Op) -> usize {
        let input = match op {
            Op::Get { key } => HistoryInput {
                op: "get",
                key: key.clone(),
                value: String::new(),
            },
            Op::Put { key, value } => HistoryInput {
                op: "put",
                key: key.clone(),
                value: value.clone(),
            },
            Op::Append { key, value } => HistoryInput {
                op: "append",
                key: key.clone(),
                value: value.clone(),
            },
            // The MIT model has no delete (no MIT scenario issues one): a checker refuses it.
            Op::Delete { key } => HistoryInput {
                op: "delete",
                key: key.clone(),
                value: String::new(),
            },
        };
        let mut ops = self.ops.borrow_mut();
        ops.push(HistoryOp {
            client_id,
            input,
            output: None,
            call: self.t.now().as_us(),
            return_: None,
        });
        ops.len() - 1
    }

    /// Records that the operation at `position` returned `value` now.
    pub fn complete(&self, position: usize, value: String) {
        let now = self.t.now().as_us();
        if let Some(op) = self.ops.borrow_mut().get_mut(position) {
            op.output = Some(HistoryOutput { value });
            op.return_ = Some(now);
        }
    }

    /// Number of operations recorded.
    #[must_use]
    pub fn len(&self) -> usize {
        self.ops.borrow().len()
    }

    /// True when nothing was recorded.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.ops.borrow().is_empty()
    }

    /// A copy of the operations.
    #[must_use]
    pub fn operations(&self) -> Vec<HistoryOp> {
        self.ops.borrow().clone()
    }

    /// The log as `sim lincheck` reads it: `{"model": "kv", "operations": [...]}`.
    ///
    /// Written by hand rather than through serde: a history holds every value every Get
    /// returned, hundreds of megabytes in the many-client scenarios, and almost none of it needs
    /// escaping.
    #[must_use]
    pub fn to_json(&self) -> String {
        let ops = self.ops.borrow();
        let text: usize = ops
            .iter()
            .map(|op| {
                let output = op.output.as_ref().map_or(0, |o| o.value.len());
                op.input.key.len() + op.input.value.len() + output + 128
            })
            .sum();
        let mut out = String::with_capacity(text + 64);
        out.push_str(r#"{"model":"kv","operations":["#);
        for (i, op) in ops.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            write_op(&mut out, op);
        }
        out.push_str("]}");
        out
    }
}

/// Appends one operation as JSON.
fn write_op(out: &mut String, op: &HistoryOp) {
    use std::fmt::Write;
    // Writing to a String cannot fail.
    let _ = write!(out, r#"{{"client_id":{},"input":{{"op":"#, op.client_id);
    push_json_str(out, op.input.op);
    out.push_str(r#","key":"#);
    push_json_str(out, &op.input.key);
    out.push_str(r#","value":"#);
    push_json_str(out, &op.input.value);
    out.push_str(r#"},"output":"#);
    match &op.output {
        Some(output) => {
            out.push_str(r#"{"value":"#);
            push_json_str(out, &output.value);
            out.push('}');
        }
        None => out.push_str("null"),
    }
    let _ = write!(out, r#","call":{},"return":"#, op.call);
    match op.return_ {
        Some(at) => {
            let _ = write!(out, "{at}");
        }
        None => out.push_str("null"),
    }
    out.push('}');
}

/// Appends `text` as a JSON string: as is between quotes when nothing needs escaping (no quote,
/// backslash or control character), through serde_json otherwise.
fn push_json_str(out: &mut String, text: &str) {
    let plain = text.as_bytes().chunks(64).all(|chunk| {
        !chunk.iter().fold(false, |bad, &b| {
            bad | (b < 0x20) | (b == b'"') | (b == b'\\')
        })
    });
    if plain {
        out.push('"');
        out.push_str(text);
        out.push('"');
    } else {
        out.push_str(&serde_json::Value::from(text).to_string());
    }
}

fn clerk_failed(e: &services::clerk::ClerkError) -> TestError {
    TestError::check(format!("clerk: {e}"))
}

/// Runs `op` through `ck`, recording it in `log` as `client_id`'s (MIT's `Get`/`Put`/`Append`
/// wrappers). Returns the reply.
pub async fn run_logged(
    ck: &mut KvClerk,
    op: Op,
    log: &History,
    client_id: u64,
) -> TestResult<Reply> {
    let position = log.begin(client_id, &op);
    let is_get = matches!(op, Op::Get { .. });
    let reply = ck.execute(op).await.map_err(|e| clerk_failed(&e))?;
    let value = if is_get {
        reply.value.clone()
    } else {
        String::new()
    };
    log.complete(position, value);
    Ok(reply)
}

/// A logged `Get(key)`.
pub async fn get(ck: &mut KvClerk, key: &str, log: &History, client_id: u64) -> TestResult<String> {
    let op = Op::Get { key: key.into() };
    Ok(run_logged(ck, op, log, client_id).await?.value)
}

/// A logged `Put(key, value)`.
pub async fn put(
    ck: &mut KvClerk,
    key: &str,
    value: &str,
    log: &History,
    client_id: u64,
) -> TestResult {
    let op = Op::Put {
        key: key.into(),
        value: value.into(),
    };
    run_logged(ck, op, log, client_id).await.map(drop)
}

/// A logged `Append(key, value)`.
pub async fn append(
    ck: &mut KvClerk,
    key: &str,
    value: &str,
    log: &History,
    client_id: u64,
) -> TestResult {
    let op = Op::Append {
        key: key.into(),
        value: value.into(),
    };
    run_logged(ck, op, log, client_id).await.map(drop)
}

/// MIT's `check(ck, key, value)`: a logged Get that must return `value`.
pub async fn check(
    ck: &mut KvClerk,
    key: &str,
    value: &str,
    log: &History,
    client_id: u64,
) -> TestResult {
    let got = get(ck, key, log, client_id).await?;
    if got != value {
        return Err(TestError::check(format!(
            "Get({key}): expected:\n{}\nreceived:\n{}",
            abbreviate(value),
            abbreviate(&got)
        )));
    }
    Ok(())
}

/// A long value cut to its length and both ends, for failure messages.
#[must_use]
pub fn abbreviate(value: &str) -> String {
    const KEEP: usize = 60;
    if value.len() <= 2 * KEEP {
        return format!("{value:?}");
    }
    let head: String = value.chars().take(KEEP).collect();
    let tail: String = {
        let chars: Vec<char> = value.chars().collect();
        chars[chars.len().saturating_sub(KEEP)..].iter().collect()
    };
    format!("{head:?} … {tail:?} ({} bytes)", value.len())
}

/// Publishes the history for `sim run --history` without checking it. The JSON is built only
/// when the run keeps it ([`sim::RunOptions::record_history`]).
pub fn publish_history(t: &Tester, log: &History) {
    t.publish_history(|| log.to_json());
}

/// Publishes the history (for `sim run --history`) and checks that it is linearizable, with the
/// MIT tester's verdicts: not linearizable fails the scenario; a check that runs out of its
/// budget ([`lincheck::Budget::DEFAULT`], porcupine's 1 s timeout in steps) passes with a note
/// on stderr.
///
/// The check runs on the recorded operations rather than on the published JSON: the two hold the
/// same operations (a test below checks that both give one verdict), and parsing back hundreds of
/// megabytes of JSON would cost more than the check itself.
pub fn check_history(t: &Tester, log: &History) -> TestResult {
    publish_history(t, log);
    // The log is done with: move its strings to the checker rather than copy them.
    let operations = to_lincheck(log.take_operations())?;
    match lincheck::check_kv(&operations, lincheck::Budget::DEFAULT) {
        lincheck::CheckResult::Ok => Ok(()),
        lincheck::CheckResult::Illegal(explanation) => Err(TestError::check(format!(
            "history is not linearizable: {explanation}"
        ))),
        lincheck::CheckResult::Unknown => {
            eprintln!(
                "info: the linearizability check of {} operations ran out of budget; \
                 assuming the history is ok",
                operations.len()
            );
            Ok(())
        }
    }
}

impl History {
    /// Takes every operation out of the log, leaving it empty (an operation still running
    /// when its log was taken is not recorded when it returns).
    pub fn take_operations(&self) -> Vec<HistoryOp> {
        std::mem::take(&mut *self.ops.borrow_mut())
    }
}

/// The operations as the checker's key/value model takes them. A delete (which the model does
/// not know) is an error.
pub fn to_lincheck(ops: Vec<HistoryOp>) -> TestResult<Vec<lincheck::KvOperation>> {
    let mut converted = Vec::with_capacity(ops.len());
    for (position, op) in ops.into_iter().enumerate() {
        let HistoryInput {
            op: kind,
            key,
            value,
        } = op.input;
        let input = match kind {
            "get" => lincheck::KvInput::Get { key },
            "put" => lincheck::KvInput::Put { key, value },
            "append" => lincheck::KvInput::Append { key, value },
            other => {
                return Err(TestError::check(format!(
                    "operation {position}: the key/value model has no {other:?}"
                )));
            }
        };
        converted.push(lincheck::KvOperation {
            client_id: op.client_id,
            input,
            output: op.output.map(|output| lincheck::KvOutput {
                value: output.value,
            }),
            call: op.call,
            return_: op.return_,
        });
    }
    Ok(converted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sim::tester::AppKind;
    use sim::{Lab, RunOptions, Scenario, ScenarioFuture, Setup};

    fn three_ops(t: Tester) -> ScenarioFuture {
        Box::pin(async move {
            let log = History::new(&t);
            let mut ck = make_clerk_to_all(&t);
            put(&mut ck, "k", "a", &log, 4).await?;
            append(&mut ck, "k", "b", &log, 4).await?;
            check(&mut ck, "k", "ab", &log, 4).await?;
            // An operation that never returns stays unknown.
            log.begin(5, &Op::Get { key: "k".into() });
            check_history(&t, &log)
        })
    }

    /// What `sim run --history` asks for.
    fn keep_history() -> RunOptions {
        RunOptions {
            record_history: true,
            ..RunOptions::default()
        }
    }

    #[test]
    fn the_history_is_the_json_sim_lincheck_reads() {
        let report = sim::run(&history_scenario(three_ops), 3, &keep_history());
        assert!(report.passed(), "{:?}", report.failure);
        let json = report.history.expect("the scenario published its history");
        let verdict = lincheck::check_json(&json, lincheck::Budget::DEFAULT);
        assert!(
            matches!(verdict, Ok(lincheck::CheckResult::Ok)),
            "{verdict:?}"
        );
        let value: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
        assert_eq!(value["model"], "kv");
        let ops = value["operations"].as_array().expect("an array");
        assert_eq!(ops.len(), 4);
        let inputs: Vec<(&str, &str, &str)> = ops
            .iter()
            .map(|op| {
                let input = &op["input"];
                let field = |name: &str| input[name].as_str().unwrap_or("?");
                (field("op"), field("key"), field("value"))
            })
            .collect();
        assert_eq!(
            inputs,
            [
                ("put", "k", "a"),
                ("append", "k", "b"),
                ("get", "k", ""),
                ("get", "k", "")
            ]
        );
        assert_eq!(ops[0]["output"], serde_json::json!({"value": ""}));
        assert_eq!(ops[2]["output"], serde_json::json!({"value": "ab"}));
        assert_eq!(ops[0]["client_id"], 4);
        for op in &ops[..3] {
            let (call, ret) = (op["call"].as_u64(), op["return"].as_u64());
            assert!(call.is_some() && ret.is_some() && call <= ret, "{op}");
        }
        assert!(ops[1]["call"].as_u64() >= ops[0]["return"].as_u64());
        assert!(ops[3]["output"].is_null() && ops[3]["return"].is_null());
        let keys: Vec<&String> = ops[0].as_object().map(|o| o.keys().collect()).unwrap();
        assert_eq!(keys, ["call", "client_id", "input", "output", "return"]);
    }

    /// A stale read recorded by hand: the put of "a" returned before the get began.
    fn stale_read(t: Tester) -> ScenarioFuture {
        Box::pin(async move {
            let log = History::new(&t);
            let put = log.begin(
                0,
                &Op::Put {
                    key: "k".into(),
                    value: "a".into(),
                },
            );
            t.sleep_ms(1).await;
            log.complete(put, String::new());
            t.sleep_ms(1).await;
            let get = log.begin(1, &Op::Get { key: "k".into() });
            t.sleep_ms(1).await;
            log.complete(get, String::new());
            check_history(&t, &log)
        })
    }

    fn history_scenario(run: sim::ScenarioFn) -> Scenario {
        Scenario {
            name: "t/kv/history",
            lab: Lab::Mit,
            part: "kv",
            summary: "history format",
            setup: Setup {
                app: AppKind::Service(kv_spec(None)),
                ..Setup::mit(3)
            },
            run,
        }
    }

    #[test]
    fn a_non_linearizable_history_fails_the_scenario_and_the_json_agrees() {
        let report = sim::run(&history_scenario(stale_read), 1, &keep_history());
        let failure = report.failure.expect("a stale read is not linearizable");
        assert!(
            failure.message.contains("history is not linearizable"),
            "{failure}"
        );
        let json = report.history.expect("published before the check");
        let verdict = lincheck::check_json(&json, lincheck::Budget::DEFAULT);
        assert!(
            matches!(verdict, Ok(lincheck::CheckResult::Illegal(_))),
            "{verdict:?}"
        );
    }

    /// Unasked, no JSON is kept, and the check (which reads the recorded operations, not the
    /// JSON) judges the run just the same, on the same trace.
    #[test]
    fn without_record_history_no_json_is_kept_and_the_verdicts_stand() {
        let options = RunOptions::default();
        assert!(!options.record_history, "off unless asked");
        let passing = sim::run(&history_scenario(three_ops), 3, &options);
        assert!(passing.passed(), "{:?}", passing.failure);
        assert!(passing.history.is_none(), "kept without being asked");
        let kept = sim::run(&history_scenario(three_ops), 3, &keep_history());
        assert_eq!(
            passing.trace_hash, kept.trace_hash,
            "keeping it changes the run"
        );
        let failing = sim::run(&history_scenario(stale_read), 1, &options);
        let failure = failing.failure.expect("a stale read is still caught");
        assert!(
            failure.message.contains("history is not linearizable"),
            "{failure}"
        );
        assert!(failing.history.is_none(), "kept without being asked");
    }

    #[test]
    fn operations_with_any_text_are_valid_json() {
        let nasty = "q\"b\\n\nt\tc\u{1}é€";
        let op = HistoryOp {
            client_id: 7,
            input: HistoryInput {
                op: "append",
                key: nasty.into(),
                value: "x 0 1 y".into(),
            },
            output: Some(HistoryOutput {
                value: nasty.into(),
            }),
            call: 12,
            return_: None,
        };
        let mut text = String::new();
        write_op(&mut text, &op);
        let parsed: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        assert_eq!(parsed, serde_json::to_value(&op).expect("serializes"));
        assert_eq!(parsed["input"]["key"], nasty);
        assert!(parsed["return"].is_null());
    }

    #[test]
    fn conversion_for_the_checker_keeps_everything_and_refuses_deletes() {
        let op = |kind: &'static str, output: Option<&str>| HistoryOp {
            client_id: 2,
            input: HistoryInput {
                op: kind,
                key: "k".into(),
                value: "v".into(),
            },
            output: output.map(|value| HistoryOutput {
                value: value.into(),
            }),
            call: 5,
            return_: output.map(|_| 9),
        };
        let converted = to_lincheck(vec![op("append", Some("")), op("get", None)]).unwrap();
        assert_eq!(
            converted[0].input,
            lincheck::KvInput::Append {
                key: "k".into(),
                value: "v".into()
            }
        );
        assert_eq!((converted[0].call, converted[0].return_), (5, Some(9)));
        assert_eq!(
            converted[1].input,
            lincheck::KvInput::Get { key: "k".into() }
        );
        assert!(converted[1].output.is_none() && converted[1].return_.is_none());
        let refused = to_lincheck(vec![op("put", Some("")), op("delete", Some(""))]);
        assert!(refused.unwrap_err().message.contains("operation 1"));
    }

    #[test]
    fn abbreviate_keeps_short_values_and_cuts_long_ones() {
        assert_eq!(abbreviate("abc"), "\"abc\"");
        let long = "x".repeat(500);
        let cut = abbreviate(&long);
        assert!(cut.contains("500 bytes"), "{cut}");
        assert!(cut.len() < 200, "{cut}");
    }
}
