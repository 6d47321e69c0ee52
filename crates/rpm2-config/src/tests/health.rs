//! `unresponsive_timeout` and the probes: resolved values, and the configs
//! that cannot work, which name the app and the option.

use rpm2_proto::health::{Probe, ProbeCheck};

use super::*;

#[test]
fn probes_and_the_watchdog_timeout_resolve() {
    let dir = project();
    let text = r#"{"apps": [{
        "name": "h", "script": "app.js", "env": {"PORT": "3100"}, "unresponsive_timeout": 1500,
        "readiness_probe": {"http_get": {"path": "/health"}, "period_ms": 500},
        "liveness_probe": {"tcp_socket": {"port": 3200}, "failure_threshold": 2, "initial_delay_ms": 10}
    }, {"name": "e", "script": "app.js",
        "liveness_probe": {"exec": {"command": "./check.sh --quick"}}}]}"#;
    let apps = load(dir.path(), "h.json", text).unwrap().apps;
    let h = &apps[0];
    assert_eq!(h.unresponsive_timeout_ms, 1500);
    let mut ready = Probe::new(ProbeCheck::HttpGet {
        path: "/health".into(),
        port: 3100,
        status: None,
    });
    ready.period_ms = 500;
    assert_eq!(h.readiness_probe, Some(ready));
    let live = h.liveness_probe.as_ref().unwrap();
    assert_eq!(live.check, ProbeCheck::TcpSocket { port: 3200 });
    assert_eq!((live.failure_threshold, live.initial_delay_ms), (2, 10));
    let e = &apps[1];
    assert_eq!(e.unresponsive_timeout_ms, 30_000);
    assert_eq!(e.readiness_probe, None);
    assert_eq!(
        e.liveness_probe.as_ref().unwrap().check,
        ProbeCheck::Exec {
            command: vec!["./check.sh".into(), "--quick".into()]
        }
    );
}

#[test]
fn a_probe_that_cannot_work_is_an_error_naming_app_and_option() {
    let dir = project();
    let cases = [
        (
            "readiness_probe",
            r#"{"http_get": {"port": 3000}}"#,
            "needs a path",
        ),
        (
            "readiness_probe",
            r#"{"http_get": {"path": "/h", "port": 70000}}"#,
            "port: expected 1-65535",
        ),
        (
            "liveness_probe",
            r#"{"tcp_socket": {"port": 0}}"#,
            "port: expected 1-65535",
        ),
        ("liveness_probe", r#"{"tcp_socket": {}}"#, "needs a port"),
        (
            "liveness_probe",
            r#"{"grpc": {"port": 3000}}"#,
            "unknown probe kind or setting \"grpc\"",
        ),
        ("liveness_probe", r#"{"period_ms": 100}"#, "needs a check"),
        (
            "readiness_probe",
            r#"{"exec": {"command": []}}"#,
            "command is empty",
        ),
        (
            "readiness_probe",
            r#"{"http_get": {"path": "/h", "port": 1, "status": 42}}"#,
            "status",
        ),
        (
            "readiness_probe",
            r#"{"http_get": {"path": "/h", "port": 1}, "period_ms": 0}"#,
            "period_ms",
        ),
        ("readiness_probe", r#""/health""#, "expected an object"),
        (
            "unresponsive_timeout",
            "-1",
            "expected a non-negative number",
        ),
    ];
    for (i, (option, value, fragment)) in cases.iter().enumerate() {
        let text = format!(r#"{{"name": "x", "script": "app.js", "{option}": {value}}}"#);
        let err = load(dir.path(), &format!("p{i}.json"), &text).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("p{i}.json: app \"x\": option \"{option}\": ")),
            "{msg}"
        );
        assert!(msg.contains(fragment), "{msg}");
    }
}
