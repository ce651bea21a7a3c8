//! How the holder of a job can misbehave or end: a blocked thread, a panic
//! (in this process and in a child process), every signal `spalloc alloc`
//! handles, and SIGKILL, which nothing can catch: the server then expires
//! the job after its keepalive.
//!
//! The child processes are this very test binary, run again with
//! `SPALLOC_REL_ROLE` set and filtered to the test that set it; that test
//! then plays the child's part instead of the parent's.

use std::hint::black_box;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use spalloc::{Job, JobOptions, JobRequest, JobState};

use super::{is_live, one_triad, record, start_server, state_of};
use crate::support::cli::{Sandbox, finish};
use crate::support::{Action, Dialect, FakeServer, Reply, eventually};

const SIGHUP: i32 = 1;
const SIGINT: i32 = 2;
const SIGKILL: i32 = 9;
const SIGTERM: i32 = 15;
const LONG: Duration = Duration::from_secs(20);

fn options(port: u16, keepalive: f64) -> JobOptions {
    JobOptions::new()
        .hostname("127.0.0.1")
        .port(port)
        .owner("holder@example.org")
        .keepalive(Some(Duration::from_secs_f64(keepalive)))
        .timeout(Some(Duration::from_secs(2)))
        .reconnect_delay(Duration::from_millis(100))
}

/// The part this process plays, if it is a child of one of these tests.
fn role() -> Option<(String, u16)> {
    let role = std::env::var("SPALLOC_REL_ROLE").ok()?;
    let port = std::env::var("SPALLOC_REL_PORT").ok()?.parse().ok()?;
    Some((role, port))
}

/// Runs this test binary again as a child playing `role` in `test`.
fn spawn_child(test: &str, role: &str, port: u16) -> std::process::Child {
    Command::new(std::env::current_exe().expect("test binary"))
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env("SPALLOC_REL_ROLE", role)
        .env("SPALLOC_REL_PORT", port.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the child test process")
}

/// The child's part: create a job, announce it, then misbehave.
fn play_child(role: &str, port: u16) {
    let keepalive = if role == "hold" { 1.0 } else { 60.0 };
    let mut job = Job::create(JobRequest::AnyBoard, &options(port, keepalive)).expect("create");
    job.wait_until_ready(Some(LONG)).expect("ready");
    let thread = thread::current().name().unwrap_or("unnamed").to_owned();
    println!("JOB {} THREAD {thread}", job.id());
    match role {
        "panic" => panic!("deliberate panic while holding job {}", job.id()),
        _ => thread::sleep(Duration::from_secs(30)),
    }
}

/// Reads the child's stdout until its `JOB <id> THREAD <name>` line.
fn announced(child: &mut std::process::Child) -> (u64, String) {
    let out = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            // libtest prints "test NAME ... " without a newline first.
            if let Some(rest) = line.find("JOB ").map(|at| &line[at + 4..]) {
                let mut parts = rest.split(" THREAD ");
                let id = parts.next().and_then(|i| i.parse().ok());
                let name = parts.next().unwrap_or_default().to_owned();
                if let Some(id) = id {
                    let _ = tx.send((id, name));
                }
            }
        }
    });
    rx.recv_timeout(LONG)
        .expect("the child never announced its job")
}

