//! The daemon's pump for a worker's pipe, read through its raw fd.
//!
//! A pipe that stays registered with the reactor wakes the daemon at every
//! `write(2)` the app makes — even while the pump deliberately pauses to let
//! a burst gather — and at 100k lines/s those wake-ups were most of the
//! daemon's CPU. So the fd is registered only while the pipe is quiet; once
//! data flows the pump drains it on a timer, unregistered, and registers
//! again after a pause that brought nothing.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::unistd::read;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::pump::{
    Pump, PumpCarry, PumpConfig, COALESCE_DELAY, FIRST_READ_BUF, PARTIAL_IDLE, READ_BUF,
};

/// What one drain of the pipe found.
enum Drained {
    Bytes(usize),
    Nothing,
    Eof,
}

/// How much of a worker pipe (1 MiB) may fill during a pause. Node writes
/// to a pipe synchronously, so a full pipe stalls the app: the pause is cut
/// short for an app that writes faster than this per `COALESCE_DELAY`.
const PAUSE_FILL: f64 = (512 << 10) as f64;
const MIN_PAUSE: Duration = Duration::from_millis(1);

/// A pump's pipe, handed back still open (`rpm2 update`).
#[derive(Debug)]
pub struct DetachedPump {
    pub fd: OwnedFd,
    pub carry: PumpCarry,
}

/// Stops a pump between two reads and hands its pipe back.
pub struct PumpControl {
    detach: Option<oneshot::Sender<oneshot::Sender<DetachedPump>>>,
    task: JoinHandle<()>,
}

impl PumpControl {
    /// Ask for the pipe; the answer comes once the pump is between reads
    /// (what is in the pipe stays there). Fails if the pipe already closed.
    pub fn detach(&mut self) -> Option<oneshot::Receiver<DetachedPump>> {
        let (tx, rx) = oneshot::channel();
        self.detach.take()?.send(tx).ok()?;
        Some(rx)
    }

    /// Wait for the pump to end (its pipe closed, or detached).
    pub async fn finished(self) -> Result<(), tokio::task::JoinError> {
        self.task.await
    }
}

/// Like [`crate::spawn_pump`], for a non-blocking pipe fd (the read end of
/// a worker's stdout or stderr). Ends when the pipe closes.
pub fn spawn_fd_pump(fd: OwnedFd, cfg: PumpConfig) -> PumpControl {
    spawn_fd_pump_resumed(fd, cfg, PumpCarry::default())
}

/// [`spawn_fd_pump`] for a pipe another image detached, with its carry.
pub fn spawn_fd_pump_resumed(fd: OwnedFd, cfg: PumpConfig, carry: PumpCarry) -> PumpControl {
    let (detach_tx, mut detach_rx) = oneshot::channel::<oneshot::Sender<DetachedPump>>();
    let task = tokio::spawn(async move {
        let mut pump = Pump::new(cfg);
        pump.resume(carry);
        let mut buf = vec![0u8; FIRST_READ_BUF];
        let mut fd = fd;
        // Until the control is dropped without asking (the usual end).
        let mut detachable = true;
        // Process pipes handed over by tokio are blocking again; a blocking
        // read would stall the whole daemon.
        if let Err(e) = set_nonblocking(&fd) {
            tracing::warn!(error = %e, "log pipe: cannot make it non-blocking");
            return;
        }
        let hand_back = |to: oneshot::Sender<DetachedPump>, fd: OwnedFd, pump: &mut Pump| {
            let _ = to.send(DetachedPump {
                fd,
                carry: pump.take_carry(),
            });
        };
        loop {
            // Quiet: let the reactor tell us when data comes.
            // SAFETY: `fd` is an open pipe we own; the AsyncFd owns it until
            // `into_inner` hands it back.
            let Ok(afd) = (unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) })
            else {
                break;
            };
            let waited = tokio::select! {
                to = &mut detach_rx, if detachable => {
                    fd = afd.into_inner();
                    match to {
                        Ok(to) => {
                            hand_back(to, fd, &mut pump);
                            return;
                        }
                        // The control was dropped (its run was reaped): no
                        // detach will come, and what the pipe holds is
                        // still to be read, up to its EOF.
                        Err(_) => {
                            detachable = false;
                            continue;
                        }
                    }
                }
                r = async {
                    if pump.has_partial() {
                        tokio::time::timeout(PARTIAL_IDLE, afd.readable())
                            .await
                            .map(|r| r.map(drop))
                    } else {
                        Ok(afd.readable().await.map(drop))
                    }
                } => r,
            };
            fd = afd.into_inner();
            match waited {
                Err(_elapsed) => {
                    pump.flush_partial(false);
                    continue;
                }
                Ok(Err(_)) => break,
                Ok(Ok(())) => {}
            }
            // Flowing: drain, pause, drain again until a pause brings nothing.
            let mut last_drain = Instant::now();
            loop {
                match drain(&fd, &mut buf, &mut pump) {
                    Drained::Eof => {
                        pump.finish();
                        return;
                    }
                    Drained::Nothing => break,
                    Drained::Bytes(n) => {
                        // Pause as long as the pipe can absorb at the rate
                        // the app just wrote, up to COALESCE_DELAY.
                        let secs = last_drain.elapsed().as_secs_f64().max(1e-4);
                        #[expect(clippy::cast_precision_loss, reason = "a byte count")]
                        let rate = n as f64 / secs;
                        let pause = Duration::from_secs_f64(PAUSE_FILL / rate)
                            .clamp(MIN_PAUSE, COALESCE_DELAY);
                        last_drain = Instant::now();
                        tokio::select! {
                            to = &mut detach_rx, if detachable => {
                                match to {
                                    Ok(to) => {
                                        hand_back(to, fd, &mut pump);
                                        return;
                                    }
                                    Err(_) => detachable = false,
                                }
                            }
                            () = tokio::time::sleep(pause) => {}
                        }
                    }
                }
            }
        }
        pump.finish();
    });
    PumpControl {
        detach: Some(detach_tx),
        task,
    }
}

fn set_nonblocking(fd: &OwnedFd) -> io::Result<()> {
    let flags = OFlag::from_bits_retain(fcntl(fd.as_raw_fd(), FcntlArg::F_GETFL)?);
    fcntl(fd.as_raw_fd(), FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
}

/// Most bytes one drain takes before it yields: a writer that keeps the
/// pipe full faster than we format would otherwise keep this loop going
/// forever and starve every other task of the (single-threaded) daemon.
const MAX_DRAIN: usize = 1 << 20;

/// Read until the pipe is empty (or closed, or `MAX_DRAIN` bytes were
/// taken), growing the buffer when a read fills it.
fn drain(fd: &OwnedFd, buf: &mut Vec<u8>, pump: &mut Pump) -> Drained {
    let mut got = 0;
    loop {
        // nix's read is the bare read(2): no extra syscall or allocation per read.
        match read(fd.as_raw_fd(), buf) {
            Ok(0) => return Drained::Eof,
            Ok(n) => {
                pump.chunk(&buf[..n]);
                got += n;
                // A short read emptied the pipe: no read just to hear EAGAIN.
                if n < buf.len() || got >= MAX_DRAIN {
                    return Drained::Bytes(got);
                }
                if buf.len() < READ_BUF {
                    buf.resize(buf.len() * 2, 0);
                }
            }
            Err(Errno::EINTR) => {}
            Err(Errno::EAGAIN) => {
                return if got > 0 {
                    Drained::Bytes(got)
                } else {
                    Drained::Nothing
                };
            }
            Err(_) => return Drained::Eof,
        }
    }
}
