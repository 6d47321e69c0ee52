//! pm2's module configuration: `set`/`multiset`/`unset`/`get`/`conf` keep
//! values in the home's `module_conf.json`; the app a key names is
//! restarted with them in its environment, and gets them again after the
//! daemon restarts.

mod common;

use common::{fixture, restart_time, wait_json, Rpm2};

fn conf_file(r: &Rpm2) -> std::path::PathBuf {
    r.home().join("module_conf.json")
}

#[test]
fn set_stores_the_value_and_restarts_the_app_with_it() {
    let r = Rpm2::new();
    // Nothing stored yet, no daemon: unset still succeeds, and starts none.
    r.ok(&["unset", "conf-app"]);
    assert!(
        !r.home().join("rpc.sock").exists(),
        "no daemon for a config edit"
    );

    let dump = r.path("env.json");
    r.ok(&[
        "start",
        &fixture("env_dump.js"),
        "--name",
        "conf-app",
        "--",
        dump.to_str().unwrap(),
    ]);
    r.wait_status("conf-app", "online");
    assert!(wait_json(&dump).get("config_var").is_none());
    std::fs::remove_file(&dump).unwrap();

    let out = r.ok(&["set", "conf-app.config_var", "false"]);
    assert!(
        out.stdout.contains("Module conf-app restarted"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("$ rpm2 set conf-app:config_var false"));
    let p = r.proc("conf-app");
    assert_eq!(restart_time(&p), 1);
    assert_eq!(p["pm2_env"]["env"]["config_var"], "false");
    // The app itself sees the value, and all of its values as JSON.
    let env = wait_json(&dump);
    assert_eq!(env["config_var"], "false");
    assert_eq!(env["conf-app"], r#"{"config_var":"false"}"#);

    r.ok(&["multiset", "conf-app:probes true conf-app:conf 12"]);
    let p = r.proc("conf-app");
    assert_eq!(restart_time(&p), 2);
    assert_eq!(p["pm2_env"]["env"]["probes"], "true");
    assert_eq!(p["pm2_env"]["env"]["conf"], "12");

    let out = r.ok(&["get", "conf-app:probes"]);
    assert_eq!(out.stdout, "Value for module conf-app key probes: true\n");
    let listed = r.ok(&["conf"]).stdout;
    // Then the log rotation settings in force (defaults included).
    assert!(
        listed.starts_with(
            "Module: conf-app\n$ rpm2 set conf-app:config_var false\n\
             $ rpm2 set conf-app:probes true\n$ rpm2 set conf-app:conf 12\n\
             Module: pm2-logrotate\n$ rpm2 set pm2-logrotate:max_size 10M\n"
        ),
        "{listed}"
    );
    assert!(listed.contains("$ rpm2 set pm2-logrotate:rotateInterval \"0 0 * * *\"\n"));
    assert_eq!(r.ok(&["get"]).stdout, listed);
    assert_eq!(
        r.ok(&["config", "conf-app.conf"]).stdout,
        "Value for module conf-app key conf: 12\n"
    );

    // Kept across a daemon restart: a new daemon starts the app with them.
    r.ok(&["kill"]);
    std::fs::remove_file(&dump).unwrap();
    r.ok(&[
        "start",
        &fixture("env_dump.js"),
        "--name",
        "conf-app",
        "--",
        dump.to_str().unwrap(),
    ]);
    let env = wait_json(&dump);
    assert_eq!(env["config_var"], "false");
    assert_eq!(env["probes"], "true");

    // unset removes the value from the store (the app keeps its env until
    // restarted, as in pm2).
    r.ok(&["unset", "conf-app:probes"]);
    assert!(r
        .fails(&["get", "conf-app:probes"])
        .stderr
        .contains("Unknown key conf-app:probes"));
    r.ok(&["unset", "all"]);
    assert_eq!(std::fs::read_to_string(conf_file(&r)).unwrap(), "{}");
}

#[test]
fn set_for_an_app_that_does_not_run_only_stores() {
    let r = Rpm2::new();
    let out = r.ok(&["set", "pm2-logrotate:max_size", "10M"]);
    assert!(!out.stdout.contains("restarted"), "{}", out.stdout);
    let stored: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(conf_file(&r)).unwrap()).unwrap();
    assert_eq!(
        stored,
        serde_json::json!({"pm2-logrotate": {"max_size": "10M"}})
    );
    // With a daemon that does not know the app: still only stored.
    r.ok(&["ping"]);
    r.ok(&["set", "pm2-logrotate:retain", "7"]);
    assert_eq!(
        r.ok(&["get", "pm2-logrotate.retain"]).stdout,
        "Value for module pm2-logrotate key retain: 7\n"
    );
    r.ok(&["ping"]);
}

#[test]
fn bad_keys_and_a_malformed_store_change_nothing() {
    let r = Rpm2::new();
    r.ok(&["set", "app.key", "v"]);
    let before = std::fs::read_to_string(conf_file(&r)).unwrap();
    for bad in [
        vec!["set", "app..key", "x"],
        vec!["set", "app.__proto__", "x"],
        vec!["set", "app.only-a-key"],
        vec!["multiset", "app.a 1 app.b"],
        vec!["multiset", "app.a 1 app..b 2"],
    ] {
        let out = r.fails(&bad);
        assert!(
            out.stderr.contains("[RPM2][ERROR]"),
            "{bad:?}: {}",
            out.stderr
        );
        assert_eq!(
            std::fs::read_to_string(conf_file(&r)).unwrap(),
            before,
            "{bad:?}"
        );
    }
    assert!(r
        .fails(&["get", "nope"])
        .stderr
        .contains("Unknown key nope"));

    std::fs::write(conf_file(&r), "{ not json").unwrap();
    let out = r.fails(&["set", "app.key", "w"]);
    assert!(
        out.stderr.contains("is not a JSON object"),
        "{}",
        out.stderr
    );
    assert_eq!(
        std::fs::read_to_string(conf_file(&r)).unwrap(),
        "{ not json"
    );
    // The daemon logs an unreadable store and starts apps anyway.
    r.ok(&["start", &fixture("idle.js"), "--name", "still-starts"]);
    r.wait_status("still-starts", "online");
}
