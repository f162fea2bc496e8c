//! The check of a whole history: partitions, the operations worth searching, verdicts and
//! explanations.

use crate::explain::{Explanation, IllegalPartition, OperationSummary};
use crate::model::{Model, Operation};
use crate::search::{Failure, Outcome, Steps, search};
use crate::{Budget, CheckResult};
use std::collections::BTreeMap;

/// The most steps spent re-searching an illegal partition without the lookahead, for a longer
/// prefix to explain with (taken from the check's budget).
const EXPLANATION_STEPS_MAX: u64 = 1_000_000;

/// Checks whether `operations` are linearizable with respect to `model`.
///
/// Each partition is searched on its own, smallest first (ties by partition order), all sharing
/// `budget`. The result is [`CheckResult::Illegal`] if any partition is proven illegal (its
/// explanation lists every such partition), else [`CheckResult::Unknown`] if the budget ran out,
/// else [`CheckResult::Ok`].
pub fn check<M: Model>(
    model: &M,
    operations: &[Operation<M::Input, M::Output>],
    budget: Budget,
) -> CheckResult {
    let mut partitions: BTreeMap<M::Partition, Vec<usize>> = BTreeMap::new();
    for (index, op) in operations.iter().enumerate() {
        partitions
            .entry(model.partition(&op.input))
            .or_default()
            .push(index);
    }
    let mut partitions: Vec<(M::Partition, Vec<usize>)> = partitions.into_iter().collect();
    // Stable: equal sizes stay in partition order.
    partitions.sort_by_key(|(_, indices)| indices.len());

    let mut steps = Steps::new(budget.max_steps);
    let mut illegal = Vec::new();
    let mut undecided = Vec::new();
    for (partition, indices) in partitions {
        let total = indices.len();
        let indices = searched(model, operations, indices);
        let ops: Vec<&Operation<M::Input, M::Output>> =
            indices.iter().map(|&i| &operations[i]).collect();
        match search_partition(model, &ops, &mut steps) {
            Outcome::Legal => {}
            Outcome::OutOfSteps => undecided.push(partition.to_string()),
            Outcome::Illegal(failure) => {
                let summary = |id: usize| summarize(model, operations, indices[id]);
                illegal.push(IllegalPartition {
                    partition: partition.to_string(),
                    operations: total,
                    prefix: failure.prefix.iter().map(|&id| summary(id)).collect(),
                    state: model.describe_state(&failure.state),
                    unplaceable: summary(failure.blocker),
                    pending: failure.pending.iter().map(|&id| summary(id)).collect(),
                });
            }
        }
    }
    if !illegal.is_empty() {
        CheckResult::Illegal(Explanation {
            partitions: illegal,
            undecided,
        })
    } else if !undecided.is_empty() {
        CheckResult::Unknown
    } else {
        CheckResult::Ok
    }
}

/// The operations of one partition (`indices` into `operations`) worth searching, numbered in
/// call order (which keeps the search's linearized sets compact). Left out are the operations
/// that constrain nothing: reads whose output is unknown, and unknown outcomes the model can
/// tell no order needs. (Whether one is omittable depends only on recorded outputs, which are
/// never omitted, so the order of these tests is free.)
fn searched<M: Model>(
    model: &M,
    operations: &[Operation<M::Input, M::Output>],
    indices: Vec<usize>,
) -> Vec<usize> {
    let all: Vec<&Operation<M::Input, M::Output>> =
        indices.iter().map(|&i| &operations[i]).collect();
    let mut indices: Vec<usize> = indices
        .into_iter()
        .filter(|&i| {
            let op = &operations[i];
            let unconstrained = op.output.is_none() && model.is_read_only(&op.input);
            let omittable = op.return_.is_none() && model.can_omit_unknown(op, &all);
            !unconstrained && !omittable
        })
        .collect();
    indices.sort_by_key(|&i| (operations[i].call, i));
    indices
}

/// Searches one partition with the lookahead; if it is illegal, searches it again without, for
/// a longer prefix to explain with.
fn search_partition<M: Model>(
    model: &M,
    ops: &[&Operation<M::Input, M::Output>],
    steps: &mut Steps,
) -> Outcome<M::State> {
    let pruned: Failure<M::State> = match search(model, ops, true, steps) {
        Outcome::Illegal(failure) => failure,
        decided_or_not => return decided_or_not,
    };
    // The lookahead abandons a doomed state early, so its dead ends can be short; the plain
    // search reaches the true longest prefix, if it can in a bounded number of steps.
    let mut explaining = steps.split(EXPLANATION_STEPS_MAX);
    let plain = search(model, ops, false, &mut explaining);
    steps.join(explaining);
    // The lookahead only abandons states no order can complete: a plain search that finds an
    // order would prove it wrong.
    debug_assert!(
        !matches!(plain, Outcome::Legal),
        "the lookahead called a linearizable partition illegal"
    );
    match plain {
        Outcome::Illegal(plain) if plain.prefix.len() > pruned.prefix.len() => {
            Outcome::Illegal(plain)
        }
        _ => Outcome::Illegal(pruned),
    }
}

/// `operations[index]` described for an explanation.
fn summarize<M: Model>(
    model: &M,
    operations: &[Operation<M::Input, M::Output>],
    index: usize,
) -> OperationSummary {
    let op = &operations[index];
    OperationSummary {
        index,
        client_id: op.client_id,
        call: op.call,
        return_: op.return_,
        description: model.describe_operation(&op.input, op.output.as_ref()),
    }
}
