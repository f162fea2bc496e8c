//! The record framing shared by every storage file: `[len: u32 LE][crc32: u32 LE][payload]`.
//!
//! The checksum covers the four length bytes and the payload, so a flipped bit in either is
//! caught. A file is a sequence of records; [`scan`] walks one up to the first bad record, and
//! [`committed_batch_after`] tells whether a whole, later batch follows the damage (so it is
//! corruption, not the torn remains of the last write).

/// Bytes of a record's header (length and checksum).
pub const HEADER_BYTES: usize = 8;

/// The largest payload a record may carry. No writer produces a longer one, so a length field
/// above it makes a bad record.
pub const MAX_PAYLOAD_BYTES: usize = 1 << 30;

/// Appends one record carrying `payload` to `out`.
///
/// # Panics
/// If `payload` is longer than [`MAX_PAYLOAD_BYTES`] (the storage checks sizes before framing).
pub fn encode(payload: &[u8], out: &mut Vec<u8>) {
    assert!(
        payload.len() <= MAX_PAYLOAD_BYTES,
        "record payload too large"
    );
    let len = u32::try_from(payload.len()).expect("MAX_PAYLOAD_BYTES fits in u32");
    let len_bytes = len.to_le_bytes();
    out.extend_from_slice(&len_bytes);
    out.extend_from_slice(&checksum(&len_bytes, payload).to_le_bytes());
    out.extend_from_slice(payload);
}

fn checksum(len_bytes: &[u8; 4], payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(len_bytes);
    hasher.update(payload);
    hasher.finalize()
}

/// One intact record found by [`scan`].
#[derive(Debug, PartialEq, Eq)]
pub struct Record<'a> {
    /// Byte offset of the record's header in the file.
    pub offset: u64,
    /// The payload.
    pub payload: &'a [u8],
}

/// What [`scan`] found: the intact records from the start of the file, and the first place
/// where no intact record starts, if the file does not end after the last one.
#[derive(Debug, PartialEq, Eq)]
pub struct Scan<'a> {
    /// Every intact record before the first bad one, in file order.
    pub records: Vec<Record<'a>>,
    /// Where reading stopped before the end of the file, and why.
    pub bad: Option<Bad>,
}

/// The first place in a file where no intact record starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bad {
    /// Byte offset of the bad record's header.
    pub offset: u64,
    /// What is wrong with it.
    pub reason: String,
}

/// Reads one record of at most `max_len` payload bytes at the start of `rest`: its payload, or
/// why there is no intact record. Costs O(1) plus the payload's length.
fn read_one(rest: &[u8], max_len: usize) -> Result<&[u8], String> {
    if rest.len() < HEADER_BYTES {
        return Err("an incomplete record header".to_string());
    }
    let len_bytes: [u8; 4] = rest[0..4].try_into().expect("slice of four bytes");
    let stored_crc = u32::from_le_bytes(rest[4..8].try_into().expect("slice of four bytes"));
    let len = u32::from_le_bytes(len_bytes) as usize;
    if len > max_len {
        return Err(format!("record length {len} exceeds the limit {max_len}"));
    }
    let Some(payload) = rest.get(HEADER_BYTES..HEADER_BYTES + len) else {
        return Err(format!(
            "a record of {len} bytes runs past the end of the file"
        ));
    };
    if checksum(&len_bytes, payload) != stored_crc {
        return Err("checksum mismatch".to_string());
    }
    Ok(payload)
}

/// Walks the records of `bytes` from the start, up to the first place where no intact record
/// starts (a bad checksum, a header or payload cut short by the end of the file, an impossible
/// length, or nothing but zeros). Whether that is the torn remains of an interrupted write or
/// damage is for the caller to judge: it depends on what the file is (see
/// [`committed_batch_after`] for the log).
#[must_use]
pub fn scan(bytes: &[u8]) -> Scan<'_> {
    let mut records = Vec::new();
    let mut at = 0usize;
    while at < bytes.len() {
        match read_one(&bytes[at..], MAX_PAYLOAD_BYTES) {
            Ok(payload) => {
                records.push(Record {
                    offset: at as u64,
                    payload,
                });
                at += HEADER_BYTES + payload.len();
            }
            Err(reason) => {
                let reason = if bytes[at..].iter().all(|&b| b == 0) {
                    "only zero bytes follow".to_string()
                } else {
                    reason
                };
                return Scan {
                    records,
                    bad: Some(Bad {
                        offset: at as u64,
                        reason,
                    }),
                };
            }
        }
    }
    Scan { records, bad: None }
}

