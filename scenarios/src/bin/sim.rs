//! `sim`: list, run, replay, fuzz and shrink the scenarios; benchmark the simulator.
//!
//! Exit codes: 0 pass, 1 a scenario check failed, 2 bad usage or input, 3 a safety invariant was
//! violated, 4 no progress within the budget (liveness).

use clap::{Args, Parser, Subcommand};
use scenarios::cli::args::{Shard, close_names, parse_duration, parse_shard};
use scenarios::cli::fuzz::{Budget, Campaign, Summary, run_campaign};
use scenarios::cli::junit::junit_xml;
use scenarios::cli::report::{Failure, RunResult, replay_command};
use scenarios::registry;
use scenarios::seeds::parse_seed;
use scenarios::swarm;
use scenarios::swarm::Schedule;
use scenarios::swarm::shrink::{Budget as ShrinkBudget, Progress, ScheduleFile, shrink};
use sim::{RunOptions, RunReport, Scenario};
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// `println!` that ignores a closed stdout (`sim replay … --trace | head`), instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

#[derive(Parser)]
#[command(
    name = "sim",
    version,
    about = "Deterministic simulation of a Raft cluster: the MIT 6.5840 and SJTU lab tests as seeded scenarios",
    after_help = "Exit codes: 0 pass, 1 check failed, 2 bad usage, 3 safety violated, 4 liveness."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the scenarios with their lab, part and summary.
    List {
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
        /// Run each scenario on seeds 1..=N (release build!) and print a Markdown table with the
        /// median virtual and wall time per run (the README's table).
        #[arg(long, value_name = "N")]
        measure: Option<u64>,
    },
    /// Run one scenario (or `all`, or a group such as `mit/part2`) on one seed.
    Run {
        /// A scenario name, a group prefix (`mit`, `sjtu/part3`), or `all`.
        scenario: String,
        /// The root seed (decimal or 0x hex).
        #[arg(long, value_parser = parse_seed)]
        seed: u64,
        #[command(flatten)]
        output: OutputArgs,
        /// Run each scenario twice and fail if the trace hashes differ.
        #[arg(long)]
        check_determinism: bool,
        /// Plant the canary (swarm scenarios only): a corrupted durable log that must be caught.
        #[arg(long)]
        canary: bool,
    },
    /// Replay one scenario on one seed exactly (the command every failure prints), or a swarm
    /// scenario on a schedule file written by `sim shrink`.
    Replay {
        /// The scenario's name.
        scenario: String,
        /// The root seed (decimal or 0x hex); with --schedule, defaults to the file's seed.
        #[arg(value_parser = parse_seed)]
        seed: Option<u64>,
        /// Run this schedule (JSON, from `sim shrink --out`) instead of the seed's own.
        #[arg(long, value_name = "FILE")]
        schedule: Option<std::path::PathBuf>,
        /// Plant the canary (swarm scenarios only).
        #[arg(long, conflicts_with = "schedule")]
        canary: bool,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Shrink a failing swarm run to a small schedule that fails the same way, and write it.
    Shrink {
        /// A swarm scenario's name.
        scenario: String,
        /// The failing seed (decimal or 0x hex).
        #[arg(value_parser = parse_seed)]
        seed: u64,
        /// Where to write the schedule (default: shrunk-<scenario>-<seed>.json).
        #[arg(long, value_name = "FILE")]
        out: Option<std::path::PathBuf>,
        /// Shrink the run with the canary planted (to see how small a reproduction gets).
        #[arg(long)]
        canary: bool,
        /// The most runs to spend.
        #[arg(long, default_value_t = 5000)]
        max_runs: u64,
        /// Stop shrinking after this long (e.g. 60s, 5m).
        #[arg(long, default_value = "120s", value_parser = parse_duration)]
        time: Duration,
    },
    /// Run scenarios on many fresh seeds, in parallel, and report every failure.
    Fuzz(FuzzArgs),
    /// Measure the simulator: events per second with all checkers, and the virtual-to-real
    /// time ratio of an idle 5-node cluster.
    Bench {
        /// Roughly how long to measure, per measurement.
        #[arg(long, default_value = "5s", value_parser = parse_duration)]
        time: Duration,
    },
    /// Check a client history (from `sim run --history FILE`) for linearizability. Exit 0:
    /// linearizable; 1: not (with the explanation); 3: unknown (the search budget ran out);
    /// 2: the file is missing or malformed (with the JSON path of the problem).
    Lincheck {
        /// The JSON history (`-` reads standard input).
        file: std::path::PathBuf,
        /// Search budget in steps (one step tries or undoes one operation).
        #[arg(long, default_value_t = lincheck::Budget::DEFAULT.max_steps)]
        max_steps: u64,
        /// Print the verdict as one JSON object.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
struct OutputArgs {
    /// One JSON object per run.
    #[arg(long)]
    json: bool,
    /// Print every event of the run, human-readable.
    #[arg(long)]
    trace: bool,
    /// Write every event as JSON lines to FILE.
    #[arg(long, value_name = "FILE")]
    trace_json: Option<std::path::PathBuf>,
    /// Write the client history (key/value scenarios) as JSON to FILE, for `sim lincheck`.
    #[arg(long, value_name = "FILE")]
    history: Option<std::path::PathBuf>,
}

impl OutputArgs {
    /// The run options these outputs need: the trace records kept for `--trace` and
    /// `--trace-json`, the client history for `--history` (neither changes the run).
    fn run_options(&self) -> RunOptions {
        RunOptions {
            record_trace: self.trace || self.trace_json.is_some(),
            record_history: self.history.is_some(),
            ..RunOptions::default()
        }
    }
}

#[derive(Args)]
struct FuzzArgs {
    /// Scenarios or groups to fuzz (default: all).
    scenarios: Vec<String>,
    /// Seeds per scenario.
    #[arg(long, conflicts_with = "time")]
    seeds: Option<u64>,
    /// Stop starting runs after this long (e.g. 90s, 10m). Default: 60s when --seeds is absent.
    #[arg(long, value_parser = parse_duration)]
    time: Option<Duration>,
    /// Parallel runs (default: the number of CPUs).
    #[arg(long)]
    jobs: Option<usize>,
    /// Run only shard i of n (`i/n`), for splitting a campaign across CI jobs.
    #[arg(long, value_parser = parse_shard, default_value = "0/1")]
    shard: Shard,
    /// Stop the campaign after this many failures.
    #[arg(long)]
    max_failures: Option<usize>,
    /// The campaign's seed base (default: from the clock, printed so the campaign can be rerun).
    #[arg(long, value_parser = parse_seed)]
    seed_base: Option<u64>,
    /// A final JSON summary instead of text.
    #[arg(long)]
    json: bool,
    /// Also write the summary as JUnit XML to FILE (one testcase per scenario).
    #[arg(long, value_name = "FILE")]
    junit: Option<std::path::PathBuf>,
    /// Plant the canary in every run (swarm scenarios only; default: every swarm scenario):
    /// a corrupted durable log the checkers must catch. Exits 0 only if every run caught it.
    #[arg(long)]
    canary: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::List { json, measure } => match measure {
            Some(seeds) => measure_table(seeds),
            None => list(json),
        },
        Command::Run {
            scenario,
            seed,
            output,
            check_determinism,
            canary,
        } => run(&scenario, seed, &output, check_determinism, canary),
        Command::Replay {
            scenario,
            seed,
            schedule,
            canary,
            output,
        } => match (schedule, seed) {
            (Some(path), seed) => replay_schedule(&scenario, seed, &path, &output),
            (None, Some(seed)) => run(&scenario, seed, &output, false, canary),
            (None, None) => Err("replay needs a seed or --schedule FILE".into()),
        },
        Command::Shrink {
            scenario,
            seed,
            out,
            canary,
            max_runs,
            time,
        } => shrink_command(&scenario, seed, out, canary, max_runs, time),
        Command::Fuzz(args) => fuzz(&args),
        Command::Bench { time } => bench(time),
        Command::Lincheck {
            file,
            max_steps,
            json,
        } => lincheck_command(&file, max_steps, json),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(usage) => {
            eprintln!("error: {usage}");
            ExitCode::from(2)
        }
    }
}

/// Resolves names, groups (`mit/part2`, `sjtu`) and `all`; an unknown name is a usage error that
/// lists the close names.
fn select(patterns: &[String]) -> Result<Vec<Scenario>, String> {
    let all = registry::all();
    if patterns.is_empty() {
        return Ok(all);
    }
    let mut chosen: Vec<Scenario> = Vec::new();
    for pattern in patterns {
        let pattern = pattern.trim_end_matches('/');
        let matched: Vec<Scenario> = all
            .iter()
            .filter(|s| {
                pattern == "all"
                    || s.name == pattern
                    || s.name
                        .strip_prefix(pattern)
                        .is_some_and(|rest| rest.starts_with('/'))
            })
            .copied()
            .collect();
        if matched.is_empty() {
            let close = close_names(pattern, all.iter().map(|s| s.name));
            let hint = if close.is_empty() {
                "run `sim list` to see them all".to_string()
            } else {
                format!("did you mean: {}", close.join(", "))
            };
            return Err(format!("unknown scenario `{pattern}`; {hint}"));
        }
        for scenario in matched {
            if !chosen.iter().any(|c| c.name == scenario.name) {
                chosen.push(scenario);
            }
        }
    }
    Ok(chosen)
}

fn list(json: bool) -> Result<u8, String> {
    for s in registry::all() {
        if json {
            let line = serde_json::json!({
                "name": s.name,
                "lab": s.lab.name(),
                "part": s.part,
                "nodes": s.setup.nodes,
                "summary": s.summary,
            });
            out!("{line}");
        } else {
            out!(
                "{:<46} {:<5} {:<6} {}",
                s.name,
                s.lab.name(),
                s.part,
                s.summary
            );
        }
    }
    Ok(0)
}

fn measure_table(seeds: u64) -> Result<u8, String> {
    if seeds == 0 {
        return Err("--measure needs at least one seed".into());
    }
    out!("| Scenario | Lab | Checks | Virtual time | Wall time (release) |");
    out!("|---|---|---|---:|---:|");
    let mut total_wall_us = 0;
    let mut failed = 0;
    for scenario in registry::all() {
        let mut virtual_us = Vec::new();
        let mut wall_us = Vec::new();
        for seed in 1..=seeds {
            let (_, result) = run_one(&scenario, seed, &RunOptions::default(), None);
            if let Some(failure) = &result.failure {
                failed += 1;
                eprintln!(
                    "{} seed {seed}: {}\n  replay: {}",
                    scenario.name,
                    failure.message,
                    replay_command(scenario.name, seed)
                );
            }
            virtual_us.push(result.virtual_us);
            wall_us.push(result.wall_us);
        }
        virtual_us.sort_unstable();
        wall_us.sort_unstable();
        let median_wall = wall_us[wall_us.len() / 2];
        total_wall_us += median_wall;
        out!(
            "| `{}` | {} | {} | {:.1} s | {:.2} ms |",
            scenario.name,
            scenario.lab.name(),
            scenario.summary,
            virtual_us[virtual_us.len() / 2] as f64 / 1e6,
            median_wall as f64 / 1e3
        );
    }
    out!(
        "\nWhole suite, one seed: {:.1} ms wall (sum of the medians over seeds 1..={seeds}).",
        total_wall_us as f64 / 1e3
    );
    Ok(if failed > 0 { 1 } else { 0 })
}

/// Runs one scenario on one seed (on `schedule` instead of its own, for a swarm scenario) and
/// measures its wall time.
fn run_one(
    scenario: &Scenario,
    seed: u64,
    options: &RunOptions,
    schedule: Option<&Schedule>,
) -> (RunReport, RunResult) {
    let start = Instant::now();
    let report = match schedule {
        Some(schedule) => swarm::run_schedule(scenario, seed, schedule, options),
        None => sim::run(scenario, seed, options),
    };
    let wall_us = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
    let result = RunResult {
        scenario: scenario.name,
        seed,
        failure: report.failure.as_ref().map(|f| Failure {
            kind: f.kind,
            message: f.to_string(),
        }),
        trace_hash: report.trace_hash,
        events: report.events,
        virtual_us: report.virtual_us,
        wall_us,
    };
    (report, result)
}

/// The canary's schedule for `scenario` under `seed`: the seed's own, with the corruption
/// planted halfway on a node chosen by the seed.
fn canary_schedule(scenario: &Scenario, seed: u64) -> Result<Schedule, String> {
    let (_, schedule) = swarm::plan_of(scenario, seed).ok_or_else(|| {
        format!(
            "--canary needs swarm scenarios; {} is not one",
            scenario.name
        )
    })?;
    let node = u32::try_from(seed % u64::from(schedule.nodes.max(1))).unwrap_or(0);
    Ok(schedule.with_canary(node))
}

fn run(
    pattern: &str,
    seed: u64,
    output: &OutputArgs,
    check_determinism: bool,
    canary: bool,
) -> Result<u8, String> {
    let scenarios = select(&[pattern.to_string()])?;
    let options = output.run_options();
    if (options.record_trace || options.record_history) && scenarios.len() > 1 {
        return Err("--trace, --trace-json and --history need a single scenario".into());
    }
    let mut exit = 0;
    let mut total_wall_us = 0;
    let mut total_events = 0;
    for scenario in &scenarios {
        let schedule = if canary {
            Some(canary_schedule(scenario, seed)?)
        } else {
            None
        };
        let (report, result) = run_one(scenario, seed, &options, schedule.as_ref());
        write_outputs(scenario, &report, output)?;
        total_wall_us += result.wall_us;
        total_events += result.events;
        print_result(&result, scenario, output.json);
        if let Some(failure) = &result.failure {
            eprintln!("{} seed {seed:#x}: {}", scenario.name, failure.message);
            eprintln!("  replay: {}", replay_command(scenario.name, seed));
            if exit == 0 {
                exit = u8::try_from(failure.kind.exit_code()).unwrap_or(1);
            }
        }
        if check_determinism {
            let (_, again) = run_one(scenario, seed, &RunOptions::default(), schedule.as_ref());
            if again.trace_hash != result.trace_hash {
                eprintln!(
                    "{} seed {seed:#x}: NOT deterministic: trace {:016x} then {:016x}\n  replay: {}",
                    scenario.name,
                    result.trace_hash,
                    again.trace_hash,
                    replay_command(scenario.name, seed)
                );
                if exit == 0 {
                    exit = 1;
                }
            } else if !output.json {
                out!(
                    "  deterministic: both runs hashed {:016x}",
                    again.trace_hash
                );
            }
        }
    }
    if scenarios.len() > 1 && !output.json {
        out!(
            "{} scenarios, {} events in {:.1} ms wall ({} events/s)",
            scenarios.len(),
            total_events,
            total_wall_us as f64 / 1e3,
            total_events * 1_000_000 / total_wall_us.max(1)
        );
    }
    Ok(exit)
}

/// Prints a run's line (or JSON object), with the drawn parameters of a swarm run.
fn print_result(result: &RunResult, scenario: &Scenario, json: bool) {
    let plan = swarm::plan_of(scenario, result.seed);
    if json {
        let mut value = result.json();
        if let Some((params, schedule)) = &plan {
            value["params"] = serde_json::to_value(params).unwrap_or_default();
            value["schedule"] = serde_json::json!({
                "events": schedule.events.len(),
                "census": schedule.census(),
                "fault_phase_ms": schedule.fault_phase_ms,
                "liveness": schedule.liveness,
            });
        }
        out!("{value}");
        return;
    }
    out!("{}", result.line());
    if let Some((params, schedule)) = &plan {
        for line in params.describe() {
            out!("  {line}");
        }
        out!(
            "  schedule:   {} events ({}); liveness budget {} ms",
            schedule.events.len(),
            schedule.census(),
            schedule.liveness.budget_ms
        );
    }
}

fn fuzz(args: &FuzzArgs) -> Result<u8, String> {
    let scenarios = if args.canary && args.scenarios.is_empty() {
        select(&["swarm".to_string()])?
    } else {
        select(&args.scenarios)?
    };
    if args.canary
        && let Some(other) = scenarios.iter().find(|s| swarm::mix_of(s).is_none())
    {
        return Err(format!(
            "--canary needs swarm scenarios; {} is not one",
            other.name
        ));
    }
    let budget = match (args.seeds, args.time) {
        (Some(seeds), _) => Budget::SeedsPerScenario(seeds),
        (None, Some(time)) => Budget::Time(time),
        (None, None) => Budget::Time(Duration::from_secs(60)),
    };
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
    let seed_base = args.seed_base.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    });
    if !args.json {
        let what = match budget {
            Budget::SeedsPerScenario(n) => format!("{n} seeds per scenario"),
            Budget::Time(t) => format!("{:.0?}", t),
        };
        eprintln!(
            "fuzzing {} scenarios for {what} on {jobs} jobs, shard {}/{}, seed base {seed_base:#x} (rerun with --seed-base {seed_base:#x})",
            scenarios.len(),
            args.shard.index,
            args.shard.count
        );
    }
    let canary = args.canary;
    let by_name = |name: &'static str, seed: u64| -> RunResult {
        match scenarios.iter().find(|s| s.name == name) {
            Some(scenario) if canary => canary_result(scenario, seed),
            Some(scenario) => run_one(scenario, seed, &RunOptions::default(), None).1,
            None => failed_result(name, seed, format!("no scenario named {name}")),
        }
    };
    let replay = if canary {
        canary_replay_command
    } else {
        replay_command
    };
    let campaign = Campaign {
        scenarios: scenarios.iter().map(|s| s.name).collect(),
        budget,
        jobs,
        shard: args.shard,
        max_failures: args.max_failures,
        seed_base,
        progress: !args.json && std::io::stderr().is_terminal(),
        run: &by_name,
        replay,
    };
    let summary = run_campaign(&campaign);
    if let Some(path) = &args.junit {
        let suite = if canary {
            "sim fuzz --canary"
        } else {
            "sim fuzz"
        };
        std::fs::write(path, junit_xml(&summary, suite, replay))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    if args.json {
        out!("{}", summary_json(&summary, replay));
    } else {
        print_summary(&summary, replay);
    }
    if canary {
        if !args.json {
            out!(
                "canary: {} of {} runs caught the corrupted log",
                summary.runs - summary.failures.len() as u64,
                summary.runs
            );
        }
        // Exit 0 only if the canary ran and every run caught it.
        return Ok(u8::from(summary.runs == 0 || !summary.failures.is_empty()));
    }
    Ok(summary.failures.first().map_or(0, |f| {
        f.result.failure.as_ref().map_or(1, |x| exit_code(x.kind))
    }))
}

