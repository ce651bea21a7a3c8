//! The `spalloc` subcommands against each dialect: the same jobs on the
//! same machines must print the same thing and exit with the same code,
//! whichever server answers, except where the servers tell the client
//! different things (then the difference is stated here). Where one server
//! raises an exception and the other answers `null` or does nothing (a job
//! without boards powered, an unknown job destroyed or watched), the
//! outcome is the documented one on both.

use std::net::SocketAddr;

use serde_json::Value;
use spalloc::server::{Dialect, Machine, VirtualServer};
use spalloc::{Board, CreateJobOptions, JobRequest, JobState, Number, ProtocolClient};

use super::{connect, server_with, wait_state};
use crate::support::PATIENCE;
use crate::support::cli::Sandbox;

/// One run of the binary: what was run and what came out.
#[derive(Debug, PartialEq)]
struct Run {
    args: String,
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Machines `m` (2 × 2) and `big` (3 × 2 with a dead board), and two
/// ready jobs: 1 on board (1, 1, 2) of `m` for `ann`, 2 on six boards of
/// `big` for `bob` with a 30 s keepalive.
fn setup(dialect: Dialect) -> (VirtualServer, ProtocolClient) {
    let server = server_with(dialect, |c| {
        c.machines(vec![
            Machine::new("m", 2, 2),
            Machine::new("big", 3, 2)
                .tags(["big"])
                .dead_boards([(2, 1, 2)])
                .base_ip("10.3.0.0".parse().expect("an address")),
        ])
    });
    let mut c = connect(server.local_addr());
    let a = c
        .create_job(
            &JobRequest::Board(Board::new(1, 1, 2)),
            &CreateJobOptions::new("ann"),
        )
        .expect("create");
    let mut bob = CreateJobOptions::new("bob");
    bob.tags = Some(vec!["big".into()]);
    bob.keepalive = Some(Number::Float(30.0));
    let b = c.create_job(&JobRequest::Boards(6), &bob).expect("create");
    wait_state(&mut c, a, JobState::Ready);
    wait_state(&mut c, b, JobState::Ready);
    (server, c)
}

fn run(sb: &Sandbox, args: &[&str]) -> Run {
    let out = sb.run(args);
    Run {
        args: args.join(" "),
        code: out.code,
        stdout: mask_times(&out.stdout),
        stderr: out.stderr,
    }
}

/// Local times (`dd/mm/yyyy hh:mm:ss`), which differ from run to run.
fn mask_times(text: &str) -> String {
    let pattern = "dd/dd/dddd dd:dd:dd";
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        let fits = chars.len() - i >= pattern.len()
            && pattern.chars().zip(&chars[i..]).all(|(p, c)| match p {
                'd' => c.is_ascii_digit(),
                other => other == *c,
            });
        if fits {
            out.push_str("<time>");
            i += pattern.len();
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

/// JSON output with its times masked and the request's kwargs without the
/// `owner` and `keepalive` the Java service echoes back (and the Python
/// server keeps apart).
fn normalised_json(text: &str) -> Value {
    fn walk(v: &mut Value) {
        match v {
            Value::Object(map) => {
                for key in ["start_time", "start_time_unix"] {
                    if let Some(t) = map.get_mut(key) {
                        *t = Value::from("<time>");
                    }
                }
                if let Some(Value::Object(kwargs)) = map.get_mut("kwargs") {
                    kwargs.shift_remove("owner");
                    kwargs.shift_remove("keepalive");
                }
                map.values_mut().for_each(walk);
            }
            Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    let mut v: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    walk(&mut v);
    v
}

/// `job N`'s text without the request's `keepalive=` and `owner=` lines
/// (see [`normalised_json`]).
fn without_echoed_kwargs(text: &str) -> String {
    text.lines()
        .filter(|l| {
            let t = l.trim_start();
            !(t.starts_with("keepalive=") || t.starts_with("owner='"))
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

const STEPS: [&[&str]; 24] = [
    &["ps"],
    &["ps", "--json"],
    &["ps", "-o", "bob"],
    &["machine"],
    &["machine", "--json"],
    &["machine", "m"],
    &["machine", "--detailed", "big"],
    &["machine", "big", "--json"],
    &["machine", "nope"],
    &["job", "1"],
    &["job", "2", "--json"],
    &["job", "99"],
    &["where-is", "--board", "m", "1", "1", "2"],
    &["where-is", "--physical", "m", "0", "0", "7"],
    &["where-is", "--chip", "m", "17", "22"],
    &["where-is", "--job-chip", "1", "1", "2"],
    &["where-is", "--json", "--chip", "big", "0", "0"],
    &["where-is", "--board", "m", "0", "1", "0"],
    &["where-is", "--job-chip", "99", "0", "0"],
    &["job", "1", "--destroy", "done"],
    &["job", "1"],
    &["alloc", "-c", "echo", "host={hostname} w={w} h={h} id={id}"],
    &["alloc", "--json", "2", "2", "-c", "true"],
    &["ps"],
];

fn runs(addr: SocketAddr) -> Vec<Run> {
    let sb = Sandbox::new();
    sb.use_server(addr);
    STEPS.iter().map(|args| run(&sb, args)).collect()
}

#[test]
fn the_same_output_from_either_server() {
    let (python, _pc) = setup(Dialect::Python);
    let (java, _jc) = setup(Dialect::Java);
    let from_python = runs(python.local_addr());
    let from_java = runs(java.local_addr());
    for (p, j) in from_python.iter().zip(&from_java) {
        let what = format!("`spalloc {}` differs between the dialects", p.args);
        assert_eq!((p.code, &p.stderr), (j.code, &j.stderr), "{what}");
        if p.args.contains("--json") {
            assert_eq!(
                normalised_json(&p.stdout),
                normalised_json(&j.stdout),
                "{what}"
            );
        } else if p.args.starts_with("job ") {
            assert_eq!(p.stdout, without_echoed_kwargs(&j.stdout), "{what}");
        } else {
            assert_eq!(p.stdout, j.stdout, "{what}");
        }
    }
    // And they did something (the last run of each).
    let step = |args: &str| {
        STEPS
            .iter()
            .rposition(|s| s.join(" ") == args)
            .map(|i| &from_python[i])
            .expect("a step")
    };
    assert!(step("ps -o bob").stdout.contains("bob (127.0.0.1)"));
    assert_eq!(step("machine nope").code, Some(6));
    assert!(step("job 1").stdout.contains("State: destroyed"));
    assert!(step("job 1").stdout.contains("Reason: done"));
    let alloc = step("alloc -c echo host={hostname} w={w} h={h} id={id}");
    assert_eq!(alloc.code, Some(0), "{alloc:?}");
    assert!(
        alloc.stdout.contains("host=192.168.0.1 w=8 h=8 id=3"),
        "{alloc:?}"
    );
    assert_eq!(step("where-is --job-chip 99 0 0").code, Some(4));
}

/// A queued job: the Java service has already tied it to a machine and
/// says its power is off; the Python server says neither.
#[test]
fn a_queued_job_as_each_server_describes_it() {
    for dialect in [Dialect::Python, Dialect::Java] {
        let (server, mut c) = setup(dialect);
        let q = c
            .create_job(
                &JobRequest::Board(Board::new(1, 1, 2)),
                &CreateJobOptions::new("ann"),
            )
            .expect("create");
        wait_state(&mut c, q, JobState::Queued);
        let sb = Sandbox::new();
        sb.use_server(server.local_addr());
        let ps = sb.run(&["ps"]);
        ps.expect_code(0);
        let row = ps.stdout.lines().nth(3).unwrap_or_default().to_owned();
        let job = sb.run(&["job", &q.to_string()]);
        job.expect_code(0);
        match dialect {
            Dialect::Python => {
                assert!(
                    row.starts_with(" 3  queue                          "),
                    "{row:?}"
                );
                assert!(!job.stdout.contains("Running on"), "{}", job.stdout);
            }
            Dialect::Java => {
                assert!(
                    row.starts_with(" 3  queue  off            m        "),
                    "{row:?}"
                );
                assert!(
                    job.stdout.contains("Board power: off\n Running on: m\n"),
                    "{}",
                    job.stdout
                );
            }
        }
    }
}

/// `spalloc serve --dialect`, alone and over a configuration file.
#[test]
fn serve_in_either_dialect() {
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/virtual-server.toml")
        .display()
        .to_string();
    for (args, version) in [
        (vec!["--dialect", "java"], "5.0.0"),
        (vec!["--dialect", "PYTHON"], "1.1.0"),
        (vec!["--config", &example, "--dialect", "java"], "5.0.0"),
        (vec!["--config", &example], "1.1.0"),
    ] {
        let sb = Sandbox::new();
        let running = sb.spawn(&[&["serve", "--port", "0"][..], &args].concat());
        // The whole of the last line, not just its start.
        assert!(
            running
                .wait_for_stdout_line("dialect: ", crate::support::PATIENCE)
                .is_some(),
            "{}",
            running.stderr()
        );
        let out = running.stdout();
        let port: u16 = out
            .lines()
            .find_map(|l| l.strip_prefix("spalloc virtual server listening on "))
            .and_then(|a| a.rsplit(':').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no address in {out:?}"));
        let dialect = if version == "5.0.0" { "java" } else { "python" };
        assert!(
            out.contains(&format!("\ndialect: {dialect} (version {version})\n")),
            "{out}"
        );
        let mut c = connect(SocketAddr::from(([127, 0, 0, 1], port)));
        assert_eq!(c.version().expect("version"), version);
        running.signal(15);
        running.finish(crate::support::PATIENCE).expect_code(0);
    }
    let sb = Sandbox::new();
    let out = sb.run(&["serve", "--dialect", "perl"]);
    out.expect_code(2);
    assert!(
        out.stderr
            .contains("argument --dialect: \"perl\" is not a dialect: use \"python\" or \"java\""),
        "{}",
        out.stderr
    );
}

/// Powering, destroying and listing the addresses of jobs without boards:
/// the Java service raises exceptions (`no boards currently allocated`, `no
/// such job`) where the Python server does nothing or answers `null`; the
/// outcome is the same. Job 3 is destroyed, 4 queued, 99 unknown.
#[test]
fn jobs_without_boards_the_same_from_either_server() {
    const JOB_STEPS: [&[&str]; 19] = [
        &["job", "4", "--power-on"],
        &["job", "4", "--power-off"],
        &["job", "4", "--ethernet-ips"],
        &["job", "3", "--power-on"],
        &["job", "3", "--reset"],
        &["job", "3", "--power-off"],
        &["job", "3", "--ethernet-ips"],
        &["job", "3", "--destroy"],
        &["where-is", "--job-chip", "3", "0", "0"],
        &["where-is", "--job-chip", "4", "0", "0"],
        &["job", "99", "--power-on"],
        &["job", "99", "--power-off"],
        &["job", "99", "--ethernet-ips"],
        &["job", "99", "--destroy", "not there"],
        &["job", "99", "--json"],
        &["job", "2", "--power-off"],
        &["job", "2", "--power-on"],
        &["job", "2", "--reset"],
        &["job", "4", "--destroy"],
    ];
    let outcomes = |dialect: Dialect| -> Vec<Run> {
        let (server, mut c) = setup(dialect);
        let gone = c
            .create_job(&JobRequest::AnyBoard, &CreateJobOptions::new("ann"))
            .expect("create");
        wait_state(&mut c, gone, JobState::Ready);
        c.destroy_job(gone, Some("done")).expect("destroy");
        let queued = c
            .create_job(
                &JobRequest::Board(Board::new(1, 1, 2)),
                &CreateJobOptions::new("ann"),
            )
            .expect("create");
        wait_state(&mut c, queued, JobState::Queued);
        assert_eq!((gone, queued), (3, 4));
        let sb = Sandbox::new();
        sb.use_server(server.local_addr());
        let runs: Vec<Run> = JOB_STEPS.iter().map(|args| run(&sb, args)).collect();
        // What the commands did.
        assert_eq!(c.get_job_state(2).expect("state").power, Some(true));
        assert_eq!(
            c.get_job_state(4).expect("state").state,
            JobState::Destroyed
        );
        runs
    };
    let from_python = outcomes(Dialect::Python);
    let from_java = outcomes(Dialect::Java);
    assert_eq!(from_python, from_java);
    let expected = [
        (8, "", "Error: Cannot power on job 4 in state queued\n"),
        (8, "", "Error: Cannot power off job 4 in state queued\n"),
        (9, "", "Job 4 is queued or does not exist\n"),
        (8, "", "Error: Cannot power on job 3 in state destroyed\n"),
        (8, "", "Error: Cannot power on job 3 in state destroyed\n"),
        (8, "", "Error: Cannot power off job 3 in state destroyed\n"),
        (9, "", "Job 3 is queued or does not exist\n"),
        (0, "", ""),
        (4, "", "No boards at the specified location\n"),
        (4, "", "No boards at the specified location\n"),
        (8, "", "Error: Cannot power on job 99 in state unknown\n"),
        (8, "", "Error: Cannot power off job 99 in state unknown\n"),
        (9, "", "Job 99 is queued or does not exist\n"),
        (0, "", ""),
        (
            0,
            "{\"id\":99,\"state\":\"unknown\",\"owner\":null,\"start_time\":null,\"start_time_unix\":null,\"keepalive\":null,\"keepalive_host\":null,\"reason\":null,\"request\":null,\"machine\":null,\"hostname\":null,\"width\":null,\"height\":null,\"num_boards\":null,\"boards\":null,\"power\":null,\"connections\":null,\"keeper_pid\":null}\n",
            "",
        ),
        (0, "", ""),
        (0, "", ""),
        (0, "", ""),
        (0, "", ""),
    ];
    for (run, (code, stdout, stderr)) in from_python.iter().zip(expected) {
        assert_eq!(
            (run.code, run.stdout.as_str(), run.stderr.as_str()),
            (Some(code), stdout, stderr),
            "`spalloc {}`",
            run.args
        );
    }
}

/// `--watch` of a job or machine the server does not know: the Java
/// service refuses to watch it, the Python server does not mind; either
/// way the job is shown as unknown until Ctrl-C, and the machine is not
/// found.
#[test]
fn watching_what_is_not_there_the_same_from_either_server() {
    let outcomes = |dialect: Dialect| -> (Run, Run) {
        let (server, _c) = setup(dialect);
        let sb = Sandbox::new();
        sb.use_server(server.local_addr());
        let watching = sb.spawn(&["job", "99", "--watch"]);
        assert!(
            watching.wait_for_stdout("State: unknown\n", PATIENCE),
            "{dialect:?}: {}",
            watching.stderr()
        );
        watching.signal(2);
        let job = watching.finish(PATIENCE);
        let job = Run {
            args: "job 99 --watch".into(),
            code: job.code,
            stdout: job.stdout,
            stderr: job.stderr,
        };
        let machine = run(&sb, &["machine", "nope", "--watch"]);
        (job, machine)
    };
    let (job, machine) = outcomes(Dialect::Python);
    assert_eq!((job.code, job.stderr.as_str()), (Some(0), ""));
    assert_eq!(job.stdout, "Job ID: 99\n State: unknown\n\n");
    assert_eq!(machine.code, Some(6));
    assert_eq!(machine.stderr, "No machine 'nope' was found\n");
    assert_eq!((job, machine), outcomes(Dialect::Java));
}

/// The keepalive asked for beside the one applied: an interval is
/// honoured by both servers; "never expire" (`--keepalive -1`) only by the
/// Python server, and alloc says what the Java service did instead, in a
/// status line and in `--json`, and how long a kept job now has.
#[test]
fn keepalive_not_honoured_is_reported() {
    let outcomes = |dialect: Dialect| -> [Run; 4] {
        let (server, mut c) = setup(dialect);
        let sb = Sandbox::new();
        sb.use_server(server.local_addr());
        let runs = [
            run(&sb, &["alloc", "--keepalive", "30", "--json", "-c", "true"]),
            run(
                &sb,
                &["alloc", "-D", "--keepalive", "-1", "--json", "-c", "true"],
            ),
            run(
                &sb,
                &["alloc", "-q", "-D", "--keepalive", "-1", "-c", "true"],
            ),
            run(
                &sb,
                &["alloc", "-D", "--resume", "4", "--json", "-c", "true"],
            ),
        ];
        // What the server applies, by its own account.
        let listed: Vec<_> = c
            .list_jobs()
            .expect("list")
            .into_iter()
            .filter(|j| j.job_id > 2)
            .map(|j| (j.job_id, j.keepalive.map(Number::as_f64)))
            .collect();
        let applied = match dialect {
            Dialect::Python => None,
            Dialect::Java => Some(60.0),
        };
        assert_eq!(listed, [(4, applied), (5, applied)], "{dialect:?}");
        runs
    };
    let json = |run: &Run| -> Value { serde_json::from_str(&run.stdout).unwrap_or(Value::Null) };
    let python = outcomes(Dialect::Python);
    let java = outcomes(Dialect::Java);

    // Honoured by both: the same outcome, without a word about it.
    assert_eq!(python[0], java[0]);
    assert_eq!(python[0].code, Some(0));
    assert_eq!(python[0].stderr, "Job 3: Ready!\n");
    assert_eq!(json(&python[0])["keepalive"], Value::from(30.0));
    assert_eq!(json(&python[0])["keepalive_honoured"], Value::Bool(true));

    // Never expire.
    let p = &python[1];
    assert_eq!(p.code, Some(0));
    assert_eq!(
        p.stderr,
        "Job 4: Ready!\n\
         Job 4: Kept: it never expires (--keepalive -1): destroy it with `spalloc job --destroy 4`.\n"
    );
    assert_eq!(
        (&json(p)["keepalive"], &json(p)["keepalive_honoured"]),
        (&Value::Null, &Value::Bool(true))
    );
    let j = &java[1];
    assert_eq!(j.code, Some(0));
    assert_eq!(
        j.stderr,
        "Job 4: The server applies a keepalive of 60 s, not the \"never expire\" (--keepalive -1) asked for.\n\
         Job 4: Ready!\n\
         Job 4: Kept: it expires about 60 s after its last keepalive unless something keeps it alive (`spalloc alloc --resume 4`).\n"
    );
    assert_eq!(
        (&json(j)["keepalive"], &json(j)["keepalive_honoured"]),
        (&Value::from(60.0), &Value::Bool(false))
    );
    // Apart from those two fields, the same allocation.
    let without = |run: &Run| {
        let mut v = json(run);
        if let Value::Object(m) = &mut v {
            m.shift_remove("keepalive");
            m.shift_remove("keepalive_honoured");
        }
        v
    };
    assert_ne!(without(p), Value::Null);
    assert_eq!(without(p), without(j));

    // A resumed job: nothing was asked, so nothing is said, but the
    // interval applied is known.
    let (p, j) = (&python[3], &java[3]);
    assert_eq!((p.code, j.code), (Some(0), Some(0)));
    assert_eq!(
        p.stderr,
        "Job 4: Ready!\nJob 4: Kept: it never expires: destroy it with `spalloc job --destroy 4`.\n"
    );
    assert_eq!(
        j.stderr,
        "Job 4: Ready!\nJob 4: Kept: it expires about 60 s after its last keepalive unless something keeps it alive (`spalloc alloc --resume 4`).\n"
    );
    assert_eq!(
        (&json(p)["keepalive"], &json(p)["keepalive_honoured"]),
        (&Value::Null, &Value::Null)
    );
    assert_eq!(
        (&json(j)["keepalive"], &json(j)["keepalive_honoured"]),
        (&Value::from(60.0), &Value::Null)
    );

    // Quiet means quiet, on both.
    for q in [&python[2], &java[2]] {
        assert_eq!(
            (q.code, q.stdout.as_str(), q.stderr.as_str()),
            (Some(0), "", "")
        );
    }
}

/// Where the servers really differ, each outcome is the documented one: a
/// request no machine can meet is made and cancelled at once by the Python
/// server (so there is a job to report), and refused by the Java service.
#[test]
fn an_impossible_request_as_each_server_answers_it() {
    for (dialect, code, stderr) in [
        (
            Dialect::Python,
            1,
            "Job 3: Destroyed: Cancelled: No suitable machines available.\n",
        ),
        (
            Dialect::Java,
            6,
            "Error from server: no machine available which matches allocation request\n",
        ),
    ] {
        let (server, _c) = setup(dialect);
        let sb = Sandbox::new();
        sb.use_server(server.local_addr());
        let out = run(&sb, &["alloc", "-t", "nowhere", "-c", "true"]);
        assert_eq!(
            (out.code, out.stdout.as_str(), out.stderr.as_str()),
            (Some(code), "", stderr),
            "{dialect:?}"
        );
    }
}
