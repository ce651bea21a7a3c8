//! `Job` against each dialect: create, wait, keep alive, power, locate,
//! destroy and drop.

use std::time::Duration;

use spalloc::server::Dialect;
use spalloc::{
    Board, CreateJobOptions, Job, JobOptions, JobRequest, JobState, KeepaliveCheck,
    KeepaliveInterval, Number,
};

use super::{both, connect, server};
use crate::support::PATIENCE;

// Keeping a job alive and letting a closed one expire take real time:
// they are among the reliability tests (`tests/reliability/expiry.rs`).
both!(
    lifecycle,
    drop_destroys,
    queued_then_ready,
    resume,
    keepalive_check
);

fn options(addr: std::net::SocketAddr) -> JobOptions {
    JobOptions::new()
        .hostname(addr.ip().to_string())
        .port(addr.port())
        .owner("tester")
        .timeout(Some(PATIENCE))
}

fn lifecycle(dialect: Dialect) {
    let server = server(dialect);
    let addr = server.local_addr();
    let mut job = Job::create(JobRequest::Boards(3), &options(addr)).expect("create");
    job.wait_until_ready(Some(PATIENCE)).expect("ready");
    assert_eq!(job.state().expect("state"), JobState::Ready);
    assert_eq!(job.power().expect("power"), Some(true));
    assert_eq!(job.machine_name().expect("name").as_deref(), Some("m"));
    assert_eq!(
        job.hostname().expect("host").as_deref(),
        Some("192.168.0.1")
    );
    assert_eq!(
        (job.width().expect("w"), job.height().expect("h")),
        (Some(16), Some(16))
    );
    assert_eq!(job.boards().expect("boards").map(|b| b.len()), Some(3));
    assert_eq!(
        job.connections().expect("connections").map(|c| c.len()),
        Some(3)
    );

    job.set_power(false).expect("power off");
    job.wait_until_ready(Some(PATIENCE)).expect("ready");
    assert_eq!(job.power().expect("power"), Some(false));
    job.reset().expect("reset");
    job.wait_until_ready(Some(PATIENCE)).expect("ready");
    assert_eq!(job.power().expect("power"), Some(true));

    let w = job.where_is(8, 4).expect("where_is").expect("found");
    assert_eq!(w.job_id, Some(job.id()));
    assert_eq!(w.logical, Board::new(0, 0, 1));

    let id = job.id();
    job.destroy(Some("finished")).expect("destroy");
    let s = connect(addr).get_job_state(id).expect("state");
    assert_eq!(
        (s.state, s.reason.as_deref()),
        (JobState::Destroyed, Some("finished"))
    );
}

fn drop_destroys(dialect: Dialect) {
    let server = server(dialect);
    let addr = server.local_addr();
    let id = {
        let mut job = Job::create(JobRequest::AnyBoard, &options(addr)).expect("create");
        job.wait_until_ready(Some(PATIENCE)).expect("ready");
        job.id()
    };
    let mut c = connect(addr);
    let s = c.get_job_state(id).expect("state");
    assert_eq!(s.state, JobState::Destroyed);
}

/// Waiting through the queue: the job becomes ready when the boards ahead
/// of it are released.
fn queued_then_ready(dialect: Dialect) {
    let server = super::server_with(dialect, |c| {
        c.machines(vec![spalloc::server::Machine::new("m", 1, 1)])
    });
    let addr = server.local_addr();
    let mut c = connect(addr);
    let blocker = c
        .create_job(&JobRequest::Boards(3), &CreateJobOptions::new("blocker"))
        .expect("create");
    let mut job = Job::create(JobRequest::AnyBoard, &options(addr)).expect("create");
    assert_eq!(job.state().expect("state"), JobState::Queued);
    assert_eq!(job.machine_info().expect("info"), None);
    let waiter = std::thread::spawn(move || {
        let ready = job.wait_until_ready(Some(PATIENCE));
        (ready, job)
    });
    c.destroy_job(blocker, None).expect("destroy");
    let (ready, mut job) = waiter.join().expect("waiter");
    ready.expect("ready once the blocker went");
    assert_eq!(job.boards().expect("boards").map(|b| b.len()), Some(1));
}

