//! Thin syscall helpers: fd flags and `sendmsg`/`recvmsg` with SCM_RIGHTS.

use std::collections::VecDeque;
use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};

/// Room for this many fds per `recvmsg`. Node sends one fd per message, but several messages
/// can be read at once; too small a buffer would truncate (MSG_CTRUNC) and lose fds.
pub const MAX_FDS_PER_READ: usize = 16;

/// Sets O_NONBLOCK. Spec §2.3: libuv does not make received fds non-blocking, and the flag
/// lives on the open file description, so it travels with the fd to the worker.
pub fn set_nonblocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    let flags = OFlag::from_bits_retain(fcntl(fd.as_raw_fd(), FcntlArg::F_GETFL)?);
    if !flags.contains(OFlag::O_NONBLOCK) {
        fcntl(fd.as_raw_fd(), FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    }
    Ok(())
}

/// Clears FD_CLOEXEC: a child's end of its channel, inherited at its own number.
pub fn set_inheritable(fd: BorrowedFd<'_>) -> io::Result<()> {
    let flags = FdFlag::from_bits_retain(fcntl(fd.as_raw_fd(), FcntlArg::F_GETFD)?);
    fcntl(
        fd.as_raw_fd(),
        FcntlArg::F_SETFD(flags - FdFlag::FD_CLOEXEC),
    )?;
    Ok(())
}

/// Sets FD_CLOEXEC, so the daemon's copies never leak into other children (spec §2.4: a
/// leaked channel end keeps workers alive after the daemon dies).
pub fn set_cloexec(fd: BorrowedFd<'_>) -> io::Result<()> {
    let flags = FdFlag::from_bits_retain(fcntl(fd.as_raw_fd(), FcntlArg::F_GETFD)?);
    if !flags.contains(FdFlag::FD_CLOEXEC) {
        fcntl(
            fd.as_raw_fd(),
            FcntlArg::F_SETFD(flags | FdFlag::FD_CLOEXEC),
        )?;
    }
    Ok(())
}

/// One `recvmsg` (MSG_CMSG_CLOEXEC). Received fds are appended to `fds`. Returns the byte
/// count (0 = EOF) and whether the control data was truncated.
pub fn recv_with_fds(
    fd: RawFd,
    buf: &mut [u8],
    fds: &mut VecDeque<OwnedFd>,
) -> io::Result<(usize, bool)> {
    let mut cmsg = nix::cmsg_space!([RawFd; MAX_FDS_PER_READ]);
    loop {
        let mut iov = [IoSliceMut::new(buf)];
        let msg = match recvmsg::<()>(fd, &mut iov, Some(&mut cmsg), MsgFlags::MSG_CMSG_CLOEXEC) {
            Ok(m) => m,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        };
        for c in msg.cmsgs()? {
            if let ControlMessageOwned::ScmRights(received) = c {
                for raw in received {
                    // SAFETY: the kernel just installed this fd for us; we are its only owner.
                    fds.push_back(unsafe { OwnedFd::from_raw_fd(raw) });
                }
            }
        }
        return Ok((msg.bytes, msg.flags.contains(MsgFlags::MSG_CTRUNC)));
    }
}

/// One `sendmsg` of `bytes`, with `pass` attached as SCM_RIGHTS when given. MSG_NOSIGNAL turns
/// a dead peer into EPIPE instead of killing the daemon with SIGPIPE.
pub fn send_with_fd(fd: RawFd, bytes: &[u8], pass: Option<RawFd>) -> io::Result<usize> {
    let iov = [IoSlice::new(bytes)];
    let rights = pass.map(|p| [p]);
    let one;
    let cmsgs: &[ControlMessage<'_>] = match &rights {
        Some(r) => {
            one = [ControlMessage::ScmRights(r)];
            &one
        }
        None => &[],
    };
    loop {
        match sendmsg::<()>(fd, &iov, cmsgs, MsgFlags::MSG_NOSIGNAL, None) {
            Ok(n) => return Ok(n),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}
