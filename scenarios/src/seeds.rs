//! The `seeds.txt` format: one regression seed per line, `<scenario> <seed> [# note]`.

use std::fmt;

/// One line of `seeds.txt`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeedLine {
    /// The scenario's name, e.g. `mit/part2/backup`.
    pub scenario: String,
    /// The seed.
    pub seed: u64,
    /// What the seed caught, if noted.
    pub note: Option<String>,
    /// The 1-based line number in the file.
    pub line: usize,
}

/// A line of `seeds.txt` that does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("seeds.txt line {line}: {problem}")]
pub struct SeedsError {
    /// The 1-based line number.
    pub line: usize,
    /// What is wrong with it.
    pub problem: String,
}

/// Parses a seed given in decimal or `0x` hex.
pub fn parse_seed(text: &str) -> Result<u64, String> {
    let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse::<u64>(),
    };
    parsed.map_err(|_| format!("`{text}` is not a seed (a decimal or 0x-hex u64)"))
}

/// Parses the whole file; the first malformed line is an error naming it.
pub fn parse(text: &str) -> Result<Vec<SeedLine>, SeedsError> {
    let mut lines = Vec::new();
    for (number, raw) in text.lines().enumerate() {
        let line = number + 1;
        let (body, note) = match raw.split_once('#') {
            Some((body, note)) => (body, Some(note.trim().to_string())),
            None => (raw, None),
        };
        let mut words = body.split_whitespace();
        let Some(scenario) = words.next() else {
            continue; // blank or comment-only
        };
        let error = |problem: String| SeedsError { line, problem };
        let seed_text = words
            .next()
            .ok_or_else(|| error(format!("`{scenario}` has no seed")))?;
        let seed = parse_seed(seed_text).map_err(error)?;
        if let Some(extra) = words.next() {
            return Err(error(format!(
                "unexpected `{extra}` after the seed (notes start with #)"
            )));
        }
        lines.push(SeedLine {
            scenario: scenario.to_string(),
            seed,
            note: note.filter(|n| !n.is_empty()),
            line,
        });
    }
    Ok(lines)
}

impl fmt::Display for SeedLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {:#x}", self.scenario, self.seed)?;
        if let Some(note) = &self.note {
            write!(f, " # {note}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_decimal_hex_notes_and_comments() {
        let text = "# header\n\nmit/part2/backup 42 # caught a stale truncation\nsjtu/part1/re_election 0x1F\n";
        let lines = parse(text).unwrap();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].scenario, "mit/part2/backup");
        assert_eq!(lines[0].seed, 42);
        assert_eq!(lines[0].note.as_deref(), Some("caught a stale truncation"));
        assert_eq!(lines[0].line, 3);
        assert_eq!(lines[1].seed, 0x1f);
        assert_eq!(lines[1].note, None);
    }

    #[test]
    fn malformed_lines_name_the_line() {
        assert_eq!(parse("a 1\nb\n").unwrap_err().line, 2);
        assert_eq!(parse("a zz\n").unwrap_err().line, 1);
        assert!(parse("a 1 2\n").unwrap_err().problem.contains("unexpected"));
        assert!(parse("a 0xZZ\n").is_err());
        assert!(parse("a 18446744073709551616\n").is_err());
    }

    #[test]
    fn display_round_trips() {
        let lines = parse("x/y 255 # note\n").unwrap();
        assert_eq!(parse(&lines[0].to_string()).unwrap()[0].seed, 255);
    }
}