/// Taking over a job made elsewhere. The Python server reports the job's
/// keepalive interval, which sets the period; the Java service reports when
/// it was last kept alive instead, which must not.
fn resume(dialect: Dialect) {
    let server = server(dialect);
    let addr = server.local_addr();
    let mut c = connect(addr);
    let mut short = CreateJobOptions::new("elsewhere");
    short.keepalive = Some(Number::Float(4.0));
    let id = c.create_job(&JobRequest::AnyBoard, &short).expect("create");
    let mut job = Job::resume(
        id,
        &options(addr).keepalive(Some(Duration::from_secs_f64(60.0))),
    )
    .expect("resume");
    let want = match dialect {
        Dialect::Python => Duration::from_secs(2),
        Dialect::Java => Duration::from_secs(30),
    };
    assert_eq!(job.keepalive_period(), want);
    // Asking the server what it applies puts that right on the Java
    // service too.
    let check = job.keepalive_check().expect("check").expect("listed");
    assert_eq!(
        (check.requested, check.applied, check.honoured()),
        (None, KeepaliveInterval::Seconds(4.0), None)
    );
    assert_eq!(job.keepalive_period(), Duration::from_secs(2));
    assert_eq!(job.state().expect("state"), JobState::Ready);
    drop(job);
    assert_eq!(
        c.get_job_state(id).expect("state").state,
        JobState::Destroyed
    );
    let gone = Job::resume(id, &options(addr));
    assert!(
        matches!(gone, Err(spalloc::Error::JobDestroyed { .. })),
        "{gone:?}"
    );
    let unknown = Job::resume(999, &options(addr));
    assert!(
        matches!(unknown, Err(spalloc::Error::JobUnknown { id: 999 })),
        "{unknown:?}"
    );
}

/// What each server makes of the keepalive asked for: both apply an
/// interval as asked; "never expire" only the Python server, where the Java
/// service applies its 60 s default.
fn keepalive_check(dialect: Dialect) {
    use KeepaliveInterval::{Never, Seconds};
    let server = server(dialect);
    let addr = server.local_addr();
    let check = |keepalive: Option<Duration>| -> (KeepaliveCheck, Duration) {
        let mut job =
            Job::create(JobRequest::AnyBoard, &options(addr).keepalive(keepalive)).expect("create");
        let check = job.keepalive_check().expect("check").expect("listed");
        // The same again: the answer is the server's, not a guess.
        assert_eq!(job.keepalive_check().expect("check"), Some(check));
        (check, job.keepalive_period())
    };

    let (thirty, period) = check(Some(Duration::from_secs(30)));
    assert_eq!(
        (thirty.requested, thirty.applied, thirty.honoured()),
        (Some(Seconds(30.0)), Seconds(30.0), Some(true))
    );
    assert_eq!(period, Duration::from_secs(15));

    let (never, period) = check(None);
    assert_eq!(never.requested, Some(Never));
    match dialect {
        Dialect::Python => assert_eq!((never.applied, never.honoured()), (Never, Some(true))),
        Dialect::Java => {
            assert_eq!(
                (never.applied, never.honoured()),
                (Seconds(60.0), Some(false))
            );
        }
    }
    // Keepalives every 30 s are often enough for the Java service's 60 s.
    assert_eq!(period, Duration::from_secs(30));

    // A job that is no longer live is not listed.
    let mut job = Job::create(JobRequest::AnyBoard, &options(addr)).expect("create");
    connect(addr)
        .destroy_job(job.id(), Some("gone"))
        .expect("destroy");
    assert_eq!(job.keepalive_check().expect("check"), None);
}
