//! Server sockets created the way Node's primary creates them (spec §3.4-3.8).
//!
//! Every fd is created with SOCK_NONBLOCK | SOCK_CLOEXEC: non-blocking because the flag
//! travels with the fd to workers and a blocking listening socket freezes a worker's event
//! loop in `accept4` (spec §2.3); CLOEXEC so the daemon's copies never leak into children.

use std::io;
use std::mem::{size_of, MaybeUninit};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;

use nix::errno::Errno;
use nix::sys::socket::{
    bind, listen, setsockopt, socket, sockopt, AddressFamily, Backlog, SockFlag, SockType,
    SockaddrLike, SockaddrStorage, UnixAddr,
};

/// Node's default listen backlog, used when the worker's `backlog` is falsy.
pub const DEFAULT_BACKLOG: i32 = 511;
/// TCP `flags` bit: `ipv6Only: true` (libuv `UV_TCP_IPV6ONLY`).
pub const UV_TCP_IPV6ONLY: i64 = 1;
/// dgram `flags` bit (libuv `UV_UDP_IPV6ONLY`).
pub const UV_UDP_IPV6ONLY: i64 = 1;
/// dgram `flags` bit (libuv `UV_UDP_REUSEADDR`).
pub const UV_UDP_REUSEADDR: i64 = 4;

const SOCK_FLAGS: SockFlag = SockFlag::SOCK_NONBLOCK.union(SockFlag::SOCK_CLOEXEC);

fn family_of(addr: &SocketAddr) -> AddressFamily {
    if addr.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    }
}

fn parse_ip(address: &str) -> io::Result<IpAddr> {
    // The worker has already resolved host names; anything else is a bad request.
    address.parse().map_err(|_| io::Error::from(Errno::EINVAL))
}

fn listen_fd(fd: &OwnedFd, backlog: i32) -> io::Result<()> {
    let backlog = if backlog > 0 {
        backlog
    } else {
        DEFAULT_BACKLOG
    };
    // nix's Backlog refuses values from SOMAXCONN up; the kernel caps any backlog at
    // net.core.somaxconn, so such a value asks for the most the kernel allows.
    listen(fd, Backlog::new(backlog).unwrap_or(Backlog::MAXALLOWABLE))?;
    Ok(())
}

fn bind_inet_stream(addr: SocketAddr, v6only: bool) -> io::Result<OwnedFd> {
    let fd = socket(family_of(&addr), SockType::Stream, SOCK_FLAGS, None)?;
    // libuv sets SO_REUSEADDR on every TCP server socket.
    setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    if addr.is_ipv6() {
        setsockopt(&fd, sockopt::Ipv6V6Only, &v6only)?;
    }
    bind(fd.as_raw_fd(), &SockaddrStorage::from(addr))?;
    Ok(fd)
}

/// A TCP socket that is bound but **not** listening: what Node's primary passes in
/// shared-handle mode (the worker calls `listen` itself).
///
/// `address: None` binds `[::]` dual stack (IPV6_V6ONLY off unless `flags & 1`), and falls back
/// to `0.0.0.0` when that fails, exactly like Node's `createServerHandle`.
pub fn bind_tcp_socket(address: Option<&str>, port: u16, flags: i64) -> io::Result<OwnedFd> {
    let v6only = flags & UV_TCP_IPV6ONLY != 0;
    match address {
        None => bind_inet_stream(SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), port), v6only)
            .or_else(|e| {
                tracing::debug!(error = %e, "node ipc: [::] bind failed, trying 0.0.0.0");
                bind_inet_stream(SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), port), false)
            }),
        Some(a) => bind_inet_stream(SocketAddr::new(parse_ip(a)?, port), v6only),
    }
}

/// A listening TCP socket (round-robin mode): [`bind_tcp_socket`] plus `listen(backlog)`,
/// a backlog `<= 0` meaning 511.
pub fn bind_tcp(
    address: Option<&str>,
    port: u16,
    flags: i64,
    backlog: i32,
) -> io::Result<TcpListener> {
    let fd = bind_tcp_socket(address, port, flags)?;
    listen_fd(&fd, backlog)?;
    Ok(TcpListener::from(fd))
}

/// Removes `path` if it is a unix socket nobody listens on any more (a leftover from a dead
/// process). A live socket or a non-socket file is left alone, so `bind` reports EADDRINUSE.
fn unlink_stale_socket(path: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => match UnixStream::connect(path) {
            Ok(_) => Ok(()),
            Err(e) if e.raw_os_error() == Some(Errno::ECONNREFUSED as i32) => {
                std::fs::remove_file(path).or_else(|e| match e.kind() {
                    io::ErrorKind::NotFound => Ok(()),
                    _ => Err(e),
                })
            }
            Err(_) => Ok(()),
        },
        _ => Ok(()),
    }
}

