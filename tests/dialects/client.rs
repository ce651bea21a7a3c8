//! `ProtocolClient`: every command against each dialect, with the answers
//! the client must make the same ("not found" as `None` whether the server
//! says `null` or raises) and those that differ by design.

use serde_json::json;
use spalloc::server::Dialect;
use spalloc::{
    Board, BoardPosition, Chip, CreateJobOptions, Error, JobRequest, JobState, Notification,
    Number, WhereIsQuery,
};

use super::{both, connect, server, wait_state};
use crate::support::PATIENCE;

both!(
    every_command,
    not_found_is_none,
    impossible_requests,
    notifications
);

fn every_command(dialect: Dialect) {
    let server = server(dialect);
    let mut c = connect(server.local_addr());
    assert_eq!(
        c.check_version().expect("version"),
        dialect.default_version()
    );

    let me = CreateJobOptions::new("me");
    let one = c.create_job(&JobRequest::AnyBoard, &me).expect("create");
    let triad = c.create_job(&JobRequest::Boards(3), &me).expect("create");
    let rect = c
        .create_job(
            &JobRequest::Triads {
                width: 1,
                height: 1,
            },
            &me,
        )
        .expect("create");
    let specific = c
        .create_job(&JobRequest::Board(Board::new(1, 1, 2)), &me)
        .expect("create");
    let mut tagged = CreateJobOptions::new("you");
    tagged.tags = Some(vec!["big".into()]);
    tagged.keepalive = Some(Number::Int(30));
    let on_big = c
        .create_job(&JobRequest::Boards(6), &tagged)
        .expect("create");
    for id in [one, triad, rect, specific, on_big] {
        wait_state(&mut c, id, JobState::Ready);
    }
    c.job_keepalive(one).expect("keepalive");

    let s = c.get_job_state(one).expect("state");
    assert_eq!((s.state, s.power), (JobState::Ready, Some(true)));
    assert_eq!(s.keepalive_host.as_deref(), Some("127.0.0.1"));
    assert!(s.start_time.is_some_and(|t| t > 1.6e9), "{s:?}");
    match dialect {
        // The interval, and no reason while live.
        Dialect::Python => assert_eq!((s.keepalive, s.reason), (Some(60.0), None)),
        // When it was last kept alive (client-side, an empty reason is none).
        Dialect::Java => {
            assert!(s.keepalive.is_some_and(|t| t > 1.6e9), "{s:?}");
            assert_eq!(s.reason, None);
        }
    }

    let info = c
        .get_job_machine_info(one)
        .expect("machine info")
        .expect("allocated");
    assert_eq!((info.width, info.height), (8, 8));
    assert_eq!(info.machine_name, "m");
    assert_eq!(info.boards, [Board::new(0, 0, 0)]);
    assert_eq!(info.hostname(), Some("192.168.0.1"));
    let big = c
        .get_job_machine_info(on_big)
        .expect("machine info")
        .expect("allocated");
    assert_eq!(big.machine_name, "big");
    assert_eq!(big.boards.len(), 6);

    c.power_off_job_boards(one).expect("power off");
    wait_state(&mut c, one, JobState::Ready);
    assert_eq!(c.get_job_state(one).expect("state").power, Some(false));
    c.power_on_job_boards(one).expect("power on");
    wait_state(&mut c, one, JobState::Ready);
    assert_eq!(c.get_job_state(one).expect("state").power, Some(true));

    c.notify_job(None).expect("notify");
    c.notify_job(Some(one)).expect("notify");
    c.no_notify_job(Some(one)).expect("no notify");
    c.no_notify_job(None).expect("no notify");
    c.notify_machine(None).expect("notify");
    c.notify_machine(Some("m")).expect("notify");
    c.no_notify_machine(Some("m")).expect("no notify");
    c.no_notify_machine(None).expect("no notify");

    let jobs = c.list_jobs().expect("list_jobs");
    assert_eq!(
        jobs.iter().map(|j| j.job_id).collect::<Vec<_>>(),
        [one, triad, rect, specific, on_big]
    );
    let j = &jobs[4];
    assert_eq!(j.owner.as_deref(), Some("you"));
    assert_eq!(j.state, JobState::Ready);
    assert_eq!(j.power, Some(true));
    assert_eq!(j.allocated_machine_name.as_deref(), Some("big"));
    assert_eq!(j.boards.len(), 6);
    assert_eq!(j.args, [json!(6)]);
    assert_eq!(j.kwargs["tags"], json!(["big"]));
    assert_eq!(j.keepalive_host.as_deref(), Some("127.0.0.1"));
    assert_eq!(j.keepalive, Some(Number::Float(30.0)));

    let machines = c.list_machines().expect("list_machines");
    assert_eq!(
        machines.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(),
        ["m", "big"]
    );
    assert_eq!(machines[1].tags, ["big"]);
    assert_eq!((machines[1].width, machines[1].height), (3, 2));
    assert_eq!(machines[1].num_boards(), 17);

    let pos = c
        .get_board_position("m", Board::new(1, 1, 2))
        .expect("position")
        .expect("a board");
    assert_eq!(
        c.get_board_at_position("m", pos).expect("board"),
        Some(Board::new(1, 1, 2))
    );

    // The specific board's job, by each of the four forms.
    let by_board = c
        .where_is(&WhereIsQuery::Board {
            machine: "m".into(),
            x: 1,
            y: 1,
            z: 2,
        })
        .expect("where_is")
        .expect("found");
    assert_eq!(
        (by_board.job_id, by_board.job_chip, by_board.physical),
        (Some(specific), Some(Chip { x: 0, y: 0 }), pos)
    );
    let by_position = c
        .where_is(&WhereIsQuery::Physical {
            machine: "m".into(),
            cabinet: i64::from(pos.cabinet),
            frame: i64::from(pos.frame),
            board: i64::from(pos.board),
        })
        .expect("where_is")
        .expect("found");
    assert_eq!(by_position, by_board);
    let chip = by_board.chip;
    let by_chip = c
        .where_is(&WhereIsQuery::Chip {
            machine: "m".into(),
            x: i64::from(chip.x) + 1,
            y: i64::from(chip.y) + 2,
        })
        .expect("where_is")
        .expect("found");
    assert_eq!(by_chip.logical, Board::new(1, 1, 2));
    assert_eq!(by_chip.board_chip, Chip { x: 1, y: 2 });
    let by_job = c
        .where_is(&WhereIsQuery::JobChip {
            job_id: specific,
            x: 1,
            y: 2,
        })
        .expect("where_is")
        .expect("found");
    assert_eq!(by_job, by_chip);

    c.destroy_job(one, Some("bye")).expect("destroy");
    let s = c.get_job_state(one).expect("state");
    assert_eq!(
        (s.state, s.reason.as_deref()),
        (JobState::Destroyed, Some("bye"))
    );

    // Only the Java service knows report_problem; the Python server hangs
    // up on it, and the client then says so.
    let reported = c.report_problem("192.168.0.1", Some((1, 2)), Some(3), Some("smoke"));
    match dialect {
        Dialect::Python => assert!(matches!(reported, Err(Error::Disconnected)), "{reported:?}"),
        Dialect::Java => assert!(reported.is_ok(), "{reported:?}"),
    }
}

