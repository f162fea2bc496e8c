//! Random key/value histories that are linearizable by construction, shared by the property
//! tests and the benchmark.
//!
//! Clients run against a sequential key/value map: each operation is called, takes effect at one
//! moment (its linearization point), then returns, all at non-decreasing virtual times. Several
//! clients are in flight at once, so their operations overlap. Some clients give up on an
//! operation (its return and output are unknown): it has either taken effect already, or may take
//! effect later or never, like a request still in the network. Times often repeat, to exercise
//! ties, but never in a way that reorders: an operation returns at a time `t` only if no other
//! operation was called at `t` (the checker reads a return at `t` as preceding a call at `t`).

#![allow(dead_code)]

use lincheck::{KvInput, KvOperation, KvOutput};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;

/// The shape of a generated history.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    /// Concurrent clients.
    pub clients: usize,
    /// Distinct keys.
    pub keys: usize,
    /// Operations in the history.
    pub operations: usize,
    /// Chance in 1,000 that the client of an operation gives up on it (before or after it took
    /// effect), leaving its outcome unknown.
    pub unknown_per_mille: u32,
    /// Chance in 1,000 that virtual time advances between two actions.
    pub advance_per_mille: u32,
}

/// Where one client is.
#[derive(Clone, Copy, Debug)]
enum Client {
    Idle,
    /// Waiting for operation `op`, which has taken effect if `done`; the client will give up
    /// on it at its next move if `give_up`.
    Waiting {
        op: usize,
        done: bool,
        give_up: bool,
    },
}

struct Generator<'r> {
    rng: &'r mut ChaCha8Rng,
    values: BTreeMap<String, String>,
    history: Vec<KvOperation>,
    now: u64,
    /// Operations called at `now`: none other may return at `now`.
    called_now: Vec<usize>,
    /// Operations given up on before taking effect, which may still take effect.
    ghosts: Vec<usize>,
}

impl Generator<'_> {
    fn per_mille(&mut self, chance: u32) -> bool {
        self.rng.random_range(0..1000) < chance
    }

    fn advance(&mut self, by: u64) {
        self.now += by;
        self.called_now.clear();
    }

    fn call(&mut self, client: usize, shape: &Shape) -> usize {
        let key = format!("k{}", self.rng.random_range(0..shape.keys));
        let value = format!("{client}.{} ", self.history.len());
        let input = match self.rng.random_range(0..20) {
            0..9 => KvInput::Get { key },
            9..11 => KvInput::Put { key, value },
            _ => KvInput::Append { key, value },
        };
        self.history.push(KvOperation {
            client_id: client as u64,
            input,
            output: None,
            call: self.now,
            return_: None,
        });
        self.called_now.push(self.history.len() - 1);
        self.history.len() - 1
    }

    /// Operation `op` takes effect now; its output is recorded if `known`.
    fn take_effect(&mut self, op: usize, known: bool) {
        let output = match &self.history[op].input {
            KvInput::Get { key } => KvOutput {
                value: self.values.get(key).cloned().unwrap_or_default(),
            },
            KvInput::Put { key, value } => {
                self.values.insert(key.clone(), value.clone());
                KvOutput {
                    value: String::new(),
                }
            }
            KvInput::Append { key, value } => {
                self.values.entry(key.clone()).or_default().push_str(value);
                KvOutput {
                    value: String::new(),
                }
            }
        };
        // Put and Append outputs carry nothing: record them sometimes, to show they are ignored.
        let record = known && (self.history[op].input.is_get() || self.rng.random_range(0..2) == 0);
        self.history[op].output = record.then_some(output);
    }

    fn give_back(&mut self, op: usize) {
        if self.called_now.iter().any(|&other| other != op) {
            self.advance(1);
        }
        self.history[op].return_ = Some(self.now);
    }
}

/// Small extension so the generator reads well.
trait IsGet {
    fn is_get(&self) -> bool;
}

impl IsGet for KvInput {
    fn is_get(&self) -> bool {
        matches!(self, KvInput::Get { .. })
    }
}

/// A linearizable history of the given shape.
pub fn linearizable_history(rng: &mut ChaCha8Rng, shape: Shape) -> Vec<KvOperation> {
    let mut generator = Generator {
        rng,
        values: BTreeMap::new(),
        history: Vec::with_capacity(shape.operations),
        now: 0,
        called_now: Vec::new(),
        ghosts: Vec::new(),
    };
    let mut clients = vec![Client::Idle; shape.clients.max(1)];
    loop {
        let busy = clients.iter().any(|c| matches!(c, Client::Waiting { .. }));
        if generator.history.len() >= shape.operations && !busy {
            break;
        }
        if generator.per_mille(shape.advance_per_mille) {
            let by = generator.rng.random_range(1..20);
            generator.advance(by);
        }
        if !generator.ghosts.is_empty() && generator.per_mille(50) {
            let which = generator.rng.random_range(0..generator.ghosts.len());
            let ghost = generator.ghosts.swap_remove(which);
            generator.take_effect(ghost, false);
        }
        let client = generator.rng.random_range(0..clients.len());
        clients[client] = match clients[client] {
            Client::Idle if generator.history.len() < shape.operations => Client::Waiting {
                op: generator.call(client, &shape),
                done: false,
                give_up: generator.per_mille(shape.unknown_per_mille),
            },
            Client::Idle => Client::Idle,
            Client::Waiting {
                op,
                done,
                give_up: true,
            } if done || generator.rng.random_range(0..2) == 0 => {
                // The client gives up; a pending operation may still take effect later.
                if !done && generator.rng.random_range(0..2) == 0 {
                    generator.ghosts.push(op);
                }
                generator.history[op].output = None;
                Client::Idle
            }
            Client::Waiting {
                op,
                done: false,
                give_up,
            } => {
                generator.take_effect(op, true);
                Client::Waiting {
                    op,
                    done: true,
                    give_up,
                }
            }
            Client::Waiting { op, done: true, .. } => {
                generator.give_back(op);
                Client::Idle
            }
        };
    }
    generator.history
}
