//! What `/metrics` and `/readyz` say, as pure functions of one snapshot of
//! the table. Every worker series has the labels `app`, `pm_id` and
//! `exec_mode` (pm2's `cluster_mode` / `fork_mode`). A fresh registry per
//! scrape: scrapes are rare, and nothing is kept between them.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};
use rpm2_proto::{ProcessInfo, WorkerStatus};

/// Every status pm2 shows, for the one-series-per-state status gauge.
const STATUSES: [WorkerStatus; 6] = [
    WorkerStatus::Online,
    WorkerStatus::Launching,
    WorkerStatus::Stopping,
    WorkerStatus::Stopped,
    WorkerStatus::Errored,
    WorkerStatus::WaitingRestart,
];

type Labels = Vec<(&'static str, String)>;
type FloatGauge = Gauge<f64, AtomicU64>;
type FloatCounter = Counter<f64, AtomicU64>;

/// One worker's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerSample {
    pub app: String,
    pub pm_id: u32,
    pub exec_mode: String,
    pub status: WorkerStatus,
    /// pm2's `monit.cpu`: percent of one core since the previous look.
    pub cpu_percent: f64,
    /// CPU time of the current process; `None` without one.
    pub cpu_seconds: Option<f64>,
    pub memory_bytes: u64,
    pub restarts: u32,
    /// Since the current process started; 0 unless online.
    pub uptime_seconds: f64,
    /// Connections the primary handed to it (cluster mode only).
    pub handed_off: Option<u64>,
    /// As the drain preload last reported (only apps that load it; it
    /// reports changes, so 0 until the first one).
    pub inflight: Option<u32>,
    /// The numeric `@pm2/io` metrics it reported (`axm_monitor`).
    pub custom: Vec<(String, f64)>,
    /// Its event loop's lag as the watchdog last measured it (Node
    /// workers with the preload).
    pub event_loop_lag_seconds: Option<f64>,
}

impl WorkerSample {
    /// From a `jlist` entry, the primary's hand-off counts and /proc.
    #[must_use]
    pub fn of(w: &ProcessInfo, handed_off: &HashMap<u32, u64>, now_ms: u64) -> Self {
        let env = &w.pm2_env;
        let running = w.pid != 0;
        let online = running && env.status == WorkerStatus::Online;
        #[expect(clippy::cast_precision_loss, reason = "ms of uptime fit a double")]
        let uptime_seconds = if online {
            now_ms.saturating_sub(env.pm_uptime) as f64 / 1000.0
        } else {
            0.0
        };
        let custom = env
            .axm
            .axm_monitor
            .iter()
            .filter_map(|(name, m)| Some((name.clone(), number(m.get("value")?)?)))
            .collect();
        Self {
            app: w.name.clone(),
            pm_id: w.pm_id,
            exec_mode: env.exec_mode.clone(),
            status: env.status,
            cpu_percent: w.monit.cpu,
            cpu_seconds: running
                .then(|| crate::metrics::cpu_seconds(w.pid))
                .flatten(),
            memory_bytes: w.monit.memory,
            restarts: env.restart_time,
            uptime_seconds,
            handed_off: (env.exec_mode == "cluster_mode")
                .then(|| handed_off.get(&w.pm_id).copied().unwrap_or(0)),
            inflight: env.drain.then(|| env.inflight_requests.unwrap_or(0)),
            custom,
            #[expect(clippy::cast_precision_loss, reason = "ms of lag fit a double")]
            event_loop_lag_seconds: env.event_loop_lag_ms.map(|ms| ms as f64 / 1000.0),
        }
    }

    fn labels(&self) -> Labels {
        vec![
            ("app", escape(&self.app)),
            ("pm_id", self.pm_id.to_string()),
            ("exec_mode", escape(&self.exec_mode)),
        ]
    }
}

