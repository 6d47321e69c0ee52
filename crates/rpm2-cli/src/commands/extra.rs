//! `ecosystem` (`init`): a sample config; `update`: the daemon in place.

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

/// pm2's `update` kills every app and resurrects it under the new daemon.
/// rpm2's daemon re-executes the binary now on disk in place instead: same
/// pid, every worker kept, no request lost. Without a daemon there is
/// nothing to update.
pub fn update(ctx: &Ctx) -> CmdResult {
    let Some(done) = rpm2_client::update_in_place(&ctx.home, ctx.timeouts)? else {
        ctx.style.info(&format!(
            "No rpm2 daemon runs in {}: nothing to update",
            ctx.home.root().display()
        ));
        return Ok(ExitCode::SUCCESS);
    };
    let kept = done
        .processes
        .map_or_else(String::new, |n| format!(", {n} processes kept running"));
    ctx.style.info(&format!(
        "rpm2 daemon updated in place: {} -> {} (pid {}){kept}",
        done.from_version, done.to_version, done.pid
    ));
    Ok(ExitCode::SUCCESS)
}
