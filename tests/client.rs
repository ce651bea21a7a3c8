//! `ProtocolClient` against the scripted fake server: request bytes, reply
//! decoding in both dialects, notifications, framing and failures.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use spalloc::{
    Board, BoardPosition, Chip, CreateJobOptions, Error, JobRequest, JobState, Notification,
    Number, ProtocolClient, WhereIsQuery,
};

use crate::support::{
    Action, Call, Dialect, FakeServer, PATIENCE, Reply, dead_port, jobs_changed, line,
};

const SHORT: Option<Duration> = Some(Duration::from_millis(300));

fn connect(server: &FakeServer) -> ProtocolClient {
    ProtocolClient::connect("127.0.0.1", server.port(), Some(PATIENCE))
        .expect("connect to fake server")
}

/// Replies in the style of each server for every command.
fn realistic(dialect: Dialect, c: &Call) -> Reply {
    let py = dialect == Dialect::Python;
    let v = match c.command.as_str() {
        "version" => json!(if py { "1!7.1.0" } else { "5.0.0" }),
        "create_job" => json!(42),
        "get_job_state" if py => {
            json!({"state": 3, "power": true, "keepalive": 60.0, "reason": null,
                                         "start_time": 1_700_000_000.25, "keepalivehost": "127.0.0.1"})
        }
        "get_job_state" => json!({"state": 3, "power": true, "keepalive": 1.69e9, "reason": "",
                                   "start_time": 1.69e9, "keepalivehost": ""}),
        "get_job_machine_info" => json!({"width": 16, "height": 16, "machine_name": "m",
            "connections": [[[8, 4], "10.0.0.3"], [[0, 0], "10.0.0.1"], [[4, 8], "10.0.0.2"]],
            "boards": [[0, 1, 2], [0, 1, 0], [0, 1, 1]]}),
        "list_jobs" if py => {
            json!([{"job_id": 42, "owner": "me", "start_time": 1.5, "keepalive": 5,
            "state": 1, "power": null, "args": [3], "kwargs": {"tags": ["default"]},
            "allocated_machine_name": null, "boards": null, "keepalivehost": "127.0.0.1"}])
        }
        "list_jobs" => {
            json!([{"job_id": 42, "owner": "<Hidden>", "start_time": 1.69e9, "keepalive": 60.0,
            "state": 1, "power": false, "args": [3], "kwargs": {"owner": "me", "keepalive": 60.0},
            "allocated_machine_name": "m", "boards": [], "keepalivehost": "<Hidden>", "reason": ""}])
        }
        "list_machines" => json!([{"name": "m", "tags": ["default"], "width": 2, "height": 2,
            "dead_boards": [[0, 0, 1]], "dead_links": [[1, 1, 1, 2]]}]),
        "get_board_position" => json!([0, 0, 7]),
        "get_board_at_position" => json!([1, 1, 2]),
        "where_is" => {
            json!({"machine": "m", "logical": [1, 0, 1], "physical": [0, 0, 2], "chip": [3, 11],
                             "board_chip": [7, 7], "job_id": 4, "job_chip": [15, 11]})
        }
        _ => Value::Null,
    };
    Reply::Return(v)
}

