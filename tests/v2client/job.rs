//! `Job` over v2, against the virtual service: every request form, waits
//! by long-poll, power, keepalives from the background thread, resume,
//! destroy with a reason, and Drop.

use std::ops::ControlFlow;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use spalloc::server::{ServerConfig, V2Config, VirtualServer};
use spalloc::v2::RestClient;
use spalloc::{Board, BoardPosition, Client, Error, InvalidArgument, Job, JobRequest, JobState};

use super::{alice, job_options, server_options, start, start_with};
use crate::support::PATIENCE;

fn rest(server: &VirtualServer) -> RestClient {
    RestClient::connect(
        server.v2_url().expect("v2"),
        &alice(),
        Some(Duration::from_secs(10)),
        None,
    )
    .expect("connect")
}

/// The job as the service describes it.
fn state_of(server: &VirtualServer, id: u64) -> (JobState, Option<String>) {
    let info = rest(server).job(id).expect("job").expect("known");
    (info.state, info.reason)
}

#[test]
fn create_in_every_form_then_destroy_with_a_reason() {
    let server = start();
    let forms = [
        (JobRequest::AnyBoard, None, 1),
        (JobRequest::Boards(3), None, 3),
        (
            JobRequest::Triads {
                width: 2,
                height: 1,
            },
            None,
            6,
        ),
        (JobRequest::Board(Board::new(0, 1, 1)), Some("m"), 1),
        (
            JobRequest::Physical(BoardPosition {
                cabinet: 0,
                frame: 0,
                board: 2,
            }),
            Some("m"),
            1,
        ),
        (
            JobRequest::Address("10.2.0.1".parse().expect("ip")),
            Some("small"),
            1,
        ),
    ];
    for (form, machine, boards) in forms {
        let mut job = Job::create(form, &job_options(&server).machine(machine))
            .unwrap_or_else(|e| panic!("{form:?}: {e}"));
        job.wait_until_ready(Some(PATIENCE)).expect("ready");
        let info = job.machine_info().expect("info").expect("boards").clone();
        assert_eq!(info.boards.len(), boards, "{form:?}");
        // Sizes in chips, as on v1.
        let (w, h) = (info.width, info.height);
        match boards {
            1 => assert_eq!((w, h), (8, 8)),
            3 => assert_eq!((w, h), (16, 16)),
            _ => assert_eq!((w, h), (24, 16)),
        }
        assert!(job.hostname().expect("host").is_some());
        let id = job.id();
        job.destroy(Some("test over")).expect("destroy");
        assert_eq!(
            state_of(&server, id),
            (JobState::Destroyed, Some("test over".into()))
        );
    }
}

#[test]
fn power_wait_and_where_is() {
    let server = start_with(
        ServerConfig::instant().power_delay(Duration::from_millis(300)),
        V2Config::default(),
    );
    let mut job = Job::create(JobRequest::Boards(3), &job_options(&server)).expect("create");
    // Powering takes a while: the wait follows it by long-poll.
    let mut seen = Vec::new();
    let last = job
        .wait_until_ready_with(Some(PATIENCE), |info| {
            seen.push(info.state);
            ControlFlow::Continue(())
        })
        .expect("ready");
    assert_eq!(last.state, JobState::Ready);
    assert_eq!(seen.last(), Some(&JobState::Ready));
    assert_eq!(job.power().expect("power"), Some(true));
    job.set_power(false).expect("power off");
    assert_eq!(job.state().expect("state"), JobState::Power);
    let changed = job
        .wait_for_state_change(JobState::Power, Some(PATIENCE))
        .expect("changed");
    assert_eq!(
        (changed.state, changed.power),
        (JobState::Ready, Some(false))
    );
    // Where-is relative to the job: its chip (0, 0) and a chip inside a
    // board.
    let w = job.where_is(0, 0).expect("where").expect("found");
    assert_eq!(w.job_id, Some(job.id()));
    assert_eq!(w.board_chip, spalloc::Chip { x: 0, y: 0 });
    let w = job.where_is(9, 6).expect("where").expect("found");
    assert_eq!(w.board_chip, spalloc::Chip { x: 1, y: 2 });
    assert_eq!(w.logical.z, 1);
    assert_eq!(job.where_is(500, 500).expect("where"), None);
}

#[test]
fn the_keepalive_thread_keeps_the_job_alive_and_drop_destroys_it() {
    let server = start();
    // A two-second keepalive, sent every second by the background thread.
    let job = Job::create(
        JobRequest::AnyBoard,
        &job_options(&server).keepalive(Some(Duration::from_secs(2))),
    )
    .expect("create");
    assert_eq!(job.keepalive_period(), Duration::from_secs(1));
    let id = job.id();
    let mut c = rest(&server);
    // Three times the interval, watching for any change by long-poll: the
    // job must stay ready throughout.
    let until = Instant::now() + Duration::from_secs(6);
    while let Some(left) = until.checked_duration_since(Instant::now()) {
        if let Some(info) = c.wait_for_job(id, Some(left)).expect("wait") {
            assert_eq!(info.state, JobState::Ready, "{info:?}");
        }
    }
    let info = c.job(id).expect("job").expect("known");
    assert_eq!(info.state, JobState::Ready);
    assert!(info.keepalive_host.is_some());
    drop(job);
    assert_eq!(state_of(&server, id).0, JobState::Destroyed);
}

