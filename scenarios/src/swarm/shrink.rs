//! Shrinking a failing swarm run to a small schedule that fails the same way.
//!
//! A change to the schedule is kept only if the run still fails with the same [`Signature`]
//! (the same failure kind and, for a safety violation, the same checker). The passes, repeated
//! until none makes progress or the budget runs out:
//!
//! 1. drop every action of one kind at once (all proposals, all pauses, …);
//! 2. delta debugging: drop chunks of actions, halving the chunk size down to single actions;
//! 3. simplify the actions left: a mid-step crash becomes a crash between steps, outages,
//!    partitions and pauses get shorter, network fault knobs go to zero;
//! 4. end the fault phase right after the last action, and ask the liveness phase for fewer
//!    commands.
//!
//! The seed stays the same: the simulator's own randomness (message delays, election timeouts)
//! is part of the reproduction, and the minimal schedule replays exactly under that seed.

use super::params::NetworkFaults;
use super::schedule::{Action, RELIABLE, Restart, Schedule};
use serde::{Deserialize, Serialize};
use sim::{CrashPoint, Failure, RunOptions, Scenario};

/// What a failure is, for deciding that a smaller run "fails the same way".
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    /// `check`, `safety` or `liveness`.
    pub kind: String,
    /// The checker that fired, for checker violations (`committed_immutable`, …).
    pub checker: Option<String>,
}

impl Signature {
    /// The signature of `failure`.
    #[must_use]
    pub fn of(failure: &Failure) -> Signature {
        let checker = failure
            .message
            .strip_prefix("checker ")
            .and_then(|rest| rest.split(':').next())
            .map(str::to_string);
        Signature {
            kind: failure.kind.name().to_string(),
            checker,
        }
    }
}

impl std::fmt::Display for Signature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.checker {
            Some(checker) => write!(f, "{} ({checker})", self.kind),
            None => f.write_str(&self.kind),
        }
    }
}

/// The result of shrinking.
#[derive(Clone, Debug)]
pub struct Shrunk {
    /// The smallest failing schedule found.
    pub schedule: Schedule,
    /// Its failure (same signature as the original's).
    pub failure: Failure,
    /// Runs spent.
    pub runs: u64,
    /// Events before shrinking.
    pub events_before: usize,
    /// Events after.
    pub events_after: usize,
}

/// A shrink's progress, reported after every kept change.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    /// Runs so far.
    pub runs: u64,
    /// Events in the current schedule.
    pub events: usize,
}

/// Why shrinking could not start.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ShrinkError {
    /// The original schedule does not fail.
    #[error("the run passes: nothing to shrink")]
    Passes,
}

/// The budget of a shrink.
pub struct Budget<'a> {
    /// The most runs to spend.
    pub runs_max: u64,
    /// Asked before every run; `true` stops the shrink (the CLI's wall-clock limit).
    pub stop: &'a mut dyn FnMut() -> bool,
    /// Told after every kept change.
    pub progress: &'a mut dyn FnMut(Progress),
}

struct Shrinker<'a, 'b> {
    scenario: &'a Scenario,
    seed: u64,
    target: Signature,
    runs: u64,
    budget: Budget<'b>,
    best: Schedule,
    failure: Failure,
}

impl Shrinker<'_, '_> {
    fn exhausted(&mut self) -> bool {
        self.runs >= self.budget.runs_max || (self.budget.stop)()
    }

    /// Runs `candidate`; keeps it if it fails the same way. True if kept.
    fn try_keep(&mut self, candidate: Schedule) -> bool {
        if self.exhausted() {
            return false;
        }
        self.runs += 1;
        let options = RunOptions::default();
        let report = super::run_schedule(self.scenario, self.seed, &candidate, &options);
        match report.failure {
            Some(failure) if Signature::of(&failure) == self.target => {
                self.best = candidate;
                self.failure = failure;
                (self.budget.progress)(Progress {
                    runs: self.runs,
                    events: self.best.events.len(),
                });
                true
            }
            Some(_) | None => false,
        }
    }

    fn without(&self, from: usize, to: usize) -> Schedule {
        let mut candidate = self.best.clone();
        candidate.events.drain(from..to.min(candidate.events.len()));
        candidate
    }

    /// Pass 1: every action of one kind at once.
    fn drop_kinds(&mut self) -> bool {
        let mut changed = false;
        let mut kinds: Vec<&'static str> =
            self.best.events.iter().map(|e| e.action.name()).collect();
        kinds.sort_unstable();
        kinds.dedup();
        for kind in kinds {
            let mut candidate = self.best.clone();
            candidate.events.retain(|e| e.action.name() != kind);
            if candidate.events.len() < self.best.events.len() && self.try_keep(candidate) {
                changed = true;
            }
        }
        changed
    }

    /// Pass 2: chunks of actions, from half the schedule down to single actions.
    fn drop_chunks(&mut self) -> bool {
        let mut changed = false;
        let mut chunk = self.best.events.len().div_ceil(2);
        while chunk >= 1 && !self.exhausted() {
            let mut start = 0;
            let mut kept_any = false;
            while start < self.best.events.len() && !self.exhausted() {
                let candidate = self.without(start, start + chunk);
                if self.try_keep(candidate) {
                    kept_any = true;
                } else {
                    start += chunk;
                }
            }
            changed |= kept_any;
            if !kept_any {
                chunk /= 2;
            }
        }
        changed
    }