fn exit_code(kind: sim::FailureKind) -> u8 {
    u8::try_from(kind.exit_code()).unwrap_or(1)
}

/// A run that could not happen (a scenario the campaign was not given, a canary that cannot be
/// planted), reported as a check failure rather than a panic.
fn failed_result(name: &'static str, seed: u64, message: String) -> RunResult {
    RunResult {
        scenario: name,
        seed,
        failure: Some(Failure {
            kind: sim::FailureKind::Check,
            message,
        }),
        trace_hash: 0,
        events: 0,
        virtual_us: 0,
        wall_us: 0,
    }
}

fn print_summary(summary: &Summary, replay: fn(&str, u64) -> String) {
    out!(
        "{} runs, {} failures in {:.1} s: {} events ({} events/s), virtual/real time {:.0}x",
        summary.runs,
        summary.failures.len(),
        summary.wall.as_secs_f64(),
        summary.events,
        summary.events_per_sec(),
        summary.virtual_to_real(),
    );
    for found in &summary.failures {
        let result = &found.result;
        let message = result.failure.as_ref().map_or("", |f| f.message.as_str());
        out!(
            "FAIL {} seed {:#x} (found after {:.1} s): {message}\n  replay: {}",
            result.scenario,
            result.seed,
            found.after.as_secs_f64(),
            replay(result.scenario, result.seed)
        );
        if result.scenario.starts_with("swarm/") {
            out!(
                "  shrink: cargo run --release --bin sim -- shrink {} {:#x}",
                result.scenario,
                result.seed
            );
        }
    }
}

