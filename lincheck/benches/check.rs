//! Checker time on realistic key/value histories: 1k, 10k and 100k operations over 10 and
//! 1,000 keys, from five concurrent clients whose operations mostly overlap (generated
//! deterministically from a seeded ChaCha8, see `tests/common`). Every history is
//! linearizable, so the whole search runs; each iteration checks the whole history.
//!
//! `unknown/*` adds the outcomes clients give up on (1 in 1,000 operations), which the search
//! may place anywhere after their call or leave out.

#[path = "../tests/common/mod.rs"]
mod common;

use common::{Shape, linearizable_history};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use lincheck::{Budget, CheckResult, check_kv};
use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use std::hint::black_box;
use std::time::Duration;

fn shape(operations: usize, keys: usize, unknown_per_mille: u32) -> Shape {
    Shape {
        clients: 5,
        keys,
        operations,
        unknown_per_mille,
        // Time moves on at a third of the actions, so about five operations are in flight at
        // any moment and most overlap another on their key when keys are few.
        advance_per_mille: 333,
    }
}

fn bench(c: &mut Criterion, group_name: &str, unknown_per_mille: u32) {
    let mut group = c.benchmark_group(group_name);
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    for operations in [1_000, 10_000, 100_000] {
        for keys in [10, 1_000] {
            let mut rng = ChaCha8Rng::seed_from_u64(0x11ca_c4ec);
            let history =
                linearizable_history(&mut rng, shape(operations, keys, unknown_per_mille));
            assert_eq!(check_kv(&history, Budget::DEFAULT), CheckResult::Ok);
            let id = BenchmarkId::new(format!("{operations}_ops"), format!("{keys}_keys"));
            group.bench_with_input(id, &history, |b, history| {
                b.iter(|| check_kv(black_box(history), Budget::DEFAULT));
            });
        }
    }
    group.finish();
}

fn known(c: &mut Criterion) {
    bench(c, "known", 0);
}

fn unknown(c: &mut Criterion) {
    bench(c, "unknown", 1);
}

criterion_group!(benches, known, unknown);
criterion_main!(benches);
