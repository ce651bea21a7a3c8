//! Lengths of time: one rule (`spalloc::seconds`) for every flag, config
//! value and library argument, and no panic from any of them. The property
//! tests feed arbitrary `f64` seconds (NaN, infinities, negatives, huge and
//! subnormal numbers included) through every public entry point that takes
//! a length of time, and through the `spalloc` binary's flags.

use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{TestCaseError, TestRunner};
use serde_json::{Value, json};
use spalloc::server::{Machine, ServerConfig, VirtualServer};
use spalloc::{
    Config, Error, InterruptHandle, Job, JobOptions, JobRequest, JobState, ProtocolClient, seconds,
};

use super::record;
use crate::support::cli::Sandbox;
use crate::support::{Dialect, FakeServer, Reply, jobs_changed};

/// A server whose every job is ready at once and which answers everything.
fn willing() -> FakeServer {
    FakeServer::start(Dialect::Python, |c| {
        Reply::Return(match c.command.as_str() {
            "version" => json!("1!7.1.0"),
            "create_job" => json!(1),
            "get_job_state" => json!({"state": 3, "power": true, "keepalive": 60.0,
                "reason": null, "start_time": 1.0, "keepalivehost": "127.0.0.1"}),
            "get_job_machine_info" => json!({"width": 8, "height": 8,
                "connections": [[[0, 0], "127.100.0.1"]], "machine_name": "m",
                "boards": [[0, 0, 0]]}),
            "list_jobs" | "list_machines" => json!([]),
            _ => Value::Null,
        })
    })
}

/// A `Duration` for `secs` as a caller holding a float would make one:
/// its size, saturating at `Duration::MAX`.
fn duration(secs: f64) -> Duration {
    Duration::try_from_secs_f64(secs.abs()).unwrap_or(Duration::MAX)
}

/// `Duration::MAX`, or anything too long for a deadline, means "no limit"
/// everywhere in the library (these used to panic adding it to `Instant`).
#[test]
fn the_longest_durations_mean_no_limit() -> Result<(), Error> {
    let server = willing();
    for d in [
        Duration::MAX,
        Duration::from_secs(u64::MAX / 2),
        duration(1e19),
    ] {
        let mut c = ProtocolClient::connect("127.0.0.1", server.port(), Some(d))?;
        assert_eq!(c.version()?, "1!7.1.0");
        c.set_timeout(Some(d));
        assert_eq!(c.list_jobs()?, vec![]);
        c.call("version", &[], &Default::default(), Some(d))?;
        server.push(&jobs_changed(Dialect::Python, &[1]));
        assert!(c.wait_for_notification(Some(d))?.is_some());
        let mut c = ProtocolClient::connect_interruptible(
            "127.0.0.1",
            server.port(),
            Some(d),
            &InterruptHandle::new(),
        )?;
        assert_eq!(c.version()?, "1!7.1.0");

        let options = JobOptions::new()
            .hostname("127.0.0.1")
            .port(server.port())
            .owner("me")
            .timeout(Some(d))
            .reconnect_delay(d);
        let mut job = Job::create(JobRequest::AnyBoard, &options)?;
        job.wait_until_ready(Some(d))?;
        assert_eq!(
            job.wait_for_state_change(JobState::Queued, Some(d))?.state,
            JobState::Ready
        );
        job.destroy(None)?;
    }
    record(
        "properties",
        json!({"case": "Duration::MAX and other huge durations through every library call taking one",
               "cases": 3, "outcome": "pass"}),
    );
    Ok(())
}

