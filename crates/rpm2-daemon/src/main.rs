//! `rpm2-daemon`: the daemon without the command line. `rpm2` starts it
//! (`rpm2-daemon __daemon`) when it sits next to the `rpm2` executable; the
//! daemon lives for weeks, and an executable with only its code keeps about
//! 1 MB fewer pages resident than the whole `rpm2` (clap's command tree,
//! the table printer, monit's TUI and the runtime are not in it).

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    match rpm2_core::daemon::run_command(&args) {
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        None => {
            eprintln!(
                "rpm2-daemon {}: the rpm2 daemon, started by rpm2 when needed; run `rpm2 --help`",
                env!("CARGO_PKG_VERSION")
            );
            ExitCode::from(2)
        }
    }
}
