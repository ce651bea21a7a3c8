//! The read-only subcommands (`ps`, `machine`, `job`, `where-is`, `config`)
//! and what every subcommand shares (server flags, usage errors, legacy
//! names, `--watch`), tested by running the real binary.
//!
//! Two kinds of server stand behind the runs:
//! * a [`VirtualServer`] when the behaviour depends on a real allocation
//!   (jobs created through [`ProtocolClient`], boards, powering, where-is
//!   arithmetic);
//! * a scripted [`FakeServer`] when the test needs exact data, such as the
//!   reference samples' machine `big` and job 15 (`CLI_REFERENCE.md` §§6–9),
//!   or a failure the virtual server never produces.
//!
//! Output is compared byte for byte with colour off, unless the test is
//! about colour.

mod common_flags;
mod config;
mod job;
mod machine;
mod ps;
mod tty;
mod watch;
mod where_is;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use spalloc::server::{Machine, ServerConfig, VirtualServer};
use spalloc::{CreateJobOptions, JobRequest, JobState, ProtocolClient};

use crate::support::cli::Sandbox;
use crate::support::{Dialect, FakeServer, PATIENCE, Reply};

/// Asserts two texts are equal, showing both in full (escapes visible) when
/// they are not.
#[track_caller]
pub fn same(expected: &str, actual: &str) {
    if expected != actual {
        panic!(
            "text differs\n--- expected ---\n{}\n--- actual ---\n{}\n--- expected (debug) ---\n{expected:?}\n--- actual (debug) ---\n{actual:?}",
            expected.replace('\x1b', "\\e"),
            actual.replace('\x1b', "\\e"),
        );
    }
}

/// A virtual server with machine `m` (2 × 2 triads, tagged `default`),
/// where power changes are instant.
pub fn server_m() -> VirtualServer {
    server_with(ServerConfig::instant().machines(vec![Machine::new("m", 2, 2).tags(["default"])]))
}

/// A virtual server with the given configuration.
pub fn server_with(config: ServerConfig) -> VirtualServer {
    VirtualServer::start(config).expect("start the virtual server")
}

/// A sandbox whose user configuration points at `addr`, with owner
/// `tester@example.org`.
pub fn sandbox(addr: SocketAddr) -> Sandbox {
    let sb = Sandbox::new();
    sb.use_server(addr);
    sb
}

/// A protocol client for setting up and checking a test.
pub fn client(addr: SocketAddr) -> ProtocolClient {
    ProtocolClient::connect(&addr.ip().to_string(), addr.port(), Some(PATIENCE))
        .expect("connect to the test server")
}

/// Creates a job for `owner` and waits until it is ready.
pub fn ready_job(c: &mut ProtocolClient, request: JobRequest, owner: &str) -> u64 {
    let id = c
        .create_job(&request, &CreateJobOptions::new(owner))
        .expect("create_job");
    wait_state(c, id, JobState::Ready);
    id
}

