//! `--watch` in `ps`, `machine` and `job`: frames separated by blank lines
//! on a pipe, a new frame per change, SIGINT ending with exit 0, JSON Lines,
//! and reconnecting after a lost connection or a server restart.

use std::time::Duration;

use serde_json::{Value, json};
use spalloc::server::{Machine, ServerConfig};
use spalloc::{JobRequest, JobState};

use super::{client, ready_job, same, sandbox, server_m, server_with, wait_state};
use crate::support::cli::{ConfigFile, Running, Sandbox};
use crate::support::{Dialect, FakeServer, PATIENCE, Reply, eventually, jobs_changed};

const PS_HEADER: &str = "ID  State";

/// Waits until stdout holds at least `n` occurrences of `marker`.
#[track_caller]
fn wait_frames(running: &Running, marker: &str, n: usize) {
    assert!(
        eventually(PATIENCE, || running.stdout().matches(marker).count() >= n),
        "fewer than {n} × {marker:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        running.stdout(),
        running.stderr()
    );
}

/// Splits watch output into its frames (each starting on the line where
/// `marker` appears), checking that each frame is followed by exactly one
/// empty line, the last one included.
#[track_caller]
fn frames(stdout: &str, marker: &str) -> Vec<String> {
    let starts: Vec<usize> = stdout
        .match_indices(marker)
        .map(|(i, _)| stdout[..i].rfind('\n').map_or(0, |p| p + 1))
        .collect();
    assert!(
        starts.first() == Some(&0),
        "output before the first frame: {stdout:?}"
    );
    let mut frames = Vec::new();
    for (k, &start) in starts.iter().enumerate() {
        let end = starts.get(k + 1).copied().unwrap_or(stdout.len());
        let chunk = &stdout[start..end];
        assert!(
            chunk.ends_with("\n\n"),
            "a frame without its empty line:\n{stdout}"
        );
        frames.push(chunk[..chunk.len() - 1].to_owned());
    }
    frames
}

/// As [`frames`], for `ps` frames, which never end with an empty line of
/// their own: so exactly one empty line follows each.
#[track_caller]
fn ps_frames(stdout: &str) -> Vec<String> {
    let frames = frames(stdout, PS_HEADER);
    for f in &frames {
        assert!(
            !f.ends_with("\n\n"),
            "more than one empty line after a frame:\n{stdout}"
        );
    }
    frames
}

/// Lets `reconnect_delay` be short for the sandbox's runs.
fn quick_reconnect(sb: &Sandbox) {
    let path = sb.config_path(ConfigFile::User);
    let mut text = std::fs::read_to_string(&path).expect("config");
    text.push_str("reconnect_delay = 0.2\n");
    sb.write_config(ConfigFile::User, &text);
}

#[test]
fn ps_watch_redraws_on_change_and_ends_on_sigint() {
    let server = server_m();
    let sb = sandbox(server.local_addr());
    let running = sb.spawn(&["ps", "--watch"]);
    wait_frames(&running, PS_HEADER, 1);
    let mut c = client(server.local_addr());
    let id = ready_job(&mut c, JobRequest::AnyBoard, "ann");
    let row = format!("{id}  ready  on ");
    assert!(
        eventually(PATIENCE, || running.stdout().contains(&row)),
        "{}",
        running.stdout()
    );
    running.signal(2);
    let out = running.finish(PATIENCE);
    out.expect_code(0);
    same("", &out.stderr);
    let frames = ps_frames(&out.stdout);
    assert!(frames.len() >= 2, "{}", out.stdout);
    same(
        "ID  State  Power  Boards  Machine  Created at  Keepalive  Owner (Host)\n",
        &frames[0],
    );
    assert!(
        frames.last().is_some_and(|f| f.contains(&row)),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains('\x1b'), "no clear-screen on a pipe");
}

#[test]
fn machine_watch_all_and_one() {
    let server = server_m();
    let sb = sandbox(server.local_addr());
    let all = sb.spawn(&["machine", "-w"]);
    let one = sb.spawn(&["machine", "m", "--watch", "-d"]);
    wait_frames(&all, "Name  Num boards", 1);
    wait_frames(&one, "  Name: m\n", 1);
    let mut c = client(server.local_addr());
    let id = ready_job(&mut c, JobRequest::AnyBoard, "ann");
    assert!(
        eventually(PATIENCE, || all
            .stdout()
            .contains("m             12       1     1  default")),
        "{}",
        all.stdout()
    );
    let row = format!("\nA    {id:>6}           1  ann 127.0.0.1\n");
    assert!(
        eventually(PATIENCE, || one.stdout().contains(&row)),
        "{}",
        one.stdout()
    );
    all.signal(2);
    one.signal(2);
    let out = all.finish(PATIENCE);
    out.expect_code(0);
    frames(&out.stdout, "Name  Num boards");
    let out = one.finish(PATIENCE);
    out.expect_code(0);
    let frames = frames(&out.stdout, "  Name: m\n");
    assert!(frames[0].contains("In-use: 0 of 12\n"), "{}", frames[0]);
    assert!(
        frames
            .last()
            .is_some_and(|f| f.contains("In-use: 1 of 12\n")),
        "{}",
        out.stdout
    );

    // An unknown machine ends the watch as it ends the plain view.
    let out = sb.run(&["machine", "nosuch", "--watch"]);
    out.expect_code(6);
    same("No machine 'nosuch' was found\n", &out.stderr);
}

