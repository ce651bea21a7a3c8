//! `ProtocolClient::call_pipelined`: many calls written before their
//! replies are read, against the scripted fake server (for failures at an
//! exact point) and against the virtual server in both dialects.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Map, Value, json};
use spalloc::server::{Dialect as ServerDialect, ServerConfig, VirtualServer};
use spalloc::{
    CreateJobOptions, Error, InterruptHandle, JobRequest, JobState, Notification, PIPELINE_WINDOW,
    Pipeline, ProtocolClient,
};

use crate::support::{Action, Call, Dialect, FakeServer, PATIENCE, Reply, jobs_changed, line};

fn connect(port: u16) -> ProtocolClient {
    ProtocolClient::connect("127.0.0.1", port, Some(PATIENCE)).expect("connect")
}

/// A pipeline of `echo` calls, the i-th with the argument i.
fn echoes(n: u64) -> Pipeline {
    let mut p = Pipeline::new();
    for i in 0..n {
        p.call("echo", &[i.into()], &Map::new());
    }
    p
}

fn echo(c: &Call) -> Reply {
    Reply::Return(c.arg(0).cloned().unwrap_or(Value::Null))
}

fn values(results: Vec<spalloc::Result<Value>>) -> Vec<Value> {
    results
        .into_iter()
        .map(|r| r.expect("every call answered"))
        .collect()
}

#[test]
fn replies_are_matched_to_calls_in_order() {
    for dialect in [Dialect::Python, Dialect::Java] {
        let server = FakeServer::start(dialect, echo);
        let mut c = connect(server.port());
        // Longer than the window, so that more calls go out as replies
        // come in.
        let n = 3 * PIPELINE_WINDOW as u64 + 5;
        let got = values(c.call_pipelined(&echoes(n), Some(PATIENCE)));
        assert_eq!(got, (0..n).map(Value::from).collect::<Vec<_>>());
        let calls = server.calls();
        assert_eq!(calls.len(), usize::try_from(n).expect("small"));
        assert!(calls.iter().all(|call| call.command == "echo"));
        // The same pipeline again, and plain calls after it, are in step.
        let got = values(c.call_pipelined(&echoes(3), Some(PATIENCE)));
        assert_eq!(got, [json!(0), json!(1), json!(2)]);
        assert_eq!(
            c.call("echo", &[json!("x")], &Map::new(), None).ok(),
            Some(json!("x"))
        );
        assert!(c.call_pipelined(&Pipeline::new(), None).is_empty());
    }
}

#[test]
fn the_calls_go_out_before_any_reply_is_read() {
    // This server says nothing until it has every request of the pipeline,
    // then answers them all at once: a client that waited for each reply
    // before sending the next call would wait in vain.
    let n = 10;
    let server = FakeServer::start(Dialect::Python, move |c| {
        let i = c.arg(0).and_then(Value::as_u64).unwrap_or(0);
        if i + 1 < n {
            return Reply::Nothing;
        }
        let mut all = Vec::new();
        for j in 0..n {
            all.extend(line(Dialect::Python, &json!({ "return": j * 10 })));
        }
        Reply::Raw(all)
    });
    let mut c = connect(server.port());
    let got = values(c.call_pipelined(&echoes(n), Some(PATIENCE)));
    assert_eq!(got, (0..n).map(|j| json!(j * 10)).collect::<Vec<_>>());
}

#[test]
fn notifications_between_the_replies_are_queued() {
    for dialect in [Dialect::Python, Dialect::Java] {
        let server = FakeServer::start(dialect, move |c| {
            let i = c.arg(0).and_then(Value::as_u64).unwrap_or(0);
            let mut out = jobs_changed(dialect, &[i + 100]);
            out.extend(line(dialect, &json!({ "return": i })));
            Reply::Script(vec![Action::Send(out)])
        });
        let mut c = connect(server.port());
        let got = values(c.call_pipelined(&echoes(4), Some(PATIENCE)));
        assert_eq!(got, [json!(0), json!(1), json!(2), json!(3)]);
        for i in 0..4 {
            let n = c
                .wait_for_notification(Some(Duration::ZERO))
                .expect("queued");
            assert_eq!(n, Some(Notification::JobsChanged(vec![100 + i])));
        }
        assert_eq!(
            c.wait_for_notification(Some(Duration::ZERO)).ok(),
            Some(None)
        );
    }
}

