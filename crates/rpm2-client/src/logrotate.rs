//! Log rotation settings, typed: pm2-logrotate's keys as `rpm2 set
//! pm2-logrotate:<key> <value>` stores them in `module_conf.json`, so a
//! pm2 setup carries over. `set` validates a value with [`check`] before
//! storing it; the daemon reads the whole section with
//! [`LogRotate::from_conf`] (at start and when told the settings changed).
//!
//! Rotation is on by default with pm2-logrotate's defaults; rpm2's own key
//! `enabled false` turns it off.

use std::str::FromStr;

use serde_json::{Map, Value};

/// The module name pm2-logrotate's keys live under.
pub const MODULE: &str = "pm2-logrotate";

/// How many rotated files to keep per log file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retain {
    All,
    Count(usize),
}

/// The typed settings, with pm2-logrotate's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRotate {
    /// rpm2's own switch (not a pm2-logrotate key).
    pub enabled: bool,
    /// Bytes; a file rotates when it reaches this.
    pub max_size: u64,
    pub retain: Retain,
    pub compress: bool,
    /// moment/dayjs syntax, as pm2-logrotate takes it.
    pub date_format: String,
    /// Seconds between checks of the files the daemon does not write
    /// through its writers (its own log).
    pub worker_interval: u64,
    /// Cron: every non-empty log file rotates then.
    pub rotate_interval: String,
    /// pm2-logrotate's switch for modules' logs; rpm2 runs no modules.
    pub rotate_module: bool,
}

impl Default for LogRotate {
    fn default() -> Self {
        Self {
            enabled: true,
            max_size: 10 << 20,
            retain: Retain::Count(30),
            compress: false,
            date_format: "YYYY-MM-DD_HH-mm-ss".into(),
            worker_interval: 30,
            rotate_interval: "0 0 * * *".into(),
            rotate_module: true,
        }
    }
}

/// The keys, each with the form its value must have.
pub const KEYS: &[(&str, &str)] = &[
    ("max_size", "a size in bytes, or with K, M or G (10M)"),
    (
        "retain",
        "a number of rotated files to keep (0 or more), or all",
    ),
    ("compress", "true or false"),
    (
        "dateFormat",
        "a date format for rotated names (YYYY-MM-DD_HH-mm-ss), without /",
    ),
    ("workerInterval", "a number of seconds, 1 to 86400"),
    ("rotateInterval", "a cron expression (0 0 * * *)"),
    ("rotateModule", "true or false"),
    ("enabled", "true or false (rpm2's own switch for rotation)"),
    (
        "TZ",
        "accepted for pm2-logrotate setups and ignored: rpm2 uses the daemon's local time",
    ),
];

/// Whether `value` is valid for `key`; the error names the allowed form.
pub fn check(key: &str, value: &str) -> Result<(), String> {
    let mut probe = LogRotate::default();
    probe.apply(key, &Value::String(value.to_owned()))
}

impl LogRotate {
    /// The settings stored under [`MODULE`]; a value that does not parse
    /// (edited by hand, or by pm2) keeps its default and is reported.
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

