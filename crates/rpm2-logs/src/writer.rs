//! Log files: one writer task per distinct path, fed by an unbounded queue.
//!
//! Why a task per file rather than writing from the pumps: several pumps may
//! share a file (`merge_logs`, the combined `log_file`), and a slow or stuck
//! disk must never block a pump (the worker would block on a full pipe). The
//! task drains everything queued since its last write and writes it with one
//! `write_all` on the blocking pool, so a flood costs few syscalls.
//!
//! A path's task lives as long as some [`FileWriter`] for it exists; the
//! registry only keeps weak references so that deleted apps release their
//! files. If a new writer is requested while the previous task for the same
//! path is still draining, the new task waits for the old one to finish, so
//! lines from one restart never overtake the previous run's last lines.

use std::collections::HashMap;
use std::fs::File;

use crate::rotate::{self, NameState, RotatePolicy};
use crate::safe_open::open_append;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::{mpsc, oneshot, watch};

/// A writer task never writes more than this in one call: bounds the time a
/// `reopen`/`truncate` waits behind a huge backlog, and the copy size.
const MAX_BATCH: usize = 8 << 20;

/// What a writer task is asked to do, in queue order.
enum Cmd {
    Data(Vec<u8>),
    Reopen(oneshot::Sender<io::Result<()>>),
    Truncate(oneshot::Sender<io::Result<()>>),
    Sync(oneshot::Sender<()>),
    /// Rotate now if the file is not empty (the cron schedule); at the
    /// next line end if a line is unfinished.
    Rotate(oneshot::Sender<()>),
}

/// Held by every [`FileWriter`] of one path; dropping the last one closes
/// the queue, and the task exits after writing what was queued.
struct Shared {
    tx: mpsc::UnboundedSender<Cmd>,
    path: PathBuf,
}

/// The registry's view of a path's task.
struct Slot {
    shared: Weak<Shared>,
    /// Closed (sender dropped) when the task has exited and closed the file.
    done: watch::Receiver<()>,
}

impl Slot {
    fn finished(&self) -> bool {
        self.done.has_changed().is_err()
    }
}

/// The rotation settings every writer task follows; `None`: off.
type Policy = Option<Arc<RotatePolicy>>;

/// All log files of the daemon. Cheap to clone (shared state).
#[derive(Clone)]
pub struct LogRegistry {
    slots: Arc<Mutex<HashMap<PathBuf, Slot>>>,
    rotation: Arc<watch::Sender<Policy>>,
    /// The task that drives time-based rotation (cron), replaced when the
    /// settings change.
    schedule: Arc<Mutex<Option<tokio::task::JoinHandle<()>>>>,
}

impl Default for LogRegistry {
    fn default() -> Self {
        Self {
            slots: Arc::default(),
            rotation: Arc::new(watch::channel(None).0),
            schedule: Arc::default(),
        }
    }
}

/// Sends byte buffers to one file's writer task. Cheap to clone; never
/// blocks and never drops data (the queue is unbounded).
#[derive(Clone)]
pub struct FileWriter {
    shared: Arc<Shared>,
}

impl FileWriter {
    /// Queues `data` to be appended to the file.
    pub fn write(&self, data: Vec<u8>) {
        if data.is_empty() {
            return;
        }
        // Fails only if the task died (a bug or runtime shutdown); nothing
        // sensible to do with the bytes then.
        let _ = self.shared.tx.send(Cmd::Data(data));
    }

    /// The path this writer appends to (as the registry keys it).
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.shared.path
    }
}

impl std::fmt::Debug for FileWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileWriter")
            .field("path", &self.shared.path)
            .finish()
    }
}

impl LogRegistry {
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A writer for `path`: creates its parent directories and opens it for
    /// appending. The same path (after resolving the parent directory)
    /// always maps to the same task while any writer for it is alive.
    ///
    /// Must be called inside a tokio runtime (it spawns the writer task).
    pub fn writer(&self, path: &Path) -> io::Result<FileWriter> {
        let key = key_for(path, true)?;
        let mut slots = lock(&self.slots);
        if let Some(shared) = slots.get(&key).and_then(|s| s.shared.upgrade()) {
            return Ok(FileWriter { shared });
        }
        let file = open_append(&key)?;
        let prev = slots.remove(&key).map(|s| s.done);
        let (tx, rx) = mpsc::unbounded_channel();
        let (done_tx, done_rx) = watch::channel(());
        let shared = Arc::new(Shared {
            tx,
            path: key.clone(),
        });
        let (size, ends_line) = size_and_end(&file);
        let task = WriterTask {
            path: key.clone(),
            file: Arc::new(file),
            failing: false,
            dropped: 0,
            checked_at: std::time::Instant::now(),
            size,
            ends_line,
            rotate_pending: false,
            rotate_failing: false,
            names: NameState::default(),
            policy: self.rotation.subscribe(),
            _done: done_tx,
        };
        tokio::spawn(task.run(rx, prev));
        slots.retain(|_, s| !(s.shared.strong_count() == 0 && s.finished()));
        slots.insert(
            key,
            Slot {
                shared: Arc::downgrade(&shared),
                done: done_rx,
            },
        );
        Ok(FileWriter { shared })
    }

