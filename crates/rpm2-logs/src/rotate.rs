//! Log rotation (pm2-logrotate's behaviour, built in): a writer task renames
//! its file when a write would take it past `max_size` (cutting only after
//! a newline, so no line is split) and opens the path again; the renamed
//! file is handed to one background thread that gzips it (`compress`) and
//! deletes the oldest rotated files beyond `retain`. Nothing here runs on
//! the pumps' path: the rename is one metadata syscall on the writer task's
//! blocking call, and gzip and retention run on their own thread, in order.
//!
//! Naming is pm2-logrotate's: `app-out.log` becomes
//! `app-out__2026-11-30_20-10-00.log` (`.gz` when compressed). pm2-logrotate
//! overwrites a name already used in the same second; rpm2 appends `_0001`,
//! `_0002`… instead, which still sorts after the plain name, so name order
//! is age order for `retain`.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};

use chrono::format::Item;

/// What the daemon's settings say about rotation; `None` in the registry
/// means rotation is off.
#[derive(Debug, Clone)]
pub struct RotatePolicy {
    /// Rotate once a file would reach this many bytes; `None`: only when
    /// asked (the cron schedule).
    pub max_size: Option<u64>,
    /// How many rotated files to keep per log file; `None`: all.
    pub retain: Option<usize>,
    /// gzip rotated files.
    pub compress: bool,
    /// Parsed strftime items for the date in rotated names.
    pub date_items: Vec<Item<'static>>,
}

impl RotatePolicy {
    /// A policy with the date format given as strftime (already converted
    /// from pm2-logrotate's moment syntax). A format chrono refuses is an
    /// error, not a panic while formatting.
    pub fn new(
        max_size: Option<u64>,
        retain: Option<usize>,
        compress: bool,
        strftime: &str,
    ) -> Result<Self, String> {
        let date_items = chrono::format::StrftimeItems::new(strftime)
            .parse_to_owned()
            .map_err(|e| format!("invalid date format {strftime:?}: {e}"))?;
        Ok(Self {
            max_size,
            retain,
            compress,
            date_items,
        })
    }

    fn date(&self) -> String {
        chrono::Local::now()
            .format_with_items(self.date_items.iter())
            .to_string()
    }
}

/// Per writer: the last rotated name's date and sequence, so several
/// rotations within one date value get increasing suffixes even after
/// `retain` deleted the earlier ones.
#[derive(Debug, Default)]
pub struct NameState {
    last_date: String,
    seq: u32,
}

/// `app-out.log` → (`app-out__`, `.log`): the prefix shared by every
/// rotated file of `path`, and the extension.
fn parts(path: &Path) -> (String, &'static str) {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = name.strip_suffix(".log").unwrap_or(&name).to_owned();
    (format!("{stem}__"), ".log")
}

/// The free name to rename `path` to now.
pub(crate) fn rotated_name(path: &Path, policy: &RotatePolicy, st: &mut NameState) -> PathBuf {
    let dir = path.parent().unwrap_or(Path::new("."));
    let (prefix, ext) = parts(path);
    let date = policy.date().replace('/', "-");
    if date == st.last_date {
        st.seq += 1;
    } else {
        st.last_date.clone_from(&date);
        st.seq = 0;
    }
    loop {
        let name = if st.seq == 0 {
            format!("{prefix}{date}{ext}")
        } else {
            format!("{prefix}{date}_{:04}{ext}", st.seq)
        };
        let candidate = dir.join(&name);
        let gz = dir.join(format!("{name}.gz"));
        if !candidate.exists() && !gz.exists() {
            return candidate;
        }
        st.seq += 1;
    }
}

/// Rotates a file the daemon does not write through a [`crate::LogRegistry`]
/// writer (its own log): renames it and queues gzip and retention. The
/// caller opens the path again. Blocking.
pub fn rotate_path(path: &Path, policy: &RotatePolicy, st: &mut NameState) -> io::Result<PathBuf> {
    let target = rotated_name(path, policy, st);
    std::fs::rename(path, &target)?;
    after_rotation(path, target.clone(), policy);
    Ok(target)
}

/// Work for the background thread, in rotation order.
struct Job {
    /// The log file's path (its rotated siblings are found from it).
    live: PathBuf,
    rotated: PathBuf,
    compress: bool,
    retain: Option<usize>,
}

