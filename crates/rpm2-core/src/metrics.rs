//! CPU and memory of workers, read from /proc (no helper processes).

use std::collections::HashMap;
use std::time::Instant;

use nix::unistd::{sysconf, SysconfVar};

/// Remembers the previous CPU sample of each pid so `cpu` is the share of
/// one core used since the last look (pm2/pidusage report the same).
#[derive(Debug, Default)]
pub struct CpuSampler {
    last: HashMap<u32, (u64, Instant)>,
}

impl CpuSampler {
    /// `(rss_bytes, cpu_percent)` of `pid`, or zeros if it is gone.
    pub fn sample(&mut self, pid: u32) -> (u64, f64) {
        let Some((ticks, rss_pages)) = read_stat(pid) else {
            self.last.remove(&pid);
            return (0, 0.0);
        };
        let now = Instant::now();
        let cpu = match self.last.insert(pid, (ticks, now)) {
            Some((prev, at)) => {
                let secs = now.duration_since(at).as_secs_f64();
                if secs > 0.0 {
                    #[expect(clippy::cast_precision_loss, reason = "CPU ticks fit a double")]
                    let used = ticks.saturating_sub(prev) as f64 / clock_ticks();
                    (used / secs * 1000.0).round() / 10.0
                } else {
                    0.0
                }
            }
            // First look: average over the process lifetime is misleading,
            // so report 0 like pidusage's first call.
            None => 0.0,
        };
        (rss_pages.saturating_mul(page_size()), cpu)
    }

    /// Forget pids that are no longer asked about.
    pub fn retain(&mut self, live: &[u32]) {
        self.last.retain(|pid, _| live.contains(pid));
    }
}

/// utime+stime ticks and RSS pages from `/proc/<pid>/stat`.
fn read_stat(pid: u32) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    // `get`: a file cut short (the process exiting mid-read) is no panic.
    let rest = text.get(text.rfind(')')? + 1..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state); utime=14, stime=15, rss=24.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let rss: u64 = fields.get(21)?.parse().ok()?;
    Some((utime.saturating_add(stime), rss))
}

fn clock_ticks() -> f64 {
    match sysconf(SysconfVar::CLK_TCK) {
        Ok(Some(t)) if t > 0 => t as f64,
        _ => 100.0,
    }
}

fn page_size() -> u64 {
    match sysconf(SysconfVar::PAGE_SIZE) {
        Ok(Some(p)) => u64::try_from(p).unwrap_or(4096),
        _ => 4096,
    }
}

/// RSS of one pid in bytes (for `max_memory_restart` and the benchmarks).
#[must_use]
pub fn rss_bytes(pid: u32) -> u64 {
    read_stat(pid).map_or(0, |(_, pages)| pages.saturating_mul(page_size()))
}

/// CPU time (user + system) `pid` has used, in seconds (`/metrics`).
#[must_use]
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    #[expect(clippy::cast_precision_loss, reason = "CPU ticks fit a double")]
    read_stat(pid).map(|(ticks, _)| ticks as f64 / clock_ticks())
}

/// How many file descriptors this process has open.
#[must_use]
pub fn open_fds() -> Option<usize> {
    // The directory being read holds one descriptor itself.
    let n = std::fs::read_dir("/proc/self/fd").ok()?.count();
    Some(n.saturating_sub(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_our_own_process() {
        let mut s = CpuSampler::default();
        let (rss, cpu) = s.sample(std::process::id());
        assert!(rss > 0);
        assert!(cpu >= 0.0);
        assert_eq!(s.sample(u32::MAX - 1), (0, 0.0));
        assert!(cpu_seconds(std::process::id()).is_some());
        assert!(open_fds().is_some_and(|n| n >= 3));
    }
}
