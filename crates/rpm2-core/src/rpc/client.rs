//! A blocking RPC client, used by the CLI (no runtime to start: `rpm2 list`
//! stays a few syscalls) and by the addon from its worker threads.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use rpm2_proto::frame::{encode, FrameDecoder};
use rpm2_proto::{ErrorCode, Event, Request, Response, RpcError, PROTOCOL_VERSION};

use crate::paths::Home;

/// The hidden subcommand that runs the daemon (re-executing our binary).
pub const DAEMON_SUBCOMMAND: &str = "__daemon";

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{0}")]
    Rpc(#[from] RpcError),
    #[error("daemon unavailable: {0}")]
    Unavailable(String),
    #[error("connection to the daemon lost: {0}")]
    Io(#[from] io::Error),
}

impl ClientError {
    /// The stable code (`err.code` in JS).
    #[must_use]
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Rpc(e) => e.code,
            Self::Unavailable(_) | Self::Io(_) => ErrorCode::DaemonUnavailable,
        }
    }
}

pub struct Client {
    stream: UnixStream,
    decoder: FrameDecoder,
    /// The daemon's pid, from its hello.
    pub daemon_pid: u32,
}

impl Client {
    /// Connect to a running daemon and say hello.
    pub fn connect(home: &Home) -> Result<Self, ClientError> {
        let stream = UnixStream::connect(home.rpc_socket()).map_err(|e| {
            ClientError::Unavailable(format!("{}: {e}", home.rpc_socket().display()))
        })?;
        let mut client = Self {
            stream,
            decoder: FrameDecoder::new(),
            daemon_pid: 0,
        };
        let hello = Request::Hello {
            protocol: PROTOCOL_VERSION,
            client: format!("rpm2 {}", env!("CARGO_PKG_VERSION")),
        };
        match client.call(&hello)? {
            Response::Hello { pid, .. } => client.daemon_pid = pid,
            other => {
                return Err(ClientError::Unavailable(format!(
                    "unexpected hello answer: {other:?}"
                )))
            }
        }
        Ok(client)
    }

    /// Send a request and wait for its answer; `Response::Error` becomes `Err`.
    pub fn call(&mut self, req: &Request) -> Result<Response, ClientError> {
        let bytes = encode(req).map_err(io::Error::other)?;
        self.stream.write_all(&bytes)?;
        match self.read_response()? {
            Response::Error { error } => Err(ClientError::Rpc(error)),
            other => Ok(other),
        }
    }

    fn read_response(&mut self) -> Result<Response, ClientError> {
        let mut buf = [0u8; 64 * 1024];
        loop {
            if let Some(resp) = self
                .decoder
                .next_frame::<Response>()
                .map_err(io::Error::other)?
            {
                return Ok(resp);
            }
            let n = self.stream.read(&mut buf)?;
            if n == 0 {
                return Err(ClientError::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the daemon closed the connection",
                )));
            }
            self.decoder.extend(&buf[..n]);
        }
    }

    /// Turn this connection into an event stream.
    pub fn subscribe(mut self) -> Result<Events, ClientError> {
        self.call(&Request::Subscribe)?;
        Ok(Events { client: self })
    }

    /// Wait at most `timeout` for each read (None = forever).
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.stream.set_read_timeout(timeout)
    }

    /// A second handle on the socket (to shut it down from another thread).
    pub fn try_clone_stream(&self) -> io::Result<UnixStream> {
        self.stream.try_clone()
    }
}

/// Events from a subscribed connection.
pub struct Events {
    client: Client,
}

impl Events {
    /// The next event; `Err` when the daemon goes away.
    pub fn next_event(&mut self) -> Result<Event, ClientError> {
        loop {
            if let Response::Event { event } = self.client.read_response()? {
                return Ok(event);
            }
        }
    }

    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.client.set_read_timeout(timeout)
    }

    pub fn try_clone_stream(&self) -> io::Result<UnixStream> {
        self.client.try_clone_stream()
    }
}

/// Connect, starting the daemon (`exe __daemon`) if none answers. Returns
/// whether a daemon was started.
pub fn connect_or_spawn(home: &Home, exe: &Path) -> Result<(Client, bool), ClientError> {
    if let Ok(c) = Client::connect(home) {
        return Ok((c, false));
    }
    home.ensure().map_err(|e| {
        ClientError::Unavailable(format!("cannot create {}: {e}", home.root().display()))
    })?;
    spawn_daemon(home, exe)?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = String::new();
    while Instant::now() < deadline {
        match Client::connect(home) {
            Ok(c) => return Ok((c, true)),
            Err(e) => last = e.to_string(),
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Err(ClientError::Unavailable(format!(
        "started a daemon but it does not answer ({last}); see {}",
        home.daemon_log().display()
    )))
}

/// Start `exe __daemon` detached, its output appended to the daemon log.
/// The daemon forks once more and the first child exits at once, which we
/// reap here, so no zombie is left behind in long-lived callers.
fn spawn_daemon(home: &Home, exe: &Path) -> Result<(), ClientError> {
    use std::os::unix::process::CommandExt;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(home.daemon_log())
        .map_err(|e| {
            ClientError::Unavailable(format!("cannot open {}: {e}", home.daemon_log().display()))
        })?;
    let log2 = log.try_clone()?;
    let mut child = std::process::Command::new(exe)
        .arg(DAEMON_SUBCOMMAND)
        .env("RPM2_HOME", home.root())
        .stdin(std::process::Stdio::null())
        .stdout(log)
        .stderr(log2)
        .process_group(0)
        .spawn()
        .map_err(|e| ClientError::Unavailable(format!("cannot start {}: {e}", exe.display())))?;
    let status = child.wait()?;
    if !status.success() {
        return Err(ClientError::Unavailable(format!(
            "daemon failed to start ({status}); see {}",
            home.daemon_log().display()
        )));
    }
    Ok(())
}
