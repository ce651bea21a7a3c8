//! Signals against a server that stalls: for each stage of `spalloc alloc`
//! (connecting, the version check, `create_job`, waiting for the boards,
//! running `-c`, the prompt, and the final destroy), a server that stops
//! answering exactly there, then SIGINT, SIGTERM or SIGHUP, with the
//! default `--timeout` and with `--timeout -1` (no limit). Every case must
//! end promptly with the documented exit code, no CSV left behind, and the
//! job destroyed wherever the server can still be told.
//!
//! The time recorded is from the signal to the end of the process.

use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::record;
use crate::support::cli::{Output, Running, Sandbox};
use crate::support::{Call, Dialect, FakeServer, Reply};

const SIGHUP: i32 = 1;
const SIGINT: i32 = 2;
const SIGTERM: i32 = 15;
const SIGNALS: [(i32, &str); 3] = [(SIGINT, "SIGINT"), (SIGTERM, "SIGTERM"), (SIGHUP, "SIGHUP")];
/// How long anything may take to show up before the test gives up.
const LONG: Duration = Duration::from_secs(20);
/// How long, at most, from the signal to the end of the process, for the
/// cases whose release does not wait on the stalled server. Each blocking
/// call is cut short within milliseconds; the bound is generous so that a
/// loaded machine cannot fail it, and far below the 10 s `--timeout` (or
/// no limit at all) that a call which ignored the signal would take.
const PROMPT_EXIT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Connect,
    Version,
    CreateJob,
    Wait,
    Command,
    Prompt,
    Destroy,
}

impl Stage {
    fn name(self) -> &'static str {
        match self {
            Stage::Connect => "while connecting (the server never accepts)",
            Stage::Version => "during the version check (no reply)",
            Stage::CreateJob => "while create_job is in flight (no reply)",
            Stage::Wait => "while waiting for power (no reply)",
            Stage::Command => "while -c runs (keepalives unanswered)",
            Stage::Prompt => "at the prompt (keepalives unanswered)",
            Stage::Destroy => "during the final destroy (no reply)",
        }
    }
}

/// The job's state, ready unless the stage is the wait for power.
fn state(stage: Stage) -> Value {
    let s = if stage == Stage::Wait { 2 } else { 3 };
    json!({"state": s, "power": true, "keepalive": 60.0, "reason": null,
           "start_time": 1.0, "keepalivehost": "127.0.0.1"})
}

/// A server that answers everything as a real one would, except the calls
/// of `stage`, which it never answers.
fn stalling(stage: Stage) -> FakeServer {
    FakeServer::start(Dialect::Python, move |c: &Call| {
        let stalls = matches!(
            (stage, c.command.as_str()),
            (Stage::Version, "version")
                | (Stage::CreateJob, "create_job")
                | (Stage::Wait, "notify_job")
                | (Stage::Command | Stage::Prompt, "job_keepalive")
                | (Stage::Destroy, "destroy_job")
        );
        if stalls {
            return Reply::Nothing;
        }
        Reply::Return(match c.command.as_str() {
            "version" => json!("1!7.1.0"),
            "create_job" => json!(7),
            "get_job_state" => state(stage),
            "get_job_machine_info" => json!({"width": 8, "height": 8,
                "connections": [[[0, 0], "127.100.0.1"]], "machine_name": "m",
                "boards": [[0, 0, 0]]}),
            _ => Value::Null,
        })
    })
}

/// A port whose listener never accepts and whose queue is full, so that a
/// connection attempt hangs (the SYN is dropped). Keep both parts alive.
fn unconnectable() -> (TcpListener, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    // SAFETY: listen(2) on a socket we own, with a plain integer backlog;
    // Linux lets a listening socket's backlog be changed this way.
    let rc = unsafe { libc::listen(listener.as_raw_fd(), 0) };
    assert_eq!(rc, 0, "listen");
    // One connection fills a zero backlog.
    let filler = TcpStream::connect(listener.local_addr().expect("addr")).expect("filler");
    (listener, filler)
}

