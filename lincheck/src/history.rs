//! Histories as JSON, the format `sim run --history FILE` writes and `sim lincheck FILE` reads:
//!
//! ```json
//! {"model": "kv", "operations": [
//!   {"client_id": 0, "input": {"op": "put", "key": "k", "value": "v"}, "output": null, "call": 12, "return": 30},
//!   {"client_id": 1, "input": {"op": "get", "key": "k"}, "output": {"value": "v"}, "call": 31, "return": null}
//! ]}
//! ```
//!
//! - `model`: `"kv"` (MIT's key/value semantics, [`crate::KvModel`]).
//! - `client_id`, `call`, `return`: non-negative integers (times in virtual µs); `return: null`
//!   (or absent) means the outcome is unknown. `return` must not be before `call`.
//! - `input.op`: `"get"`, `"put"` or `"append"`; `input.key` a string; `input.value` a string,
//!   required for put and append, optional and ignored for get.
//! - `output`: `{"value": "v"}` or `null` (or absent). Only a get's output is compared; `null` means
//!   not recorded.
//! - Any other field is an error, so that a misspelt one is not silently ignored.
//!
//! Errors name the JSON path of the problem (`operations[3].input.op: unknown op "del"`), or the
//! line and column of a syntax error. No input makes the reader panic.

use crate::model::Operation;
use crate::models::kv::{KvInput, KvOperation, KvOutput};
use serde::Serialize;
use serde_json::{Map, Value};

/// A history read from JSON, by model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum History {
    /// A key/value history (`"model": "kv"`).
    Kv(Vec<KvOperation>),
}

/// Why a JSON history could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HistoryError {
    /// The text is not JSON.
    #[error("line {line}, column {column}: {message}")]
    Syntax {
        /// 1-based line of the problem.
        line: usize,
        /// 1-based column of the problem.
        column: usize,
        /// What is wrong there.
        message: String,
    },
    /// The text is JSON but not a history.
    #[error("{path}: {message}")]
    Invalid {
        /// Where the problem is, for example `operations[3].input.op` (`$` is the whole
        /// document).
        path: String,
        /// What is wrong there.
        message: String,
    },
}

impl HistoryError {
    fn invalid(path: &str, message: impl Into<String>) -> HistoryError {
        HistoryError::Invalid {
            path: path.to_owned(),
            message: message.into(),
        }
    }
}

/// Reads a JSON history.
pub fn from_json(text: &str) -> Result<History, HistoryError> {
    let document: Value = serde_json::from_str(text).map_err(|error| {
        let full = error.to_string();
        // serde_json appends " at line L column C"; the error carries both separately.
        let message = match full.rfind(" at line ") {
            Some(at) => full[..at].to_owned(),
            None => full,
        };
        HistoryError::Syntax {
            line: error.line(),
            column: error.column(),
            message,
        }
    })?;
    let root = object(&document, "")?;
    only_fields(root, "", &["model", "operations"])?;
    let model = string(required(root, "", "model")?, "model")?;
    if model != "kv" {
        return Err(HistoryError::invalid(
            "model",
            format!("unknown model {model:?} (known: \"kv\")"),
        ));
    }
    let operations = match required(root, "", "operations")? {
        Value::Array(items) => items,
        other => {
            return Err(HistoryError::invalid(
                "operations",
                format!("expected an array, found {}", kind(other)),
            ));
        }
    };
    let operations = operations
        .iter()
        .enumerate()
        .map(|(index, item)| kv_operation(item, &format!("operations[{index}]")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(History::Kv(operations))
}

/// Writes a history as JSON, one operation per line. [`from_json`] reads it back unchanged.
pub fn to_json(history: &History) -> String {
    let (model, operations) = match history {
        History::Kv(operations) => ("kv", operations),
    };
    let mut text = format!("{{\"model\": {model:?}, \"operations\": [");
    for (position, op) in operations.iter().enumerate() {
        text.push_str(if position == 0 { "\n  " } else { ",\n  " });
        let (name, key, value) = match &op.input {
            KvInput::Get { key } => ("get", key, None),
            KvInput::Put { key, value } => ("put", key, Some(value.as_str())),
            KvInput::Append { key, value } => ("append", key, Some(value.as_str())),
        };
        let line = OperationJson {
            client_id: op.client_id,
            input: InputJson {
                op: name,
                key,
                value,
            },
            output: op.output.as_ref().map(|output| OutputJson {
                value: &output.value,
            }),
            call: op.call,
            return_: op.return_,
        };
        // Strings, integers and options of them always serialize.
        let line = serde_json::to_string(&line).unwrap_or_default();
        text.push_str(&line);
    }
    if !operations.is_empty() {
        text.push('\n');
    }
    text.push_str("]}\n");
    text
}

#[derive(Serialize)]
struct OperationJson<'a> {
    client_id: u64,
    input: InputJson<'a>,
    output: Option<OutputJson<'a>>,
    call: u64,
    #[serde(rename = "return")]
    return_: Option<u64>,
}

#[derive(Serialize)]
struct InputJson<'a> {
    op: &'static str,
    key: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<&'a str>,
}