#[test]
fn job_watch_follows_one_job() {
    let server = server_m();
    let mut c = client(server.local_addr());
    let id = ready_job(&mut c, JobRequest::AnyBoard, "ann");
    let sb = sandbox(server.local_addr());
    let running = sb.spawn(&["job", &id.to_string(), "-w"]);
    wait_frames(&running, "Job ID: ", 1);
    c.destroy_job(id, Some("watched it go")).expect("destroy");
    let last = format!("Job ID: {id}\n State: destroyed\nReason: watched it go\n");
    assert!(
        eventually(PATIENCE, || running.stdout().contains(&last)),
        "{}",
        running.stdout()
    );
    running.signal(2);
    let out = running.finish(PATIENCE);
    out.expect_code(0);
    let frames = frames(&out.stdout, "Job ID: ");
    assert!(frames[0].contains("      State: ready\n"), "{}", frames[0]);
    same(&last, frames.last().map_or("", String::as_str));
}

#[test]
fn json_watch_is_json_lines() {
    let server = server_m();
    let sb = sandbox(server.local_addr());
    let running = sb.spawn(&["ps", "--watch", "--json"]);
    wait_frames(&running, "\n", 1);
    let mut c = client(server.local_addr());
    let id = ready_job(&mut c, JobRequest::AnyBoard, "ann");
    assert!(
        eventually(PATIENCE, || running
            .stdout()
            .lines()
            .any(|l| l.contains("\"state\":\"ready\""))),
        "{}",
        running.stdout()
    );
    running.signal(2);
    let out = running.finish(PATIENCE);
    out.expect_code(0);
    assert!(
        !out.stdout.contains("\n\n") && !out.stdout.contains('\x1b'),
        "{:?}",
        out.stdout
    );
    assert!(out.stdout.ends_with('\n'));
    let docs: Vec<Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is one JSON document"))
        .collect();
    assert_eq!(docs[0], json!([]));
    let last = docs.last().expect("a frame");
    assert_eq!(last[0]["id"], json!(id));
    assert_eq!(last[0]["state"], json!("ready"));

    // `job --watch --json` too.
    let running = sb.spawn(&["job", &id.to_string(), "--watch", "--json"]);
    wait_frames(&running, "\n", 1);
    c.destroy_job(id, None).expect("destroy");
    assert!(
        eventually(PATIENCE, || running
            .stdout()
            .contains("\"state\":\"destroyed\"")),
        "{}",
        running.stdout()
    );
    running.signal(2);
    let out = running.finish(PATIENCE);
    out.expect_code(0);
    for line in out.stdout.lines() {
        let v: Value = serde_json::from_str(line).expect("JSON");
        assert_eq!(v["id"], json!(id));
    }
}

/// A scripted server for watching: counts frames by `list_jobs` calls and
/// records the subscriptions.
fn watchable() -> FakeServer {
    FakeServer::start(Dialect::Python, |c| {
        Reply::Return(match c.command.as_str() {
            "version" => json!("1!7.1.0"),
            "list_jobs" | "list_machines" => json!([]),
            _ => Value::Null,
        })
    })
}

#[test]
fn ps_watch_subscribes_to_all_jobs_and_redraws_on_notification() {
    let fake = watchable();
    let sb = sandbox(fake.addr());
    let running = sb.spawn(&["ps", "--watch"]);
    wait_frames(&running, PS_HEADER, 1);
    // `args: []`, which the Java server accepts, not `[null]`.
    let subs = fake.calls_named("notify_job");
    assert_eq!(subs.len(), 1);
    assert!(
        subs[0].raw.contains("\"args\": []") || subs[0].raw.contains("\"args\":[]"),
        "{}",
        subs[0].raw
    );
    fake.push(&jobs_changed(Dialect::Python, &[1]));
    wait_frames(&running, PS_HEADER, 2);
    fake.push(&jobs_changed(Dialect::Python, &[2]));
    wait_frames(&running, PS_HEADER, 3);
    running.signal(2);
    let out = running.finish(PATIENCE);
    out.expect_code(0);
    assert_eq!(ps_frames(&out.stdout).len(), 3);
}