fn every_command(dialect: Dialect) -> Result<(), Error> {
    let server = FakeServer::start(dialect, move |c| realistic(dialect, c));
    let mut c = connect(&server);

    assert_eq!(
        c.version()?,
        if dialect == Dialect::Python {
            "1!7.1.0"
        } else {
            "5.0.0"
        }
    );
    let me = CreateJobOptions::new("me");
    assert_eq!(c.create_job(&JobRequest::AnyBoard, &me)?, 42);
    c.create_job(&JobRequest::Boards(3), &me)?;
    c.create_job(
        &JobRequest::Triads {
            width: 2,
            height: 3,
        },
        &me,
    )?;
    let mut custom = CreateJobOptions::new("me");
    custom.keepalive = Some(Number::Int(5));
    custom.machine = Some("big".into());
    custom.max_dead_boards = None;
    custom.max_dead_links = Some(2);
    c.create_job(&JobRequest::Board(Board::new(1, 0, 2)), &custom)?;
    let mut tagged = CreateJobOptions::new("me");
    tagged.keepalive = None;
    tagged.tags = Some(vec!["a".into(), "b".into()]);
    tagged.require_torus = true;
    tagged.min_ratio = 1.0;
    c.create_job(&JobRequest::Boards(12), &tagged)?;
    c.job_keepalive(7)?;

    let s = c.get_job_state(7)?;
    assert_eq!((s.state, s.power), (JobState::Ready, Some(true)));
    if dialect == Dialect::Python {
        assert_eq!(s.keepalive, Some(60.0));
        assert_eq!(s.keepalive_host.as_deref(), Some("127.0.0.1"));
        assert_eq!(s.start_time, Some(1_700_000_000.25));
    } else {
        assert_eq!(s.keepalive, Some(1.69e9));
        assert_eq!((s.reason, s.keepalive_host), (None, None));
    }

    let info = c.get_job_machine_info(7)?.expect("allocated");
    assert_eq!(
        (info.width, info.height, info.machine_name.as_str()),
        (16, 16, "m")
    );
    assert_eq!(info.hostname(), Some("10.0.0.1"));
    assert_eq!(info.boards[0], Board::new(0, 1, 0));
    assert_eq!(info.connections[2].chip, Chip { x: 8, y: 4 });

    c.power_on_job_boards(7)?;
    c.power_off_job_boards(7)?;
    c.destroy_job(7, Some("bye"))?;
    c.destroy_job(7, None)?;
    c.notify_job(None)?;
    c.notify_job(Some(7))?;
    c.no_notify_job(None)?;
    c.no_notify_job(Some(7))?;
    c.notify_machine(None)?;
    c.notify_machine(Some("m"))?;
    c.no_notify_machine(None)?;
    c.no_notify_machine(Some("m"))?;

    let jobs = c.list_jobs()?;
    assert_eq!(jobs.len(), 1);
    assert_eq!((jobs[0].job_id, jobs[0].state), (42, JobState::Queued));
    assert_eq!(
        jobs[0].power,
        if dialect == Dialect::Python {
            None
        } else {
            Some(false)
        }
    );
    if dialect == Dialect::Python {
        assert_eq!(jobs[0].keepalive, Some(Number::Int(5)));
        assert_eq!(jobs[0].allocated_machine_name, None);
    } else {
        assert_eq!(jobs[0].keepalive, Some(Number::Float(60.0)));
        assert_eq!(jobs[0].owner.as_deref(), Some("<Hidden>"));
    }
    assert!(jobs[0].boards.is_empty());

    let machines = c.list_machines()?;
    assert_eq!(machines[0].name, "m");
    assert_eq!(machines[0].num_boards(), 11);

    assert_eq!(
        c.get_board_position("m", Board::new(1, 1, 2))?,
        Some(BoardPosition {
            cabinet: 0,
            frame: 0,
            board: 7
        })
    );
    let pos = BoardPosition {
        cabinet: 0,
        frame: 0,
        board: 7,
    };
    assert_eq!(
        c.get_board_at_position("m", pos)?,
        Some(Board::new(1, 1, 2))
    );

    let queries = [
        WhereIsQuery::Board {
            machine: "m".into(),
            x: 1,
            y: 1,
            z: 1,
        },
        WhereIsQuery::Physical {
            machine: "m".into(),
            cabinet: 0,
            frame: 0,
            board: 3,
        },
        WhereIsQuery::Chip {
            machine: "m".into(),
            x: -1,
            y: 0,
        },
        WhereIsQuery::JobChip {
            job_id: 4,
            x: 15,
            y: 11,
        },
    ];
    for q in &queries {
        let w = c.where_is(q)?.expect("found");
        assert_eq!(
            (w.job_id, w.job_chip),
            (Some(4), Some(Chip { x: 15, y: 11 }))
        );
    }
    c.report_problem("10.0.0.1", Some((1, 2)), Some(3), Some("broken"))?;

    let expected = [
        r#"{"command":"version","args":[],"kwargs":{}}"#,
        r#"{"command":"create_job","args":[],"kwargs":{"owner":"me","keepalive":60.0,"machine":null,"tags":null,"min_ratio":0.333,"max_dead_boards":0,"max_dead_links":null,"require_torus":false}}"#,
        r#"{"command":"create_job","args":[3],"kwargs":{"owner":"me","keepalive":60.0,"machine":null,"tags":null,"min_ratio":0.333,"max_dead_boards":0,"max_dead_links":null,"require_torus":false}}"#,
        r#"{"command":"create_job","args":[2,3],"kwargs":{"owner":"me","keepalive":60.0,"machine":null,"tags":null,"min_ratio":0.333,"max_dead_boards":0,"max_dead_links":null,"require_torus":false}}"#,
        r#"{"command":"create_job","args":[1,0,2],"kwargs":{"owner":"me","keepalive":5,"machine":"big","tags":null,"min_ratio":0.333,"max_dead_boards":null,"max_dead_links":2,"require_torus":false}}"#,
        r#"{"command":"create_job","args":[12],"kwargs":{"owner":"me","keepalive":null,"machine":null,"tags":["a","b"],"min_ratio":1.0,"max_dead_boards":0,"max_dead_links":null,"require_torus":true}}"#,
        r#"{"command":"job_keepalive","args":[7],"kwargs":{}}"#,
        r#"{"command":"get_job_state","args":[7],"kwargs":{}}"#,
        r#"{"command":"get_job_machine_info","args":[7],"kwargs":{}}"#,
        r#"{"command":"power_on_job_boards","args":[7],"kwargs":{}}"#,
        r#"{"command":"power_off_job_boards","args":[7],"kwargs":{}}"#,
        r#"{"command":"destroy_job","args":[7],"kwargs":{"reason":"bye"}}"#,
        r#"{"command":"destroy_job","args":[7],"kwargs":{}}"#,
        r#"{"command":"notify_job","args":[],"kwargs":{}}"#,
        r#"{"command":"notify_job","args":[7],"kwargs":{}}"#,
        r#"{"command":"no_notify_job","args":[],"kwargs":{}}"#,
        r#"{"command":"no_notify_job","args":[7],"kwargs":{}}"#,
        r#"{"command":"notify_machine","args":[],"kwargs":{}}"#,
        r#"{"command":"notify_machine","args":["m"],"kwargs":{}}"#,
        r#"{"command":"no_notify_machine","args":[],"kwargs":{}}"#,
        r#"{"command":"no_notify_machine","args":["m"],"kwargs":{}}"#,
        r#"{"command":"list_jobs","args":[],"kwargs":{}}"#,
        r#"{"command":"list_machines","args":[],"kwargs":{}}"#,
        r#"{"command":"get_board_position","args":[],"kwargs":{"machine_name":"m","x":1,"y":1,"z":2}}"#,
        r#"{"command":"get_board_at_position","args":[],"kwargs":{"machine_name":"m","x":0,"y":0,"z":7}}"#,
        r#"{"command":"where_is","args":[],"kwargs":{"machine":"m","x":1,"y":1,"z":1}}"#,
        r#"{"command":"where_is","args":[],"kwargs":{"machine":"m","cabinet":0,"frame":0,"board":3}}"#,
        r#"{"command":"where_is","args":[],"kwargs":{"machine":"m","chip_x":-1,"chip_y":0}}"#,
        r#"{"command":"where_is","args":[],"kwargs":{"job_id":4,"chip_x":15,"chip_y":11}}"#,
        r#"{"command":"report_problem","args":["10.0.0.1"],"kwargs":{"x":1,"y":2,"p":3,"description":"broken"}}"#,
    ];
    let raw: Vec<String> = server.calls().into_iter().map(|c| c.raw).collect();
    assert_eq!(raw, expected);
    Ok(())
}

