//! `tail_lines` on real files.

use std::fmt::Write as _;
use std::path::PathBuf;

use rpm2_logs::tail_lines;

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
