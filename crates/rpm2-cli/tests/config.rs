//! Ecosystem files: JSON with comments, YAML, ESM `export default`,
//! `--only`, `--env <name>`; bad configs fail clearly and change nothing.

mod common;

use common::{fixture, pid_of, restart_time, status_of, wait_json, Rpm2};

/// Paths as JSON string literals (for config files written by the tests).
fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

#[test]
fn json_with_comments_and_trailing_commas() {
    let r = Rpm2::new();
    let env_file = r.path("env.json").display().to_string();
    let eco = r.write(
        "eco.config.json",
        &format!(
            r#"// pm2 evaluates .json as JavaScript: comments occur
{{
  /* the apps */
  "apps": [
    {{
      name: "json5", // unquoted key, too
      "script": {script},
      "args": [{env_file},],
      "env": {{ "FROM": "json5", }},
    }},
  ],
}}
"#,
            script = q(&fixture("env_dump.js")),
            env_file = q(&env_file),
        ),
    );
    r.ok(&["start", &eco]);
    let p = r.wait_status("json5", "online");
    let env = wait_json(std::path::Path::new(&env_file));
    assert_eq!(env["FROM"], "json5");
    // Starting the same file again restarts the running app (pm2).
    r.ok(&["start", &eco]);
    let again = r.wait_status("json5", "online");
    assert_eq!(restart_time(&again), 1);
    assert_ne!(pid_of(&again), pid_of(&p));
    assert_eq!(r.jlist().len(), 1);
}

#[test]
fn yaml_config() {
    let r = Rpm2::new();
    let env_file = r.path("env.json").display().to_string();
    let eco = r.write(
        "eco.yml",
        &format!(
            "apps:\n  - name: yml-app\n    script: {}\n    args:\n      - {}\n    env:\n      FROM: yaml\n",
            fixture("env_dump.js"),
            env_file
        ),
    );
    r.ok(&["start", &eco]);
    r.wait_status("yml-app", "online");
    assert_eq!(wait_json(std::path::Path::new(&env_file))["FROM"], "yaml");
}

#[test]
fn esm_config_with_export_default() {
    let r = Rpm2::new();
    let env_file = r.path("env.json").display().to_string();
    let eco = r.write(
        "eco.config.mjs",
        &format!(
            "const from = 'mjs';\nexport default {{\n  apps: [{{ name: 'esm', script: {}, args: [{}], env: {{ FROM: from }} }}],\n}};\n",
            q(&fixture("env_dump.js")),
            q(&env_file)
        ),
    );
    r.ok(&["start", &eco]);
    r.wait_status("esm", "online");
    assert_eq!(wait_json(std::path::Path::new(&env_file))["FROM"], "mjs");
}

fn three_apps(r: &Rpm2) -> String {
    let app = |name: &str| serde_json::json!({"name": name, "script": fixture("idle.js")});
    r.write(
        "three.config.json",
        &serde_json::json!({"apps": [app("one"), app("two"), app("three")]}).to_string(),
    )
}

