//! What every subcommand shares: usage errors, the server flags and their
//! configuration defaults, transport and server errors, the version check,
//! `-V` and `--help`, and the legacy program names.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{job_15_listing, same, sample_machines, sample_server, sandbox};
use crate::support::cli::{ConfigFile, Sandbox};
use crate::support::{Action, Dialect, FakeServer, Reply, dead_port, encode};

/// One command line per read-only subcommand, each valid against the
/// scripted sample server.
const EACH: [&[&str]; 4] = [
    &["ps"],
    &["machine"],
    &["job", "15"],
    &["where-is", "-j", "15", "9", "5"],
];

/// The program name a subcommand's messages use.
fn prog(args: &[&str]) -> String {
    format!("spalloc {}", args[0])
}

/// A server answering like the sample one, but with its own version.
fn versioned(version: &'static str) -> FakeServer {
    FakeServer::start(Dialect::Python, move |c| {
        Reply::Return(match c.command.as_str() {
            "version" => json!(version),
            "list_machines" => sample_machines(),
            "list_jobs" => json!([job_15_listing()]),
            _ => Value::Null,
        })
    })
}

#[test]
fn usage_errors_go_to_stderr_with_the_usage_and_contact_nothing() {
    let fake = sample_server();
    let sb = sandbox(fake.addr());
    for args in EACH {
        for (extra, message) in [
            (
                &["--frobnicate"][..],
                "unrecognized arguments: --frobnicate",
            ),
            (
                &["-P", "abc"],
                "argument --port/-P: invalid int value: 'abc'",
            ),
            (
                &["--port=99999"],
                "argument --port/-P: invalid int value: '99999'",
            ),
            (
                &["--timeout", "soon"],
                "argument --timeout: invalid float value: 'soon'",
            ),
            (
                &["--hostname"],
                "argument --hostname/-H: expected one argument",
            ),
        ] {
            let mut line = args.to_vec();
            line.extend_from_slice(extra);
            let out = sb.run(&line);
            out.expect_code(2);
            same("", &out.stdout);
            let mut lines = out.stderr.lines();
            same(
                &format!("{}: error: {message}", prog(args)),
                lines.next().unwrap_or_default(),
            );
            assert!(
                lines
                    .next()
                    .is_some_and(|l| l.starts_with(&format!("usage: {}", prog(args)))),
                "{line:?}: {}",
                out.stderr
            );
        }
    }
    let out = sb.run(&["job", "abc"]);
    out.expect_code(2);
    assert!(
        out.stderr
            .starts_with("spalloc job: error: argument job_id: invalid int value: 'abc'\n"),
        "{}",
        out.stderr
    );
    let out = sb.run(&["config", "--frobnicate"]);
    out.expect_code(2);
    assert!(
        out.stderr.starts_with("spalloc config: error: "),
        "{}",
        out.stderr
    );
    assert_eq!(fake.connections_made(), 0);
}

#[test]
fn missing_hostname() {
    let sb = Sandbox::new();
    // Checked first, as the Python tools do: before `-d` needing a machine.
    for args in EACH.into_iter().chain([&["machine", "-d"][..]]) {
        let out = sb.run(args);
        out.expect_code(2);
        same("", &out.stdout);
        assert!(
            out.stderr.starts_with(&format!(
                "{}: error: --hostname of spalloc server must be specified\nusage: {}",
                prog(args),
                prog(args)
            )),
            "{}",
            out.stderr
        );
    }
}

#[test]
fn unreachable_server_exits_1() {
    let port = dead_port();
    let sb = Sandbox::new();
    sb.write_config(
        ConfigFile::User,
        &format!("[spalloc]\nhostname = 127.0.0.1\nport = {port}\n"),
    );
    for args in EACH {
        let out = sb.run(args);
        out.expect_code(1);
        same("", &out.stdout);
        let prefix = format!("Error communicating with server: 127.0.0.1:{port}: ");
        assert!(out.stderr.starts_with(&prefix), "{args:?}: {}", out.stderr);
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
        assert!(
            out.stderr.len() > prefix.len() + 1,
            "no reason given: {}",
            out.stderr
        );
    }
}

#[test]
fn server_exception_exits_1() {
    let fake = FakeServer::start(Dialect::Python, |c| match c.command.as_str() {
        "version" => Reply::Return(json!("1!7.1.0")),
        _ => Reply::Exception("the server fell over".into()),
    });
    let sb = sandbox(fake.addr());
    for args in EACH {
        let out = sb.run(args);
        out.expect_code(1);
        same("", &out.stdout);
        same("Error from server: the server fell over\n", &out.stderr);
    }
}

