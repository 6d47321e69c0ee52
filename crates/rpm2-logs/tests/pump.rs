//! Pumps against real child processes and in-memory pipes.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use rpm2_logs::bus;
use rpm2_logs::{spawn_fd_pump, spawn_pump, LogFormat, LogRegistry, PumpConfig, StreamKind};
use rpm2_proto::{Event, EventProcess};
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

const LINES: u32 = 200_000;

fn process(pm_id: u32) -> EventProcess {
    EventProcess {
        pm_id,
        name: "app \"q\"".into(),
        namespace: "default".into(),
    }
}

fn config(
    kind: StreamKind,
    files: Vec<rpm2_logs::FileWriter>,
    format: LogFormat,
    bus: &bus::Sender,
) -> PumpConfig {
    PumpConfig {
        kind,
        files,
        format,
        process: process(7),
        bus: bus.clone(),
    }
}

fn date(fmt: &str) -> LogFormat {
    LogFormat {
        date_format: Some(fmt.into()),
        json: false,
    }
}

/// Runs `cmd` with stdout piped into a pump and waits for both to finish.
async fn pump_child(cmd: Command, cfg: PumpConfig) {
    pump_child_with(cmd, cfg, false).await;
}

/// Same, through the daemon's fd pump (`spawn_fd_pump`) when `by_fd`.
async fn pump_child_with(mut cmd: Command, cfg: PumpConfig, by_fd: bool) {
    let mut child = cmd.stdout(Stdio::piped()).spawn().expect("spawn child");
    let out = child.stdout.take().expect("stdout");
    assert!(child.id().is_some());
    if by_fd {
        let pump = spawn_fd_pump(out.into_owned_fd().expect("pipe fd"), cfg);
        assert!(child.wait().await.expect("wait").success());
        pump.finished().await.expect("pump task");
    } else {
        let pump = spawn_pump(out, cfg);
        assert!(child.wait().await.expect("wait").success());
        pump.await.expect("pump task");
    }
}

/// The daemon's pump (single-threaded runtime, as in the daemon): a node
/// flood and a date-prefixed `seq`, every line in order.
#[tokio::test(flavor = "current_thread")]
async fn fd_pump_keeps_every_line_of_a_flood() {
    let dir = tempfile::tempdir().unwrap();
    let reg = LogRegistry::new();
    let out = dir.path().join("out.log");
    let (bus, _) = bus::channel(bus::SUBSCRIBER_LIMIT);
    let mut cmd = Command::new("/usr/bin/node");
    cmd.arg("-e").arg(format!(
        "for (let i = 1; i <= {LINES}; i++) process.stdout.write(i + '\\n')"
    ));
    let w = reg.writer(&out).unwrap();
    pump_child_with(
        cmd,
        config(StreamKind::Out, vec![w], LogFormat::default(), &bus),
        true,
    )
    .await;
    reg.sync().await;
    assert_numbered(&read(&out), 0);

    let dated = dir.path().join("dated.log");
    let mut cmd = Command::new("seq");
    cmd.arg("1").arg(LINES.to_string());
    let w = reg.writer(&dated).unwrap();
    pump_child_with(
        cmd,
        config(StreamKind::Out, vec![w], date("%H:%M:%S"), &bus),
        true,
    )
    .await;
    reg.sync().await;
    assert_numbered(&read(&dated), "00:00:00: ".len());
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).expect("read log file")
}

