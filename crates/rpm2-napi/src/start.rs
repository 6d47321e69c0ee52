//! `start(script | configPath | appObject | appArray, opts)` and the config
//! side of restart/reload: `rpm2-client`'s `StartPlan`, the same planning
//! as `rpm2 start`, so a bad option starts nothing.

use std::collections::HashMap;

use napi_derive::napi;
use rpm2_client::{ClientError, StartPlan, StartTarget};
use rpm2_proto::ErrorCode;
use serde_json::{json, Value};

use crate::pool::Shared;
use crate::{bad_request, to_value, Outcome};

/// How `index.js` asks for apps to be loaded (its `loadOpts`).
#[napi(object)]
#[derive(Debug, Clone, Default)]
pub struct LoadOpts {
    /// Where relative paths resolve (default: this process's cwd).
    pub cwd: Option<String>,
    /// Only these apps of a config file.
    pub only: Option<Vec<String>>,
    /// Merge the apps' `env_<envName>` over their `env`.
    pub env_name: Option<String>,
    /// pm2 options applied over each app.
    #[napi(ts_type = "Record<string, unknown>")]
    pub overrides: Option<Value>,
    /// With a name of known apps: merge this over their environment.
    pub update_env: Option<HashMap<String, String>>,
}

/// Load whatever `target` is.
pub fn plan(target: Value, opts: &LoadOpts) -> Result<StartPlan, ClientError> {
    let target = match target {
        Value::String(t) => StartTarget::Text(t),
        Value::Object(_) => StartTarget::Apps {
            raw: vec![target],
            origin: "app object",
        },
        Value::Array(raw) => StartTarget::Apps {
            raw,
            origin: "app array",
        },
        other => {
            return Err(bad_request(format!(
                "start: expected a script, a config path, an app object or an array, got {other}"
            )))
        }
    };
    let overrides = match &opts.overrides {
        Some(Value::Object(m)) => m.clone(),
        _ => serde_json::Map::new(),
    };
    let lo = rpm2_config::load_options(
        opts.only.clone().unwrap_or_default(),
        opts.env_name.clone(),
        overrides,
        opts.cwd.clone().map(Into::into),
    )
    .map_err(|e| ClientError::rejected(ErrorCode::Io, e.to_string()))?;
    StartPlan::new([target], &lo)
}

pub fn start(shared: &Shared, target: Value, opts: LoadOpts) -> Outcome {
    let plan = plan(target, &opts)?;
    let warnings = plan.warnings.clone();
    let update_env = opts.update_env.map(|m| m.into_iter().collect());
    let done = shared.with_client(|c| plan.clone().run(c, update_env.clone(), |_| {}))?;
    let mut processes = done.started;
    processes.extend(done.restarted);
    Ok(json!({ "processes": to_value(processes)?, "warnings": warnings }))
}

/// `restart`/`reload` of a config file, as `rpm2 restart|reload <file>`.
pub fn start_or(shared: &Shared, target: Value, opts: LoadOpts, reload: bool) -> Outcome {
    let plan = plan(target, &opts)?;
    let (processes, warnings) = shared.with_client(|c| plan.clone().start_or(c, reload))?;
    Ok(json!({ "processes": to_value(processes)?, "warnings": warnings }))
}
