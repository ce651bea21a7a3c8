//! `spalloc alloc`, run as a real process against the virtual server:
//! command wrapping, the prompt, `--json`, failures and their exit codes,
//! and signals at every stage. After each run the server must hold no job
//! of ours (unless `--no-destroy`) and the CSV must be gone.

use std::time::Duration;

use serde_json::{Value, json};
use spalloc::server::{Machine, ServerConfig, VirtualServer};
use spalloc::{CreateJobOptions, JobRequest, JobState, Number, ProtocolClient};

use crate::support::cli::{Output, Sandbox};
use crate::support::{Call, Dialect, FakeServer, Reply, dead_port, eventually};

const SIGHUP: i32 = 1;
const SIGINT: i32 = 2;
const SIGTERM: i32 = 15;
const LONG: Duration = Duration::from_secs(20);

fn server_with(machines: Vec<Machine>) -> VirtualServer {
    VirtualServer::start(ServerConfig::instant().machines(machines)).expect("start virtual server")
}

fn server() -> VirtualServer {
    server_with(vec![Machine::new("m", 2, 2)])
}

fn sandbox(server: &VirtualServer) -> Sandbox {
    let sb = Sandbox::new();
    sb.use_server(server.local_addr());
    sb
}

fn client(server: &VirtualServer) -> ProtocolClient {
    ProtocolClient::connect(
        "127.0.0.1",
        server.local_addr().port(),
        Some(Duration::from_secs(5)),
    )
    .expect("connect")
}

/// The server holds no live job.
#[track_caller]
fn assert_no_jobs(server: &VirtualServer) {
    let mut c = client(server);
    assert!(
        eventually(Duration::from_secs(5), || c
            .list_jobs()
            .map(|j| j.is_empty())
            .unwrap_or(false)),
        "jobs left behind: {:?}",
        c.list_jobs()
    );
}

#[track_caller]
fn assert_no_csv(sb: &Sandbox) {
    assert_eq!(
        sb.leftover_temp_files(),
        Vec::<std::path::PathBuf>::new(),
        "CSV left behind"
    );
}

/// A job that holds every board of a 1x1 machine, so later requests queue.
fn occupy(server: &VirtualServer) -> u64 {
    let mut c = client(server);
    let mut o = CreateJobOptions::new("hog");
    o.keepalive = None;
    c.create_job(
        &JobRequest::Triads {
            width: 1,
            height: 1,
        },
        &o,
    )
    .expect("create")
}

#[test]
fn command_gets_substitutions_and_csv() {
    let config = ServerConfig::instant()
        .machines(vec![Machine::new("m", 2, 2)])
        .power_delay(Duration::from_millis(200));
    let server = VirtualServer::start(config).expect("start");
    let sb = sandbox(&server);
    let out = sb.run(&[
        "alloc",
        "3",
        "-c",
        "sh",
        "-c",
        "echo hostname={hostname} w={w} h={h} id={id}; cat {ethernet_ips}",
    ]);
    out.expect_code(0);
    assert_eq!(
        out.stdout,
        "hostname=192.168.0.1 w=16 h=16 id=1\nx,y,hostname\n0,0,192.168.0.1\n4,8,192.168.0.33\n8,4,192.168.0.65\n"
    );
    assert_eq!(
        out.stderr,
        "Job 1: Waiting for power on...\nJob 1: Ready!\n"
    );
    assert_no_jobs(&server);
    assert_no_csv(&sb);
}

#[test]
fn single_string_command_runs_in_a_shell() {
    let server = server();
    let sb = sandbox(&server);
    let out = sb.run(&["alloc", "-q", "-c", "echo {} && echo {w}x{h} {} | tr . - ; echo \"$SPALLOC_JOB_ID $SPALLOC_MACHINE $SPALLOC_WIDTH\""]);
    out.expect_code(0);
    assert_eq!(out.stdout, "192.168.0.1\n8x8 192-168-0-1\n1 m 8\n");
    assert_eq!(out.stderr, "", "-q hides status lines");
}

