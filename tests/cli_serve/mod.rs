//! `spalloc serve`: the example configuration, the address it reports,
//! clean shutdown on signals, configuration errors, and jobs that survive a
//! restart with a state file.

use std::path::Path;
use std::time::Duration;

use spalloc::server::ServerConfig;
use spalloc::{CreateJobOptions, JobRequest, ProtocolClient};

use crate::support::cli::{Running, Sandbox};

const LONG: Duration = Duration::from_secs(20);

fn example() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/virtual-server.toml")
        .display()
        .to_string()
}

/// Starts `spalloc serve ARGS…` and returns it with the port it listens on,
/// once it has printed both of its lines (the second, listing the
/// machines, may arrive separately from the first).
fn serve(sb: &Sandbox, args: &[&str]) -> (Running, u16) {
    let running = sb.spawn(&[&["serve"], args].concat());
    let machines = running.wait_for_stdout_line("machines: ", LONG);
    assert!(machines.is_some(), "{}", running.stderr());
    let out = running.stdout();
    let addr = out
        .lines()
        .find_map(|l| l.strip_prefix("spalloc virtual server listening on "))
        .unwrap_or_default();
    let port = addr
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    assert_ne!(port, 0, "{out}");
    (running, port)
}

#[test]
fn the_example_configuration_is_valid() {
    let config = ServerConfig::from_file(Path::new(&example())).expect("example parses");
    assert_eq!(config.machines.len(), 3);
    assert_eq!(config.listen.port(), 22244);
}

#[test]
fn serves_the_example_and_stops_on_signals() {
    for signal in [2, 15, 1] {
        let sb = Sandbox::new();
        let (running, port) = serve(
            &sb,
            &["--config", &example(), "--port", "0", "--power-delay", "0"],
        );
        assert!(
            running
                .stdout()
                .contains("machines: spin24 (4x2 triads), big (4x3 triads), one (1x1 triads)")
        );
        let out = sb.run(&["machine", "-H", "127.0.0.1", "-P", &port.to_string()]);
        out.expect_code(0);
        assert_eq!(
            out.stdout,
            "Name    Num boards  In-use  Jobs  Tags\nspin24          24       0     0  default\nbig             34       0     0  big\none              1       0     0  small\n"
        );
        running.signal(signal);
        running.finish(LONG).expect_code(0);
    }
}

#[test]
fn configuration_errors_name_the_field() {
    let sb = Sandbox::new();
    let bad = sb.cwd().join("bad.toml");
    std::fs::write(&bad, "[server]\npower_delay = \"soon\"\n").expect("write");
    let out = sb.run(&["serve", "--config", &bad.display().to_string()]);
    out.expect_code(2);
    assert!(out.stderr.contains("power_delay"), "{}", out.stderr);
    let out = sb.run(&["serve", "--config", "/no/such/file.toml"]);
    out.expect_code(2);
    assert!(out.stderr.contains("/no/such/file.toml"), "{}", out.stderr);
}

#[test]
fn a_state_file_that_cannot_be_written_stops_the_start() {
    let sb = Sandbox::new();
    let out = sb.run(&[
        "serve",
        "--port",
        "0",
        "--state-file",
        "/nonexistent/dir/x.json",
    ]);
    out.expect_code(2);
    assert!(
        out.stderr.starts_with(
            "spalloc serve: state file /nonexistent/dir/x.json: cannot be written there: no such file or directory"
        ),
        "{}",
        out.stderr
    );
    assert_eq!(out.stdout, "");
}

#[test]
fn a_corrupt_state_file_is_reported_as_such() {
    let sb = Sandbox::new();
    let state = sb.cwd().join("state.json");
    std::fs::write(&state, "{ not json").expect("write");
    let out = sb.run(&[
        "serve",
        "--port",
        "0",
        "--state-file",
        &state.display().to_string(),
    ]);
    out.expect_code(1);
    assert!(
        out.stderr.starts_with(&format!(
            "spalloc serve: state file {} is unusable: ",
            state.display()
        )),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("cannot listen"), "{}", out.stderr);
    // A directory where the file should be cannot be read either.
    let dir = sb.cwd().join("dir.json");
    std::fs::create_dir(&dir).expect("mkdir");
    let out = sb.run(&[
        "serve",
        "--port",
        "0",
        "--state-file",
        &dir.display().to_string(),
    ]);
    assert_ne!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stderr.contains(&dir.display().to_string()),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("cannot listen"), "{}", out.stderr);
}

#[test]
fn jobs_survive_a_restart_with_a_state_file() {
    let sb = Sandbox::new();
    let state = sb.cwd().join("state.json").display().to_string();
    let (first, port) = serve(
        &sb,
        &["--port", "0", "--power-delay", "0", "--state-file", &state],
    );
    let mut c = ProtocolClient::connect("127.0.0.1", port, Some(LONG)).expect("connect");
    let mut o = CreateJobOptions::new("me");
    o.keepalive = None;
    let id = c.create_job(&JobRequest::Boards(3), &o).expect("create");
    drop(c);
    first.signal(15);
    first.finish(LONG).expect_code(0);

    let (second, again) = serve(&sb, &["--port", &port.to_string(), "--state-file", &state]);
    assert_eq!(again, port);
    let mut c = ProtocolClient::connect("127.0.0.1", port, Some(LONG)).expect("connect");
    let jobs = c.list_jobs().expect("list");
    assert_eq!(jobs.iter().map(|j| j.job_id).collect::<Vec<_>>(), vec![id]);
    assert_eq!(jobs[0].boards.len(), 3);
    second.signal(2);
    second.finish(LONG).expect_code(0);
}
