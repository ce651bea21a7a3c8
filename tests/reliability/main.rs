//! Reliability: the promise that a job stays yours while your program runs,
//! is released however it ends, and that nothing a network or server does
//! can crash or hang the client.
//!
//! * `durations`: arbitrary seconds through every flag, config value and
//!   library argument that takes a length of time.
//! * `expiry`: a `Job`'s keepalives against a control job's expiry, and a
//!   closed job left to expire, in each server dialect.
//! * `matrix`: every fault of the [`Proxy`](crate::support::proxy::Proxy)
//!   at every phase of a job's life, for the library `Job` and for
//!   `spalloc alloc`, over v1 and over v2 (plain HTTP).
//! * `restart`: the server restarts (with its state file) under held jobs.
//! * `holders`: a blocked main thread, panics, signals and SIGKILL.
//! * `hostile`: clients that abuse the virtual server.
//! * `load`: many clients on a big machine, checked for double allocation.
//! * `stalled`: signals to `spalloc alloc` at every stage, against a server
//!   that stops answering exactly there.
//! * `streams`: the client fed arbitrary bytes by a scripted server.
//! * `text`: escape sequences in every string a server or a configuration
//!   file supplies, kept off the terminal.
//!
//! When `SPALLOC_RELIABILITY_LOG` names a file, each test appends one JSON
//! object per case tried to it; `scripts/reliability-report.sh` turns that
//! into RELIABILITY.md.
//!
//! These tests wait on real time (outages, expiries, soak runs), so they
//! are a test target of their own, `reliability`, which a plain `cargo
//! test` leaves out: run them with `cargo test --test reliability`, as
//! `.ci/run` does.

use std::io::Write;
use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use serde_json::Value;
use spalloc::server::{Machine, ServerConfig, VirtualServer};
use spalloc::{JobDescription, JobState, JobStateInfo, ProtocolClient};

#[path = "../support/mod.rs"]
mod support;

mod durations;
mod expiry;
mod holders;
mod hostile;
mod http;
mod load;
mod matrix;
mod restart;
mod stalled;
mod streams;
mod text;

/// Appends one record to `$SPALLOC_RELIABILITY_LOG`, if set.
pub fn record(suite: &str, mut fields: Value) {
    static FILE_LOCK: Mutex<()> = Mutex::new(());
    let Some(path) = std::env::var_os("SPALLOC_RELIABILITY_LOG") else {
        return;
    };
    if let Value::Object(m) = &mut fields {
        m.insert("suite".into(), suite.into());
    }
    let _guard = FILE_LOCK.lock().unwrap_or_else(PoisonError::into_inner);
    let mut line = fields.to_string();
    line.push('\n');
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = f.write_all(line.as_bytes());
    }
}

/// A virtual server for one test, with a short keepalive check interval.
pub fn start_server(config: ServerConfig) -> VirtualServer {
    VirtualServer::start(config).expect("start virtual server")
}

/// The default machine of these tests: one triad (three boards).
pub fn one_triad() -> ServerConfig {
    ServerConfig::instant().machines(vec![Machine::new("m", 1, 1)])
}

/// A client straight to the server, bypassing any proxy.
pub fn direct(addr: SocketAddr) -> ProtocolClient {
    ProtocolClient::connect("127.0.0.1", addr.port(), Some(Duration::from_secs(5)))
        .expect("connect to the server directly")
}

/// The live jobs, asked of the server directly.
pub fn live_jobs(addr: SocketAddr) -> Vec<JobDescription> {
    direct(addr).list_jobs().expect("list_jobs")
}

/// One job's state, asked of the server directly. Note that this counts as
/// a keepalive for the job.
pub fn state_of(addr: SocketAddr, id: u64) -> JobStateInfo {
    direct(addr).get_job_state(id).expect("get_job_state")
}

/// Whether a job is live (queued, powering or ready). Asks with
/// `list_jobs`, because `get_job_state` would itself count as a keepalive.
pub fn is_live(addr: SocketAddr, id: u64) -> bool {
    live_jobs(addr).iter().any(|j| {
        j.job_id == id
            && matches!(
                j.state,
                JobState::Queued | JobState::Power | JobState::Ready
            )
    })
}

/// Waits until the server holds no live job; the jobs left otherwise.
pub fn no_jobs_within(addr: SocketAddr, limit: Duration) -> Result<(), Vec<u64>> {
    let mut left = Vec::new();
    let ok = crate::support::eventually(limit, || {
        left = live_jobs(addr).into_iter().map(|j| j.job_id).collect();
        left.is_empty()
    });
    if ok { Ok(()) } else { Err(left) }
}

/// Runs `f` on every item on its own thread (starts staggered by
/// `stagger`), turning a panic into an `Err` with its message.
pub fn parallel<T, R>(
    items: Vec<T>,
    stagger: Duration,
    f: impl Fn(T) -> R + Send + Sync + Copy + 'static,
) -> Vec<Result<R, String>>
where
    T: Send + 'static,
    R: Send + 'static,
{
    let handles: Vec<_> = items
        .into_iter()
        .map(|item| {
            thread::sleep(stagger);
            thread::spawn(move || {
                catch_unwind(AssertUnwindSafe(|| f(item))).map_err(|p| panic_message(&*p))
            })
        })
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().unwrap_or_else(|p| Err(panic_message(&*p))))
        .collect()
}

pub fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".to_owned()
    }
}