#[test]
fn braces_that_are_not_placeholders_pass_through() {
    let server = server();
    let sb = sandbox(&server);
    let out = sb.run(&[
        "alloc",
        "-q",
        "-c",
        "awk -F, 'NR > 1 {print $3}' {ethernet_ips}; echo '{{x}}' '{0}' '{w:03}'",
    ]);
    out.expect_code(0);
    assert_eq!(out.stdout, "192.168.0.1\n{x} {0} {w:03}\n");
}

#[test]
fn several_arguments_run_without_a_shell() {
    let server = server();
    let sb = sandbox(&server);
    let out = sb.run(&[
        "alloc",
        "-q",
        "-c",
        "printf",
        "%s|%s|%s\\n",
        "{}",
        "a b; echo no",
        "{id}",
    ]);
    out.expect_code(0);
    assert_eq!(out.stdout, "192.168.0.1|a b; echo no|1\n");
}

#[test]
fn command_exit_code_and_signal_death() {
    let server = server();
    let sb = sandbox(&server);
    sb.run(&[
        "alloc",
        "-q",
        "--keepalive",
        "5",
        "-c",
        "sh",
        "-c",
        "exit 3",
    ])
    .expect_code(3);
    sb.run(&["alloc", "-q", "-c", "sh", "-c", "kill -TERM $$"])
        .expect_code(128 + SIGTERM);
    sb.run(&["alloc", "-q", "-c", "sh -c 'kill -KILL $$'"])
        .expect_code(128 + 9);
    assert_no_jobs(&server);
    assert_no_csv(&sb);
}

#[test]
fn command_that_cannot_run() {
    let server = server();
    let sb = sandbox(&server);
    let out = sb.run(&["alloc", "-q", "-c", "no-such-program-here", "x"]);
    out.expect_code(127);
    assert_eq!(
        out.stderr,
        "spalloc: cannot run 'no-such-program-here': no such file or directory\n"
    );
    let script = sb.cwd().join("not-executable");
    std::fs::write(&script, "#!/bin/sh\n").expect("write");
    let out = sb.run(&["alloc", "-q", "-c", "./not-executable", "x"]);
    out.expect_code(126);
    assert_no_jobs(&server);
    assert_no_csv(&sb);
}

#[test]
fn empty_command_is_a_usage_error() {
    let server = server();
    let sb = sandbox(&server);
    for args in [&["alloc", "-c"][..], &["alloc", "-c", ""][..]] {
        let out = sb.run(args);
        out.expect_code(2);
        assert!(
            out.stderr.starts_with("spalloc alloc: error: "),
            "{}",
            out.stderr
        );
    }
    assert_no_jobs(&server);
}

#[test]
fn interactive_block_and_prompt() {
    let server = server();
    let sb = sandbox(&server);
    // End of input at the prompt: a newline, exit 0, job released.
    let out = sb.run(&["alloc", "1", "0", "2"]);
    out.expect_code(0);
    assert_eq!(
        out.stdout,
        "  Hostname: 192.168.0.49\n     Width: 8\n    Height: 8\nRunning on: m\n<Press enter when done>\n"
    );
    assert_no_jobs(&server);

    // Enter at the prompt; several boards add the count and the CSV.
    let out = sb.run_with_input(&["alloc", "3"], "\n");
    out.expect_code(0);
    let csv_line = out.stdout.lines().nth(4).unwrap_or_default().to_owned();
    assert!(
        csv_line.starts_with("All hostnames: ") && csv_line.contains("spinnaker_ips_"),
        "{}",
        out.stdout
    );
    let csv = csv_line.trim_start_matches("All hostnames: ");
    assert_eq!(
        out.stdout,
        format!(
            "     Hostname: 192.168.0.1\n        Width: 16\n       Height: 16\n   Num boards: 3\nAll hostnames: {csv}\n   Running on: m\n<Press enter when done>"
        )
    );
    assert_no_jobs(&server);
    assert_no_csv(&sb);
}

