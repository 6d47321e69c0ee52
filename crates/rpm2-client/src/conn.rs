//! A blocking connection to the daemon, used by the CLI (no runtime to
//! start: `rpm2 list` stays a few syscalls) and by the addon from its
//! worker threads. Typed calls are in `api.rs`; this is the framing.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use rpm2_proto::frame::{encode, FrameDecoder};
use rpm2_proto::{Event, Request, Response, PROTOCOL_VERSION};

use crate::{ClientError, Home};

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
            other => return Err(ClientError::Unexpected(format!("{other:?}"))),
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
