//! Metrics and health over HTTP: a cluster app of two workers scraped over
//! real HTTP, the text parsed line by line (values per worker, restarts
//! after a SIGKILL, hand-offs after requests), `/readyz` following the
//! app, and the address turned on, moved and off with `rpm2 set`/`unset`;
//! bad and busy addresses refused by `set`, and only logged by a daemon
//! started with them in `RPM2_METRICS_ADDR`.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{free_port, http_get, pid_of, wait_until, Rpm2};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

const ENV: &str = "RPM2_METRICS_ADDR";

/// Answers at once, except `/hold`, which it never answers.
const HOLDING_SERVER: &str = r"
require('node:http')
  .createServer((req, res) => { if (req.url !== '/hold') res.end('ok'); })
  .listen(Number(process.argv[2]), '127.0.0.1');
";

/// `GET path` over HTTP/1.1: the status code and the body, or `None`
/// when nothing listens.
fn get(addr: &str, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    let (head, body) = resp.split_once("\r\n\r\n")?;
    let code = head.split(' ').nth(1)?.parse().ok()?;
    Some((code, body.to_owned()))
}

/// One sample: its name and labels.
type Series = (String, BTreeMap<String, String>);

/// The OpenMetrics text, parsed: every line is a comment or a sample, each
/// sample's family was declared by a `# TYPE`, and `# EOF` ends it.
fn parse(text: &str) -> BTreeMap<Series, f64> {
    assert!(text.ends_with("# EOF\n"), "no # EOF at the end:\n{text}");
    let mut families = Vec::new();
    let mut samples = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            families.push(rest.split(' ').next().unwrap().to_owned());
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("a sample has a value");
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => (name, labels(rest.strip_suffix('}').expect("labels end"))),
            None => (series, BTreeMap::new()),
        };
        assert!(
            families
                .iter()
                .any(|f| name == f || name.strip_suffix("_total") == Some(f)),
            "{name} has no # TYPE"
        );
        let value: f64 = value.parse().expect("a number");
        samples.insert((name.to_owned(), labels), value);
    }
    samples
}

/// `a="x",b="y \"quoted\""` into its pairs.
fn labels(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut chars = text.chars().peekable();
    while chars.peek().is_some() {
        let key: String = chars.by_ref().take_while(|&c| c != '=').collect();
        assert_eq!(chars.next(), Some('"'), "label {key} is quoted");
        let mut value = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(c) => value.push(c),
                    None => panic!("dangling escape"),
                },
                '"' => break,
                c => value.push(c),
            }
        }
        out.insert(key, value);
        if chars.peek() == Some(&',') {
            chars.next();
        }
    }
    out
}

/// The value of `name` for worker `pm_id` (and `extra` labels).
fn value_of(
    m: &BTreeMap<Series, f64>,
    name: &str,
    pm_id: u32,
    extra: &[(&str, &str)],
) -> Option<f64> {
    m.iter()
        .find(|((n, l), _)| {
            n == name
                && l.get("pm_id").map(String::as_str) == Some(&pm_id.to_string())
                && extra
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, v)| *v)
}

fn scrape(addr: &str) -> BTreeMap<Series, f64> {
    let (code, body) = get(addr, "/metrics").expect("/metrics answers");
    assert_eq!(code, 200, "{body}");
    parse(&body)
}

fn metrics_addr() -> String {
    format!("127.0.0.1:{}", free_port())
}

