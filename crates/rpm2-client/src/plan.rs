//! Start planning, written once for `rpm2 start` and the addon's `start`:
//! each target is a config file, a script, app objects (JS only) or a word
//! naming known apps (pm2 restarts those). Everything is loaded and
//! validated before the daemon is asked for anything, so a bad config
//! starts nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use rpm2_config::{LoadOptions, Loaded};
use rpm2_proto::{AppSpec, ErrorCode, ProcessInfo, SpecUpdate, Target, WorkerStatus};
use serde_json::Value;

use crate::api::UpdateEnv;
use crate::{Client, ClientError};

/// One thing to start, as the caller gave it.
#[derive(Debug, Clone)]
pub enum StartTarget {
    /// A config path, a script, or a name/id/namespace of known apps.
    Text(String),
    /// App objects (the JS API); `origin` names them in messages.
    Apps {
        raw: Vec<Value>,
        origin: &'static str,
    },
}

/// What the targets turned into.
#[derive(Debug, Clone)]
pub struct StartPlan {
    /// Apps to start (known ones restart with this spec).
    pub apps: Vec<AppSpec>,
    /// Non-fatal remarks from loading.
    pub warnings: Vec<String>,
    /// Words that are neither config nor script, as typed.
    restart: Vec<String>,
    /// Where a word would have been a script (for "Script not found").
    cwd: PathBuf,
    /// Apps started from a script target (not a config): pm2 refuses to
    /// start one again while it runs, unless `force`.
    scripts: BTreeSet<String>,
    /// Words that are also programs in `PATH` (`start ls`): started when
    /// they name no known app, as pm2 does.
    programs: BTreeMap<String, Vec<AppSpec>>,
    /// `-f`: start a running script again, beside itself.
    pub force: bool,
    /// Options merged into the known apps it restarts (`--name`,
    /// `--node-args`).
    pub update: SpecUpdate,
}

/// What `run` did.
#[derive(Debug, Clone, Default)]
pub struct Started {
    pub started: Vec<ProcessInfo>,
    pub restarted: Vec<ProcessInfo>,
}

impl StartPlan {
    /// Load every target.
    pub fn new(
        targets: impl IntoIterator<Item = StartTarget>,
        opts: &LoadOptions,
    ) -> Result<Self, ClientError> {
        let mut plan = Self::empty(opts);
        for target in targets {
            let loaded = match target {
                StartTarget::Text(t) if rpm2_config::is_config_file(&t) => {
                    rpm2_config::load_file(Path::new(&t), opts)?
                }
                StartTarget::Text(t) if rpm2_config::looks_like_script(&t, &opts.cwd) => {
                    let loaded = rpm2_config::from_script(&t, opts)?;
                    plan.scripts
                        .extend(loaded.apps.iter().map(|a| a.name.clone()));
                    loaded
                }
                StartTarget::Text(t) => {
                    // Known apps come first (checked in `run`); failing
                    // those, a program of that name in PATH.
                    if let Ok(loaded) = rpm2_config::from_script(&t, opts) {
                        plan.warnings.extend(loaded.warnings);
                        plan.programs.insert(t.clone(), loaded.apps);
                    }
                    plan.restart.push(t);
                    continue;
                }
                StartTarget::Apps { raw, origin } => {
                    rpm2_config::from_raw_apps(raw, &opts.cwd, origin, opts)?
                }
            };
            plan.apps.extend(loaded.apps);
            plan.warnings.extend(loaded.warnings);
        }
        // Entries sharing a name would replace each other one by one (the
        // loader warned, naming them): start the last of each once.
        plan.apps = rpm2_config::last_of_each_name(plan.apps);
        Ok(plan)
    }

    /// Apps loaded already (a config read from stdin), as a plan.
    #[must_use]
    pub fn from_loaded(loaded: Loaded, opts: &LoadOptions) -> Self {
        Self {
            apps: rpm2_config::last_of_each_name(loaded.apps),
            warnings: loaded.warnings,
            ..Self::empty(opts)
        }
    }

    /// A plan with nothing in it yet, relative to `opts.cwd`.
    fn empty(opts: &LoadOptions) -> Self {
        Self {
            apps: Vec::new(),
            warnings: Vec::new(),
            restart: Vec::new(),
            cwd: opts.cwd.clone(),
            scripts: BTreeSet::new(),
            programs: BTreeMap::new(),
            force: false,
            update: SpecUpdate::default(),
        }
    }

    /// The apps alone, for callers that start nothing by name (a config
    /// given to restart/reload, the addon's `load`).
    pub fn into_loaded(self) -> Result<Loaded, ClientError> {
        if let Some(word) = self.restart.first() {
            return Err(self.script_not_found(word));
        }
        Ok(Loaded {
            apps: self.apps,
            warnings: self.warnings,
        })
    }

    fn script_not_found(&self, word: &str) -> ClientError {
        let path = self.cwd.join(word);
        let message = if path.is_dir() {
            format!(
                "Script is a directory, not a file to run: {}",
                path.display()
            )
        } else {
            format!("Script not found: {}", path.display())
        };
        ClientError::rejected(ErrorCode::ScriptNotFound, message)
    }

