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

# Criterion benchmarks of the core, then the simulator benchmark.
bench:
    cargo bench -p raft --bench core
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

# Coverage-guided fuzzing (not in CI): bytes decode into a fault schedule (`schedule`) or a
# message (`message`). Needs `cargo install cargo-fuzz`; `-s none` works on stable Rust.
fuzz-cargo TARGET="schedule" *ARGS:
    cd fuzz && cargo fuzz run -s none {{TARGET}} {{ARGS}}