/// Runs a property for `cases` cases, records it, and fails with the
/// smallest failing input.
fn check<S: Strategy>(
    name: &str,
    cases: u32,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) {
    let mut runner = TestRunner::new(ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let result = runner.run(&strategy, test);
    record(
        "properties",
        json!({"case": name, "cases": cases,
               "outcome": if result.is_ok() { "pass" } else { "fail" }}),
    );
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
}

/// Any float, with the awkward ones (NaN, the infinities, zeros, huge and
/// tiny numbers, the edge of the rule) well represented.
fn any_seconds() -> impl Strategy<Value = f64> {
    prop_oneof![
        3 => proptest::num::f64::ANY,
        1 => proptest::sample::select(vec![
            f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 0.0, -0.0, -1.0, 1e-300,
            f64::MIN_POSITIVE, 1e9, 1e9 + 1.0, 1.8e19, 1e19, f64::MAX, f64::MIN, 0.5,
        ]),
    ]
}

/// The rule itself: NaN is an error; a limit is `None` for negative,
/// infinite or over `MAX_SECONDS`; a pause is zero for negative and an
/// error over the maximum; a span has no "none" at all.
#[test]
fn the_rule_holds_for_any_float() {
    check(
        "seconds: the one rule, for any f64",
        4096,
        any_seconds(),
        |x| {
            let max = seconds::MAX_SECONDS;
            let limit = seconds::limit(x);
            let pause = seconds::pause(x);
            let span = seconds::span(x);
            if x.is_nan() {
                prop_assert!(limit.is_err() && pause.is_err() && span.is_err());
                return Ok(());
            }
            if x < 0.0 || x > max {
                prop_assert_eq!(limit, Ok(None));
            } else {
                prop_assert_eq!(limit, Ok(Some(Duration::from_secs_f64(x))));
            }
            match pause {
                Ok(d) if x < 0.0 => prop_assert_eq!(d, Duration::ZERO),
                Ok(d) => prop_assert!(x <= max && d == Duration::from_secs_f64(x)),
                Err(e) => prop_assert!(x > max && e.to_string().contains("at most")),
            }
            prop_assert_eq!(span.is_ok(), (0.0..=max).contains(&x) || x == 0.0);
            Ok(())
        },
    );
}

/// How a float is written in a configuration file or TOML: `nan`, `inf`
/// and `-inf` as Python's `float()` and TOML read them.
fn spelled(x: f64) -> String {
    if x.is_nan() {
        "nan".into()
    } else if x.is_infinite() {
        if x > 0.0 { "inf" } else { "-inf" }.into()
    } else {
        format!("{x:?}")
    }
}

/// Configuration values and the library's options: every value is either
/// accepted or an error naming its file and key, never a panic, and what
/// is accepted gives options a job can be created with.
#[test]
fn any_float_in_a_config_file_or_option_is_accepted_or_named() {
    check(
        "config timeout/keepalive/reconnect_delay, JobOptions::keepalive: any f64",
        1024,
        (any_seconds(), 0..3usize),
        |(x, which)| {
            let key = ["timeout", "keepalive", "reconnect_delay"][which];
            let text = format!("[spalloc]\n{key} = {}\n", spelled(x));
            match Config::from_ini_str(&text, "f.ini") {
                Ok(config) => {
                    let options = JobOptions::from_config(&config);
                    prop_assert!(options.is_ok(), "{:?}", options.err());
                }
                Err(Error::Config { key: Some(k), .. }) => prop_assert_eq!(k, key),
                Err(e) => return Err(TestCaseError::fail(format!("{e}"))),
            }
            // The setter keeps NaN for create to turn down; the rest are
            // keepalives or "never".
            let options = JobOptions::new()
                .hostname("127.0.0.1")
                .owner("me")
                .keepalive(Some(duration(x)));
            let checked = options.create_options();
            prop_assert!(checked.is_ok());
            Ok(())
        },
    );
}

/// Every library call that takes a duration, with any float turned into
/// one, against a live server: each returns (an answer, or a timeout for
/// the tiniest), none panics.
#[test]
fn any_duration_through_every_library_call() {
    let server = willing();
    let port = server.port();
    check(
        "ProtocolClient, Job and ServerConfig calls taking a Duration: any f64",
        256,
        any_seconds(),
        |x| {
            let d = duration(x);
            // Long enough for a loopback reply, however the machine is loaded.
            let answered = d >= Duration::from_secs(10);
            let connected = ProtocolClient::connect("127.0.0.1", port, Some(d));
            match connected {
                Ok(mut c) => {
                    let v = c.version();
                    prop_assert!(v.is_ok() || !answered, "{v:?}");
                    c.set_timeout(Some(d));
                    let _ = c.list_jobs();
                    let _ = c.call("version", &[], &Default::default(), Some(d));
                    server.push(&jobs_changed(Dialect::Python, &[1]));
                    let _ = c.wait_for_notification(Some(d));
                }
                Err(e) => prop_assert!(!answered, "{e}"),
            }
            let options = JobOptions::new()
                .hostname("127.0.0.1")
                .port(port)
                .owner("me")
                .timeout(Some(d))
                .reconnect_delay(d.min(Duration::from_millis(10)))
                .keepalive(Some(duration(x)));
            match Job::create(JobRequest::AnyBoard, &options) {
                Ok(mut job) => {
                    let _ = job.wait_until_ready(Some(d));
                    let _ = job.wait_for_state_change(JobState::Queued, Some(d));
                    let _ = job.destroy(None);
                }
                Err(e) => prop_assert!(!answered || x.is_nan(), "{e}"),
            }
            let config = ServerConfig::instant()
                .machines(vec![Machine::new("m", 1, 1)])
                .power_delay(d)
                .seconds_before_free(d)
                .save_interval(d)
                .timeout_check_interval(d.max(Duration::from_millis(1)));
            if let Ok(s) = VirtualServer::start(config) {
                s.shutdown();
            }
            for key in [
                "power_delay",
                "seconds_before_free",
                "timeout_check_interval",
                "save_interval",
            ] {
                let toml = format!("[server]\n{key} = {}\n", spelled(x));
                if let Err(e) = ServerConfig::from_toml_str(&toml) {
                    prop_assert!(e.to_string().contains(key), "{e}");
                }
            }
            Ok(())
        },
    );
}

/// The binary's flags: `--timeout` (every subcommand), and `alloc`'s
/// `--keepalive` and `--reconnect-delay`: any float is a run or a usage
/// error naming the flag (exit 2), never a panic (exit 101).
#[test]
fn any_float_on_the_command_line_runs_or_is_a_usage_error() {
    let server = willing();
    let port = server.port().to_string();
    let sb = Sandbox::new();
    check(
        "spalloc ps/alloc --timeout, --keepalive, --reconnect-delay: any f64",
        200,
        (any_seconds(), 0..4usize),
        |(x, which)| {
            let value = format!("{x:?}");
            let flag = ["--timeout", "--timeout", "--keepalive", "--reconnect-delay"][which];
            let mut args = vec!["-H", "127.0.0.1", "-P", &port];
            let sub = if which == 0 { "ps" } else { "alloc" };
            args.insert(0, sub);
            if sub == "alloc" {
                args.extend(["--owner", "me", "-q"]);
            }
            args.extend([flag, &value]);
            if sub == "alloc" {
                args.extend(["-c", "true"]);
            }
            let out = sb.run(&args);
            match out.code {
                Some(0) => {}
                // A timeout too short for any reply: the server is reported
                // as not answering in time (ps 1, alloc 6).
                Some(1 | 6) if flag == "--timeout" && (0.0..1.0).contains(&x) => prop_assert!(
                    out.stderr.contains("timed out") || out.stderr.contains("Could not connect"),
                    "{}",
                    out.stderr
                ),
                Some(2) => prop_assert!(
                    out.stderr.contains(&format!("argument {flag}: ")),
                    "{}",
                    out.stderr
                ),
                other => {
                    return Err(TestCaseError::fail(format!(
                        "{args:?}: exit {other:?}\n{}",
                        out.stderr
                    )));
                }
            }
            prop_assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
            Ok(())
        },
    );
}

/// `spalloc serve`'s timings: any float starts the server or is a usage
/// error naming the flag.
#[test]
fn any_float_for_the_virtual_servers_timings_serves_or_is_a_usage_error() {
    let sb = Sandbox::new();
    check(
        "spalloc serve --power-delay, --seconds-before-free, --timeout-check-interval: any f64",
        64,
        (any_seconds(), 0..3usize),
        |(x, which)| {
            let flag = [
                "--power-delay",
                "--seconds-before-free",
                "--timeout-check-interval",
            ][which];
            let value = format!("{x:?}");
            let running = sb.spawn(&["serve", "--port", "0", flag, &value]);
            // Serving (both lines out), or refused with a usage error.
            crate::support::eventually(Duration::from_secs(20), || {
                running.stderr().contains("error: ")
                    || running
                        .stdout()
                        .lines()
                        .any(|l| l.starts_with("machines: "))
                        && running.stdout().ends_with('\n')
            });
            let started = running.stdout().contains("\nmachines: ");
            if started {
                running.signal(15);
            }
            let out = running.finish(Duration::from_secs(20));
            match out.code {
                Some(0) => prop_assert!(started),
                Some(2) => prop_assert!(
                    out.stderr.contains(&format!("argument {flag}: ")),
                    "{}",
                    out.stderr
                ),
                other => {
                    return Err(TestCaseError::fail(format!(
                        "{flag} {value}: exit {other:?}\n{}",
                        out.stderr
                    )));
                }
            }
            Ok(())
        },
    );
}

/// The cases the issue named, one by one, against the binary.
#[test]
fn the_reported_duration_panics_are_gone() {
    let server = willing();
    let sb = Sandbox::new();
    sb.use_server(server.addr());
    for (args, code, says) in [
        (&["ps", "--timeout", "inf"][..], 0, ""),
        (&["ps", "--timeout", "1e19"], 0, ""),
        (
            &["ps", "--timeout", "nan"],
            2,
            "argument --timeout: expected a number of seconds, got NaN",
        ),
        (
            &["alloc", "--keepalive", "inf", "1", "-q", "-c", "true"],
            0,
            "",
        ),
        (
            &["alloc", "--reconnect-delay", "inf", "-c", "true"],
            2,
            "argument --reconnect-delay: expected at most 1e9 seconds (about 32 years), got inf",
        ),
        (
            &["alloc", "--min-ratio", "nan", "-c", "true"],
            2,
            "argument --min-ratio",
        ),
        (
            &["serve", "--power-delay", "nan"],
            2,
            "argument --power-delay: expected a number of seconds, got NaN",
        ),
        (
            &["serve", "--power-delay", "-1"],
            2,
            "argument --power-delay: expected a number of seconds that is not negative, got -1",
        ),
    ] {
        let out = sb.run(args);
        assert_eq!(out.code, Some(code), "{args:?}\n{}", out.stderr);
        assert!(out.stderr.contains(says), "{args:?}\n{}", out.stderr);
        assert!(!out.stderr.contains("panicked"), "{args:?}\n{}", out.stderr);
    }
    // The same in a configuration file: inf is no limit, NaN names the key.
    sb.write_config(
        crate::support::cli::ConfigFile::Cwd,
        "[spalloc]\ntimeout = inf\n",
    );
    sb.run(&["ps"]).expect_code(0);
    sb.write_config(
        crate::support::cli::ConfigFile::Cwd,
        "[spalloc]\ntimeout = nan\n",
    );
    let out = sb.run(&["ps"]);
    out.expect_code(2);
    assert!(
        out.stderr
            .contains("key 'timeout': expected a number of seconds, got NaN"),
        "{}",
        out.stderr
    );
    record(
        "properties",
        json!({"case": "the reported cases: ps --timeout inf/1e19/nan, alloc --keepalive inf, --reconnect-delay inf, serve --power-delay nan/-1, timeout = inf/nan in a file",
               "cases": 10, "outcome": "pass"}),
    );
}

/// `--reconnect-delay` far beyond any real use, once the server goes away:
/// accepted (it is under the maximum), the outage is reported, and a signal
/// still ends the pause at once.
#[test]
fn a_long_reconnect_delay_during_an_outage_is_still_interruptible() {
    let server = FakeServer::start(Dialect::Python, |c| {
        Reply::Return(match c.command.as_str() {
            "version" => json!("1!7.1.0"),
            "create_job" => json!(1),
            "get_job_state" => json!({"state": 2, "power": true, "keepalive": 60.0,
                "reason": null, "start_time": 1.0, "keepalivehost": "127.0.0.1"}),
            _ => Value::Null,
        })
    });
    let sb = Sandbox::new();
    sb.use_server(server.addr());
    let running = sb.spawn(&["alloc", "--reconnect-delay", "1e8", "-c", "true"]);
    assert!(
        running.wait_for_stderr("Waiting for power on", Duration::from_secs(20)),
        "{}",
        running.stderr()
    );
    server.refuse(true);
    server.kill_connections();
    assert!(
        running.wait_for_stderr("Lost connection to server", Duration::from_secs(20)),
        "{}",
        running.stderr()
    );
    running.signal(15);
    let started = std::time::Instant::now();
    let out = running.finish(Duration::from_secs(20));
    assert_eq!(out.code, Some(143), "{}", out.stderr);
    assert!(started.elapsed() < Duration::from_secs(10), "{out:?}");
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    // One line for the outage, one for the signal, one for the release
    // that could not reach the server.
    let lost = out.stderr.matches("Lost connection to server").count();
    assert_eq!(lost, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("Job 1: Terminated (SIGTERM)."),
        "{}",
        out.stderr
    );
    assert_eq!(
        out.stderr.matches("could not be destroyed").count(),
        1,
        "{}",
        out.stderr
    );
}
