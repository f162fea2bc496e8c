//! The append check shared by the crash test and the madsim tests.
//!
//! Every client appends its own tokens `c<client>.<n>;` to its own key, one at a time, so the
//! final value of each key must hold every acknowledged token exactly once and in order (an
//! unacknowledged one — the client gave up — may be there or not, at most once). That is the
//! labs' append check: it catches lost, duplicated and reordered writes.

#![allow(dead_code)]

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
        let parsed = t
            .strip_prefix('c')
            .and_then(|t| t.split_once('.'))
            .filter(|(client, _)| *client == id.to_string())
            .and_then(|(_, n)| n.parse::<u64>().ok());
        match parsed {
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
