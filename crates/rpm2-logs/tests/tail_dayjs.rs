//! `tail_lines` on real files and the dayjs → strftime conversion.

use std::fmt::Write as _;
use std::path::PathBuf;

use chrono::{FixedOffset, TimeZone};
use rpm2_logs::{dayjs_to_strftime, tail_lines};

fn file(dir: &tempfile::TempDir, name: &str, content: &[u8]) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, content).unwrap();
    path
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn tail_small_files() {
    let dir = tempfile::tempdir().unwrap();
    let p = file(&dir, "a.log", b"one\ntwo\n\nfour\n");
    assert_eq!(tail_lines(&p, 2).unwrap(), strings(&["", "four"]));
    assert_eq!(
        tail_lines(&p, 10).unwrap(),
        strings(&["one", "two", "", "four"])
    );
    assert!(tail_lines(&p, 0).unwrap().is_empty());
    let p = file(&dir, "b.log", b"one\ntwo");
    assert_eq!(tail_lines(&p, 1).unwrap(), strings(&["two"]));
    assert_eq!(tail_lines(&p, 5).unwrap(), strings(&["one", "two"]));
    let p = file(&dir, "single.log", b"only");
    assert_eq!(tail_lines(&p, 3).unwrap(), strings(&["only"]));
    let p = file(&dir, "empty.log", b"");
    assert!(tail_lines(&p, 3).unwrap().is_empty());
    let p = file(&dir, "bad.log", b"ok\n\xff\xfe\n");
    assert_eq!(tail_lines(&p, 1).unwrap(), strings(&["\u{fffd}\u{fffd}"]));
    assert!(tail_lines(&dir.path().join("missing.log"), 3).is_err());
}

#[test]
fn tail_large_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::new();
    for i in 1..=200_000 {
        writeln!(text, "line {i}").unwrap();
    }
    let p = file(&dir, "big.log", text.as_bytes());
    let want: Vec<String> = (199_991..=200_000).map(|i| format!("line {i}")).collect();
    assert_eq!(tail_lines(&p, 10).unwrap(), want);
    let all = tail_lines(&p, 150_000).unwrap();
    assert_eq!(all.len(), 150_000);
    assert_eq!(all[0], "line 50001");
    assert_eq!(tail_lines(&p, 1_000_000).unwrap().len(), 200_000);
    // Without a trailing newline the last partial line counts.
    text.push_str("partial");
    let p = file(&dir, "big2.log", text.as_bytes());
    assert_eq!(
        tail_lines(&p, 2).unwrap(),
        strings(&["line 200000", "partial"])
    );
}

#[test]
fn tail_lines_longer_than_the_first_window() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = Vec::new();
    for i in 0..50u8 {
        text.extend(vec![b'a' + i % 26; 10_000]);
        text.push(b'\n');
    }
    let p = file(&dir, "long.log", &text);
    let got = tail_lines(&p, 3).unwrap();
    assert_eq!(got.len(), 3);
    assert!(got.iter().all(|l| l.len() == 10_000));
    assert_eq!(got[2].as_bytes()[0], b'a' + 49 % 26);
    assert_eq!(got[0].as_bytes()[0], b'a' + 47 % 26);
}

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
    let t = tz.with_ymd_and_hms(2024, 3, 7, 14, 5, 9).unwrap() + chrono::Duration::milliseconds(42);
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