/// A unix stream socket bound to `path` but not listening (shared-handle mode). A stale
/// socket file at `path` is removed first. Paths over ~107 bytes fail (`sun_path` limit).
pub fn bind_unix_socket(path: impl AsRef<Path>) -> io::Result<OwnedFd> {
    let path = path.as_ref();
    unlink_stale_socket(path)?;
    let fd = socket(AddressFamily::Unix, SockType::Stream, SOCK_FLAGS, None)?;
    bind(fd.as_raw_fd(), &UnixAddr::new(path)?)?;
    Ok(fd)
}

/// A listening unix stream socket (round-robin mode), backlog `<= 0` meaning 511.
pub fn bind_unix(path: impl AsRef<Path>, backlog: i32) -> io::Result<UnixListener> {
    let fd = bind_unix_socket(path)?;
    listen_fd(&fd, backlog)?;
    Ok(UnixListener::from(fd))
}

/// A bound UDP socket (dgram is always shared-handle, type `dgram.Native`), honouring the
/// query's libuv dgram `flags` (reuseaddr, ipv6only). `address: None` binds the unspecified
/// address of the family.
pub fn bind_udp(address: Option<&str>, port: u16, udp6: bool, flags: i64) -> io::Result<UdpSocket> {
    let ip = match address {
        Some(a) => parse_ip(a)?,
        None if udp6 => Ipv6Addr::UNSPECIFIED.into(),
        None => Ipv4Addr::UNSPECIFIED.into(),
    };
    let addr = SocketAddr::new(ip, port);
    let fd = socket(family_of(&addr), SockType::Datagram, SOCK_FLAGS, None)?;
    if flags & UV_UDP_REUSEADDR != 0 {
        setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    }
    if addr.is_ipv6() {
        setsockopt(&fd, sockopt::Ipv6V6Only, &(flags & UV_UDP_IPV6ONLY != 0))?;
    }
    bind(fd.as_raw_fd(), &SockaddrStorage::from(addr))?;
    Ok(UdpSocket::from(fd))
}

/// Node's (libuv's) negative errno for an error, for `reply_error` (spec §3.6): on Linux
/// libuv's codes are `-errno`, e.g. -98 EADDRINUSE, -13 EACCES.
pub fn errno_of(e: &io::Error) -> i32 {
    if let Some(n) = e.raw_os_error() {
        return -n;
    }
    -(match e.kind() {
        io::ErrorKind::AddrInUse => Errno::EADDRINUSE,
        io::ErrorKind::AddrNotAvailable => Errno::EADDRNOTAVAIL,
        io::ErrorKind::PermissionDenied => Errno::EACCES,
        io::ErrorKind::NotFound => Errno::ENOENT,
        _ => Errno::EINVAL,
    } as i32)
}

