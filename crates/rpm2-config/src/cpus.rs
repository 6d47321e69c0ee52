//! How many CPUs this process may really use: what `instances: 'max' | 0 | -1`
//! count from.
//!
//! pm2 counts the host's CPUs (`os.cpus().length`), so a container limited
//! to 2 CPUs on a 64-CPU host gets 64 workers (pm2 #4347). We count the
//! CPUs in the scheduler affinity mask (`taskset`, `cpuset`), then cap that
//! by the cgroup CPU quota (v2 `cpu.max`, v1 `cpu.cfs_quota_us` /
//! `cpu.cfs_period_us`) of this cgroup and each of its ancestors, rounded
//! up: a quota of 1.5 CPUs gives 2 workers. Never less than 1.
//!
//! Parsing works on text (`/proc/self/cgroup`, `/proc/self/mountinfo`, the
//! quota files) so that it is tested on sample files; only [`usable_cpus`]
//! reads the real ones.

use std::path::{Path, PathBuf};

/// CPUs this process may use: affinity capped by the cgroup quota, ≥ 1.
#[must_use]
pub fn usable_cpus() -> u32 {
    let affinity = affinity_cpus();
    let quota =
        Cgroups::read_self().and_then(|c| c.quota_cpus(&|p| std::fs::read_to_string(p).ok()));
    quota.map_or(affinity, |q| q.min(affinity)).max(1)
}

/// CPUs in this process's affinity mask (all online CPUs when unrestricted).
fn affinity_cpus() -> u32 {
    #[cfg(target_os = "linux")]
    if let Ok(set) = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)) {
        let n = (0..nix::sched::CpuSet::count())
            .filter(|&i| set.is_set(i).unwrap_or(false))
            .count();
        if n > 0 {
            return u32::try_from(n).unwrap_or(u32::MAX);
        }
    }
    std::thread::available_parallelism().map_or(1, |n| u32::try_from(n.get()).unwrap_or(u32::MAX))
}

/// A CPU bandwidth limit: `quota_us` of CPU time per `period_us`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Quota {
    quota_us: u64,
    period_us: u64,
}

impl Quota {
    /// Whole CPUs the quota allows, rounded up, at least 1.
    pub(crate) fn cpus(self) -> u32 {
        let n = self.quota_us.div_ceil(self.period_us).max(1);
        u32::try_from(n).unwrap_or(u32::MAX)
    }
}

/// v2 `cpu.max`: `"max 100000"` (no limit) or `"<quota> <period>"`.
pub(crate) fn parse_cpu_max(text: &str) -> Option<Quota> {
    let mut words = text.split_whitespace();
    let quota = words.next()?;
    let period = words.next().map_or(Some(100_000), |p| p.parse().ok())?;
    quota_of(quota.parse().ok()?, period)
}

/// v1 `cpu.cfs_quota_us` (`-1`: no limit) and `cpu.cfs_period_us`.
pub(crate) fn parse_cfs(quota: &str, period: &str) -> Option<Quota> {
    let quota: i64 = quota.trim().parse().ok()?;
    quota_of(u64::try_from(quota).ok()?, period.trim().parse().ok()?)
}

fn quota_of(quota_us: u64, period_us: u64) -> Option<Quota> {
    (quota_us > 0 && period_us > 0).then_some(Quota {
        quota_us,
        period_us,
    })
}

/// Which cgroup version holds a directory's CPU quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    V1,
    V2,
}

/// The directories of this process's cgroup that may hold a CPU quota.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Cgroups {
    /// `(version, mount point, mount root, this process's cgroup path)`.
    places: Vec<(Version, PathBuf, String, String)>,
}

impl Cgroups {
    fn read_self() -> Option<Self> {
        let cgroup = std::fs::read_to_string("/proc/self/cgroup").ok()?;
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
        Some(Self::parse(&cgroup, &mountinfo))
    }

