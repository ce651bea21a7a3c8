//! [`InterruptHandle`]: cutting a blocking call short from another thread.
//!
//! Interrupting is event-driven rather than polled: whatever may block
//! registers a way to wake it (shutting its socket down, or telling a
//! thread waiting for a connection to give up), and
//! [`InterruptHandle::interrupt`] runs every registered waker at once. The
//! blocked call then fails, sees the interruption pending, and returns
//! [`Error::Interrupted`] instead of its own error. A pause waits on a
//! condition variable that the interruption signals.
//!
//! A connection's socket is registered for as long as the connection
//! lives, but armed only while a call is in progress on it: an
//! interruption leaves an idle connection alone (the next call finds the
//! interruption pending instead), so that, for example, the connection a
//! job was waiting on can still be used to destroy it.

use std::fmt;
use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::Duration;

use crate::error::{Error, Result};

/// Cuts short blocking calls from another thread, for example one that
/// handles Ctrl-C.
///
/// Give it to a [`Job`](crate::Job) through
/// [`JobOptions::interrupt`](crate::JobOptions::interrupt) (or take the
/// job's own with [`Job::interrupt_handle`](crate::Job::interrupt_handle)),
/// or to a [`ProtocolClient`](crate::ProtocolClient) with
/// [`connect_interruptible`](crate::ProtocolClient::connect_interruptible).
/// After [`interrupt`](Self::interrupt), the blocking call in progress —
/// connecting, waiting for a reply, waiting for the job to change, pausing
/// before a reconnection — returns [`Error::Interrupted`] at once (or, if
/// none is in progress, the next one does); the request is then used up.
/// A connection whose call was interrupted is closed, and a `Job` opens a
/// new one when it next needs it.
///
/// # Example
/// ```no_run
/// # use spalloc::{Job, JobOptions, JobRequest};
/// let mut job = Job::create(JobRequest::AnyBoard, &JobOptions::load()?)?;
/// let handle = job.interrupt_handle();
/// std::thread::spawn(move || {
///     std::thread::sleep(std::time::Duration::from_secs(60));
///     handle.interrupt(); // give up waiting after a minute
/// });
/// match job.wait_until_ready(None) {
///     Err(spalloc::Error::Interrupted) => println!("gave up"),
///     other => other?,
/// }
/// # Ok::<(), spalloc::Error>(())
/// ```
#[derive(Clone, Default)]
pub struct InterruptHandle(Arc<Shared>);

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    /// Signalled on every interruption and every change of the wakers.
    changed: Condvar,
}

#[derive(Default)]
struct State {
    /// An interruption requested and not yet used up.
    pending: bool,
    /// Interruptions so far, so that a waker given a grace period can tell
    /// a second one from the first.
    count: u64,
    next_id: u64,
    wakers: Vec<(u64, Waker)>,
}

/// What an interruption does to one blocked call.
pub(crate) enum Waker {
    /// Shuts the socket down while a call is in progress on it (`armed`),
    /// which makes a blocked read or write return. With a grace period,
    /// only once that has passed with the call still in progress, or at
    /// once on a second interruption.
    Socket {
        stream: TcpStream,
        grace: Option<Duration>,
        armed: bool,
    },
    /// Tells a thread waiting for something else (a connection being made
    /// on a helper thread) to stop waiting.
    Notify(Box<dyn Fn() + Send>),
}

/// A registered [`Waker`], removed when this is dropped.
pub(crate) struct Registration {
    shared: Arc<Shared>,
    id: u64,
}

impl InterruptHandle {
    /// A handle that nothing has been interrupted through yet.
    pub fn new() -> InterruptHandle {
        InterruptHandle::default()
    }

    /// Makes the blocking call in progress, or the next one, return
    /// [`Error::Interrupted`].
    pub fn interrupt(&self) {
        let mut state = self.lock();
        let again = state.pending;
        state.pending = true;
        state.count += 1;
        let count = state.count;
        for (id, waker) in &state.wakers {
            match waker {
                Waker::Socket { armed: false, .. } => {}
                Waker::Socket {
                    stream,
                    grace: Some(grace),
                    ..
                } if !again => self.shut_after(stream, *id, *grace, count),
                Waker::Socket { stream, .. } => {
                    let _ = stream.shutdown(Shutdown::Both);
                }
                Waker::Notify(notify) => notify(),
            }
        }
        drop(state);
        self.0.changed.notify_all();
    }