#[test]
fn an_exception_answers_its_own_call_alone() {
    let server = FakeServer::start(Dialect::Java, |c| match c.arg(0).and_then(Value::as_u64) {
        Some(1) => Reply::Exception("no such job".into()),
        _ => echo(c),
    });
    let mut c = connect(server.port());
    let got = c.call_pipelined(&echoes(3), Some(PATIENCE));
    assert!(matches!(&got[0], Ok(v) if *v == json!(0)), "{got:?}");
    assert!(
        matches!(&got[1], Err(Error::Server(m)) if m == "no such job"),
        "{got:?}"
    );
    assert!(matches!(&got[2], Ok(v) if *v == json!(2)), "{got:?}");
    assert_eq!(
        c.call("echo", &[json!(7)], &Map::new(), None).ok(),
        Some(json!(7))
    );
}

#[test]
fn a_dropped_connection_fails_the_rest() {
    let server = FakeServer::start(Dialect::Python, |c| {
        match c.arg(0).and_then(Value::as_u64) {
            Some(2) => Reply::Close,
            _ => echo(c),
        }
    });
    let mut c = connect(server.port());
    let got = c.call_pipelined(&echoes(5), Some(PATIENCE));
    assert_eq!(got.len(), 5);
    assert!(matches!(&got[0], Ok(v) if *v == json!(0)), "{got:?}");
    assert!(matches!(&got[1], Ok(v) if *v == json!(1)), "{got:?}");
    assert!(matches!(&got[2], Err(e) if e.is_transport()), "{got:?}");
    for r in &got[3..] {
        assert!(matches!(r, Err(Error::Abandoned { .. })), "{got:?}");
    }
    // The connection is done for, and says so.
    let e = c.version().expect_err("a broken connection");
    assert!(matches!(e, Error::Abandoned { .. }), "{e:?}");
}

#[test]
fn a_timeout_leaves_the_connection_in_step() {
    // Calls 1 and 2 of the first pipeline get no reply in time; their
    // replies come late, just before the reply to the next call, which
    // must not be taken for them.
    let late = Arc::new(Mutex::new(true));
    let server = {
        let late = late.clone();
        FakeServer::start(Dialect::Python, move |c| {
            match (c.command.as_str(), c.arg(0).and_then(Value::as_u64)) {
                ("echo", Some(1 | 2)) => Reply::Nothing,
                ("next", _) => {
                    let mut out = Vec::new();
                    if std::mem::take(&mut *late.lock().expect("lock")) {
                        out.extend(line(Dialect::Python, &json!({ "return": 1 })));
                        out.extend(line(Dialect::Python, &json!({ "exception": "late" })));
                    }
                    out.extend(line(Dialect::Python, &json!({ "return": "next" })));
                    Reply::Raw(out)
                }
                _ => echo(c),
            }
        })
    };
    let mut c = connect(server.port());
    let got = c.call_pipelined(&echoes(3), Some(Duration::from_millis(300)));
    assert!(matches!(&got[0], Ok(v) if *v == json!(0)), "{got:?}");
    assert!(matches!(&got[1], Err(Error::Timeout(_))), "{got:?}");
    assert!(matches!(&got[2], Err(Error::Timeout(_))), "{got:?}");
    let mut p = Pipeline::new();
    p.call("next", &[], &Map::new())
        .call("echo", &[json!(9)], &Map::new());
    let got = values(c.call_pipelined(&p, Some(PATIENCE)));
    assert_eq!(got, [json!("next"), json!(9)]);
}

#[test]
fn an_interruption_cuts_a_pipeline_short() {
    let handle = InterruptHandle::new();
    // The server interrupts the client when the second call arrives, and
    // answers only the first.
    let server = {
        let handle = handle.clone();
        FakeServer::start(Dialect::Python, move |c| {
            match c.arg(0).and_then(Value::as_u64) {
                Some(0) => echo(c),
                Some(1) => {
                    handle.interrupt();
                    Reply::Nothing
                }
                _ => Reply::Nothing,
            }
        })
    };
    let mut c =
        ProtocolClient::connect_interruptible("127.0.0.1", server.port(), Some(PATIENCE), &handle)
            .expect("connect");
    let got = c.call_pipelined(&echoes(3), None);
    assert!(matches!(&got[0], Ok(v) if *v == json!(0)), "{got:?}");
    assert!(matches!(&got[1], Err(Error::Interrupted)), "{got:?}");
    assert!(matches!(&got[2], Err(Error::Abandoned { .. })), "{got:?}");

    // Interrupted before it starts: nothing is sent.
    let server = FakeServer::start(Dialect::Python, echo);
    let handle = InterruptHandle::new();
    let mut c =
        ProtocolClient::connect_interruptible("127.0.0.1", server.port(), Some(PATIENCE), &handle)
            .expect("connect");
    handle.interrupt();
    let got = c.call_pipelined(&echoes(2), None);
    assert!(
        got.iter().all(|r| matches!(r, Err(Error::Interrupted))),
        "{got:?}"
    );
    assert!(server.calls().is_empty());
    // The interruption is used up, and the connection is still usable.
    assert_eq!(
        values(c.call_pipelined(&echoes(2), Some(PATIENCE))),
        [json!(0), json!(1)]
    );
}

