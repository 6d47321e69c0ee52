//! `ecosystem` (`init`): a sample config; `update`: not available yet.

use std::process::ExitCode;

use super::{CmdResult, Ctx};

const SAMPLE_FILE: &str = "ecosystem.config.js";

/// rpm2's own sample: one app, the options most apps set first.
const SAMPLE: &str = r"module.exports = {
  apps: [
    {
      name: 'app',
      script: './app.js',
      // instances: 'max',       // cluster mode: one worker per CPU
      env: {
        NODE_ENV: 'development',
      },
      env_production: {
        NODE_ENV: 'production',
      },
    },
  ],
};
";

/// Write the sample in the current directory, replacing a file of that
/// name as pm2 does. `mode` (`simple` or none) picks pm2's template; rpm2
/// has one.
pub fn ecosystem(ctx: &Ctx, _mode: Option<&str>) -> CmdResult {
    let path = std::env::current_dir()?.join(SAMPLE_FILE);
    std::fs::write(&path, SAMPLE).map_err(|e| {
        std::io::Error::new(e.kind(), format!("cannot write {}: {e}", path.display()))
    })?;
    ctx.style
        .info(&format!("File {} generated", path.display()));
    Ok(ExitCode::SUCCESS)
}

/// pm2's `update` saves the list, replaces the daemon by the installed
/// version and resurrects. rpm2 cannot yet hand a running daemon over to
/// a new binary, so this says so and changes nothing. It exits 0 (pm2's
/// scripts run `update` as a step that must succeed): the daemon and the
/// apps keep running as they were.
pub fn update(ctx: &Ctx) -> ExitCode {
    if !ctx.style.silent {
        eprintln!(
            "[RPM2][WARN] `rpm2 update` is not available yet: rpm2 cannot replace its running \
             daemon in place. Nothing was changed; the daemon and its apps keep running.\n\
             [RPM2][WARN] To move the apps to this rpm2 ({}) now: `rpm2 save && rpm2 kill && \
             rpm2 resurrect` (the apps restart).",
            env!("CARGO_PKG_VERSION")
        );
    }
    ExitCode::SUCCESS
}