#[test]
fn json_prints_one_line() {
    let server = server();
    let sb = sandbox(&server);
    let out = sb.run(&["alloc", "--json", "3"]);
    out.expect_code(0);
    assert_eq!(out.stdout.lines().count(), 1, "{}", out.stdout);
    let v: Value = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(
        v,
        json!({"id": 1, "machine": "m", "hostname": "192.168.0.1", "width": 16, "height": 16,
               "boards": [{"x": 0, "y": 0, "z": 0}, {"x": 0, "y": 0, "z": 1}, {"x": 0, "y": 0, "z": 2}],
               "connections": [{"x": 0, "y": 0, "hostname": "192.168.0.1"},
                               {"x": 4, "y": 8, "hostname": "192.168.0.33"},
                               {"x": 8, "y": 4, "hostname": "192.168.0.65"}],
               "keepalive": 60.0, "keepalive_honoured": true})
    );
    assert!(
        out.stderr.contains("<Press enter when done>"),
        "the prompt goes to stderr"
    );
    // With -c the line comes first, then the command runs.
    let out = sb.run(&["alloc", "--json", "-q", "-c", "echo", "ran {id}"]);
    out.expect_code(0);
    let mut lines = out.stdout.lines();
    let first: Value = serde_json::from_str(lines.next().unwrap_or_default()).expect("JSON");
    assert_eq!(first["id"], json!(2));
    assert_eq!(lines.next(), Some("ran 2"));
    assert_no_jobs(&server);
}

#[test]
fn impossible_request_is_destroyed_before_ready() {
    let server = server();
    let sb = sandbox(&server);
    let out = sb.run(&["alloc", "100", "-c", "true"]);
    out.expect_code(1);
    assert_eq!(
        out.stderr,
        "Job 1: Destroyed: Cancelled: No suitable machines available.\n"
    );
    // Failures still show with -q.
    let out = sb.run(&["alloc", "-q", "100", "-c", "true"]);
    out.expect_code(1);
    assert!(out.stderr.contains("Destroyed"), "{}", out.stderr);
    assert_no_csv(&sb);
}

#[test]
fn request_flags_reach_the_server() {
    let server = server_with(vec![
        Machine::new("m", 2, 2),
        Machine::new("big", 2, 2)
            .tags(["big", "fast"])
            .base_ip(std::net::Ipv4Addr::new(10, 0, 0, 0)),
    ]);
    let sb = sandbox(&server);
    let running = sb.spawn(&[
        "alloc",
        "--keepalive",
        "5",
        "--tags",
        "big",
        "4",
        "--max-dead-links",
        "-1",
        "-W",
        "-c",
        "sleep",
        "30",
    ]);
    let mut c = client(&server);
    assert!(eventually(LONG, || c
        .list_jobs()
        .map(|j| !j.is_empty())
        .unwrap_or(false)));
    let jobs = c.list_jobs().expect("list");
    let job = &jobs[0];
    assert_eq!(
        job.keepalive,
        Some(Number::Float(5.0)),
        "the server keeps float(keepalive), as the real one does"
    );
    assert_eq!(job.args, vec![json!(4)]);
    assert_eq!(job.kwargs["tags"], json!(["big"]));
    assert_eq!(job.kwargs["machine"], Value::Null);
    assert_eq!(job.kwargs["max_dead_links"], Value::Null);
    assert_eq!(job.kwargs["require_torus"], json!(false));
    assert!(eventually(LONG, || c
        .list_jobs()
        .is_ok_and(
            |j| j[0].allocated_machine_name.as_deref() == Some("big")
        )));
    running.signal(SIGTERM);
    running.finish(LONG).expect_code(128 + SIGTERM);
    assert_no_jobs(&server);

    // A machine drops the tags; a bare -m means any machine.
    sb.write_config(
        crate::support::cli::ConfigFile::Cwd,
        "[spalloc]\nmachine = big\n",
    );
    let out = sb.run(&["alloc", "-q", "-c", "true"]);
    out.expect_code(0);
    let out = sb.run(&["alloc", "-q", "-m", "-c", "true"]);
    out.expect_code(0);
}

