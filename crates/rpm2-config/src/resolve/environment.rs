//! The worker's environment: the shell's (minus `filter_env`), the deploy
//! env, `env`, the `env_<name>` selected by `--env`, and `port`.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use super::{App, Ctx};
use crate::env;
use crate::error::ConfigError;

pub(super) fn environment(
    app: &App<'_>,
    ctx: &Ctx<'_>,
    interpreter: Option<&Path>,
) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut out = env::filter_shell_env(&ctx.opts.shell_env, app.map.get("filter_env"))
        .map_err(|e| app.err("filter_env", e))?;
    let env_name = ctx.opts.env_name.as_deref();
    if let Some(deploy_env) = env_name
        .and_then(|n| ctx.deploy?.get(n)?.get("env"))
        .and_then(Value::as_object)
    {
        env::merge_into(&mut out, deploy_env);
    }
    // Every env block is checked, selected or not, so a typo fails early.
    let mut selected = None;
    for (key, value) in app.map {
        if key == "env" || key.starts_with("env_") {
            let block = env::env_object(value).map_err(|e| app.err(key, e))?;
            if key == "env" {
                env::merge_into(&mut out, &block);
            } else if Some(&key["env_".len()..]) == env_name {
                selected = Some(block);
            }
        }
    }
    if let Some(block) = selected {
        env::merge_into(&mut out, &block);
    }
    if let Some(port) = app.map.get("port") {
        out.insert("PORT".to_owned(), env::env_value(port));
    }
    // Python buffers a pipe; pm2 users expect lines as they are printed.
    let is_python = interpreter
        .and_then(Path::file_name)
        .is_some_and(|n| n.to_string_lossy().starts_with("python"));
    if is_python {
        out.entry("PYTHONUNBUFFERED".to_owned())
            .or_insert_with(|| "1".to_owned());
    }
    Ok(out)
}

/// Linux refuses one `KEY=value` string above 32 pages (`MAX_ARG_STRLEN`)
/// with E2BIG at exec: refuse it here, naming the variable and its size.
const MAX_ONE_VAR: usize = 32 * 4096;
/// The whole environment (plus the command line) must fit a quarter of
/// the stack limit, 2 MiB with the usual 8 MiB; keep clear of it.
const MAX_TOTAL: usize = 1536 * 1024;

pub(super) fn check_size(app: &App<'_>, env: &BTreeMap<String, String>) -> Result<(), ConfigError> {
    let size = |(k, v): (&String, &String)| k.len() + v.len() + 2;
    if let Some((key, value)) = env.iter().find(|&kv| size(kv) > MAX_ONE_VAR) {
        return Err(app.err(
            "env",
            format!(
                "variable {key} is {} bytes; Linux refuses a variable over {MAX_ONE_VAR} bytes \
                 at exec (E2BIG)",
                key.len() + value.len() + 1
            ),
        ));
    }
    let total: usize = env.iter().map(size).sum();
    if total > MAX_TOTAL {
        let mut vars: Vec<_> = env.iter().map(|kv| (size(kv), kv.0)).collect();
        vars.sort_unstable_by(|a, b| b.cmp(a));
        let largest: Vec<String> = vars
            .iter()
            .take(3)
            .map(|(n, k)| format!("{k} ({n} bytes)"))
            .collect();
        return Err(app.err(
            "env",
            format!(
                "the environment is {total} bytes in {} variables, more than exec takes \
                 (E2BIG); the largest: {}",
                env.len(),
                largest.join(", ")
            ),
        ));
    }
    Ok(())
}
