//! Opening log and pid files without following a symbolic link planted at
//! their path (which would make the daemon append to, or truncate, a file
//! it never meant to touch), and creating them 0640.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use nix::fcntl::OFlag;

/// Mode of the files the daemon creates: owner and group read them.
pub const FILE_MODE: u32 = 0o640;

fn options() -> OpenOptions {
    let mut o = OpenOptions::new();
    o.mode(FILE_MODE).custom_flags(OFlag::O_NOFOLLOW.bits());
    o
}

/// A clear error for what `O_NOFOLLOW` refuses.
fn explain(path: &Path, e: io::Error) -> io::Error {
    if e.raw_os_error() == Some(nix::errno::Errno::ELOOP as i32) {
        io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "refusing to open {}: it is a symbolic link (rpm2 never follows one to write)",
                path.display()
            ),
        )
    } else {
        io::Error::new(e.kind(), format!("{}: {e}", path.display()))
    }
}

/// Creates parent directories and opens `path` for appending.
pub fn open_append(path: &Path) -> io::Result<File> {
    if let Some(parent) = path.parent() {
        if !parent.as_os_str().is_empty() {
            std::fs::create_dir_all(parent).map_err(|e| explain(parent, e))?;
        }
    }
    options()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| explain(path, e))
}

/// Creates `path`, which must not exist yet (a rotated file's gzip copy).
pub fn create_new(path: &Path) -> io::Result<File> {
    options()
        .create_new(true)
        .write(true)
        .open(path)
        .map_err(|e| explain(path, e))
}

/// Replaces the contents of `path` (a pid file), creating it if needed.
pub fn write_file(path: &Path, contents: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let mut f = options()
        .create(true)
        .write(true)
        .truncate(true)
        .open(path)
        .map_err(|e| explain(path, e))?;
    f.write_all(contents).map_err(|e| explain(path, e))
}

/// Empties `path` (pm2's `flush`) if it is a regular file of ours; a file
/// that does not exist is left alone.
pub fn truncate(path: &Path) -> io::Result<()> {
    let file = match options().write(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(explain(path, e)),
    };
    let meta = file.metadata()?;
    if !meta.is_file() || meta.uid() != nix::unistd::geteuid().as_raw() {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "not truncating {}: it is not a regular file of this user",
                path.display()
            ),
        ));
    }
    file.set_len(0)
}
