//! Loads pm2 ecosystem files (JavaScript, JSON5, YAML) and
//! `rpm2 start <script>` command lines into resolved, validated [`AppSpec`]s.
//!
//! The CLI does all of this before it talks to the daemon, so that a bad
//! option stops the whole command with a message naming the file, the app
//! and the option, and nothing is started (pm2 would start the good apps
//! and print a warning for the others).
//!
//! Modules: `load` reads files, `normalize` maps option names
//! (aliases, camelCase), `resolve` builds the spec, `env` composes the
//! environment, `units` parses durations, sizes, argument strings and date
//! formats, `paths` resolves files and programs, `cpus` counts the CPUs
//! that `instances: max` means.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rpm2_proto::AppSpec;
use serde_json::{Map, Value};

mod cpus;
mod dayjs;
mod env;
mod error;
mod load;
mod normalize;
mod paths;
mod pm2_dump;
mod pm2_vars;
mod resolve;
mod shell;
mod units;

pub use cpus::usable_cpus;
pub use dayjs::dayjs_to_strftime;
pub use error::ConfigError;
pub use pm2_dump::{from_pm2_dump, Pm2Dump};
pub use resolve::clashes::last_of_each_name;
pub use shell::{load_options, shell_env};

/// What the CLI (or the JS API) knows besides the config itself.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `--only a,b`: names of the apps to keep (commas inside entries are
    /// split too). Empty: all apps.
    pub only: Vec<String>,
    /// `--env production`: merge `env_production` over `env`.
    pub env_name: Option<String>,
    /// The CLI's environment at start: the base of every app's env (minus
    /// `filter_env`), and the `PATH`/`HOME` used to resolve programs. When
    /// empty, this process's own `PATH`/`HOME` are used for lookups.
    pub shell_env: BTreeMap<String, String>,
    /// The CLI's cwd: relative config paths and scripts resolve against it.
    pub cwd: PathBuf,
    /// CLI flags under pm2 option names, applied over each app (after
    /// `--only`). `env` is merged into the app's `env`; others replace.
    pub overrides: Map<String, Value>,
}

/// The resolved apps, in file order, and non-fatal remarks for the user.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    pub apps: Vec<AppSpec>,
    pub warnings: Vec<String>,
}

/// pm2's rule for "is this start target a config file": the name
/// *contains* one of these (so `ecosystem.json5` counts, `app.js` does not).
#[must_use]
pub fn is_config_file(target: &str) -> bool {
    [
        ".json",
        ".yml",
        ".yaml",
        ".config.js",
        ".config.cjs",
        ".config.mjs",
    ]
    .iter()
    .any(|pattern| target.contains(pattern))
}

/// pm2's rule for a start target that is not a config file: a file that
/// exists (relative to `cwd`), a path-like target, or a command with spaces
/// is a script; a bare word may also be a known app's name.
#[must_use]
pub fn looks_like_script(target: &str, cwd: &Path) -> bool {
    cwd.join(target).is_file()
        || target.contains('/')
        || target.contains(' ')
        || Path::new(target).extension().is_some()
}

/// Loads an ecosystem file. Relative `cwd`s and scripts in it resolve
/// against the file's directory.
///
/// # Errors
/// Any problem with the file or any of its (selected) apps; see [`ConfigError`].
pub fn load_file(path: &Path, opts: &LoadOptions) -> Result<Loaded, ConfigError> {
    let origin = path.display().to_string();
    let abs = paths::absolute(&opts.cwd, path);
    let value = load::read_config(&abs, &origin, opts)?;
    let mut warnings = Vec::new();
    let (apps, deploy) = load::split_top(value, &origin, &mut warnings)?;
    let base_dir = abs
        .parent()
        .map_or_else(|| opts.cwd.clone(), Path::to_path_buf);
    resolve::resolve_apps(apps, &base_dir, &origin, opts, deploy.as_ref(), warnings)
}

/// A config given as text (`rpm2 start -` reads it from stdin): JSON, or
/// JSON5 as pm2 evaluates it, in any of a file's shapes. Relative paths
/// resolve against `opts.cwd`; `origin` names it in messages.
///
/// # Errors
/// Empty or malformed text, or any problem with its apps; see [`ConfigError`].
pub fn from_text(text: &str, origin: &str, opts: &LoadOptions) -> Result<Loaded, ConfigError> {
    let parse = |message: String| ConfigError::Parse {
        file: origin.to_owned(),
        message,
    };
    if text.trim().is_empty() {
        return Err(parse("no config given (empty input)".to_owned()));
    }
    let value = load::json_or_js(text, &opts.cwd.join(origin), origin, opts)?;
    let mut warnings = Vec::new();
    let (apps, deploy) = load::split_top(value, origin, &mut warnings)?;
    resolve::resolve_apps(apps, &opts.cwd, origin, opts, deploy.as_ref(), warnings)
}

/// `rpm2 start <script> [flags] -- args`: one app from the command line.
/// `--only` does not apply; flags come through `opts.overrides`.
///
/// # Errors
/// Missing script or interpreter, invalid flag values; see [`ConfigError`].
pub fn from_script(script: &str, opts: &LoadOptions) -> Result<Loaded, ConfigError> {
    let mut app = Map::new();
    app.insert("script".to_owned(), Value::String(script.to_owned()));
    let opts = LoadOptions {
        only: Vec::new(),
        ..opts.clone()
    };
    resolve::resolve_apps(
        vec![Value::Object(app)],
        &opts.cwd,
        script,
        &opts,
        None,
        Vec::new(),
    )
}

/// App objects (pm2 option names, any spelling) → specs. Used by the two
/// functions above and by the JS API's `start({...})`. `base_dir` is where
/// relative paths resolve (itself resolved against `opts.cwd`); `source`
/// names the apps' origin in messages.
///
/// # Errors
/// See [`ConfigError`].
pub fn from_raw_apps(
    apps: Vec<Value>,
    base_dir: &Path,
    source: &str,
    opts: &LoadOptions,
) -> Result<Loaded, ConfigError> {
    let base_dir = paths::absolute(&opts.cwd, base_dir);
    resolve::resolve_apps(apps, &base_dir, source, opts, None, Vec::new())
}

#[cfg(test)]
mod tests;
