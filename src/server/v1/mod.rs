//! The v1 front-end: one request line in, at most one reply line out, in
//! the dialect of the server being imitated.
//!
//! Each dialect checks the shape of a request, binds its arguments the way
//! that server does (as a Python function call, or by the Java service's
//! hand-written lookups), calls the controller, and turns its typed answer
//! into a reply: `null` or an exception for "not found", Python's or
//! Jackson's JSON. It also decides which malformed lines end the
//! connection, and writes change notifications.

mod java;
pub(crate) mod json;
mod python;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use super::Dialect;
use super::state::{Changes, Controller};

/// What one connection asked to be told about. The servers differ in how
/// the calls change it (see [`Subscriptions::watch`]) and in what they
/// send (see [`Broadcast`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Watch<T: Ord> {
    all: bool,
    only: BTreeSet<T>,
}

impl<T: Ord> Default for Watch<T> {
    fn default() -> Watch<T> {
        Watch {
            all: false,
            only: BTreeSet::new(),
        }
    }
}

impl<T: Ord + Clone> Watch<T> {
    /// `notify_*`: `None` is everything.
    fn add(&mut self, dialect: Dialect, item: Option<T>) {
        match (dialect, item) {
            (Dialect::Python, None) => {
                self.all = true;
                self.only.clear();
            }
            (Dialect::Java, None) => self.all = true,
            // Watching everything already covers it (Python).
            (Dialect::Python, Some(_)) if self.all => {}
            (_, Some(t)) => {
                self.only.insert(t);
            }
        }
    }

    /// `no_notify_*`: `None` is everything.
    fn remove(&mut self, dialect: Dialect, item: Option<T>) {
        match (dialect, item) {
            (Dialect::Python, None) => {
                self.all = false;
                self.only.clear();
            }
            (Dialect::Java, None) => self.all = false,
            (_, Some(t)) => {
                self.only.remove(&t);
            }
        }
    }

    fn is_empty(&self) -> bool {
        !self.all && self.only.is_empty()
    }
}

/// A connection's notification subscriptions.
#[derive(Debug, Clone, Default)]
pub(crate) struct Subscriptions {
    pub jobs: Watch<u64>,
    pub machines: Watch<String>,
}

/// Everything a command needs besides its arguments.
pub(crate) struct Context<'a> {
    pub controller: &'a mut Controller,
    pub subscriptions: &'a mut Subscriptions,
    pub version: &'a str,
    /// The caller's IP address, recorded as `keepalivehost`.
    pub host: &'a str,
    pub now: Instant,
}

/// What became of one request line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Send this line (with its line end).
    Reply(String),
    /// Say nothing (the Python server skips empty lines).
    Skip,
    /// Say nothing and close the connection, as the real server does with
    /// this line.
    Close,
}

/// Handles one request line (without its line end).
pub(crate) fn handle_line(dialect: Dialect, ctx: &mut Context<'_>, line: &[u8]) -> Outcome {
    match dialect {
        Dialect::Python => python::handle_line(ctx, line),
        Dialect::Java => java::handle_line(ctx, line),
    }
}

/// The reply to a line longer than the limit (which neither real server
/// has): an exception, so that replies stay paired with requests.
pub(crate) fn line_too_long(dialect: Dialect, limit: usize) -> String {
    exception(
        dialect,
        &format!("line too long: requests may be at most {limit} bytes; the line was discarded"),
    )
}

/// The line sent to a client turned away for want of room.
pub(crate) fn too_many_connections(dialect: Dialect) -> String {
    exception(dialect, "too many connections; try again later")
}

fn exception(dialect: Dialect, message: &str) -> String {
    let v = serde_json::json!({ "exception": message });
    match dialect {
        Dialect::Python => json::python_line(&v),
        Dialect::Java => json::java_line(&v),
    }
}

/// One round of change notifications, encoded once for everyone who
/// watches everything.
pub(crate) struct Broadcast<'a> {
    dialect: Dialect,
    changes: &'a Changes,
    all_jobs: Option<Arc<String>>,
    all_machines: Option<Arc<String>>,
}

