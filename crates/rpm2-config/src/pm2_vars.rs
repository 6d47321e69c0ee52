//! pm2's daemon tunables read from the environment (`constants.js`), used
//! as defaults of the app options they stand for: an app that sets the
//! option keeps its own value.
//!
//! | variable | option |
//! | --- | --- |
//! | `PM2_KILL_TIMEOUT` | `kill_timeout` (ms) |
//! | `PM2_GRACEFUL_LISTEN_TIMEOUT` | `listen_timeout` (ms) |
//! | `PM2_KILL_USE_MESSAGE` | `shutdown_with_message` (any value: on) |
//! | `PM2_PROCESS_INSTANCE_VAR` | `instance_var` (wins over the app's, as in pm2) |
//!
//! `PM2_DEEP_MONITORING` is not among them: pm2 drops `deep_monitoring`
//! when its OpenTelemetry packages are missing, and rpm2 has none.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::error::ConfigError;

/// Apply the variables of `env` (the caller's shell) to one app's options.
pub(crate) fn apply(
    map: &mut Map<String, Value>,
    env: &BTreeMap<String, String>,
    origin: &str,
    app: &str,
) -> Result<(), ConfigError> {
    let var = |name: &str| env.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());
    for (name, option) in [
        ("PM2_KILL_TIMEOUT", "kill_timeout"),
        ("PM2_GRACEFUL_LISTEN_TIMEOUT", "listen_timeout"),
    ] {
        let Some(text) = var(name) else { continue };
        let ms: u64 = text.parse().map_err(|_| ConfigError::InvalidOption {
            origin: origin.to_owned(),
            app: app.to_owned(),
            option: option.to_owned(),
            message: format!("{name}={text:?} is not a number of milliseconds"),
        })?;
        map.entry(option).or_insert_with(|| Value::from(ms));
    }
    if var("PM2_KILL_USE_MESSAGE").is_some() {
        map.entry("shutdown_with_message")
            .or_insert(Value::Bool(true));
    }
    if let Some(name) = var("PM2_PROCESS_INSTANCE_VAR") {
        map.insert("instance_var".into(), Value::from(name));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn env(vars: &[(&str, &str)]) -> BTreeMap<String, String> {
        vars.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn variables_are_defaults_the_app_may_override() {
        let vars = env(&[
            ("PM2_KILL_TIMEOUT", "4000"),
            ("PM2_GRACEFUL_LISTEN_TIMEOUT", " 9000 "),
            ("PM2_KILL_USE_MESSAGE", "true"),
            ("PM2_PROCESS_INSTANCE_VAR", "APP_ID"),
        ]);
        let mut m = Map::new();
        apply(&mut m, &vars, "o", "a").unwrap();
        assert_eq!(
            Value::Object(m),
            json!({"kill_timeout": 4000, "listen_timeout": 9000,
                   "shutdown_with_message": true, "instance_var": "APP_ID"})
        );
        let mut m = json!({"kill_timeout": 100, "instance_var": "MINE"})
            .as_object()
            .unwrap()
            .clone();
        apply(&mut m, &vars, "o", "a").unwrap();
        assert_eq!(m["kill_timeout"], 100, "the app's own value wins");
        assert_eq!(m["instance_var"], "APP_ID", "pm2 lets the variable win");
    }

    #[test]
    fn empty_variables_are_unset_and_bad_numbers_are_refused() {
        let mut m = Map::new();
        apply(
            &mut m,
            &env(&[("PM2_KILL_TIMEOUT", ""), ("PM2_KILL_USE_MESSAGE", "")]),
            "o",
            "a",
        )
        .unwrap();
        assert!(m.is_empty());
        let err = apply(
            &mut m,
            &env(&[("PM2_KILL_TIMEOUT", "soon")]),
            "eco.json",
            "web",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "eco.json: app \"web\": option \"kill_timeout\": PM2_KILL_TIMEOUT=\"soon\" is not a number of milliseconds"
        );
        assert!(m.is_empty(), "nothing applied");
    }
}
