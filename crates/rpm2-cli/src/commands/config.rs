//! pm2's module configuration commands: `set`, `multiset`, `unset`, `get`,
//! `conf`. Values live in the home's `module_conf.json` (kept across
//! daemon restarts); the first part of a key (`app.key`, `app:key`) names
//! the app they are for. `set` restarts that app by name, so the daemon
//! merges its values into the app's environment (`rpm2_client::module_conf`).
//!
//! `pm2-logrotate:*` keys are rpm2's own log rotation settings
//! (`rpm2_client::logrotate`): validated before anything is stored, applied
//! by the running daemon at once (`ReloadSettings`), and listed with their
//! defaults. `rpm2:*` keys are the daemon's own settings
//! (`rpm2_client::daemon_settings`, e.g. `rpm2:metrics_addr`): validated
//! and applied the same way.

use std::process::ExitCode;

use rpm2_client::daemon_settings;
use rpm2_client::logrotate::{self, LogRotate};
use rpm2_client::module_conf::{self, ConfError};
use rpm2_client::{Client, ClientError};
use rpm2_proto::{ErrorCode, Target};
use serde_json::{Map, Value};

use super::{CliError, CmdResult, Ctx};

impl From<ConfError> for CliError {
    fn from(e: ConfError) -> Self {
        let code = match e {
            ConfError::BadKey(..) => ErrorCode::BadRequest,
            ConfError::Malformed { .. } => ErrorCode::InvalidConfig,
            ConfError::Read { .. } | ConfError::Write { .. } => ErrorCode::Io,
        };
        CliError::new(code, e.to_string())
    }
}

/// `set <key> <value>`.
pub fn set(ctx: &Ctx, key: Option<&str>, value: Option<&str>) -> CmdResult {
    let (Some(key), Some(value)) = (key, value) else {
        return Err(CliError::new(
            ErrorCode::BadRequest,
            "set needs a key and a value: rpm2 set <app>:<key> <value>",
        ));
    };
    edit(ctx, &[(key.to_owned(), value.to_owned())])
}

/// `multiset "key1 value1 key2 value2"`.
pub fn multiset(ctx: &Ctx, serial: &str) -> CmdResult {
    let words = pm2_words(serial);
    if words.is_empty() || !words.len().is_multiple_of(2) {
        return Err(CliError::new(
            ErrorCode::BadRequest,
            format!("multiset needs key value pairs (\"key1 value1 key2 value2\"), got {serial:?}"),
        ));
    }
    let pairs: Vec<(String, String)> = words
        .chunks(2)
        .map(|p| (p[0].clone(), p[1].clone()))
        .collect();
    edit(ctx, &pairs)
}

/// Store the pairs (all or none: every key is checked first), then restart
/// the app the first key names, and show its values.
fn edit(ctx: &Ctx, pairs: &[(String, String)]) -> CmdResult {
    let path = ctx.home.module_conf_file();
    let mut conf = module_conf::load(&path)?;
    for (key, value) in pairs {
        check_rotation(key, value)?;
        check_daemon_setting(&conf, key, value)?;
        module_conf::set(&mut conf, key, Value::String(value.clone()))?;
    }
    module_conf::save(&path, &conf)?;
    let parts = module_conf::split_key(&pairs[0].0)?;
    let app = (parts.len() > 1).then(|| parts[0].clone());
    if pairs.iter().any(|(k, _)| is_rotation_key(k)) {
        apply_settings(ctx)?;
    }
    if let Some(app) = app
        .as_deref()
        .filter(|a| *a != logrotate::MODULE && *a != daemon_settings::MODULE)
    {
        if restart_app(ctx, app)? {
            ctx.style.info(&format!("Module {app} restarted"));
        }
    }
    if app.is_some() {
        ctx.style.info("Setting changed");
    }
    show(ctx, &conf, app.as_deref());
    Ok(ExitCode::SUCCESS)
}

