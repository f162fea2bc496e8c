//! `sim lincheck FILE`: the verdict and its exit code for each kind of history file.

use std::path::PathBuf;
use std::process::Command;

/// Writes `text` to a file unique to this test and returns its path.
fn history_file(name: &str, text: &str) -> PathBuf {
    let path =
        std::env::temp_dir().join(format!("sim-lincheck-{}-{name}.json", std::process::id()));
    std::fs::write(&path, text).expect("write the history file");
    path
}

/// Runs `sim lincheck` on `text` and returns (exit code, stdout, stderr).
fn lincheck(name: &str, text: &str, extra: &[&str]) -> (i32, String, String) {
    let path = history_file(name, text);
    let output = Command::new(env!("CARGO_BIN_EXE_sim"))
        .arg("lincheck")
        .arg(&path)
        .args(extra)
        .output()
        .expect("run sim");
    let _ = std::fs::remove_file(&path);
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn op(client: u64, input: &str, output: &str, call: u64, ret: &str) -> String {
    format!(
        r#"{{"client_id": {client}, "input": {input}, "output": {output}, "call": {call}, "return": {ret}}}"#
    )
}

fn history(ops: &[String]) -> String {
    format!(r#"{{"model": "kv", "operations": [{}]}}"#, ops.join(","))
}

const PUT_X: &str = r#"{"op": "put", "key": "k", "value": "x"}"#;
const GET: &str = r#"{"op": "get", "key": "k"}"#;

#[test]
fn a_linearizable_history_exits_0() {
    let text = history(&[
        op(0, PUT_X, "null", 0, "10"),
        op(1, GET, r#"{"value": "x"}"#, 20, "30"),
    ]);
    let (code, stdout, _) = lincheck("ok", &text, &[]);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("linearizable"), "{stdout}");
}

#[test]
fn a_stale_read_exits_1_with_the_operation_that_cannot_be_placed() {
    let text = history(&[
        op(0, PUT_X, "null", 0, "10"),
        op(1, GET, r#"{"value": ""}"#, 20, "30"),
    ]);
    let (code, stdout, _) = lincheck("stale", &text, &[]);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("not linearizable"), "{stdout}");
    assert!(stdout.contains(r#"key "k""#), "{stdout}");
    assert!(stdout.contains(r#"get("k") -> """#), "{stdout}");
}

#[test]
fn a_malformed_history_exits_2_naming_the_json_path() {
    let text = history(&[op(0, r#"{"op": "del", "key": "k"}"#, "null", 0, "10")]);
    let (code, _, stderr) = lincheck("malformed", &text, &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("operations[0].input.op"), "{stderr}");
}

#[test]
fn a_spent_budget_exits_3() {
    let ops: Vec<String> = (0..20)
        .map(|i| op(i, PUT_X, "null", 0, "100"))
        .chain([op(99, GET, r#"{"value": "x"}"#, 200, "300")])
        .collect();
    let (code, stdout, _) = lincheck("budget", &history(&ops), &["--max-steps", "1"]);
    assert_eq!(code, 3, "{stdout}");
    assert!(stdout.contains("unknown"), "{stdout}");
}
