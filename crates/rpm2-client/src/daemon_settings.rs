//! rpm2's own daemon settings, typed: `rpm2 set rpm2:<key> <value>` stores
//! them in `module_conf.json` under [`MODULE`], like pm2-logrotate's keys
//! (`logrotate.rs`). `set` validates a value with [`check`] before storing
//! it; the daemon reads the section with [`DaemonSettings::from_conf`] at
//! start and when told the settings changed (`ReloadSettings`).
//!
//! `metrics_addr` turns on the metrics and health endpoints. The daemon's
//! environment variable [`METRICS_ADDR_ENV`], read once when it starts,
//! wins over the stored setting: the environment of a container or a
//! systemd unit is the deployment's word, and a `module_conf.json` left in
//! a volume must not move the port under it.

use std::net::SocketAddr;

use serde_json::{Map, Value};

/// The module name the daemon's keys live under.
pub const MODULE: &str = "rpm2";

/// Read by the daemon at start; wins over `rpm2:metrics_addr`.
pub const METRICS_ADDR_ENV: &str = "RPM2_METRICS_ADDR";

/// The form a metrics address must have.
pub const METRICS_ADDR_FORM: &str =
    "an IP address and a port, as 127.0.0.1:9209, 0.0.0.0:9209 or [::1]:9209";

/// The keys, each with the form its value must have.
pub const KEYS: &[(&str, &str)] = &[("metrics_addr", METRICS_ADDR_FORM)];

/// The typed settings; everything is off by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DaemonSettings {
    /// Where `/metrics`, `/healthz` and `/readyz` are served.
    pub metrics_addr: Option<SocketAddr>,
}

/// A metrics address: an IP and a non-zero port (no host names, which
/// would need a resolver in the daemon and could change under it).
pub fn parse_metrics_addr(text: &str) -> Result<SocketAddr, String> {
    let v = text.trim();
    match v.parse::<SocketAddr>() {
        Ok(addr) if addr.port() != 0 => Ok(addr),
        _ => Err(format!("{v:?} is invalid: expected {METRICS_ADDR_FORM}")),
    }
}

/// Whether `value` is valid for `key`; the error names the allowed form.
pub fn check(key: &str, value: &str) -> Result<(), String> {
    DaemonSettings::default().apply(key, &Value::String(value.to_owned()))
}

impl DaemonSettings {
    /// The settings stored under [`MODULE`]; a value that does not parse
    /// (edited by hand) keeps its default and is reported.
    #[must_use]
    pub fn from_conf(conf: &Map<String, Value>) -> (Self, Vec<String>) {
        let mut s = Self::default();
        let mut problems = Vec::new();
        if let Some(Value::Object(values)) = conf.get(MODULE) {
            for (k, v) in values {
                if let Err(e) = s.apply(k, v) {
                    problems.push(e);
                }
            }
        }
        (s, problems)
    }

    fn apply(&mut self, key: &str, value: &Value) -> Result<(), String> {
        match key {
            "metrics_addr" => {
                let addr = parse_metrics_addr(&crate::module_conf::text(value))
                    .map_err(|e| format!("{MODULE}:{key} {e}"))?;
                self.metrics_addr = Some(addr);
                Ok(())
            }
            _ => {
                let names: Vec<&str> = KEYS.iter().map(|(k, _)| *k).collect();
                Err(format!(
                    "{MODULE}:{key} is not a daemon setting (keys: {})",
                    names.join(", ")
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn addresses_with_an_ip_and_a_port() {
        assert!(check("metrics_addr", "127.0.0.1:9209").is_ok());
        assert!(check("metrics_addr", "[::1]:9209").is_ok());
        assert!(check("metrics_addr", "0.0.0.0:9209").is_ok());
        for bad in [
            "9209",
            "localhost:9209",
            "127.0.0.1",
            "127.0.0.1:0",
            "1.2.3:80",
            "",
        ] {
            let e = check("metrics_addr", bad).unwrap_err();
            assert!(e.contains("127.0.0.1:9209"), "{bad:?}: {e}");
        }
        let e = check("metrics", "127.0.0.1:9209").unwrap_err();
        assert!(e.contains("metrics_addr"), "{e}");
    }

    #[test]
    fn stored_values() {
        let conf = json!({"rpm2": {"metrics_addr": "127.0.0.1:9300"}});
        let (s, problems) = DaemonSettings::from_conf(conf.as_object().unwrap());
        assert_eq!(s.metrics_addr, Some("127.0.0.1:9300".parse().unwrap()));
        assert!(problems.is_empty());
        let conf = json!({"rpm2": {"metrics_addr": "nowhere"}});
        let (s, problems) = DaemonSettings::from_conf(conf.as_object().unwrap());
        assert_eq!(s, DaemonSettings::default());
        assert_eq!(problems.len(), 1);
    }
}
