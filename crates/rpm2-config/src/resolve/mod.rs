//! App objects → `AppSpec`s: [`resolve_apps`] maps option names, applies
//! `--only` and the CLI's flags, then [`resolve_app`] builds each spec in
//! named steps, each of which reads its options and checks every value, so
//! that a bad option stops the load before anything starts:
//!
//! | step | options | module |
//! | --- | --- | --- |
//! | types | every option with a plain JSON type (see `normalize::KNOWN`) | `normalize` |
//! | cwd, program | `cwd`, `script`, `name`, `append_env_to_name`, `exec_interpreter` | `program` |
//! | scale | `instances`, `exec_mode`, `execute_command` | `program` |
//! | command line | `args`, `node_args`, `namespace`, `instance_var`, `increment_var` | here |
//! | environment | `filter_env`, `env`, `env_<name>`, `port` (+ the deploy env) | `environment` |
//! | restart policy | `autorestart`, `min_uptime`, `max_restarts`, delays, `stop_exit_codes`, `kill_timeout`, `wait_ready`, … | `policy` |
//! | health | `unresponsive_timeout`, `readiness_probe`, `liveness_probe` | `health` |
//! | logs | `out_file`, `error_file`, `log_file`, `merge_logs`, `log_date_format`, … | `logs` |
//! | triggers | `max_memory_restart`, `cron_restart`, `watch`, `ignore_watch`, `watch_delay` | `policy` |
//!
//! The steps run in this order, which is also the order in which errors
//! are found. Option names (aliases, camelCase) are mapped before this, in
//! `normalize`; paths resolve with `paths::resolve_in` (Node's `path.resolve`
//! plus `~`).

use std::path::Path;

use rpm2_proto::AppSpec;
use serde_json::{Map, Value};

use crate::error::{show, ConfigError};
use crate::normalize::{check_simple_types, display_name, normalize_keys};
use crate::paths::package_version;
use crate::units::{non_negative_ms, shell_split};
use crate::{LoadOptions, Loaded};

pub(crate) mod clashes;
mod environment;
mod health;
mod logs;
mod policy;
mod program;

#[cfg(test)]
pub(crate) use program::cpu_count;

/// Where the apps come from, shared by all apps of one load.
pub(crate) struct Ctx<'a> {
    /// Config file as given, or the script, for messages.
    pub origin: &'a str,
    /// Relative `cwd` (and `script` when no `cwd`) resolve against this.
    pub base_dir: &'a Path,
    pub opts: &'a LoadOptions,
    /// The file's top-level `deploy` object: `deploy.<env>.env` feeds env.
    pub deploy: Option<&'a Map<String, Value>>,
}

/// Typed, already type-checked access to one app's options.
struct App<'a> {
    map: &'a Map<String, Value>,
    origin: &'a str,
    /// The name used in messages (see `display_name`).
    name: &'a str,
}

impl<'a> App<'a> {
    fn err(&self, option: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::InvalidOption {
            origin: self.origin.to_owned(),
            app: self.name.to_owned(),
            option: option.to_owned(),
            message: message.into(),
        }
    }

    fn str(&self, key: &str) -> Option<&'a str> {
        self.map.get(key).and_then(Value::as_str)
    }

    fn bool(&self, key: &str) -> Option<bool> {
        self.map.get(key).and_then(Value::as_bool)
    }

    /// A user or group: a non-empty name or a non-negative id.
    fn str_or_num(&self, key: &str) -> Result<Option<String>, ConfigError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.trim().to_owned())),
            Some(Value::Number(n)) if n.as_u64().is_some() => Ok(Some(n.to_string())),
            Some(other) => Err(self.err(
                key,
                format!("expected a name or a numeric id, got {}", show(other)),
            )),
        }
    }

    /// A non-negative number of milliseconds (or of anything countable).
    fn ms(&self, key: &str) -> Result<Option<u64>, ConfigError> {
        match self.map.get(key) {
            None => Ok(None),
            Some(v) => non_negative_ms(v.as_f64()).map(Some).ok_or_else(|| {
                self.err(
                    key,
                    format!("expected a non-negative number, got {}", show(v)),
                )
            }),
        }
    }

    /// `args` / `node_args`: a shell-like string or an array of words.
    fn words(&self, key: &str) -> Result<Vec<String>, ConfigError> {
        match self.map.get(key) {
            None => Ok(Vec::new()),
            Some(Value::String(s)) => shell_split(s).map_err(|e| self.err(key, e)),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| match item {
                    Value::String(s) => Ok(s.clone()),
                    Value::Number(_) | Value::Bool(_) => Ok(item.to_string()),
                    other => Err(self.err(
                        key,
                        format!(
                            "expected an array of strings, got an element {}",
                            show(other)
                        ),
                    )),
                })
                .collect(),
            Some(other) => Err(self.err(
                key,
                format!("expected a string or an array, got {}", show(other)),
            )),
        }
    }

    /// A string or an array of strings (`watch` paths, `ignore_watch`).
    fn string_list(&self, key: &str, value: &Value) -> Result<Vec<String>, ConfigError> {
        match value {
            Value::String(s) => Ok(vec![s.clone()]),
            Value::Array(items) => items
                .iter()
                .map(|i| {
                    i.as_str().map(str::to_owned).ok_or_else(|| {
                        self.err(
                            key,
                            format!("expected an array of strings, got an element {}", show(i)),
                        )
                    })
                })
                .collect(),
            other => Err(self.err(
                key,
                format!(
                    "expected a string or an array of strings, got {}",
                    show(other)
                ),
            )),
        }
    }
}