#[test]
fn every_command_python_dialect() -> Result<(), Error> {
    every_command(Dialect::Python)
}

#[test]
fn every_command_java_dialect() -> Result<(), Error> {
    every_command(Dialect::Java)
}

#[test]
fn not_found_as_null_or_exception() -> Result<(), Error> {
    for dialect in [Dialect::Python, Dialect::Java] {
        let server = FakeServer::start(dialect, move |c| match (dialect, c.command.as_str()) {
            (Dialect::Python, "get_job_state") => Reply::Return(json!({"state": 0, "power": null,
                "keepalive": null, "reason": null, "start_time": null, "keepalivehost": null})),
            (Dialect::Python, "get_job_machine_info") => {
                Reply::Return(json!({"width": null, "height": null,
                "connections": null, "machine_name": null, "boards": null}))
            }
            (Dialect::Python, _) => Reply::Return(Value::Null),
            (Dialect::Java, "get_job_state" | "where_is")
                if c.kwargs.contains_key("job_id") || c.command == "get_job_state" =>
            {
                Reply::Exception("no such job".into())
            }
            (Dialect::Java, "get_job_machine_info") => {
                Reply::Exception("boards not allocated".into())
            }
            (Dialect::Java, "get_board_position") => Reply::Exception("no such board".into()),
            (Dialect::Java, _) => Reply::Exception("no such machine".into()),
        });
        let mut c = connect(&server);
        assert_eq!(c.get_job_state(9)?.state, JobState::Unknown);
        assert_eq!(c.get_job_machine_info(9)?, None);
        assert_eq!(c.get_board_position("m", Board::new(9, 9, 9))?, None);
        let pos = BoardPosition {
            cabinet: 9,
            frame: 9,
            board: 9,
        };
        assert_eq!(c.get_board_at_position("nope", pos)?, None);
        assert_eq!(
            c.where_is(&WhereIsQuery::JobChip {
                job_id: 9,
                x: 0,
                y: 0
            })?,
            None
        );
        assert_eq!(
            c.where_is(&WhereIsQuery::Chip {
                machine: "nope".into(),
                x: 0,
                y: 0
            })?,
            None
        );
    }
    Ok(())
}