    /// The words as targets, each naming at least one of `known`; a word
    /// naming none that is a program in PATH moves to the apps to start.
    fn restart_targets(&mut self, known: &[ProcessInfo]) -> Result<Vec<Target>, ClientError> {
        let mut targets = Vec::new();
        for word in std::mem::take(&mut self.restart) {
            let target: Target = word.parse().map_err(|_| self.script_not_found(&word))?;
            let found = known
                .iter()
                .any(|p| target.matches(p.pm_id, &p.name, &p.pm2_env.namespace));
            if found {
                targets.push(target);
            } else if let Some(apps) = self.programs.remove(&word) {
                self.scripts.extend(apps.iter().map(|a| a.name.clone()));
                self.apps.extend(apps);
            } else {
                return Err(self.script_not_found(&word));
            }
        }
        Ok(targets)
    }

    /// Check the words against the known apps, then (after `on_starting`
    /// saw the apps) start the apps and restart the named ones.
    pub fn run(
        mut self,
        client: &mut Client,
        update_env: UpdateEnv,
        on_starting: impl FnOnce(&[AppSpec]),
    ) -> Result<Started, ClientError> {
        let known = if self.restart.is_empty() && self.scripts.is_empty() {
            Vec::new()
        } else {
            client.list()?
        };
        let mut restart = if self.restart.is_empty() {
            Vec::new()
        } else {
            self.restart_targets(&known)?
        };
        let (mut apps, mut beside) = (Vec::new(), Vec::new());
        for app in self.apps {
            if !self.scripts.contains(&app.name) {
                apps.push(app);
                continue;
            }
            match script_state(&app, &known) {
                ScriptState::New => apps.push(app),
                ScriptState::Down => restart.push(Target::Name(app.name)),
                ScriptState::Running if self.force => beside.push(app),
                ScriptState::Running => {
                    return Err(ClientError::rejected(
                        ErrorCode::BadRequest,
                        format!(
                            "Script already launched, add -f option to force re-execution \
                             ({} runs {})",
                            app.name,
                            app.script.display()
                        ),
                    ))
                }
            }
        }
        let mut done = Started::default();
        if !apps.is_empty() || !beside.is_empty() {
            let all: Vec<AppSpec> = apps.iter().chain(&beside).cloned().collect();
            on_starting(&all);
        }
        if !apps.is_empty() {
            done.started = client.start(apps)?;
        }
        if !beside.is_empty() {
            done.started.extend(client.start_beside(beside)?);
        }
        if !restart.is_empty() {
            done.restarted = client.restart_with(restart, update_env, self.update)?;
        }
        Ok(done)
    }

    /// `restart`/`reload` of a config file (pm2's startOrRestart and
    /// startOrReload): unknown apps start, known ones restart (or reload)
    /// with the file's spec.
    pub fn start_or(
        self,
        client: &mut Client,
        reload: bool,
    ) -> Result<(Vec<ProcessInfo>, Vec<String>), ClientError> {
        let loaded = self.into_loaded()?;
        let procs = if reload {
            client.start_or_reload(loaded.apps)?
        } else {
            client.start(loaded.apps)?
        };
        Ok((procs, loaded.warnings))
    }
}

/// A script's app against the running processes (pm2 looks for one of
/// the same name and file).
enum ScriptState {
    New,
    /// Stopped or errored: `start` restarts it.
    Down,
    Running,
}

fn script_state(app: &AppSpec, known: &[ProcessInfo]) -> ScriptState {
    let same = known
        .iter()
        .rfind(|p| p.name == app.name && Path::new(&p.pm2_env.pm_exec_path) == app.script);
    match same.map(|p| p.pm2_env.status) {
        None => ScriptState::New,
        Some(WorkerStatus::Stopped | WorkerStatus::Stopping | WorkerStatus::Errored) => {
            ScriptState::Down
        }
        Some(_) => ScriptState::Running,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(cwd: &Path) -> LoadOptions {
        rpm2_config::load_options(Vec::new(), None, serde_json::Map::new(), Some(cwd.into()))
            .unwrap()
    }

    #[test]
    fn words_are_restart_targets_and_missing_scripts() {
        let dir = tempfile::tempdir().unwrap();
        let mut plan =
            StartPlan::new([StartTarget::Text("web".into())], &opts(dir.path())).unwrap();
        assert!(plan.apps.is_empty());
        let err = plan.clone().into_loaded().unwrap_err();
        assert_eq!(err.code(), ErrorCode::ScriptNotFound);
        assert!(err.to_string().contains("web"), "{err}");
        let err = plan.restart_targets(&[]).unwrap_err();
        assert_eq!(err.code(), ErrorCode::ScriptNotFound);
    }

    #[test]
    fn a_word_naming_no_app_may_be_a_program_in_path() {
        let dir = tempfile::tempdir().unwrap();
        let mut plan = StartPlan::new([StartTarget::Text("sh".into())], &opts(dir.path())).unwrap();
        // Known apps would come first; with none, `sh` is the program.
        assert!(plan.restart_targets(&[]).unwrap().is_empty());
        assert_eq!(plan.apps.len(), 1);
        assert_eq!(plan.apps[0].name, "sh");
        assert!(plan.apps[0].script.is_absolute());
        assert!(plan.scripts.contains("sh"));
    }

    #[test]
    fn a_bad_config_is_a_config_error() {
        let dir = tempfile::tempdir().unwrap();
        let target = StartTarget::Text("missing.config.json".into());
        let err = StartPlan::new([target], &opts(dir.path())).unwrap_err();
        assert_eq!(err.code(), ErrorCode::ConfigNotFound);
    }
}
