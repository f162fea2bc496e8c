use scenarios::registry;
use sim::RunOptions;

fn main() {
    let name = std::env::args().nth(1).unwrap_or_default();
    let seed: u64 = std::env::args()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let scenario = registry::find(&name).expect("scenario");
    let start = std::time::Instant::now();
    let report = sim::run(&scenario, seed, &RunOptions::default());
    println!(
        "{:?} events={} virtual={}us hash={:x} wall={:?}",
        report.failure,
        report.events,
        report.virtual_us,
        report.trace_hash,
        start.elapsed()
    );
}
