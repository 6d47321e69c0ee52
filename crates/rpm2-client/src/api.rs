//! Typed calls: one method per request, each returning what that request
//! answers (`Vec<ProcessInfo>`, `Saved`, `()`), so no caller matches a
//! `Response`.

use std::collections::BTreeMap;

use rpm2_proto::frame::MAX_FRAME_LEN;
use rpm2_proto::{
    ActionReply, AppSpec, EventProcess, ProcessInfo, Request, Response, ScaleCount, SignalName,
    SpecUpdate, Target,
};

use crate::{Client, ClientError};

/// Where `save` wrote the dump, and how many apps it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved {
    pub path: String,
    pub apps: usize,
}

/// `--update-env`: an environment merged over the apps' stored one.
pub type UpdateEnv = Option<BTreeMap<String, String>>;

impl Client {
    fn processes(&mut self, req: &Request) -> Result<Vec<ProcessInfo>, ClientError> {
        match self.call(req)? {
            Response::Processes { processes } => Ok(processes),
            other => Err(unexpected(req, &other)),
        }
    }

    fn done(&mut self, req: &Request) -> Result<(), ClientError> {
        match self.call(req)? {
            Response::Ok | Response::Pong => Ok(()),
            other => Err(unexpected(req, &other)),
        }
    }

    pub fn ping(&mut self) -> Result<(), ClientError> {
        self.done(&Request::Ping)
    }

    /// What the daemon has to tell: a predecessor that died (once),
    /// processes it left running.
    pub fn notices(&mut self) -> Result<Vec<String>, ClientError> {
        match self.call(&Request::Notices)? {
            Response::Notices { notices } => Ok(notices),
            other => Err(unexpected(&Request::Notices, &other)),
        }
    }

    /// Every worker, in pm2's `jlist` shape.
    pub fn list(&mut self) -> Result<Vec<ProcessInfo>, ClientError> {
        self.processes(&Request::List)
    }

    /// The workers matching `targets`; an unknown target is an error.
    pub fn describe(&mut self, targets: Vec<Target>) -> Result<Vec<ProcessInfo>, ClientError> {
        self.processes(&Request::Describe { targets })
    }

    /// Start apps; known ones restart with their new spec. Many apps go
    /// in several requests, each well under the frame limit.
    pub fn start(&mut self, apps: Vec<AppSpec>) -> Result<Vec<ProcessInfo>, ClientError> {
        self.start_with(apps, false)
    }

    /// `start <script> -f`: an app whose name is known is started again
    /// beside the running one (two apps of one name, as in pm2); answers
    /// with the new workers.
    pub fn start_beside(&mut self, apps: Vec<AppSpec>) -> Result<Vec<ProcessInfo>, ClientError> {
        self.start_with(apps, true)
    }

    fn start_with(
        &mut self,
        apps: Vec<AppSpec>,
        force: bool,
    ) -> Result<Vec<ProcessInfo>, ClientError> {
        let mut all = Vec::new();
        for apps in in_chunks(apps)? {
            all.extend(self.processes(&Request::Start {
                apps,
                only_new: false,
                force,
                stopped: Vec::new(),
            })?);
        }
        Ok(all)
    }

    /// Start a saved list (`resurrect --from`): apps already known are
    /// left alone, `stopped` ones are registered without starting.
    pub fn start_saved(
        &mut self,
        apps: Vec<AppSpec>,
        stopped: &[String],
    ) -> Result<Vec<ProcessInfo>, ClientError> {
        let mut all = Vec::new();
        for apps in in_chunks(apps)? {
            all.extend(self.processes(&Request::Start {
                apps,
                only_new: true,
                force: false,
                stopped: stopped.to_vec(),
            })?);
        }
        Ok(all)
    }

    /// pm2's `startOrReload`: known apps reload with their new spec.
    pub fn start_or_reload(&mut self, apps: Vec<AppSpec>) -> Result<Vec<ProcessInfo>, ClientError> {
        let mut all = Vec::new();
        for apps in in_chunks(apps)? {
            all.extend(self.processes(&Request::StartOrReload { apps })?);
        }
        Ok(all)
    }

