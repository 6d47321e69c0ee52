//! Manual measurement, not a pass/fail test (no timing thresholds in CI):
//! `cargo test -p rpm2-logs --release --test cost -- --ignored --nocapture`
//! prints the pump's CPU use while a Node app logs 100 000 lines/s, one
//! `write(2)` per line, for 5 seconds.

use std::process::Stdio;
use std::time::Instant;

use rpm2_logs::bus;
use rpm2_logs::{spawn_pump, LogFormat, LogRegistry, PumpConfig, StreamKind};
use rpm2_proto::EventProcess;
use tokio::process::Command;

/// utime + stime of this process, in clock ticks (100 Hz on Linux).
fn cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let after_comm = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after_comm.split(' ').collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

async fn measure(format: LogFormat, label: &str) {
    let dir = tempfile::tempdir().unwrap();
    let reg = LogRegistry::new();
    let path = dir.path().join("out.log");
    let (bus, _) = bus::channel(bus::SUBSCRIBER_LIMIT);
    let script = "let n = 0; const t = setInterval(() => { \
        for (let i = 0; i < 1000; i++) process.stdout.write('request handled id=' + (++n) + ' status=200\\n'); \
        if (n >= 500000) clearInterval(t); }, 10);";
    let mut child = Command::new("/usr/bin/node")
        .arg("-e")
        .arg(script)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let cfg = PumpConfig {
        kind: StreamKind::Out,
        files: vec![reg.writer(&path).unwrap()],
        format,
        process: EventProcess {
            pm_id: 0,
            name: "a".into(),
            namespace: "default".into(),
        },
        bus,
    };
    let start = Instant::now();
    let ticks = cpu_ticks();
    let pump = spawn_pump(child.stdout.take().unwrap(), cfg);
    child.wait().await.unwrap();
    pump.await.unwrap();
    reg.sync().await;
    let cpu = (cpu_ticks() - ticks) as f64 / 100.0;
    let wall = start.elapsed().as_secs_f64();
    let lines = std::fs::read_to_string(&path).unwrap().lines().count();
    println!(
        "{label}: {lines} lines in {wall:.2}s wall, {cpu:.2}s CPU = {:.1}% of one core",
        100.0 * cpu / wall
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "manual CPU measurement"]
async fn cpu_cost_at_100k_lines_per_second() {
    measure(LogFormat::default(), "raw").await;
    measure(
        LogFormat {
            date_format: Some("%Y-%m-%dT%H:%M:%S".into()),
            json: false,
        },
        "date",
    )
    .await;
    measure(
        LogFormat {
            date_format: None,
            json: true,
        },
        "json",
    )
    .await;
}