fn not_found_is_none(dialect: Dialect) {
    let server = super::server_with(dialect, |c| {
        c.machines(vec![spalloc::server::Machine::new("m", 1, 1)])
    });
    let mut c = connect(server.local_addr());
    let me = CreateJobOptions::new("me");
    let ready = c.create_job(&JobRequest::Boards(3), &me).expect("create");
    let queued = c.create_job(&JobRequest::AnyBoard, &me).expect("create");
    assert_eq!(
        c.get_job_state(queued).expect("state").state,
        JobState::Queued
    );
    assert_eq!(
        c.get_job_state(9999).expect("state").state,
        JobState::Unknown
    );
    assert_eq!(c.get_job_machine_info(9999).expect("info"), None);
    assert_eq!(c.get_job_machine_info(queued).expect("info"), None);
    assert_eq!(
        c.get_board_position("m", Board::new(5, 5, 5))
            .expect("position"),
        None
    );
    assert_eq!(
        c.get_board_position("nope", Board::new(0, 0, 0))
            .expect("position"),
        None
    );
    let far = BoardPosition {
        cabinet: 9,
        frame: 9,
        board: 9,
    };
    assert_eq!(c.get_board_at_position("m", far).expect("board"), None);
    for q in [
        WhereIsQuery::JobChip {
            job_id: 9999,
            x: 0,
            y: 0,
        },
        WhereIsQuery::JobChip {
            job_id: queued,
            x: 0,
            y: 0,
        },
        WhereIsQuery::Chip {
            machine: "nope".into(),
            x: 0,
            y: 0,
        },
        WhereIsQuery::Board {
            machine: "nope".into(),
            x: 0,
            y: 0,
            z: 0,
        },
    ] {
        assert_eq!(c.where_is(&q).expect("where_is"), None, "{q:?}");
    }
    c.destroy_job(queued, None).expect("destroy");
    let s = c.get_job_state(queued).expect("state");
    assert_eq!(s.state, JobState::Destroyed);
    assert_eq!(c.get_job_machine_info(queued).expect("info"), None);
    // The reason of a queued job: the Python server prefixes it.
    let want = match dialect {
        Dialect::Python => Some("Cancelled: "),
        Dialect::Java => None,
    };
    assert_eq!(s.reason.as_deref(), want);
    assert_eq!(
        c.get_job_state(ready).expect("state").state,
        JobState::Ready
    );
}

fn impossible_requests(dialect: Dialect) {
    let server = server(dialect);
    let mut c = connect(server.local_addr());
    let result = c.create_job(
        &JobRequest::Board(Board::new(9, 9, 9)),
        &CreateJobOptions::new("me"),
    );
    match dialect {
        // A job, cancelled at once.
        Dialect::Python => {
            let id = result.expect("a job id");
            let s = c.get_job_state(id).expect("state");
            assert_eq!(s.state, JobState::Destroyed);
            assert_eq!(
                s.reason.as_deref(),
                Some("Cancelled: No suitable machines available.")
            );
        }
        // No job at all.
        Dialect::Java => {
            assert!(
                matches!(&result, Err(Error::Server(m)) if m == "no machine available which matches allocation request"),
                "{result:?}"
            );
            assert!(c.list_jobs().expect("list").is_empty());
        }
    }
}

fn notifications(dialect: Dialect) {
    let server = server(dialect);
    let addr = server.local_addr();
    let mut watcher = connect(addr);
    let mut c = connect(addr);
    let id = c
        .create_job(&JobRequest::AnyBoard, &CreateJobOptions::new("me"))
        .expect("create");
    watcher.notify_job(Some(id)).expect("notify");
    watcher.notify_machine(None).expect("notify");
    c.destroy_job(id, None).expect("destroy");
    let mut seen = Vec::new();
    while seen.len() < 2 {
        match watcher
            .wait_for_notification(Some(PATIENCE))
            .expect("a notification")
        {
            Some(n) => seen.push(n),
            None => panic!("no notification within {PATIENCE:?}; saw {seen:?}"),
        }
    }
    assert!(
        seen.contains(&Notification::JobsChanged(vec![id])),
        "{seen:?}"
    );
    assert!(
        seen.contains(&Notification::MachinesChanged(vec!["m".into()])),
        "{seen:?}"
    );
}