#[test]
fn blocked_holder_threads_keep_their_jobs() {
    // Ten keepalive intervals with the owning thread asleep, or spinning.
    let keepalive = 0.5;
    let blocked = Duration::from_secs_f64(keepalive * 10.0);
    let server = start_server(one_triad());
    let addr = server.local_addr();
    let results: Vec<(String, bool)> = thread::scope(|s| {
        let handles: Vec<_> = ["sleeping", "busy-looping"]
            .into_iter()
            .map(|how| {
                s.spawn(move || {
                    let mut job =
                        Job::create(JobRequest::AnyBoard, &options(addr.port(), keepalive))
                            .expect("create");
                    job.wait_until_ready(Some(LONG)).expect("ready");
                    let t = Instant::now();
                    if how == "sleeping" {
                        thread::sleep(blocked);
                    } else {
                        let mut x = 0u64;
                        while t.elapsed() < blocked {
                            x = black_box(
                                x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1),
                            );
                        }
                    }
                    let alive =
                        is_live(addr, job.id()) && matches!(job.state(), Ok(JobState::Ready));
                    (how.to_owned(), alive)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("holder thread"))
            .collect()
    });
    for (how, alive) in &results {
        record(
            "holders",
            json!({"case": format!("owning thread {how} for 10 keepalive intervals ({blocked:?})"),
                   "outcome": if *alive { "pass" } else { "fail" },
                   "detail": {"job alive afterwards": alive}}),
        );
    }
    assert!(results.iter().all(|(_, a)| *a), "{results:?}");
    // Both jobs were destroyed when their holders returned.
    assert!(super::no_jobs_within(addr, Duration::from_secs(2)).is_ok());
}

#[test]
fn panic_in_the_owning_scope_destroys_the_job() {
    let server = start_server(one_triad());
    let addr = server.local_addr();
    let mut id = 0;
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut job =
            Job::create(JobRequest::AnyBoard, &options(addr.port(), 60.0)).expect("create");
        job.wait_until_ready(Some(LONG)).expect("ready");
        id = job.id();
        panic!("deliberate panic while holding job {id}");
    }));
    assert!(caught.is_err());
    // Not expiry: the keepalive is a minute.
    let s = state_of(addr, id);
    let ok = s.state == JobState::Destroyed && s.reason.is_none();
    record(
        "holders",
        json!({"case": "panic inside the scope owning a Job (catch_unwind)",
               "outcome": if ok { "pass" } else { "fail" },
               "detail": {"state": s.state.to_string()}}),
    );
    assert!(ok, "{s:?}");
}

#[test]
fn panic_in_a_child_process_destroys_the_job() {
    const TEST: &str = "holders::panic_in_a_child_process_destroys_the_job";
    if let Some((role, port)) = role() {
        return play_child(&role, port);
    }
    let server = start_server(one_triad());
    let addr = server.local_addr();
    let mut child = spawn_child(TEST, "panic", addr.port());
    let (id, thread_name) = announced(&mut child);
    let out = finish(child, LONG);
    let s = state_of(addr, id);
    let ok = out.code == Some(101)
        && out.stderr.contains("deliberate panic")
        && s.state == JobState::Destroyed
        && s.reason.is_none();
    record(
        "holders",
        json!({"case": "panic in a child process's thread owning a Job",
               "outcome": if ok { "pass" } else { "fail" },
               "detail": {"exit": out.code, "thread": thread_name, "state": s.state.to_string()}}),
    );
    assert!(ok, "{out:?} {s:?}");
}

