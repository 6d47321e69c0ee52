//! Requests as sequences of supervisor calls: what `start`, `restart`,
//! `reload`, `delete`, `scale`, `save`, … mean, step by step.

use std::collections::BTreeMap;

use rpm2_proto::{AppSpec, ErrorCode, ProcessInfo, Request, Response, RpcError, Target};

use super::{Call, SupervisorHandle, WatchChange};
use crate::paths::Home;

/// Answer one request (not `Hello`/`Subscribe`/`Kill`, which the RPC server
/// handles itself).
pub async fn handle(sup: &SupervisorHandle, home: &Home, req: Request) -> Response {
    match run(sup, home, req).await {
        Ok(resp) => resp,
        Err(error) => Response::Error { error },
    }
}

async fn run(sup: &SupervisorHandle, home: &Home, req: Request) -> Result<Response, RpcError> {
    let req = super::module_env::merge(home, req);
    match req {
        Request::Ping => Ok(Response::Pong),
        Request::Start {
            apps,
            only_new,
            force,
            stopped,
        } => {
            let existing = if force {
                Existing::Beside
            } else {
                Existing::Restart
            };
            start(sup, apps, only_new, &stopped, existing).await
        }
        Request::StartOrReload { apps } => start(sup, apps, false, &[], Existing::Reload).await,
        Request::Stop { targets } => {
            let ids = resolve(sup, targets).await?;
            // As pm2: what is stopped is no longer watched.
            sup.call(|reply| Call::Watch {
                ids: ids.clone(),
                change: WatchChange::Off,
                reply,
            })
            .await?;
            each_concurrently(sup, &ids, |pm_id, reply| Call::Stop { pm_id, reply }).await?;
            processes(sup, ids).await
        }
        Request::Restart {
            targets,
            update_env,
            update,
        } => {
            let ids = resolve(sup, targets).await?;
            update_specs(sup, &ids, update).await?;
            restart_each(sup, &ids, update_env).await?;
            processes(sup, ids).await
        }
        Request::Reload {
            targets,
            update_env,
            update,
            parallel,
        } => {
            let ids = resolve(sup, targets).await?;
            update_specs(sup, &ids, update).await?;
            reload(sup, &ids, update_env, parallel.unwrap_or(1).max(1) as usize).await?;
            processes(sup, ids).await
        }
        Request::Delete { targets } => {
            let ids = resolve(sup, targets).await?;
            let infos = sup
                .call(|reply| Call::Info {
                    ids: Some(ids.clone()),
                    reply,
                })
                .await?;
            delete(sup, &ids).await?;
            Ok(Response::Processes { processes: infos })
        }
        Request::ToggleWatch { targets } => {
            let ids = resolve(sup, targets).await?;
            sup.call(|reply| Call::Watch {
                ids: ids.clone(),
                change: WatchChange::Toggle,
                reply,
            })
            .await?;
            processes(sup, ids).await
        }
        Request::Scale { name, count } => {
            let plan = sup
                .call(|reply| Call::Scale {
                    name: name.clone(),
                    count,
                    reply,
                })
                .await?;
            each_concurrently(sup, &plan.add, |pm_id, reply| Call::Start {
                pm_id,
                until_ready: true,
                reply,
            })
            .await?;
            delete(sup, &plan.remove).await?;
            let ids = sup
                .call(|reply| Call::Resolve {
                    targets: vec![Target::Name(name)],
                    reply,
                })
                .await?;
            processes(sup, ids).await
        }
        Request::List => processes_all(sup).await,
        Request::Describe { targets } => {
            let ids = resolve(sup, targets).await?;
            processes(sup, ids).await
        }
        Request::SendSignal { signal, targets } => {
            let ids = resolve(sup, targets).await?;
            for pm_id in &ids {
                sup.call(|reply| Call::Signal {
                    pm_id: *pm_id,
                    signal,
                    reply,
                })
                .await?;
            }
            processes(sup, ids).await
        }
        Request::SendData { pm_id, packet } => {
            sup.call(|reply| Call::SendData {
                pm_id,
                packet,
                reply,
            })
            .await?;
            Ok(Response::Ok)
        }
        Request::Reset { targets } => {
            let ids = resolve(sup, targets).await?;
            each_concurrently(sup, &ids, |pm_id, reply| Call::Reset { pm_id, reply }).await?;
            processes(sup, ids).await
        }
        Request::Flush { targets } => {
            let ids = if targets.is_empty() {
                None
            } else {
                Some(resolve(sup, targets).await?)
            };
            let all = ids.is_none();
            let paths = sup.call(|reply| Call::LogPaths { ids, reply }).await?;
            for p in paths {
                sup.logs().truncate(&p).await.map_err(io_error)?;
            }
            if all {
                truncate_file(&home.daemon_log())?;
            }
            Ok(Response::Ok)
        }
        Request::ReloadLogs => {
            sup.logs().reopen_all().await.map_err(io_error)?;
            crate::rotation::reopen_daemon_log(&home.daemon_log()).map_err(io_error)?;
            Ok(Response::Ok)
        }
        Request::ReloadSettings => {
            crate::rotation::apply(home, sup.logs());
            crate::metrics_http::apply(home, sup).await;
            Ok(Response::Ok)
        }
        Request::Save { force } => save(sup, home, force).await,
        Request::Resurrect => resurrect(sup, home).await,
        Request::Trigger {
            target,
            action,
            params,
        } => {
            if action.is_empty() {
                return Err(RpcError::new(ErrorCode::BadRequest, "no action name given"));
            }
            let (sent, replies) = sup
                .call(|reply| Call::Trigger {
                    target,
                    action,
                    params,
                    reply,
                })
                .await?;
            Ok(Response::Triggered { sent, replies })
        }
        Request::Notices => Ok(Response::Notices {
            notices: sup.notices().take(),
        }),
        Request::Hello { .. } | Request::Subscribe | Request::Kill | Request::Update => {
            Err(RpcError::new(
                ErrorCode::BadRequest,
                "hello, subscribe, kill and update are handled by the connection",
            ))
        }
    }
}