#[test]
fn version_check_and_ignoring_it() {
    let bad = versioned("9.0.0");
    let sb = sandbox(bad.addr());
    for args in EACH {
        let out = sb.run(args);
        out.expect_code(2);
        same("", &out.stdout);
        same("Incompatible server version (9.0.0)\n", &out.stderr);
    }
    // Every spelling that skips the check.
    for flags in [
        &["--ignore-version"][..],
        &["--ignore_version"],
        &["--ignore_version", "yes"],
        &["--ignore_version=True"],
        &["--ignore_version", "1"],
    ] {
        let mut line = vec!["ps"];
        line.extend_from_slice(flags);
        let out = sb.run(&line);
        out.expect_code(0);
        assert!(
            out.stdout.starts_with("ID  State"),
            "{flags:?}: {}",
            out.stderr
        );
        assert_eq!(
            bad.count("version"),
            EACH.len(),
            "{flags:?} still asked for the version"
        );
    }
    // A false value is false (Py took any non-empty string as true).
    for flags in [&["--ignore_version", "False"][..], &["--ignore_version=no"]] {
        let mut line = vec!["machine"];
        line.extend_from_slice(flags);
        sb.run(&line).expect_code(2);
    }
    // The old spelling does not swallow a machine name.
    let out = sb.run(&["machine", "--ignore_version", "big"]);
    out.expect_code(0);
    assert!(out.stdout.starts_with("  Name: big\n"), "{}", out.stdout);

    // From the configuration, and overridden back on by nothing else.
    let mut text = std::fs::read_to_string(sb.config_path(ConfigFile::User)).expect("config");
    text.push_str("ignore_version = true\n");
    sb.write_config(ConfigFile::User, &text);
    sb.run(&["ps"]).expect_code(0);
    sb.run(&["ps", "--ignore_version", "no"]).expect_code(2);

    // Versions inside the range, epochs and suffixes included.
    for v in ["1!7.1.0", "1!7.0.0", "5.0.0", "0.1.0", "7.999rc1", "1.1.0"] {
        let good = versioned(v);
        sandbox(good.addr()).run(&["ps"]).expect_code(0);
    }
    for v in ["8.0.0", "0.0.9", "banana", ""] {
        let out_of_range = versioned(v);
        let out = sandbox(out_of_range.addr()).run(&["ps"]);
        out.expect_code(2);
        same(&format!("Incompatible server version ({v})\n"), &out.stderr);
    }
}

#[test]
fn version_and_help() {
    let sb = Sandbox::new();
    let version = format!("{}\n", env!("CARGO_PKG_VERSION"));
    for args in [
        &["-V"][..],
        &["--version"],
        &["ps", "-V"],
        &["machine", "--version"],
        &["job", "-V"],
        &["where-is", "--version"],
        &["config", "-V"],
    ] {
        let out = sb.run(args);
        out.expect_code(0);
        same(&version, &out.stdout);
        same("", &out.stderr);
    }
    for args in EACH.iter().map(|a| &a[..1]).chain([&["config"][..]]) {
        let mut line = args.to_vec();
        line.push("--help");
        let out = sb.run(&line);
        out.expect_code(0);
        same("", &out.stderr);
        assert!(
            out.stdout.starts_with(&format!("usage: {}", prog(args))),
            "{}",
            out.stdout
        );
        let out = sb.run(&[args[0], "-h"]);
        out.expect_code(0);
        assert!(
            out.stdout.starts_with(&format!("usage: {}", prog(args))),
            "{}",
            out.stdout
        );
    }
    let out = sb.run(&["--help"]);
    out.expect_code(0);
    for sub in ["alloc", "job", "ps", "machine", "where-is", "config"] {
        assert!(
            out.stdout.contains(&format!("\n  {sub} ")),
            "{sub}: {}",
            out.stdout
        );
    }
}

#[test]
fn legacy_names() {
    let fake = sample_server();
    let mut sb = sandbox(fake.addr());
    sb.env("TZ", super::SAMPLE_TZ);
    for (name, args, modern) in [
        ("spalloc-ps", &[][..], &["ps"][..]),
        ("spalloc-machine", &["big"], &["machine", "big"]),
        ("spalloc-job", &["15"], &["job", "15"]),
        (
            "spalloc-where-is",
            &["--job-chip", "15", "9", "5"],
            &["where-is", "--job-chip", "15", "9", "5"],
        ),
    ] {
        let out = sb.run_program(&sb.link(name), args, None);
        out.expect_code(0);
        same(&sb.run(modern).stdout, &out.stdout);
        // Messages name the program as invoked.
        let out = sb.run_program(&sb.link(name), &["--frobnicate"], None);
        out.expect_code(2);
        assert!(
            out.stderr.starts_with(&format!("{name}: error: ")),
            "{}",
            out.stderr
        );
        assert!(
            out.stderr.contains(&format!("\nusage: {name} ")),
            "{}",
            out.stderr
        );
        let out = sb.run_program(&sb.link(name), &["--help"], None);
        out.expect_code(0);
        assert!(
            out.stdout.starts_with(&format!("usage: {name} ")),
            "{}",
            out.stdout
        );
    }
    let out = sb.run_program(&sb.link("spalloc-machine"), &["-d"], None);
    out.expect_code(2);
    assert!(
        out.stderr.starts_with(
            "spalloc-machine: error: --detailed only works when a specific machine is specified\n"
        ),
        "{}",
        out.stderr
    );
    // The Python tools' `--ignore_version VALUE` still parses.
    let out = sb.run_program(
        &sb.link("spalloc-machine"),
        &["--ignore_version", "big"],
        None,
    );
    out.expect_code(0);
    assert!(out.stdout.starts_with("  Name: big\n"), "{}", out.stdout);
    // A `.exe` suffix is ignored.
    let out = sb.run_program(&sb.link("spalloc-ps.exe"), &[], None);
    out.expect_code(0);
    assert!(out.stdout.starts_with("ID  State"), "{}", out.stdout);
}