    /// From `/proc/self/cgroup` (`0::/path` for v2, `4:cpu,cpuacct:/path`
    /// for v1) and `/proc/self/mountinfo` (where each hierarchy is mounted,
    /// and which part of it: a container sees its own cgroup as `/`).
    pub(crate) fn parse(cgroup: &str, mountinfo: &str) -> Self {
        let mut places = Vec::new();
        for line in cgroup.lines() {
            let mut parts = line.splitn(3, ':');
            let (Some(_), Some(controllers), Some(path)) =
                (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let version = if controllers.is_empty() {
                Version::V2
            } else if controllers.split(',').any(|c| c == "cpu") {
                Version::V1
            } else {
                continue;
            };
            if let Some((mount, root)) = find_mount(mountinfo, version) {
                places.push((version, mount, root, path.to_owned()));
            }
        }
        Self { places }
    }

    /// The smallest quota of this cgroup and its ancestors, in CPUs; `None`
    /// when none is set. `read` gives a file's text (`None`: missing).
    pub(crate) fn quota_cpus(&self, read: &dyn Fn(&Path) -> Option<String>) -> Option<u32> {
        let mut smallest: Option<u32> = None;
        for (version, mount, root, path) in &self.places {
            // The part of our path below what this mount shows.
            let inner = path.strip_prefix(root.as_str()).unwrap_or(path);
            let mut dir = mount.clone();
            let mut dirs = vec![dir.clone()];
            for part in inner.split('/').filter(|p| !p.is_empty()) {
                dir.push(part);
                dirs.push(dir.clone());
            }
            for dir in dirs {
                let quota = match version {
                    Version::V2 => read(&dir.join("cpu.max")).and_then(|t| parse_cpu_max(&t)),
                    Version::V1 => read(&dir.join("cpu.cfs_quota_us"))
                        .zip(read(&dir.join("cpu.cfs_period_us")))
                        .and_then(|(q, p)| parse_cfs(&q, &p)),
                };
                if let Some(q) = quota {
                    smallest = Some(smallest.map_or(q.cpus(), |s| s.min(q.cpus())));
                }
            }
        }
        smallest
    }
}

/// The mount point and mount root of the v2 hierarchy, or of the v1
/// hierarchy that has the `cpu` controller.
fn find_mount(mountinfo: &str, version: Version) -> Option<(PathBuf, String)> {
    mountinfo.lines().find_map(|line| {
        // `id parent major:minor root mount-point options [optional…] - fstype source super-options`
        let (left, right) = line.split_once(" - ")?;
        let fields: Vec<&str> = left.split(' ').collect();
        let mut right = right.split(' ');
        let fstype = right.next()?;
        let super_options = right.nth(1).unwrap_or("");
        let wanted = match version {
            Version::V2 => fstype == "cgroup2",
            Version::V1 => fstype == "cgroup" && super_options.split(',').any(|o| o == "cpu"),
        };
        (wanted && fields.len() >= 5)
            .then(|| (PathBuf::from(unescape(fields[4])), unescape(fields[3])))
    })
}

/// mountinfo writes space, tab, newline and backslash as `\040`-style octal.
fn unescape(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut rest = field;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let code = rest
            .get(i + 1..i + 4)
            .and_then(|o| u8::from_str_radix(o, 8).ok());
        if let Some(c) = code {
            out.push(char::from(c));
            rest = &rest[i + 4..];
        } else {
            out.push('\\');
            rest = &rest[i + 1..];
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    const V2_MOUNT: &str =
        "30 23 0:27 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
    const V1_MOUNTS: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct
33 31 0:30 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
";

    fn files(list: &[(&str, &str)]) -> impl Fn(&Path) -> Option<String> {
        let map: BTreeMap<PathBuf, String> = list
            .iter()
            .map(|(p, t)| (PathBuf::from(p), (*t).to_owned()))
            .collect();
        move |p| map.get(p).cloned()
    }

    #[test]
    fn cpu_max_lines() {
        assert_eq!(parse_cpu_max("max 100000\n"), None);
        assert_eq!(parse_cpu_max("200000 100000\n").map(Quota::cpus), Some(2));
        assert_eq!(parse_cpu_max("150000 100000\n").map(Quota::cpus), Some(2));
        assert_eq!(parse_cpu_max("50000 100000").map(Quota::cpus), Some(1));
        assert_eq!(parse_cpu_max("1000 100000").map(Quota::cpus), Some(1));
        assert_eq!(parse_cpu_max(""), None);
        assert_eq!(parse_cpu_max("lots 100000"), None);
        assert_eq!(parse_cpu_max("100000 0"), None);
    }

    #[test]
    fn cfs_files() {
        assert_eq!(parse_cfs("-1\n", "100000\n"), None);
        assert_eq!(parse_cfs("300000\n", "100000\n").map(Quota::cpus), Some(3));
        assert_eq!(parse_cfs("250000", "100000").map(Quota::cpus), Some(3));
        assert_eq!(parse_cfs("", "100000"), None);
    }

    #[test]
    fn v2_nested_cgroup_takes_the_smallest_quota_of_its_ancestors() {
        let cg = Cgroups::parse("0::/system.slice/app.service\n", V2_MOUNT);
        let read = files(&[
            ("/sys/fs/cgroup/cpu.max", "max 100000\n"),
            ("/sys/fs/cgroup/system.slice/cpu.max", "300000 100000\n"),
            (
                "/sys/fs/cgroup/system.slice/app.service/cpu.max",
                "150000 100000\n",
            ),
        ]);
        assert_eq!(cg.quota_cpus(&read), Some(2));
        let read = files(&[
            ("/sys/fs/cgroup/system.slice/cpu.max", "100000 100000\n"),
            (
                "/sys/fs/cgroup/system.slice/app.service/cpu.max",
                "max 100000\n",
            ),
        ]);
        assert_eq!(cg.quota_cpus(&read), Some(1));
    }

    #[test]
    fn v2_unlimited_or_missing_files_mean_no_quota() {
        let cg = Cgroups::parse("0::/user.slice\n", V2_MOUNT);
        assert_eq!(
            cg.quota_cpus(&files(&[(
                "/sys/fs/cgroup/user.slice/cpu.max",
                "max 100000"
            )])),
            None
        );
        assert_eq!(cg.quota_cpus(&files(&[])), None);
        // No cgroup2 mount at all.
        assert_eq!(Cgroups::parse("0::/x\n", "").quota_cpus(&files(&[])), None);
        assert_eq!(Cgroups::parse("", V2_MOUNT), Cgroups::default());
    }

    #[test]
    fn v1_cpu_controller_in_its_own_hierarchy() {
        let cgroup = "12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n3:cpuset:/docker/abc\n";
        let cg = Cgroups::parse(cgroup, V1_MOUNTS);
        let read = files(&[
            (
                "/sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us",
                "200000\n",
            ),
            (
                "/sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_period_us",
                "100000\n",
            ),
            ("/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "-1\n"),
            ("/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us", "100000\n"),
        ]);
        assert_eq!(cg.quota_cpus(&read), Some(2));
    }

    #[test]
    fn a_container_sees_its_cgroup_as_the_mount_root() {
        // The mount shows only /docker/abc, mounted at /sys/fs/cgroup/cpu.
        let mounts = "40 31 0:29 /docker/abc /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n";
        let cg = Cgroups::parse("4:cpu:/docker/abc\n", mounts);
        let read = files(&[
            ("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "150000"),
            ("/sys/fs/cgroup/cpu/cpu.cfs_period_us", "100000"),
        ]);
        assert_eq!(cg.quota_cpus(&read), Some(2));
    }

    #[test]
    fn escaped_mount_points() {
        let mounts = "30 23 0:27 / /mnt/cg\\040two - cgroup2 cgroup2 rw\n";
        let cg = Cgroups::parse("0::/\n", mounts);
        let read = files(&[("/mnt/cg two/cpu.max", "400000 100000")]);
        assert_eq!(cg.quota_cpus(&read), Some(4));
    }

    #[test]
    fn this_process_gets_at_least_one() {
        assert!(usable_cpus() >= 1);
        assert!(usable_cpus() <= affinity_cpus());
    }
}
