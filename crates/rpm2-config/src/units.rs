//! Value formats pm2 accepts in options: durations, sizes, shell-like
//! argument strings.
//!
//! Each parser returns a plain `String` message on failure; the caller wraps
//! it into a `ConfigError::InvalidOption` that names file, app and option.

use serde_json::Value;

use crate::error::show;

/// `min_uptime`: milliseconds as a number, or `"<n>"`, `"<n>ms"`, `"<n>s"`,
/// `"<n>m"`, `"<n>h"` (pm2's regex is `^\d+(h|m|s)?$`; `ms` is our extra).
pub(crate) fn parse_duration_ms(value: &Value) -> Result<u64, String> {
    let expected = || {
        format!(
            "expected milliseconds or a duration like \"10s\", \"5m\", \"1h\", got {}",
            show(value)
        )
    };
    match value {
        Value::Number(n) => non_negative_ms(n.as_f64()).ok_or_else(expected),
        Value::String(s) => {
            let s = s.trim();
            let (digits, factor) = if let Some(d) = s.strip_suffix("ms") {
                (d, 1)
            } else if let Some(d) = s.strip_suffix('s') {
                (d, 1000)
            } else if let Some(d) = s.strip_suffix('m') {
                (d, 60_000)
            } else if let Some(d) = s.strip_suffix('h') {
                (d, 3_600_000)
            } else {
                (s, 1)
            };
            parse_digits(digits)
                .and_then(|n| n.checked_mul(factor))
                .ok_or_else(expected)
        }
        _ => Err(expected()),
    }
}

/// `max_memory_restart`: bytes as a number, or `"<n>"`, `"<n>K"`, `"<n>M"`,
/// `"<n>G"` (powers of 1024, as pm2; a trailing `B` is tolerated).
pub(crate) fn parse_size_bytes(value: &Value) -> Result<u64, String> {
    let expected = || {
        format!(
            "expected bytes or a size like \"512K\", \"100M\", \"1G\", got {}",
            show(value)
        )
    };
    match value {
        Value::Number(n) => non_negative_ms(n.as_f64()).ok_or_else(expected),
        Value::String(s) => {
            let upper = s.trim().to_ascii_uppercase();
            let s = upper.strip_suffix('B').unwrap_or(&upper);
            let (digits, factor) = match s.char_indices().last() {
                Some((i, 'K')) => (&s[..i], 1u64 << 10),
                Some((i, 'M')) => (&s[..i], 1 << 20),
                Some((i, 'G')) => (&s[..i], 1 << 30),
                _ => (s, 1),
            };
            parse_digits(digits)
                .and_then(|n| n.checked_mul(factor))
                .ok_or_else(expected)
        }
        _ => Err(expected()),
    }
}

/// A non-negative number, rounded to an integer (JSON numbers may be floats).
#[expect(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "range checked first"
)]
pub(crate) fn non_negative_ms(n: Option<f64>) -> Option<u64> {
    let n = n?;
    (n.is_finite() && n >= 0.0 && n <= u64::MAX as f64).then(|| n.round() as u64)
}

fn parse_digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Splits `args: "--port 3000 --name 'my app'"` like a POSIX shell would
/// (quotes and backslashes honoured, no expansion), as pm2 does.
pub(crate) fn shell_split(input: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = input.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err(format!("unterminated ' quote in {input:?}")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => word.push(c),
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err(format!("unterminated \" quote in {input:?}")),
                        },
                        Some(c) => word.push(c),
                        None => return Err(format!("unterminated \" quote in {input:?}")),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(c) = chars.next() {
                    word.push(c);
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms(&json!(1500)), Ok(1500));
        assert_eq!(parse_duration_ms(&json!("2000")), Ok(2000));
        assert_eq!(parse_duration_ms(&json!("10s")), Ok(10_000));
        assert_eq!(parse_duration_ms(&json!("5m")), Ok(300_000));
        assert_eq!(parse_duration_ms(&json!("1h")), Ok(3_600_000));
        assert_eq!(parse_duration_ms(&json!("250ms")), Ok(250));
        assert!(parse_duration_ms(&json!("ten")).is_err());
        assert!(parse_duration_ms(&json!(-1)).is_err());
        assert!(parse_duration_ms(&json!(true)).is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size_bytes(&json!(1024)), Ok(1024));
        assert_eq!(parse_size_bytes(&json!("512K")), Ok(512 * 1024));
        assert_eq!(parse_size_bytes(&json!("100M")), Ok(100 * 1024 * 1024));
        assert_eq!(parse_size_bytes(&json!("1G")), Ok(1 << 30));
        assert_eq!(parse_size_bytes(&json!("1g")), Ok(1 << 30));
        assert_eq!(parse_size_bytes(&json!("200MB")), Ok(200 << 20));
        assert_eq!(parse_size_bytes(&json!("300")), Ok(300));
        assert!(parse_size_bytes(&json!("1T")).is_err());
        assert!(parse_size_bytes(&json!("M")).is_err());
    }

    #[test]
    fn splitting() {
        assert_eq!(
            shell_split(r#"--port 3000  --name 'my app' "a \"b\"" c\ d"#).unwrap(),
            ["--port", "3000", "--name", "my app", "a \"b\"", "c d"]
        );
        assert_eq!(shell_split("").unwrap(), Vec::<String>::new());
        assert_eq!(shell_split("''").unwrap(), [""]);
        assert!(shell_split("'open").is_err());
    }
}
