//! SIGINT, SIGTERM and SIGHUP as messages, for `alloc` and `serve`.
//!
//! A background thread receives the signals (through signal-hook, so the
//! process no longer dies of them) and passes each on a channel, noting
//! whether it was sent by a user (`kill`, `sigqueue`) rather than by the
//! terminal: only those are forwarded to a wrapped command, which shares
//! our process group and so already receives a Ctrl-C typed at the
//! terminal. Each signal first interrupts a [`spalloc::InterruptHandle`],
//! so that a blocking call (connecting, waiting for a reply or for the job
//! to change) is cut short at once, whatever the server is doing.

use std::cell::Cell;
use std::io;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread;
use std::time::{Duration, Instant};

use rustix::io::Errno;
use rustix::process::{Pid, Signal, WaitId, WaitIdOptions, kill_process, waitid};
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

/// Something the main thread waits for: a signal, or news from a helper
/// thread (a line typed at the prompt, the wrapped command ending), all on
/// one channel so that one blocking wait covers them all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A signal arrived.
    Signal(Caught),
    /// The prompt's reader finished: `true` for a line, `false` for the
    /// end of input (or an error).
    Input(bool),
    /// The wrapped command has ended (it is not yet reaped).
    Exited,
}

/// The stream of caught signals, and of the other [`Event`]s.
#[derive(Debug)]
pub struct Signals {
    tx: Sender<Event>,
    rx: Receiver<Event>,
    /// A signal already taken off the channel by [`Signals::raised`].
    seen: Cell<Option<Caught>>,
}

impl Signals {
    /// Starts catching `which` (instead of dying of them). Each signal
    /// first interrupts `wake`, cutting short whatever blocking call is in
    /// progress, and is then passed on the channel, so that whoever sees
    /// the interruption also finds the signal there.
    pub fn catch(which: &[i32], wake: InterruptHandle) -> io::Result<Signals> {
        let mut info = SignalsInfo::<WithOrigin>::new(which)?;
        let (tx, rx) = mpsc::channel();
        let events = tx.clone();
        thread::Builder::new()
            .name("spalloc-signals".into())
            .spawn(move || {
                for origin in info.forever() {
                    let user_sent = matches!(origin.cause, Cause::Sent(Sent::User | Sent::Queue));
                    log::debug!("caught signal {}", origin.signal);
                    wake.interrupt();
                    let caught = Caught {
                        signal: origin.signal,
                        user_sent,
                    };
                    if events.send(Event::Signal(caught)).is_err() {
                        break;
                    }
                }
            })?;
        Ok(Signals {
            tx,
            rx,
            seen: Cell::new(None),
        })
    }

    /// SIGINT, SIGTERM and SIGHUP, as `alloc` and `serve` handle them.
    pub fn catch_all(wake: InterruptHandle) -> io::Result<Signals> {
        Signals::catch(&[SIGINT, SIGTERM, SIGHUP], wake)
    }

    /// Where helper threads send their [`Event`]s.
    pub fn sender(&self) -> Sender<Event> {
        self.tx.clone()
    }

    /// The next event, waiting up to `timeout` (`None`: for ever).
    pub fn next(&self, timeout: Option<Duration>) -> Option<Event> {
        if let Some(sig) = self.seen.take() {
            return Some(Event::Signal(sig));
        }
        match timeout {
            Some(t) => self.rx.recv_timeout(t).ok(),
            None => self.rx.recv().ok(),
        }
    }

    /// A signal that has already arrived, if any. Other events are
    /// dropped: nothing waits for them any more.
    pub fn pending(&self) -> Option<Caught> {
        if let Some(sig) = self.seen.take() {
            return Some(sig);
        }
        while let Ok(event) = self.rx.try_recv() {
            if let Event::Signal(sig) = event {
                return Some(sig);
            }
        }
        None
    }

    /// Waits up to `timeout` for a signal, dropping other events.
    pub fn wait(&self, timeout: Duration) -> Option<Caught> {
        let end = Instant::now().checked_add(timeout);
        loop {
            let left = end.map(|e| e.saturating_duration_since(Instant::now()));
            match self.next(left) {
                Some(Event::Signal(sig)) => return Some(sig),
                Some(_) => {}
                None => return None,
            }
        }
    }

    /// Whether a signal has arrived, without using it up.
    pub fn raised(&self) -> bool {
        let seen = self.pending();
        self.seen.set(seen);
        seen.is_some()
    }
}

/// Sends `signal` to process `pid`; errors (e.g. it has exited) are
/// ignored, as there is nothing more to do.
pub fn send(pid: u32, signal: i32) {
    let pid = i32::try_from(pid).ok().and_then(Pid::from_raw);
    if let (Some(pid), Some(signal)) = (pid, Signal::from_named_raw(signal)) {
        let _ = kill_process(pid, signal);
    }
}

/// SIGKILL.
pub const KILL: i32 = signal_hook::consts::SIGKILL;

/// Waits until process `pid`, our child, has ended, without reaping it
/// (so that its pid cannot be reused while we may still signal it), then
/// sends [`Event::Exited`]. Runs on a thread of its own.
pub fn watch_child(pid: u32, events: Sender<Event>) -> io::Result<()> {
    let pid = i32::try_from(pid)
        .ok()
        .and_then(Pid::from_raw)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a process id"))?;
    thread::Builder::new()
        .name("spalloc-child".into())
        .spawn(move || {
            // WNOWAIT leaves the child to be reaped by `Child::wait` on the
            // main thread, after the last signal is sent.
            while let Err(Errno::INTR) = waitid(
                WaitId::Pid(pid),
                WaitIdOptions::EXITED | WaitIdOptions::NOWAIT,
            ) {}
            let _ = events.send(Event::Exited);
        })?;
    Ok(())
}