/// SIGKILL cannot be caught: the job outlives its holder until the server
/// expires it, one keepalive interval after the last keepalive.
fn expires_after_sigkill(addr: std::net::SocketAddr, id: u64, pid: u32) -> Value {
    assert!(is_live(addr, id));
    let status = Command::new("kill")
        .args([format!("-{SIGKILL}"), pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let killed = Instant::now();
    let expired = eventually(Duration::from_secs(6), || !is_live(addr, id));
    let took = killed.elapsed();
    let s = state_of(addr, id);
    let ok = expired && s.reason.as_deref() == Some("Job timed out.");
    json!({"outcome": if ok { "pass" } else { "fail" },
           "detail": {"expired after (s)": (took.as_secs_f64() * 10.0).round() / 10.0,
                      "reason": s.reason}})
}

#[test]
fn sigkill_of_a_library_holder_leaves_the_job_to_expire() {
    const TEST: &str = "holders::sigkill_of_a_library_holder_leaves_the_job_to_expire";
    if let Some((role, port)) = role() {
        return play_child(&role, port);
    }
    let server = start_server(one_triad());
    let addr = server.local_addr();
    let mut child = spawn_child(TEST, "hold", addr.port());
    let (id, _) = announced(&mut child);
    // Held past several keepalive intervals first.
    thread::sleep(Duration::from_millis(2500));
    let mut result = expires_after_sigkill(addr, id, child.id());
    let _ = child.wait();
    result["case"] = "SIGKILL of a process holding a Job (keepalive 1 s)".into();
    record("holders", result.clone());
    assert_eq!(result["outcome"], "pass", "{result}");
}

#[test]
fn sigkill_of_spalloc_alloc_leaves_the_job_to_expire() {
    let server = start_server(one_triad());
    let addr = server.local_addr();
    let sb = Sandbox::new();
    sb.use_server(addr);
    let marker = sb.cwd().join("started");
    let running = sb.spawn(&["alloc", "--keepalive", "1", "-c", "touch started; sleep 3"]);
    assert!(eventually(LONG, || marker.exists()), "{}", running.stderr());
    thread::sleep(Duration::from_millis(1500));
    let mut result = expires_after_sigkill(addr, 1, running.pid());
    drop(running);
    result["case"] = "SIGKILL of spalloc alloc (keepalive 1 s)".into();
    record("holders", result.clone());
    assert_eq!(result["outcome"], "pass", "{result}");
}

/// `tests/cli_alloc` covers the queue, the prompt, the command and create
/// in flight; this adds the power-on wait, and SIGHUP during create.
#[test]
fn signals_while_powering_on_release_the_job() {
    let mut failures = Vec::new();
    for (signal, name, code, reason) in [
        (SIGINT, "SIGINT", 4, "Keyboard interrupt (SIGINT)."),
        (SIGTERM, "SIGTERM", 143, "Terminated (SIGTERM)."),
        (SIGHUP, "SIGHUP", 129, "Hangup (SIGHUP)."),
    ] {
        let server = start_server(one_triad().power_delay(Duration::from_secs(30)));
        let addr = server.local_addr();
        let sb = Sandbox::new();
        sb.use_server(addr);
        let running = sb.spawn(&["alloc", "-c", "true"]);
        assert!(
            running.wait_for_stderr("Waiting for power on", LONG),
            "{}",
            running.stderr()
        );
        running.signal(signal);
        let t = Instant::now();
        let out = running.finish(LONG);
        let s = state_of(addr, 1);
        let ok = out.code == Some(code)
            && s.state == JobState::Destroyed
            && s.reason.as_deref() == Some(reason);
        record(
            "signals",
            json!({"case": format!("{name} to spalloc alloc while powering on"),
                   "outcome": if ok { "pass" } else { "fail" },
                   "detail": {"exit": out.code, "reason": s.reason,
                              "exit after (s)": (t.elapsed().as_secs_f64() * 100.0).round() / 100.0}}),
        );
        if !ok {
            failures.push(format!("{signal}: {out:?} {s:?}"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn signal_while_create_is_in_flight_destroys_the_new_job() {
    for (signal, name, code, reason) in [
        (SIGINT, "SIGINT", 4, "Keyboard interrupt (SIGINT)."),
        (SIGTERM, "SIGTERM", 143, "Terminated (SIGTERM)."),
        (SIGHUP, "SIGHUP", 129, "Hangup (SIGHUP)."),
    ] {
        // The reply to create_job comes late, so the signal arrives while
        // the request is in flight: spalloc must wait for the id (it gives
        // a slow server a second) and then destroy the job it did not know
        // about yet.
        let server = FakeServer::start(Dialect::Python, |c| match c.command.as_str() {
            "version" => Reply::Return(json!("1!7.1.0")),
            "create_job" => Reply::Script(vec![
                Action::Sleep(Duration::from_millis(300)),
                Action::Send(b"{\"return\": 7}\n".to_vec()),
            ]),
            _ => Reply::Return(Value::Null),
        });
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
            "-c",
            "true",
        ]);
        assert!(server.wait_for_count("create_job", 1));
        running.signal(signal);
        let out = running.finish(LONG);
        let destroys = server.calls_named("destroy_job");
        let ok = out.code == Some(code)
            && destroys.len() == 1
            && destroys[0].job_id() == Some(7)
            && destroys[0].kwargs["reason"] == reason
            && sb.leftover_temp_files().is_empty();
        record(
            "signals",
            json!({"case": format!("{name} to spalloc alloc while create_job is in flight"),
                   "outcome": if ok { "pass" } else { "fail" },
                   "detail": {"exit": out.code, "destroy_job calls": destroys.len()}}),
        );
        assert!(ok, "{out:?} {destroys:?}");
    }
}