/// App objects → specs: option names mapped (`normalize`), `--only`
/// applied, the CLI's flags laid over each app, then [`resolve_app`].
pub(crate) fn resolve_apps(
    apps: Vec<Value>,
    base_dir: &Path,
    origin: &str,
    opts: &LoadOptions,
    deploy: Option<&Map<String, Value>>,
    mut warnings: Vec<String>,
) -> Result<Loaded, ConfigError> {
    let mut normalized = Vec::with_capacity(apps.len());
    for (index, app) in apps.into_iter().enumerate() {
        let Value::Object(object) = app else {
            return Err(ConfigError::Parse {
                file: origin.to_owned(),
                message: format!("app #{}: expected an object, got {}", index + 1, show(&app)),
            });
        };
        let mut unknown = Vec::new();
        let map = normalize_keys(object, &mut unknown);
        let name = display_name(&map, index);
        warnings.extend(
            unknown
                .iter()
                .map(|key| format!("unknown option \"{key}\" in app \"{name}\" (ignored)")),
        );
        normalized.push((index, name, map));
    }

    let only: Vec<&str> = opts
        .only
        .iter()
        .flat_map(|entry| entry.split(','))
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .collect();
    if !only.is_empty() {
        let missing: Vec<String> = only
            .iter()
            .filter(|n| !normalized.iter().any(|(_, name, _)| name == *n))
            .map(|n| (*n).to_owned())
            .collect();
        if !missing.is_empty() {
            return Err(ConfigError::AppNotInConfig {
                origin: origin.to_owned(),
                missing,
                available: normalized.iter().map(|(_, name, _)| name.clone()).collect(),
            });
        }
        normalized.retain(|(_, name, _)| only.contains(&name.as_str()));
    }

    let mut unknown = Vec::new();
    let overrides = normalize_keys(opts.overrides.clone(), &mut unknown);
    warnings.extend(
        unknown
            .iter()
            .map(|key| format!("unknown option \"{key}\" (ignored)")),
    );

    let ctx = Ctx {
        origin,
        base_dir,
        opts,
        deploy,
    };
    let mut specs = Vec::with_capacity(normalized.len());
    for (index, _, mut map) in normalized {
        apply_overrides(&mut map, &overrides);
        specs.push((index, resolve_app(&ctx, map, index)?));
    }
    clashes::warn_duplicate_names(&specs, &mut warnings);
    let specs: Vec<AppSpec> = specs.into_iter().map(|(_, spec)| spec).collect();
    clashes::warn_shared_logs(&specs, &mut warnings);
    Ok(Loaded {
        apps: specs,
        warnings,
    })
}

/// CLI flags win over the file; an `env` given by the caller is merged
/// key by key so the file's other variables survive.
fn apply_overrides(map: &mut Map<String, Value>, overrides: &Map<String, Value>) {
    for (key, value) in overrides {
        match (map.get_mut(key), value) {
            (Some(Value::Object(existing)), Value::Object(extra)) if key == "env" => {
                for (k, v) in extra {
                    existing.insert(k.clone(), v.clone());
                }
            }
            _ => {
                map.insert(key.clone(), value.clone());
            }
        }
    }
}

/// Resolves one app. `index` only names apps that have neither a name nor
/// a script in messages.
pub(crate) fn resolve_app(
    ctx: &Ctx<'_>,
    mut map: Map<String, Value>,
    index: usize,
) -> Result<AppSpec, ConfigError> {
    let display = display_name(&map, index);
    crate::pm2_vars::apply(&mut map, &ctx.opts.shell_env, ctx.origin, &display)?;
    check_simple_types(&mut map, ctx.origin, &display)?;
    let app = App {
        map: &map,
        origin: ctx.origin,
        name: &display,
    };
    let cwd = program::cwd(&app, ctx);
    let program = program::program(&app, ctx, &cwd)?;
    let scale = program::scale(&app, &program)?;

    let mut spec = AppSpec::with_defaults(program.name, program.script, cwd.clone());
    command_line(&app, program.args, &mut spec)?;
    spec.node = program.node;
    spec.exec_mode = scale.exec_mode;
    spec.instances = scale.instances;
    spec.env = environment::environment(&app, ctx, program.interpreter.as_deref())?;
    environment::check_size(&app, &spec.env)?;
    spec.interpreter = program.interpreter;
    policy::restart_policy(&app, &mut spec)?;
    health::health(&app, &mut spec)?;
    logs::logs(&app, ctx, &cwd, &scale, &mut spec)?;
    policy::triggers(&app, ctx, &cwd, &mut spec)?;
    spec.version = spec.script.parent().and_then(package_version);
    spec.raw_options = map;
    Ok(spec)
}

/// `args` (after the program's own, e.g. `-c <cmd>`), `node_args`,
/// `namespace` and the instance variables.
fn command_line(
    app: &App<'_>,
    mut args: Vec<String>,
    spec: &mut AppSpec,
) -> Result<(), ConfigError> {
    if let Some(ns) = app.str("namespace") {
        spec.namespace = ns.to_owned();
    }
    args.extend(app.words("args")?);
    spec.args = args;
    spec.interpreter_args = app.words("node_args")?;
    if let Some(var) = app.str("instance_var") {
        spec.instance_var = var.to_owned();
    }
    spec.increment_var = app.str("increment_var").map(str::to_owned);
    Ok(())
}
