//! `tail_lines`: the last lines of a log file, for `rpm2 logs`.
//!
//! Log files grow without bound (pm2 never rotates by itself), so this reads
//! only a window at the end, like pm2 (~200 bytes per wanted line), and
//! doubles the window until it holds enough lines or reaches the start.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

/// First guess of bytes per line, as pm2 uses.
const BYTES_PER_LINE: u64 = 200;

/// The last `n` lines of the file at `path`, oldest first, without their
/// `\n`. A final line without a trailing newline counts as a line; invalid
/// UTF-8 is replaced. Empty lines in the middle are kept.
pub fn tail_lines(path: &Path, n: usize) -> io::Result<Vec<String>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    let wanted = u64::try_from(n).unwrap_or(u64::MAX);
    let mut window = wanted.saturating_mul(BYTES_PER_LINE).max(4096);
    loop {
        let start = len.saturating_sub(window);
        let mut buf = Vec::with_capacity(usize::try_from(len - start).unwrap_or(0));
        file.seek(SeekFrom::Start(start))?;
        // `take` guards against the file growing while we read.
        (&mut file).take(len - start).read_to_end(&mut buf)?;
        let body = buf.strip_suffix(b"\n").unwrap_or(&buf);
        // Lines wholly inside the window: all if it starts the file,
        // otherwise everything after the first newline (the first segment
        // may be the cut-off end of a longer line).
        let complete: &[u8] = if start == 0 {
            body
        } else {
            match body.iter().position(|&b| b == b'\n') {
                Some(i) => &body[i + 1..],
                None => &[],
            }
        };
        let have = if complete.is_empty() && start != 0 {
            0
        } else {
            complete.iter().filter(|&&b| b == b'\n').count() + 1
        };
        if start == 0 || have >= n {
            if body.is_empty() {
                return Ok(Vec::new());
            }
            let mut lines: Vec<String> = complete
                .rsplit(|&b| b == b'\n')
                .take(n)
                .map(|l| String::from_utf8_lossy(l).into_owned())
                .collect();
            lines.reverse();
            return Ok(lines);
        }
        window = window.saturating_mul(2);
    }
}