    /// Applies new rotation settings to every file, open or opened later
    /// (`None`: rotation off). Takes effect at each file's next write.
    pub fn set_rotation(&self, policy: Option<RotatePolicy>) {
        self.rotation.send_replace(policy.map(Arc::new));
    }

    /// Replaces the task that drives time-based rotation (the previous one
    /// is aborted); `None`: no schedule.
    pub fn set_schedule(&self, task: Option<tokio::task::JoinHandle<()>>) {
        let old = std::mem::replace(&mut *lock(&self.schedule), task);
        if let Some(old) = old {
            old.abort();
        }
    }

    /// Rotates every open, non-empty file (pm2-logrotate's `rotateInterval`
    /// cron). A file whose last line is unfinished rotates at its end.
    pub async fn rotate_all(&self) {
        if self.rotation.borrow().is_none() {
            return;
        }
        let mut waits = Vec::new();
        for shared in self.live() {
            let (tx, rx) = oneshot::channel();
            if shared.tx.send(Cmd::Rotate(tx)).is_ok() {
                waits.push(rx);
            }
        }
        for rx in waits {
            let _ = rx.await;
        }
    }

    /// Makes every open file be opened again by path (pm2's `reloadLogs`,
    /// sent after logrotate renamed the files). Data queued before the call
    /// goes to the old file. Returns the first error; on error a task keeps
    /// writing to its old file.
    pub async fn reopen_all(&self) -> io::Result<()> {
        let mut waits = Vec::new();
        for shared in self.live() {
            let (tx, rx) = oneshot::channel();
            if shared.tx.send(Cmd::Reopen(tx)).is_ok() {
                waits.push(rx);
            }
        }
        let mut result = Ok(());
        for rx in waits {
            if let Ok(Err(e)) = rx.await {
                if result.is_ok() {
                    result = Err(e);
                }
            }
        }
        result
    }

    /// Empties the file at `path` (pm2's `flush`). If a writer is open, the
    /// truncation happens in its queue order: data queued before the call
    /// is discarded, data queued after it lands in the emptied file. A file
    /// that does not exist is left alone.
    pub async fn truncate(&self, path: &Path) -> io::Result<()> {
        let key = key_for(path, false).unwrap_or_else(|_| path.to_path_buf());
        let (shared, mut done) = {
            let slots = lock(&self.slots);
            match slots.get(&key) {
                Some(s) => (s.shared.upgrade(), Some(s.done.clone())),
                None => (None, None),
            }
        };
        if let Some(shared) = shared {
            let (tx, rx) = oneshot::channel();
            if shared.tx.send(Cmd::Truncate(tx)).is_ok() {
                drop(shared);
                return rx.await.unwrap_or(Ok(()));
            }
        }
        // A task still draining would write after our truncation.
        if let Some(done) = done.as_mut() {
            while done.changed().await.is_ok() {}
        }
        blocking(move || crate::safe_open::truncate(&key)).await
    }

    /// Resolves when everything queued so far (by any writer) is written.
    pub async fn sync(&self) {
        let (live, mut draining) = {
            let slots = lock(&self.slots);
            let mut live = Vec::new();
            let mut draining = Vec::new();
            for slot in slots.values() {
                match slot.shared.upgrade() {
                    Some(s) => live.push(s),
                    None => draining.push(slot.done.clone()),
                }
            }
            (live, draining)
        };
        let mut waits = Vec::new();
        for shared in live {
            let (tx, rx) = oneshot::channel();
            if shared.tx.send(Cmd::Sync(tx)).is_ok() {
                waits.push(rx);
            }
        }
        for rx in waits {
            let _ = rx.await;
        }
        for done in &mut draining {
            while done.changed().await.is_ok() {}
        }
    }

    /// Strong references to every live task, taken without holding the lock
    /// across an await.
    fn live(&self) -> Vec<Arc<Shared>> {
        lock(&self.slots)
            .values()
            .filter_map(|s| s.shared.upgrade())
            .collect()
    }
}

/// The writer task for one path.
/// How often a writer checks that its file still has a name.
const DELETED_CHECK_INTERVAL: std::time::Duration = std::time::Duration::from_millis(500);

