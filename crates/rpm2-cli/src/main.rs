//! `rpm2`: pm2's command line over the rpm2 daemon.

mod args;
mod commands;
mod error;
mod monit;
mod output;
mod print;

fn main() -> std::process::ExitCode {
    commands::run()
}
