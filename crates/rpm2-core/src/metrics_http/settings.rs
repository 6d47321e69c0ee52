//! Where the endpoints are served, if anywhere: `RPM2_METRICS_ADDR` as the
//! daemon found it at start, else `rpm2:metrics_addr` in
//! `module_conf.json`. Applied at start and on every `ReloadSettings`: an
//! unchanged address keeps its listener, a new one replaces it, none
//! stops it. Nothing here can stop the daemon: a bad or busy address is
//! logged, and the daemon runs without the endpoints.

use std::net::SocketAddr;
use std::sync::OnceLock;

use rpm2_client::daemon_settings::{parse_metrics_addr, DaemonSettings, METRICS_ADDR_ENV};
use rpm2_client::module_conf;
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

use crate::paths::Home;
use crate::supervisor::SupervisorHandle;

/// The endpoint being served.
struct Serving {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

/// Held across the wait for an old listener to close, so two settings
/// reloads at once apply one after the other.
static SERVING: Mutex<Option<Serving>> = Mutex::const_new(None);

/// `RPM2_METRICS_ADDR` when the daemon started (empty counts as unset).
fn env_addr() -> Option<&'static str> {
    static ENV: OnceLock<Option<String>> = OnceLock::new();
    ENV.get_or_init(|| {
        std::env::var(METRICS_ADDR_ENV)
            .ok()
            .filter(|v| !v.trim().is_empty())
    })
    .as_deref()
}

/// What should be served, or `Err` to keep what is (the store cannot be
/// read). Problems are logged and returned.
fn wanted(home: &Home, problems: &mut Vec<String>) -> Result<Option<SocketAddr>, ()> {
    let conf = module_conf::load(&home.module_conf_file());
    let stored = match &conf {
        Ok(conf) => {
            let (settings, bad) = DaemonSettings::from_conf(conf);
            problems.extend(bad);
            Some(settings.metrics_addr)
        }
        Err(e) => {
            problems.push(format!("daemon settings not applied: {e}"));
            None
        }
    };
    if let Some(text) = env_addr() {
        if let Some(Some(addr)) = stored {
            tracing::info!("{METRICS_ADDR_ENV} is set: rpm2:metrics_addr {addr} is not used");
        }
        return match parse_metrics_addr(text) {
            Ok(addr) => Ok(Some(addr)),
            Err(e) => {
                problems.push(format!("{METRICS_ADDR_ENV} {e}: metrics are off"));
                Ok(None)
            }
        };
    }
    stored.ok_or(())
}

/// Serve the endpoints where the settings say, or stop serving them.
/// Returns the problems met (also logged).
pub async fn apply(home: &Home, sup: &SupervisorHandle) -> Vec<String> {
    let mut problems = Vec::new();
    let wanted = wanted(home, &mut problems);
    for p in &problems {
        tracing::warn!("{p}");
    }
    let Ok(wanted) = wanted else {
        return problems;
    };
    let mut serving = SERVING.lock().await;
    if serving.as_ref().map(|s| s.addr) == wanted {
        return problems;
    }
    if let Some(old) = serving.take() {
        // The task owns the listener: once it is gone the port is free
        // (the new address may have the same port).
        old.task.abort();
        let _ = old.task.await;
        tracing::info!("metrics: no longer serving on {}", old.addr);
    }
    let Some(addr) = wanted else {
        return problems;
    };
    match listen(addr) {
        Ok(listener) => {
            let task = tokio::spawn(super::server::serve(listener, sup.clone()));
            *serving = Some(Serving { addr, task });
            tracing::info!("metrics: serving /metrics, /healthz and /readyz on http://{addr}");
        }
        Err(e) => {
            let p = format!(
                "metrics: cannot listen on {addr}: {e}; the daemon goes on without the endpoints"
            );
            tracing::error!("{p}");
            problems.push(p);
        }
    }
    problems
}

/// Bind now (so a busy address is known at once), then hand the socket to
/// tokio. std sets close-on-exec (workers never inherit it) and
/// SO_REUSEADDR (a restarted daemon rebinds at once).
fn listen(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    tokio::net::TcpListener::from_std(listener)
}