fn names(r: &Rpm2) -> Vec<String> {
    let mut v: Vec<String> = r
        .jlist()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn only_starts_the_named_apps() {
    let r = Rpm2::new();
    let eco = three_apps(&r);
    r.ok(&["start", &eco, "--only", "two,three"]);
    assert_eq!(names(&r), ["three", "two"]);
    r.ok(&["start", &eco, "--only", "one"]);
    assert_eq!(names(&r), ["one", "three", "two"]);
    assert!(r.jlist().iter().all(|p| status_of(p) == "online"));
}

#[test]
fn env_name_merges_env_block() {
    let r = Rpm2::new();
    let env_file = r.path("env.json").display().to_string();
    let eco = r.write(
        "envs.config.json",
        &serde_json::json!({"apps": [{
            "name": "staged",
            "script": fixture("env_dump.js"),
            "args": [env_file],
            "env": {"MODE": "development", "KEEP": "kept"},
            "env_production": {"MODE": "production", "ONLY_PROD": "yes"},
        }]})
        .to_string(),
    );
    r.ok(&["start", &eco, "--env", "production"]);
    let env = wait_json(std::path::Path::new(&env_file));
    assert_eq!(env["MODE"], "production");
    assert_eq!(env["KEEP"], "kept");
    assert_eq!(env["ONLY_PROD"], "yes");
    // Without --env: the plain env block.
    std::fs::remove_file(&env_file).unwrap();
    r.ok(&["delete", "all"]);
    r.ok(&["start", &eco]);
    let env = wait_json(std::path::Path::new(&env_file));
    assert_eq!(env["MODE"], "development");
    assert!(env.get("ONLY_PROD").is_none());
}

/// Each bad start fails, names what is wrong, starts nothing and leaves
/// the running app alone.
#[test]
fn bad_configs_fail_clearly_and_change_nothing() {
    let r = Rpm2::new();
    r.ok(&["start", &fixture("idle.js"), "--name", "keeper"]);
    let keeper = pid_of(&r.proc("keeper"));
    let idle = q(&fixture("idle.js"));

    let cases: Vec<(Vec<String>, Vec<&str>)> = vec![
        (
            vec![r.write(
                "syntax.config.json",
                r#"{ "apps": [ { "name": "x", "script": "#,
            )],
            vec!["syntax.config.json"],
        ),
        (
            vec![r.write(
                "type.config.json",
                &format!(
                    r#"{{"apps": [{{"name": "bad-type", "script": {idle}, "max_restarts": "lots"}}]}}"#
                ),
            )],
            vec!["type.config.json", "bad-type", "max_restarts"],
        ),
        (
            vec![r.write(
                "missing.config.json",
                r#"{"apps": [{"name": "ghost-script", "script": "does-not-exist.js"}]}"#,
            )],
            vec!["missing.config.json", "ghost-script", "does-not-exist.js"],
        ),
        (
            vec![r.write(
                "interp.config.json",
                &format!(
                    r#"{{"apps": [{{"name": "weird", "script": {idle}, "interpreter": "no-such-interpreter-xyz"}}]}}"#
                ),
            )],
            vec!["interp.config.json", "weird", "no-such-interpreter-xyz"],
        ),
        (
            // A good app next to a bad one: neither starts.
            vec![r.write(
                "mixed.config.json",
                &format!(
                    r#"{{"apps": [{{"name": "fine", "script": {idle}}}, {{"name": "broken", "script": {idle}, "kill_timeout": true}}]}}"#
                ),
            )],
            vec!["mixed.config.json", "broken", "kill_timeout"],
        ),
        (
            vec![
                r.write(
                    "only.config.json",
                    &format!(r#"{{"apps": [{{"name": "real", "script": {idle}}}]}}"#),
                ),
                "--only".into(),
                "phantom".into(),
            ],
            vec!["phantom"],
        ),
        (
            vec![r.write(
                "throws.config.js",
                "throw new Error('config exploded');\n",
            )],
            vec!["throws.config.js", "config exploded"],
        ),
        (vec![r.path("nope.js").display().to_string()], vec!["nope.js"]),
        (
            vec![
                fixture("idle.js"),
                "--interpreter".into(),
                "no-such-interpreter-xyz".into(),
            ],
            vec!["no-such-interpreter-xyz"],
        ),
        (
            vec![r.path("absent.config.json").display().to_string()],
            vec!["absent.config.json"],
        ),
    ];
    for (args, needles) in cases {
        let mut argv = vec!["start"];
        argv.extend(args.iter().map(String::as_str));
        let out = r.fails(&argv);
        for needle in needles {
            assert!(
                out.stderr.contains(needle),
                "rpm2 {argv:?}: the error should name {needle:?}:\n{}",
                out.all()
            );
        }
        // Nothing started, the running app untouched.
        assert_eq!(names(&r), ["keeper"], "after rpm2 {argv:?}");
        let p = r.proc("keeper");
        assert_eq!(status_of(&p), "online");
        assert_eq!(pid_of(&p), keeper, "after rpm2 {argv:?}");
        assert_eq!(restart_time(&p), 0);
    }
}