#[test]
fn resume_and_no_destroy() {
    let server = server();
    let sb = sandbox(&server);
    // Keep the job: it stays on the server.
    let out = sb.run(&[
        "alloc",
        "-q",
        "--no-destroy",
        "--keepalive",
        "-1",
        "-c",
        "true",
    ]);
    out.expect_code(0);
    assert_no_csv(&sb);
    let mut c = client(&server);
    let jobs = c.list_jobs().expect("list");
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].keepalive, None);
    let id = jobs[0].job_id.to_string();
    // Resume it and let it go.
    let out = sb.run(&["alloc", "--resume", &id, "-c", "echo", "{id}"]);
    out.expect_code(0);
    assert_eq!(out.stdout, format!("{id}\n"));
    assert_eq!(
        out.stderr,
        format!("Job {id}: Ready!\n"),
        "a ready job shows only Ready!"
    );
    assert_no_jobs(&server);
    // Resuming a dead or unknown job fails clearly.
    let out = sb.run(&["alloc", "--resume", &id, "-c", "true"]);
    out.expect_code(1);
    assert_eq!(out.stderr, format!("Job {id} does not exist: destroyed\n"));
    let out = sb.run(&["alloc", "-r", "0", "-c", "true"]);
    out.expect_code(1);
    assert_eq!(out.stderr, "Job 0 does not exist: unknown\n");
}