/// Waits (bounded) until job `id` is in `state`.
pub fn wait_state(c: &mut ProtocolClient, id: u64, state: JobState) {
    let end = Instant::now() + PATIENCE;
    loop {
        let now = c.get_job_state(id).expect("get_job_state").state;
        if now == state {
            return;
        }
        assert!(
            Instant::now() < end,
            "job {id} stuck in {now}, wanted {state}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A raw `create_job`, for requests the typed API does not make (an
/// integer keepalive, odd kwargs); returns the job id.
pub fn raw_create(c: &mut ProtocolClient, args: Value, kwargs: Value) -> u64 {
    let (Value::Array(args), Value::Object(kwargs)) = (args, kwargs) else {
        panic!("args must be an array and kwargs an object");
    };
    c.call("create_job", &args, &kwargs, Some(PATIENCE))
        .expect("create_job")
        .as_u64()
        .expect("a job id")
}

// ---- the reference samples' data, for FakeServer --------------------------

/// 23/11/2026 20:21:56 in Europe/Athens (UTC+2 in November), the start
/// time of job 15 in the reference transcripts.
pub const JOB_15_START: f64 = 1_795_458_116.0;

/// The time zone the reference transcripts were made in.
pub const SAMPLE_TZ: &str = "Europe/Athens";

/// Job 15's twelve boards: the 2 × 2 triads at x 1–2, y 1–2.
pub fn job_15_boards() -> Vec<Value> {
    let mut boards = Vec::new();
    for x in 1..3 {
        for y in 1..3 {
            for z in 0..3 {
                boards.push(json!([x, y, z]));
            }
        }
    }
    boards
}

/// `list_jobs` as the reference server answered it: job 15 on `big`.
pub fn job_15_listing() -> Value {
    json!({
        "job_id": 15,
        "owner": "oracle@example.com",
        "start_time": JOB_15_START,
        "keepalive": null,
        "state": 3,
        "power": true,
        "args": [2, 2],
        "kwargs": {
            "machine": "big",
            "tags": null,
            "min_ratio": 0.333,
            "max_dead_boards": 0,
            "max_dead_links": null,
            "require_torus": false
        },
        "allocated_machine_name": "big",
        "boards": job_15_boards(),
        "keepalivehost": "127.0.0.1"
    })
}

/// `list_machines` of the reference server: `m`, `big` (4 × 3 triads, two
/// dead boards, one dead link) and the one-board machine `one`.
pub fn sample_machines() -> Value {
    json!([
        {"name": "m", "tags": ["default"], "width": 2, "height": 2,
         "dead_boards": [], "dead_links": []},
        {"name": "big", "tags": ["big"], "width": 4, "height": 3,
         "dead_boards": [[3, 2, 2], [2, 0, 1]], "dead_links": [[1, 1, 0, 2]]},
        {"name": "one", "tags": ["one"], "width": 1, "height": 1,
         "dead_boards": [[0, 0, 1], [0, 0, 2]], "dead_links": []}
    ])
}

/// `get_job_machine_info` for job 15: 28 × 28 chips, one Ethernet chip
/// per board, deliberately out of order.
pub fn job_15_machine_info() -> Value {
    let mut connections = Vec::new();
    for (i, (x, y)) in [
        (12, 12),
        (0, 0),
        (16, 20),
        (4, 8),
        (8, 4),
        (12, 0),
        (0, 12),
        (16, 8),
        (20, 4),
        (24, 12),
        (20, 16),
        (24, 24),
    ]
    .into_iter()
    .enumerate()
    {
        let host = if (x, y) == (0, 0) {
            "127.101.0.97".to_owned()
        } else {
            format!("127.101.0.{}", 100 + i)
        };
        connections.push(json!([[x, y], host]));
    }
    json!({
        "width": 28,
        "height": 28,
        "connections": connections,
        "machine_name": "big",
        "boards": job_15_boards()
    })
}

/// A scripted reference server: version `1!7.0.0`, the sample machines,
/// job 15 alive and ready, job 9999 unknown, and `where_is` answering the
/// §9 samples. Anything else is answered with `null`.
pub fn sample_server() -> FakeServer {
    FakeServer::start(Dialect::Python, |c| {
        Reply::Return(match c.command.as_str() {
            "version" => json!("1!7.0.0"),
            "list_machines" => sample_machines(),
            "list_jobs" => json!([job_15_listing()]),
            "get_job_machine_info" if c.job_id() == Some(15) => job_15_machine_info(),
            "get_job_machine_info" => json!({"width": null, "height": null,
                "connections": null, "machine_name": null, "boards": null}),
            "get_job_state" if c.job_id() == Some(15) => json!({"state": 3, "power": true,
                "keepalive": null, "reason": null, "start_time": JOB_15_START,
                "keepalivehost": "127.0.0.1"}),
            "get_job_state" => json!({"state": 0, "power": null, "keepalive": null,
                "reason": null, "start_time": null, "keepalivehost": null}),
            "where_is" => sample_where_is(c),
            _ => Value::Null,
        })
    })
}

/// The §9 answers of `where_is`, by the kwargs received.
fn sample_where_is(c: &crate::support::Call) -> Value {
    let k = &c.kwargs;
    let get = |name: &str| k.get(name).and_then(Value::as_i64);
    if get("job_id") == Some(15) && get("chip_x") == Some(9) && get("chip_y") == Some(5) {
        return json!({"machine": "big", "logical": [1, 1, 1], "physical": [0, 0, 13],
            "chip": [21, 17], "board_chip": [1, 1], "job_id": 15, "job_chip": [9, 5]});
    }
    if k.get("machine") == Some(&json!("big"))
        && get("cabinet") == Some(0)
        && get("frame") == Some(0)
        && get("board") == Some(5)
    {
        return json!({"machine": "big", "logical": [0, 1, 2], "physical": [0, 0, 5],
            "chip": [4, 20], "board_chip": [0, 0], "job_id": null, "job_chip": null});
    }
    Value::Null
}