struct Case {
    stage: Stage,
    signal: i32,
    name: &'static str,
    unlimited: bool,
}

struct Ran {
    out: Output,
    /// From the (last) signal to the end of the process.
    took: Duration,
    destroys: Vec<Call>,
}

fn run(case: &Case) -> Ran {
    let sb = Sandbox::new();
    let server = (case.stage != Stage::Connect).then(|| stalling(case.stage));
    let blocked = (case.stage == Stage::Connect).then(unconnectable);
    let port = match (&server, &blocked) {
        (Some(s), _) => s.port(),
        (None, Some((l, _))) => l.local_addr().expect("addr").port(),
        (None, None) => unreachable!(),
    }
    .to_string();
    let mut args = vec!["alloc", "-H", "127.0.0.1", "-P", &port, "--owner", "me"];
    if case.stage == Stage::Connect {
        // The log line that says the connection attempt is under way.
        args.push("--debug");
    }
    if case.unlimited {
        args.extend(["--timeout", "-1"]);
    }
    match case.stage {
        Stage::Command => args.extend(["--keepalive", "1", "-c", "sleep", "30"]),
        Stage::Prompt => args.extend(["--keepalive", "1"]),
        Stage::Destroy if case.unlimited => args.extend(["--keepalive", "1"]),
        Stage::Destroy => args.extend(["--keepalive", "1", "--timeout", "1"]),
        _ => args.extend(["-c", "true"]),
    }
    let running = sb.spawn(&args);
    let ready = match case.stage {
        Stage::Connect => running.wait_for_stderr(&format!("connecting to 127.0.0.1:{port}"), LONG),
        Stage::Version => server_saw(&server, "version"),
        Stage::CreateJob => server_saw(&server, "create_job"),
        Stage::Wait => {
            running.wait_for_stderr("Waiting for power on", LONG)
                && server_saw(&server, "notify_job")
        }
        Stage::Command | Stage::Prompt | Stage::Destroy => {
            running.wait_for_stderr("Ready!", LONG) && server_saw(&server, "job_keepalive")
        }
    };
    assert!(
        ready,
        "{}: never reached the stage\n{}",
        case.stage.name(),
        running.stderr()
    );
    running.signal(case.signal);
    let mut started = Instant::now();
    if case.stage == Stage::Destroy {
        assert!(server_saw(&server, "destroy_job"), "{}", running.stderr());
        if case.unlimited {
            // With no limit, a second signal ends the destroy at once.
            running.signal(case.signal);
            started = Instant::now();
        }
    }
    let out = finish(running);
    let took = started.elapsed();
    let destroys = server
        .as_ref()
        .map(|s| s.calls_named("destroy_job"))
        .unwrap_or_default();
    assert!(
        sb.leftover_temp_files().is_empty(),
        "{}: CSV left behind\n{}",
        case.stage.name(),
        out.stderr
    );
    drop(blocked);
    Ran {
        out,
        took,
        destroys,
    }
}

/// The last line spalloc printed, leaving out its debug log.
fn last_line(stderr: &str) -> &str {
    stderr
        .lines()
        .rfind(|l| !l.starts_with('['))
        .unwrap_or_default()
}

fn server_saw(server: &Option<FakeServer>, command: &str) -> bool {
    server
        .as_ref()
        .is_some_and(|s| s.wait_for_count(command, 1))
}

fn finish(running: Running) -> Output {
    running.finish(LONG)
}

/// The exit code `spalloc alloc` documents for `signal` at `stage`.
fn expected_code(stage: Stage, signal: i32) -> i32 {
    match (stage, signal) {
        // SIGINT reaches the command, which dies of it; spalloc passes its
        // status on.
        (Stage::Command, SIGINT) => 130,
        // At the prompt, Ctrl-C is how one says "done".
        (Stage::Prompt | Stage::Destroy, SIGINT) => 0,
        (_, SIGINT) => 4,
        (_, s) => 128 + s,
    }
}

fn status_line(signal: i32) -> &'static str {
    match signal {
        SIGINT => "Keyboard interrupt.",
        SIGHUP => "Hangup (SIGHUP).",
        _ => "Terminated (SIGTERM).",
    }
}

