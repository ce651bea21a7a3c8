//! The client reading arbitrary byte streams from a scripted server: every
//! typed call returns or fails with an error within its timeout, and never
//! panics, whatever arrives (garbage, half lines, notifications in the way,
//! replies of the wrong shape, CR LF, invalid UTF-8, an early close).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::json;
use spalloc::{
    Board, BoardPosition, CreateJobOptions, Error, JobRequest, ProtocolClient, WhereIsQuery,
};

use super::record;
use crate::support::{Action, Dialect, FakeServer, Reply};

const CASES: u32 = 400;
const TIMEOUT: Duration = Duration::from_millis(150);

/// Pieces that look like server output, to splice with random bytes.
fn piece() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"{\"return\": null}\n".to_vec()),
        Just(b"{\"return\": 7}\r\n".to_vec()),
        Just(b"{\"return\": \"1!7.1.0\"}\n".to_vec()),
        Just(b"{\"exception\": \"no such job\"}\n".to_vec()),
        Just(b"{\"jobs_changed\": [1, 2]}\n".to_vec()),
        Just(b"{\"machines_changed\": [\"m\"]}\n".to_vec()),
        Just(b"{\"hello\": 1}\n".to_vec()),
        Just(b"{\"return\": {\"state\": 3, \"power\": true, \"keepalive\": NaN}}\n".to_vec()),
        Just(b"{\"return\": [{\"job_id\": 1, \"state\": 9, \"boards\": [[0, 0]]}]}\n".to_vec()),
        Just(b"{\"return\": {\"width\": -1}}\n".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\r".to_vec()),
        Just(b"\xff\xfe\x00".to_vec()),
        "[ -~]{0,40}".prop_map(String::into_bytes),
        proptest::collection::vec(any::<u8>(), 0..64),
    ]
}

fn stream() -> impl Strategy<Value = (Vec<u8>, bool, usize)> {
    (
        proptest::collection::vec(piece(), 0..8).prop_map(|p| p.concat()),
        // Mostly close after sending, so most cases end at once; otherwise
        // the client must give up at its timeout.
        proptest::bool::weighted(0.85),
        0usize..9,
    )
}

fn call(c: &mut ProtocolClient, which: usize) -> Result<String, Error> {
    Ok(match which {
        0 => c.version()?,
        1 => format!("{:?}", c.get_job_state(1)?),
        2 => format!("{:?}", c.list_jobs()?),
        3 => format!("{:?}", c.list_machines()?),
        4 => format!("{:?}", c.get_job_machine_info(1)?),
        5 => format!(
            "{:?}",
            c.where_is(&WhereIsQuery::JobChip {
                job_id: 1,
                x: 0,
                y: 0
            })?
        ),
        6 => format!(
            "{:?}",
            c.create_job(&JobRequest::AnyBoard, &CreateJobOptions::new("me"))?
        ),
        7 => format!(
            "{:?}",
            c.get_board_position("m", Board::new(0, 0, 0))?
                .zip(c.get_board_at_position(
                    "m",
                    BoardPosition {
                        cabinet: 0,
                        frame: 0,
                        board: 0
                    }
                )?)
        ),
        _ => format!("{:?}", c.wait_for_notification(Some(TIMEOUT))?),
    })
}

fn kind(r: &Result<String, Error>) -> &'static str {
    match r {
        Ok(_) => "ok",
        Err(Error::Timeout(_)) => "timeout",
        Err(Error::Disconnected) => "disconnected",
        Err(Error::Json(_)) => "invalid JSON",
        Err(Error::Protocol(_)) => "protocol error",
        Err(Error::Server(_)) => "server exception",
        Err(Error::Io(_)) => "i/o error",
        Err(_) => "other error",
    }
}

#[test]
fn the_client_survives_arbitrary_byte_streams() {
    let next: Arc<Mutex<(Vec<u8>, bool)>> = Arc::default();
    let slot = Arc::clone(&next);
    let server = FakeServer::start(Dialect::Python, move |_| {
        let (bytes, close) = slot.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let mut script = vec![Action::Send(bytes)];
        if close {
            script.push(Action::Close);
        }
        Reply::Script(script)
    });
    let port = server.port();
    let outcomes: Mutex<BTreeMap<&'static str, u32>> = Mutex::default();
    let mut runner = TestRunner::new(Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&stream(), |(bytes, close, which)| {
        *next.lock().unwrap_or_else(PoisonError::into_inner) = (bytes, close);
        let mut c = ProtocolClient::connect("127.0.0.1", port, Some(TIMEOUT))
            .map_err(|e| TestCaseError::fail(format!("connect: {e}")))?;
        let t = Instant::now();
        let r = call(&mut c, which);
        let took = t.elapsed();
        // Two calls at most (case 7), each bounded by the timeout.
        prop_assert!(
            took < TIMEOUT * 2 + Duration::from_millis(500),
            "took {:?}",
            took
        );
        if let Err(e) = &r {
            prop_assert!(!e.to_string().is_empty());
        }
        *outcomes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(kind(&r))
            .or_default() += 1;
        Ok(())
    });
    let outcomes = outcomes
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner);
    record(
        "streams",
        json!({"case": "client reading arbitrary byte streams (every typed call)",
               "cases": CASES,
               "outcome": if result.is_ok() { "pass" } else { "fail" },
               "detail": outcomes}),
    );
    if let Err(e) = result {
        panic!("{e}");
    }
}
