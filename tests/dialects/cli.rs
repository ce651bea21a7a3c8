//! The `spalloc` subcommands against each dialect: the same jobs on the
//! same machines must print the same thing and exit with the same code,
//! whichever server answers, except where the servers tell the client
//! different things (then the difference is stated here).
//!
//! Left out, because `spalloc` does not yet hide those differences (issue
//! 17 will): `spalloc job K --power-on` of a destroyed job (the Java
//! service raises where the Python server ignores it) and `--keepalive -1`
//! (which the Java service turns into 60 s).

use std::net::SocketAddr;

use serde_json::Value;
use spalloc::server::{Dialect, Machine, VirtualServer};
use spalloc::{Board, CreateJobOptions, JobRequest, JobState, Number, ProtocolClient};

use super::{connect, server_with, wait_state};
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
