//! Logs are never dropped silently: a log file that cannot be opened is
//! reported by `start` (which exits non-zero) and `describe`, the app still
//! runs; `save` names the path it could not write.

mod common;

use common::{fixture, Rpm2};

#[test]
fn an_unopenable_log_file_is_reported_and_the_app_still_runs() {
    let r = Rpm2::new();
    let not_a_dir = r.path("plain-file");
    std::fs::write(&not_a_dir, "").unwrap();
    let out_log = not_a_dir.join("out.log");
    let out = r.fails(&[
        "start",
        &fixture("idle.js"),
        "--name",
        "quiet",
        "-o",
        &out_log.display().to_string(),
    ]);
    let text = out.all();
    assert!(
        text.contains("output is lost") && text.contains("out.log"),
        "{text}"
    );
    let p = r.proc("quiet");
    assert_eq!(p["pm2_env"]["status"], "online");
    let error = p["pm2_env"]["log_error"].as_str().unwrap_or_default();
    assert!(error.contains("out.log"), "{p}");
    let described = r.ok(&["describe", "quiet"]).stdout;
    assert!(described.contains("log error"), "{described}");
}

#[test]
fn save_names_the_path_it_cannot_write() {
    let r = Rpm2::new();
    r.ok(&["start", &fixture("idle.js"), "--name", "quiet"]);
    // The temporary dump cannot be written: a folder sits at its path.
    std::fs::create_dir_all(r.home().join("dump.pm2.tmp/x")).unwrap();
    let out = r.fails(&["save"]);
    assert!(out.all().contains("dump.pm2.tmp"), "{}", out.all());
}
