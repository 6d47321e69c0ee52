//! Reading a config file into JSON: JavaScript through `node`, JSON as
//! JSON5, YAML; then finding the app list in it.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use crate::error::{show, ConfigError};
use crate::paths::{path_var, which};
use crate::LoadOptions;

/// Evaluates the config inside node with `import()`; see the file itself.
const LOADER: &str = include_str!("loader.mjs");
const MARKER: &str = "\n<<RPM2_CONFIG_JSON>>\n";
/// A config that never finishes loading (a server started by mistake, a
/// pending top-level await) must not hang the CLI forever.
const NODE_TIMEOUT: Duration = Duration::from_secs(30);

/// Reads `abs` (an absolute path); `origin` is how the user named it.
pub(crate) fn read_config(
    abs: &Path,
    origin: &str,
    opts: &LoadOptions,
) -> Result<Value, ConfigError> {
    let meta = std::fs::metadata(abs).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => ConfigError::NotFound {
            file: origin.to_owned(),
        },
        _ => ConfigError::Read {
            file: origin.to_owned(),
            message: e.to_string(),
        },
    })?;
    if !meta.is_file() {
        return Err(ConfigError::Read {
            file: origin.to_owned(),
            message: "not a file".to_owned(),
        });
    }
    let name = abs
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let parse = |message: String| ConfigError::Parse {
        file: origin.to_owned(),
        message,
    };
    if [".js", ".cjs", ".mjs"]
        .iter()
        .any(|ext| name.ends_with(ext))
    {
        return eval_js(abs, origin, opts);
    }
    let text = std::fs::read_to_string(abs).map_err(|e| ConfigError::Read {
        file: origin.to_owned(),
        message: e.to_string(),
    })?;
    if name.contains(".yml") || name.contains(".yaml") {
        serde_yaml_ng::from_str::<Value>(&text).map_err(|e| parse(format!("invalid YAML: {e}")))
    } else {
        json_or_js(&text, abs, origin, opts)
    }
}

/// pm2 evaluates `.json` (and a config piped to `start -`) as a JavaScript
/// expression, so comments, trailing commas and even code are found in the
/// wild. JSON5 takes the first two without `node`; text it refuses is
/// evaluated by `node` as pm2 would, and when that fails too the JSON5
/// error is reported (it says where the text went wrong).
/// A parser's message with each line cut to 240 characters: JSON5 quotes
/// the offending line, which may be a whole minified file.
fn clipped(message: &str) -> String {
    const MAX_CHARS: usize = 240;
    let lines: Vec<String> = message
        .lines()
        .map(|l| match l.char_indices().nth(MAX_CHARS) {
            Some((at, _)) => format!("{}…", &l[..at]),
            None => l.to_owned(),
        })
        .collect();
    lines.join("\n")
}

pub(crate) fn json_or_js(
    text: &str,
    path: &Path,
    origin: &str,
    opts: &LoadOptions,
) -> Result<Value, ConfigError> {
    json5::from_str::<Value>(text).or_else(|e| {
        let json_error = ConfigError::Parse {
            file: origin.to_owned(),
            message: format!("invalid JSON: {}", clipped(&e.to_string())),
        };
        match run_loader(path, Some(text), origin, opts) {
            Ok(value) => Ok(value),
            Err(ConfigError::NodeNotFound { .. }) => Err(json_error),
            Err(ConfigError::Parse { message, .. }) => Err(ConfigError::Parse {
                file: origin.to_owned(),
                message: format!(
                    "invalid JSON: {}\nnor a JavaScript value: {}",
                    clipped(&e.to_string()),
                    clipped(&message)
                ),
            }),
            Err(other) => Err(other),
        }
    })
}

fn eval_js(abs: &Path, origin: &str, opts: &LoadOptions) -> Result<Value, ConfigError> {
    run_loader(abs, None, origin, opts)
}