#[test]
fn connection_and_server_failures() {
    let sb = Sandbox::new();
    let port = dead_port();
    let out = sb.run(&[
        "alloc",
        "-H",
        "127.0.0.1",
        "-P",
        &port.to_string(),
        "--owner",
        "me",
        "-c",
        "true",
    ]);
    out.expect_code(6);
    assert!(
        out.stderr
            .starts_with(&format!("Could not connect to server: 127.0.0.1:{port}: ")),
        "{}",
        out.stderr
    );

    let refusing = FakeServer::start(Dialect::Java, |c| match c.command.as_str() {
        "version" => Reply::Return(json!("5.0.0")),
        _ => Reply::Exception("request cannot fit on machine".into()),
    });
    let port = refusing.port().to_string();
    let out = sb.run(&[
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
    out.expect_code(6);
    assert_eq!(
        out.stderr,
        "Error from server: request cannot fit on machine\n"
    );

    let future = FakeServer::start(Dialect::Python, |_| Reply::Return(json!("9.0.0")));
    let port = future.port().to_string();
    let out = sb.run(&[
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
    out.expect_code(2);
    assert_eq!(out.stderr, "Incompatible server version (9.0.0)\n");
    assert_eq!(future.count("create_job"), 0);
    assert_no_csv(&sb);
}

#[test]
fn usage_errors() {
    let sb = Sandbox::new();
    let out = sb.run(&["alloc", "-H", "localhost", "-c", "true"]);
    out.expect_code(2);
    assert!(out.stderr.starts_with(
        "spalloc alloc: error: --owner must be specified (typically your email address)\nusage: spalloc alloc"
    ), "{}", out.stderr);
    let out = sb.run(&["--owner", "me", "1", "2", "3", "4"]);
    out.expect_code(2);
    assert!(
        out.stderr
            .starts_with("spalloc: error: --hostname of spalloc server must be specified"),
        "{}",
        out.stderr
    );
    let out = sb.run(&["-H", "h", "--owner", "me", "1", "2", "3", "4"]);
    out.expect_code(2);
    assert!(out.stderr.contains(
        "expected either no arguments, one argument, NUM, two arguments, WIDTH HEIGHT, or three arguments, X Y Z"
    ));
    // A WHAT that is not a number is told what is allowed...
    let out = sb.run(&["-H", "h", "--owner", "me", "x"]);
    out.expect_code(2);
    assert!(
        out.stderr.contains("argument WHAT: expected whole numbers that are not negative (N boards, W H triads, or the board X Y Z), got 'x'"),
        "{}",
        out.stderr
    );
    // ...and so is a negative one.
    let out = sb.run(&["alloc", "-H", "h", "--owner", "me", "-1"]);
    out.expect_code(2);
    assert!(
        out.stderr.contains("argument WHAT: expected whole numbers that are not negative (N boards, W H triads, or the board X Y Z), got '-1'"),
        "{}",
        out.stderr
    );
    assert_no_csv(&sb);
}

#[test]
fn bare_spalloc_is_alloc() {
    let server = server();
    let sb = sandbox(&server);
    let out = sb.run(&["3", "-q", "-c", "echo", "{w}"]);
    out.expect_code(0);
    assert_eq!(out.stdout, "16\n");
    let out = sb.run(&["--version"]);
    out.expect_code(0);
    assert_eq!(out.stdout, format!("{}\n", env!("CARGO_PKG_VERSION")));
    let out = sb.run(&["--help"]);
    out.expect_code(0);
    assert!(out.stdout.contains("where-is"));
}

/// The reason the server recorded for a destroyed job.
fn reason_of(server: &VirtualServer, id: u64) -> Option<String> {
    let mut c = client(server);
    let s = c.get_job_state(id).expect("state");
    assert_eq!(s.state, JobState::Destroyed);
    s.reason
}

fn check_released(server: &VirtualServer, sb: &Sandbox, id: u64, reason: &str, out: &Output) {
    assert_eq!(reason_of(server, id).as_deref(), Some(reason), "{out:?}");
    assert_no_csv(sb);
}

#[test]
fn signals_while_queued() {
    for (signal, code, line, reason) in [
        (
            SIGINT,
            4,
            "Keyboard interrupt.",
            "Cancelled: Keyboard interrupt (SIGINT).",
        ),
        (
            SIGTERM,
            143,
            "Terminated (SIGTERM).",
            "Cancelled: Terminated (SIGTERM).",
        ),
        (
            SIGHUP,
            129,
            "Hangup (SIGHUP).",
            "Cancelled: Hangup (SIGHUP).",
        ),
    ] {
        let server = server_with(vec![Machine::new("tiny", 1, 1)]);
        occupy(&server);
        let sb = sandbox(&server);
        let running = sb.spawn(&["alloc", "-c", "true"]);
        assert!(
            running.wait_for_stderr("Job 2: Waiting in queue...", LONG),
            "{}",
            running.stderr()
        );
        running.signal(signal);
        let out = running.finish(LONG);
        out.expect_code(code);
        assert_eq!(
            out.stderr,
            format!("Job 2: Waiting in queue...\nJob 2: {line}\n")
        );
        check_released(&server, &sb, 2, reason, &out);
    }
}

#[test]
fn signals_at_the_prompt() {
    for (signal, code) in [(SIGINT, 0), (SIGTERM, 143), (SIGHUP, 129)] {
        let server = server();
        let sb = sandbox(&server);
        let running = sb.spawn(&["alloc", "-q"]);
        assert!(
            running.wait_for_stdout("<Press enter when done>", LONG),
            "{}",
            running.stderr()
        );
        running.signal(signal);
        let out = running.finish(LONG);
        out.expect_code(code);
        if signal == SIGINT {
            assert!(out.stdout.ends_with("<Press enter when done>\n"));
        }
        let reason = match signal {
            SIGINT => "Keyboard interrupt (SIGINT).",
            SIGTERM => "Terminated (SIGTERM).",
            _ => "Hangup (SIGHUP).",
        };
        check_released(&server, &sb, 1, reason, &out);
    }
}

#[test]
fn signals_while_the_command_runs_are_forwarded() {
    for (signal, code) in [(SIGINT, 128 + SIGINT), (SIGTERM, 143), (SIGHUP, 129)] {
        let server = server();
        let sb = sandbox(&server);
        let marker = sb.cwd().join("started");
        let script = format!(
            "trap 'echo got-{signal}; exit {}' {signal}; touch {}; while true; do sleep 0.05; done",
            128 + signal,
            marker.display()
        );
        let running = sb.spawn(&["alloc", "-q", "-c", &script]);
        assert!(eventually(LONG, || marker.exists()), "{}", running.stderr());
        running.signal(signal);
        let out = running.finish(LONG);
        // SIGINT: the command's own code; SIGTERM/SIGHUP: 128 + N.
        out.expect_code(code);
        assert_eq!(
            out.stdout,
            format!("got-{signal}\n"),
            "the command saw the signal once"
        );
        let reason = match signal {
            SIGINT => None,
            SIGTERM => Some("Terminated (SIGTERM)."),
            _ => Some("Hangup (SIGHUP)."),
        };
        assert_eq!(reason_of(&server, 1).as_deref(), reason);
        assert_no_csv(&sb);
    }
}

#[test]
fn third_signal_kills_a_stubborn_command() {
    let server = server();
    let sb = sandbox(&server);
    let marker = sb.cwd().join("started");
    let script = format!(
        "trap '' TERM; touch {}; while true; do sleep 0.05; done",
        marker.display()
    );
    let running = sb.spawn(&["alloc", "-q", "--debug", "-c", &script]);
    assert!(eventually(LONG, || marker.exists()));
    // Each signal must arrive on its own (two sent at once may merge into
    // one): the next is sent once spalloc has logged catching the last.
    for n in 1..=3 {
        running.signal(SIGTERM);
        assert!(
            eventually(LONG, || running
                .stderr()
                .matches("caught signal 15")
                .count()
                >= n),
            "{}",
            running.stderr()
        );
    }
    let out = running.finish(LONG);
    out.expect_code(143);
    assert_no_jobs(&server);
    assert_no_csv(&sb);
}

#[test]
fn signal_with_no_destroy_keeps_the_job_but_not_the_csv() {
    let server = server();
    let sb = sandbox(&server);
    let running = sb.spawn(&["alloc", "-q", "-D"]);
    assert!(running.wait_for_stdout("<Press enter when done>", LONG));
    running.signal(SIGTERM);
    running.finish(LONG).expect_code(143);
    let mut c = client(&server);
    assert_eq!(c.list_jobs().expect("list").len(), 1);
    assert_no_csv(&sb);
}

/// Runs `spalloc ARGS…` on a pseudo-terminal (through util-linux
/// `script`), returning everything written to the terminal.
fn on_terminal(sb: &Sandbox, args: &[&str], extra_env: &[(&str, &str)]) -> String {
    let bin = crate::support::cli::binary();
    let mut line = bin.display().to_string();
    for a in args {
        line.push(' ');
        line.push_str(&format!("'{}'", a.replace('\'', "'\\''")));
    }
    let mut cmd = sb.command(
        std::path::Path::new("script"),
        &["-qfec", &line, "/dev/null"],
    );
    cmd.env("TERM", "xterm");
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let out = crate::support::cli::finish(cmd.spawn().expect("run script"), LONG);
    out.expect_code(0);
    out.stdout
}

#[test]
fn status_lines_rewrite_in_place_on_a_terminal() {
    let config = ServerConfig::instant()
        .machines(vec![Machine::new("m", 2, 2)])
        .power_delay(Duration::from_millis(300));
    let server = VirtualServer::start(config).expect("start");
    let sb = sandbox(&server);
    let screen = on_terminal(&sb, &["alloc", "-c", "true"], &[]);
    assert!(
        screen.contains("\x1b[33mJob 1: Waiting for power on...\x1b[0m\r\n\x1b[1F\x1b[K\x1b[32mJob 1: Ready!\x1b[0m\r\n"),
        "{screen:?}"
    );
    // NO_COLOR removes the colour but not the rewriting.
    let screen = on_terminal(&sb, &["alloc", "-c", "true"], &[("NO_COLOR", "1")]);
    assert!(
        screen.contains("Job 2: Waiting for power on...\r\n\x1b[1F\x1b[KJob 2: Ready!\r\n"),
        "{screen:?}"
    );
    // TERM=dumb: neither.
    let screen = on_terminal(&sb, &["alloc", "-c", "true"], &[("TERM", "dumb")]);
    assert!(
        screen.contains("Job 3: Waiting for power on...\r\nJob 3: Ready!\r\n"),
        "{screen:?}"
    );
    assert_no_jobs(&server);
}

/// The README's first quick-start command, and the output it shows.
#[test]
fn the_virtual_quick_start_does_what_the_readme_says() {
    let sb = Sandbox::new();
    let out = sb.run(&[
        "alloc",
        "--virtual",
        "3",
        "-c",
        "echo \"boot {hostname}: a {w}x{h}-chip machine, job {id}\"",
    ]);
    out.expect_code(0);
    // Boards of the built-in machine are on loopback addresses.
    same_text(
        "boot 127.100.0.1: a 16x16-chip machine, job 1\n",
        &out.stdout,
    );
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 4, "{}", out.stderr);
    assert!(
        lines[0].starts_with("Virtual spalloc server on 127.0.0.1:")
            && lines[0].ends_with(" (one 24-board machine, no hardware)"),
        "{}",
        out.stderr
    );
    assert_eq!(
        lines[1..],
        [
            "Job 1: Waiting for power on...",
            "Job 1: Ready!",
            "Job 1: Destroyed; the boards are free again."
        ]
    );
    let readme =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
            .expect("README");
    for line in out.stdout.lines().chain(lines[1..].iter().copied()) {
        assert!(
            readme.contains(&format!("\n{line}\n")),
            "README lacks {line:?}"
        );
    }
    assert_no_csv(&sb);
}

#[track_caller]
fn same_text(expected: &str, actual: &str) {
    assert_eq!(
        actual, expected,
        "\n--- expected ---\n{expected}\n--- actual ---\n{actual}"
    );
}

#[test]
fn virtual_takes_no_server_of_its_own() {
    let sb = Sandbox::new();
    for (args, flag) in [
        (
            &["alloc", "--virtual", "-H", "example.org"][..],
            "-H/--hostname",
        ),
        (&["alloc", "--virtual", "-P", "1234"], "-P/--port"),
    ] {
        let out = sb.run(args);
        out.expect_code(2);
        assert!(
            out.stderr.starts_with(&format!(
                "spalloc alloc: error: argument --virtual: not allowed with argument {flag}"
            )),
            "{}",
            out.stderr
        );
    }
    // A bad value is refused before the server is started.
    let out = sb.run(&["alloc", "--virtual", "--queue-timeout", "-3", "-c", "true"]);
    out.expect_code(2);
    assert!(
        out.stderr
            .starts_with("spalloc alloc: error: argument --queue-timeout")
            && !out.stderr.contains("Virtual spalloc server"),
        "{}",
        out.stderr
    );
}

/// A job the server cancels was never ours to free: no "free again".
#[test]
fn a_cancelled_virtual_job_does_not_claim_to_free_boards() {
    let sb = Sandbox::new();
    let out = sb.run(&["alloc", "--virtual", "100", "-c", "true"]);
    out.expect_code(1);
    assert!(
        out.stderr
            .contains("Job 1: Destroyed: Cancelled: No suitable machines available."),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("free again"), "{}", out.stderr);
}

#[test]
fn an_unusable_temporary_directory_is_named() {
    let server = server();
    let mut sb = sandbox(&server);
    sb.env("TMPDIR", "/nonexistent/tmp");
    let out = sb.run(&["alloc", "-c", "true"]);
    out.expect_code(1);
    same_text(
        "spalloc: cannot create a temporary file in /nonexistent/tmp (set TMPDIR to a writable directory): no such file or directory\n",
        &out.stderr,
    );
    assert_no_jobs(&server);
}

/// `-D` keeps the job, and says for how long and how to keep it longer.
#[test]
fn no_destroy_says_when_the_job_will_expire() {
    let server = server();
    let sb = sandbox(&server);
    for (extra, says) in [
        (
            &[][..],
            "Job 1: Kept: it expires about 60 s after its last keepalive unless something keeps it alive (`spalloc alloc --resume 1`).",
        ),
        (
            &["--keepalive", "5"],
            "Job 2: Kept: it expires about 5 s after its last keepalive unless something keeps it alive (`spalloc alloc --resume 2`).",
        ),
        (
            &["--keepalive", "-1"],
            "Job 3: Kept: it never expires (--keepalive -1): destroy it with `spalloc job --destroy 3`.",
        ),
    ] {
        let out = sb.run(&[&["alloc", "-D"], extra, &["-c", "true"]].concat());
        out.expect_code(0);
        assert_eq!(out.stderr.lines().last(), Some(says), "{}", out.stderr);
    }
    // A resumed job's own interval, as the server reports it.
    let out = sb.run(&["alloc", "-D", "--resume", "2", "-c", "true"]);
    out.expect_code(0);
    assert!(
        out.stderr
            .contains("Job 2: Kept: it expires about 5 s after"),
        "{}",
        out.stderr
    );
    // Quiet means quiet.
    let out = sb.run(&["alloc", "-q", "-D", "-c", "true"]);
    out.expect_code(0);
    same_text("", &out.stderr);
}

/// While waiting, a lost connection is reported once, and so is its
/// return, like `--watch` does.
#[test]
fn outages_while_waiting_are_reported() {
    let state = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(2));
    let s = state.clone();
    let server = FakeServer::start(Dialect::Python, move |c: &Call| {
        Reply::Return(match c.command.as_str() {
            "version" => json!("1!7.1.0"),
            "create_job" => json!(1),
            "get_job_state" => json!({"state": s.load(std::sync::atomic::Ordering::SeqCst),
                "power": true, "keepalive": 60.0, "reason": null, "start_time": 1.0,
                "keepalivehost": "127.0.0.1"}),
            "get_job_machine_info" => json!({"width": 8, "height": 8,
                "connections": [[[0, 0], "127.100.0.1"]], "machine_name": "m",
                "boards": [[0, 0, 0]]}),
            _ => Value::Null,
        })
    });
    let sb = Sandbox::new();
    sb.use_server(server.addr());
    let running = sb.spawn(&["alloc", "--reconnect-delay", "0.05", "-c", "true"]);
    assert!(
        running.wait_for_stderr("Waiting for power on", LONG),
        "{}",
        running.stderr()
    );
    server.refuse(true);
    server.kill_connections();
    assert!(
        running.wait_for_stderr("Job 1: Lost connection to server: ", LONG),
        "{}",
        running.stderr()
    );
    server.refuse(false);
    assert!(
        running.wait_for_stderr("Job 1: Connection to server restored.", LONG),
        "{}",
        running.stderr()
    );
    state.store(3, std::sync::atomic::Ordering::SeqCst);
    server.push(&crate::support::jobs_changed(Dialect::Python, &[1]));
    let out = running.finish(LONG);
    out.expect_code(0);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 4, "{}", out.stderr);
    assert!(lines[1].ends_with("; reconnecting…"), "{}", out.stderr);
    assert_eq!(lines[3], "Job 1: Ready!");
    assert_eq!(server.count("destroy_job"), 1);
}

/// A first word that is no command, no option and no number is a mistyped
/// command; `spalloc help CMD` is CMD's help.
#[test]
fn unknown_commands_and_help() {
    let sb = Sandbox::new();
    let out = sb.run(&["pss"]);
    out.expect_code(2);
    assert!(
        out.stderr
            .starts_with("spalloc: error: unknown command 'pss'"),
        "{}",
        out.stderr
    );
    // The short usage and the commands, not the whole help.
    assert!(
        out.stderr.contains(
            "\nusage: spalloc <command> [<args>]\n\
             The commands are alloc, job, proxy, ps, machine, where-is, config, serve, \
             completions, man.\n"
        ),
        "{}",
        out.stderr
    );
    assert_eq!(out.stderr.lines().count(), 4, "{}", out.stderr);
    let help = sb.run(&["help", "ps"]);
    help.expect_code(0);
    let direct = sb.run(&["ps", "--help"]);
    assert_eq!(help.stdout, direct.stdout);
    assert!(
        help.stdout.starts_with("usage: spalloc ps"),
        "{}",
        help.stdout
    );
    let out = sb.run(&["help", "nope"]);
    out.expect_code(2);
    assert!(
        out.stderr.contains("unknown command 'nope'"),
        "{}",
        out.stderr
    );
    // Numbers are still the old `spalloc WHAT…`.
    let out = sb.run(&["3", "--owner", "me"]);
    out.expect_code(2);
    assert!(out.stderr.contains("--hostname"), "{}", out.stderr);
}
