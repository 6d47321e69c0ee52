//! File formats, top-level shapes, `--only`, and the entry points.

use std::path::Path;

use rpm2_proto::ExecMode;
use serde_json::json;

use super::*;

#[test]
fn commonjs_module_exports() {
    let dir = project();
    let loaded = load(
        dir.path(),
        "ecosystem.config.js",
        "const base = { script: './app.js' };\nmodule.exports = { apps: [{ ...base, name: 'api', fn() {} }, { name: 'w', script: 'worker.js' }] };\n",
    )
    .unwrap();
    assert_eq!(loaded.apps.len(), 2);
    let api = &loaded.apps[0];
    assert_eq!(api.name, "api");
    assert_eq!(api.script, dir.path().join("app.js"));
    assert_eq!(api.cwd, dir.path());
    assert!(api.node);
    assert_eq!(
        api.interpreter
            .as_deref()
            .and_then(Path::file_name)
            .unwrap(),
        "node"
    );
    assert_eq!(api.exec_mode, ExecMode::Fork);
    assert_eq!(api.instances, 1);
    assert_eq!(loaded.apps[1].name, "w");
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
}

#[test]
fn esm_flavours() {
    let dir = project();
    let cases = [
        (
            "a.config.mjs",
            "export default { apps: [{ name: 'm', script: 'app.js' }] };\n",
        ),
        (
            "b.config.mjs",
            "export const apps = [{ name: 'm', script: 'app.js' }];\n",
        ),
        (
            "c.config.cjs",
            "module.exports = { apps: [{ name: 'm', script: 'app.js' }] };\n",
        ),
        (
            "d.config.js",
            "export default { apps: [{ name: 'm', script: 'app.js' }] };\n",
        ),
    ];
    for (file, text) in cases {
        let loaded = load(dir.path(), file, text).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(loaded.apps.len(), 1, "{file}");
        assert_eq!(loaded.apps[0].name, "m", "{file}");
    }
}

#[test]
fn type_module_package_with_js_config() {
    let dir = project();
    write(
        dir.path(),
        "package.json",
        r#"{"type":"module","version":"1.2.3"}"#,
    );
    let loaded = load(
        dir.path(),
        "ecosystem.config.js",
        "import { join } from 'node:path';\nexport default { apps: [{ name: 'esm', script: join(import.meta.dirname ?? '.', 'app.js') }] };\n",
    )
    .unwrap();
    assert_eq!(loaded.apps[0].name, "esm");
    assert_eq!(loaded.apps[0].version.as_deref(), Some("1.2.3"));
}

#[test]
fn js_config_errors_name_the_file() {
    let dir = project();
    let err = load(
        dir.path(),
        "bad.config.js",
        "module.exports = { apps: [ {name: 'x' ;\n",
    )
    .unwrap_err();
    assert_eq!(err.code(), "CONFIG_PARSE");
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("{}: ", dir.path().join("bad.config.js").display())),
        "{text}"
    );
    assert!(text.contains("SyntaxError"), "{text}");

    let err = load(
        dir.path(),
        "throw.config.js",
        "throw new Error('boom from config');\n",
    )
    .unwrap_err();
    assert_eq!(err.code(), "CONFIG_PARSE");
    assert!(err.to_string().contains("boom from config"), "{err}");
    assert!(!err.to_string().contains("    at "), "{err}");
}

#[test]
fn js_config_may_log_and_read_the_shell_env() {
    let dir = project();
    let loaded = load(
        dir.path(),
        "log.config.js",
        "console.log('hello'); module.exports = { apps: [{ name: process.env.SHELL_ONLY, script: 'app.js' }] };\n",
    )
    .unwrap();
    assert_eq!(loaded.apps[0].name, "shell");
}

#[test]
fn node_missing() {
    let dir = project();
    let path = write(dir.path(), "x.config.js", "module.exports = {}");
    let mut o = opts(dir.path());
    o.shell_env.insert(
        "PATH".to_owned(),
        dir.path().join("nothing").display().to_string(),
    );
    let err = load_file(&path, &o).unwrap_err();
    assert_eq!(err.code(), "NODE_NOT_FOUND");
}

#[test]
fn json5_with_comments_and_trailing_commas() {
    let dir = project();
    let loaded = load(
        dir.path(),
        "process.json",
        "// apps\n{\n  apps: [\n    { name: 'j', script: 'app.js', /* inline */ instances: 2, },\n  ],\n}\n",
    )
    .unwrap();
    assert_eq!(loaded.apps[0].name, "j");
    assert_eq!(loaded.apps[0].instances, 2);
    let err = load(dir.path(), "broken.json", "{ apps: [ }").unwrap_err();
    assert_eq!(err.code(), "CONFIG_PARSE");
    assert!(err.to_string().contains("broken.json"), "{err}");
}

#[test]
fn yaml() {
    let dir = project();
    let loaded = load(
        dir.path(),
        "ecosystem.yml",
        "apps:\n  - name: y\n    script: app.js\n    env:\n      PORT: 3000\n      DEBUG: true\n    cwd: ~\n",
    )
    .unwrap();
    let app = &loaded.apps[0];
    assert_eq!(app.name, "y");
    assert_eq!(app.env["PORT"], "3000");
    assert_eq!(app.env["DEBUG"], "true");
}

