//! Change epochs: which jobs and machines changed, and when, for requests
//! that wait for a change (the v2 front-end's `?wait=true`).
//!
//! Every time the engine's changes are taken (after each request and each
//! tick, where the v1 front-end sends its notifications) the global epoch
//! goes up by one and each changed job and machine is stamped with it. A
//! waiter remembers the stamps it saw and sleeps on a condition variable
//! until the published epoch passes the one it read, so it costs nothing
//! while nothing happens and cannot miss a change made after it looked.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

/// Per-job and per-machine change stamps (kept behind the engine's lock).
#[derive(Debug, Default)]
pub(crate) struct Epochs {
    global: u64,
    jobs: HashMap<u64, u64>,
    machines: HashMap<String, u64>,
}

impl Epochs {
    /// Stamps a batch of changes; returns the new global epoch (unchanged
    /// if there were none).
    pub fn record(&mut self, jobs: &[u64], machines: &[String]) -> u64 {
        if jobs.is_empty() && machines.is_empty() {
            return self.global;
        }
        self.global += 1;
        for &id in jobs {
            self.jobs.insert(id, self.global);
        }
        for m in machines {
            self.machines.insert(m.clone(), self.global);
        }
        self.global
    }

    pub fn global(&self) -> u64 {
        self.global
    }

    /// When job `id` last changed (0: not since the server started).
    pub fn job(&self, id: u64) -> u64 {
        self.jobs.get(&id).copied().unwrap_or(0)
    }

    /// When machine `name` last changed (0: not since the server started).
    pub fn machine(&self, name: &str) -> u64 {
        self.machines.get(name).copied().unwrap_or(0)
    }

    /// Forgets jobs the engine no longer knows, once the table has grown
    /// past `limit`, so that it stays bounded however many jobs come and go.
    pub fn prune(&mut self, limit: usize, known: impl Fn(u64) -> bool) {
        if self.jobs.len() > limit {
            self.jobs.retain(|&id, _| known(id));
        }
    }
}

/// The published global epoch, for threads waiting outside the engine's
/// lock.
#[derive(Debug, Default)]
pub(crate) struct ChangeSignal {
    state: Mutex<(u64, bool)>,
    changed: Condvar,
}

fn lock(m: &Mutex<(u64, bool)>) -> MutexGuard<'_, (u64, bool)> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl ChangeSignal {
    /// Publishes `epoch` (never moving backwards) and wakes every waiter.
    pub fn publish(&self, epoch: u64) {
        let mut s = lock(&self.state);
        if epoch > s.0 {
            s.0 = epoch;
            drop(s);
            self.changed.notify_all();
        }
    }

    /// Wakes every waiter for good: the server is stopping.
    pub fn stop(&self) {
        lock(&self.state).1 = true;
        self.changed.notify_all();
    }

    /// Waits until an epoch after `seen` is published, the server stops, or
    /// `deadline` passes. Returns whether something newer was published.
    pub fn wait_past(&self, seen: u64, deadline: Instant) -> bool {
        let mut s = lock(&self.state);
        loop {
            if s.0 > seen {
                return true;
            }
            if s.1 {
                return false;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            s = self
                .changed
                .wait_timeout(s, left)
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::thread;
    use std::time::Duration;

    #[test]
    fn stamps() {
        let mut e = Epochs::default();
        assert_eq!(e.record(&[], &[]), 0);
        assert_eq!(e.record(&[1, 2], &["m".into()]), 1);
        assert_eq!(e.record(&[2], &[]), 2);
        assert_eq!((e.job(1), e.job(2), e.job(3)), (1, 2, 0));
        assert_eq!((e.machine("m"), e.machine("n")), (1, 0));
        e.prune(1, |id| id == 2);
        assert_eq!((e.job(1), e.job(2)), (0, 2));
    }

    #[test]
    fn waiters_wake_on_publish_and_stop_and_time_out() {
        let s = Arc::new(ChangeSignal::default());
        let far = Instant::now() + Duration::from_secs(60);
        let w = {
            let s = s.clone();
            thread::spawn(move || s.wait_past(0, far))
        };
        s.publish(1);
        assert!(w.join().unwrap_or(false));
        // Already past: returns at once, even with no time left.
        assert!(s.wait_past(0, Instant::now()));
        assert!(!s.wait_past(1, Instant::now()));
        let w = {
            let s = s.clone();
            thread::spawn(move || s.wait_past(1, far))
        };
        s.stop();
        assert!(!w.join().unwrap_or(true));
    }
}
