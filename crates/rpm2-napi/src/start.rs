//! `start(script | configPath | appObject | appArray, opts)` and the config
//! side of restart/reload: the same loading and validation as `rpm2 start`
//! (`rpm2-config`), so a bad option starts nothing.
//!
//! `opts` arrives from `index.js` already sorted out:
//! `{ cwd, only: string[], envName, overrides: {...}, updateEnv: {...}|null }`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rpm2_config::{LoadOptions, Loaded};
use rpm2_proto::{ErrorCode, Request};
use serde_json::{json, Value};

use crate::{processes, Failure, Outcome, Shared};

/// What a start target turned into.
enum Plan {
    Apps(Loaded),
    /// A bare word naming known apps (pm2 restarts them).
    Restart(String),
}

fn load_options(opts: &Value) -> Result<LoadOptions, Failure> {
    let cwd = match opts.get("cwd").and_then(Value::as_str) {
        Some(c) => PathBuf::from(c),
        None => std::env::current_dir().map_err(|e| {
            Failure::new(
                ErrorCode::Io.as_str(),
                format!("cannot read the current directory: {e}"),
            )
        })?,
    };
    let only = opts
        .get("only")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let overrides = opts
        .get("overrides")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    Ok(LoadOptions {
        only,
        env_name: opts
            .get("envName")
            .and_then(Value::as_str)
            .map(str::to_owned),
        shell_env: std::env::vars().collect(),
        cwd,
        overrides,
    })
}

fn update_env(opts: &Value) -> Option<BTreeMap<String, String>> {
    opts.get("updateEnv").and_then(Value::as_object).map(|m| {
        m.iter()
            .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())))
            .collect()
    })
}

fn plan(target: &Value, opts: &LoadOptions) -> Result<Plan, Failure> {
    match target {
        Value::String(t) if rpm2_config::is_config_file(t) => {
            Ok(Plan::Apps(rpm2_config::load_file(Path::new(t), opts)?))
        }
        Value::String(t) if rpm2_config::looks_like_script(t, &opts.cwd) => {
            Ok(Plan::Apps(rpm2_config::from_script(t, opts)?))
        }
        Value::String(t) => Ok(Plan::Restart(t.clone())),
        Value::Object(_) => Ok(Plan::Apps(rpm2_config::from_raw_apps(
            vec![target.clone()],
            &opts.cwd,
            "app object",
            opts,
        )?)),
        Value::Array(apps) => Ok(Plan::Apps(rpm2_config::from_raw_apps(
            apps.clone(),
            &opts.cwd,
            "app array",
            opts,
        )?)),
        other => Err(Failure::new(
            ErrorCode::BadRequest.as_str(),
            format!(
                "start: expected a script, a config path, an app object or an array, got {other}"
            ),
        )),
    }
}

/// Apps from any start target, without starting them.
pub fn load(target: &Value, opts: &Value) -> Result<Loaded, Failure> {
    let lo = load_options(opts)?;
    match plan(target, &lo)? {
        Plan::Apps(loaded) => Ok(loaded),
        Plan::Restart(t) => Err(script_not_found(&lo, &t)),
    }
}

fn script_not_found(lo: &LoadOptions, t: &str) -> Failure {
    Failure::new(
        "SCRIPT_NOT_FOUND",
        format!("Script not found: {}", lo.cwd.join(t).display()),
    )
}

pub fn start(shared: &Shared, target: &Value, opts: &Value) -> Outcome {
    let lo = load_options(opts)?;
    match plan(target, &lo)? {
        Plan::Apps(loaded) => {
            let procs = processes(
                shared,
                &Request::Start {
                    apps: loaded.apps,
                    only_new: false,
                },
            )?;
            Ok(json!({ "processes": procs, "warnings": loaded.warnings }))
        }
        Plan::Restart(t) => {
            let known = shared.processes(&Request::List)?;
            let matches = known.iter().any(|p| {
                p.name == t || p.pm2_env.namespace == t || p.pm_id.to_string() == t || t == "all"
            });
            if !matches {
                return Err(script_not_found(&lo, &t));
            }
            let procs = processes(
                shared,
                &Request::Restart {
                    targets: vec![t],
                    update_env: update_env(opts),
                },
            )?;
            Ok(json!({ "processes": procs, "warnings": Vec::<String>::new() }))
        }
    }
}

/// `restart`/`reload` of a config file, as `rpm2 restart|reload <file>`:
/// its unknown apps start, known ones restart (or reload) with the file's
/// spec and instance count.
pub fn start_or(shared: &Shared, target: &Value, opts: &Value, reload: bool) -> Outcome {
    let loaded = load(target, opts)?;
    let req = if reload {
        Request::StartOrReload { apps: loaded.apps }
    } else {
        Request::Start {
            apps: loaded.apps,
            only_new: false,
        }
    };
    let procs = processes(shared, &req)?;
    Ok(json!({ "processes": procs, "warnings": loaded.warnings }))
}
