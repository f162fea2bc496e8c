//! A campaign as JUnit XML (`sim fuzz --junit FILE`), the format CI systems show as test results.
//!
//! One `<testcase>` per scenario that ran (named after it, classed by its lab and part); a
//! scenario with failed runs gets one `<failure>` listing every failed seed with its message and
//! replay command. Text is escaped for XML 1.0: the five markup characters become entities and
//! characters XML cannot carry at all (most control characters) become U+FFFD.

use super::fuzz::Summary;
use std::fmt::Write;

/// Escapes `text` for an XML attribute value or text node.
#[must_use]
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if u32::from(c) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// The campaign `summary` as a JUnit XML document. `replay` gives each failed run's replay
/// command.
#[must_use]
pub fn junit_xml(summary: &Summary, suite: &str, replay: fn(&str, u64) -> String) -> String {
    let failed_cases = summary
        .per_scenario
        .values()
        .filter(|share| share.failures > 0)
        .count();
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let cases = summary.per_scenario.len();
    let time = seconds(summary.wall.as_micros());
    let _ = writeln!(
        xml,
        "<testsuites name=\"{}\" tests=\"{cases}\" failures=\"{failed_cases}\" time=\"{time}\">",
        escape(suite)
    );
    let _ = writeln!(
        xml,
        "  <testsuite name=\"{}\" tests=\"{cases}\" failures=\"{failed_cases}\" errors=\"0\" time=\"{time}\">",
        escape(suite)
    );
    for (scenario, share) in &summary.per_scenario {
        let class = scenario.rsplit_once('/').map_or("", |(group, _)| group);
        let _ = write!(
            xml,
            "    <testcase classname=\"{}\" name=\"{}\" time=\"{}\"",
            escape(&class.replace('/', ".")),
            escape(scenario),
            seconds(u128::from(share.wall_us))
        );
        let failed: Vec<_> = summary
            .failures
            .iter()
            .filter(|found| found.result.scenario == *scenario)
            .collect();
        if failed.is_empty() {
            let _ = writeln!(xml, "/>");
            continue;
        }
        let kind = failed[0]
            .result
            .failure
            .as_ref()
            .map_or("failure", |f| f.kind.name());
        let message = format!("{} of {} runs failed", failed.len(), share.runs);
        let mut body = String::new();
        for found in &failed {
            let result = &found.result;
            let what = result.failure.as_ref().map_or("", |f| f.message.as_str());
            let _ = writeln!(body, "seed {:#x}: {what}", result.seed);
            let _ = writeln!(body, "  replay: {}", replay(result.scenario, result.seed));
        }
        let _ = writeln!(xml, ">");
        let _ = writeln!(
            xml,
            "      <failure message=\"{}\" type=\"{}\">{}</failure>",
            escape(&message),
            escape(kind),
            escape(&body)
        );
        let _ = writeln!(xml, "    </testcase>");
    }
    xml.push_str("  </testsuite>\n</testsuites>\n");
    xml
}

fn seconds(micros: u128) -> String {
    format!("{}.{:06}", micros / 1_000_000, micros % 1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::fuzz::{Found, ScenarioRuns};
    use crate::cli::report::{Failure, FailureKind, RunResult, replay_command};
    use std::time::Duration;

    #[test]
    fn escapes_markup_and_characters_xml_cannot_carry() {
        assert_eq!(
            escape(r#"a<b>&"c"'d'"#),
            "a&lt;b&gt;&amp;&quot;c&quot;&apos;d&apos;"
        );
        assert_eq!(escape("tab\tnl\ncr\r"), "tab\tnl\ncr\r");
        assert_eq!(escape("nul\u{0}bell\u{7}"), "nul\u{FFFD}bell\u{FFFD}");
        assert_eq!(escape("‰ ü"), "‰ ü");
    }

    fn result(scenario: &'static str, seed: u64, failure: Option<&str>) -> RunResult {
        RunResult {
            scenario,
            seed,
            failure: failure.map(|message| Failure {
                kind: FailureKind::Safety,
                message: message.to_string(),
            }),
            trace_hash: 0,
            events: 1,
            virtual_us: 1,
            wall_us: 1500,
        }
    }

    #[test]
    fn one_testcase_per_scenario_with_failed_seeds_and_replay_commands() {
        let mut summary = Summary {
            runs: 3,
            wall: Duration::from_millis(2500),
            ..Summary::default()
        };
        let fail = |share: &mut ScenarioRuns| {
            share.runs += 1;
            share.failures += 1;
            share.wall_us += 1500;
        };
        fail(summary.per_scenario.entry("swarm/default/n3").or_default());
        summary.per_scenario.insert(
            "mit/part2/backup",
            ScenarioRuns {
                runs: 2,
                failures: 0,
                wall_us: 3000,
            },
        );
        summary.failures.push(Found {
            result: result(
                "swarm/default/n3",
                0x2a,
                Some("checker log_matching: <i3> & \"t2\""),
            ),
            after: Duration::from_millis(10),
        });
        let xml = junit_xml(&summary, "sim fuzz", replay_command);
        assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites"));
        assert!(xml.contains("tests=\"2\" failures=\"1\""));
        assert!(xml.contains(
            "<testcase classname=\"mit.part2\" name=\"mit/part2/backup\" time=\"0.003000\"/>"
        ));
        assert!(xml.contains("<testcase classname=\"swarm.default\" name=\"swarm/default/n3\""));
        assert!(xml.contains("<failure message=\"1 of 1 runs failed\" type=\"safety\">"));
        assert!(xml.contains("seed 0x2a: checker log_matching: &lt;i3&gt; &amp; &quot;t2&quot;"));
        assert!(
            xml.contains("replay: cargo run --release --bin sim -- replay swarm/default/n3 0x2a")
        );
        assert!(xml.trim_end().ends_with("</testsuites>"));
        // Balanced: every opened testcase with a body is closed.
        assert_eq!(xml.matches("<testcase").count(), 2);
        assert_eq!(xml.matches("</testcase>").count(), 1);
        assert_eq!(
            xml.matches("<failure").count(),
            xml.matches("</failure>").count()
        );
    }
}