fn virtual_server(dialect: ServerDialect) -> VirtualServer {
    VirtualServer::start(ServerConfig::instant().dialect(dialect))
        .expect("start the virtual server")
}

/// The calls a tool would make for several jobs at once, with a request
/// the server refuses among them.
#[test]
fn against_the_virtual_server_in_either_dialect() {
    for dialect in [ServerDialect::Python, ServerDialect::Java] {
        let server = virtual_server(dialect);
        let mut c = connect(server.local_addr().port());
        let me = CreateJobOptions::new("me@example.org");
        let ids: Vec<u64> = (0..3)
            .map(|_| c.create_job(&JobRequest::AnyBoard, &me).expect("created"))
            .collect();
        c.notify_job(None).expect("subscribed");

        let mut p = Pipeline::new();
        p.call("version", &[], &Map::new());
        for &id in &ids {
            p.call("get_job_state", &[id.into()], &Map::new());
        }
        // Refused by both servers: a keepalive for a job named by a string.
        p.call("job_keepalive", &[json!("nonsense"), json!(1)], &Map::new());
        for &id in &ids {
            p.call("destroy_job", &[id.into()], &Map::new());
        }
        p.call("get_job_state", &[ids[0].into()], &Map::new());
        let got = c.call_pipelined(&p, Some(PATIENCE));
        assert_eq!(got.len(), p.len());
        let version = c.version().expect("version");
        assert!(
            matches!(&got[0], Ok(Value::String(v)) if *v == version),
            "{got:?}"
        );
        for r in &got[1..4] {
            let state = r
                .as_ref()
                .ok()
                .and_then(|v| v.get("state"))
                .and_then(Value::as_u64);
            assert_eq!(state, Some(JobState::Ready.code()), "{got:?}");
        }
        assert!(
            matches!(&got[4], Err(Error::Server(_))),
            "{dialect:?}: {got:?}"
        );
        assert!(got[5..8].iter().all(Result::is_ok), "{got:?}");
        let state = got[8]
            .as_ref()
            .ok()
            .and_then(|v| v.get("state"))
            .and_then(Value::as_u64);
        assert_eq!(state, Some(JobState::Destroyed.code()), "{got:?}");

        // The destroys were reported, between the replies (Java) or after
        // them (Python), and nothing was taken for a reply.
        let mut changed = Vec::new();
        while changed.len() < ids.len() {
            match c
                .wait_for_notification(Some(PATIENCE))
                .expect("a notification")
            {
                Some(Notification::JobsChanged(j)) => changed.extend(j),
                Some(Notification::MachinesChanged(_)) => {}
                None => panic!("{dialect:?}: only {changed:?} were reported"),
            }
        }
        changed.sort_unstable();
        changed.dedup();
        assert_eq!(changed, ids, "{dialect:?}");
        assert!(c.list_jobs().expect("in step").is_empty());
    }
}

#[test]
fn a_connection_the_virtual_server_drops_mid_pipeline() {
    // The Python server drops a client that sends a command it does not
    // know, after answering what came before.
    let server = virtual_server(ServerDialect::Python);
    let mut c = connect(server.local_addr().port());
    let mut p = Pipeline::new();
    p.call("version", &[], &Map::new())
        .call("list_machines", &[], &Map::new())
        .call("no_such_command", &[], &Map::new())
        .call("version", &[], &Map::new());
    let got = c.call_pipelined(&p, Some(PATIENCE));
    assert!(matches!(&got[0], Ok(Value::String(_))), "{got:?}");
    assert!(
        matches!(&got[1], Ok(Value::Array(m)) if m.len() == 1),
        "{got:?}"
    );
    assert!(matches!(&got[2], Err(Error::Disconnected)), "{got:?}");
    assert!(matches!(&got[3], Err(Error::Abandoned { .. })), "{got:?}");
    // A new connection works as ever.
    assert!(connect(server.local_addr().port()).version().is_ok());
}