/// Every number 1..=LINES, in order, after stripping `prefix` from each line.
fn assert_numbered(text: &str, prefix_len: usize) {
    let mut expected = 1u32;
    for line in text.lines() {
        let n: u32 = line[prefix_len..]
            .parse()
            .unwrap_or_else(|_| panic!("bad line {line:?}"));
        assert_eq!(n, expected, "line out of order or missing");
        expected += 1;
    }
    assert_eq!(expected, LINES + 1, "missing lines at the end");
    assert!(text.ends_with('\n'));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_flood_raw_to_out_and_combined_files() {
    let dir = tempfile::tempdir().unwrap();
    let reg = LogRegistry::new();
    let out = reg.writer(&dir.path().join("logs/app-out.log")).unwrap();
    let combined = reg.writer(&dir.path().join("logs/app.log")).unwrap();
    let (bus, mut rx) = bus::channel(bus::SUBSCRIBER_LIMIT);
    let mut cmd = Command::new("/usr/bin/node");
    cmd.arg("-e").arg(format!(
        "for (let i = 1; i <= {LINES}; i++) process.stdout.write(i + '\\n')"
    ));
    pump_child(
        cmd,
        config(
            StreamKind::Out,
            vec![out, combined],
            LogFormat::default(),
            &bus,
        ),
    )
    .await;
    reg.sync().await;
    let text = read(&dir.path().join("logs/app-out.log"));
    assert_numbered(&text, 0);
    assert_eq!(text, read(&dir.path().join("logs/app.log")));
    // The bus saw chunks (a receiver that did not read may have missed some).
    let mut events = 0;
    loop {
        match rx.try_recv() {
            Ok(Event::LogOut {
                process: p, data, ..
            }) => {
                assert_eq!(p.pm_id, 7);
                assert!(!data.is_empty());
                events += 1;
            }
            Ok(Event::Dropped { .. }) => {}
            Ok(other) => panic!("unexpected event {other:?}"),
            Err(_) => break,
        }
    }
    assert!(events > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seq_with_date_prefix_keeps_every_line_whole() {
    // `seq` writes 4 KiB stdio blocks, so reads end mid-line: the carry-over
    // must keep every prefix at a line start.
    let dir = tempfile::tempdir().unwrap();
    let reg = LogRegistry::new();
    let path = dir.path().join("err.log");
    let w = reg.writer(&path).unwrap();
    let (bus, _) = bus::channel(bus::SUBSCRIBER_LIMIT);
    let mut cmd = Command::new("seq");
    cmd.arg("1").arg(LINES.to_string());
    let fmt = "%Y-%m-%d %H:%M:%S%.3f";
    pump_child(cmd, config(StreamKind::Err, vec![w], date(fmt), &bus)).await;
    reg.sync().await;
    let text = read(&path);
    let prefix_len = "2024-01-01 00:00:00.000: ".len();
    for line in text.lines().take(3) {
        let stamp = &line[..prefix_len - 2];
        chrono::NaiveDateTime::parse_from_str(stamp, fmt).expect("date prefix");
        assert_eq!(&line[prefix_len - 2..prefix_len], ": ");
    }
    assert_numbered(&text, prefix_len);
}

#[tokio::test]
async fn partial_lines_are_carried_and_flushed_at_eof() {
    let dir = tempfile::tempdir().unwrap();
    let reg = LogRegistry::new();
    let path = dir.path().join("out.log");
    let (bus, _) = bus::channel(bus::SUBSCRIBER_LIMIT);
    let (mut tx, rx) = tokio::io::duplex(64);
    let pump = spawn_pump(
        rx,
        config(
            StreamKind::Out,
            vec![reg.writer(&path).unwrap()],
            date("T"),
            &bus,
        ),
    );
    for part in ["hel", "lo\nwor", "ld\n\nlong ", "line", " here\nlast"] {
        tx.write_all(part.as_bytes()).await.unwrap();
        tokio::task::yield_now().await;
    }
    drop(tx);
    pump.await.unwrap();
    reg.sync().await;
    assert_eq!(
        read(&path),
        "T: hello\nT: world\nT: \nT: long line here\nT: last\n"
    );
}

#[tokio::test]
async fn idle_partial_line_is_written_without_waiting_for_newline() {
    let dir = tempfile::tempdir().unwrap();
    let reg = LogRegistry::new();
    let path = dir.path().join("out.log");
    let (bus, _) = bus::channel(bus::SUBSCRIBER_LIMIT);
    let (mut tx, rx) = tokio::io::duplex(64);
    let pump = spawn_pump(
        rx,
        config(
            StreamKind::Out,
            vec![reg.writer(&path).unwrap()],
            date("T"),
            &bus,
        ),
    );
    tx.write_all(b"ok\nprompt> ").await.unwrap();
    // The prompt appears after the pump's idle delay; poll generously.
    let mut seen = false;
    for _ in 0..200 {
        reg.sync().await;
        if read(&path) == "T: ok\nT: prompt> " {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(seen, "prompt not flushed: {:?}", read(&path));
    // The rest of the line gets no second prefix; EOF ends a started line.
    tx.write_all(b"yes\nbye").await.unwrap();
    drop(tx);
    pump.await.unwrap();
    reg.sync().await;
    let text = read(&path);
    assert!(text == "T: ok\nT: prompt> yes\nT: bye\n", "{text:?}");
}

#[tokio::test]
async fn json_lines_parse() {
    let dir = tempfile::tempdir().unwrap();
    let reg = LogRegistry::new();
    let path = dir.path().join("app.log");
    let (bus, _) = bus::channel(bus::SUBSCRIBER_LIMIT);
    let w = reg.writer(&path).unwrap();
    let run = |kind, input: &'static [u8], format| {
        let (mut tx, rx) = tokio::io::duplex(32);
        let pump = spawn_pump(rx, config(kind, vec![w.clone()], format, &bus));
        async move {
            for part in input.chunks(5) {
                tx.write_all(part).await.unwrap();
            }
            drop(tx);
            pump.await.unwrap();
        }
    };
    let raw_json = LogFormat {
        date_format: None,
        json: true,
    };
    run(
        StreamKind::Out,
        "say \"hi\"\tth€re\nsecond\n".as_bytes(),
        raw_json,
    )
    .await;
    let dated = LogFormat {
        date_format: Some("%Y".into()),
        json: true,
    };
    run(StreamKind::Err, b"oops\nno newline", dated).await;
    reg.sync().await;
    let records: Vec<serde_json::Value> = read(&path)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(records.len(), 4);
    assert_eq!(records[0]["message"], "say \"hi\"\tth€re\n");
    assert_eq!(records[0]["type"], "out");
    assert_eq!(records[0]["process_id"], 7);
    assert_eq!(records[0]["app_name"], "app \"q\"");
    let ts = records[0]["timestamp"].as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(ts).is_ok() && ts.ends_with('Z'),
        "{ts}"
    );
    assert_eq!(records[1]["message"], "second\n");
    assert_eq!(records[2]["type"], "err");
    assert_eq!(records[2]["message"], "oops\n");
    let year = records[2]["timestamp"].as_str().unwrap();
    assert!(year.len() == 4 && year.parse::<u32>().is_ok(), "{year}");
    assert_eq!(records[3]["message"], "no newline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_share_one_file() {
    let dir = tempfile::tempdir().unwrap();
    let reg = LogRegistry::new();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    let path = dir.path().join("merged.log");
    // Spelled differently, same file: one writer task.
    let a = reg.writer(&path).unwrap();
    let b = reg.writer(&dir.path().join("sub/../merged.log")).unwrap();
    assert_eq!(a.path(), b.path());
    let (bus, _) = bus::channel(bus::SUBSCRIBER_LIMIT);
    let child = |tag: &str| {
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(format!("seq -f '{tag}%g' 1 {LINES}"));
        cmd
    };
    let (pa, pb) = (
        pump_child(
            child("a"),
            config(StreamKind::Out, vec![a], date("T"), &bus),
        ),
        pump_child(
            child("b"),
            config(StreamKind::Out, vec![b], date("T"), &bus),
        ),
    );
    tokio::join!(pa, pb);
    reg.sync().await;
    let text = read(&path);
    let (mut na, mut nb) = (0u32, 0u32);
    for line in text.lines() {
        let body = line
            .strip_prefix("T: ")
            .unwrap_or_else(|| panic!("torn line {line:?}"));
        let (counter, n) = match body.split_at(1) {
            ("a", n) => (&mut na, n),
            ("b", n) => (&mut nb, n),
            _ => panic!("torn line {line:?}"),
        };
        *counter += 1;
        assert_eq!(n.parse::<u32>().unwrap(), *counter);
    }
    assert_eq!((na, nb), (LINES, LINES));
}

#[tokio::test]
async fn bus_events_carry_chunks_and_whole_characters() {
    let (bus, mut rx) = bus::channel(bus::SUBSCRIBER_LIMIT);
    let (mut tx, pipe) = tokio::io::duplex(64);
    let cfg = config(StreamKind::Err, Vec::new(), LogFormat::default(), &bus);
    let pump = spawn_pump(pipe, cfg);
    let euro = "€".as_bytes();
    tx.write_all(b"a").await.unwrap();
    tx.write_all(&euro[..2]).await.unwrap();
    let mut text = String::new();
    while !text.contains('a') {
        match rx.recv().await.unwrap() {
            Event::LogErr {
                process: p,
                data,
                at,
            } => {
                assert_eq!(p, process(7));
                assert!(at > 1_600_000_000_000);
                text.push_str(&data);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    tx.write_all(&euro[2..]).await.unwrap();
    tx.write_all(b"b\n").await.unwrap();
    drop(tx);
    pump.await.unwrap();
    while let Ok(Event::LogErr { data, .. }) = rx.try_recv() {
        text.push_str(&data);
    }
    assert_eq!(text, "a€b\n");
}

#[tokio::test]
async fn date_prefixed_output_is_what_the_bus_sees() {
    let (bus, mut rx) = bus::channel(bus::SUBSCRIBER_LIMIT);
    let (mut tx, pipe) = tokio::io::duplex(64);
    let pump = spawn_pump(pipe, config(StreamKind::Out, Vec::new(), date("T"), &bus));
    tx.write_all(b"x\ny").await.unwrap();
    drop(tx);
    pump.await.unwrap();
    let mut text = String::new();
    while let Ok(Event::LogOut { data, .. }) = rx.try_recv() {
        text.push_str(&data);
    }
    assert_eq!(text, "T: x\nT: y\n");
}

#[tokio::test]
async fn raw_mode_keeps_bytes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let reg = LogRegistry::new();
    let path = dir.path().join("raw.log");
    let (bus, _) = bus::channel(bus::SUBSCRIBER_LIMIT);
    let (mut tx, pipe) = tokio::io::duplex(1 << 16);
    let w = reg.writer(&path).unwrap();
    let pump = spawn_pump(
        pipe,
        config(StreamKind::Out, vec![w], LogFormat::default(), &bus),
    );
    let input: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
    for part in input.chunks(777) {
        tx.write_all(part).await.unwrap();
    }
    drop(tx);
    pump.await.unwrap();
    reg.sync().await;
    assert_eq!(std::fs::read(&path).unwrap(), input);
}

/// A pump detached between reads (`rpm2 update`) hands back its pipe and
/// the unfinished line; resumed, the line is written once, with one date.
#[tokio::test(flavor = "current_thread")]
async fn fd_pump_detached_and_resumed_writes_a_split_line_once() {
    use std::io::Write;
    use std::os::fd::OwnedFd;
    let dir = tempfile::tempdir().unwrap();
    let reg = LogRegistry::new();
    let out = dir.path().join("out.log");
    let (bus, _) = bus::channel(bus::SUBSCRIBER_LIMIT);
    let cfg = || PumpConfig {
        kind: StreamKind::Out,
        files: vec![reg.writer(&out).unwrap()],
        format: LogFormat {
            date_format: Some("%H:%M:%S".into()),
            json: false,
        },
        process: rpm2_proto::EventProcess {
            pm_id: 0,
            name: "t".into(),
            namespace: "default".into(),
        },
        bus: bus.clone(),
    };
    let (read, write) = nix::unistd::pipe().unwrap();
    let mut write = std::fs::File::from(write);
    let mut pump = spawn_fd_pump(read, cfg());
    write.write_all(b"first\npar").unwrap();
    // Let the pump read both, then detach it.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let back = pump.detach().expect("running").await.expect("detached");
    assert_eq!(back.carry.partial, b"par".to_vec());
    write.write_all(b"tial\n").unwrap();
    let fd: OwnedFd = back.fd;
    let resumed = rpm2_logs::spawn_fd_pump_resumed(fd, cfg(), back.carry);
    drop(write);
    resumed.finished().await.unwrap();
    reg.sync().await;
    let text = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text:?}");
    assert!(
        lines[0].ends_with(": first") && lines[1].ends_with(": partial"),
        "{text:?}"
    );
}

/// A pump whose control is dropped (its run was reaped, no update asked)
/// reads its pipe to the end: the last words of an exiting app are kept.
#[tokio::test(flavor = "current_thread")]
async fn fd_pump_reads_to_eof_after_its_control_is_dropped() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let reg = LogRegistry::new();
    let out = dir.path().join("out.log");
    let (bus, _) = bus::channel(bus::SUBSCRIBER_LIMIT);
    let (read, write) = nix::unistd::pipe().unwrap();
    let mut write = std::fs::File::from(write);
    let control = spawn_fd_pump(
        read,
        PumpConfig {
            kind: StreamKind::Out,
            files: vec![reg.writer(&out).unwrap()],
            format: LogFormat::default(),
            process: rpm2_proto::EventProcess {
                pm_id: 0,
                name: "t".into(),
                namespace: "default".into(),
            },
            bus,
        },
    );
    write.write_all(b"first\n").unwrap();
    drop(control);
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    write.write_all(b"last words").unwrap();
    drop(write);
    let mut text = String::new();
    for _ in 0..200 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        reg.sync().await;
        text = std::fs::read_to_string(&out).unwrap_or_default();
        if text.contains("last words") {
            break;
        }
    }
    assert_eq!(text, "first\nlast words");
}