/// Queues the after-rotation work (gzip, retention) of one rotated file.
pub(crate) fn after_rotation(live: &Path, rotated: PathBuf, policy: &RotatePolicy) {
    if !policy.compress && policy.retain.is_none() {
        return;
    }
    let job = Job {
        live: live.to_path_buf(),
        rotated,
        compress: policy.compress,
        retain: policy.retain,
    };
    // A poisoned lock still holds a usable sender.
    let tx = worker()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    // Fails only if the thread could not start: the file stays uncompressed.
    let _ = tx.send(job);
}

/// The one background thread, started on first use.
fn worker() -> &'static Mutex<mpsc::Sender<Job>> {
    static TX: OnceLock<Mutex<mpsc::Sender<Job>>> = OnceLock::new();
    TX.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        let spawned = std::thread::Builder::new()
            .name("rpm2-logrotate".into())
            .spawn(move || {
                for job in rx {
                    run_job(&job);
                }
            });
        if let Err(e) = spawned {
            tracing::warn!("cannot start the log rotation thread: {e}");
        }
        Mutex::new(tx)
    })
}

fn run_job(job: &Job) {
    if job.compress {
        if let Err(e) = gzip(&job.rotated) {
            tracing::warn!(path = %job.rotated.display(), error = %e, "cannot compress rotated log");
        }
    }
    if let Some(retain) = job.retain {
        if let Err(e) = prune(&job.live, retain) {
            tracing::warn!(path = %job.live.display(), error = %e, "cannot delete old rotated logs");
        }
    }
}

/// `x.log` → `x.log.gz`, then removes `x.log`. Written under a temporary
/// name first so a reader never sees half a gzip file under the real name.
pub fn gzip(path: &Path) -> io::Result<()> {
    let mut gz_name = path.as_os_str().to_owned();
    gz_name.push(".gz");
    let gz = PathBuf::from(gz_name);
    let mut tmp_name = gz.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = PathBuf::from(tmp_name);
    let result = (|| {
        let mut input = BufReader::new(File::open(path)?);
        let out = crate::safe_open::create_new(&tmp)?;
        let mut enc =
            flate2::write::GzEncoder::new(BufWriter::new(out), flate2::Compression::default());
        io::copy(&mut input, &mut enc)?;
        enc.finish()?.flush()?;
        std::fs::rename(&tmp, &gz)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
        return result;
    }
    std::fs::remove_file(path)
}

/// Deletes the oldest rotated files of `live` beyond `retain` (name order
/// is age order, see the module docs). Temporary gzip files are left to
/// the job that writes them.
fn prune(live: &Path, retain: usize) -> io::Result<()> {
    let dir = live.parent().unwrap_or(Path::new("."));
    let (prefix, _) = parts(live);
    let mut rotated: Vec<String> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with(&prefix) && !n.ends_with(".tmp"))
        .collect();
    rotated.sort();
    let excess = rotated.len().saturating_sub(retain);
    for name in &rotated[..excess] {
        match std::fs::remove_file(dir.join(name)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_pm2_logrotate_and_stay_ordered() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("app-out.log");
        let p = RotatePolicy::new(None, None, false, "%Y-%m-%d_%H-%M-%S").unwrap();
        let mut st = NameState::default();
        let a = rotated_name(&live, &p, &mut st);
        let an = a.file_name().unwrap().to_str().unwrap().to_owned();
        assert!(an.starts_with("app-out__") && an.ends_with(".log"), "{an}");
        std::fs::write(&a, "x").unwrap();
        let b = rotated_name(&live, &p, &mut st);
        let bn = b.file_name().unwrap().to_str().unwrap().to_owned();
        assert_ne!(an, bn);
        assert!(an < bn, "{an} < {bn}");
    }

    #[test]
    fn gzip_replaces_the_file_and_prune_keeps_the_newest() {
        use std::io::Read;
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("a.log");
        for n in ["a__1.log", "a__2.log", "a__3.log"] {
            std::fs::write(dir.path().join(n), n).unwrap();
        }
        gzip(&dir.path().join("a__3.log")).unwrap();
        assert!(!dir.path().join("a__3.log").exists());
        let mut text = String::new();
        flate2::read::GzDecoder::new(File::open(dir.path().join("a__3.log.gz")).unwrap())
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "a__3.log");
        prune(&live, 2).unwrap();
        assert!(!dir.path().join("a__1.log").exists());
        assert!(dir.path().join("a__2.log").exists());
    }
}