fn reason(signal: i32) -> &'static str {
    match signal {
        SIGINT => "Keyboard interrupt (SIGINT).",
        SIGHUP => "Hangup (SIGHUP).",
        _ => "Terminated (SIGTERM).",
    }
}

/// Runs every signal, with and without a limit, at one stage.
fn stage(stage: Stage) {
    let mut failures = Vec::new();
    for unlimited in [false, true] {
        for (signal, name) in SIGNALS {
            let case = Case {
                stage,
                signal,
                name,
                unlimited,
            };
            let r = run(&case);
            let problem = check(&case, &r);
            record(
                "signals-stalled",
                json!({
                    "case": format!("{} {}{}", case.name, stage.name(),
                                    if unlimited { ", --timeout -1" } else { "" }),
                    "outcome": if problem.is_none() { "pass" } else { "fail" },
                    "detail": {
                        "exit": r.out.code,
                        "exit after (s)": (r.took.as_secs_f64() * 100.0).round() / 100.0,
                        "destroy_job": r.destroys.first()
                            .and_then(|c| c.kwargs.get("reason").cloned())
                            .unwrap_or(Value::Null),
                        "stderr (last line)": last_line(&r.out.stderr),
                    },
                }),
            );
            if let Some(p) = problem {
                failures.push(format!(
                    "{name}{}: {p}\n--- stderr ---\n{}",
                    if unlimited { " --timeout -1" } else { "" },
                    r.out.stderr
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// What is wrong with the outcome of `case`, if anything.
fn check(case: &Case, r: &Ran) -> Option<String> {
    let code = expected_code(case.stage, case.signal);
    if r.out.code != Some(code) {
        return Some(format!("exit {:?}, expected {code}", r.out.code));
    }
    if r.out.stderr.contains("panicked") {
        return Some("panicked".into());
    }
    let limit = match case.stage {
        // Waits up to a second for the new job's id, so that it can be
        // destroyed if the server is merely slow.
        Stage::CreateJob => PROMPT_EXIT + Duration::from_secs(1),
        _ => PROMPT_EXIT,
    };
    if r.took > limit {
        return Some(format!("took {:?} after the signal", r.took));
    }
    let reasons: Vec<Option<&str>> = r
        .destroys
        .iter()
        .map(|c| c.kwargs.get("reason").and_then(Value::as_str))
        .collect();
    match case.stage {
        Stage::Connect | Stage::Version | Stage::CreateJob => {
            if !reasons.is_empty() {
                return Some(format!("destroyed a job it never had: {reasons:?}"));
            }
            if !r.out.stderr.contains(status_line(case.signal)) {
                return Some("no line saying why it stopped".into());
            }
        }
        Stage::Destroy => {
            // The release could not be done; one line says so, and when
            // the job will expire.
            let lines: Vec<&str> = r
                .out
                .stderr
                .lines()
                .filter(|l| l.contains("could not be destroyed"))
                .collect();
            if lines.len() != 1 || !lines[0].contains("expires about 60 s after its last keepalive")
            {
                return Some(format!(
                    "expected one line about the failed destroy: {lines:?}"
                ));
            }
        }
        Stage::Wait | Stage::Command | Stage::Prompt => {
            // Ctrl-C is the command's to act on: spalloc ends because the
            // command did, and gives no reason of its own.
            let expected = match (case.stage, case.signal) {
                (Stage::Command, SIGINT) => None,
                (_, s) => Some(reason(s)),
            };
            if reasons != [expected] {
                return Some(format!("destroy_job reasons {reasons:?}"));
            }
            if case.stage == Stage::Wait
                && !r
                    .out
                    .stderr
                    .contains(&format!("Job 7: {}", status_line(case.signal)))
            {
                return Some("no status line for the signal".into());
            }
        }
    }
    None
}

#[test]
fn signals_while_connecting_to_a_server_that_never_accepts() {
    stage(Stage::Connect);
}

#[test]
fn signals_while_the_version_check_is_unanswered() {
    stage(Stage::Version);
}

#[test]
fn signals_while_create_job_is_unanswered() {
    stage(Stage::CreateJob);
}

#[test]
fn signals_while_waiting_on_a_stalled_server() {
    stage(Stage::Wait);
}

#[test]
fn signals_while_the_command_runs_and_keepalives_stall() {
    stage(Stage::Command);
}

#[test]
fn signals_at_the_prompt_while_keepalives_stall() {
    stage(Stage::Prompt);
}

#[test]
fn signals_while_the_destroy_is_unanswered() {
    stage(Stage::Destroy);
}

/// Without a second signal, a destroy that the server never answers still
/// ends, within the 10 s that bounds it whatever `--timeout` says.
#[test]
fn an_unanswered_destroy_ends_by_itself_even_without_a_limit() {
    let server = stalling(Stage::Destroy);
    let sb = Sandbox::new();
    let port = server.port().to_string();
    let running = sb.spawn(&[
        "alloc",
        "-H",
        "127.0.0.1",
        "-P",
        &port,
        "--owner",
        "me",
        "--timeout",
        "-1",
        "-c",
        "true",
    ]);
    assert!(
        server.wait_for_count("destroy_job", 1),
        "{}",
        running.stderr()
    );
    let started = Instant::now();
    let out = running.finish(LONG);
    let took = started.elapsed();
    let line = out
        .stderr
        .lines()
        .find(|l| l.contains("could not be destroyed"))
        .unwrap_or_default()
        .to_owned();
    let ok = out.code == Some(0)
        && took < Duration::from_secs(15)
        && line.contains("timed out waiting for the server")
        && sb.leftover_temp_files().is_empty();
    record(
        "signals-stalled",
        json!({"case": "no signal: destroy unanswered, --timeout -1",
               "outcome": if ok { "pass" } else { "fail" },
               "detail": {"exit": out.code,
                          "gave up after (s)": (took.as_secs_f64() * 10.0).round() / 10.0,
                          "stderr (last line)": line}}),
    );
    assert!(ok, "{took:?} {out:?}");
}

/// The other commands that catch Ctrl-C rather than die of it (`--watch`,
/// `job --power-on`/`--power-off`) end at once too, even while a call is
/// waiting on a server that does not answer it, with no limit on the wait.
#[test]
fn watches_and_power_commands_end_on_ctrl_c_during_a_stalled_call() {
    let mut failures = Vec::new();
    for (args, stalls, code) in [
        (&["ps", "--watch"][..], "list_jobs", 0),
        (&["machine", "--watch"], "list_machines", 0),
        (&["job", "7", "--watch"], "list_jobs", 0),
        (&["job", "7", "--power-on"], "power_on_job_boards", 7),
        (&["job", "7", "--power-off"], "get_job_state", 7),
    ] {
        let server = FakeServer::start(Dialect::Python, move |c: &Call| {
            if c.command == stalls {
                return Reply::Nothing;
            }
            Reply::Return(match c.command.as_str() {
                "version" => json!("1!7.1.0"),
                "get_job_state" => state(Stage::Wait),
                _ => Value::Null,
            })
        });
        let sb = Sandbox::new();
        sb.use_server(server.addr());
        let running = sb.spawn(&[args, &["--timeout", "-1"]].concat());
        assert!(
            server.wait_for_count(stalls, 1),
            "{args:?}: {}",
            running.stderr()
        );
        running.signal(SIGINT);
        let started = Instant::now();
        let out = running.finish(LONG);
        let took = started.elapsed();
        let ok = out.code == Some(code) && took < PROMPT_EXIT && !out.stderr.contains("panicked");
        record(
            "signals-stalled",
            json!({"case": format!("SIGINT to spalloc {} while {stalls} is unanswered, --timeout -1",
                                   args.join(" ")),
                   "outcome": if ok { "pass" } else { "fail" },
                   "detail": {"exit": out.code,
                              "exit after (s)": (took.as_secs_f64() * 100.0).round() / 100.0}}),
        );
        if !ok {
            failures.push(format!("{args:?}: {took:?} {out:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