    pub fn stop(&mut self, targets: Vec<Target>) -> Result<Vec<ProcessInfo>, ClientError> {
        self.processes(&Request::Stop { targets })
    }

    pub fn restart(
        &mut self,
        targets: Vec<Target>,
        update_env: UpdateEnv,
    ) -> Result<Vec<ProcessInfo>, ClientError> {
        self.restart_with(targets, update_env, SpecUpdate::default())
    }

    /// Restart with options merged into the apps first (`--node-args`,
    /// `--name`).
    pub fn restart_with(
        &mut self,
        targets: Vec<Target>,
        update_env: UpdateEnv,
        update: SpecUpdate,
    ) -> Result<Vec<ProcessInfo>, ClientError> {
        self.processes(&Request::Restart {
            targets,
            update_env,
            update,
        })
    }

    /// Rolling reload, `parallel` workers at a time (daemon default 1).
    pub fn reload(
        &mut self,
        targets: Vec<Target>,
        update_env: UpdateEnv,
        parallel: Option<u32>,
    ) -> Result<Vec<ProcessInfo>, ClientError> {
        self.reload_with(targets, update_env, parallel, SpecUpdate::default())
    }

    /// Reload with options merged into the apps first.
    pub fn reload_with(
        &mut self,
        targets: Vec<Target>,
        update_env: UpdateEnv,
        parallel: Option<u32>,
        update: SpecUpdate,
    ) -> Result<Vec<ProcessInfo>, ClientError> {
        self.processes(&Request::Reload {
            targets,
            update_env,
            update,
            parallel,
        })
    }

    /// The deleted workers, as they were before.
    pub fn delete(&mut self, targets: Vec<Target>) -> Result<Vec<ProcessInfo>, ClientError> {
        self.processes(&Request::Delete { targets })
    }

    /// pm2's `toggleWatch`: watching of the targets' apps on if it was
    /// off, off if it was on.
    pub fn toggle_watch(&mut self, targets: Vec<Target>) -> Result<Vec<ProcessInfo>, ClientError> {
        self.processes(&Request::ToggleWatch { targets })
    }

    /// The app's workers after scaling.
    pub fn scale(
        &mut self,
        name: String,
        count: ScaleCount,
    ) -> Result<Vec<ProcessInfo>, ClientError> {
        self.processes(&Request::Scale { name, count })
    }

    pub fn send_signal(
        &mut self,
        signal: SignalName,
        targets: Vec<Target>,
    ) -> Result<Vec<ProcessInfo>, ClientError> {
        self.processes(&Request::SendSignal { signal, targets })
    }

    /// A packet for the worker's `process.on('message')`.
    pub fn send_data(&mut self, pm_id: u32, packet: serde_json::Value) -> Result<(), ClientError> {
        self.done(&Request::SendData { pm_id, packet })
    }

    /// Zero the restart counters.
    pub fn reset(&mut self, targets: Vec<Target>) -> Result<Vec<ProcessInfo>, ClientError> {
        self.processes(&Request::Reset { targets })
    }

    /// Truncate the targets' log files (everything, daemon log included,
    /// when `targets` is empty).
    pub fn flush(&mut self, targets: Vec<Target>) -> Result<(), ClientError> {
        self.done(&Request::Flush { targets })
    }

    pub fn reload_logs(&mut self) -> Result<(), ClientError> {
        self.done(&Request::ReloadLogs)
    }

    /// Tell the daemon that its settings (`module_conf.json`) changed.
    pub fn reload_settings(&mut self) -> Result<(), ClientError> {
        self.done(&Request::ReloadSettings)
    }

    pub fn save(&mut self, force: bool) -> Result<Saved, ClientError> {
        let req = Request::Save { force };
        match self.call(&req)? {
            Response::Saved { path, apps } => Ok(Saved { path, apps }),
            other => Err(unexpected(&req, &other)),
        }
    }

