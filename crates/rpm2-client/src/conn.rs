//! A blocking connection to the daemon, used by the CLI (no runtime to
//! start: `rpm2 list` stays a few syscalls) and by the addon from its
//! worker threads. Typed calls are in `api.rs`; this is the framing.
//!
//! Every wait is bounded (`timeout.rs`): connecting, the hello and each
//! reply. A bound that runs out is `ClientError::Timeout`, which names the
//! daemon's pid and what to do. Event streams wait without a bound.

use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use nix::sys::socket::{self, AddressFamily, SockFlag, SockType, UnixAddr};
use rpm2_proto::frame::{encode, FrameDecoder};
use rpm2_proto::{Event, Request, Response, PROTOCOL_VERSION};

use crate::timeout::Timeouts;
use crate::{ClientError, Home};

pub struct Client {
    stream: UnixStream,
    decoder: FrameDecoder,
    /// The daemon's pid, from its hello.
    pub daemon_pid: u32,
    /// The rpm2 version the daemon runs (it may predate this client's).
    pub daemon_version: String,
    /// Why the daemon's last `update` fell back to its previous image.
    pub update_refused: Option<String>,
    timeouts: Timeouts,
    home: Home,
}

impl Client {
    /// Connect to a running daemon and say hello, with the bounds of
    /// `RPM2_TIMEOUT_MS` or the defaults.
    pub fn connect(home: &Home) -> Result<Self, ClientError> {
        Self::connect_with(home, Timeouts::from_env())
    }

    /// Connect and say hello, waiting at most `timeouts.connect()` in all.
    pub fn connect_with(home: &Home, timeouts: Timeouts) -> Result<Self, ClientError> {
        Self::hello(home, timeouts, false)
    }

    /// Connect to ask for `update`, whatever protocol the daemon speaks.
    pub fn connect_for_update(home: &Home, timeouts: Timeouts) -> Result<Self, ClientError> {
        Self::hello(home, timeouts, true)
    }

    fn hello(home: &Home, timeouts: Timeouts, update_only: bool) -> Result<Self, ClientError> {
        let deadline = Instant::now() + timeouts.connect();
        let stream = connect_until(home, deadline, timeouts.connect())?;
        let mut client = Self {
            stream,
            decoder: FrameDecoder::for_answers(),
            daemon_pid: 0,
            daemon_version: String::new(),
            update_refused: None,
            timeouts,
            home: home.clone(),
        };
        let hello = Request::Hello {
            protocol: PROTOCOL_VERSION,
            client: format!("rpm2 {}", env!("CARGO_PKG_VERSION")),
            update_only,
        };
        match client.call_until(&hello, deadline, timeouts.connect())? {
            Response::Hello {
                pid,
                daemon_version,
                update_refused,
                ..
            } => {
                client.daemon_pid = pid;
                client.daemon_version = daemon_version;
                client.update_refused = update_refused;
            }
            other => return Err(ClientError::Unexpected(format!("{other:?}"))),
        }
        Ok(client)
    }

    /// The bounds this client waits with.
    #[must_use]
    pub fn timeouts(&self) -> Timeouts {
        self.timeouts
    }

    /// Send a request and wait for its answer (at most the bound for its
    /// kind); `Response::Error` becomes `Err`.
    pub fn call(&mut self, req: &Request) -> Result<Response, ClientError> {
        let bound = self.timeouts.reply(req);
        self.call_until(req, Instant::now() + bound, bound)
    }

    fn call_until(
        &mut self,
        req: &Request,
        deadline: Instant,
        bound: Duration,
    ) -> Result<Response, ClientError> {
        let bytes = encode(req).map_err(|e| ClientError::TooLarge {
            op: req.op(),
            detail: e.to_string(),
        })?;
        let waited = |what: &str| format!("{what} `{}`", req.op());
        self.stream.set_write_timeout(Some(remaining(deadline)))?;
        if let Err(e) = self.stream.write_all(&bytes) {
            // A daemon that refused us (busy) may have answered and closed
            // before we wrote: its answer is still there to read.
            if !is_timeout(&e) {
                let soon = Instant::now() + Duration::from_millis(100);
                if let Ok(Response::Error { error }) = self.read_response(Some(soon)) {
                    return Err(ClientError::Rpc(error));
                }
            }
            return Err(self.fail(e, &waited("to send"), bound));
        }
        match self.read_response(Some(deadline)) {
            Ok(Response::Error { error }) => Err(ClientError::Rpc(error)),
            Ok(other) => Ok(other),
            Err(ClientError::Io(e)) => Err(self.fail(e, &waited("for the answer to"), bound)),
            Err(e) => Err(e),
        }
    }