    /// Pass 3: simpler versions of each action.
    fn simplify(&mut self) -> bool {
        let mut changed = false;
        let mut position = 0;
        while position < self.best.events.len() && !self.exhausted() {
            let mut simplified = false;
            for action in simpler(&self.best.events[position].action) {
                let mut candidate = self.best.clone();
                candidate.events[position].action = action;
                if self.try_keep(candidate) {
                    simplified = true;
                    break;
                }
            }
            if simplified {
                changed = true; // Try the new action's simplifications too.
            } else {
                position += 1;
            }
        }
        changed
    }

    /// Pass 4: a shorter fault phase and a lighter liveness phase.
    fn shorten(&mut self) -> bool {
        let mut changed = false;
        let last_ms = self.best.events.last().map_or(0, |e| e.at_ms);
        if last_ms + 1 < self.best.fault_phase_ms {
            let mut candidate = self.best.clone();
            candidate.fault_phase_ms = last_ms + 1;
            changed |= self.try_keep(candidate);
        }
        if self.best.liveness.commands > 1 {
            let mut candidate = self.best.clone();
            candidate.liveness.commands = 1;
            changed |= self.try_keep(candidate);
        }
        if self.best.liveness.restart != Restart::All {
            let mut candidate = self.best.clone();
            candidate.liveness.restart = Restart::All;
            changed |= self.try_keep(candidate);
        }
        changed
    }
}

/// Simpler versions of `action`, most aggressive first.
fn simpler(action: &Action) -> Vec<Action> {
    let mut out = Vec::new();
    match action {
        Action::Crash {
            node,
            point,
            restart_after_ms,
        } => {
            if *point != CrashPoint::BetweenSteps {
                out.push(Action::Crash {
                    node: *node,
                    point: CrashPoint::BetweenSteps,
                    restart_after_ms: *restart_after_ms,
                });
            }
            if let Some(ms) = restart_after_ms.filter(|&ms| ms > 1) {
                out.push(Action::Crash {
                    node: *node,
                    point: *point,
                    restart_after_ms: Some(ms / 2),
                });
            }
        }
        Action::Partition { cut, heal_after_ms } if *heal_after_ms > 1 => {
            out.push(Action::Partition {
                cut: cut.clone(),
                heal_after_ms: heal_after_ms / 2,
            });
        }
        Action::Pause { node, for_ms } if *for_ms > 1 => out.push(Action::Pause {
            node: *node,
            for_ms: for_ms / 2,
        }),
        Action::Network(faults) => {
            let mut push = |changed: NetworkFaults| {
                if changed != *faults {
                    out.push(Action::Network(changed));
                }
            };
            push(RELIABLE);
            push(NetworkFaults {
                drop_per_mille: 0,
                ..*faults
            });
            push(NetworkFaults {
                dup_per_mille: 0,
                ..*faults
            });
            push(NetworkFaults {
                delay_ms_min: 0,
                delay_ms_max: 0,
                ..*faults
            });
            push(NetworkFaults {
                reorder_per_mille: 0,
                reorder_ms_max: 0,
                ..*faults
            });
        }
        Action::Skew { node, per_mille } if *per_mille != 0 => out.push(Action::Skew {
            node: *node,
            per_mille: per_mille / 2,
        }),
        Action::Partition { .. }
        | Action::Pause { .. }
        | Action::Skew { .. }
        | Action::Snapshot { .. }
        | Action::Propose { .. }
        | Action::Corrupt { .. } => {}
    }
    out
}

/// Shrinks `schedule`, which fails when run as `scenario` under `seed`, to a smaller schedule
/// that fails with the same signature.
pub fn shrink(
    scenario: &Scenario,
    seed: u64,
    schedule: Schedule,
    budget: Budget<'_>,
) -> Result<Shrunk, ShrinkError> {
    let report = super::run_schedule(scenario, seed, &schedule, &RunOptions::default());
    let failure = report.failure.ok_or(ShrinkError::Passes)?;
    let events_before = schedule.events.len();
    let mut shrinker = Shrinker {
        scenario,
        seed,
        target: Signature::of(&failure),
        runs: 1,
        budget,
        best: schedule,
        failure,
    };
    loop {
        let mut changed = shrinker.drop_kinds();
        changed |= shrinker.drop_chunks();
        changed |= shrinker.simplify();
        changed |= shrinker.shorten();
        if !changed || shrinker.exhausted() {
            break;
        }
    }
    Ok(Shrunk {
        events_after: shrinker.best.events.len(),
        schedule: shrinker.best,
        failure: shrinker.failure,
        runs: shrinker.runs,
        events_before,
    })
}

/// A shrunk (or any) schedule as a file: what `sim shrink --out` writes and `sim replay
/// --schedule` reads.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleFile {
    /// The scenario it runs on.
    pub scenario: String,
    /// The root seed it runs under.
    pub seed: u64,
    /// How it fails, if it was shrunk from a failure.
    pub signature: Option<Signature>,
    /// Events before shrinking.
    pub events_before: Option<usize>,
    /// The schedule.
    pub schedule: Schedule,
}

impl ScheduleFile {
    /// Parses a schedule file.
    pub fn parse(text: &str) -> Result<ScheduleFile, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// The file's text (pretty JSON).
    #[must_use]
    pub fn to_text(&self) -> String {
        // Plain data with string keys: serde_json cannot fail on it.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}
