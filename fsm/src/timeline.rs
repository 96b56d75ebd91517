//! Which timeline a node's WAL position is on, from what the node holds: its WAL segment files
//! and timeline history files, in Postgres's own layout.
//!
//! Elections compare nodes by (timeline, LSN), so the timeline a standby reports must be the
//! timeline of the WAL it holds at the LSN it reports. Postgres only says so while a WAL
//! receiver streams (`pg_stat_wal_receiver.received_tli`); without one (a standby that stopped
//! streaming for an election) the control file's values can be minutes old: the checkpoint
//! timeline changes at the next restartpoint, the minimum recovery point's when a page is
//! written. So the keeper reads it from the node's files instead:
//!
//! - the segment holding the last byte of WAL the node has (`lsn - 1`) exists in `pg_wal`
//!   under the name of each timeline the node has it for; the highest of those is the timeline
//!   recovery reads it from (Postgres reads a segment from the newest timeline of its history
//!   that has it). A node that diverged from a newer timeline (an old primary that kept
//!   writing) has no segment of that timeline past the fork: it stays on its own;
//! - that timeline's history file lists where each of its ancestors ended: a position at or
//!   before an ancestor's end is that ancestor's WAL (the new timeline holds the same bytes
//!   there), a position past every end is the timeline's own.

use std::fmt;

use crate::model::Lsn;

/// One line of a timeline history file: `tli` ended at `switchpoint` (the next timeline
/// starts there).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ancestor {
    /// The ancestor timeline.
    pub tli: u32,
    /// Where it ends.
    pub switchpoint: Lsn,
}

/// A history file that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid timeline history line {line}: {text}")]
pub struct InvalidHistory {
    /// The line number, from 1.
    pub line: usize,
    /// What is wrong.
    pub text: String,
}

/// Parses a timeline history file (`0000000N.history`): lines of `parent-tli <tab> switchpoint
/// <tab> reason`, comments starting with `#`, blank lines.
pub fn parse_history(text: &str) -> Result<Vec<Ancestor>, InvalidHistory> {
    let mut ancestors = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let invalid = |why: &str| InvalidHistory {
            line: i + 1,
            text: why.to_string(),
        };
        let mut fields = line.split_whitespace();
        let tli = fields
            .next()
            .and_then(|f| f.parse::<u32>().ok())
            .ok_or_else(|| invalid("expected a timeline id"))?;
        let switchpoint = fields
            .next()
            .and_then(|f| f.parse::<Lsn>().ok())
            .ok_or_else(|| invalid("expected a switch point LSN"))?;
        if ancestors.last().is_some_and(|a: &Ancestor| a.tli >= tli) {
            return Err(invalid("timelines must increase"));
        }
        ancestors.push(Ancestor { tli, switchpoint });
    }
    Ok(ancestors)
}

/// The timeline of the WAL at `lsn` (an end-of-WAL position: the node holds the bytes before
/// it) for a node that reads its last segment from timeline `newest`, whose history is
/// `history` (empty for timeline 1).
pub fn timeline_of(lsn: Lsn, newest: u32, history: &[Ancestor]) -> u32 {
    history
        .iter()
        .find(|a| lsn <= a.switchpoint)
        .map_or(newest, |a| a.tli)
}

/// The segment (as the last 16 hex digits of a WAL file name) holding the last byte before
/// `lsn`, for segments of `segment_size` bytes.
pub fn segment_suffix(lsn: Lsn, segment_size: u64) -> Option<String> {
    if segment_size == 0 || !segment_size.is_power_of_two() || segment_size > 1 << 32 {
        return None;
    }
    let last = lsn.0.checked_sub(1)?;
    let segment = last / segment_size;
    let per_id = (1u64 << 32) / segment_size;
    Some(format!("{:08X}{:08X}", segment / per_id, segment % per_id))
}

/// The timeline in a WAL segment file name (`TTTTTTTTXXXXXXXXYYYYYYYY`), if `name` is one for
/// the segment `suffix`.
pub fn segment_timeline(name: &str, suffix: &str) -> Option<u32> {
    if name.len() != 24 || !name.ends_with(suffix) {
        return None;
    }
    let tli = name.get(..8)?;
    if !tli.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(tli, 16).ok().filter(|t| *t > 0)
}

/// The name of timeline `tli`'s history file.
pub fn history_file_name(tli: u32) -> String {
    format!("{tli:08X}.history")
}

impl fmt::Display for Ancestor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.tli, self.switchpoint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HISTORY_3: &str = "1\t0/5000000\tno recovery target specified\n\n\
                             2\t0/5028780\tno recovery target specified\n";

    #[test]
    fn history_files_parse() {
        assert_eq!(
            parse_history(HISTORY_3),
            Ok(vec![
                Ancestor {
                    tli: 1,
                    switchpoint: Lsn(0x500_0000)
                },
                Ancestor {
                    tli: 2,
                    switchpoint: Lsn(0x502_8780)
                },
            ])
        );
        assert_eq!(parse_history("# nothing\n"), Ok(vec![]));
        assert!(parse_history("x\t0/1\n").is_err());
        assert!(parse_history("2\t0/1\n1\t0/2\n").is_err());
        assert!(parse_history("1 nope\n").is_err());
    }

    #[test]
    fn a_position_belongs_to_the_timeline_that_wrote_its_last_byte() {
        let history = parse_history(HISTORY_3).expect("history");
        // before and at the first switch: timeline 1's bytes
        assert_eq!(timeline_of(Lsn(0x400_0000), 3, &history), 1);
        assert_eq!(timeline_of(Lsn(0x500_0000), 3, &history), 1);
        // past it, up to the second switch: timeline 2
        assert_eq!(timeline_of(Lsn(0x500_0001), 3, &history), 2);
        assert_eq!(timeline_of(Lsn(0x502_8780), 3, &history), 2);
        // past every switch: the newest timeline
        assert_eq!(timeline_of(Lsn(0x502_87B0), 3, &history), 3);
        assert_eq!(timeline_of(Lsn(0x600_0000), 1, &[]), 1);
    }

    #[test]
    fn segments_are_named_as_postgres_names_them() {
        let mb16 = 16 * 1024 * 1024;
        assert_eq!(
            segment_suffix(Lsn(0x502_8780), mb16).as_deref(),
            Some("0000000000000005")
        );
        // an end exactly at a segment boundary: the last byte is in the previous segment
        assert_eq!(
            segment_suffix(Lsn(0x600_0000), mb16).as_deref(),
            Some("0000000000000005")
        );
        assert_eq!(
            segment_suffix(Lsn(0x1_0000_0000 + 0x100_0000 + 1), mb16).as_deref(),
            Some("0000000100000001")
        );
        assert_eq!(segment_suffix(Lsn(0), mb16), None);
        assert_eq!(segment_suffix(Lsn(5), 3), None);
        let suffix = "0000000000000005";
        assert_eq!(
            segment_timeline("000000030000000000000005", suffix),
            Some(3)
        );
        assert_eq!(segment_timeline("000000030000000000000006", suffix), None);
        assert_eq!(segment_timeline("00000003.history", suffix), None);
        assert_eq!(segment_timeline("0000000G0000000000000005", suffix), None);
        assert_eq!(history_file_name(10), "0000000A.history");
    }
}
