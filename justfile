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

# Runs one scenario on one seed.
run SCENARIO SEED *ARGS:
    cargo run --release --bin sim -- run {{SCENARIO}} --seed {{SEED}} {{ARGS}}

# Replays a failure exactly, printing its trace.
replay SCENARIO SEED *ARGS:
    cargo run --release --bin sim -- replay {{SCENARIO}} {{SEED}} --trace {{ARGS}}