/// Whether `key` is under `pm2-logrotate` or `rpm2`, the settings the
/// daemon applies (or removes everything).
fn is_rotation_key(key: &str) -> bool {
    key == "all"
        || module_conf::split_key(key).is_ok_and(|p| {
            p.first()
                .is_some_and(|a| a == logrotate::MODULE || a == daemon_settings::MODULE)
        })
}

/// A rotation setting must be one known key with a valid value; the error
/// says what is allowed, and nothing is stored.
fn check_rotation(key: &str, value: &str) -> Result<(), CliError> {
    let parts = module_conf::split_key(key)?;
    if parts.first().map(String::as_str) != Some(logrotate::MODULE) {
        return Ok(());
    }
    let bad = |m: String| CliError::new(ErrorCode::BadRequest, m);
    match parts.as_slice() {
        [_, k] => logrotate::check(k, value).map_err(bad),
        _ => Err(bad(format!(
            "{key}: log rotation settings are {}:<key> <value>",
            logrotate::MODULE
        ))),
    }
}

/// A daemon setting must be one known key with a valid value; a metrics
/// address must also be free to listen on now (unless its port is the
/// stored address's, which the daemon may be holding: it lets that go
/// first). The error says what is allowed, and nothing is stored.
fn check_daemon_setting(conf: &Map<String, Value>, key: &str, value: &str) -> Result<(), CliError> {
    let parts = module_conf::split_key(key)?;
    if parts.first().map(String::as_str) != Some(daemon_settings::MODULE) {
        return Ok(());
    }
    let bad = |m: String| CliError::new(ErrorCode::BadRequest, m);
    let [_, k] = parts.as_slice() else {
        return Err(bad(format!(
            "{key}: daemon settings are {}:<key> <value>",
            daemon_settings::MODULE
        )));
    };
    daemon_settings::check(k, value).map_err(bad)?;
    if k == "metrics_addr" {
        let addr = daemon_settings::parse_metrics_addr(value).map_err(bad)?;
        let stored = module_conf::get(conf, key)?.map(module_conf::text);
        let held = stored
            .and_then(|s| daemon_settings::parse_metrics_addr(&s).ok())
            .is_some_and(|s| s.port() == addr.port());
        if !held {
            std::net::TcpListener::bind(addr)
                .map_err(|e| bad(format!("{key} {value}: cannot listen there: {e}")))?;
        }
    }
    Ok(())
}

