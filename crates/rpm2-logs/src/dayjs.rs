//! pm2's `log_date_format` is a dayjs format; the daemon formats with
//! chrono, so configs are converted once (by the CLI, or whoever builds the
//! `AppSpec`) instead of interpreting dayjs per line.

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