    /// A timed-out wait becomes `Timeout`; other errors stay I/O errors.
    fn fail(&self, e: io::Error, waited_for: &str, bound: Duration) -> ClientError {
        if is_timeout(&e) {
            let pid = Some(self.daemon_pid)
                .filter(|&p| p != 0)
                .or_else(|| crate::timeout::pid_from_file(&self.home.pid_file()));
            ClientError::timeout(waited_for, pid, bound)
        } else {
            ClientError::Io(e)
        }
    }

    /// The next frame; with a deadline, `TimedOut` once it passes.
    fn read_response(&mut self, deadline: Option<Instant>) -> Result<Response, ClientError> {
        let mut buf = [0u8; 64 * 1024];
        loop {
            if let Some(resp) = self
                .decoder
                .next_frame::<Response>()
                .map_err(io::Error::other)?
            {
                return Ok(resp);
            }
            if let Some(deadline) = deadline {
                let left = remaining(deadline);
                if left.is_zero() {
                    return Err(io::Error::from(io::ErrorKind::TimedOut).into());
                }
                self.stream.set_read_timeout(Some(left))?;
            } else {
                self.stream.set_read_timeout(None)?;
            }
            let n = match self.stream.read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            };
            if n == 0 {
                return Err(ClientError::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the daemon closed the connection",
                )));
            }
            self.decoder.extend(&buf[..n]);
        }
    }

    /// Turn this connection into an event stream (the subscription itself
    /// is bounded; waiting for events is not).
    pub fn subscribe(mut self) -> Result<Events, ClientError> {
        self.call(&Request::Subscribe)?;
        Ok(Events { client: self })
    }

    /// A second handle on the socket (to shut it down from another thread).
    pub fn try_clone_stream(&self) -> io::Result<UnixStream> {
        self.stream.try_clone()
    }
}

fn remaining(deadline: Instant) -> Duration {
    // A zero timeout means "forever" to the socket: keep at least 1 ms.
    deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(1))
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Connect without blocking on a full backlog (a stopped daemon accepts
/// nothing): retry until `deadline`.
fn connect_until(
    home: &Home,
    deadline: Instant,
    bound: Duration,
) -> Result<UnixStream, ClientError> {
    let path = home.rpc_socket();
    let unavailable =
        |e: &dyn std::fmt::Display| ClientError::Unavailable(format!("{}: {e}", path.display()));
    let addr = UnixAddr::new(&path).map_err(|e| unavailable(&e))?;
    loop {
        let fd: OwnedFd = socket::socket(
            AddressFamily::Unix,
            SockType::Stream,
            SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
            None,
        )
        .map_err(|e| unavailable(&e))?;
        match socket::connect(std::os::fd::AsRawFd::as_raw_fd(&fd), &addr) {
            Ok(()) => {
                let stream = UnixStream::from(fd);
                stream.set_nonblocking(false)?;
                return Ok(stream);
            }
            Err(nix::errno::Errno::EAGAIN) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(nix::errno::Errno::EAGAIN) => {
                let pid = crate::timeout::pid_from_file(&home.pid_file());
                return Err(ClientError::timeout(
                    "to connect (the daemon accepts no connection)",
                    pid,
                    bound,
                ));
            }
            Err(e) => return Err(unavailable(&e)),
        }
    }
}

/// Events from a subscribed connection.
pub struct Events {
    client: Client,
}

impl Events {
    /// The next event, however long it takes; `Err` when the daemon goes
    /// away.
    pub fn next_event(&mut self) -> Result<Event, ClientError> {
        loop {
            if let Response::Event { event } = self.client.read_response(None)? {
                return Ok(event);
            }
        }
    }

    pub fn try_clone_stream(&self) -> io::Result<UnixStream> {
        self.client.try_clone_stream()
    }
}
