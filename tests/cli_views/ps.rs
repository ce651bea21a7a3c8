//! `spalloc ps`: the table, its cells and filters, local times, JSON,
//! colour, and a closed pipe.

use std::io::Read;
use std::net::Ipv4Addr;
use std::time::Duration;

use serde_json::{Value, json};
use spalloc::server::{Machine, ServerConfig};
use spalloc::{CreateJobOptions, JobRequest, JobState, Number};

use super::{
    JOB_15_START, SAMPLE_TZ, client, same, sample_server, sandbox, server_with, wait_state,
};
use crate::support::cli::{binary, finish};
use crate::support::{Dialect, FakeServer, Reply};

const HEADER: &str = "ID  State  Power  Boards  Machine  Created at  Keepalive  Owner (Host)\n";

/// A `list_jobs` entry with every field given.
#[allow(clippy::too_many_arguments)]
fn listing(
    id: u64,
    state: u64,
    power: Value,
    boards: Value,
    machine: Value,
    start: Value,
    keepalive: Value,
    owner: Value,
    host: Value,
) -> Value {
    json!({"job_id": id, "owner": owner, "start_time": start, "keepalive": keepalive,
        "state": state, "power": power, "args": [], "kwargs": {},
        "allocated_machine_name": machine, "boards": boards, "keepalivehost": host})
}

/// A scripted server whose `list_jobs` is `jobs`.
fn serving_jobs(jobs: Value) -> FakeServer {
    FakeServer::start(Dialect::Python, move |c| match c.command.as_str() {
        "version" => Reply::Return(json!("1!7.0.0")),
        "list_jobs" => Reply::Return(jobs.clone()),
        _ => Reply::Return(Value::Null),
    })
}

#[test]
fn sample_row_is_byte_exact() {
    let fake = sample_server();
    let mut sb = sandbox(fake.addr());
    sb.env("TZ", SAMPLE_TZ);
    let out = sb.run(&["ps"]);
    out.expect_code(0);
    same(
        "ID  State  Power  Boards  Machine  Created at           Keepalive  Owner (Host)\n\
         15  ready  on         12  big      23/11/2026 20:21:56  None       oracle@example.com (127.0.0.1)\n",
        &out.stdout,
    );
    same("", &out.stderr);
    assert_eq!(fake.commands(), ["version", "list_jobs"]);
}

#[test]
fn cells_align_by_type_and_trailing_spaces_go() {
    let t = json!(JOB_15_START);
    let fake = serving_jobs(json!([
        listing(
            7,
            1,
            json!(null),
            json!(null),
            json!(null),
            json!(null),
            json!(60.0),
            json!("ann"),
            json!("")
        ),
        listing(
            123,
            2,
            json!(true),
            json!([[0, 0, 0], [0, 0, 1], [0, 0, 2]]),
            json!("m"),
            t.clone(),
            json!(5),
            json!("bob"),
            json!("10.0.0.1")
        ),
        listing(
            9,
            3,
            json!(false),
            json!([[1, 0, 0]]),
            json!("m"),
            t.clone(),
            json!(null),
            json!(null),
            json!("10.0.0.2")
        ),
        listing(
            10,
            4,
            json!(null),
            json!(null),
            json!(null),
            t,
            json!(1e-05),
            json!("dee"),
            json!(null)
        ),
    ]));
    let out = sandbox(fake.addr()).run(&["ps"]);
    out.expect_code(0);
    same(
        "ID   State  Power  Boards  Machine  Created at           Keepalive  Owner (Host)\n\
         \x20 7  queue                                               60.0       ann\n\
         123  power  on          3  m        23/11/2026 18:21:56  5          bob (10.0.0.1)\n\
         \x20 9  ready  off         1  m        23/11/2026 18:21:56  None       None (10.0.0.2)\n\
         \x2010  4                              23/11/2026 18:21:56  1e-05      dee\n",
        &out.stdout,
    );
}

