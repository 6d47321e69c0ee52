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

/// All log files of the daemon. Cheap to clone (shared state).
#[derive(Clone, Default)]
pub struct LogRegistry {
    slots: Arc<Mutex<HashMap<PathBuf, Slot>>>,
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
        let task = WriterTask {
            path: key.clone(),
            file: Arc::new(file),
            failing: false,
            checked_at: std::time::Instant::now(),
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
                    let _ = reply.send(blocking(move || file.set_len(0)).await);
                }
                Cmd::Sync(reply) => {
                    let _ = reply.send(());
                }
            }
        }
    }

    async fn write(&mut self, buf: Vec<u8>) {
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
        let file = Arc::clone(&self.file);
        match blocking(move || (&*file).write_all(&buf)).await {
            Ok(()) => self.failing = false,
            Err(e) => {
                if !self.failing {
                    tracing::warn!(path = %self.path.display(), error = %e, "log write failed; dropping data until it succeeds again");
                }
                self.failing = true;
            }
        }
    }

    async fn reopen(&mut self) -> io::Result<()> {
        let path = self.path.clone();
        let file = blocking(move || open_append(&path)).await?;
        self.file = Arc::new(file);
        Ok(())
    }
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
