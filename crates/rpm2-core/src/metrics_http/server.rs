//! The endpoints' listener and HTTP/1 connections (hyper), on the daemon's
//! current-thread runtime. Probes and scrapers make few, small requests:
//! one request per connection, a bounded number of connections, and a
//! deadline on each, so a stuck or hostile client costs a task at most.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::exposition;
use crate::supervisor::{Call, SupervisorHandle};

/// Connections served at once; more are closed as they come.
const MAX_CONNECTIONS: usize = 32;
/// A request head must arrive within this.
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// A whole connection (request and answer) ends after this.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(30);

/// What Prometheus asks for and prometheus-client writes.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";

/// Accept until the task is aborted (settings changed, daemon stopping).
pub async fn serve(listener: TcpListener, sup: SupervisorHandle) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of fds, most likely: wait instead of spinning.
                tracing::warn!("metrics: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            continue; // dropping the stream closes it
        };
        let sup = sup.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let sup = sup.clone();
                async move { Ok::<_, Infallible>(answer(&sup, &req).await) }
            });
            let conn = http1::Builder::new()
                .keep_alive(false)
                .timer(TokioTimer::new())
                .header_read_timeout(HEAD_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(CONNECTION_TIMEOUT, conn).await;
            drop(slot);
        });
    }
}

async fn answer(sup: &SupervisorHandle, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        let mut resp = reply(StatusCode::METHOD_NOT_ALLOWED, TEXT, "only GET and HEAD\n");
        resp.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return resp;
    }
    match req.uri().path() {
        // The runtime that answers is the one the supervisor runs on.
        "/healthz" => reply(StatusCode::OK, TEXT, "ok\n"),
        "/readyz" => match sup.call(|reply| Call::Info { ids: None, reply }).await {
            Ok(workers) => match exposition::not_ready(&workers) {
                None => reply(StatusCode::OK, TEXT, "ready\n"),
                Some(why) => reply(StatusCode::SERVICE_UNAVAILABLE, TEXT, why),
            },
            Err(e) => reply(StatusCode::SERVICE_UNAVAILABLE, TEXT, e.message + "\n"),
        },
        "/metrics" => match scrape(sup).await {
            Ok(text) => reply(StatusCode::OK, OPENMETRICS, text),
            Err(e) => reply(StatusCode::SERVICE_UNAVAILABLE, TEXT, e + "\n"),
        },
        _ => reply(
            StatusCode::NOT_FOUND,
            TEXT,
            "not found: /metrics, /healthz and /readyz are served here\n",
        ),
    }
}

/// One snapshot of the table and the primary's counters, rendered.
async fn scrape(sup: &SupervisorHandle) -> Result<String, String> {
    let workers = sup
        .call(|reply| Call::Info { ids: None, reply })
        .await
        .map_err(|e| e.message)?;
    let handed_off = sup
        .call(|reply| Call::HandedOff { reply })
        .await
        .map_err(|e| e.message)?;
    let now_ms = crate::supervisor::now_ms();
    let samples: Vec<exposition::WorkerSample> = workers
        .iter()
        .map(|w| exposition::WorkerSample::of(w, &handed_off, now_ms))
        .collect();
    exposition::render(&samples, &exposition::DaemonSample::now()).map_err(|e| e.to_string())
}

fn reply(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(body.into()));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}