/// Flags over the cwd file over the user file over the system file, key
/// by key.
#[test]
fn server_settings_precedence() {
    let servers: Vec<FakeServer> = (0..4).map(|_| sample_server()).collect();
    let port = |i: usize| servers[i].port().to_string();
    let sb = Sandbox::new();
    let used = |servers: &[FakeServer]| -> Vec<usize> {
        servers.iter().map(FakeServer::connections_made).collect()
    };
    sb.write_config(
        ConfigFile::System,
        &format!(
            "[spalloc]\nhostname = no-such-host.invalid\nport = {}\n",
            port(0)
        ),
    );
    // The hostname from the cwd file, the port from the system file.
    sb.write_config(ConfigFile::Cwd, "[spalloc]\nhostname = 127.0.0.1\n");
    sb.run(&["ps"]).expect_code(0);
    assert_eq!(used(&servers), [1, 0, 0, 0]);
    // The user file's port beats the system file's.
    sb.write_config(
        ConfigFile::User,
        &format!("[spalloc]\nport = {}\n", port(1)),
    );
    sb.run(&["ps"]).expect_code(0);
    assert_eq!(used(&servers), [1, 1, 0, 0]);
    // The cwd file's beats the user file's.
    sb.write_config(
        ConfigFile::Cwd,
        &format!("[spalloc]\nhostname = 127.0.0.1\nport = {}\n", port(2)),
    );
    sb.run(&["machine"]).expect_code(0);
    assert_eq!(used(&servers), [1, 1, 1, 0]);
    // Flags beat every file.
    sb.run(&["job", "15", "-P", &port(3)]).expect_code(0);
    sb.run(&["where-is", "--port", &port(3), "-j", "15", "9", "5"])
        .expect_code(0);
    assert_eq!(used(&servers), [1, 1, 1, 2]);
    sb.write_config(ConfigFile::Cwd, "[spalloc]\n");
    let out = sb.run(&["ps", "-H", "127.0.0.1"]);
    out.expect_code(0);
    sb.run(&["ps", "--hostname=127.0.0.1", &format!("-P{}", port(3))])
        .expect_code(0);
    assert_eq!(used(&servers), [1, 2, 1, 3]);
    // Without the flag, the system file's unresolvable host is used.
    let out = sb.run(&["ps"]);
    out.expect_code(1);
    assert!(
        out.stderr.starts_with(&format!(
            "Error communicating with server: no-such-host.invalid:{}: ",
            port(1)
        )),
        "{}",
        out.stderr
    );
}

#[test]
fn timeouts() {
    // No reply at all: the limit from --timeout ends the wait.
    let silent = FakeServer::start(Dialect::Python, |c| match c.command.as_str() {
        "version" => Reply::Return(json!("1.1.0")),
        _ => Reply::Nothing,
    });
    let sb = sandbox(silent.addr());
    let started = Instant::now();
    let out = sb.run(&["ps", "--timeout", "0.3"]);
    out.expect_code(1);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        out.stderr.starts_with(&format!(
            "Error communicating with server: 127.0.0.1:{}: ",
            silent.port()
        )),
        "{}",
        out.stderr
    );

    // A slow reply: too slow for the configured limit, fine with
    // `--timeout -1` (no limit) or `timeout = None`.
    let slow = FakeServer::start(Dialect::Python, |c| match c.command.as_str() {
        "version" => Reply::Return(json!("1.1.0")),
        "list_jobs" => Reply::Script(vec![
            Action::Sleep(Duration::from_millis(600)),
            Action::Send(encode(Dialect::Python, &Reply::Return(json!([])))),
        ]),
        _ => Reply::Return(Value::Null),
    });
    let sb = Sandbox::new();
    sb.write_config(
        ConfigFile::User,
        &format!(
            "[spalloc]\nhostname = 127.0.0.1\nport = {}\ntimeout = 0.2\n",
            slow.port()
        ),
    );
    sb.run(&["ps"]).expect_code(1);
    let out = sb.run(&["ps", "--timeout", "-1"]);
    out.expect_code(0);
    same(
        "ID  State  Power  Boards  Machine  Created at  Keepalive  Owner (Host)\n",
        &out.stdout,
    );
    sb.write_config(ConfigFile::Cwd, "[spalloc]\ntimeout = None\n");
    sb.run(&["ps"]).expect_code(0);
    sb.run(&["ps", "--timeout", "0.2"]).expect_code(1);
}
