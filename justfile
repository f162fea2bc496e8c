# Everyday recipes. `just --list` shows them all.

# The README's test command: every test, every scenario on seeds.txt plus fresh seeds.
test:
    cargo test --workspace

# Lints as CI would: formatting and clippy with warnings denied.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# Formats the code.
fmt:
    cargo fmt --all

# Criterion benchmarks of the core and the linearizability checker, then the simulator benchmark.
bench:
    cargo bench -p raft --bench core
    cargo bench -p lincheck --bench check
    cargo run --release --bin sim -- bench

# Lists the scenarios.
list:
    cargo run --release --bin sim -- list

# A fuzz campaign over all scenarios (pass extra flags, e.g. `just fuzz --time 10m --jobs 2`).
fuzz *ARGS:
    cargo run --release --bin sim -- fuzz {{ARGS}}

# A swarm campaign: randomized fault mixes, crash points, a liveness phase (e.g. `just swarm --time 10m`).
swarm *ARGS:
    cargo run --release --bin sim -- fuzz swarm {{ARGS}}

# The canary: every swarm run with a corrupted durable log; exits 0 only if every one is caught.
canary *ARGS:
    cargo run --release --bin sim -- fuzz --canary --seeds 60 {{ARGS}}

# Shrinks a failing swarm run to a minimal schedule (written to a JSON file it names).
shrink SCENARIO SEED *ARGS:
    cargo run --release --bin sim -- shrink {{SCENARIO}} {{SEED}} {{ARGS}}

# Replays a schedule file written by `just shrink`, printing its trace.
replay-schedule SCENARIO FILE *ARGS:
    cargo run --release --bin sim -- replay {{SCENARIO}} --schedule {{FILE}} --trace {{ARGS}}

# Runs one scenario on one seed.
run SCENARIO SEED *ARGS:
    cargo run --release --bin sim -- run {{SCENARIO}} --seed {{SEED}} {{ARGS}}

# Replays a failure exactly, printing its trace.
replay SCENARIO SEED *ARGS:
    cargo run --release --bin sim -- replay {{SCENARIO}} {{SEED}} --trace {{ARGS}}

# Raft on ports 7001-7003, clients on 8001-8003. Prints each node's pid; Ctrl-C stops them all.
# Starts a 3-node key/value cluster on 127.0.0.1 with data under ./data/.
cluster:
    #!/usr/bin/env bash
    set -euo pipefail
    cargo build --release -p node --bins
    target_dir="$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
    trap 'kill $(jobs -p) 2>/dev/null || true; wait' EXIT INT TERM
    for id in 1 2 3; do
        "$target_dir/release/raft-kv-server" --id "$id" \
            --peers 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003 \
            --client-peers 1=127.0.0.1:8001,2=127.0.0.1:8002,3=127.0.0.1:8003 \
            --client-addr "127.0.0.1:800$id" --data-dir "data/n$id" &
        echo "node $id: pid $!"
    done
    wait

# Runs one node of the `just cluster` cluster in the foreground (to restart a killed one).
node ID:
    cargo run --release -p node --bin raft-kv-server -- --id {{ID}} \
        --peers 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003 \
        --client-peers 1=127.0.0.1:8001,2=127.0.0.1:8002,3=127.0.0.1:8003 \
        --client-addr 127.0.0.1:800{{ID}} --data-dir data/n{{ID}}

# The key/value client against the `just cluster` cluster, e.g. `just kv put greeting hello`.
[positional-arguments]
kv *ARGS:
    @cargo run --release -q -p node --bin raft-kv -- "$@"

# 3 server processes under load are SIGKILLed and restarted in a loop; the clients' history must
# be linearizable and every acknowledged append there exactly once. CRASH_TEST_KILLS=N for more kills.
# The real crash test of the key/value servers.
crash-test:
    cargo test --release -p node --test crash -- --ignored --nocapture

# Coverage-guided fuzzing (not in CI): bytes decode into a fault schedule (`schedule`) or a
# message (`message`). Needs `cargo install cargo-fuzz`; `-s none` works on stable Rust.
fuzz-cargo TARGET="schedule" *ARGS:
    cd fuzz && cargo fuzz run -s none {{TARGET}} {{ARGS}}

# The runtime on madsim, on SEEDS seeds: 3- and 5-node clusters with clerks under kills, power
# failures of simulated disks, restarts and partitions in simulated time, and whole-cluster power
# failures; MADSIM_TEST_SEED=<decimal> sets the first seed, a failure prints its seed. Builds into target/madsim: `--cfg madsim` changes every crate.
madsim SEEDS="20":
    #!/usr/bin/env bash
    set -euo pipefail
    target_dir="$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
    RUSTFLAGS="--cfg madsim" CARGO_TARGET_DIR="$target_dir/madsim" MADSIM_TEST_NUM="{{SEEDS}}" \
        cargo test --profile madsim --no-default-features -p node --test madsim -- --nocapture
