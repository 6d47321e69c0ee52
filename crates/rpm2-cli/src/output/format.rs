//! Small value formatters shared by the table, mini list and describe views.
//!
//! They reproduce pm2's helpers (`lib/API/UX/helpers.js`) digit for digit,
//! because users and scripts compare rpm2's output with pm2's.

/// Bytes as pm2's `bytesToSize(bytes, 1)` prints them: `512b`, `1.5kb`,
/// `45.2mb`, `1.2gb`, `3.0tb` (pm2 appends a space, dropped here).
///
/// Rounding is done on integers, half up, which is what JS `toFixed(1)`
/// gives for these exact binary fractions (Rust's `{:.1}` rounds exact
/// ties to even, so `1.25mb` would differ).
#[must_use]
pub fn human_bytes(n: u64) -> String {
    const UNITS: [(&str, u64); 4] = [
        ("tb", 1 << 40),
        ("gb", 1 << 30),
        ("mb", 1 << 20),
        ("kb", 1 << 10),
    ];
    for (suffix, unit) in UNITS {
        if n >= unit {
            let unit = u128::from(unit);
            let tenths = (u128::from(n) * 10 + unit / 2) / unit;
            return format!("{}.{}{suffix}", tenths / 10, tenths % 10);
        }
    }
    format!("{n}b")
}

/// Elapsed time as pm2's `timeSince` prints it: the largest unit that counts
/// more than one (`Y`, `M`, `D`, `h`, `m`), else seconds. pm2 uses `> 1`,
/// so 90 s shows as `90s` and 1.5 h as `90m`; kept for fidelity.
#[must_use]
pub fn human_uptime(ms: u64) -> String {
    let seconds = ms / 1000;
    for (suffix, size) in [
        ("Y", 31_536_000),
        ("M", 2_592_000),
        ("D", 86_400),
        ("h", 3_600),
        ("m", 60),
    ] {
        let interval = seconds / size;
        if interval > 1 {
            return format!("{interval}{suffix}");
        }
    }
    format!("{seconds}s")
}

/// The uptime cell of `list`/`describe`: pm2 shows `timeSince(pm_uptime)`
/// only for online processes with a start time, and a bare `0` otherwise.
#[must_use]
pub fn uptime_cell(p: &rpm2_proto::ProcessInfo, now_ms: u64) -> String {
    let env = &p.pm2_env;
    if env.pm_uptime > 0 && env.status == rpm2_proto::WorkerStatus::Online {
        human_uptime(now_ms.saturating_sub(env.pm_uptime))
    } else {
        "0".to_owned()
    }
}

/// `fork_mode` → `fork`, `cluster_mode` → `cluster` (pm2 strips `_mode`).
#[must_use]
pub fn short_mode(exec_mode: &str) -> &str {
    exec_mode.strip_suffix("_mode").unwrap_or(exec_mode)
}

/// A number the way JavaScript's `String(n)` prints it, since pm2 builds
/// cells like `cpu + '%'` and `util.inspect` prints numbers the same way:
/// integers without `.0`, shortest round-trip digits, exponent form below
/// 1e-6 and from 1e21 (`1e+21`, `1.5e-7`), `-0` for negative zero.
#[must_use]
pub fn js_number(x: f64) -> String {
    if x.is_nan() {
        return "NaN".to_owned();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity" } else { "-Infinity" }.to_owned();
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0" } else { "0" }.to_owned();
    }
    let sign = if x < 0.0 { "-" } else { "" };
    // `{:e}` yields the shortest round-trip digits, e.g. `1.5e-7`.
    let sci = format!("{:e}", x.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let k = i64::try_from(digits.len()).unwrap_or(i64::MAX);
    // ECMAScript's `n`: the decimal point sits after `n` digits.
    let n = exp.parse::<i64>().unwrap_or(0) + 1;
    let body = if k <= n && n <= 21 {
        format!(
            "{digits}{}",
            "0".repeat(usize::try_from(n - k).unwrap_or(0))
        )
    } else if 0 < n && n <= 21 {
        let (int, frac) = digits.split_at(usize::try_from(n).unwrap_or(0));
        format!("{int}.{frac}")
    } else if -6 < n && n <= 0 {
        format!("0.{}{digits}", "0".repeat(usize::try_from(-n).unwrap_or(0)))
    } else {
        let e = n - 1;
        let e_sign = if e < 0 { '-' } else { '+' };
        let (first, rest) = digits.split_at(1);
        let rest = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        format!("{first}{rest}e{e_sign}{}", e.abs())
    };
    format!("{sign}{body}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_match_pm2() {
        assert_eq!(human_bytes(0), "0b");
        assert_eq!(human_bytes(1023), "1023b");
        assert_eq!(human_bytes(1024), "1.0kb");
        assert_eq!(human_bytes(1536), "1.5kb");
        assert_eq!(human_bytes(47_395_635), "45.2mb");
        // Exact tie: JS toFixed rounds half up.
        assert_eq!(human_bytes(1_310_720), "1.3mb");
        assert_eq!(human_bytes(1_288_490_189), "1.2gb");
        assert_eq!(human_bytes(3 << 40), "3.0tb");
    }

    #[test]
    fn uptime_matches_pm2_time_since() {
        assert_eq!(human_uptime(0), "0s");
        assert_eq!(human_uptime(12_999), "12s");
        assert_eq!(human_uptime(90_000), "90s");
        assert_eq!(human_uptime(300_000), "5m");
        assert_eq!(human_uptime(3 * 3_600_000 + 5), "3h");
        assert_eq!(human_uptime(2 * 86_400_000), "2D");
        assert_eq!(human_uptime(40 * 86_400_000), "40D");
        assert_eq!(human_uptime(70 * 86_400_000), "2M");
        assert_eq!(human_uptime(100 * 86_400_000), "3M");
        assert_eq!(human_uptime(800 * 86_400_000), "2Y");
    }

    #[test]
    fn numbers_print_like_javascript() {
        let cases: [(f64, &str); 14] = [
            (0.0, "0"),
            (-0.0, "-0"),
            (1.0, "1"),
            (1.5, "1.5"),
            (0.1, "0.1"),
            (-2.25, "-2.25"),
            (123_456.0, "123456"),
            (1e21, "1e+21"),
            (1.5e21, "1.5e+21"),
            (1e20, "100000000000000000000"),
            (0.000_001, "0.000001"),
            (1.5e-7, "1.5e-7"),
            (1_700_000_000_123.0, "1700000000123"),
            (0.1 + 0.2, "0.30000000000000004"),
        ];
        for (x, want) in cases {
            assert_eq!(js_number(x), want, "{x}");
        }
    }

    #[test]
    fn modes_are_shortened() {
        assert_eq!(short_mode("fork_mode"), "fork");
        assert_eq!(short_mode("cluster_mode"), "cluster");
        assert_eq!(short_mode("other"), "other");
    }
}