    /// Forgets an interruption that nothing has used up yet, for example
    /// once the caller has acted on the signal that caused it by other
    /// means.
    pub fn clear(&self) {
        self.lock().pending = false;
    }

    /// Whether an interruption is pending.
    pub fn is_interrupted(&self) -> bool {
        self.lock().pending
    }

    /// Uses up a pending interruption: `Err(Interrupted)` if there was one.
    pub(crate) fn take(&self) -> Result<()> {
        let mut state = self.lock();
        if state.pending {
            state.pending = false;
            Err(Error::Interrupted)
        } else {
            Ok(())
        }
    }

    /// Registers a waker, for as long as the registration is kept.
    pub(crate) fn register(&self, waker: Waker) -> Registration {
        let mut state = self.lock();
        let id = state.next_id;
        state.next_id += 1;
        state.wakers.push((id, waker));
        Registration {
            shared: Arc::clone(&self.0),
            id,
        }
    }

    /// [`take`](Self::take), and if nothing was pending, [`register`](Self::register),
    /// as one step, so that an interruption cannot fall between the two.
    pub(crate) fn take_or_register(&self, waker: Waker) -> Result<Registration> {
        let mut state = self.lock();
        if state.pending {
            state.pending = false;
            return Err(Error::Interrupted);
        }
        let id = state.next_id;
        state.next_id += 1;
        state.wakers.push((id, waker));
        Ok(Registration {
            shared: Arc::clone(&self.0),
            id,
        })
    }