#[test]
fn server_exception_is_distinct_from_transport_errors() {
    let server = FakeServer::start(Dialect::Python, |_| {
        Reply::Exception("owner must be specified for all jobs".into())
    });
    let mut c = connect(&server);
    let err = c.list_jobs().unwrap_err();
    assert!(
        matches!(err, Error::Server(ref m) if m == "owner must be specified for all jobs"),
        "{err:?}"
    );
    assert!(!err.is_transport());
    // The connection stays usable after an exception.
    assert!(matches!(c.version(), Err(Error::Server(_))));
}

#[test]
fn create_job_rejects_contradictions_locally() {
    let server = FakeServer::nulls(Dialect::Python);
    let mut c = connect(&server);
    let mut o = CreateJobOptions::new("me");
    o.require_torus = true;
    assert!(matches!(
        c.create_job(&JobRequest::AnyBoard, &o),
        Err(Error::InvalidArgument(_))
    ));
    let mut o = CreateJobOptions::new("me");
    o.machine = Some("m".into());
    o.tags = Some(vec!["t".into()]);
    assert!(matches!(
        c.create_job(&JobRequest::Boards(3), &o),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        c.create_job(&JobRequest::AnyBoard, &CreateJobOptions::new("")),
        Err(Error::InvalidArgument(_))
    ));
    assert_eq!(server.count("create_job"), 0, "nothing reached the server");
}