/// A dropped connection: one message, retries every reconnect_delay (even
/// while the server keeps failing), then a fresh subscription and frame.
#[test]
fn watch_reconnects_after_a_lost_connection() {
    let fake = watchable();
    let sb = sandbox(fake.addr());
    quick_reconnect(&sb);
    let running = sb.spawn(&["ps", "--watch"]);
    wait_frames(&running, PS_HEADER, 1);
    fake.refuse(true);
    fake.kill_connections();
    assert!(running.wait_for_stderr("Lost connection to server: ", PATIENCE));
    // Several failed attempts...
    std::thread::sleep(Duration::from_millis(700));
    fake.refuse(false);
    // ...then a new subscription on a new connection and a new frame.
    wait_frames(&running, PS_HEADER, 2);
    let subs = fake.calls_named("notify_job");
    assert_eq!(subs.len(), 2, "{subs:?}");
    assert_ne!(subs[0].conn, subs[1].conn);
    // The new subscription works.
    fake.push(&jobs_changed(Dialect::Python, &[3]));
    wait_frames(&running, PS_HEADER, 3);
    running.signal(2);
    let out = running.finish(PATIENCE);
    out.expect_code(0);
    assert_eq!(ps_frames(&out.stdout).len(), 3);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(out.stderr.ends_with("; reconnecting…\n"), "{}", out.stderr);
}

/// SIGINT while reconnecting still ends cleanly.
#[test]
fn sigint_while_reconnecting_exits_0() {
    let fake = watchable();
    let sb = sandbox(fake.addr());
    quick_reconnect(&sb);
    let running = sb.spawn(&["machine", "--watch"]);
    wait_frames(&running, "Name", 1);
    fake.refuse(true);
    fake.kill_connections();
    assert!(running.wait_for_stderr("Lost connection to server: ", PATIENCE));
    running.signal(2);
    let out = running.finish(PATIENCE);
    out.expect_code(0);
    frames(&out.stdout, "Name");
}

/// The virtual server stops and starts again on the same address with its
/// state file: the watch says so once, and draws the restored jobs and
/// then the new ones.
#[test]
fn watch_survives_a_server_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("state.json");
    let config = ServerConfig::instant()
        .machines(vec![Machine::new("m", 2, 2).tags(["default"])])
        .state_file(Some(state.clone()));
    let server = server_with(config.clone());
    let addr = server.local_addr();
    let mut c = client(addr);
    let a = ready_job(&mut c, JobRequest::AnyBoard, "ann");
    drop(c);

    let sb = sandbox(addr);
    quick_reconnect(&sb);
    let running = sb.spawn(&["ps", "--watch"]);
    let row_a = format!("\n{a:>2}  ready  on ");
    assert!(
        eventually(PATIENCE, || running.stdout().contains(&row_a)),
        "{}",
        running.stdout()
    );
    let before = running.stdout().matches(PS_HEADER).count();

    server.shutdown();
    assert!(
        running.wait_for_stderr("Lost connection to server: ", PATIENCE),
        "{}",
        running.stderr()
    );
    // Let a few reconnection attempts fail.
    std::thread::sleep(Duration::from_millis(500));
    let server = server_with(config.listen(addr));
    wait_frames(&running, PS_HEADER, before + 1);
    let mut c = client(addr);
    let b = ready_job(&mut c, JobRequest::AnyBoard, "bob");
    assert!(b > a, "the restored server reused job ids");
    let row_b = format!("\n{b:>2}  ready  on ");
    assert!(
        eventually(PATIENCE, || running.stdout().contains(&row_b)),
        "{}",
        running.stdout()
    );
    running.signal(2);
    let out = running.finish(PATIENCE);
    out.expect_code(0);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(
        out.stderr.starts_with("Lost connection to server: "),
        "{}",
        out.stderr
    );
    assert!(out.stderr.ends_with("; reconnecting…\n"), "{}", out.stderr);
    let frames = ps_frames(&out.stdout);
    // The first frame after the restart shows the restored job.
    assert!(frames[before].contains(&row_a), "{}", out.stdout);
    assert!(
        frames
            .last()
            .is_some_and(|f| f.contains(&row_a) && f.contains(&row_b))
    );
    wait_state(&mut c, a, JobState::Ready);
    drop(server);
}

/// What each watch subscribes to: `machine` renews its subscription on
/// every pass, to MACHINE or to all machines; `job` to its job.
#[test]
fn machine_and_job_watch_subscriptions() {
    let fake = super::sample_server();
    let sb = sandbox(fake.addr());
    let one = sb.spawn(&["machine", "big", "--watch"]);
    wait_frames(&one, "  Name: big\n", 1);
    fake.push(&crate::support::line(
        Dialect::Python,
        &json!({"machines_changed": ["big"]}),
    ));
    wait_frames(&one, "  Name: big\n", 2);
    one.signal(2);
    one.finish(PATIENCE).expect_code(0);
    let subs = fake.calls_named("notify_machine");
    assert!(subs.len() >= 2, "not renewed on every pass: {subs:?}");
    assert!(subs.iter().all(|c| c.args == [json!("big")]), "{subs:?}");

    let all = sb.spawn(&["machine", "--watch"]);
    wait_frames(&all, "Name  Num boards", 1);
    all.signal(2);
    all.finish(PATIENCE).expect_code(0);
    let last = fake
        .calls_named("notify_machine")
        .pop()
        .expect("a subscription");
    assert!(last.args.is_empty(), "{last:?}");

    let job = sb.spawn(&["job", "15", "--watch"]);
    wait_frames(&job, "Job ID: 15", 1);
    job.signal(2);
    job.finish(PATIENCE).expect_code(0);
    let subs = fake.calls_named("notify_job");
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[0].args, [json!(15)]);
}
