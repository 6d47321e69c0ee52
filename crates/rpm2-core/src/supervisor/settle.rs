//! `resurrect` answers only once the apps it started have stayed up: a
//! copy that crash-loops (a port still held by an orphan of the previous
//! daemon, say) is reported as such, not as a success.

use std::collections::HashMap;
use std::time::Duration;

use rpm2_proto::{ErrorCode, ProcessInfo, RpcError, WorkerStatus};

use super::{now_ms, Call, SupervisorHandle};

/// How often the workers are looked at while they settle.
const POLL: Duration = Duration::from_millis(50);
/// The longest wait, whatever `min_uptime` says.
const MAX_WAIT_MS: u64 = 60_000;

/// Wait until every worker in `ids` has been up for its app's
/// `min_uptime` without a restart, or say which one keeps crashing.
pub async fn wait_stable(sup: &SupervisorHandle, ids: Vec<u32>) -> Result<(), RpcError> {
    let first = infos(sup, &ids).await?;
    let restarts: HashMap<u32, u32> = first
        .iter()
        .map(|p| (p.pm_id, p.pm2_env.restart_time))
        .collect();
    let longest = first
        .iter()
        .map(|p| p.pm2_env.min_uptime.max(p.pm2_env.listen_timeout))
        .max()
        .unwrap_or(0);
    let deadline = now_ms() + longest.saturating_add(5_000).min(MAX_WAIT_MS);
    loop {
        let now = now_ms();
        let mut settling = false;
        for p in infos(sup, &ids).await? {
            let env = &p.pm2_env;
            let restarted = restarts
                .get(&p.pm_id)
                .is_some_and(|&before| env.restart_time > before);
            match env.status {
                WorkerStatus::Errored | WorkerStatus::WaitingRestart => {
                    return Err(crash_loop(sup, &p));
                }
                _ if restarted => return Err(crash_loop(sup, &p)),
                WorkerStatus::Online | WorkerStatus::Launching => {
                    settling |= now.saturating_sub(env.pm_uptime) < env.min_uptime;
                }
                // Stopped (in the dump, or by its own exit code) or going.
                _ => {}
            }
        }
        if !settling || now >= deadline {
            return Ok(());
        }
        tokio::time::sleep(POLL).await;
    }
}

async fn infos(sup: &SupervisorHandle, ids: &[u32]) -> Result<Vec<ProcessInfo>, RpcError> {
    sup.call(|reply| Call::Info {
        ids: Some(ids.to_vec()),
        reply,
    })
    .await
}

fn crash_loop(sup: &SupervisorHandle, p: &ProcessInfo) -> RpcError {
    let env = &p.pm2_env;
    let mut message = format!(
        "app {} (id {}) keeps crashing after resurrect: {}, restarted {} times, last exit code {}; see {}",
        p.name,
        p.pm_id,
        env.status.as_str(),
        env.restart_time,
        env.exit_code
            .map_or_else(|| "none".to_owned(), |c| c.to_string()),
        env.pm_err_log_path
    );
    let orphans = sup.notices().orphans();
    if !orphans.is_empty() {
        message.push_str("; ");
        message.push_str(&super::notices::describe_orphans(&orphans));
    }
    RpcError::new(ErrorCode::CrashLoop, message)
}
