//! SIGINT, SIGTERM and SIGHUP as messages, for `alloc` and `serve`.
//!
//! A background thread receives the signals (through signal-hook, so the
//! process no longer dies of them) and passes each on a channel, noting
//! whether it was sent by a user (`kill`, `sigqueue`) rather than by the
//! terminal: only those are forwarded to a wrapped command, which shares
//! our process group and so already receives a Ctrl-C typed at the
//! terminal. It can also poke a [`spalloc::InterruptHandle`] so that a
//! blocking wait notices the signal at once.

use std::io;
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::SignalsInfo;
use signal_hook::iterator::exfiltrator::WithOrigin;
use signal_hook::low_level::siginfo::{Cause, Sent};
use spalloc::InterruptHandle;

/// One caught signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caught {
    /// The signal number.
    pub signal: i32,
    /// Whether a process sent it on purpose (and so a wrapped command did
    /// not receive it too).
    pub user_sent: bool,
}

impl Caught {
    /// The status line after `Job N: ` (SIGINT keeps the Python wording).
    pub fn status(self) -> &'static str {
        match self.signal {
            SIGINT => "Keyboard interrupt.",
            SIGHUP => "Hangup (SIGHUP).",
            _ => "Terminated (SIGTERM).",
        }
    }

    /// The reason recorded when the job is destroyed because of it.
    pub fn reason(self) -> &'static str {
        match self.signal {
            SIGINT => "Keyboard interrupt (SIGINT).",
            SIGHUP => "Hangup (SIGHUP).",
            _ => "Terminated (SIGTERM).",
        }
    }

    /// Whether this is Ctrl-C rather than a request to terminate.
    pub fn is_interrupt(self) -> bool {
        self.signal == SIGINT
    }
}

/// The stream of caught signals.
#[derive(Debug)]
pub struct Signals {
    rx: Receiver<Caught>,
    waker: Arc<Mutex<Option<InterruptHandle>>>,
}

impl Signals {
    /// Starts catching SIGINT, SIGTERM and SIGHUP.
    pub fn catch() -> io::Result<Signals> {
        let mut info = SignalsInfo::<WithOrigin>::new([SIGINT, SIGTERM, SIGHUP])?;
        let (tx, rx) = mpsc::channel();
        let waker: Arc<Mutex<Option<InterruptHandle>>> = Arc::new(Mutex::new(None));
        let wake = Arc::clone(&waker);
        thread::Builder::new()
            .name("spalloc-signals".into())
            .spawn(move || {
                for origin in info.forever() {
                    let user_sent = matches!(origin.cause, Cause::Sent(Sent::User | Sent::Queue));
                    if let Some(handle) =
                        wake.lock().unwrap_or_else(PoisonError::into_inner).as_ref()
                    {
                        handle.interrupt();
                    }
                    if tx
                        .send(Caught {
                            signal: origin.signal,
                            user_sent,
                        })
                        .is_err()
                    {
                        break;
                    }
                }
            })?;
        Ok(Signals { rx, waker })
    }

    /// Makes every later signal also interrupt `handle`'s job's waits.
    pub fn wake(&self, handle: InterruptHandle) {
        *self.waker.lock().unwrap_or_else(PoisonError::into_inner) = Some(handle);
    }

    /// A signal that has already arrived, if any.
    pub fn pending(&self) -> Option<Caught> {
        self.rx.try_recv().ok()
    }

    /// Waits up to `timeout` for a signal.
    pub fn wait(&self, timeout: Duration) -> Option<Caught> {
        self.rx.recv_timeout(timeout).ok()
    }
}

/// Sends `signal` to process `pid`; errors (e.g. it has exited) are
/// ignored, as there is nothing more to do.
pub fn send(pid: u32, signal: i32) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: kill(2) takes plain integers and has no memory effects; the
    // pid is our own child's, which we have not yet reaped.
    unsafe {
        libc::kill(pid, signal);
    }
}

/// SIGKILL.
pub const KILL: i32 = libc::SIGKILL;