/// Runs the loader on `abs`, or with `expr` on the expression given (fed
/// on stdin; `abs` then only names it in stack traces).
fn run_loader(
    abs: &Path,
    expr: Option<&str>,
    origin: &str,
    opts: &LoadOptions,
) -> Result<Value, ConfigError> {
    let node = which("node", path_var(&opts.shell_env).as_ref())
        .or_else(|| which("nodejs", path_var(&opts.shell_env).as_ref()))
        .ok_or_else(|| ConfigError::NodeNotFound {
            file: origin.to_owned(),
        })?;
    let parse = |message: String| ConfigError::Parse {
        file: origin.to_owned(),
        message,
    };

    let mut command = Command::new(node);
    command
        .args(["--input-type=module", "-e", LOADER])
        .stdin(if expr.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // The config sees the CLI's environment and cwd, as under pm2's require().
    if !opts.shell_env.is_empty() {
        command.env_clear().envs(&opts.shell_env);
    }
    command.env("RPM2_CONFIG_FILE", abs);
    if expr.is_some() {
        command.env("RPM2_CONFIG_EXPR", "1");
    }
    if opts.cwd.is_dir() {
        command.current_dir(&opts.cwd);
    }
    let mut child = command
        .spawn()
        .map_err(|e| parse(format!("cannot run node to evaluate the config: {e}")))?;
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    if let (Some(text), Some(mut stdin)) = (expr, child.stdin.take()) {
        // On a thread: a child that does not read must not block us; the
        // pipe closes when the thread ends, which ends node's read.
        let text = text.to_owned();
        std::thread::spawn(move || {
            let _ = std::io::Write::write_all(&mut stdin, text.as_bytes());
        });
    }
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() < NODE_TIMEOUT => {
                std::thread::sleep(Duration::from_millis(5))
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(parse(format!(
                    "evaluating the config did not finish within {}s",
                    NODE_TIMEOUT.as_secs()
                )));
            }
            Err(e) => return Err(parse(format!("waiting for node: {e}"))),
        }
    };
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    if !status.success() {
        return Err(parse(format!(
            "cannot evaluate the config:\n{}",
            node_message(&stderr)
        )));
    }
    let Some(at) = stdout.rfind(MARKER) else {
        return Err(parse("evaluating the config produced no value".to_owned()));
    };
    serde_json::from_str(stdout[at + MARKER.len()..].trim())
        .map_err(|e| parse(format!("config value is not serialisable: {e}")))
}

fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// The useful head of node's error output: location, source line, caret
/// and message, without the stack and the `Node.js vX` trailer.
fn node_message(stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .take_while(|l| !l.trim_start().starts_with("at "))
        .filter(|l| !l.trim().is_empty() && !l.starts_with("Node.js v"))
        .take(8)
        .map(str::trim_end)
        .collect();
    if lines.is_empty() {
        "node exited with an error and no message".to_owned()
    } else {
        lines
            .iter()
            .map(|l| format!("  {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// A file's app objects and its `deploy` section.
pub(crate) type FileApps = (Vec<Value>, Option<Map<String, Value>>);

/// The file's apps (`apps`, legacy `pm2`, or the file itself) and its
/// `deploy` section.
pub(crate) fn split_top(
    value: Value,
    origin: &str,
    warnings: &mut Vec<String>,
) -> Result<FileApps, ConfigError> {
    let parse = |message: String| ConfigError::Parse {
        file: origin.to_owned(),
        message,
    };
    match value {
        Value::Array(apps) => Ok((apps, None)),
        Value::Object(mut map) => {
            let deploy = match map.remove("deploy") {
                Some(Value::Object(d)) => Some(d),
                _ => None,
            };
            if map.remove("static").is_some() {
                warnings.push("\"static\" (pm2 serve apps) is not supported (ignored)".to_owned());
            }
            match map.remove("apps").or_else(|| map.remove("pm2")) {
                Some(Value::Array(apps)) => Ok((apps, deploy)),
                Some(Value::Object(app)) => Ok((vec![Value::Object(app)], deploy)),
                Some(other) => Err(parse(format!(
                    "\"apps\" must be an array or an object, got {}",
                    show(&other)
                ))),
                None if map.is_empty() => Err(parse("no apps in this config".to_owned())),
                None => Ok((vec![Value::Object(map)], deploy)),
            }
        }
        other => Err(parse(format!(
            "expected an object with \"apps\", or an array of apps, got {}",
            show(&other)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_message_keeps_the_head() {
        let stderr = "file:///x/a.config.js:2\nthrow new Error('boom')\n^\n\nError: boom\n    at file:///x\n    at y\n\nNode.js v20.0.0\n";
        assert_eq!(
            node_message(stderr),
            "  file:///x/a.config.js:2\n  throw new Error('boom')\n  ^\n  Error: boom"
        );
    }
}