#[test]
fn no_jobs_prints_only_the_header() {
    let fake = serving_jobs(json!([]));
    let out = sandbox(fake.addr()).run(&["ps"]);
    out.expect_code(0);
    same(HEADER, &out.stdout);
    same("", &out.stderr);
}

/// The start times and what Python's `datetime.fromtimestamp` shows for
/// them in each zone ("" where Python gives up: year 10000).
const TIMES: [f64; 9] = [
    0.0,
    1_795_458_116.0,
    1_795_458_116.9,
    1_782_000_000.0,
    951_782_400.0,
    -0.5,
    1.999_999_6,
    -2_208_988_800.25,
    253_402_300_799.0,
];

const IN_ZONES: [(&str, [&str; 9]); 4] = [
    (
        "UTC",
        [
            "01/01/1970 00:00:00",
            "23/11/2026 18:21:56",
            "23/11/2026 18:21:56",
            "21/06/2026 00:00:00",
            "29/02/2000 00:00:00",
            "31/12/1969 23:59:59",
            "01/01/1970 00:00:02",
            "31/12/1899 23:59:59",
            "31/12/9999 23:59:59",
        ],
    ),
    (
        "Europe/London",
        [
            "01/01/1970 01:00:00",
            "23/11/2026 18:21:56",
            "23/11/2026 18:21:56",
            "21/06/2026 01:00:00",
            "29/02/2000 00:00:00",
            "01/01/1970 00:59:59",
            "01/01/1970 01:00:02",
            "31/12/1899 23:59:59",
            "31/12/9999 23:59:59",
        ],
    ),
    (
        "Asia/Kolkata",
        [
            "01/01/1970 05:30:00",
            "23/11/2026 23:51:56",
            "23/11/2026 23:51:56",
            "21/06/2026 05:30:00",
            "29/02/2000 05:30:00",
            "01/01/1970 05:29:59",
            "01/01/1970 05:30:02",
            "01/01/1900 05:21:09",
            "",
        ],
    ),
    (
        "America/New_York",
        [
            "31/12/1969 19:00:00",
            "23/11/2026 13:21:56",
            "23/11/2026 13:21:56",
            "20/06/2026 20:00:00",
            "28/02/2000 19:00:00",
            "31/12/1969 18:59:59",
            "31/12/1969 19:00:02",
            "31/12/1899 18:59:59",
            "31/12/9999 18:59:59",
        ],
    ),
];

/// `Created at` is local time, honouring TZ exactly as Python does
/// (including the rounding of fractions and historical offsets), and
/// empty where Python cannot show the time.
#[test]
fn created_at_is_local_time_honouring_tz() {
    let jobs: Vec<Value> = TIMES
        .iter()
        .enumerate()
        .map(|(i, t)| {
            listing(
                i as u64 + 1,
                1,
                json!(null),
                json!(null),
                json!(null),
                json!(t),
                json!(null),
                json!("o"),
                json!(null),
            )
        })
        .collect();
    let fake = serving_jobs(Value::Array(jobs));
    for (tz, expected) in IN_ZONES {
        let mut sb = sandbox(fake.addr());
        sb.env("TZ", tz);
        let out = sb.run(&["ps"]);
        out.expect_code(0);
        let mut lines = out.stdout.lines();
        let header = lines.next().unwrap_or_default();
        let at = header.find("Created at").expect("a Created at column");
        let got: Vec<String> = lines
            .map(|l| {
                l.chars()
                    .skip(at)
                    .take(19)
                    .collect::<String>()
                    .trim()
                    .to_owned()
            })
            .collect();
        assert_eq!(got, expected, "TZ={tz}\n{}", out.stdout);
    }
    // JSON times are UTC whatever TZ says.
    let mut sb = sandbox(fake.addr());
    sb.env("TZ", "Asia/Kolkata");
    let out = sb.run(&["ps", "--json"]);
    out.expect_code(0);
    let v: Value = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(v[1]["start_time"], json!("2026-11-23T18:21:56Z"));
    assert_eq!(v[1]["start_time_unix"], json!(1_795_458_116.0));
    assert_eq!(v[8]["start_time"], json!("9999-12-31T23:59:59Z"));
}

