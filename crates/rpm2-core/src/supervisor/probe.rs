//! Readiness and liveness probes (`readiness_probe`, `liveness_probe`):
//! when each runs, what its results do, and the checks themselves.
//!
//! Each probe of a run runs on its own timer (`Msg::ProbeDue`), one at a
//! time, in a task bounded by `timeout_ms` that reports `Msg::ProbeDone`.
//! - **Readiness** gates routing (`Primary::set_ready`) and is the run's
//!   `Ready` event (a reload's successor takes over only once it passed;
//!   `listening` and `'ready'` do not count). Until its first pass it is
//!   tried every 200 ms (at most `period_ms`), so a start or reload does not
//!   wait a whole period; `listen_timeout` bounds that wait, after which a
//!   reload fails and keeps the old process. `failure_threshold` failures
//!   in a row take a ready run out of routing until it passes again.
//! - **Liveness**: `failure_threshold` failures in a row replace the worker
//!   (a reload in cluster mode: the sick one serves until its successor is
//!   ready).
//!
//! An HTTP probe of a cluster worker must reach that worker, not whichever
//! one round robin picks: the daemon makes a socketpair, hands one end to
//! the worker exactly like an accepted connection (`Primary::hand_probe`)
//! and speaks HTTP on the other. No port, no listener and no accept of our
//! own; the worker's server sees an ordinary connection (from a Unix
//! socket, so without a remote address). Apps whose workers accept on a
//! shared socket (`NODE_CLUSTER_SCHED_POLICY=none`) are probed through
//! their port, as fork workers are: the kernel picks the worker.

use std::future::Future;
use std::os::fd::OwnedFd;
use std::pin::Pin;
use std::time::Duration;

use rpm2_proto::health::{Probe, ProbeCheck};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::actor::Actor;
use super::run::{RunEvent, RunPhase};
use super::worker::{WorkerEvent, WorkerState};
use super::Msg;
use crate::Gen;

/// Until its first pass, a readiness probe is tried this often.
const FIRST_READINESS_EVERY: Duration = Duration::from_millis(200);

/// The most of a response read to find its status line.
const MAX_STATUS_LINE: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeKind {
    Readiness,
    Liveness,
}

/// A probe's results so far for one run.
#[derive(Debug, Default)]
pub struct ProbeState {
    /// Failures in a row.
    failures: u32,
    /// Readiness: it passed and has not failed `failure_threshold` times since.
    passing: bool,
    /// It passed at least once (readiness: the run counted as ready).
    passed_once: bool,
    /// A probe of this kind is running.
    in_flight: bool,
    /// Why the last one failed.
    last_error: Option<String>,
}

/// Both probes of a run.
#[derive(Debug, Default)]
pub struct Probes {
    readiness: ProbeState,
    liveness: ProbeState,
}

impl Probes {
    fn of(&mut self, kind: ProbeKind) -> &mut ProbeState {
        match kind {
            ProbeKind::Readiness => &mut self.readiness,
            ProbeKind::Liveness => &mut self.liveness,
        }
    }
}

type Check = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

