//! Per-app options: names, types, resolution and defaults.

use std::path::{Path, PathBuf};

use rpm2_proto::{ExecMode, LogTarget};
use serde_json::json;

use super::*;

#[test]
fn env_composition_and_precedence() {
    let dir = project();
    let text = r#"{
      "deploy": {"production": {"env": {"DEPLOY": "d", "SHARED": "from-deploy"}}},
      "apps": [{
        "name": "e", "script": "app.js", "port": 8080, "append_env_to_name": true,
        "env": {"SHARED": "from-env", "OBJ": {"a": 1}, "N": 5, "ONLY_ENV": "x"},
        "env_production": {"SHARED": "from-production", "NODE_ENV": "production"},
        "env_staging": {"NODE_ENV": "staging"}
      }]}"#;
    let path = write(dir.path(), "env.json", text);
    let mut o = opts(dir.path());
    let app = &load_file(&path, &o).unwrap().apps[0];
    assert_eq!(app.name, "e");
    assert_eq!(app.env["SHARED"], "from-env");
    assert_eq!(app.env["SHELL_ONLY"], "shell");
    assert_eq!(app.env["OBJ"], r#"{"a":1}"#);
    assert_eq!(app.env["N"], "5");
    assert_eq!(app.env["PORT"], "8080");
    assert!(!app.env.contains_key("NODE_ENV"));

    o.env_name = Some("production".to_owned());
    let app = &load_file(&path, &o).unwrap().apps[0];
    assert_eq!(app.name, "e-production");
    assert_eq!(app.env["SHARED"], "from-production");
    assert_eq!(app.env["NODE_ENV"], "production");
    assert_eq!(app.env["DEPLOY"], "d");
    assert_eq!(app.env["ONLY_ENV"], "x");

    // An env name the app does not define is fine.
    o.env_name = Some("qa".to_owned());
    assert!(load_file(&path, &o).is_ok());
}

#[test]
fn filter_env() {
    let dir = project();
    let app = &load(
        dir.path(),
        "f1.json",
        r#"{"script":"app.js","filter_env":true,"env":{"A":"1"}}"#,
    )
    .unwrap()
    .apps[0];
    assert_eq!(app.env.keys().collect::<Vec<_>>(), ["A"]);
    let app = &load(
        dir.path(),
        "f2.json",
        r#"{"script":"app.js","filter_env":["SHELL","SHA"]}"#,
    )
    .unwrap()
    .apps[0];
    assert!(!app.env.contains_key("SHELL_ONLY") && !app.env.contains_key("SHARED"));
    assert!(app.env.contains_key("PATH"));
}

#[test]
fn camel_case_and_aliases() {
    let dir = project();
    let loaded = load(
        dir.path(),
        "alias.json",
        r#"{"apps":[{"name":"c","exec":"app.js","killTimeout":4000,"listenTimeout":500,"waitReady":true,
           "interpreterArgs":"--max-old-space-size=100 --inspect","out":"o.log","err":"e.log","log":true,
           "pid":"p.pid","combine_logs":true,"cron":"0 3 * * *","user":"nobody","maxMemoryRestart":"100M"}]}"#,
    )
    .unwrap();
    let app = &loaded.apps[0];
    assert_eq!(app.kill_timeout_ms, 4000);
    assert_eq!(app.listen_timeout_ms, 500);
    assert!(app.wait_ready);
    assert_eq!(
        app.interpreter_args,
        ["--max-old-space-size=100", "--inspect"]
    );
    assert_eq!(app.out_file, LogTarget::Path(dir.path().join("o.log")));
    assert_eq!(app.error_file, LogTarget::Path(dir.path().join("e.log")));
    assert_eq!(app.log_file, Some(LogTarget::Default));
    assert_eq!(app.pid_file, Some(dir.path().join("p.pid")));
    assert!(app.merge_logs);
    assert_eq!(app.cron_restart.as_deref(), Some("0 3 * * *"));
    assert_eq!(app.max_memory_restart, Some(100 << 20));
    assert_eq!(app.raw_options["uid"], "nobody");
    assert_eq!(app.raw_options["kill_timeout"], 4000);
    assert!(app.raw_options.contains_key("node_args"));
    assert!(!app.raw_options.contains_key("killTimeout"));
}

