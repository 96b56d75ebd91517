//! Process facts from /proc: the tree under a process, CPU time, resident memory; and
//! signalling a whole tree (freezing a "host" with SIGSTOP).

use std::fs;

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`).
pub fn ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

/// What /proc/<pid>/stat says that we use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// Parent pid.
    pub ppid: i32,
    /// User + system CPU ticks of the process.
    pub own_ticks: u64,
    /// User + system CPU ticks of its waited-for children.
    pub children_ticks: u64,
}

/// Parses the text of /proc/<pid>/stat.
pub fn parse_stat(text: &str) -> Option<Stat> {
    // "pid (comm) state ppid ..." — comm may hold spaces and parentheses
    let after = text.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // fields[0] is the state (field 3); utime is field 14, so index 11
    let num = |i: usize| fields.get(i)?.parse::<u64>().ok();
    Some(Stat {
        ppid: fields.get(1)?.parse().ok()?,
        own_ticks: num(11)? + num(12)?,
        children_ticks: num(13)? + num(14)?,
    })
}

/// The stat of `pid`.
pub fn stat(pid: i32) -> Option<Stat> {
    parse_stat(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// The command name of `pid`.
pub fn comm(pid: i32) -> String {
    fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Resident memory of `pid` in KiB.
pub fn rss_kib(pid: i32) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// `root` and all its descendants.
pub fn tree(root: i32) -> Vec<i32> {
    let mut all: Vec<(i32, i32)> = Vec::new();
    if let Ok(entries) = fs::read_dir("/proc") {
        for entry in entries.flatten() {
            if let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<i32>().ok())
                && let Some(s) = stat(pid)
            {
                all.push((pid, s.ppid));
            }
        }
    }
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() {
        let parent = out[i];
        out.extend(all.iter().filter(|(_, p)| *p == parent).map(|(c, _)| *c));
        i += 1;
    }
    out
}

/// Sends `signal` to `root` and every descendant (children first found, then theirs).
pub fn signal_tree(root: i32, signal: i32) {
    for pid in tree(root) {
        // SAFETY: signalling processes this test started
        unsafe { libc::kill(pid, signal) };
    }
}

/// CPU ticks used so far by `root` and its descendants, including those that exited and
/// were waited for.
pub fn tree_ticks(root: i32) -> u64 {
    let pids = tree(root);
    let mut total = stat(root).map_or(0, |s| s.children_ticks);
    for pid in pids {
        total += stat(pid).map_or(0, |s| s.own_ticks);
    }
    total
}

/// CPU ticks used so far by `pid` itself and its waited-for children.
pub fn tree_ticks_own(pid: i32) -> u64 {
    stat(pid).map_or(0, |s| s.own_ticks + s.children_ticks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_stat_line_with_spaces_in_the_name() {
        let line = "4242 (pg_autoctl: node active) S 4200 4242 4242 0 -1 4194304 100 0 0 0 7 3 11 13 20 0 1 0 100 1000 200";
        let s = parse_stat(line).expect("parse");
        assert_eq!(s.ppid, 4200);
        assert_eq!(s.own_ticks, 10);
        assert_eq!(s.children_ticks, 24);
    }

    #[test]
    fn our_own_process_is_in_its_tree_and_uses_memory() {
        let me = std::process::id() as i32;
        assert!(tree(me).contains(&me));
        assert!(rss_kib(me) > 0);
        assert!(!comm(me).is_empty());
    }
}