/// Tell a running daemon to apply the rotation and daemon settings now; without a
/// daemon, the next one reads them when it starts.
fn apply_settings(ctx: &Ctx) -> Result<(), CliError> {
    let mut client = match Client::connect_with(&ctx.home, ctx.timeouts) {
        Ok(c) => c,
        Err(ClientError::Unavailable(_) | ClientError::Io(_)) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    client.reload_settings()?;
    Ok(())
}

/// Restart `app` by name with this shell's environment (pm2's `set` does
/// `restart(app, {updateEnv: true})`), so the daemon gives it the new
/// values. No daemon, or no such app: nothing to restart.
fn restart_app(ctx: &Ctx, app: &str) -> Result<bool, CliError> {
    let mut client = match Client::connect_with(&ctx.home, ctx.timeouts) {
        Ok(c) => c,
        Err(ClientError::Unavailable(_) | ClientError::Io(_)) => return Ok(false),
        Err(e) => return Err(e.into()),
    };
    match client.restart(
        vec![Target::Name(app.to_owned())],
        Some(rpm2_config::shell_env()),
    ) {
        Ok(_) => Ok(true),
        Err(ClientError::Rpc(e)) if e.code == ErrorCode::ProcessNotFound => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// `unset <key>` (`all`: everything), then every app's values.
pub fn unset(ctx: &Ctx, key: &str) -> CmdResult {
    let path = ctx.home.module_conf_file();
    let mut conf = module_conf::load(&path)?;
    if module_conf::unset(&mut conf, key)? {
        module_conf::save(&path, &conf)?;
        if is_rotation_key(key) {
            apply_settings(ctx)?;
        }
    }
    show(ctx, &conf, None);
    Ok(ExitCode::SUCCESS)
}

/// `get [key]`: everything (no key or `all`), one app's values (`app`),
/// or one value (`app:key`). An unknown key is an error.
pub fn get(ctx: &Ctx, key: Option<&str>) -> CmdResult {
    let conf = module_conf::load(&ctx.home.module_conf_file())?;
    let Some(key) = key.filter(|k| *k != "all") else {
        show(ctx, &conf, None);
        return Ok(ExitCode::SUCCESS);
    };
    let unknown = || CliError::new(ErrorCode::BadRequest, format!("Unknown key {key}"));
    let shown = with_rotation(&conf);
    let value = module_conf::get(&shown, key)?.ok_or_else(unknown)?;
    let parts = module_conf::split_key(key)?;
    if parts.len() == 1 {
        show(ctx, &conf, Some(key));
        ctx.style
            .info("Modules configuration. Copy/Paste line to edit values.");
    } else {
        crate::print::out(&format!(
            "Value for module {} key {}: {}\n",
            parts[0],
            parts[1..].join("."),
            module_conf::text(value)
        ));
    }
    Ok(ExitCode::SUCCESS)
}

/// `conf [key] [value]` (also `config`): with a key and a value, `set`;
/// with a key, `get`; alone, every value.
pub fn conf(ctx: &Ctx, key: Option<&str>, value: Option<&str>) -> CmdResult {
    match (key, value) {
        (Some(_), Some(_)) => set(ctx, key, value),
        (key, _) => get(ctx, key),
    }
}

fn show(ctx: &Ctx, conf: &Map<String, Value>, only: Option<&str>) {
    if !ctx.style.silent {
        crate::print::out(&render(&with_rotation(conf), only));
    }
}

/// The store as listed: the rotation settings in force (stored values, and
/// the defaults of the others) under `pm2-logrotate`, as pm2 lists them
/// once pm2-logrotate is installed.
fn with_rotation(conf: &Map<String, Value>) -> Map<String, Value> {
    let mut shown = conf.clone();
    let (settings, _) = LogRotate::from_conf(conf);
    let slot = shown
        .entry(logrotate::MODULE)
        .or_insert_with(|| Value::Object(Map::new()));
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    if let Value::Object(section) = slot {
        for (k, v) in settings.entries() {
            section.entry(k).or_insert(Value::String(v));
        }
    }
    shown
}

/// pm2's listing: per app with values, `Module: <app>`, then one line to
/// copy and paste per value.
#[must_use]
pub fn render(conf: &Map<String, Value>, only: Option<&str>) -> String {
    let mut text = String::new();
    for (app, values) in conf {
        if only.is_some_and(|o| o != app) {
            continue;
        }
        let Value::Object(values) = values else {
            continue;
        };
        text.push_str(&format!("Module: {app}\n"));
        for (key, value) in values {
            let mut v = module_conf::text(value);
            // Quoted so the line can still be pasted (a cron has spaces).
            if v.contains(' ') {
                v = format!("\"{v}\"");
            }
            text.push_str(&format!("$ rpm2 set {app}:{key} {v}\n"));
        }
    }
    text
}

/// How pm2 cuts a `multiset` string: at spaces, except inside double
/// quotes (which are kept).
fn pm2_words(s: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in s.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            ' ' if !quoted => {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn multiset_words_as_pm2_cuts_them() {
        assert_eq!(pm2_words("a.b 1  c:d two"), ["a.b", "1", "c:d", "two"]);
        assert_eq!(pm2_words(r#"a.b "x y""#), ["a.b", r#""x y""#]);
        assert!(pm2_words("   ").is_empty());
    }

    #[test]
    fn listing_per_app() {
        let conf = json!({"echo": {"config_var": "false", "n": 2}, "top": "x", "b": {}});
        let conf = conf.as_object().unwrap();
        assert_eq!(
            render(conf, None),
            "Module: echo\n$ rpm2 set echo:config_var false\n$ rpm2 set echo:n 2\nModule: b\n"
        );
        assert_eq!(render(conf, Some("b")), "Module: b\n");
        assert_eq!(render(conf, Some("nope")), "");
    }
}