/// Two machines, a job on each, one queued job; keepalives `None`,
/// `60.0` and an integer 5 as sent.
fn busy_server() -> (spalloc::server::VirtualServer, [u64; 3]) {
    let server = server_with(ServerConfig::instant().machines(vec![
        Machine::new("m", 1, 1).tags(["default"]),
        Machine::new("n", 1, 1)
            .tags(["other"])
            .base_ip(Ipv4Addr::new(10, 2, 0, 0)),
    ]));
    let mut c = client(server.local_addr());
    let mut opts = CreateJobOptions::new("alice");
    opts.keepalive = None;
    opts.machine = Some("m".into());
    let a = c
        .create_job(
            &JobRequest::Triads {
                width: 1,
                height: 1,
            },
            &opts,
        )
        .expect("create");
    wait_state(&mut c, a, JobState::Ready);
    let mut opts = CreateJobOptions::new("bob");
    opts.keepalive = Some(Number::Int(5));
    opts.machine = Some("n".into());
    let b = c.create_job(&JobRequest::AnyBoard, &opts).expect("create");
    wait_state(&mut c, b, JobState::Ready);
    let mut opts = CreateJobOptions::new("alice");
    opts.machine = Some("m".into());
    let q = c.create_job(&JobRequest::AnyBoard, &opts).expect("create");
    wait_state(&mut c, q, JobState::Queued);
    (server, [a, b, q])
}