fn summary_json(summary: &Summary, replay: fn(&str, u64) -> String) -> serde_json::Value {
    let failures: Vec<serde_json::Value> = summary
        .failures
        .iter()
        .map(|found| {
            let result = &found.result;
            let failure = result.failure.as_ref();
            let params = registry::find(result.scenario)
                .and_then(|scenario| swarm::plan_of(&scenario, result.seed))
                .map(|(params, _)| params);
            serde_json::json!({
                "scenario": result.scenario,
                "seed": result.seed,
                "params": params,
                "kind": failure.map(|f| f.kind.name()),
                "message": failure.map(|f| f.message.clone()),
                "replay": replay(result.scenario, result.seed),
                "found_after_ms": u64::try_from(found.after.as_millis()).unwrap_or(u64::MAX),
            })
        })
        .collect();
    serde_json::json!({
        "runs": summary.runs,
        "failures": failures,
        "events": summary.events,
        "wall_ms": u64::try_from(summary.wall.as_millis()).unwrap_or(u64::MAX),
        "events_per_sec": summary.events_per_sec(),
    })
}

/// Writes what `--trace`, `--trace-json` and `--history` ask for from one run.
fn write_outputs(
    scenario: &Scenario,
    report: &RunReport,
    output: &OutputArgs,
) -> Result<(), String> {
    if let Some(records) = &report.trace {
        if output.trace {
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            for record in records {
                let _ = writeln!(out, "{record}");
            }
        }
        if let Some(path) = &output.trace_json {
            let mut text = String::new();
            for record in records {
                text.push_str(&record.to_json_line());
                text.push('\n');
            }
            std::fs::write(path, text)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
    }
    if let Some(path) = &output.history {
        match &report.history {
            Some(history) => std::fs::write(path, history)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?,
            None => {
                return Err(format!(
                    "{} records no client history (only the key/value scenarios do)",
                    scenario.name
                ));
            }
        }
    }
    Ok(())
}

/// `sim replay <scenario> --schedule FILE`: runs a swarm scenario on a schedule read from a file.
fn replay_schedule(
    pattern: &str,
    seed: Option<u64>,
    path: &std::path::Path,
    output: &OutputArgs,
) -> Result<u8, String> {
    let scenario = registry::find(pattern).ok_or_else(|| {
        let close = close_names(pattern, registry::all().iter().map(|s| s.name));
        format!(
            "unknown scenario `{pattern}`; did you mean: {}",
            close.join(", ")
        )
    })?;
    if swarm::mix_of(&scenario).is_none() {
        return Err(format!(
            "{} is not a swarm scenario: it has no schedule",
            scenario.name
        ));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let file = ScheduleFile::parse(&text)
        .map_err(|e| format!("{} is not a schedule file: {e}", path.display()))?;
    if file.scenario != scenario.name {
        eprintln!(
            "note: {} was written for {}; replaying it on {}",
            path.display(),
            file.scenario,
            scenario.name
        );
    }
    file.schedule
        .validate(scenario.setup.nodes)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let seed = seed.unwrap_or(file.seed);
    let options = output.run_options();
    let (report, result) = run_one(&scenario, seed, &options, Some(&file.schedule));
    write_outputs(&scenario, &report, output)?;
    if output.json {
        out!("{}", result.json());
    } else {
        out!("{}", result.line());
        out!(
            "  schedule:   {} events ({}) from {}",
            file.schedule.events.len(),
            file.schedule.census(),
            path.display()
        );
    }
    Ok(result
        .failure
        .as_ref()
        .map_or(0, |failure| exit_code(failure.kind)))
}

/// `sim shrink <scenario> <seed>`: shrinks a failing swarm run and writes the schedule.
fn shrink_command(
    pattern: &str,
    seed: u64,
    out: Option<std::path::PathBuf>,
    canary: bool,
    max_runs: u64,
    time: Duration,
) -> Result<u8, String> {
    let scenario = registry::find(pattern)
        .ok_or_else(|| format!("unknown scenario `{pattern}` (shrink needs a swarm scenario)"))?;
    let schedule = if canary {
        canary_schedule(&scenario, seed)?
    } else {
        swarm::plan_of(&scenario, seed)
            .map(|(_, schedule)| schedule)
            .ok_or_else(|| {
                format!(
                    "{} is not a swarm scenario: it has no schedule",
                    scenario.name
                )
            })?
    };
    let start = Instant::now();
    let mut stop = || start.elapsed() >= time;
    let progress_bar = std::io::stderr().is_terminal();
    let mut progress = |p: Progress| {
        if progress_bar {
            eprint!("\r  {} runs, {} events left   ", p.runs, p.events);
        }
    };
    eprintln!(
        "shrinking {} seed {seed:#x}{}: {} events",
        scenario.name,
        if canary { " (canary)" } else { "" },
        schedule.events.len()
    );
    let budget = ShrinkBudget {
        runs_max: max_runs,
        stop: &mut stop,
        progress: &mut progress,
    };
    let shrunk = shrink(&scenario, seed, schedule, budget)
        .map_err(|e| format!("{} seed {seed:#x}: {e}", scenario.name))?;
    if progress_bar {
        eprintln!();
    }
    let path = out.unwrap_or_else(|| {
        let name = scenario.name.replace('/', "-");
        std::path::PathBuf::from(format!("shrunk-{name}-{seed:#x}.json"))
    });
    let signature = swarm::shrink::Signature::of(&shrunk.failure);
    let file = ScheduleFile {
        scenario: scenario.name.to_string(),
        seed,
        signature: Some(signature.clone()),
        events_before: Some(shrunk.events_before),
        schedule: shrunk.schedule,
    };
    std::fs::write(&path, file.to_text())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    out!(
        "shrunk {} seed {seed:#x} from {} to {} events in {} runs ({:.1} s), still failing as {signature}",
        scenario.name,
        shrunk.events_before,
        shrunk.events_after,
        shrunk.runs,
        start.elapsed().as_secs_f64()
    );
    out!("  left: {}", file.schedule.census());
    out!("  failure: {}", shrunk.failure);
    out!("  wrote {}", path.display());
    out!(
        "  replay: cargo run --release --bin sim -- replay {} --schedule {} --trace",
        scenario.name,
        path.display()
    );
    Ok(0)
}

/// The replay command of a canary run.
fn canary_replay_command(scenario: &str, seed: u64) -> String {
    format!("{} --canary", replay_command(scenario, seed))
}

/// A canary run, judged: the run "fails" (for the campaign) only if the canary was not caught
/// as a safety violation.
fn canary_result(scenario: &Scenario, seed: u64) -> RunResult {
    let schedule = match canary_schedule(scenario, seed) {
        Ok(schedule) => schedule,
        Err(message) => return failed_result(scenario.name, seed, message),
    };
    let (_, mut result) = run_one(scenario, seed, &RunOptions::default(), Some(&schedule));
    result.failure = match result.failure.take() {
        Some(failure) if failure.kind == sim::FailureKind::Safety => None,
        Some(failure) => Some(Failure {
            kind: sim::FailureKind::Check,
            message: format!(
                "canary caught as {}, not as a safety violation: {}",
                failure.kind, failure.message
            ),
        }),
        None => Some(Failure {
            kind: sim::FailureKind::Check,
            message: "canary NOT caught: the run with a corrupted log passed".to_string(),
        }),
    };
    result
}

fn bench(time: Duration) -> Result<u8, String> {
    out!(
        "bench: single-threaded, release build recommended (cargo run --release --bin sim -- bench)"
    );
    // 1. Events per second with all checkers, per group of scenarios, round after round (one
    //    seed per scenario per round). The groups cost very different amounts per event: the
    //    service scenarios apply commands, copy growing values and check histories.
    let all = registry::all();
    let is_service = |name: &str| name.starts_with("mit/kv/") || name.starts_with("sjtu/part5/");
    let groups: [(&str, Vec<&Scenario>); 3] = [
        (
            "Raft lab scenarios (parts 1-4)",
            all.iter()
                .filter(|s| !is_service(s.name) && s.lab != sim::Lab::Swarm)
                .collect(),
        ),
        (
            "service scenarios (mit/kv, sjtu/part5)",
            all.iter().filter(|s| is_service(s.name)).collect(),
        ),
        (
            "swarm scenarios",
            all.iter().filter(|s| s.lab == sim::Lab::Swarm).collect(),
        ),
    ];
    for (label, scenarios) in &groups {
        let mut rates = Vec::new();
        let mut suite_walls = Vec::new();
        let start = Instant::now();
        let mut seed = 1;
        while start.elapsed() < time || rates.is_empty() {
            let round = Instant::now();
            let mut events = 0;
            for scenario in scenarios {
                let report = sim::run(scenario, seed, &RunOptions::default());
                events += report.events;
            }
            let wall = round.elapsed();
            suite_walls.push(wall);
            rates.push((events as f64 / wall.as_secs_f64().max(1e-9)) as u64);
            seed += 1;
        }
        rates.sort_unstable();
        suite_walls.sort_unstable();
        out!(
            "{label} ({} scenarios, one seed each, checkers on): median {:.1} ms wall per round, median {} events/s over {} rounds",
            scenarios.len(),
            suite_walls[suite_walls.len() / 2].as_secs_f64() * 1e3,
            rates[rates.len() / 2],
            rates.len()
        );
    }
    // 2. An idle 5-node cluster: heartbeats only.
    for checkers in [true, false] {
        let scenario = scenarios::bench::IDLE_FIVE;
        let options = RunOptions {
            checkers,
            ..RunOptions::default()
        };
        let mut ratios = Vec::new();
        let mut event_rates = Vec::new();
        let start = Instant::now();
        let mut seed = 1;
        while start.elapsed() < time || ratios.is_empty() {
            let run_start = Instant::now();
            let report = sim::run(&scenario, seed, &options);
            let wall = run_start.elapsed().as_secs_f64().max(1e-9);
            if let Some(failure) = report.failure {
                return Err(format!("the idle bench scenario failed: {failure}"));
            }
            ratios.push((report.virtual_us as f64 / 1e6 / wall) as u64);
            event_rates.push((report.events as f64 / wall) as u64);
            seed += 1;
        }
        ratios.sort_unstable();
        event_rates.sort_unstable();
        out!(
            "idle 5-node cluster, 60 s virtual, checkers {}: median virtual/real {}x, median {} events/s over {} runs",
            if checkers { "on" } else { "off" },
            ratios[ratios.len() / 2],
            event_rates[event_rates.len() / 2],
            ratios.len()
        );
    }
    Ok(0)
}

/// `sim lincheck FILE`: reads a history and prints the checker's verdict.
fn lincheck_command(file: &std::path::Path, max_steps: u64, json: bool) -> Result<u8, String> {
    use std::io::Read as _;
    let text = if file.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| format!("reading standard input: {e}"))?;
        text
    } else {
        std::fs::read_to_string(file).map_err(|e| format!("reading {}: {e}", file.display()))?
    };
    let budget = lincheck::Budget { max_steps };
    let result = lincheck::check_json(&text, budget)
        .map_err(|e| format!("{}: not a history: {e}", file.display()))?;
    let (code, verdict, detail) = match &result {
        lincheck::CheckResult::Ok => (0, "linearizable", String::new()),
        lincheck::CheckResult::Illegal(explanation) => {
            (1, "not linearizable", explanation.to_string())
        }
        lincheck::CheckResult::Unknown => (
            3,
            "unknown",
            format!(
                "the search budget of {max_steps} steps ran out before a verdict (raise --max-steps)"
            ),
        ),
    };
    if json {
        println!(
            "{}",
            serde_json::json!({"file": file.display().to_string(), "verdict": verdict, "explanation": detail})
        );
    } else {
        println!("{}: {verdict}", file.display());
        if !detail.is_empty() {
            println!("{detail}");
        }
    }
    Ok(code)
}
