//! The words of `stop`, `delete`, `restart` and `reload`, as pm2 reads
//! them: names, ids, namespaces and `all` (the daemon resolves those),
//! `/regex/` on names and script files (`rpm2-client`'s `resolve_words`),
//! ecosystem files and `-` (a JSON config on stdin), which name their apps.

use std::io::Read;
use std::process::ExitCode;

use rpm2_client::{Client, ClientError};
use rpm2_config::{LoadOptions, Loaded};
use rpm2_proto::{ProcessInfo, Target};

use super::{actions, CliError, CmdResult, Ctx};

/// The word that means "the config is on stdin".
pub const STDIN: &str = "-";

/// A config piped on stdin (`cat app.json | rpm2 start -`). Empty or
/// malformed input is a config error and nothing is done.
pub fn stdin_config(opts: &LoadOptions) -> Result<Loaded, CliError> {
    let mut text = String::new();
    std::io::stdin().read_to_string(&mut text).map_err(|e| {
        CliError::from(std::io::Error::new(e.kind(), format!("reading stdin: {e}")))
    })?;
    Ok(rpm2_config::from_text(&text, "stdin", opts).map_err(ClientError::from)?)
}

/// `stop`/`delete` of words: a config's apps that run are acted on (the
/// others are skipped, as in pm2); any other word must name something.
pub fn stop_or_delete(ctx: &Ctx, words: &[String], only: Option<&str>, delete: bool) -> CmdResult {
    let action = if delete { "delete" } else { "stop" };
    let (configs, others): (Vec<&String>, Vec<&String>) = words
        .iter()
        .partition(|w| *w == STDIN || rpm2_config::is_config_file(w));
    let mut names = Vec::new();
    if !configs.is_empty() {
        let opts =
            rpm2_config::load_options(only.map(str::to_owned), None, serde_json::Map::new(), None)
                .map_err(ClientError::from)?;
        for word in configs {
            for app in config_apps(word, &opts)?.apps {
                names.push(app.name);
            }
        }
    }
    let cwd = std::env::current_dir()?;
    let others: Vec<String> = others.into_iter().cloned().collect();
    let mut client = ctx.client()?;
    let mut targets = client.resolve_words(&others, &cwd)?;
    if !names.is_empty() {
        let running = client.list()?;
        targets.extend(
            names
                .into_iter()
                .filter(|n| running.iter().any(|p| &p.name == n))
                .map(Target::Name),
        );
    }
    if targets.is_empty() {
        // Only configs whose apps do not run: nothing to do, as in pm2.
        ctx.style.table(&client.list()?);
        return Ok(ExitCode::SUCCESS);
    }
    drop(client);
    actions::simple(
        ctx,
        action,
        |c: &mut Client| -> Result<Vec<ProcessInfo>, ClientError> {
            if delete {
                c.delete(targets)
            } else {
                c.stop(targets)
            }
        },
    )
}

/// The apps of a config file, or of the config on stdin.
pub fn config_apps(word: &str, opts: &LoadOptions) -> Result<Loaded, CliError> {
    if word == STDIN {
        stdin_config(opts)
    } else {
        Ok(rpm2_config::load_file(std::path::Path::new(word), opts).map_err(ClientError::from)?)
    }
}