struct WriterTask {
    path: PathBuf,
    /// Shared with the blocking-pool closure doing the write.
    file: Arc<File>,
    /// Set after a failed write so a full disk logs once, not per batch.
    failing: bool,
    /// Bytes dropped since writes started failing (told when they work
    /// again).
    dropped: u64,
    /// Bytes in the file as far as this task knows (it is the only writer).
    size: u64,
    /// The file ends with a newline (or is empty): rotating now splits no
    /// line.
    ends_line: bool,
    /// A forced rotation waits for the end of the current line.
    rotate_pending: bool,
    /// A rotation failed (logged once until one succeeds).
    rotate_failing: bool,
    names: NameState,
    policy: watch::Receiver<Policy>,
    /// When the file was last checked for having been deleted.
    checked_at: std::time::Instant,
    /// Dropped when the task ends: tells the registry the file is closed.
    _done: watch::Sender<()>,
}

impl WriterTask {
    async fn run(
        mut self,
        mut rx: mpsc::UnboundedReceiver<Cmd>,
        prev: Option<watch::Receiver<()>>,
    ) {
        if let Some(mut prev) = prev {
            while prev.changed().await.is_ok() {}
        }
        let mut pending = None;
        loop {
            let cmd = match pending.take() {
                Some(cmd) => cmd,
                None => match rx.recv().await {
                    Some(cmd) => cmd,
                    None => break,
                },
            };
            match cmd {
                Cmd::Data(mut buf) => {
                    // Coalesce whatever else is already queued.
                    while buf.len() < MAX_BATCH {
                        match rx.try_recv() {
                            Ok(Cmd::Data(more)) => buf.extend_from_slice(&more),
                            Ok(other) => {
                                pending = Some(other);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    self.write(buf).await;
                }
                Cmd::Reopen(reply) => {
                    let _ = reply.send(self.reopen().await);
                }
                Cmd::Truncate(reply) => {
                    let file = Arc::clone(&self.file);
                    let result = blocking(move || file.set_len(0)).await;
                    if result.is_ok() {
                        self.size = 0;
                        self.ends_line = true;
                    }
                    let _ = reply.send(result);
                }
                Cmd::Rotate(reply) => {
                    let policy = self.policy.borrow().clone();
                    if let Some(p) = policy.filter(|_| self.size > 0) {
                        if self.ends_line {
                            self.rotate(&p).await;
                        } else {
                            self.rotate_pending = true;
                        }
                    }
                    let _ = reply.send(());
                }
                Cmd::Sync(reply) => {
                    let _ = reply.send(());
                }
            }
        }
    }

    async fn write(&mut self, mut buf: Vec<u8>) {
        // A deleted file (or `logs/` folder) would swallow every line: look
        // now and then, and open the path again (recreating the folder).
        if self.checked_at.elapsed() >= DELETED_CHECK_INTERVAL {
            self.checked_at = std::time::Instant::now();
            let deleted = self.file.metadata().is_ok_and(|m| {
                use std::os::unix::fs::MetadataExt;
                m.nlink() == 0
            });
            if deleted {
                match self.reopen().await {
                    Ok(()) => {
                        tracing::warn!(path = %self.path.display(), "log file was deleted: created it again")
                    }
                    Err(e) => {
                        tracing::warn!(path = %self.path.display(), error = %e, "log file was deleted and cannot be created again")
                    }
                }
            }
        }
        let policy = self.policy.borrow().clone();
        if let Some(p) = policy {
            loop {
                let limit = if self.rotate_pending {
                    Some(0)
                } else {
                    p.max_size
                };
                let Some(limit) = limit else { break };
                let Some(cut) = cut_point(&buf, self.size, limit, self.ends_line) else {
                    break;
                };
                if cut > 0 {
                    let rest = buf.split_off(cut);
                    self.write_now(buf).await;
                    buf = rest;
                }
                if self.size == 0 || !self.rotate(&p).await {
                    break;
                }
            }
        }
        self.write_now(buf).await;
    }

    /// Appends `buf`; on failure (a full disk) counts what was not written,
    /// logs the first failure and the recovery, and carries on.
    async fn write_now(&mut self, buf: Vec<u8>) {
        if buf.is_empty() {
            return;
        }
        let file = Arc::clone(&self.file);
        let len = buf.len();
        let (written, last, result) = tokio::task::spawn_blocking(move || {
            let mut off = 0;
            let result = loop {
                if off == buf.len() {
                    break Ok(());
                }
                match (&*file).write(&buf[off..]) {
                    Ok(0) => break Err(io::Error::from(io::ErrorKind::WriteZero)),
                    Ok(n) => off += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => break Err(e),
                }
            };
            let last = off.checked_sub(1).map(|i| buf[i]);
            (off, last, result)
        })
        .await
        .unwrap_or_else(|e| (0, None, Err(io::Error::other(e))));
        self.size += written as u64;
        if let Some(b) = last {
            self.ends_line = b == b'\n';
        }
        match result {
            Ok(()) => {
                if self.failing {
                    tracing::warn!(path = %self.path.display(), dropped_bytes = self.dropped, "log writes work again; {} bytes were dropped meanwhile", self.dropped);
                }
                self.failing = false;
                self.dropped = 0;
            }
            Err(e) => {
                if !self.failing {
                    tracing::warn!(path = %self.path.display(), error = %e, "log write failed; dropping output until writes work again");
                }
                self.failing = true;
                self.dropped += (len - written) as u64;
            }
        }
    }

    /// Renames the file (pm2-logrotate's naming) and opens the path again;
    /// gzip and retention are queued to the rotation thread. False if it
    /// failed (logged once until a rotation works).
    async fn rotate(&mut self, policy: &Arc<RotatePolicy>) -> bool {
        let path = self.path.clone();
        let p = Arc::clone(policy);
        let mut names = std::mem::take(&mut self.names);
        let (names, result) = tokio::task::spawn_blocking(move || {
            let target = rotate::rotated_name(&path, &p, &mut names);
            let result = std::fs::rename(&path, &target)
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
                .and_then(|()| Ok((open_append(&path)?, target)));
            (names, result)
        })
        .await
        .unwrap_or_else(|e| (NameState::default(), Err(io::Error::other(e))));
        self.names = names;
        match result {
            Ok((file, target)) => {
                self.file = Arc::new(file);
                self.size = 0;
                self.ends_line = true;
                self.rotate_pending = false;
                self.rotate_failing = false;
                rotate::after_rotation(&self.path, target, policy);
                true
            }
            Err(e) => {
                if !self.rotate_failing {
                    tracing::warn!(error = %e, "cannot rotate log file");
                }
                self.rotate_failing = true;
                self.rotate_pending = false;
                false
            }
        }
    }

    async fn reopen(&mut self) -> io::Result<()> {
        let path = self.path.clone();
        let (file, size, ends_line) = blocking(move || {
            let file = open_append(&path)?;
            let (size, ends_line) = size_and_end(&file);
            Ok((file, size, ends_line))
        })
        .await?;
        self.file = Arc::new(file);
        self.size = size;
        self.ends_line = ends_line;
        Ok(())
    }
}

/// Where to cut `buf` so that the file, now `size` bytes, rotates at a line
/// end once it reaches `limit`: after the last newline that keeps it under
/// the limit; at 0 (rotate first) if the file is full and ends a line;
/// else after the first newline past the limit (a long line is kept
/// whole). `None`: no rotation within `buf`.
fn cut_point(buf: &[u8], size: u64, limit: u64, ends_line: bool) -> Option<usize> {
    let room = limit.saturating_sub(size);
    if (buf.len() as u64) < room {
        return None;
    }
    let room = usize::try_from(room).unwrap_or(usize::MAX).min(buf.len());
    if let Some(i) = buf[..room].iter().rposition(|&b| b == b'\n') {
        return Some(i + 1);
    }
    if ends_line && size > 0 {
        return Some(0);
    }
    buf[room..]
        .iter()
        .position(|&b| b == b'\n')
        .map(|i| room + i + 1)
}

/// A file's size and whether it ends with a newline (or is empty).
fn size_and_end(file: &File) -> (u64, bool) {
    use std::os::unix::fs::FileExt;
    let size = file.metadata().map_or(0, |m| m.len());
    if size == 0 {
        return (0, true);
    }
    let mut last = [0u8; 1];
    let ends = file.read_at(&mut last, size - 1).is_ok_and(|n| n == 1) && last[0] == b'\n';
    (size, ends)
}

/// Runs blocking file I/O on tokio's blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(io::Error::other(e)))
}

/// The registry key: the parent directory resolved (so `./logs/a.log`,
/// `logs/a.log` and a symlinked directory agree), the file name kept as is
/// (so a symlinked file is reopened by its own name after rotation).
fn key_for(path: &Path, create_parent: bool) -> io::Result<PathBuf> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "log path has no file name"))?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let named = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", path.display()));
    if create_parent {
        std::fs::create_dir_all(&parent).map_err(named)?;
    }
    Ok(std::fs::canonicalize(&parent).map_err(named)?.join(name))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::cut_point;

    #[test]
    fn cuts_only_after_a_newline() {
        // Fits: no cut.
        assert_eq!(cut_point(b"ab\ncd\n", 0, 100, true), None);
        // Last newline within the room.
        assert_eq!(cut_point(b"ab\ncd\nef\n", 0, 7, true), Some(6));
        // No newline within the room, file full and ending a line: rotate first.
        assert_eq!(cut_point(b"abcdef\n", 5, 6, true), Some(0));
        // A partial line in the file: after the first newline past the limit.
        assert_eq!(cut_point(b"abcdef\nx", 5, 6, false), Some(7));
        // No newline at all: keep writing.
        assert_eq!(cut_point(b"abcdef", 5, 6, false), None);
    }
}
