//! Parsers for the CLI's argument values: durations, shards, seeds.

use std::time::Duration;

/// Parses `500ms`, `60s`, `10m`, `2h`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (e.g. 500ms, 60s, 10m, 2h)"))?;
    let millis_per_unit: u64 = match unit {
        "ms" => 1,
        "" | "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return Err(format!("`{unit}` is not a duration unit (ms, s, m, h)")),
    };
    value
        .checked_mul(millis_per_unit)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("`{text}` is too long"))
}

/// One shard of a campaign: runs whose number is `index` modulo `count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// This shard, counted from 0.
    pub index: u64,
    /// How many shards split the campaign.
    pub count: u64,
}

/// Parses `i/n` with `0 <= i < n`.
pub fn parse_shard(text: &str) -> Result<Shard, String> {
    let (index, count) = text
        .split_once('/')
        .ok_or_else(|| format!("`{text}` is not a shard (write i/n, e.g. 0/4)"))?;
    let index: u64 = index
        .parse()
        .map_err(|_| format!("`{index}` is not a shard number"))?;
    let count: u64 = count
        .parse()
        .map_err(|_| format!("`{count}` is not a shard count"))?;
    if count == 0 || index >= count {
        return Err(format!(
            "shard {index}/{count} is out of range (need 0 <= i < n)"
        ));
    }
    Ok(Shard { index, count })
}

/// Names from `candidates` close to `name`: sharing a path segment, containing it, or within a
/// small edit distance. At most five, closest first.
pub fn close_names<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let leaf = name.rsplit('/').next().unwrap_or(name);
    let mut scored: Vec<(usize, &str)> = candidates
        .filter_map(|candidate| {
            let distance = edit_distance(name, candidate);
            let candidate_leaf = candidate.rsplit('/').next().unwrap_or(candidate);
            let related = candidate.contains(name)
                || (!leaf.is_empty() && candidate_leaf.contains(leaf))
                || distance <= name.len().max(4) / 3;
            related.then_some((distance, candidate))
        })
        .collect();
    scored.sort();
    scored.into_iter().take(5).map(|(_, c)| c).collect()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("60s").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_duration("10m").unwrap(), Duration::from_secs(600));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("3").unwrap(), Duration::from_secs(3));
        assert!(parse_duration("10x").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("99999999999999999h").is_err());
    }

    #[test]
    fn shards() {
        assert_eq!(parse_shard("1/4").unwrap(), Shard { index: 1, count: 4 });
        assert!(parse_shard("4/4").is_err());
        assert!(parse_shard("0/0").is_err());
        assert!(parse_shard("1").is_err());
        assert!(parse_shard("a/2").is_err());
    }

    #[test]
    fn suggestions() {
        let names = [
            "mit/part2/backup",
            "sjtu/part2/backup",
            "mit/part1/re_election",
        ];
        let close = close_names("mit/part2/bakup", names.iter().copied());
        assert_eq!(close[0], "mit/part2/backup");
        assert!(close_names("backup", names.iter().copied()).len() == 2);
        assert!(close_names("zzzzzzzzzz", names.iter().copied()).is_empty());
    }
}