#[test]
fn live_server_keepalives_owner_hosts_and_filters() {
    let (server, [a, b, q]) = busy_server();
    let sb = sandbox(server.local_addr());
    let out = sb.run(&["ps"]);
    out.expect_code(0);
    let rows: Vec<Vec<String>> = out
        .stdout
        .lines()
        .skip(1)
        .map(|l| {
            l.split("  ")
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .collect();
    assert_eq!(rows.len(), 3, "{}", out.stdout);
    assert_eq!(rows[0][0], a.to_string());
    assert_eq!(&rows[0][1..4], ["ready", "on", "3"]);
    assert_eq!(rows[0][4], "m");
    assert_eq!(rows[0][6..], ["None", "alice (127.0.0.1)"]);
    assert_eq!(rows[1][0], b.to_string());
    assert_eq!(&rows[1][1..5], ["ready", "on", "1", "n"]);
    // The server keeps float(keepalive), as the real one does.
    assert_eq!(rows[1][6..], ["5.0", "bob (127.0.0.1)"]);
    assert_eq!(rows[2][0], q.to_string());
    assert_eq!(rows[2][1], "queue");
    assert_eq!(rows[2][3..], ["60.0", "alice (127.0.0.1)"]);

    let ids = |args: &[&str]| -> Vec<String> {
        let out = sb.run(args);
        out.expect_code(0);
        assert!(out.stdout.starts_with("ID"), "{}", out.stdout);
        out.stdout
            .lines()
            .skip(1)
            .map(|l| l.split_whitespace().next().unwrap_or_default().to_owned())
            .collect()
    };
    // A queued job has no machine, so -m hides it.
    assert_eq!(ids(&["ps", "-m", "m"]), [a.to_string()]);
    assert_eq!(ids(&["ps", "--machine", "n"]), [b.to_string()]);
    assert_eq!(ids(&["ps", "-o", "alice"]), [a.to_string(), q.to_string()]);
    assert_eq!(ids(&["ps", "--owner", "bob", "-m", "n"]), [b.to_string()]);
    assert!(ids(&["ps", "-o", "bob", "-m", "m"]).is_empty());
    assert!(ids(&["ps", "-m", "nosuch"]).is_empty());
}

#[test]
fn json_has_every_documented_field() {
    let (server, [a, b, q]) = busy_server();
    let listed = client(server.local_addr()).list_jobs().expect("list_jobs");
    let out = sandbox(server.local_addr()).run(&["ps", "--json"]);
    out.expect_code(0);
    assert!(
        out.stdout.ends_with('\n') && out.stdout.lines().count() == 1,
        "{}",
        out.stdout
    );
    let v: Value = serde_json::from_str(&out.stdout).expect("JSON");
    let jobs = v.as_array().expect("an array");
    assert_eq!(jobs.len(), 3);
    let fields = [
        "id",
        "state",
        "power",
        "num_boards",
        "boards",
        "machine",
        "start_time",
        "start_time_unix",
        "keepalive",
        "owner",
        "keepalive_host",
        "request",
    ];
    for (job, listing) in jobs.iter().zip(&listed) {
        let keys: Vec<&str> = job
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, fields);
        assert_eq!(
            job["start_time_unix"],
            json!(listing.start_time.expect("a time"))
        );
        let iso = job["start_time"].as_str().expect("an ISO time");
        assert!(
            iso.len() == 20 && iso.ends_with('Z') && iso.as_bytes()[10] == b'T',
            "{iso}"
        );
        assert_eq!(job["owner"].as_str(), listing.owner.as_deref());
        assert_eq!(job["keepalive_host"], json!("127.0.0.1"));
    }
    let (ja, jb, jq) = (&jobs[0], &jobs[1], &jobs[2]);
    assert_eq!(ja["id"], json!(a));
    assert_eq!(ja["state"], json!("ready"));
    assert_eq!(ja["power"], json!(true));
    assert_eq!(ja["num_boards"], json!(3));
    assert_eq!(
        ja["boards"],
        json!([{"x": 0, "y": 0, "z": 0}, {"x": 0, "y": 0, "z": 1}, {"x": 0, "y": 0, "z": 2}])
    );
    assert_eq!(ja["machine"], json!("m"));
    assert_eq!(ja["keepalive"], Value::Null);
    assert_eq!(ja["request"]["args"], json!([1, 1]));
    assert_eq!(ja["request"]["kwargs"]["machine"], json!("m"));
    assert_eq!(jb["id"], json!(b));
    // What the server sent: float(keepalive), as the real one does.
    assert!(jb["keepalive"].is_f64(), "{}", jb["keepalive"]);
    assert_eq!(jb["keepalive"], json!(5.0));
    assert_eq!(jq["id"], json!(q));
    assert_eq!(jq["state"], json!("queued"));
    assert_eq!(jq["power"], Value::Null);
    assert_eq!(jq["num_boards"], Value::Null);
    assert_eq!(jq["boards"], Value::Null);
    assert_eq!(jq["machine"], Value::Null);
    assert!(jq["keepalive"].is_f64());
    assert_eq!(jq["keepalive"], json!(60.0));

    // Filters apply as in text mode; no jobs is an empty array.
    let out = sandbox(server.local_addr()).run(&["ps", "--json", "-o", "bob"]);
    let v: Value = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(v.as_array().map(Vec::len), Some(1));
    assert_eq!(v[0]["id"], json!(b));
    let out = sandbox(server.local_addr()).run(&["ps", "--json", "-o", "nobody"]);
    same("[]\n", &out.stdout);
}

#[test]
fn colour_always_never_and_no_color() {
    let t = json!(JOB_15_START);
    let fake = serving_jobs(json!([
        listing(
            1,
            1,
            json!(null),
            json!(null),
            json!(null),
            t.clone(),
            json!(60.0),
            json!("a"),
            json!(null)
        ),
        listing(
            2,
            2,
            json!(false),
            json!([[0, 0, 0]]),
            json!("m"),
            t.clone(),
            json!(60.0),
            json!("b"),
            json!(null)
        ),
        listing(
            3,
            3,
            json!(true),
            json!([[0, 0, 1]]),
            json!("m"),
            t.clone(),
            json!(60.0),
            json!("c"),
            json!(null)
        ),
        listing(
            4,
            3,
            json!(false),
            json!([[0, 0, 2]]),
            json!("m"),
            t,
            json!(60.0),
            json!("d"),
            json!(null)
        ),
    ]));
    let sb = sandbox(fake.addr());
    let out = sb.run(&["ps", "--color", "always"]);
    out.expect_code(0);
    let h = |s: &str| format!("\x1b[4;1m{s}\x1b[0m");
    let c = |code: &str, s: &str| format!("\x1b[{code}m{s}\x1b[0m");
    let time = "23/11/2026 18:21:56";
    let expected = format!(
        "{}  {}  {}  {}  {}  {}           {}  {}\n\
         \x201  {}                          {}  60.0       a\n\
         \x202  {}  {}         1  m        {}  60.0       b\n\
         \x203  {}  {}          1  m        {}  60.0       c\n\
         \x204  {}  {}         1  m        {}  60.0       d\n",
        h("ID"),
        h("State"),
        h("Power"),
        h("Boards"),
        h("Machine"),
        h("Created at"),
        h("Keepalive"),
        h("Owner (Host)"),
        c("34", "queue"),
        time,
        c("33", "power"),
        c("33", "off"),
        time,
        c("32", "ready"),
        c("32", "on"),
        time,
        c("32", "ready"),
        c("31", "off"),
        time,
    );
    same(&expected, &out.stdout);
    assert!(
        out.stdout
            .starts_with("\x1b[4;1mID\x1b[0m  \x1b[4;1mState\x1b[0m")
    );

    // `always` beats NO_COLOR; `never`, and `auto` on a pipe, write none.
    let mut sb = sandbox(fake.addr());
    sb.env("NO_COLOR", "1");
    same(&expected, &sb.run(&["ps", "--color=always"]).stdout);
    let plain = sb.run(&["ps"]).stdout;
    assert!(!plain.contains('\x1b'), "{plain:?}");
    let mut sb = sandbox(fake.addr());
    sb.env("TERM", "xterm-256color");
    let never = sb.run(&["ps", "--color", "never"]).stdout;
    same(&plain, &never);
    same(&plain, &sb.run(&["ps", "--colour", "auto"]).stdout);
    // A bad choice is a usage error.
    let out = sb.run(&["ps", "--color", "sometimes"]);
    out.expect_code(2);
    assert!(
        out.stderr.starts_with(
            "spalloc ps: error: argument --color/--colour: invalid choice: 'sometimes' \
             (choose from 'auto', 'always', 'never')\nusage: spalloc ps "
        ),
        "{}",
        out.stderr
    );
}

/// `spalloc ps | head -1`: the reader goes away early; spalloc exits 0
/// without a word.
#[test]
fn closed_pipe_exits_zero_quietly() {
    let jobs: Vec<Value> = (1..=3000)
        .map(|i| {
            listing(
                i,
                3,
                json!(true),
                json!([[0, 0, 0]]),
                json!("m"),
                json!(JOB_15_START),
                json!(60.0),
                json!("someone@example.org"),
                json!("127.0.0.1"),
            )
        })
        .collect();
    let fake = serving_jobs(Value::Array(jobs));
    let sb = sandbox(fake.addr());
    let mut child = sb.command(&binary(), &["ps"]).spawn().expect("spawn");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut first = [0u8; 100];
    stdout.read_exact(&mut first).expect("the first bytes");
    assert!(
        first.starts_with(b"ID  "),
        "{:?}",
        String::from_utf8_lossy(&first)
    );
    drop(stdout);
    let out = finish(child, Duration::from_secs(20));
    out.expect_code(0);
    same("", &out.stderr);

    // The same through a shell pipeline, as users write it.
    let script = format!(
        "{{ '{}' ps; echo \"rc=$?\" >&2; }} | head -1",
        binary().display()
    );
    let out = finish(
        sb.command(std::path::Path::new("sh"), &["-c", &script])
            .spawn()
            .expect("spawn sh"),
        Duration::from_secs(20),
    );
    same(
        "ID    State  Power  Boards  Machine  Created at           Keepalive  Owner (Host)\n",
        &out.stdout,
    );
    same("rc=0\n", &out.stderr);
}