#[test]
fn single_app_files_and_legacy_key() {
    let dir = project();
    let loaded = load(
        dir.path(),
        "one.json",
        r#"{"name":"solo","script":"app.js"}"#,
    )
    .unwrap();
    assert_eq!(loaded.apps[0].name, "solo");
    let loaded = load(dir.path(), "obj.json", r#"{"apps":{"script":"app.js"}}"#).unwrap();
    assert_eq!(loaded.apps[0].name, "app");
    let loaded = load(
        dir.path(),
        "arr.json",
        r#"[{"script":"app.js"},{"script":"worker.js"}]"#,
    )
    .unwrap();
    assert_eq!(loaded.apps.len(), 2);
    let loaded = load(
        dir.path(),
        "legacy.json",
        r#"{"pm2":[{"script":"worker.js"}]}"#,
    )
    .unwrap();
    assert_eq!(loaded.apps[0].name, "worker");
}

#[test]
fn only_filters_and_rejects_unknown_names() {
    let dir = project();
    let text = r#"{"apps":[{"name":"a","script":"app.js"},{"name":"b","script":"missing.js"},{"name":"c","script":"worker.js"}]}"#;
    let path = write(dir.path(), "eco.json", text);
    let mut o = opts(dir.path());
    o.only = vec!["c,a".to_owned()];
    let loaded = load_file(&path, &o).unwrap();
    let names: Vec<_> = loaded.apps.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["a", "c"]);

    o.only = vec!["a".to_owned(), "zzz".to_owned()];
    let err = load_file(&path, &o).unwrap_err();
    assert_eq!(err.code(), "APP_NOT_IN_CONFIG");
    assert!(err.to_string().contains("\"zzz\""), "{err}");
}

#[test]
fn from_script_with_flags() {
    let dir = project();
    let mut o = opts(dir.path());
    o.overrides = json!({"name": "web", "instances": 2, "args": ["--port", "3000"], "node_args": "--inspect", "kill_timeout": 5000, "env": {"X": "1"}})
        .as_object()
        .unwrap()
        .clone();
    o.only = vec!["ignored".to_owned()];
    let loaded = from_script("app.js", &o).unwrap();
    let app = &loaded.apps[0];
    assert_eq!(app.name, "web");
    assert_eq!(app.script, dir.path().join("app.js"));
    assert_eq!(app.exec_mode, ExecMode::Cluster);
    assert_eq!(app.instances, 2);
    assert_eq!(app.args, ["--port", "3000"]);
    assert_eq!(app.interpreter_args, ["--inspect"]);
    assert_eq!(app.kill_timeout_ms, 5000);
    assert_eq!(app.env["X"], "1");
    assert_eq!(app.env["SHELL_ONLY"], "shell");

    let err = from_script("nope.js", &opts(dir.path())).unwrap_err();
    assert_eq!(err.code(), "SCRIPT_NOT_FOUND");
    assert!(
        err.to_string()
            .starts_with("nope.js: app \"nope\": script not found: "),
        "{err}"
    );
}

#[test]
fn from_script_path_lookup_and_shell_commands() {
    let dir = project();
    let app = &from_script("sh", &opts(dir.path())).unwrap().apps[0];
    assert!(app.script.is_absolute() && app.script.ends_with("sh"));
    assert_eq!(app.interpreter, None);

    let app = &from_script("python3 -m http.server 'a b'", &opts(dir.path()))
        .unwrap()
        .apps[0];
    assert_eq!(app.name, "python3 -m http.server 'a b'");
    assert!(app.script.ends_with("bash") || app.script.ends_with("sh"));
    assert_eq!(app.args, ["-c", "python3 -m http.server 'a b'"]);
}

#[test]
fn config_not_found() {
    let dir = project();
    let err = load_file(Path::new("nope.config.js"), &opts(dir.path())).unwrap_err();
    assert_eq!(err.code(), "CONFIG_NOT_FOUND");
    assert_eq!(err.to_string(), "nope.config.js: config file not found");
}

#[test]
fn config_file_rule() {
    for yes in [
        "ecosystem.config.js",
        "a.json",
        "a.json5",
        "x.yml",
        "x.yaml",
        "e.config.cjs",
        "e.config.mjs",
    ] {
        assert!(is_config_file(yes), "{yes}");
    }
    for no in ["app.js", "app.mjs", "server.cjs", "run.sh"] {
        assert!(!is_config_file(no), "{no}");
    }
}

#[test]
fn raw_apps_from_the_js_api() {
    let dir = project();
    let loaded = from_raw_apps(
        vec![json!({"name": "api", "script": "app.js", "execMode": "cluster", "instances": 2})],
        Path::new("."),
        "app object",
        &opts(dir.path()),
    )
    .unwrap();
    assert_eq!(loaded.apps[0].exec_mode, ExecMode::Cluster);
    let err =
        from_raw_apps(vec![json!(3)], dir.path(), "app object", &opts(dir.path())).unwrap_err();
    assert_eq!(err.code(), "CONFIG_PARSE");
}

#[test]
fn the_repositorys_ecosystem_file() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let root = paths::absolute(&std::env::current_dir().unwrap(), &root);
    let loaded = load_file(&root.join("ecosystem.config.js"), &opts(&root)).unwrap();
    assert_eq!(loaded.apps.len(), 1);
    let app = &loaded.apps[0];
    assert_eq!(app.name, "app");
    assert_eq!(app.script, root.join("app.js"));
    assert_eq!(app.exec_mode, ExecMode::Cluster);
    assert_eq!(app.instances, cpus());
    assert!(app.wait_ready);
    assert_eq!(app.listen_timeout_ms, 10_000);
    assert!(app.node);
    assert!(!app.merge_logs);
    assert!(loaded.warnings.is_empty());
}
