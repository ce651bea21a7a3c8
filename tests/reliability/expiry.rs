//! `Job` keeping a job alive, and a closed job left to expire, against each
//! server dialect, in real time: the keepalives of a `Job` against a
//! control job that gets none.

use std::net::SocketAddr;
use std::time::Duration;

use spalloc::server::{Dialect, Machine, ServerConfig, VirtualServer};
use spalloc::{CreateJobOptions, Job, JobOptions, JobRequest, JobState, Number, ProtocolClient};

use crate::support::{PATIENCE, both, eventually};

both!(keepalives_keep_it, close_leaves_the_job_to_expire);

fn server(dialect: Dialect) -> VirtualServer {
    VirtualServer::start(
        ServerConfig::instant()
            .dialect(dialect)
            .machines(vec![Machine::new("m", 2, 2)]),
    )
    .expect("start the virtual server")
}

fn connect(addr: SocketAddr) -> ProtocolClient {
    ProtocolClient::connect(&addr.ip().to_string(), addr.port(), Some(PATIENCE))
        .expect("connect to the virtual server")
}

fn options(server: &VirtualServer) -> JobOptions {
    server.job_options().owner("tester").timeout(Some(PATIENCE))
}

/// Waits (bounded) until job `id` is no longer listed (without refreshing
/// its keepalive, as `get_job_state` would).
fn wait_gone(c: &mut ProtocolClient, id: u64, limit: Duration) {
    assert!(
        eventually(limit, || c
            .list_jobs()
            .is_ok_and(|jobs| jobs.iter().all(|j| j.job_id != id))),
        "job {id} is still listed"
    );
}

/// A job whose keepalive is a third of a control job's outlives it: the
/// control job expires having had no keepalives, and the `Job` has needed
/// several by then (one a second, each with a second to spare).
fn keepalives_keep_it(dialect: Dialect) {
    let server = server(dialect);
    let mut c = connect(server.local_addr());
    let mut control = CreateJobOptions::new("control");
    control.keepalive = Some(Number::Float(6.0));
    let control = c
        .create_job(&JobRequest::AnyBoard, &control)
        .expect("create");
    let job = Job::create(
        JobRequest::AnyBoard,
        &options(&server).keepalive(Some(Duration::from_secs(2))),
    )
    .expect("create");
    wait_gone(&mut c, control, Duration::from_secs(30));
    let jobs = c.list_jobs().expect("list");
    assert!(
        jobs.iter().any(|j| j.job_id == job.id()),
        "the kept-alive job expired too"
    );
    let reason = c.get_job_state(control).expect("state").reason;
    let want = match dialect {
        Dialect::Python => "Job timed out.",
        Dialect::Java => "keepalive expired",
    };
    assert_eq!(reason.as_deref(), Some(want));
    drop(job);
}

/// `close()` stops the keepalives and leaves the job, which then expires.
fn close_leaves_the_job_to_expire(dialect: Dialect) {
    let server = server(dialect);
    let mut c = connect(server.local_addr());
    let job = Job::create(
        JobRequest::AnyBoard,
        &options(&server).keepalive(Some(Duration::from_secs(3))),
    )
    .expect("create");
    let kept = job.id();
    job.close().expect("close");
    assert_eq!(c.get_job_state(kept).expect("state").state, JobState::Ready);
    wait_gone(&mut c, kept, Duration::from_secs(10));
}