    /// Sleeps for `how_long`, unless interrupted first (which is used up).
    pub(crate) fn sleep(&self, how_long: Duration) -> Result<()> {
        let state = self.lock();
        let (mut state, _) = self
            .0
            .changed
            .wait_timeout_while(state, how_long, |s| !s.pending)
            .unwrap_or_else(PoisonError::into_inner);
        if state.pending {
            state.pending = false;
            Err(Error::Interrupted)
        } else {
            Ok(())
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.0.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Shuts `stream` down after `grace`, unless its registration goes or
    /// another interruption comes first (which shuts it down itself).
    fn shut_after(&self, stream: &TcpStream, id: u64, grace: Duration, count: u64) {
        let shared = Arc::clone(&self.0);
        let spawned = thread::Builder::new()
            .name("spalloc-interrupt-grace".into())
            .spawn(move || {
                let state = shared.state.lock().unwrap_or_else(PoisonError::into_inner);
                let busy = |s: &State| {
                    s.wakers
                        .iter()
                        .any(|(i, w)| *i == id && matches!(w, Waker::Socket { armed: true, .. }))
                };
                let (state, _) = shared
                    .changed
                    .wait_timeout_while(state, grace, |s| s.count == count && busy(s))
                    .unwrap_or_else(PoisonError::into_inner);
                if busy(&state)
                    && let Some((_, Waker::Socket { stream, .. })) =
                        state.wakers.iter().find(|(i, _)| *i == id)
                {
                    let _ = stream.shutdown(Shutdown::Both);
                }
            });
        if spawned.is_err() {
            // No thread for the grace period: interrupt at once rather
            // than not at all.
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

impl PartialEq for InterruptHandle {
    /// Two handles are equal when they interrupt the same calls.
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl fmt::Debug for InterruptHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("InterruptHandle")
            .field("pending", &state.pending)
            .field("wakers", &state.wakers.len())
            .finish()
    }
}

impl Registration {
    /// Marks a call as in progress on a registered socket, so that an
    /// interruption shuts it down; or, if one is already pending, uses it
    /// up and returns `Err(Interrupted)` instead.
    pub(crate) fn arm(&self) -> Result<()> {
        self.update(|state| {
            if state.pending {
                state.pending = false;
                return Err(Error::Interrupted);
            }
            Ok(true)
        })
    }

    /// Marks the call as over.
    pub(crate) fn disarm(&self) {
        let _ = self.update(|_| Ok(false));
    }

    /// Sets the grace period of a registered socket.
    pub(crate) fn set_grace(&self, grace: Option<Duration>) {
        let mut state = self.lock();
        for (i, waker) in &mut state.wakers {
            if let (true, Waker::Socket { grace: g, .. }) = (*i == self.id, waker) {
                *g = grace;
            }
        }
    }

    fn update(&self, f: impl FnOnce(&mut State) -> Result<bool>) -> Result<()> {
        let mut state = self.lock();
        let armed = f(&mut state)?;
        for (i, waker) in &mut state.wakers {
            if let (true, Waker::Socket { armed: a, .. }) = (*i == self.id, waker) {
                *a = armed;
            }
        }
        drop(state);
        self.shared.changed.notify_all();
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut state = self
            .shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        state.wakers.retain(|(i, _)| *i != self.id);
        drop(state);
        self.shared.changed.notify_all();
    }
}

impl fmt::Debug for Registration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registration")
            .field("id", &self.id)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::TcpListener;
    use std::time::Instant;

    fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let a = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (b, _) = listener.accept().expect("accept");
        (a, b)
    }

    #[test]
    fn a_pending_interruption_is_used_up_once() {
        let h = InterruptHandle::new();
        assert!(h.take().is_ok());
        h.interrupt();
        assert!(h.is_interrupted());
        assert!(matches!(h.take(), Err(Error::Interrupted)));
        assert!(h.take().is_ok());
        h.interrupt();
        h.clear();
        assert!(h.take().is_ok());
        assert!(h.take_or_register(Waker::Notify(Box::new(|| {}))).is_ok());
        h.interrupt();
        assert!(h.take_or_register(Waker::Notify(Box::new(|| {}))).is_err());
    }

    #[test]
    fn interrupting_unblocks_a_read_at_once() {
        let h = InterruptHandle::new();
        let (mut a, mut b) = pair();
        let r = h.register(Waker::Socket {
            stream: a.try_clone().expect("clone"),
            grace: None,
            armed: false,
        });
        // Idle: an interruption leaves the socket alone and stays pending.
        h.interrupt();
        std::io::Write::write_all(&mut b, b"x").expect("write");
        let mut buf = [0u8; 1];
        assert_eq!(a.read(&mut buf).expect("read"), 1);
        assert!(matches!(r.arm(), Err(Error::Interrupted)));
        // In a call: it shuts the socket down.
        r.arm().expect("armed");
        let h2 = h.clone();
        let t = thread::spawn(move || h2.interrupt());
        // Blocks until the interruption shuts the socket down.
        assert_eq!(a.read(&mut buf).expect("read"), 0);
        t.join().expect("join");
        assert!(h.is_interrupted());
    }

    #[test]
    fn a_grace_period_lets_the_registration_go_first() {
        let h = InterruptHandle::new();
        let (mut a, mut b) = pair();
        let r = h.register(Waker::Socket {
            stream: a.try_clone().expect("clone"),
            grace: Some(Duration::from_secs(30)),
            armed: false,
        });
        r.arm().expect("armed");
        h.interrupt();
        std::io::Write::write_all(&mut b, b"x").expect("write");
        let mut buf = [0u8; 1];
        assert_eq!(a.read(&mut buf).expect("read"), 1);
        // Ending the call ends the grace period's thread early, and the
        // socket stays usable.
        r.disarm();
        drop(r);
        std::io::Write::write_all(&mut b, b"y").expect("write");
        assert_eq!(a.read(&mut buf).expect("read"), 1);
    }

    #[test]
    fn a_second_interruption_ends_the_grace_period() {
        let h = InterruptHandle::new();
        let (mut a, _b) = pair();
        let r = h.register(Waker::Socket {
            stream: a.try_clone().expect("clone"),
            grace: Some(Duration::from_secs(30)),
            armed: false,
        });
        r.arm().expect("armed");
        h.interrupt();
        h.interrupt();
        let mut buf = [0u8; 1];
        assert_eq!(a.read(&mut buf).expect("read"), 0);
    }

    #[test]
    fn sleeping_ends_on_interruption() {
        let h = InterruptHandle::new();
        assert!(h.sleep(Duration::from_millis(1)).is_ok());
        let h2 = h.clone();
        let t = thread::spawn(move || h2.interrupt());
        let started = Instant::now();
        assert!(matches!(h.sleep(Duration::MAX), Err(Error::Interrupted)));
        assert!(started.elapsed() < Duration::from_secs(60));
        t.join().expect("join");
        assert!(!h.is_interrupted());
    }
}