/// One `accept4` of a connection (non-blocking, close-on-exec: it is handed to a worker and
/// never registered with our reactor), with the peer's IP when it has one (TCP).
///
/// The per-connection path, so one syscall: nix's `accept4` drops the peer address and a
/// `getpeername` would be a second syscall, so the call is libc's and nix's
/// `SockaddrStorage` decodes the address (family and length checked).
pub fn accept_connection(listener: &OwnedFd) -> io::Result<(OwnedFd, Option<IpAddr>)> {
    const STORAGE_LEN: libc::socklen_t = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    let mut addr = MaybeUninit::<libc::sockaddr_storage>::uninit();
    let mut len = STORAGE_LEN;
    // SAFETY: accept4 on a socket we own; the kernel writes at most `len` bytes of the
    // peer's address into `addr` and sets `len` to the address's length.
    let fd = unsafe {
        libc::accept4(
            listener.as_raw_fd(),
            addr.as_mut_ptr().cast(),
            &mut len,
            libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: accept4 returned a new fd that nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: the kernel initialised the first `len.min(STORAGE_LEN)` bytes of `addr`, and
    // `from_raw` copies only those (it refuses a length beyond the storage).
    let peer = unsafe { SockaddrStorage::from_raw(addr.as_ptr().cast(), Some(len)) };
    Ok((fd, peer.as_ref().and_then(ip_of)))
}

fn ip_of(addr: &SockaddrStorage) -> Option<IpAddr> {
    match (addr.as_sockaddr_in(), addr.as_sockaddr_in6()) {
        (Some(v4), _) => Some(v4.ip().into()),
        (_, Some(v6)) => Some(v6.ip().into()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    fn is_nonblocking_cloexec(fd: impl AsFd) -> bool {
        use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
        let raw = fd.as_fd().as_raw_fd();
        let fl = OFlag::from_bits_retain(fcntl(raw, FcntlArg::F_GETFL).unwrap());
        let fdfl = FdFlag::from_bits_retain(fcntl(raw, FcntlArg::F_GETFD).unwrap());
        fl.contains(OFlag::O_NONBLOCK) && fdfl.contains(FdFlag::FD_CLOEXEC)
    }

    #[test]
    fn tcp_dual_stack_and_flags() {
        let l = bind_tcp(None, 0, 0, 0).unwrap();
        assert!(is_nonblocking_cloexec(&l));
        let addr = l.local_addr().unwrap();
        // Dual stack: an IPv4 client reaches the [::] socket.
        if addr.is_ipv6() {
            std::net::TcpStream::connect(("127.0.0.1", addr.port())).unwrap();
        }
        let busy = bind_tcp(Some("127.0.0.1"), 0, 0, 0).unwrap();
        let port = busy.local_addr().unwrap().port();
        let err = bind_tcp(Some("127.0.0.1"), port, 0, 0).unwrap_err();
        assert_eq!(errno_of(&err), -98);
        assert_eq!(
            errno_of(&bind_tcp(Some("not-an-ip"), 0, 0, 0).unwrap_err()),
            -22
        );
        // Bound but not listening: a connect is refused.
        let fd = bind_tcp_socket(Some("127.0.0.1"), 0, 0).unwrap();
        assert!(is_nonblocking_cloexec(&fd));
        let s = TcpListener::from(fd);
        let p = s.local_addr().unwrap().port();
        assert!(std::net::TcpStream::connect(("127.0.0.1", p)).is_err());
    }

    #[test]
    fn unix_replaces_stale_socket_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.sock");
        let l = bind_unix(&path, 0).unwrap();
        assert!(is_nonblocking_cloexec(&l));
        // Live: left alone.
        assert_eq!(errno_of(&bind_unix(&path, 0).unwrap_err()), -98);
        drop(l);
        // Stale (file remains, nobody listens): replaced.
        let l = bind_unix(&path, 0).unwrap();
        UnixStream::connect(&path).unwrap();
        drop(l);
        // A regular file is never removed.
        let file = dir.path().join("plain");
        std::fs::write(&file, b"x").unwrap();
        assert!(bind_unix(&file, 0).is_err());
        assert!(file.exists());
    }

    #[test]
    fn udp_binds() {
        let s = bind_udp(Some("127.0.0.1"), 0, false, 0).unwrap();
        assert!(is_nonblocking_cloexec(&s));
        let c = UdpSocket::bind("127.0.0.1:0").unwrap();
        c.send_to(b"x", s.local_addr().unwrap()).unwrap();
        let s6 = bind_udp(None, 0, true, 0);
        if let Ok(s6) = s6 {
            assert!(s6.local_addr().unwrap().is_ipv6());
        }
    }

    #[test]
    fn accept_connection_gives_the_peer_ip() {
        let l = OwnedFd::from(bind_tcp(Some("127.0.0.1"), 0, 0, 0).unwrap());
        let port = TcpListener::from(l.try_clone().unwrap())
            .local_addr()
            .unwrap()
            .port();
        // Nothing queued: the listener is non-blocking.
        let err = accept_connection(&l).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        let client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (conn, peer) = accept_connection(&l).unwrap();
        assert_eq!(peer, Some(IpAddr::from([127, 0, 0, 1])));
        assert!(is_nonblocking_cloexec(&conn));
        let conn = std::net::TcpStream::from(conn);
        assert_eq!(conn.peer_addr().unwrap(), client.local_addr().unwrap());

        // IPv6, where the machine has it.
        if let Ok(l6) = bind_tcp(Some("::1"), 0, 0, 0) {
            let port = l6.local_addr().unwrap().port();
            let _c = std::net::TcpStream::connect(("::1", port)).unwrap();
            let (_, peer) = accept_connection(&OwnedFd::from(l6)).unwrap();
            assert_eq!(peer, Some(IpAddr::from(Ipv6Addr::LOCALHOST)));
        }

        // A unix socket peer has no IP.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.sock");
        let u = OwnedFd::from(bind_unix(&path, 0).unwrap());
        let _c = UnixStream::connect(&path).unwrap();
        let (conn, peer) = accept_connection(&u).unwrap();
        assert_eq!(peer, None);
        assert!(is_nonblocking_cloexec(&conn));
    }

    #[test]
    fn huge_backlog_is_capped_not_refused() {
        bind_tcp(Some("127.0.0.1"), 0, 0, 1 << 20).unwrap();
    }

    #[test]
    fn errno_mapping() {
        assert_eq!(errno_of(&io::Error::from(Errno::EACCES)), -13);
        assert_eq!(errno_of(&io::Error::from(io::ErrorKind::AddrInUse)), -98);
    }
}