async fn resolve(sup: &SupervisorHandle, targets: Vec<Target>) -> Result<Vec<u32>, RpcError> {
    if targets.is_empty() {
        return Err(RpcError::new(ErrorCode::BadRequest, "no target given"));
    }
    sup.call(|reply| Call::Resolve { targets, reply }).await
}

/// Options given with restart/reload, merged into the apps of `ids`.
async fn update_specs(
    sup: &SupervisorHandle,
    ids: &[u32],
    update: rpm2_proto::SpecUpdate,
) -> Result<(), RpcError> {
    if update.is_empty() {
        return Ok(());
    }
    if update.name.as_deref().is_some_and(|n| n.trim().is_empty()) {
        return Err(RpcError::new(ErrorCode::BadRequest, "--name: empty name"));
    }
    let ids = ids.to_vec();
    sup.call(|reply| Call::Update { ids, update, reply }).await
}

async fn processes(sup: &SupervisorHandle, ids: Vec<u32>) -> Result<Response, RpcError> {
    let processes = sup
        .call(|reply| Call::Info {
            ids: Some(ids),
            reply,
        })
        .await?;
    Ok(Response::Processes { processes })
}

async fn processes_all(sup: &SupervisorHandle) -> Result<Response, RpcError> {
    let processes = sup.call(|reply| Call::Info { ids: None, reply }).await?;
    Ok(Response::Processes { processes })
}

/// What `start` does to apps that are already known.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Existing {
    Restart,
    Reload,
    /// `start -f`: a known name gets a second app; the answer is the new
    /// workers alone.
    Beside,
}

/// Start apps: new ones are started, known ones restarted (or reloaded) with
/// their new spec. `stopped_names` stay registered but stopped (resurrect).
/// An instance count the daemon refuses: a typo such as `instances: 1e9`
/// would otherwise fill its memory with workers and take every app down.
pub(crate) fn too_many_workers(name: &str, count: i64) -> RpcError {
    RpcError::new(
        ErrorCode::BadRequest,
        format!(
            "app {name}: {count} workers is more than rpm2 runs for one app ({})",
            super::MAX_WORKERS_PER_APP
        ),
    )
}

