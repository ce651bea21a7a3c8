//! Scripted workflows, run as real processes against the virtual server
//! over v1 and v2: `alloc --queue-timeout`, `alloc --detach` and its
//! background keeper, `job --keepalive`, `job --wait-ready`. No keeper is
//! left running: each one a test starts is killed by a guard.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;
use spalloc::server::{Machine, ServerConfig, VirtualServer};
use spalloc::{Client, CreateJobOptions, JobRequest, JobState, ServerOptions};

use crate::support::cli::{ConfigFile, Sandbox};
use crate::support::{PATIENCE, eventually};

const SIGTERM: i32 = 15;

fn server() -> VirtualServer {
    VirtualServer::start(ServerConfig::instant().machines(vec![Machine::new("m", 1, 1)]))
        .expect("start virtual server")
}

/// A sandbox for `server` over v1, or over v2 as alice.
fn sandbox(server: &VirtualServer, v2: bool) -> Sandbox {
    let mut sb = Sandbox::new();
    if v2 {
        let url = server.v2_url().expect("v2");
        sb.write_config(ConfigFile::User, &format!("[spalloc]\nhostname = {url}\n"));
        sb.env("SPALLOC_USER", "alice")
            .env("SPALLOC_PASSWORD", "alice-pw");
    } else {
        sb.use_server(server.local_addr());
    }
    sb
}

fn v2_server() -> VirtualServer {
    crate::v2client::start()
}

fn client(server: &VirtualServer) -> Client {
    let options = ServerOptions::new()
        .address(server.local_addr())
        .timeout(Some(PATIENCE));
    Client::connect(&options).expect("connect")
}

/// A job holding the whole 1-triad machine `m`, so that later ones queue.
fn occupy(c: &mut Client) -> u64 {
    let mut o = CreateJobOptions::new("hog");
    o.keepalive = None;
    o.machine = Some("m".into());
    c.create_job(
        &JobRequest::Triads {
            width: 1,
            height: 1,
        },
        &o,
    )
    .expect("create")
}

fn state(c: &mut Client, id: u64) -> JobState {
    c.job_state(id).expect("state").state
}

/// Kills a keeper when dropped, whatever the test did.
struct Keeper(u32);