#[test]
fn notifications_before_a_reply_are_queued() -> Result<(), Error> {
    for dialect in [Dialect::Python, Dialect::Java] {
        let server = FakeServer::start(dialect, move |c| match c.command.as_str() {
            "list_machines" => {
                let mut bytes = jobs_changed(dialect, &[1, 2]);
                bytes.extend(line(dialect, &json!({"machines_changed": ["m"]})));
                bytes.extend(line(dialect, &json!({"return": []})));
                bytes.extend(jobs_changed(dialect, &[3]));
                Reply::Raw(bytes)
            }
            _ => Reply::Return(Value::Null),
        });
        let mut c = connect(&server);
        assert!(c.list_machines()?.is_empty());
        assert_eq!(
            c.wait_for_notification(Some(Duration::ZERO))?,
            Some(Notification::JobsChanged(vec![1, 2]))
        );
        assert_eq!(
            c.wait_for_notification(Some(Duration::ZERO))?,
            Some(Notification::MachinesChanged(vec!["m".into()]))
        );
        // The one after the reply is read from the socket.
        assert_eq!(
            c.wait_for_notification(SHORT)?,
            Some(Notification::JobsChanged(vec![3]))
        );
        let start = Instant::now();
        assert_eq!(c.wait_for_notification(Some(Duration::ZERO))?, None);
        assert!(
            start.elapsed() < Duration::from_millis(200),
            "a zero timeout only polls"
        );
        assert_eq!(
            c.wait_for_notification(Some(Duration::from_millis(50)))?,
            None
        );
    }
    Ok(())
}

#[test]
fn unknown_message_kinds_are_skipped() -> Result<(), Error> {
    let server = FakeServer::start(Dialect::Python, |_| {
        Reply::Raw(b"{\"hello\": 1}\n{\"return\": \"1.0.0\"}\n".to_vec())
    });
    let mut c = connect(&server);
    assert_eq!(c.version()?, "1.0.0");
    Ok(())
}

#[test]
fn partial_line_survives_a_timeout() -> Result<(), Error> {
    let reply = br#"{"return": {"state": 2, "power": true, "keepalive": 60.0, "reason": null, "start_time": 1.0, "keepalivehost": "h"}}"#;
    let (head, tail) = reply.split_at(30);
    let (head, tail) = (head.to_vec(), tail.to_vec());
    let server = FakeServer::start(Dialect::Python, move |c| match c.command.as_str() {
        "get_job_state" => Reply::Script(vec![
            Action::Send(head.clone()),
            Action::Sleep(Duration::from_millis(600)),
            Action::Send(tail.clone()),
            Action::Send(b"\n".to_vec()),
        ]),
        _ => Reply::Return(json!("1.0.0")),
    });
    let mut c = connect(&server);
    c.set_timeout(SHORT);
    assert!(matches!(
        c.get_job_state(1),
        Err(Error::Timeout(spalloc::Phase::Reply))
    ));
    // Another call, whenever the rest of the line arrives (the server
    // answers it only after finishing the first): the late reply must be
    // recognised as the old call's and skipped.
    c.set_timeout(Some(PATIENCE));
    assert_eq!(c.version()?, "1.0.0");
    c.set_timeout(SHORT);

    // Same for a notification split across a wait's timeout.
    let note = jobs_changed(Dialect::Python, &[5]);
    server.push(&note[..7]);
    assert_eq!(
        c.wait_for_notification(Some(Duration::from_millis(100)))?,
        None
    );
    server.push(&note[7..]);
    assert_eq!(
        c.wait_for_notification(SHORT)?,
        Some(Notification::JobsChanged(vec![5]))
    );
    Ok(())
}