#[test]
fn a_cluster_app_scraped_and_probed() {
    let r = Rpm2::new();
    let addr = metrics_addr();
    r.run_env(&["ping"], &[(ENV, &addr)]);
    assert_eq!(get(&addr, "/healthz"), Some((200, "ok\n".into())));
    assert_eq!(get(&addr, "/readyz"), Some((503, "no apps\n".into())));
    assert_eq!(get(&addr, "/nope").map(|(c, _)| c), Some(404));

    let port = free_port().to_string();
    let app = r.write("web.js", HOLDING_SERVER);
    r.ok(&["start", &app, "--name", "web", "-i", "2", "--", &port]);
    r.wait_online("web", 2);
    let port: u16 = port.parse().unwrap();
    for _ in 0..6 {
        wait_until("web to answer", || http_get(port));
    }
    // The primary counts a hand-off once the worker's answer is read.
    let sum = |m: &BTreeMap<Series, f64>, name: &str| {
        Some(value_of(m, name, 0, &[])? + value_of(m, name, 1, &[])?)
    };
    let m = wait_until("6 hand-offs counted", || {
        let m = scrape(&addr);
        (sum(&m, "rpm2_worker_handed_off_connections_total")? >= 6.0).then_some(m)
    });
    for id in [0, 1] {
        let labels = [("app", "web"), ("exec_mode", "cluster_mode")];
        assert!(value_of(&m, "rpm2_worker_memory_bytes", id, &labels).unwrap() > 0.0);
        assert!(value_of(&m, "rpm2_worker_cpu_seconds_total", id, &labels).is_some());
        assert!(value_of(&m, "rpm2_worker_cpu_percent", id, &labels).is_some());
        assert!(value_of(&m, "rpm2_worker_uptime_seconds", id, &labels).is_some());
        assert_eq!(
            value_of(&m, "rpm2_worker_restarts_total", id, &labels),
            Some(0.0)
        );
        assert_eq!(
            value_of(&m, "rpm2_worker_status", id, &[("status", "online")]),
            Some(1.0)
        );
        assert_eq!(
            value_of(&m, "rpm2_worker_status", id, &[("status", "stopped")]),
            Some(0.0)
        );
    }
    assert_eq!(sum(&m, "rpm2_worker_inflight_requests"), Some(0.0));
    // The watchdog's first pong gives each worker a lag.
    wait_until("event-loop lag of both workers", || {
        let m = scrape(&addr);
        let lags = [0, 1].map(|id| value_of(&m, "rpm2_worker_event_loop_lag_seconds", id, &[]));
        lags.iter()
            .all(|l| l.is_some_and(|s| (0.0..5.0).contains(&s)))
            .then_some(())
    });
    // A request held by the app is in flight (the drain preload reports
    // it), and no longer once its client has gone.
    let mut held = TcpStream::connect(("127.0.0.1", port)).unwrap();
    held.write_all(b"GET /hold HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    wait_until("the held request to be reported", || {
        (sum(&scrape(&addr), "rpm2_worker_inflight_requests")? == 1.0).then_some(())
    });
    drop(held);
    wait_until("no request in flight", || {
        (sum(&scrape(&addr), "rpm2_worker_inflight_requests")? == 0.0).then_some(())
    });
    assert!(m[&("rpm2_daemon_resident_memory_bytes".into(), BTreeMap::new())] > 0.0);
    assert!(m[&("rpm2_daemon_open_fds".into(), BTreeMap::new())] > 0.0);
    assert!(m.contains_key(&("rpm2_daemon_cpu_seconds_total".into(), BTreeMap::new())));
    assert_eq!(get(&addr, "/readyz"), Some((200, "ready\n".into())));

    // SIGKILL worker 0: it comes back with one restart more.
    let victim = pid_of(&r.procs("web")[0]);
    kill(Pid::from_raw(victim), Signal::SIGKILL).unwrap();
    wait_until("worker 0 restarted, seen by /metrics", || {
        let m = scrape(&addr);
        (value_of(&m, "rpm2_worker_restarts_total", 0, &[]) == Some(1.0)
            && value_of(&m, "rpm2_worker_status", 0, &[("status", "online")]) == Some(1.0))
        .then_some(())
    });

    r.ok(&["stop", "web"]);
    let (code, body) = get(&addr, "/readyz").unwrap();
    assert_eq!(code, 503);
    assert!(
        body.contains("web 0 stopped") && body.contains("web 1 stopped"),
        "{body}"
    );
    r.ok(&["start", "web"]);
    r.wait_online("web", 2);
    assert_eq!(get(&addr, "/readyz"), Some((200, "ready\n".into())));
}

#[test]
fn addresses_set_live_and_refused_when_bad_or_busy() {
    let r = Rpm2::new();
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_addr = busy.local_addr().unwrap().to_string();
    let log = r.home().join("pm2.log");

    // In the environment: logged, and the daemon runs without the endpoint.
    r.run_env(&["ping"], &[(ENV, "localhost:9209")]);
    r.ok(&["kill"]);
    r.run_env(&["ping"], &[(ENV, &busy_addr)]);
    r.ok(&["ping"]);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains(&format!("{ENV} \"localhost:9209\" is invalid: expected")),
        "{text}"
    );
    assert!(
        text.contains(&format!("cannot listen on {busy_addr}")),
        "{text}"
    );
    r.ok(&["kill"]);

    // Through `set`: refused, and nothing is stored.
    let conf = r.home().join("module_conf.json");
    let out = r.fails(&["set", "rpm2:metrics_addr", "localhost:9209"]);
    assert!(out.all().contains("127.0.0.1:9209"), "{}", out.all());
    let out = r.fails(&["set", "rpm2:metrics_addr", &busy_addr]);
    assert!(out.all().contains("cannot listen there"), "{}", out.all());
    let out = r.fails(&["set", "rpm2:metrics", "127.0.0.1:9209"]);
    assert!(out.all().contains("metrics_addr"), "{}", out.all());
    assert!(!std::fs::read_to_string(&conf)
        .unwrap_or_default()
        .contains("rpm2"));

    // Live: on, moved (to every interface on the same port, which the old
    // listener must free first; then elsewhere), off.
    r.ok(&["ping"]);
    let first = metrics_addr();
    r.ok(&["set", "rpm2:metrics_addr", &first]);
    assert_eq!(get(&first, "/healthz").map(|(c, _)| c), Some(200));
    let port = first.rsplit_once(':').unwrap().1;
    r.ok(&["set", "rpm2:metrics_addr", &format!("0.0.0.0:{port}")]);
    assert_eq!(get(&first, "/healthz").map(|(c, _)| c), Some(200));
    let second = metrics_addr();
    r.ok(&["set", "rpm2:metrics_addr", &second]);
    assert_eq!(get(&second, "/healthz").map(|(c, _)| c), Some(200));
    assert_eq!(get(&first, "/healthz"), None, "the old address is closed");
    r.ok(&["unset", "rpm2:metrics_addr"]);
    assert_eq!(get(&second, "/healthz"), None, "unset closes it");
    r.ok(&["ping"]);
    drop(busy);
}
