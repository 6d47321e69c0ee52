//! pm2's `log_date_format` (and `logs --timestamp`) is a dayjs format; the
//! daemon formats with chrono, so a format is converted once, when the
//! `AppSpec` is built (or when `logs` starts), not per line.

/// Converts a dayjs format string (core tokens, as pm2 uses dayjs without
/// plugins) to a chrono strftime string.
///
/// Tokens follow dayjs's own matcher, greedy left to right: `YYYY` `YY`,
/// `M` `MM` `MMM` `MMMM`, `D` `DD`, `d` `dd` `ddd` `dddd`, `H` `HH`, `h`
/// `hh`, `m` `mm`, `s` `ss`, `SSS`, `Z` (`+05:00`), `ZZ` (`+0500`), `A`
/// (`AM`), `a` (`am`), and `[literal text]`. Everything else, including `%`,
/// is literal. `dd` (two-letter weekday) has no strftime equivalent and
/// becomes the three-letter `%a`; `Y`/`YYY` (which dayjs mangles) stay
/// literal.
#[must_use]
pub fn dayjs_to_strftime(fmt: &str) -> String {
    let chars: Vec<char> = fmt.chars().collect();
    let mut out = String::with_capacity(fmt.len() * 2);
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '[' {
            if let Some(end) = chars[i + 1..].iter().position(|&x| x == ']') {
                for &l in &chars[i + 1..i + 1 + end] {
                    push_literal(&mut out, l);
                }
                i += end + 2;
                continue;
            }
        }
        let run = chars[i..].iter().take_while(|&&x| x == c).count();
        let (take, spec) = token(c, run);
        if take == 0 {
            push_literal(&mut out, c);
            i += 1;
        } else {
            out.push_str(spec);
            i += take;
        }
    }
    out
}

/// The longest dayjs token of letter `c` fitting in a run of `run` equal
/// letters: how many letters it consumes (0 = not a token) and its strftime.
fn token(c: char, run: usize) -> (usize, &'static str) {
    match (c, run) {
        ('Y', 4..) => (4, "%Y"),
        ('Y', 3) => (3, "YYY"),
        ('Y', 2) => (2, "%y"),
        ('M', 4..) => (4, "%B"),
        ('M', 3) => (3, "%b"),
        ('M', 2) => (2, "%m"),
        ('M', 1) => (1, "%-m"),
        ('D', 2..) => (2, "%d"),
        ('D', 1) => (1, "%-d"),
        ('d', 4..) => (4, "%A"),
        ('d', 2 | 3) => (run, "%a"),
        ('d', 1) => (1, "%w"),
        ('H', 2..) => (2, "%H"),
        ('H', 1) => (1, "%-H"),
        ('h', 2..) => (2, "%I"),
        ('h', 1) => (1, "%-I"),
        ('m', 2..) => (2, "%M"),
        ('m', 1) => (1, "%-M"),
        ('s', 2..) => (2, "%S"),
        ('s', 1) => (1, "%-S"),
        ('S', 3..) => (3, "%3f"),
        ('Z', 2..) => (2, "%z"),
        ('Z', 1) => (1, "%:z"),
        ('A', _) => (1, "%p"),
        ('a', _) => (1, "%P"),
        _ => (0, ""),
    }
}

fn push_literal(out: &mut String, c: char) {
    if c == '%' {
        out.push_str("%%");
    } else {
        out.push(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{FixedOffset, TimeZone};

    #[test]
    fn dayjs_tokens() {
        let cases = [
            ("YYYY-MM-DD HH:mm:ss", "%Y-%m-%d %H:%M:%S"),
            ("YYYY-MM-DDTHH:mm:ss", "%Y-%m-%dT%H:%M:%S"),
            ("YYYY-MM-DD HH:mm:ss.SSS Z", "%Y-%m-%d %H:%M:%S.%3f %:z"),
            ("YY M D H h m s ZZ", "%y %-m %-d %-H %-I %-M %-S %z"),
            ("MMM MMMM ddd dddd d dd", "%b %B %a %A %w %a"),
            ("hh:mm A a", "%I:%M %p %P"),
            ("[at] HH [o'clock] 100%", "at %H o'clock 100%%"),
            ("[unclosed", "[unclo%-Se%w"),
            ("Y YYY x", "Y YYY x"),
        ];
        for (dayjs, strftime) in cases {
            assert_eq!(dayjs_to_strftime(dayjs), strftime, "{dayjs}");
        }
    }

    #[test]
    fn converted_formats_render_like_dayjs() {
        let tz = FixedOffset::east_opt(5 * 3600 + 1800).unwrap();
        let t =
            tz.with_ymd_and_hms(2024, 3, 7, 14, 5, 9).unwrap() + chrono::Duration::milliseconds(42);
        let render = |dayjs: &str| t.format(&dayjs_to_strftime(dayjs)).to_string();
        assert_eq!(
            render("YYYY-MM-DD HH:mm:ss.SSS Z"),
            "2024-03-07 14:05:09.042 +05:30"
        );
        assert_eq!(render("YY/M/D h:m:s A ZZ"), "24/3/7 2:5:9 PM +0530");
        assert_eq!(
            render("dddd, MMMM D [at] hh a"),
            "Thursday, March 7 at 02 pm"
        );
        assert_eq!(render("ddd MMM d"), "Thu Mar 4");
        assert_eq!(render("[100%] YYYY"), "100% 2024");
    }
}