/// Whether the bad record at `offset` runs exactly to the end of the file: only zeros from
/// there, a header or payload cut short by the end, or a last record that ends at the end
/// with a bad checksum. (With no other evidence, that is what an interrupted final write
/// leaves; damage with more records after it is not.)
#[must_use]
pub fn reaches_the_end(bytes: &[u8], offset: usize) -> bool {
    let rest = bytes.get(offset..).unwrap_or_default();
    if rest.len() < HEADER_BYTES || rest.iter().all(|&b| b == 0) {
        return true;
    }
    let len = u32::from_le_bytes(rest[0..4].try_into().expect("slice of four bytes")) as usize;
    len <= MAX_PAYLOAD_BYTES && HEADER_BYTES + len >= rest.len()
}

/// The largest payload [`committed_batch_after`] considers (commit records are tiny).
pub const COMMIT_PAYLOAD_MAX: usize = 32;

/// The offset of an intact record after byte `from` that `commit` recognises as a batch's
/// commit record — it returns `Some((start, crc))`: the batch began at byte `start`, and the
/// bytes from there to the commit record have checksum `crc` — and whose batch checksum holds.
///
/// A writer that appends a batch of records plus such a commit record per sync, and syncs
/// before it writes the next batch, leaves every batch before the last one whole. So damage
/// before a committed batch is corruption, while damage with no committed batch after it can be
/// the torn remains of the last, interrupted write (its own commit record may have landed while
/// an earlier page of the batch did not; its checksum then fails). Every byte offset is tried:
/// the damage may hide where records start.
#[must_use]
pub fn committed_batch_after(
    bytes: &[u8],
    from: usize,
    commit: impl Fn(&[u8]) -> Option<(u64, u32)>,
) -> Option<u64> {
    // O(1) per offset: lengths above the commit size are rejected before any checksum.
    (from + 1..bytes.len()).find_map(|at| {
        let payload = read_one(&bytes[at..], COMMIT_PAYLOAD_MAX).ok()?;
        let (start, crc) = commit(payload)?;
        let start = usize::try_from(start).ok().filter(|&s| s < at)?;
        (crc32fast::hash(&bytes[start..at]) == crc).then_some(at as u64)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_of(payloads: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for p in payloads {
            encode(p, &mut out);
        }
        out
    }

    #[test]
    fn intact_records_scan_back() {
        let bytes = file_of(&[b"one", b"", b"three"]);
        let scan = scan(&bytes);
        assert_eq!(scan.bad, None);
        let payloads: Vec<&[u8]> = scan.records.iter().map(|r| r.payload).collect();
        assert_eq!(payloads, vec![&b"one"[..], b"", b"three"]);
        assert_eq!(scan.records[1].offset, 11);
    }

    #[test]
    fn every_cut_of_the_last_record_stops_the_scan_there() {
        let bytes = file_of(&[b"first", b"second record"]);
        let second_at = (HEADER_BYTES + 5) as u64;
        for cut in second_at as usize + 1..bytes.len() {
            let scan = scan(&bytes[..cut]);
            assert_eq!(scan.records.len(), 1, "cut at {cut}");
            assert_eq!(scan.bad.map(|b| b.offset), Some(second_at), "cut at {cut}");
        }
    }

    #[test]
    fn a_bad_record_stops_the_scan_with_its_reason() {
        let reason = |bytes: &[u8]| scan(bytes).bad.map(|b| (b.offset, b.reason));
        let mut bytes = file_of(&[b"first", b"second"]);
        bytes[HEADER_BYTES] ^= 0x01;
        assert_eq!(reason(&bytes), Some((0, "checksum mismatch".to_string())));

        let mut bytes = file_of(&[b"first"]);
        bytes.extend_from_slice(&[0; 64]);
        assert_eq!(
            reason(&bytes),
            Some((13, "only zero bytes follow".to_string()))
        );

        let mut bytes = file_of(&[b"first"]);
        bytes.extend_from_slice(&u32::MAX.to_le_bytes());
        bytes.extend_from_slice(&[1; 12]);
        let (offset, why) = reason(&bytes).unwrap();
        assert_eq!(offset, 13);
        assert!(why.contains("exceeds the limit"), "{why}");
    }

    /// A test writer's commit record: `C`, the batch's start offset and its checksum.
    fn commit_record(start: usize, batch: &[u8], out: &mut Vec<u8>) {
        let mut payload = vec![b'C'];
        payload.extend_from_slice(&(start as u64).to_le_bytes());
        payload.extend_from_slice(&crc32fast::hash(batch).to_le_bytes());
        encode(&payload, out);
    }

    fn parse_commit(payload: &[u8]) -> Option<(u64, u32)> {
        let rest = payload.strip_prefix(b"C")?;
        let start = u64::from_le_bytes(rest.get(..8)?.try_into().ok()?);
        let crc = u32::from_le_bytes(rest.get(8..12)?.try_into().ok()?);
        Some((start, crc))
    }

    /// Three batches of two records, each followed by its commit record. Returns the file and
    /// each batch's start.
    fn three_batches() -> (Vec<u8>, Vec<usize>) {
        let mut file = Vec::new();
        let mut starts = Vec::new();
        for batch in 0..3u8 {
            let start = file.len();
            starts.push(start);
            encode(&[batch; 40], &mut file);
            encode(&[batch + 10; 700], &mut file);
            let records = file[start..].to_vec();
            commit_record(start, &records, &mut file);
        }
        (file, starts)
    }

    #[test]
    fn damage_before_a_committed_batch_is_found_and_damage_in_the_last_batch_is_not() {
        let (file, starts) = three_batches();
        assert_eq!(scan(&file).bad, None);
        let after = |bytes: &[u8], from: usize| committed_batch_after(bytes, from, parse_commit);
        // A flipped bit in the second batch: the third batch's commit follows.
        let mut damaged = file.clone();
        damaged[starts[1] + HEADER_BYTES + 3] ^= 0x10;
        let bad = scan(&damaged).bad.unwrap().offset as usize;
        assert_eq!(bad, starts[1]);
        assert!(after(&damaged, bad).is_some_and(|at| at as usize > starts[2]));
        // The same in the last batch: its own commit record fails its checksum.
        let mut damaged = file.clone();
        damaged[starts[2] + HEADER_BYTES + 3] ^= 0x10;
        let bad = scan(&damaged).bad.unwrap().offset as usize;
        assert_eq!(after(&damaged, bad), None);
        // A page of the last batch that never landed, then one that did (its commit included).
        let mut holed = file.clone();
        holed[starts[2]..starts[2] + 100].fill(0);
        let bad = scan(&holed).bad.unwrap().offset as usize;
        assert_eq!(after(&holed, bad), None);
        // A damaged length field hides where the next records start; the search still finds
        // the committed batch after it.
        let mut damaged = file.clone();
        damaged[starts[1]] ^= 0x40;
        let bad = scan(&damaged).bad.unwrap().offset as usize;
        assert!(after(&damaged, bad).is_some());
        // A long zero-filled tail, or long garbage, is searched in one pass (each offset costs
        // O(1), however long the length field it reads says the record is).
        let mut zeroed = file.clone();
        zeroed.truncate(starts[2]);
        zeroed.resize(starts[2] + (4 << 20), 0);
        let bad = scan(&zeroed).bad.unwrap();
        assert_eq!(bad.reason, "only zero bytes follow");
        assert_eq!(after(&zeroed, bad.offset as usize), None);
        let mut garbage = file[..starts[2]].to_vec();
        garbage.extend((0..4u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
        let bad = scan(&garbage).bad.unwrap().offset as usize;
        assert_eq!(after(&garbage, bad), None);
        // Cut short anywhere in the last batch: nothing committed follows.
        for cut in starts[2] + 1..file.len() {
            if let Some(bad) = scan(&file[..cut]).bad {
                assert_eq!(
                    after(&file[..cut], bad.offset as usize),
                    None,
                    "cut at {cut}"
                );
            }
        }
    }
}