fn probe_of(spec: &rpm2_proto::AppSpec, kind: ProbeKind) -> Option<&Probe> {
    match kind {
        ProbeKind::Readiness => spec.readiness_probe.as_ref(),
        ProbeKind::Liveness => spec.liveness_probe.as_ref(),
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Actor {
    /// A run of an app with probes was spawned: arm them, and keep it out
    /// of routing until its readiness passes.
    pub(crate) fn arm_probes(&mut self, gen: Gen, spec: &rpm2_proto::AppSpec) {
        if spec.readiness_probe.is_some() {
            self.primary.set_ready(gen, false);
        }
        for kind in [ProbeKind::Readiness, ProbeKind::Liveness] {
            if let Some(probe) = probe_of(spec, kind) {
                self.after(probe.initial_delay_ms, Msg::ProbeDue { gen, kind });
            }
        }
    }

    /// A run taken over by `rpm2 update`: its probes go on, and one that
    /// was ready stays in routing (its readiness passed before).
    pub(crate) fn rearm_probes(&mut self, gen: Gen, spec: &rpm2_proto::AppSpec, ready: bool) {
        if let Some(run) = self.table.runs.get_mut(&gen) {
            run.health.probes.readiness.passed_once = ready;
        }
        if spec.readiness_probe.is_some() && !ready {
            self.primary.set_ready(gen, false);
        }
        for kind in [ProbeKind::Readiness, ProbeKind::Liveness] {
            if let Some(probe) = probe_of(spec, kind) {
                let first = if ready {
                    probe.period_ms
                } else {
                    probe.initial_delay_ms
                };
                self.after(first, Msg::ProbeDue { gen, kind });
            }
        }
    }

    /// With a readiness probe only the probe says a run is ready.
    pub(crate) fn ready_by_probe(&self, gen: Gen) -> bool {
        self.table
            .runs
            .get(&gen)
            .and_then(|r| self.spec_of(r.pm_id))
            .is_some_and(|s| s.readiness_probe.is_some())
    }

    /// `listen_timeout` passed and the run's readiness probe has not.
    pub(crate) fn not_ready_in_time(&mut self, gen: Gen) {
        let Some(run) = self.table.runs.get_mut(&gen) else {
            return;
        };
        if !matches!(run.phase, RunPhase::Starting | RunPhase::Online) {
            return;
        }
        let pm_id = run.pm_id;
        let last = run.health.probes.readiness.last_error.clone();
        let limit = self.spec_of(pm_id).map_or(0, |s| s.listen_timeout_ms);
        let reason = format!(
            "the readiness probe did not pass within listen_timeout ({limit} ms): {}",
            last.as_deref().unwrap_or("no answer yet")
        );
        self.worker_event(pm_id, WorkerEvent::RunNotReady { run: gen, reason }, None);
    }

    pub(crate) fn on_probe_due(&mut self, gen: Gen, kind: ProbeKind) {
        let Some(run) = self.table.runs.get_mut(&gen) else {
            return;
        };
        // One at a time: a due probe while one runs waits for the next turn.
        if run.phase.exit_expected() || run.health.probes.of(kind).in_flight {
            return;
        }
        let run = &*run;
        let Some(w) = self.table.workers.get(&run.pm_id) else {
            return;
        };
        let Some(spec) = self.table.apps.get(&w.app).map(|a| &a.spec) else {
            return;
        };
        let Some(probe) = probe_of(spec, kind).cloned() else {
            return;
        };
        // Workers that accept on a shared socket (`NODE_CLUSTER_SCHED_POLICY=
        // none`) are probed through the port, like fork workers.
        let routed = run.cluster && self.primary.routes(gen);
        let check: Check = match &probe.check {
            ProbeCheck::HttpGet { path, port, status } => {
                let request = http_request(path, *port);
                let expected = *status;
                if routed {
                    match std::os::unix::net::UnixStream::pair() {
                        Ok((ours, theirs)) => {
                            let handed = theirs
                                .set_nonblocking(true)
                                .and_then(|()| ours.set_nonblocking(true))
                                .map_err(|e| e.to_string())
                                .and_then(|()| {
                                    self.primary.hand_probe(gen, *port, OwnedFd::from(theirs))
                                });
                            match handed {
                                Ok(()) => Box::pin(async move {
                                    let stream = tokio::net::UnixStream::from_std(ours)
                                        .map_err(|e| e.to_string())?;
                                    http_check(stream, request, expected).await
                                }),
                                Err(e) => Box::pin(std::future::ready(Err(e))),
                            }
                        }
                        Err(e) => Box::pin(std::future::ready(Err(e.to_string()))),
                    }
                } else {
                    let port = *port;
                    Box::pin(async move {
                        let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
                            .await
                            .map_err(|e| format!("connect to port {port}: {e}"))?;
                        http_check(stream, request, expected).await
                    })
                }
            }
            ProbeCheck::TcpSocket { port } if routed => {
                let result = if self.primary.listens_on(gen, *port) {
                    Ok(())
                } else {
                    Err(format!("the worker does not listen on port {port}"))
                };
                Box::pin(std::future::ready(result))
            }
            ProbeCheck::TcpSocket { port } => {
                let port = *port;
                Box::pin(async move {
                    tokio::net::TcpStream::connect(("127.0.0.1", port))
                        .await
                        .map(drop)
                        .map_err(|e| format!("connect to port {port}: {e}"))
                })
            }
            ProbeCheck::Exec { command } => {
                let mut cmd = tokio::process::Command::new(&command[0]);
                cmd.args(&command[1..])
                    .current_dir(&spec.cwd)
                    .env_clear()
                    .envs(&w.env)
                    .env("RPM2_PROBE_PID", run.pid.to_string())
                    .stdin(std::process::Stdio::null())
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .kill_on_drop(true);
                let shown = command.join(" ");
                Box::pin(async move {
                    let status = cmd
                        .status()
                        .await
                        .map_err(|e| format!("cannot run {shown}: {e}"))?;
                    if status.success() {
                        Ok(())
                    } else {
                        Err(format!("{shown} exited with {status}"))
                    }
                })
            }
        };
        if let Some(run) = self.table.runs.get_mut(&gen) {
            run.health.probes.of(kind).in_flight = true;
        }
        let tx = self.tx.clone();
        let timeout = Duration::from_millis(probe.timeout_ms);
        tokio::spawn(async move {
            let result = tokio::time::timeout(timeout, check)
                .await
                .unwrap_or_else(|_| Err(format!("no answer within {} ms", millis(timeout))));
            let _ = tx.send(Msg::ProbeDone { gen, kind, result });
        });
    }

    pub(crate) fn on_probe_done(&mut self, gen: Gen, kind: ProbeKind, result: Result<(), String>) {
        let Some(run) = self.table.runs.get_mut(&gen) else {
            return;
        };
        let pm_id = run.pm_id;
        let Some(spec) = self
            .table
            .workers
            .get(&pm_id)
            .and_then(|w| self.table.apps.get(&w.app))
            .map(|a| &a.spec)
        else {
            return;
        };
        let Some(probe) = probe_of(spec, kind) else {
            return;
        };
        let (threshold, period) = (probe.failure_threshold, probe.period_ms);
        let name = spec.name.clone();
        let state = run.health.probes.of(kind);
        state.in_flight = false;
        let mut became_ready = false;
        let mut failed_out = None;
        match result {
            Ok(()) => {
                state.failures = 0;
                state.last_error = None;
                if kind == ProbeKind::Readiness && !state.passing {
                    state.passing = true;
                    became_ready = !std::mem::replace(&mut state.passed_once, true);
                    self.primary.set_ready(gen, true);
                }
            }
            Err(e) => {
                state.failures += 1;
                tracing::debug!("App [{name}:{pm_id}] {kind:?} probe failed: {e}");
                if state.failures >= threshold {
                    failed_out = Some(format!(
                        "{} probe failed {} times: {e}",
                        match kind {
                            ProbeKind::Readiness => "readiness",
                            ProbeKind::Liveness => "liveness",
                        },
                        state.failures
                    ));
                }
                state.last_error = Some(e);
            }
        }
        let first_try = kind == ProbeKind::Readiness && !state.passed_once;
        let every = if first_try {
            FIRST_READINESS_EVERY.min(Duration::from_millis(period))
        } else {
            Duration::from_millis(period)
        };
        if let Some(reason) = failed_out {
            if kind == ProbeKind::Liveness {
                state.failures = 0;
                let serving = self
                    .table
                    .workers
                    .get(&pm_id)
                    .is_some_and(|w| w.life.state == WorkerState::Online { run: gen });
                if serving {
                    tracing::warn!("App [{name}:{pm_id}] {reason}: replaced");
                    self.worker_event(
                        pm_id,
                        WorkerEvent::Replace {
                            run: gen,
                            reason,
                            hung: false,
                        },
                        None,
                    );
                }
            } else if std::mem::replace(&mut state.passing, false) {
                tracing::warn!("App [{name}:{pm_id}] {reason}: no new connections until it passes");
                self.primary.set_ready(gen, false);
            }
        }
        if became_ready {
            self.run_event(gen, RunEvent::Ready);
        }
        self.after(millis(every), Msg::ProbeDue { gen, kind });
    }
}

fn http_request(path: &str, port: u16) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: rpm2-probe\r\nConnection: close\r\n\r\n"
    )
}