    /// Sets one key from a stored value (a string from `set`, or the JSON
    /// booleans and numbers pm2-logrotate's own defaults use).
    fn apply(&mut self, key: &str, value: &Value) -> Result<(), String> {
        let text = crate::module_conf::text(value);
        let v = text.trim();
        let bad = |form: &str| format!("{MODULE}:{key} {v:?} is invalid: expected {form}");
        let form = KEYS
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, f)| *f)
            .ok_or_else(|| {
                let names: Vec<&str> = KEYS.iter().map(|(k, _)| *k).collect();
                format!(
                    "{MODULE}:{key} is not a rotation setting (keys: {})",
                    names.join(", ")
                )
            })?;
        match key {
            "max_size" => self.max_size = parse_size(v).ok_or_else(|| bad(form))?,
            "retain" => {
                self.retain = if v == "all" {
                    Retain::All
                } else {
                    Retain::Count(v.parse().map_err(|_| bad(form))?)
                }
            }
            "compress" => self.compress = parse_bool(v).ok_or_else(|| bad(form))?,
            "rotateModule" => self.rotate_module = parse_bool(v).ok_or_else(|| bad(form))?,
            "enabled" => self.enabled = parse_bool(v).ok_or_else(|| bad(form))?,
            "dateFormat" => {
                if v.is_empty() || v.contains('/') || v.contains('\0') {
                    return Err(bad(form));
                }
                v.clone_into(&mut self.date_format);
            }
            "workerInterval" => {
                self.worker_interval = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=86_400).contains(n))
                    .ok_or_else(|| bad(form))?;
            }
            "rotateInterval" => {
                croner::Cron::from_str(v).map_err(|e| format!("{}: {e}", bad(form)))?;
                v.clone_into(&mut self.rotate_interval);
            }
            _ => {} // TZ: accepted, ignored (see KEYS)
        }
        Ok(())
    }

    /// `(key, value)` pairs as `get`/`conf` print them.
    #[must_use]
    pub fn entries(&self) -> Vec<(&'static str, String)> {
        vec![
            ("max_size", format_size(self.max_size)),
            (
                "retain",
                match self.retain {
                    Retain::All => "all".into(),
                    Retain::Count(n) => n.to_string(),
                },
            ),
            ("compress", self.compress.to_string()),
            ("dateFormat", self.date_format.clone()),
            ("workerInterval", self.worker_interval.to_string()),
            ("rotateInterval", self.rotate_interval.clone()),
            ("rotateModule", self.rotate_module.to_string()),
            ("enabled", self.enabled.to_string()),
        ]
    }
}

/// pm2-logrotate's sizes: bytes, or a number with K, M or G (1024-based).
/// Zero is refused (it would rotate on every write).
#[must_use]
pub fn parse_size(s: &str) -> Option<u64> {
    let (digits, mult) = match s.char_indices().last()? {
        (i, 'K' | 'k') => (&s[..i], 1u64 << 10),
        (i, 'M' | 'm') => (&s[..i], 1 << 20),
        (i, 'G' | 'g') => (&s[..i], 1 << 30),
        _ => (s, 1),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits
        .parse::<u64>()
        .ok()?
        .checked_mul(mult)
        .filter(|&n| n > 0)
}

fn format_size(n: u64) -> String {
    for (unit, shift) in [("G", 30), ("M", 20), ("K", 10)] {
        if n.trailing_zeros() >= shift {
            return format!("{}{unit}", n >> shift);
        }
    }
    n.to_string()
}

fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sizes_as_pm2_logrotate_reads_them() {
        assert_eq!(parse_size("10M"), Some(10 << 20));
        assert_eq!(parse_size("512K"), Some(512 << 10));
        assert_eq!(parse_size("1G"), Some(1 << 30));
        assert_eq!(parse_size("4096"), Some(4096));
        for bad in ["", "M", "10X", "1.5M", "-1", "0", "0M", "ten"] {
            assert_eq!(parse_size(bad), None, "{bad:?}");
        }
        assert_eq!(format_size(10 << 20), "10M");
        assert_eq!(format_size(1000), "1000");
    }

    #[test]
    fn bad_values_are_refused_with_the_allowed_form() {
        assert!(check("max_size", "10M").is_ok());
        assert!(check("rotateInterval", "*/5 * * * *").is_ok());
        assert!(check("retain", "all").is_ok());
        let e = check("max_size", "lots").unwrap_err();
        assert!(e.contains("K, M or G"), "{e}");
        let e = check("rotateInterval", "every day").unwrap_err();
        assert!(e.contains("cron"), "{e}");
        assert!(check("workerInterval", "0").is_err());
        assert!(check("compress", "yes").is_err());
        assert!(check("dateFormat", "YYYY/MM").is_err());
        let e = check("maxsize", "1M").unwrap_err();
        assert!(e.contains("max_size"), "{e}");
    }

    #[test]
    fn stored_values_and_defaults() {
        let conf = json!({"pm2-logrotate": {"max_size": "1K", "compress": true, "retain": "x"}});
        let (s, problems) = LogRotate::from_conf(conf.as_object().unwrap());
        assert_eq!(s.max_size, 1024);
        assert!(s.compress);
        assert_eq!(s.retain, Retain::Count(30), "a bad value keeps the default");
        assert_eq!(problems.len(), 1);
        let (d, p) = LogRotate::from_conf(&Map::new());
        assert_eq!(d, LogRotate::default());
        assert!(p.is_empty());
    }
}