#[derive(Serialize)]
struct OutputJson<'a> {
    value: &'a str,
}

fn kv_operation(item: &Value, path: &str) -> Result<KvOperation, HistoryError> {
    let fields = object(item, path)?;
    only_fields(
        fields,
        path,
        &["client_id", "input", "output", "call", "return"],
    )?;
    let client_id = integer(
        required(fields, path, "client_id")?,
        &join(path, "client_id"),
    )?;
    let input = kv_input(required(fields, path, "input")?, &join(path, "input"))?;
    let output = match fields.get("output") {
        None | Some(Value::Null) => None,
        Some(output) => Some(kv_output(output, &join(path, "output"))?),
    };
    let call = integer(required(fields, path, "call")?, &join(path, "call"))?;
    let return_ = match fields.get("return") {
        None | Some(Value::Null) => None,
        Some(ret) => Some(integer(ret, &join(path, "return"))?),
    };
    if let Some(ret) = return_
        && ret < call
    {
        return Err(HistoryError::invalid(
            path,
            format!("return {ret} before call {call}"),
        ));
    }
    Ok(Operation {
        client_id,
        input,
        output,
        call,
        return_,
    })
}

fn kv_input(value: &Value, path: &str) -> Result<KvInput, HistoryError> {
    let fields = object(value, path)?;
    only_fields(fields, path, &["op", "key", "value"])?;
    let op = string(required(fields, path, "op")?, &join(path, "op"))?;
    let key = string(required(fields, path, "key")?, &join(path, "key"))?.to_owned();
    let value_path = join(path, "value");
    match op {
        "get" => {
            // Ignored, but a value of the wrong kind is still a sign of a broken writer.
            if let Some(value) = fields.get("value")
                && !value.is_null()
            {
                string(value, &value_path)?;
            }
            Ok(KvInput::Get { key })
        }
        "put" | "append" => {
            let value = string(required(fields, path, "value")?, &value_path)?.to_owned();
            Ok(if op == "put" {
                KvInput::Put { key, value }
            } else {
                KvInput::Append { key, value }
            })
        }
        other => Err(HistoryError::invalid(
            &join(path, "op"),
            format!("unknown op {other:?} (expected \"get\", \"put\" or \"append\")"),
        )),
    }
}

fn kv_output(value: &Value, path: &str) -> Result<KvOutput, HistoryError> {
    let fields = object(value, path)?;
    only_fields(fields, path, &["value"])?;
    let value = string(required(fields, path, "value")?, &join(path, "value"))?.to_owned();
    Ok(KvOutput { value })
}

/// `path.field`, or `field` at the root.
fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_owned()
    } else {
        format!("{path}.{field}")
    }
}

fn object<'a>(value: &'a Value, path: &str) -> Result<&'a Map<String, Value>, HistoryError> {
    match value {
        Value::Object(fields) => Ok(fields),
        other => Err(HistoryError::invalid(
            if path.is_empty() { "$" } else { path },
            format!("expected an object, found {}", kind(other)),
        )),
    }
}

fn only_fields(
    fields: &Map<String, Value>,
    path: &str,
    known: &[&str],
) -> Result<(), HistoryError> {
    match fields.keys().find(|name| !known.contains(&name.as_str())) {
        Some(name) => Err(HistoryError::invalid(
            &join(path, name),
            format!("unknown field (expected one of: {})", known.join(", ")),
        )),
        None => Ok(()),
    }
}

fn required<'a>(
    fields: &'a Map<String, Value>,
    path: &str,
    field: &str,
) -> Result<&'a Value, HistoryError> {
    fields
        .get(field)
        .ok_or_else(|| HistoryError::invalid(&join(path, field), "missing"))
}

fn string<'a>(value: &'a Value, path: &str) -> Result<&'a str, HistoryError> {
    match value {
        Value::String(text) => Ok(text),
        other => Err(HistoryError::invalid(
            path,
            format!("expected a string, found {}", kind(other)),
        )),
    }
}

fn integer(value: &Value, path: &str) -> Result<u64, HistoryError> {
    match value.as_u64() {
        Some(number) => Ok(number),
        None => Err(HistoryError::invalid(
            path,
            format!("expected a non-negative integer, found {}", kind(value)),
        )),
    }
}

/// What kind of JSON value this is, with the value itself when short.
fn kind(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(flag) => format!("{flag}"),
        Value::Number(number) => format!("{number}"),
        Value::String(text) if text.chars().count() <= 32 => format!("the string {text:?}"),
        Value::String(_) => "a string".to_owned(),
        Value::Array(_) => "an array".to_owned(),
        Value::Object(_) => "an object".to_owned(),
    }
}