#[test]
fn resume_keeps_alive_and_checks_the_job() {
    let server = start();
    let mut c = rest(&server);
    let mut o = spalloc::CreateJobOptions::new("");
    o.keepalive = Some(spalloc::Number::Int(2));
    let id = c.create_job(&JobRequest::AnyBoard, &o).expect("create");
    let job = Job::resume(id, &job_options(&server)).expect("resume");
    // The period follows the job's own interval, as on v1.
    assert_eq!(job.keepalive_period(), Duration::from_secs(1));
    job.close().expect("close");
    assert_eq!(state_of(&server, id).0, JobState::Ready);
    c.delete_job(id, Some("gone")).expect("destroy");
    match Job::resume(id, &job_options(&server)) {
        Err(Error::JobDestroyed { id: i, reason }) => {
            assert_eq!((i, reason.as_deref()), (id, Some("gone")));
        }
        other => panic!("resumed a destroyed job: {other:?}"),
    }
    assert!(matches!(
        Job::resume(987_654, &job_options(&server)),
        Err(Error::JobUnknown { id: 987_654 })
    ));
}

#[test]
fn a_panic_destroys_the_job() {
    let server = start();
    let opts = job_options(&server);
    let (tx, rx) = mpsc::channel();
    let result = std::panic::catch_unwind(move || {
        let job = Job::create(JobRequest::AnyBoard, &opts).expect("create");
        tx.send(job.id()).expect("send");
        panic!("user code failed");
    });
    assert!(result.is_err());
    let id = rx.recv().expect("id");
    assert_eq!(state_of(&server, id).0, JobState::Destroyed);
}

#[test]
fn an_interruption_ends_a_long_poll_at_once() {
    let server = start();
    // Take every board of `small`, so a second job there queues.
    let hog = Job::create(
        JobRequest::Triads {
            width: 1,
            height: 1,
        },
        &job_options(&server).machine(Some("small")),
    )
    .expect("hog");
    let mut job = Job::create(
        JobRequest::Boards(3),
        &job_options(&server).machine(Some("small")),
    )
    .expect("queued job");
    assert_eq!(job.state().expect("state"), JobState::Queued);
    let handle = job.interrupt_handle();
    let (tx, rx) = mpsc::channel();
    let waiter = thread::spawn(move || {
        let r = job.wait_until_ready_with(None, |info| {
            if info.state == JobState::Queued {
                let _ = tx.send(());
            }
            ControlFlow::Continue(())
        });
        (r, job)
    });
    rx.recv_timeout(PATIENCE).expect("waiting");
    handle.interrupt();
    let (r, job) = waiter.join().expect("waiter");
    assert!(matches!(r, Err(Error::Interrupted)), "{r:?}");
    let id = job.id();
    drop(job);
    assert_eq!(state_of(&server, id).0, JobState::Destroyed);
    drop(hog);
}

#[test]
fn v1_only_options_are_refused_before_anything_is_created() {
    let server = start();
    let cases: [(spalloc::JobOptions, &str); 4] = [
        (job_options(&server).min_ratio(0.5), "min_ratio"),
        (
            job_options(&server).max_dead_links(Some(1)),
            "max_dead_links",
        ),
        (job_options(&server).require_torus(true), "require_torus"),
        (
            job_options(&server).keepalive(None),
            "a keepalive of None (never expire)",
        ),
    ];
    for (options, name) in cases {
        let e = Job::create(JobRequest::Boards(3), &options).unwrap_err();
        assert!(
            matches!(e, Error::InvalidArgument(InvalidArgument::NotOnProtocol { option, protocol: "v2" }) if option == name),
            "{name}: {e:?}"
        );
    }
    // The IP form is v2 only.
    let e = Job::create(
        JobRequest::Address("10.2.0.1".parse().expect("ip")),
        &server.job_options().owner("me"),
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            Error::InvalidArgument(InvalidArgument::NotOnProtocol { protocol: "v1", .. })
        ),
        "{e:?}"
    );
    let mut c = Client::connect(&server_options(&server)).expect("connect");
    assert!(
        c.list_jobs().expect("jobs").is_empty(),
        "nothing was created"
    );
}

#[test]
fn a_physical_board_on_v1_is_looked_up_first() {
    let server = start();
    let mut job = Job::create(
        JobRequest::Physical(BoardPosition {
            cabinet: 0,
            frame: 0,
            board: 2,
        }),
        &server.job_options().owner("me").machine(Some("m")),
    )
    .expect("create on v1");
    let boards = job.boards().expect("boards").expect("allocated");
    assert_eq!(boards.len(), 1);
    // And that board is at (0, 0, 2).
    let mut c = Client::connect(&server.server_options()).expect("v1");
    let w = c
        .where_is(&spalloc::WhereIsQuery::Board {
            machine: "m".into(),
            x: i64::from(boards[0].x),
            y: i64::from(boards[0].y),
            z: i64::from(boards[0].z),
        })
        .expect("where")
        .expect("found");
    assert_eq!(
        w.physical,
        BoardPosition {
            cabinet: 0,
            frame: 0,
            board: 2
        }
    );
    let e = Job::create(
        JobRequest::Physical(BoardPosition {
            cabinet: 0,
            frame: 0,
            board: 2,
        }),
        &server.job_options().owner("me"),
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            Error::InvalidArgument(InvalidArgument::PhysicalWithoutMachine)
        ),
        "{e:?}"
    );
}