#[test]
fn reply_in_many_small_pieces() -> Result<(), Error> {
    let line = br#"{"return": "1!7.1.0"}"#.to_vec();
    let server = FakeServer::start(Dialect::Java, move |_| {
        let mut script: Vec<Action> = line.iter().map(|b| Action::Send(vec![*b])).collect();
        script.push(Action::Send(b"\r\n".to_vec()));
        Reply::Script(script)
    });
    let mut c = connect(&server);
    assert_eq!(c.version()?, "1!7.1.0");
    Ok(())
}

#[test]
fn non_finite_numbers_from_python_server() -> Result<(), Error> {
    let server = FakeServer::start(Dialect::Python, |c| {
        match c.command.as_str() {
        "list_jobs" => Reply::Raw(
            br#"{"return": [{"job_id": 1, "owner": "me", "start_time": NaN, "keepalive": Infinity, "state": 3, "power": true, "args": [], "kwargs": {"min_ratio": -Infinity}, "allocated_machine_name": "m", "boards": [[0, 0, 0]], "keepalivehost": "h"}]}
"#
            .to_vec(),
        ),
        _ => Reply::Raw(br#"{"return": {"state": 3, "power": true, "keepalive": Infinity, "reason": null, "start_time": NaN, "keepalivehost": "h"}}
"#.to_vec()),
    }
    });
    let mut c = connect(&server);
    let jobs = c.list_jobs()?;
    assert!(jobs[0].start_time.is_some_and(f64::is_nan));
    assert_eq!(jobs[0].keepalive.map(Number::as_f64), Some(f64::INFINITY));
    assert_eq!(jobs[0].kwargs["min_ratio"], json!("-Infinity"));
    let s = c.get_job_state(1)?;
    assert_eq!(s.keepalive, Some(f64::INFINITY));
    Ok(())
}

#[test]
fn malformed_reply_fields_are_named() {
    let server = FakeServer::start(Dialect::Python, |c| match c.command.as_str() {
        "get_job_state" => Reply::Return(json!({"state": "ready"})),
        "list_jobs" => Reply::Return(json!([{"job_id": -1, "state": 1}])),
        "create_job" => Reply::Return(json!("seven")),
        _ => Reply::Return(json!(5)),
    });
    let mut c = connect(&server);
    let e = c.get_job_state(1).unwrap_err().to_string();
    assert!(
        e.contains("get_job_state: field 'state': expected a non-negative integer"),
        "{e}"
    );
    let e = c.list_jobs().unwrap_err().to_string();
    assert!(e.contains("list_jobs: field 'job_id'"), "{e}");
    let e = c
        .create_job(&JobRequest::AnyBoard, &CreateJobOptions::new("me"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("create_job: expected a job id"), "{e}");
    let e = c.version().unwrap_err().to_string();
    assert!(e.contains("version: expected a string"), "{e}");
}

#[test]
fn over_long_line_is_an_error_not_an_allocation() {
    let server = FakeServer::start(Dialect::Python, |_| {
        // 64 MiB of a never-ending string, in 1 MiB writes.
        let mut script = vec![Action::Send(b"{\"return\": \"".to_vec())];
        script.extend((0..64).map(|_| Action::Send(vec![b'x'; 1 << 20])));
        Reply::Script(script)
    });
    let mut c = connect(&server);
    c.set_max_line_length(1 << 20);
    let err = c.version().unwrap_err();
    assert!(
        matches!(err, Error::LineTooLong { limit } if limit == 1 << 20),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "server sent a line longer than 1048576 bytes"
    );
    // The connection is not trusted afterwards.
    let again = c.version().unwrap_err().to_string();
    assert!(again.contains("reconnect"), "{again}");
}

#[test]
fn disconnect_mid_call_is_clear() {
    let server = FakeServer::start(Dialect::Python, |_| {
        Reply::Script(vec![Action::Send(b"{\"return\": ".to_vec()), Action::Close])
    });
    let mut c = connect(&server);
    let err = c.list_jobs().unwrap_err();
    assert!(matches!(err, Error::Disconnected), "{err:?}");
    assert_eq!(err.to_string(), "server closed the connection");
    assert!(err.is_transport());
}

#[test]
fn garbage_is_a_json_error() {
    let server = FakeServer::start(Dialect::Python, |_| {
        Reply::Raw(b"\x00\xffgarbage\n".to_vec())
    });
    let mut c = connect(&server);
    let err = c.version().unwrap_err();
    assert!(matches!(err, Error::Json(_)), "{err:?}");
    assert_eq!(err.to_string(), "server sent invalid JSON");
}

#[test]
fn silence_times_out_within_the_deadline() {
    let server = FakeServer::start(Dialect::Python, |_| Reply::Nothing);
    let mut c = connect(&server);
    c.set_timeout(SHORT);
    let start = Instant::now();
    assert!(matches!(
        c.list_jobs(),
        Err(Error::Timeout(spalloc::Phase::Reply))
    ));
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(5),
        "{took:?}"
    );
}

#[test]
fn notifications_flooding_during_a_call_do_not_hide_the_reply() -> Result<(), Error> {
    let server = FakeServer::start(Dialect::Java, |_| {
        let mut bytes = Vec::new();
        for i in 0..10_000u64 {
            bytes.extend(jobs_changed(Dialect::Java, &[i]));
        }
        bytes.extend(line(Dialect::Java, &json!({"return": "5.0.0"})));
        Reply::Raw(bytes)
    });
    let mut c = connect(&server);
    assert_eq!(c.version()?, "5.0.0");
    // The queue is bounded: the oldest hints were dropped, the newest kept.
    let mut last = None;
    let mut n = 0;
    while let Some(Notification::JobsChanged(ids)) =
        c.wait_for_notification(Some(Duration::ZERO))?
    {
        last = ids.first().copied();
        n += 1;
    }
    assert!(n > 0 && n < 10_000, "{n}");
    assert_eq!(last, Some(9_999));
    Ok(())
}

#[test]
fn connect_failures_name_the_host_port_and_reason() {
    let port = dead_port();
    let err = ProtocolClient::connect("127.0.0.1", port, Some(Duration::from_secs(2))).unwrap_err();
    assert!(
        matches!(err, Error::Connect { ref source, lookup: false, .. }
            if source.kind() == std::io::ErrorKind::ConnectionRefused),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!("cannot connect to 127.0.0.1:{port}: connection refused")
    );
    // The operating system's error is still there underneath.
    let source = std::error::Error::source(&err).expect("a source");
    assert!(source.to_string().contains("os error"), "{source}");
    assert!(err.is_transport());

    let err = ProtocolClient::connect("no-such-host.invalid", 22244, Some(Duration::from_secs(2)))
        .unwrap_err();
    assert!(
        matches!(err, Error::Connect { lookup: true, .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.starts_with("cannot look up no-such-host.invalid (port 22244): "),
        "{text}"
    );
    assert!(!text.contains("i/o error"), "{text}");
}

#[test]
fn connects_over_ipv6_loopback() -> Result<(), Error> {
    let Ok(listener) = TcpListener::bind("[::1]:0") else {
        eprintln!("no IPv6 loopback on this machine; nothing to test");
        return Ok(());
    };
    let server = FakeServer::on(listener, Dialect::Python, |_| {
        Reply::Return(json!("1!7.1.0"))
    });
    let mut c = ProtocolClient::connect("::1", server.port(), Some(PATIENCE))?;
    assert!(c.peer_addr().is_ipv6());
    assert_eq!(c.check_version()?, "1!7.1.0");
    Ok(())
}

#[test]
fn version_check_reports_the_raw_string() {
    let server = FakeServer::start(Dialect::Python, |_| Reply::Return(json!("8.0.0")));
    let mut c = connect(&server);
    let err = c.check_version().unwrap_err();
    assert!(matches!(err, Error::IncompatibleVersion(ref v) if v == "8.0.0"));
    assert_eq!(err.to_string(), "incompatible server version (8.0.0)");
}