/// A `@pm2/io` value as a number: numbers, and text that is one
/// (`"12.5"`); anything else (`"N/A"`) is not exported.
fn number(v: &serde_json::Value) -> Option<f64> {
    let n = match v {
        serde_json::Value::Number(n) => n.as_f64()?,
        serde_json::Value::String(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    n.is_finite().then_some(n)
}

/// The daemon's own figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DaemonSample {
    pub rss_bytes: u64,
    pub cpu_seconds: Option<f64>,
    pub open_fds: Option<usize>,
}

impl DaemonSample {
    #[must_use]
    pub fn now() -> Self {
        let pid = std::process::id();
        Self {
            rss_bytes: crate::metrics::rss_bytes(pid),
            cpu_seconds: crate::metrics::cpu_seconds(pid),
            open_fds: crate::metrics::open_fds(),
        }
    }
}

/// prometheus-client writes label values as given: escape them as the
/// text formats require (app and metric names are the users').
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

fn gauge<M: prometheus_client::registry::Metric + Clone + Default>(
    reg: &mut Registry,
    name: &str,
    help: &str,
    unit: Option<Unit>,
) -> M {
    let metric = M::default();
    match unit {
        Some(unit) => reg.register_with_unit(name, help, unit, metric.clone()),
        None => reg.register(name, help, metric.clone()),
    }
    metric
}

/// The OpenMetrics text of one scrape.
pub fn render(workers: &[WorkerSample], daemon: &DaemonSample) -> Result<String, std::fmt::Error> {
    let mut reg = Registry::with_prefix("rpm2");
    let r = &mut reg;
    let cpu: Family<Labels, FloatGauge> = gauge(
        r,
        "worker_cpu_percent",
        "CPU use of the worker, percent of one core since the previous look (pm2's cpu)",
        None,
    );
    let cpu_time: Family<Labels, FloatCounter> = gauge(
        r,
        "worker_cpu",
        "CPU time (user and system) of the worker's current process",
        Some(Unit::Seconds),
    );
    let memory: Family<Labels, Gauge> = gauge(
        r,
        "worker_memory",
        "Resident memory of the worker's process (pm2's memory)",
        Some(Unit::Bytes),
    );
    let restarts: Family<Labels, Counter> = gauge(
        r,
        "worker_restarts",
        "Restarts of the worker (pm2's restart_time)",
        None,
    );
    let status: Family<Labels, Gauge> = gauge(
        r,
        "worker_status",
        "1 for the worker's pm2 status, 0 for the others",
        None,
    );
    let uptime: Family<Labels, FloatGauge> = gauge(
        r,
        "worker_uptime",
        "Time since the worker's process started; 0 unless online",
        Some(Unit::Seconds),
    );
    let handed: Family<Labels, Counter> = gauge(
        r,
        "worker_handed_off_connections",
        "Connections the daemon (cluster primary) handed to the worker's live processes",
        None,
    );
    let inflight: Family<Labels, Gauge> = gauge(
        r,
        "worker_inflight_requests",
        "HTTP requests in flight, as the drain preload last reported",
        None,
    );
    let lag: Family<Labels, FloatGauge> = gauge(
        r,
        "worker_event_loop_lag",
        "The worker's event-loop lag, as the daemon's watchdog last measured it",
        Some(Unit::Seconds),
    );
    let custom: Family<Labels, FloatGauge> = gauge(
        r,
        "worker_pm2io_metric",
        "Numeric @pm2/io metrics (axm_monitor), by name",
        None,
    );
    for w in workers {
        let labels = w.labels();
        cpu.get_or_create(&labels).set(w.cpu_percent);
        if let Some(s) = w.cpu_seconds {
            cpu_time.get_or_create(&labels).inc_by(s);
        }
        memory
            .get_or_create(&labels)
            .set(i64::try_from(w.memory_bytes).unwrap_or(i64::MAX));
        restarts
            .get_or_create(&labels)
            .inc_by(u64::from(w.restarts));
        for s in STATUSES {
            let mut l = labels.clone();
            l.push(("status", s.as_str().to_owned()));
            status.get_or_create(&l).set(i64::from(s == w.status));
        }
        uptime.get_or_create(&labels).set(w.uptime_seconds);
        if let Some(n) = w.handed_off {
            handed.get_or_create(&labels).inc_by(n);
        }
        if let Some(n) = w.inflight {
            inflight.get_or_create(&labels).set(i64::from(n));
        }
        if let Some(s) = w.event_loop_lag_seconds {
            lag.get_or_create(&labels).set(s);
        }
        for (name, value) in &w.custom {
            let mut l = labels.clone();
            l.push(("metric", escape(name)));
            custom.get_or_create(&l).set(*value);
        }
    }
    let rss: Gauge = gauge(
        r,
        "daemon_resident_memory",
        "Resident memory of the rpm2 daemon",
        Some(Unit::Bytes),
    );
    rss.set(i64::try_from(daemon.rss_bytes).unwrap_or(i64::MAX));
    if let Some(s) = daemon.cpu_seconds {
        let c: FloatCounter = gauge(
            r,
            "daemon_cpu",
            "CPU time (user and system) of the rpm2 daemon",
            Some(Unit::Seconds),
        );
        c.inc_by(s);
    }
    if let Some(n) = daemon.open_fds {
        let g: Gauge = gauge(
            r,
            "daemon_open_fds",
            "File descriptors the rpm2 daemon has open",
            None,
        );
        g.set(i64::try_from(n).unwrap_or(i64::MAX));
    }
    let mut text = String::new();
    encode(&mut text, &reg)?;
    Ok(text)
}

/// Why `/readyz` answers 503: no apps, or the workers that are not
/// online (`web 1 stopped`); `None` when every worker is online.
#[must_use]
pub fn not_ready(workers: &[ProcessInfo]) -> Option<String> {
    if workers.is_empty() {
        return Some("no apps\n".to_owned());
    }
    let down: Vec<String> = workers
        .iter()
        .filter(|w| w.pm2_env.status != WorkerStatus::Online)
        .map(|w| format!("{} {} {}", w.name, w.pm_id, w.pm2_env.status))
        .collect();
    (!down.is_empty()).then(|| format!("not online: {}\n", down.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(app: &str, pm_id: u32, status: WorkerStatus) -> WorkerSample {
        WorkerSample {
            app: app.to_owned(),
            pm_id,
            exec_mode: "cluster_mode".to_owned(),
            status,
            cpu_percent: 1.5,
            cpu_seconds: Some(0.25),
            memory_bytes: 4096,
            restarts: 3,
            uptime_seconds: 2.0,
            handed_off: Some(7),
            inflight: Some(1),
            custom: vec![("Realtime \"req\"/s".to_owned(), 12.5)],
            event_loop_lag_seconds: Some(0.003),
        }
    }

    #[test]
    fn families_and_values_per_worker() {
        let daemon = DaemonSample {
            rss_bytes: 1 << 20,
            cpu_seconds: Some(0.5),
            open_fds: Some(12),
        };
        let text = render(
            &[
                sample("web", 0, WorkerStatus::Online),
                sample("web", 1, WorkerStatus::Stopped),
            ],
            &daemon,
        )
        .unwrap();
        let l = r#"{app="web",pm_id="1",exec_mode="cluster_mode"}"#;
        for line in [
            format!("rpm2_worker_cpu_percent{l} 1.5"),
            format!("rpm2_worker_cpu_seconds_total{l} 0.25"),
            format!("rpm2_worker_memory_bytes{l} 4096"),
            format!("rpm2_worker_restarts_total{l} 3"),
            format!("rpm2_worker_uptime_seconds{l} 2.0"),
            format!("rpm2_worker_handed_off_connections_total{l} 7"),
            format!("rpm2_worker_inflight_requests{l} 1"),
            format!("rpm2_worker_event_loop_lag_seconds{l} 0.003"),
            r#"rpm2_worker_status{app="web",pm_id="1",exec_mode="cluster_mode",status="stopped"} 1"#
                .to_owned(),
            r#"rpm2_worker_status{app="web",pm_id="1",exec_mode="cluster_mode",status="online"} 0"#
                .to_owned(),
            r#"rpm2_worker_status{app="web",pm_id="0",exec_mode="cluster_mode",status="waiting restart"} 0"#
                .to_owned(),
            r#"rpm2_worker_pm2io_metric{app="web",pm_id="0",exec_mode="cluster_mode",metric="Realtime \"req\"/s"} 12.5"#
                .to_owned(),
            "rpm2_daemon_resident_memory_bytes 1048576".to_owned(),
            "rpm2_daemon_cpu_seconds_total 0.5".to_owned(),
            "rpm2_daemon_open_fds 12".to_owned(),
            "# TYPE rpm2_worker_restarts counter".to_owned(),
            "# EOF".to_owned(),
        ] {
            assert!(text.lines().any(|t| t == line), "no line {line:?} in\n{text}");
        }
    }

    #[test]
    fn pm2io_values_that_are_numbers() {
        use serde_json::json;
        assert_eq!(number(&json!(3)), Some(3.0));
        assert_eq!(number(&json!("12.5")), Some(12.5));
        assert_eq!(number(&json!("N/A")), None);
        assert_eq!(number(&json!({"a": 1})), None);
        assert_eq!(escape("a\"b\\c\nd"), r#"a\"b\\c\nd"#);
    }
}