/// Send `request`, read the status line, compare with `expected` (any
/// 2xx or 3xx when `None`, as Kubernetes does).
async fn http_check<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    request: String,
    expected: Option<u16>,
) -> Result<(), String> {
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("send: {e}"))?;
    let mut head = Vec::with_capacity(128);
    let mut buf = [0u8; 256];
    while !head.contains(&b'\n') && head.len() < MAX_STATUS_LINE {
        let n = stream
            .read(&mut buf)
            .await
            .map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err("the connection closed without a response".into());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let status = status_of(&head).ok_or("not an HTTP response")?;
    let ok = expected.map_or((200..400).contains(&status), |e| e == status);
    let path = request.split(' ').nth(1).unwrap_or_default().to_owned();
    if ok {
        Ok(())
    } else {
        Err(format!("GET {path} answered {status}"))
    }
}

/// The status of an HTTP response head (`HTTP/1.1 200 OK`).
fn status_of(head: &[u8]) -> Option<u16> {
    let line = head.split(|&b| b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut words = line.split_whitespace();
    words.next().filter(|w| w.starts_with("HTTP/"))?;
    words.next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_status_line() {
        assert_eq!(
            status_of(b"HTTP/1.1 503 Service Unavailable\r\n"),
            Some(503)
        );
        assert_eq!(status_of(b"HTTP/1.0 200\r\n"), Some(200));
        assert_eq!(status_of(b"SSH-2.0-OpenSSH\r\n"), None);
    }

    #[tokio::test]
    async fn an_http_check_over_a_socketpair_compares_the_status() {
        for (answer, expected, ok) in [
            ("HTTP/1.1 204 No Content\r\n\r\n", None, true),
            ("HTTP/1.1 500 Oops\r\n\r\n", None, false),
            ("HTTP/1.1 500 Oops\r\n\r\n", Some(500), true),
        ] {
            let (ours, mut theirs) = tokio::net::UnixStream::pair().unwrap();
            let server = tokio::spawn(async move {
                let mut req = vec![0u8; 512];
                let n = theirs.read(&mut req).await.unwrap();
                theirs.write_all(answer.as_bytes()).await.unwrap();
                String::from_utf8_lossy(&req[..n]).into_owned()
            });
            let got = http_check(ours, http_request("/health", 80), expected).await;
            assert_eq!(got.is_ok(), ok, "{answer}: {got:?}");
            assert!(server
                .await
                .unwrap()
                .starts_with("GET /health HTTP/1.1\r\n"));
        }
    }
}
