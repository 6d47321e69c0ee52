//! `sticky: 'forwarded'`: the client address a proxy wrote into the first
//! request of a connection (`X-Forwarded-For`'s first address, else
//! `X-Real-IP`), read with `MSG_PEEK` so the worker still gets every byte.
//! Bounded: at most [`MAX_PEEK`] bytes and [`PEEK_WAIT`]; anything else
//! (TLS, a silent client, no such header) falls back to the peer address.

use std::net::IpAddr;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

use nix::sys::socket::{recv, MsgFlags};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// The most of a request head that is looked at.
pub const MAX_PEEK: usize = 8 * 1024;

/// The longest a connection waits for its request head before it is
/// routed by its peer address.
pub const PEEK_WAIT: Duration = Duration::from_secs(1);

/// What a request head says so far.
#[derive(Debug, PartialEq, Eq)]
pub enum Head {
    /// The client address, normalised (an IP address when it parses as one).
    Client(Box<str>),
    /// Not complete yet, no `X-Forwarded-For` seen.
    NeedMore,
    /// Complete without either header, or not HTTP: use the peer address.
    Nothing,
}

/// Read the client address from the first bytes of a connection. `full`:
/// no more bytes will come (size cap, end of stream or timeout), so decide
/// with what is there.
#[must_use]
pub fn client_of(head: &[u8], full: bool) -> Head {
    // An HTTP/1 request starts with an upper-case method (TLS with 0x16).
    match head.first() {
        None => return if full { Head::Nothing } else { Head::NeedMore },
        Some(b) if !b.is_ascii_uppercase() => return Head::Nothing,
        Some(_) => {}
    }
    let mut real_ip = None;
    // Past the request line.
    let mut rest = &head[head
        .iter()
        .position(|&b| b == b'\n')
        .map_or(head.len(), |i| i + 1)..];
    while let Some(end) = rest.iter().position(|&b| b == b'\n') {
        let line = rest[..end].strip_suffix(b"\r").unwrap_or(&rest[..end]);
        rest = &rest[end + 1..];
        if line.is_empty() {
            return real_ip.map_or(Head::Nothing, Head::Client);
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        if name.eq_ignore_ascii_case(b"x-forwarded-for") {
            let first = value.split(|&b| b == b',').next().unwrap_or_default();
            if let Some(client) = normalise(first) {
                return Head::Client(client);
            }
        } else if name.eq_ignore_ascii_case(b"x-real-ip") && real_ip.is_none() {
            real_ip = normalise(value);
        }
    }
    if full {
        real_ip.map_or(Head::Nothing, Head::Client)
    } else {
        Head::NeedMore
    }
}

/// `1.2.3.4`, `1.2.3.4:5678`, `[::1]:80` and `::1` become the address;
/// other non-empty text (an obfuscated identifier) is kept as it is.
fn normalise(value: &[u8]) -> Option<Box<str>> {
    let text = std::str::from_utf8(value).ok()?.trim();
    if text.is_empty() {
        return None;
    }
    let ip = text
        .parse::<IpAddr>()
        .ok()
        .or_else(|| {
            let inner = text.strip_prefix('[')?.split(']').next()?;
            inner.parse().ok()
        })
        .or_else(|| {
            text.rsplit_once(':')?
                .0
                .parse::<std::net::Ipv4Addr>()
                .ok()
                .map(IpAddr::V4)
        });
    Some(ip.map_or_else(|| text.into(), |ip| ip.to_string().into()))
}

/// The connection's fd, registered with the reactor only while we peek.
struct Peeked(Arc<OwnedFd>);

impl AsRawFd for Peeked {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

/// Wait (bounded) for the connection's request head and read the client
/// address from it without consuming a byte.
pub async fn peek_client(fd: &Arc<OwnedFd>) -> Option<Box<str>> {
    // SAFETY: the fd stays open while registered: `Peeked` holds a share.
    let registered =
        unsafe { AsyncFd::register_with_interest(Peeked(Arc::clone(fd)), Interest::READABLE) };
    let Ok(async_fd) = registered else {
        return None;
    };
    let mut buf = vec![0u8; MAX_PEEK];
    let found = tokio::time::timeout(PEEK_WAIT, async {
        loop {
            let Ok(mut guard) = async_fd.readable().await else {
                return None;
            };
            match guard.try_io(|f| {
                recv(f.get_ref().as_raw_fd(), &mut buf, MsgFlags::MSG_PEEK)
                    .map_err(std::io::Error::from)
            }) {
                Err(_would_block) => continue,
                Ok(Err(_)) => return None,
                Ok(Ok(n)) => {
                    let full = n == 0 || n == buf.len();
                    match client_of(&buf[..n], full) {
                        Head::Client(c) => return Some(c),
                        Head::Nothing => return None,
                        // The bytes stay in the socket: wait for more.
                        Head::NeedMore => guard.clear_ready(),
                    }
                }
            }
        }
    })
    .await;
    drop(async_fd);
    match found {
        Ok(client) => client,
        // Out of time: decide with what has come.
        Err(_) => {
            let n = recv(
                fd.as_raw_fd(),
                &mut buf,
                MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT,
            )
            .unwrap_or(0);
            match client_of(&buf[..n], true) {
                Head::Client(c) => Some(c),
                _ => None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(text: &str) -> Head {
        Head::Client(text.into())
    }

    #[test]
    fn the_first_forwarded_address_wins_over_x_real_ip() {
        let head = b"GET / HTTP/1.1\r\nHost: a\r\nX-Real-IP: 9.9.9.9\r\nx-forwarded-for: 10.0.0.7, 172.16.0.1\r\n\r\n";
        assert_eq!(client_of(head, false), client("10.0.0.7"));
    }

    #[test]
    fn x_real_ip_is_used_once_the_head_is_complete() {
        let head = b"GET / HTTP/1.1\r\nX-Real-IP: 10.1.2.3\r\n";
        assert_eq!(client_of(head, false), Head::NeedMore);
        let head = b"GET / HTTP/1.1\r\nX-Real-IP: 10.1.2.3\r\n\r\n";
        assert_eq!(client_of(head, false), client("10.1.2.3"));
        assert_eq!(
            client_of(b"GET / HTTP/1.1\r\nX-Real-IP: 10.1.2.3\r\nHo", true),
            client("10.1.2.3")
        );
    }

    #[test]
    fn addresses_with_ports_and_brackets_are_normalised() {
        for (value, want) in [
            ("1.2.3.4:5678", "1.2.3.4"),
            ("[2001:db8::1]:443", "2001:db8::1"),
            ("2001:db8::1", "2001:db8::1"),
            ("_hidden", "_hidden"),
        ] {
            let head = format!("GET / HTTP/1.1\r\nX-Forwarded-For: {value}\r\n\r\n");
            assert_eq!(client_of(head.as_bytes(), false), client(want), "{value}");
        }
    }

    #[test]
    fn no_header_tls_or_silence_fall_back_to_the_peer() {
        assert_eq!(
            client_of(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", false),
            Head::Nothing
        );
        assert_eq!(client_of(&[0x16, 3, 1, 0, 0xc8], false), Head::Nothing);
        assert_eq!(client_of(b"", false), Head::NeedMore);
        assert_eq!(client_of(b"", true), Head::Nothing);
        assert_eq!(
            client_of(b"GET / HTTP/1.1\r\nHost: a\r\n", true),
            Head::Nothing
        );
    }

    #[tokio::test]
    async fn peeking_leaves_every_byte_for_the_worker() {
        use std::io::{Read, Write};
        use std::os::unix::net::UnixStream;
        let (mut client, server) = UnixStream::pair().unwrap();
        server.set_nonblocking(true).unwrap();
        let fd = Arc::new(OwnedFd::from(server));
        let request = b"GET / HTTP/1.1\r\nX-Forwarded-For: 203.0.113.9\r\n\r\n";
        let peek = tokio::spawn({
            let fd = Arc::clone(&fd);
            async move { peek_client(&fd).await }
        });
        // Two writes: the peek must wait for the end of the head.
        client.write_all(&request[..20]).unwrap();
        tokio::task::yield_now().await;
        client.write_all(&request[20..]).unwrap();
        assert_eq!(peek.await.unwrap().as_deref(), Some("203.0.113.9"));
        let mut server = UnixStream::from(Arc::try_unwrap(fd).unwrap());
        server.set_nonblocking(false).unwrap();
        let mut got = vec![0u8; request.len()];
        server.read_exact(&mut got).unwrap();
        assert_eq!(got, request);
    }
}