async fn start(
    sup: &SupervisorHandle,
    apps: Vec<AppSpec>,
    only_new: bool,
    stopped_names: &[String],
    existing: Existing,
) -> Result<Response, RpcError> {
    if apps.is_empty() {
        return Err(RpcError::new(ErrorCode::BadRequest, "no app to start"));
    }
    // Refused before anything changes: a user that does not exist, or a
    // daemon that may not switch users.
    for app in &apps {
        if app.instances > super::MAX_WORKERS_PER_APP {
            return Err(too_many_workers(&app.name, i64::from(app.instances)));
        }
        crate::worker::identity::resolve(app.uid.as_deref(), app.gid.as_deref())
            .map_err(|e| RpcError::new(ErrorCode::BadRequest, format!("app {}: {e}", app.name)))?;
    }
    let names: Vec<Target> = apps.iter().map(|a| Target::Name(a.name.clone())).collect();
    let reg = sup
        .call(|reply| Call::Register {
            apps,
            only_new,
            force: existing == Existing::Beside,
            stopped: stopped_names.to_vec(),
            reply,
        })
        .await?;
    let to_start: Vec<u32> = reg
        .new_ids
        .iter()
        .copied()
        .filter(|id| !reg.stay_stopped.contains(id))
        .collect();
    each_concurrently(sup, &to_start, |pm_id, reply| Call::Start {
        pm_id,
        until_ready: false,
        reply,
    })
    .await?;
    match existing {
        Existing::Restart => restart_each(sup, &reg.existing_ids, None).await?,
        Existing::Reload => reload(sup, &reg.existing_ids, None, 1).await?,
        Existing::Beside => {
            restart_each(sup, &reg.existing_ids, None).await?;
            delete(sup, &reg.extra_ids).await?;
            return processes(sup, reg.new_ids).await;
        }
    }
    delete(sup, &reg.extra_ids).await?;
    let ids = sup
        .call(|reply| Call::Resolve {
            targets: names,
            reply,
        })
        .await
        .unwrap_or_default();
    processes(sup, ids).await
}

async fn restart_each(
    sup: &SupervisorHandle,
    ids: &[u32],
    update_env: Option<BTreeMap<String, String>>,
) -> Result<(), RpcError> {
    // One at a time, so a cluster app always has workers serving.
    for pm_id in ids {
        let env = update_env.clone();
        sup.call(|reply| Call::Restart {
            pm_id: *pm_id,
            update_env: env,
            reply,
        })
        .await?;
    }
    Ok(())
}

/// Rolling reload, `parallel` workers at a time. The first failure stops
/// the rollout (the failed worker's old process keeps serving).
async fn reload(
    sup: &SupervisorHandle,
    ids: &[u32],
    update_env: Option<BTreeMap<String, String>>,
    parallel: usize,
) -> Result<(), RpcError> {
    for chunk in ids.chunks(parallel) {
        each_concurrently(sup, chunk, |pm_id, reply| Call::Reload {
            pm_id,
            update_env: update_env.clone(),
            reply,
        })
        .await?;
    }
    Ok(())
}

async fn delete(sup: &SupervisorHandle, ids: &[u32]) -> Result<(), RpcError> {
    each_concurrently(sup, ids, |pm_id, reply| Call::Stop { pm_id, reply }).await?;
    for pm_id in ids {
        sup.call(|reply| Call::Remove {
            pm_id: *pm_id,
            reply,
        })
        .await?;
    }
    Ok(())
}

/// Make one call per id, all at once, and wait for every answer.
async fn each_concurrently(
    sup: &SupervisorHandle,
    ids: &[u32],
    make: impl Fn(u32, super::Reply<()>) -> Call,
) -> Result<(), RpcError> {
    let mut rxs = Vec::new();
    for &pm_id in ids {
        rxs.push(sup.send(|reply| make(pm_id, reply))?);
    }
    let mut first_err = None;
    for rx in rxs {
        match rx.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                first_err.get_or_insert(e);
            }
            Err(_) => {
                first_err.get_or_insert_with(|| sup.unanswered());
            }
        }
    }
    first_err.map_or(Ok(()), Err)
}

/// One entry of the dump file.
#[derive(serde::Serialize, serde::Deserialize)]
struct DumpEntry {
    #[serde(flatten)]
    spec: AppSpec,
    /// pm2 keeps stopped apps stopped on resurrect.
    status: String,
}