    /// Every worker after starting what the dump holds.
    pub fn resurrect(&mut self) -> Result<Vec<ProcessInfo>, ClientError> {
        self.processes(&Request::Resurrect)
    }

    /// Stop every app, then the daemon; answers with the stopped workers
    /// just before the daemon exits.
    pub fn kill(&mut self) -> Result<Vec<ProcessInfo>, ClientError> {
        self.processes(&Request::Kill)
    }

    /// pm2's `update`: the daemon hands itself over to the rpm2 binary now
    /// on disk, in place (same pid, every worker kept). Answered just
    /// before the exec; [`crate::update_in_place`] also waits for the new image.
    pub fn update(&mut self) -> Result<(), ClientError> {
        self.done(&Request::Update)
    }

    /// pm2's `trigger`: run an `@pm2/io` action in the matching workers;
    /// answers once each replied (or exited, or after the daemon's wait).
    pub fn trigger(
        &mut self,
        target: Target,
        action: String,
        params: Option<serde_json::Value>,
    ) -> Result<Triggered, ClientError> {
        let req = Request::Trigger {
            target,
            action,
            params,
        };
        match self.call(&req)? {
            Response::Triggered { sent, replies } => Ok(Triggered { sent, replies }),
            other => Err(unexpected(&req, &other)),
        }
    }
}

/// What a `trigger` did: the workers asked, and the replies that came.
#[derive(Debug, Clone, PartialEq)]
pub struct Triggered {
    pub sent: Vec<EventProcess>,
    pub replies: Vec<ActionReply>,
}

/// Specs per request: a quarter of the frame limit, so that the answer
/// (the started workers, environments included) fits too.
const CHUNK_BYTES: usize = MAX_FRAME_LEN / 4;

/// `apps` split into requests of at most [`CHUNK_BYTES`] of JSON each; an
/// app that alone exceeds the frame limit is refused, named.
fn in_chunks(apps: Vec<AppSpec>) -> Result<Vec<Vec<AppSpec>>, ClientError> {
    let mut chunks: Vec<Vec<AppSpec>> = Vec::new();
    let mut size = 0;
    for app in apps {
        let len = serde_json::to_vec(&app).map_or(0, |v| v.len());
        if len >= MAX_FRAME_LEN - 1024 {
            return Err(ClientError::TooLarge {
                op: "start",
                detail: format!(
                    "app \"{}\" alone is {len} bytes of JSON, over the {MAX_FRAME_LEN}-byte \
                     frame limit (a huge env?)",
                    app.name
                ),
            });
        }
        match chunks.last_mut() {
            Some(chunk) if size + len <= CHUNK_BYTES => chunk.push(app),
            _ => {
                size = 0;
                chunks.push(vec![app]);
            }
        }
        size += len;
    }
    Ok(chunks)
}

fn unexpected(req: &Request, resp: &Response) -> ClientError {
    ClientError::Unexpected(format!("{resp:?} to {}", req.op()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_starts_go_in_chunks_under_the_limit() {
        let mut app = AppSpec::with_defaults("a".into(), "a.js".into(), "/".into());
        app.env.insert("BIG".into(), "x".repeat(100_000));
        let apps = vec![app; 500];
        let chunks = in_chunks(apps).unwrap();
        assert!(chunks.len() > 1);
        assert_eq!(chunks.iter().map(Vec::len).sum::<usize>(), 500);
        for chunk in &chunks {
            assert!(serde_json::to_vec(chunk).unwrap().len() <= CHUNK_BYTES + 200_000);
        }
        assert!(in_chunks(Vec::new()).unwrap().is_empty());
        // One app over the limit alone is refused, named.
        let mut huge = AppSpec::with_defaults("huge".into(), "a.js".into(), "/".into());
        huge.env.insert("BIG".into(), "x".repeat(MAX_FRAME_LEN));
        let err = in_chunks(vec![huge]).unwrap_err();
        assert_eq!(err.code(), rpm2_proto::ErrorCode::TooLarge);
        assert!(
            err.to_string().contains("\"huge\"") && err.to_string().contains("frame limit"),
            "{err}"
        );
    }
}