impl<'a> Broadcast<'a> {
    pub fn new(dialect: Dialect, changes: &'a Changes) -> Broadcast<'a> {
        // The Java service's "all jobs" notifier watches the jobs that were
        // live when it started waiting: it never reports a job's creation
        // (nor anything else that happened to it in the same round).
        let jobs: Vec<u64> = match dialect {
            Dialect::Python => changes.jobs.clone(),
            Dialect::Java => changes
                .jobs
                .iter()
                .copied()
                .filter(|id| !changes.created.contains(id))
                .collect(),
        };
        Broadcast {
            dialect,
            changes,
            all_jobs: (!jobs.is_empty()).then(|| Arc::new(jobs_changed(dialect, &jobs))),
            all_machines: (!changes.machines.is_empty())
                .then(|| Arc::new(machines_changed(dialect, &changes.machines))),
        }
    }

    /// The lines for a connection with these subscriptions, in order.
    pub fn lines_for(&self, subs: &Subscriptions) -> Vec<Arc<String>> {
        let mut out = Vec::new();
        if !subs.jobs.is_empty() {
            self.add(
                &mut out,
                &subs.jobs,
                &self.changes.jobs,
                &self.all_jobs,
                jobs_changed,
            );
        }
        if !subs.machines.is_empty() {
            self.add(
                &mut out,
                &subs.machines,
                &self.changes.machines,
                &self.all_machines,
                machines_changed,
            );
        }
        out
    }

    fn add<T: Ord + Clone>(
        &self,
        out: &mut Vec<Arc<String>>,
        watch: &Watch<T>,
        changed: &[T],
        all: &Option<Arc<String>>,
        encode: impl Fn(Dialect, &[T]) -> String,
    ) {
        if watch.all
            && let Some(line) = all
        {
            out.push(line.clone());
        }
        let mine = changed.iter().filter(|c| watch.only.contains(c));
        match self.dialect {
            // One message with every watched change (none if everything
            // is watched: the set is then empty).
            Dialect::Python => {
                let mine: Vec<T> = mine.cloned().collect();
                if !mine.is_empty() {
                    out.push(Arc::new(encode(self.dialect, &mine)));
                }
            }
            // A notifier per watched key, each sending its own message,
            // even if the "all" notifier reported the same change.
            Dialect::Java => {
                for item in mine {
                    out.push(Arc::new(encode(self.dialect, std::slice::from_ref(item))));
                }
            }
        }
    }
}

fn jobs_changed(dialect: Dialect, ids: &[u64]) -> String {
    let v = serde_json::json!({ "jobs_changed": ids });
    match dialect {
        Dialect::Python => json::python_line(&v),
        Dialect::Java => json::java_line(&v),
    }
}

fn machines_changed(dialect: Dialect, names: &[String]) -> String {
    let v = serde_json::json!({ "machines_changed": names });
    match dialect {
        Dialect::Python => json::python_line(&v),
        Dialect::Java => json::java_line(&v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_watches() {
        let d = Dialect::Python;
        let mut w: Watch<u64> = Watch::default();
        w.add(d, Some(3));
        w.add(d, Some(5));
        assert_eq!(w.only, BTreeSet::from([3, 5]));
        w.remove(d, Some(3));
        assert_eq!(w.only, BTreeSet::from([5]));
        w.add(d, None);
        w.add(d, Some(9));
        assert!(w.all && w.only.is_empty());
        // Removing one id while watching everything does nothing.
        w.remove(d, Some(1));
        assert!(w.all);
        w.remove(d, None);
        assert!(w.is_empty());
    }

    #[test]
    fn java_watches_are_separate_keys() {
        let d = Dialect::Java;
        let mut w: Watch<u64> = Watch::default();
        w.add(d, None);
        w.add(d, Some(9));
        assert!(w.all && w.only.contains(&9));
        w.remove(d, None);
        assert!(!w.all && w.only.contains(&9));
        w.remove(d, Some(9));
        assert!(w.is_empty());
    }

    #[test]
    fn broadcasts_in_each_dialect() {
        let changes = Changes {
            jobs: vec![1, 2, 3],
            machines: vec!["m".into()],
            created: BTreeSet::from([3]),
        };
        let mut subs = Subscriptions::default();
        subs.jobs.add(Dialect::Java, None);
        subs.jobs.add(Dialect::Java, Some(2));
        subs.jobs.add(Dialect::Java, Some(3));
        subs.machines.add(Dialect::Java, Some("m".into()));
        let text = |lines: Vec<Arc<String>>| -> Vec<String> {
            lines.iter().map(|l| l.to_string()).collect()
        };
        assert_eq!(
            text(Broadcast::new(Dialect::Java, &changes).lines_for(&subs)),
            [
                "{\"jobs_changed\":[1,2]}\r\n",
                "{\"jobs_changed\":[2]}\r\n",
                "{\"jobs_changed\":[3]}\r\n",
                "{\"machines_changed\":[\"m\"]}\r\n",
            ]
        );
        let mut subs = Subscriptions::default();
        subs.jobs.add(Dialect::Python, Some(2));
        subs.jobs.add(Dialect::Python, Some(3));
        subs.machines.add(Dialect::Python, None);
        assert_eq!(
            text(Broadcast::new(Dialect::Python, &changes).lines_for(&subs)),
            [
                "{\"jobs_changed\": [2, 3]}\n",
                "{\"machines_changed\": [\"m\"]}\n"
            ]
        );
    }
}