#[test]
fn unknown_keys_warn_and_unsupported_are_silent() {
    let dir = project();
    let loaded = load(
        dir.path(),
        "u.json",
        r#"{"apps":[{"name":"api","script":"app.js","foo":1,"vizion":false,"pmx":true,"automation":false,"trace":false,"source_map_support":true,"env_ci":{}}]}"#,
    )
    .unwrap();
    assert_eq!(
        loaded.warnings,
        [r#"unknown option "foo" in app "api" (ignored)"#]
    );
    assert!(!loaded.apps[0].raw_options.contains_key("foo"));
    assert_eq!(loaded.apps[0].raw_options["vizion"], false);
}

#[test]
fn wrong_types_name_file_app_and_option() {
    let dir = project();
    write(
        dir.path(),
        "ecosystem.config.js",
        "module.exports = { apps: [{ name: 'api', script: 'app.js', instances: true }] };\n",
    );
    let err = load_file(Path::new("ecosystem.config.js"), &opts(dir.path())).unwrap_err();
    assert_eq!(err.code(), "INVALID_OPTION");
    assert_eq!(
        err.to_string(),
        r#"ecosystem.config.js: app "api": option "instances": expected a number or "max", got true"#
    );
    let cases = [
        (
            r#"{"name":"x","script":"app.js","kill_timeout":"soon"}"#,
            "kill_timeout",
            "expected a number",
        ),
        (
            r#"{"name":"x","script":"app.js","autorestart":"yes"}"#,
            "autorestart",
            "expected a boolean",
        ),
        (
            r#"{"name":"x","script":"app.js","min_uptime":"3 days"}"#,
            "min_uptime",
            "duration",
        ),
        (
            r#"{"name":"x","script":"app.js","max_memory_restart":"1T"}"#,
            "max_memory_restart",
            "size",
        ),
        (
            r#"{"name":"x","script":"app.js","exec_mode":"cluster_fork"}"#,
            "exec_mode",
            "\"fork\"",
        ),
        (
            r#"{"name":"x","script":"app.js","watch":5}"#,
            "watch",
            "expected a string or an array",
        ),
        (
            r#"{"name":"x","script":"app.js","args":{"a":1}}"#,
            "args",
            "expected a string or an array",
        ),
        (
            r#"{"name":"x","script":"app.js","stop_exit_codes":["a"]}"#,
            "stop_exit_codes",
            "exit code",
        ),
        (
            r#"{"name":"x","script":"app.js","env_production":5}"#,
            "env_production",
            "expected an object",
        ),
        (
            r#"{"name":"x","script":"app.js","kill_timeout":-5}"#,
            "kill_timeout",
            "non-negative",
        ),
        (
            r#"{"name":"x","script":"app.js","cron_restart":"every day"}"#,
            "cron_restart",
            "cron",
        ),
        (r#"{"name":"x"}"#, "script", "required"),
    ];
    for (i, (text, option, fragment)) in cases.iter().enumerate() {
        let err = load(dir.path(), &format!("t{i}.json"), text).unwrap_err();
        let msg = err.to_string();
        assert_eq!(err.code(), "INVALID_OPTION", "{msg}");
        assert!(
            msg.contains(&format!("t{i}.json: app \"x\": option \"{option}\": ")),
            "{msg}"
        );
        assert!(msg.contains(fragment), "{msg}");
    }
}

#[test]
fn lenient_coercions() {
    let dir = project();
    let app = &load(
        dir.path(),
        "c.json",
        r#"{"script":"app.js","kill_timeout":"3000","autorestart":"false","instances":"3"}"#,
    )
    .unwrap()
    .apps[0];
    assert_eq!(app.kill_timeout_ms, 3000);
    assert!(!app.autorestart);
    assert_eq!(app.instances, 3);
}

#[test]
fn missing_script_and_interpreter() {
    let dir = project();
    let err = load(dir.path(), "m.json", r#"{"name":"api","script":"nope.js"}"#).unwrap_err();
    assert_eq!(err.code(), "SCRIPT_NOT_FOUND");
    assert!(
        err.to_string()
            .contains(&dir.path().join("nope.js").display().to_string()),
        "{err}"
    );
    assert!(err.to_string().contains("app \"api\""), "{err}");

    let err = load(
        dir.path(),
        "i.json",
        r#"{"name":"api","script":"app.js","interpreter":"no-such-interp-xyz"}"#,
    )
    .unwrap_err();
    assert_eq!(err.code(), "INTERPRETER_NOT_FOUND");
    assert!(err.to_string().contains("no-such-interp-xyz"), "{err}");

    // By extension, with a PATH that has no ruby.
    write(dir.path(), "tool.rb", "puts 1\n");
    let path = write(dir.path(), "r.json", r#"{"script":"tool.rb"}"#);
    let mut o = opts(dir.path());
    o.shell_env.insert(
        "PATH".to_owned(),
        dir.path().join("empty").display().to_string(),
    );
    let err = load_file(&path, &o).unwrap_err();
    assert_eq!(err.code(), "INTERPRETER_NOT_FOUND");
    assert!(err.to_string().contains("\"ruby\""), "{err}");
}

#[test]
fn interpreters() {
    let dir = project();
    write(dir.path(), "run.sh", "echo hi\n");
    write(dir.path(), "bin/tool", "#!/bin/sh\n");
    let loaded = load(
        dir.path(),
        "i.json",
        r#"[{"script":"run.sh"},{"script":"bin/tool"},{"script":"app.js","interpreter":"none"},{"script":"app.js","interpreter":"bash"}]"#,
    )
    .unwrap();
    let [sh, tool, none, bash] = &loaded.apps[..] else {
        panic!()
    };
    assert_eq!(
        sh.interpreter.as_deref().and_then(Path::file_name).unwrap(),
        "bash"
    );
    assert!(!sh.node);
    assert_eq!(tool.interpreter, None);
    assert_eq!(tool.name, "tool");
    assert_eq!(none.interpreter, None);
    assert!(!none.node);
    assert!(!bash.node);
}

#[test]
fn instances_and_cluster_switch() {
    let dir = project();
    let cpus = cpus();
    let cases: [(serde_json::Value, u32, ExecMode); 6] = [
        (json!("max"), cpus, ExecMode::Cluster),
        (json!(0), cpus, ExecMode::Cluster),
        (json!(-1), (cpus - 1).max(1), ExecMode::Cluster),
        (json!(-2), cpus.saturating_sub(2).max(1), ExecMode::Fork),
        (json!(3), 3, ExecMode::Cluster),
        (json!(1), 1, ExecMode::Cluster),
    ];
    for (i, (instances, count, mode)) in cases.into_iter().enumerate() {
        let text = json!({"script": "app.js", "instances": instances}).to_string();
        let app = &load(dir.path(), &format!("n{i}.json"), &text).unwrap().apps[0];
        assert_eq!((app.instances, app.exec_mode), (count, mode), "{instances}");
        assert!(!app.merge_logs);
    }
    // Explicit fork keeps fork; non-node scripts stay fork with -i.
    let app = &load(
        dir.path(),
        "f.json",
        r#"{"script":"app.js","instances":4,"exec_mode":"fork_mode"}"#,
    )
    .unwrap()
    .apps[0];
    assert_eq!((app.instances, app.exec_mode), (4, ExecMode::Fork));
    write(dir.path(), "run.sh", "echo\n");
    let app = &load(dir.path(), "s.json", r#"{"script":"run.sh","instances":2}"#)
        .unwrap()
        .apps[0];
    assert_eq!((app.instances, app.exec_mode), (2, ExecMode::Fork));
    // Explicit cluster without node is an error.
    let err = load(
        dir.path(),
        "c.json",
        r#"{"name":"s","script":"run.sh","exec_mode":"cluster"}"#,
    )
    .unwrap_err();
    assert_eq!(err.code(), "INVALID_OPTION");
    assert!(err.to_string().contains("option \"exec_mode\""), "{err}");
}

#[test]
fn merge_logs_default() {
    let dir = project();
    let loaded = load(
        dir.path(),
        "m.json",
        r#"[{"script":"app.js"},{"script":"app.js","exec_mode":"cluster"},{"script":"app.js","instances":2,"exec_mode":"fork"},{"script":"app.js","instances":2,"merge_logs":true}]"#,
    )
    .unwrap();
    let merged: Vec<bool> = loaded.apps.iter().map(|a| a.merge_logs).collect();
    assert_eq!(merged, [true, false, false, true]);
}

#[test]
fn args_strings_are_split() {
    let dir = project();
    let app = &load(
        dir.path(),
        "a.json",
        r#"{"script":"app.js","args":"--name 'my app' -v \"x y\""}"#,
    )
    .unwrap()
    .apps[0];
    assert_eq!(app.args, ["--name", "my app", "-v", "x y"]);
    let app = &load(
        dir.path(),
        "b.json",
        r#"{"script":"app.js","args":["a b", 3]}"#,
    )
    .unwrap()
    .apps[0];
    assert_eq!(app.args, ["a b", "3"]);
}

#[test]
fn durations_sizes_and_policy() {
    let dir = project();
    let app = &load(
        dir.path(),
        "d.json",
        r#"{"script":"app.js","min_uptime":"10s","max_memory_restart":"512K","max_restarts":3,"restart_delay":200,
           "exp_backoff_restart_delay":100,"stop_exit_codes":0,"autostart":false,"treekill":false,"cron_restart":"0"}"#,
    )
    .unwrap()
    .apps[0];
    assert_eq!(app.min_uptime_ms, 10_000);
    assert_eq!(app.max_memory_restart, Some(512 * 1024));
    assert_eq!(app.max_restarts, 3);
    assert_eq!(app.restart_delay_ms, 200);
    assert_eq!(app.exp_backoff_restart_delay_ms, Some(100));
    assert_eq!(app.stop_exit_codes, [0]);
    assert!(!app.autostart && !app.treekill);
    assert_eq!(app.cron_restart, None);

    let app = &load(dir.path(), "d2.json", r#"{"script":"app.js","min_uptime":"5m","max_memory_restart":1000,"stop_exit_codes":[1,"2"],"cron_restart":0}"#)
        .unwrap()
        .apps[0];
    assert_eq!(app.min_uptime_ms, 300_000);
    assert_eq!(app.max_memory_restart, Some(1000));
    assert_eq!(app.stop_exit_codes, [1, 2]);
    assert_eq!(app.cron_restart, None);
}

#[test]
fn defaults_are_pm2s() {
    let dir = project();
    let app = &load(dir.path(), "d.json", r#"{"script":"app.js"}"#)
        .unwrap()
        .apps[0];
    let expected = AppSpec::with_defaults(
        "app".into(),
        dir.path().join("app.js"),
        dir.path().to_path_buf(),
    );
    assert_eq!(app.namespace, expected.namespace);
    assert_eq!(app.kill_timeout_ms, 1600);
    assert_eq!(app.listen_timeout_ms, 3000);
    assert_eq!(app.min_uptime_ms, 1000);
    assert_eq!(app.max_restarts, 16);
    assert_eq!(app.instance_var, "NODE_APP_INSTANCE");
    assert!(app.autorestart && app.autostart && app.treekill && app.merge_logs);
    assert_eq!(app.out_file, LogTarget::Default);
    assert_eq!(app.log_file, None);
    assert!(!app.watch.enabled);
}

#[test]
fn logs_and_dates() {
    let dir = project();
    write(dir.path(), "sub/app.js", "");
    let loaded = load(
        dir.path(),
        "l.json",
        r#"[{"script":"app.js","out_file":"/dev/null","error_file":"NULL","log_file":"logs/all.log","time":true,"log_type":"json"},
            {"script":"app.js","log_date_format":"YYYY-MM-DD HH:mm:ss Z","time":true,"cwd":"sub","out_file":"~/o.log"}]"#,
    )
    .unwrap();
    let [a, b] = &loaded.apps[..] else { panic!() };
    assert_eq!(a.out_file, LogTarget::Null);
    assert_eq!(a.error_file, LogTarget::Null);
    assert_eq!(
        a.log_file,
        Some(LogTarget::Path(dir.path().join("logs/all.log")))
    );
    assert_eq!(a.log_date_format.as_deref(), Some("%Y-%m-%dT%H:%M:%S"));
    assert!(a.log_json);
    assert_eq!(b.cwd, dir.path().join("sub"));
    assert_eq!(b.script, dir.path().join("sub/app.js"));
    assert_eq!(b.log_date_format.as_deref(), Some("%Y-%m-%d %H:%M:%S %:z"));
    assert_eq!(
        b.out_file,
        LogTarget::Path(PathBuf::from("/home/tester/o.log"))
    );
}

#[test]
fn watch_options() {
    let dir = project();
    let loaded = load(
        dir.path(),
        "w.json",
        r#"[{"script":"app.js","watch":true},{"script":"app.js","watch":["src","lib"],"ignore_watch":"tmp","watch_delay":500},{"script":"app.js","watch":"src"}]"#,
    )
    .unwrap();
    let [a, b, c] = &loaded.apps[..] else {
        panic!()
    };
    assert!(a.watch.enabled);
    assert_eq!(a.watch.paths, [dir.path().to_path_buf()]);
    assert_eq!(a.watch.ignore, ["node_modules", ".*"]);
    assert_eq!(
        b.watch.paths,
        [dir.path().join("src"), dir.path().join("lib")]
    );
    assert_eq!(b.watch.ignore, ["tmp"]);
    assert_eq!(b.watch.delay_ms, 500);
    assert_eq!(c.watch.paths, [dir.path().join("src")]);
}

#[test]
fn python_gets_unbuffered_output() {
    let dir = project();
    write(dir.path(), "x.py", "print(1)\n");
    let Ok(loaded) = load(dir.path(), "p.json", r#"{"script":"x.py"}"#) else {
        return; // no python on this machine
    };
    assert_eq!(loaded.apps[0].env["PYTHONUNBUFFERED"], "1");
}

#[test]
fn sticky_modes_and_drain() {
    use rpm2_proto::spec::Sticky;
    let dir = project();
    let loaded = load(
        dir.path(),
        "sticky.json",
        r#"{"apps":[{"name":"a","script":"app.js","sticky":true},
                    {"name":"b","script":"app.js","sticky":"ip","drain":false},
                    {"name":"c","script":"app.js","sticky":"forwarded"},
                    {"name":"d","script":"app.js"}]}"#,
    )
    .unwrap();
    let modes: Vec<Sticky> = loaded.apps.iter().map(|a| a.sticky).collect();
    assert_eq!(
        modes,
        [Sticky::Ip, Sticky::Ip, Sticky::Forwarded, Sticky::Off]
    );
    let drains: Vec<bool> = loaded.apps.iter().map(|a| a.drain).collect();
    assert_eq!(drains, [true, false, true, true]);
}

#[test]
fn an_unknown_sticky_mode_names_the_app_and_key() {
    let dir = project();
    let err = load(
        dir.path(),
        "bad.json",
        r#"{"apps":[{"name":"web","script":"app.js","sticky":"cookie"}]}"#,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("web") && err.contains("sticky") && err.contains("cookie"),
        "{err}"
    );
}