impl Drop for Keeper {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-9")
            .arg(self.0.to_string())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

fn alive(pid: u32) -> bool {
    Command::new("kill")
        .arg("-0")
        .arg(pid.to_string())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn keeper_file(sb: &Sandbox, id: u64) -> PathBuf {
    sb.home().join(format!(".cache/spalloc/keepers/job-{id}"))
}

/// The keeper pid that `alloc --detach` announced on stderr.
fn announced_pid(stderr: &str) -> u32 {
    let at = stderr.find("keeper pid ").expect("keeper pid announced") + 11;
    stderr[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|p| p.parse().ok())
        .expect("a pid")
}

#[test]
fn queue_timeout_destroys_the_job_and_exits_5() {
    let server = server();
    let mut c = client(&server);
    let hog = occupy(&mut c);
    let sb = sandbox(&server, false);
    let out = sb.run(&["alloc", "--queue-timeout", "0.2", "-c", "true"]);
    out.expect_code(5);
    assert!(
        out.stderr
            .contains("Job 2: Not ready after 0.2 s (--queue-timeout); destroying it."),
        "{}",
        out.stderr
    );
    let st = c.job_state(2).expect("state");
    assert_eq!(st.state, JobState::Destroyed);
    assert!(st.reason.unwrap_or_default().contains("--queue-timeout"));
    assert_eq!(state(&mut c, hog), JobState::Ready);

    let out = sb.run(&["alloc", "--queue-timeout", "-1"]);
    out.expect_code(2);
    assert!(
        out.stderr.contains("argument --queue-timeout"),
        "{}",
        out.stderr
    );
}

#[test]
fn time_spent_queued_is_shown_once_out_of_the_queue() {
    let server = server();
    let mut c = client(&server);
    let hog = occupy(&mut c);
    let sb = sandbox(&server, false);
    let running = sb.spawn(&["alloc", "--queue-timeout", "60", "-c", "true"]);
    assert!(running.wait_for_stderr("Job 2: Waiting in queue...", PATIENCE));
    c.destroy_job(hog, None).expect("destroy");
    let out = running.finish(PATIENCE);
    out.expect_code(0);
    assert!(
        out.stderr.contains("Job 2: Ready! (queued for "),
        "{}",
        out.stderr
    );
}

#[test]
fn wait_ready_waits_times_out_and_sees_the_end() {
    let server = server();
    let mut c = client(&server);
    let hog = occupy(&mut c);
    let queued = occupy(&mut c);
    let sb = sandbox(&server, false);
    let id = queued.to_string();

    let out = sb.run(&["job", "--wait-ready", &id, "--ready-timeout", "0.2"]);
    out.expect_code(5);
    assert!(out.stderr.contains("--ready-timeout"), "{}", out.stderr);
    assert_eq!(state(&mut c, queued), JobState::Queued, "left as it was");

    let running = sb.spawn(&["job", "--wait-ready", &id]);
    c.destroy_job(hog, None).expect("destroy");
    running.finish(PATIENCE).expect_code(0);
    assert_eq!(state(&mut c, queued), JobState::Ready);

    c.destroy_job(queued, Some("gone")).expect("destroy");
    let out = sb.run(&["job", "--wait-ready", &id]);
    out.expect_code(1);
    assert!(out.stderr.contains("Destroyed: gone"), "{}", out.stderr);

    let out = sb.run(&["job", "--ready-timeout", "1", &id]);
    out.expect_code(2);
}

#[test]
fn foreground_keeper_stops_on_sigterm_without_destroying() {
    let server = server();
    let mut c = client(&server);
    let id = occupy(&mut c);
    let sb = sandbox(&server, false);
    let running = sb.spawn(&["job", "--keepalive", &id.to_string()]);
    let _guard = Keeper(running.pid());
    assert!(
        running.wait_for_stderr("Kept alive by this process", PATIENCE),
        "{}",
        running.stderr()
    );
    let shown = sb.run(&["job", &id.to_string(), "--json"]);
    let v: Value = serde_json::from_str(shown.expect_code(0).stdout.trim()).expect("json");
    assert_eq!(v["keeper_pid"], running.pid());
    let text = sb.run(&["job", &id.to_string()]);
    assert!(
        text.stdout
            .contains(&format!("Kept by: local keeper, pid {}", running.pid())),
        "{}",
        text.stdout
    );

    running.signal(SIGTERM);
    let out = running.finish(PATIENCE);
    out.expect_code(0);
    assert!(
        out.stderr.contains("expires after its keepalive"),
        "{}",
        out.stderr
    );
    assert_eq!(state(&mut c, id), JobState::Ready, "not destroyed");
    assert!(!keeper_file(&sb, id).exists());
    let v: Value = serde_json::from_str(sb.run(&["job", &id.to_string(), "--json"]).stdout.trim())
        .expect("json");
    assert_eq!(v["keeper_pid"], Value::Null);
}

#[test]
fn a_second_keeper_keeps_its_record_when_the_first_stops() {
    let server = server();
    let mut c = client(&server);
    let id = occupy(&mut c);
    let sb = sandbox(&server, false);
    let keep = |sb: &Sandbox| {
        let k = sb.spawn(&["job", "--keepalive", &id.to_string()]);
        assert!(
            k.wait_for_stderr("Kept alive by this process", PATIENCE),
            "{}",
            k.stderr()
        );
        k
    };
    let first = keep(&sb);
    let _first_guard = Keeper(first.pid());
    let second = keep(&sb);
    let _second_guard = Keeper(second.pid());
    first.signal(SIGTERM);
    first.finish(PATIENCE).expect_code(0);
    let shown = sb.run(&["job", &id.to_string(), "--json"]);
    let v: Value = serde_json::from_str(shown.expect_code(0).stdout.trim()).expect("json");
    assert_eq!(v["keeper_pid"], second.pid(), "the second keeper's record");
    second.signal(SIGTERM);
    second.finish(PATIENCE).expect_code(0);
    assert!(!keeper_file(&sb, id).exists());
}

#[test]
fn foreground_keeper_stops_when_the_job_is_destroyed_elsewhere() {
    let server = server();
    let mut c = client(&server);
    let id = occupy(&mut c);
    let sb = sandbox(&server, false);
    let running = sb.spawn(&["job", "--keepalive", &id.to_string()]);
    let _guard = Keeper(running.pid());
    assert!(running.wait_for_stderr("Kept alive", PATIENCE));
    c.destroy_job(id, Some("admin")).expect("destroy");
    let out = running.finish(PATIENCE);
    out.expect_code(1);
    assert!(out.stderr.contains("Destroyed: admin"), "{}", out.stderr);

    // A job that is gone already.
    let out = sb.run(&["job", "--keepalive", &id.to_string()]);
    out.expect_code(1);
    assert!(out.stderr.contains("does not exist"), "{}", out.stderr);
}

/// `alloc --detach` over v1 or v2: the allocation printed, a keeper left
/// holding the job, and `job --destroy` ending both.
fn detach_then_destroy(server: &VirtualServer, v2: bool) {
    let sb = sandbox(server, v2);
    let out = sb.run(&["alloc", "--detach", "--json"]);
    out.expect_code(0);
    let pid = announced_pid(&out.stderr);
    let _guard = Keeper(pid);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "one JSON line: {}", out.stdout);
    let v: Value = serde_json::from_str(lines[0]).expect("json");
    let id = v["id"].as_u64().expect("id");
    assert!(alive(pid), "keeper running");
    assert!(keeper_file(&sb, id).exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(keeper_file(&sb, id))
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert!(sb.leftover_temp_files().is_empty(), "no CSV left");

    let shown = sb.run(&["job", &id.to_string(), "--json"]);
    let j: Value = serde_json::from_str(shown.expect_code(0).stdout.trim()).expect("json");
    assert_eq!(j["state"], "ready");
    assert_eq!(j["keeper_pid"], pid);

    sb.run(&["job", "--destroy", &id.to_string()])
        .expect_code(0);
    assert!(
        eventually(PATIENCE, || !keeper_file(&sb, id).exists()),
        "keeper file removed"
    );
    assert!(eventually(PATIENCE, || !alive(pid)), "keeper stopped");
    let gone = sb.run(&["job", &id.to_string(), "--json"]);
    let j: Value = serde_json::from_str(gone.stdout.trim()).expect("json");
    assert_eq!(j["state"], "destroyed");
}

#[test]
fn detach_over_v1() {
    let server = server();
    detach_then_destroy(&server, false);

    // The info block, without the CSV file that goes with the process.
    let sb = sandbox(&server, false);
    let out = sb.run(&["alloc", "--detach"]);
    out.expect_code(0);
    let pid = announced_pid(&out.stderr);
    let _guard = Keeper(pid);
    assert!(out.stdout.contains("Hostname: "), "{}", out.stdout);
    assert!(!out.stdout.contains("All hostnames"), "{}", out.stdout);
    assert!(!out.stdout.contains("Press enter"), "{}", out.stdout);
    let mut c = client(&server);
    let jobs = c.list_jobs().expect("jobs");
    assert_eq!(jobs.len(), 1);
    // Killed, the keeper leaves the job to expire: it is not destroyed.
    drop(_guard);
    assert!(eventually(PATIENCE, || !alive(pid)));
    assert_eq!(state(&mut c, jobs[0].job_id), JobState::Ready);
    c.destroy_job(jobs[0].job_id, None).expect("destroy");
}

#[test]
fn detach_over_v2() {
    let server = v2_server();
    detach_then_destroy(&server, true);
}

#[test]
fn detach_refuses_what_it_cannot_keep() {
    let server = server();
    let sb = sandbox(&server, false);
    for args in [
        &["alloc", "--detach", "-c", "true"][..],
        &["alloc", "--detach", "--no-destroy"],
        &["alloc", "--detach", "--virtual"],
        &["alloc", "--detach", "--proxy"],
    ] {
        let out = sb.run(args);
        out.expect_code(2);
        assert!(out.stderr.contains("argument --detach"), "{}", out.stderr);
    }
    assert!(client(&server).list_jobs().expect("jobs").is_empty());
}

#[test]
fn boards_other_than_asked_for_are_pointed_out() {
    let server = server();
    let sb = sandbox(&server, false);
    let out = sb.run(&["alloc", "2", "-c", "true"]);
    out.expect_code(0);
    assert!(
        out.stderr
            .contains("Job 1: Allocated 3 boards, more than the 2 asked for.\n"),
        "{}",
        out.stderr
    );
    let out = sb.run(&["alloc", "3", "-c", "true"]);
    assert!(
        !out.expect_code(0).stderr.contains("Allocated"),
        "{}",
        out.stderr
    );

    let dead = VirtualServer::start(
        ServerConfig::instant().machines(vec![Machine::new("m", 1, 1).dead_boards([(0, 0, 1)])]),
    )
    .expect("start");
    let sb = sandbox(&dead, false);
    let out = sb.run(&["alloc", "1", "1", "--max-dead-boards", "1", "-c", "true"]);
    out.expect_code(0);
    assert!(
        out.stderr
            .contains("Job 1: Allocated 2 boards, fewer than the 1x1 triads asked for: 1 dead.\n"),
        "{}",
        out.stderr
    );
}

#[test]
fn report_problem_over_v1_java_and_v2() {
    use spalloc::server::Dialect;
    // v1: the Java compatibility service knows report_problem.
    let server = VirtualServer::start(
        ServerConfig::instant()
            .dialect(Dialect::Java)
            .machines(vec![Machine::new("m", 2, 2)]),
    )
    .expect("start");
    let sb = sandbox(&server, false);
    let out = sb.run(&["alloc", "--detach", "--json", "1", "1"]);
    out.expect_code(0);
    let _guard = Keeper(announced_pid(&out.stderr));
    let v: Value = serde_json::from_str(out.stdout.trim()).expect("json");
    let id = v["id"].to_string();
    let board = &v["boards"][1];
    let (x, y, z) = (
        board["x"].to_string(),
        board["y"].to_string(),
        board["z"].to_string(),
    );
    for args in [
        vec!["job", &id, "--report-problem", "flaky"],
        vec![
            "job",
            &id,
            "--report-problem",
            "flaky",
            "--board",
            &x,
            &y,
            &z,
        ],
        vec!["job", &id, "--report-problem", "flaky", "--chip", "1", "1"],
    ] {
        let out = sb.run(&args);
        out.expect_code(0);
        assert_eq!(out.stdout, "");
    }
    let out = sb.run(&["job", &id, "--report-problem", "x", "--chip", "200", "200"]);
    out.expect_code(4);
    assert!(
        out.stderr.contains("not in the job's allocation"),
        "{}",
        out.stderr
    );
    let out = sb.run(&["job", &id, "--board", "0", "0", "0"]);
    out.expect_code(2);
    assert!(
        out.stderr.contains("only with --report-problem"),
        "{}",
        out.stderr
    );
    let out = sb.run(&["job", &id, "--report-problem", "x", "--board", "0", "0"]);
    out.expect_code(2);
    sb.run(&["job", "--destroy", &id]).expect_code(0);

    // v2: report-issue, answered with what the service did.
    let server = v2_server();
    let sb = sandbox(&server, true);
    let out = sb.run(&["alloc", "--detach", "--json", "1", "1"]);
    out.expect_code(0);
    let _guard = Keeper(announced_pid(&out.stderr));
    let v: Value = serde_json::from_str(out.stdout.trim()).expect("json");
    let id = v["id"].to_string();
    let out = sb.run(&["job", &id, "--report-problem", "flaky", "--chip", "0", "0"]);
    out.expect_code(0);
    assert_eq!(out.stdout, "report noted\n");
    let out = sb.run(&["job", &id, "--report-problem", "flaky"]);
    assert_eq!(out.expect_code(0).stdout, "report noted\n");
    let out = sb.run(&["job", &id, "--report-problem", "x", "--chip", "200", "200"]);
    out.expect_code(0);
    assert!(
        out.stdout.contains("not in job's allocation"),
        "{}",
        out.stdout
    );
    sb.run(&["job", "--destroy", &id]).expect_code(0);
}
