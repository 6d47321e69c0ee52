//! Messages: the CLI's voice (pm2's prefixes, our name).

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use rpm2_proto::ProcessInfo;

use crate::error::CliError;
use crate::output;

/// How much to print.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub silent: bool,
    pub mini: bool,
    pub color: bool,
}

impl Style {
    pub fn info(&self, msg: &str) {
        if !self.silent {
            println!("[RPM2] {msg}");
        }
    }

    pub fn warn(&self, msg: &str) {
        eprintln!("[RPM2][WARN] {msg}");
    }

    /// The process table after an action (mini list when not on a terminal).
    pub fn table(&self, procs: &[ProcessInfo]) {
        if self.silent {
            return;
        }
        let now = rpm2_core::supervisor::now_ms();
        let text = if self.mini || !std::io::stdout().is_terminal() {
            output::render_mini_list(procs, now)
        } else {
            format!("{}\n", output::render_list(procs, now, self.color))
        };
        out(&text);
    }
}

/// Print an error and give its exit status.
pub fn error(e: &CliError) -> ExitCode {
    eprintln!("[RPM2][ERROR] {e}");
    ExitCode::from(e.exit_status())
}

/// Write to stdout; a closed pipe (`rpm2 jlist | head`) is not an error.
pub fn out(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}