async fn save(sup: &SupervisorHandle, home: &Home, force: bool) -> Result<Response, RpcError> {
    let specs = sup.call(|reply| Call::Specs { reply }).await?;
    if specs.is_empty() && !force {
        return Err(RpcError::new(
            ErrorCode::NothingToDo,
            "rpm2 is not managing any process, skipping save (use --force to save an empty list)",
        ));
    }
    let entries: Vec<DumpEntry> = specs
        .into_iter()
        .map(|(spec, running)| DumpEntry {
            spec,
            status: if running { "online" } else { "stopped" }.to_owned(),
        })
        .collect();
    let path = home.dump_file();
    let text = serde_json::to_string_pretty(&entries)
        .map_err(|e| RpcError::new(ErrorCode::Io, format!("cannot encode dump: {e}")))?;
    if path.exists() {
        let _ = std::fs::copy(&path, home.dump_backup_file());
    }
    // Write then rename: a crash never leaves half a dump.
    let tmp = path.with_extension("pm2.tmp");
    let failed = |what: &str, p: &std::path::Path, e: std::io::Error| {
        RpcError::new(
            ErrorCode::Io,
            format!("cannot save the process list: {what} {}: {e}", p.display()),
        )
    };
    std::fs::write(&tmp, text).map_err(|e| failed("writing", &tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| failed("renaming to", &path, e))?;
    Ok(Response::Saved {
        path: path.display().to_string(),
        apps: entries.len(),
    })
}

async fn resurrect(sup: &SupervisorHandle, home: &Home) -> Result<Response, RpcError> {
    let path = home.dump_file();
    let backup = home.dump_backup_file();
    let entries = read_dump(&path)
        .inspect_err(|e| {
            // pm2 deletes a dump it cannot parse (the backup stays).
            if e.code == ErrorCode::Io && path.exists() {
                tracing::warn!("{e}: removed");
                let _ = std::fs::remove_file(&path);
            }
        })
        .or_else(|first| read_dump(&backup).map_err(|_| first))?;
    if entries.is_empty() {
        return processes_all(sup).await;
    }
    let stopped: Vec<String> = entries
        .iter()
        .filter(|e| e.status == "stopped")
        .map(|e| e.spec.name.clone())
        .collect();
    let apps = entries.into_iter().map(|e| e.spec).collect();
    let started = start(sup, apps, true, &stopped, Existing::Restart).await?;
    if let Response::Processes { processes } = started {
        let ids = processes.iter().map(|p| p.pm_id).collect();
        super::settle::wait_stable(sup, ids).await?;
    }
    processes_all(sup).await
}

fn read_dump(path: &std::path::Path) -> Result<Vec<DumpEntry>, RpcError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        RpcError::new(
            ErrorCode::NoDump,
            format!("no dump to resurrect at {}: {e}", path.display()),
        )
    })?;
    serde_json::from_str(&text).map_err(|e| {
        RpcError::new(
            ErrorCode::Io,
            format!("dump {} is corrupt: {e}", path.display()),
        )
    })
}

fn truncate_file(path: &std::path::Path) -> Result<(), RpcError> {
    rpm2_logs::safe_open::truncate(path).map_err(io_error)
}

fn io_error(e: std::io::Error) -> RpcError {
    RpcError::new(ErrorCode::Io, e.to_string())
}

/// Stop every worker (for `kill` and daemon shutdown).
pub async fn stop_all(sup: &SupervisorHandle) -> Vec<ProcessInfo> {
    let _ = sup.call(|reply| Call::ShutDown { reply }).await;
    let ids = sup
        .call(|reply| Call::Resolve {
            targets: vec![Target::All],
            reply,
        })
        .await
        .unwrap_or_default();
    let _ = each_concurrently(sup, &ids, |pm_id, reply| Call::Stop { pm_id, reply }).await;
    // Descendants that ignore SIGINT would outlive the daemon's timers.
    sup.kill_leftovers(std::time::Duration::from_millis(
        rpm2_proto::defaults::KILL_TIMEOUT_MS,
    ))
    .await;
    sup.call(|reply| Call::Info { ids: None, reply })
        .await
        .unwrap_or_default()
}

/// Dump then stop (SIGTERM/SIGINT to the daemon, as pm2 does).
pub async fn save_quietly(sup: &SupervisorHandle, home: &Home) {
    let _ = save(sup, home, false).await;
}
