//! The daemon's RPC socket: accept, check the peer's uid, `hello`, then
//! one response per request (or an event stream after `Subscribe`).

use std::io;

use rpm2_proto::frame::{encode, FrameDecoder, FrameError};
use rpm2_proto::{ErrorCode, Request, Response, RpcError, PROTOCOL_VERSION};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;

use crate::paths::Home;
use crate::supervisor::{ops, SupervisorHandle};

/// Most clients connected at once; more wait in the backlog.
const MAX_CONNECTIONS: usize = 256;

/// What the RPC side asks of the daemon's main task.
pub enum DaemonRequest {
    /// `kill`: every app is stopped and the client answered; exit now.
    Exit,
}

/// Serve clients until the listener fails.
pub async fn serve(
    listener: UnixListener,
    sup: SupervisorHandle,
    home: Home,
    daemon_tx: mpsc::UnboundedSender<DaemonRequest>,
) {
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let my_uid = nix::unistd::getuid().as_raw();
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("rpc accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        // Only our own user (and root) may drive the daemon.
        match stream.peer_cred() {
            Ok(cred) if cred.uid() == my_uid || cred.uid() == 0 => {}
            _ => {
                tracing::warn!("refused an rpc client of another user");
                continue;
            }
        }
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let sup = sup.clone();
        let home = home.clone();
        let daemon_tx = daemon_tx.clone();
        tokio::spawn(async move {
            if let Err(e) = connection(stream, &sup, &home, &daemon_tx).await {
                tracing::debug!("rpc client dropped: {e}");
            }
            drop(permit);
        });
    }
}

async fn connection(
    mut stream: UnixStream,
    sup: &SupervisorHandle,
    home: &Home,
    daemon_tx: &mpsc::UnboundedSender<DaemonRequest>,
) -> io::Result<()> {
    let mut decoder = FrameDecoder::new();
    let mut buf = vec![0u8; 16 * 1024];
    let mut greeted = false;
    loop {
        let req = loop {
            match decoder.next_frame::<Request>() {
                Ok(Some(req)) => break req,
                Ok(None) => {}
                Err(e) => {
                    // A malformed frame gets an error answer; too large means
                    // we cannot find the next frame, so hang up.
                    let error = RpcError::new(ErrorCode::BadRequest, e.to_string());
                    write(&mut stream, &Response::Error { error }).await?;
                    if matches!(e, FrameError::TooLarge(_)) {
                        return Ok(());
                    }
                    continue;
                }
            }
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                return Ok(());
            }
            decoder.extend(&buf[..n]);
        };
        let resp = match req {
            Request::Hello { protocol, .. } => {
                if protocol != PROTOCOL_VERSION {
                    let error = RpcError::new(
                        ErrorCode::ProtocolMismatch,
                        format!(
                            "client speaks protocol {protocol}, daemon {PROTOCOL_VERSION}: run `rpm2 kill` and retry"
                        ),
                    );
                    write(&mut stream, &Response::Error { error }).await?;
                    return Ok(());
                }
                greeted = true;
                Response::Hello {
                    protocol: PROTOCOL_VERSION,
                    daemon_version: env!("CARGO_PKG_VERSION").to_owned(),
                    pid: std::process::id(),
                    home: home.root().display().to_string(),
                }
            }
            _ if !greeted => Response::Error {
                error: RpcError::new(ErrorCode::ProtocolMismatch, "say hello first"),
            },
            Request::Subscribe => {
                write(&mut stream, &Response::Ok).await?;
                return stream_events(stream, sup).await;
            }
            Request::Kill => {
                // Answer once everything is stopped, then let the daemon exit.
                let processes = ops::stop_all(sup).await;
                let written = write(&mut stream, &Response::Processes { processes }).await;
                let _ = daemon_tx.send(DaemonRequest::Exit);
                return written;
            }
            other => ops::handle(sup, home, other).await,
        };
        write(&mut stream, &resp).await?;
    }
}

async fn write(stream: &mut UnixStream, resp: &Response) -> io::Result<()> {
    let bytes = encode(resp).map_err(io::Error::other)?;
    stream.write_all(&bytes).await
}

/// Forward bus events until the client goes away.
async fn stream_events(mut stream: UnixStream, sup: &SupervisorHandle) -> io::Result<()> {
    let mut rx = sup.subscribe();
    let (mut rd, mut wr) = stream.split();
    let mut probe = [0u8; 64];
    loop {
        tokio::select! {
            ev = rx.recv() => match ev {
                Ok(event) => {
                    let bytes = encode(&Response::Event { event }).map_err(io::Error::other)?;
                    wr.write_all(&bytes).await?;
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::debug!("subscriber lagged, {n} events skipped");
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return Ok(()),
            },
            n = rd.read(&mut probe) => {
                if n? == 0 { return Ok(()); }
            }
        }
    }
}
