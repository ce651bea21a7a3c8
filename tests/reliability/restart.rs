//! The server restarts (saving and restoring its state file) while jobs are
//! held by the library and by `spalloc alloc`: the jobs survive, and their
//! keepalives carry on against the new server process.
//!
//! The server is down for longer than the keepalive interval; the restored
//! server restarts every keepalive timer, as the Python server's warm start
//! does, so only keepalives sent after the restart keep the jobs alive.

use std::net::SocketAddr;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::json;
use spalloc::server::VirtualServer;
use spalloc::{Job, JobOptions, JobRequest, JobState};

use super::{is_live, one_triad, record, state_of};
use crate::support::cli::Sandbox;
use crate::support::eventually;

const DOWN_FOR: Duration = Duration::from_millis(1500);

fn start_at(addr: SocketAddr, state: &Path) -> VirtualServer {
    let config = one_triad()
        .state_file(Some(state.to_path_buf()))
        .listen(addr);
    // The port was ours a moment ago; allow for a slow release.
    let end = Instant::now() + Duration::from_secs(5);
    loop {
        match VirtualServer::start(config.clone()) {
            Ok(s) => return s,
            Err(e) if Instant::now() < end => {
                let _ = e;
                thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("restart on {addr}: {e}"),
        }
    }
}

#[test]
fn library_job_survives_a_server_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("state.json");
    let server = start_at("127.0.0.1:0".parse().expect("addr"), &state);
    let addr = server.local_addr();
    let options = JobOptions::new()
        .hostname("127.0.0.1")
        .port(addr.port())
        .owner("restart@example.org")
        .keepalive(Some(Duration::from_secs_f64(1.0)))
        .timeout(Some(Duration::from_secs(1)))
        .reconnect_delay(Duration::from_millis(100));
    let mut job = Job::create(JobRequest::AnyBoard, &options).expect("create");
    job.wait_until_ready(Some(Duration::from_secs(10)))
        .expect("ready");
    let id = job.id();

    server.shutdown();
    thread::sleep(DOWN_FOR);
    let server = start_at(addr, &state);
    // Three keepalive intervals on the new server.
    thread::sleep(Duration::from_secs(3));
    let alive = is_live(addr, id);
    let state_now = job.state();
    let ok_alive = alive && matches!(state_now, Ok(JobState::Ready));
    drop(job);
    let s = state_of(addr, id);
    let ok = ok_alive && s.state == JobState::Destroyed && s.reason.is_none();
    record(
        "restart",
        json!({"case": "library Job across a server restart (down 1.5 s, keepalive 1 s)",
               "outcome": if ok { "pass" } else { "fail" },
               "detail": {"alive 3 s after restart": alive, "job.state()": format!("{state_now:?}")}}),
    );
    assert!(ok, "alive {alive}, state {state_now:?}, after drop {s:?}");
    server.shutdown();
}

#[test]
fn spalloc_alloc_survives_a_server_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let state = dir.path().join("state.json");
    let server = start_at("127.0.0.1:0".parse().expect("addr"), &state);
    let addr = server.local_addr();
    let sb = Sandbox::new();
    sb.use_server(addr);
    let marker = sb.cwd().join("started");
    let running = sb.spawn(&[
        "alloc",
        "--keepalive",
        "1",
        "--timeout",
        "1",
        "--reconnect-delay",
        "0.1",
        "-c",
        "touch started; sleep 6",
    ]);
    assert!(
        eventually(Duration::from_secs(20), || marker.exists()),
        "{}",
        running.stderr()
    );
    server.shutdown();
    thread::sleep(DOWN_FOR);
    let server = start_at(addr, &state);
    thread::sleep(Duration::from_secs(3));
    let alive = is_live(addr, 1);
    let out = running.finish(Duration::from_secs(20));
    let s = state_of(addr, 1);
    let ok = alive && out.code == Some(0) && s.state == JobState::Destroyed && s.reason.is_none();
    record(
        "restart",
        json!({"case": "spalloc alloc -c across a server restart (down 1.5 s, keepalive 1 s)",
               "outcome": if ok { "pass" } else { "fail" },
               "detail": {"alive 3 s after restart": alive, "exit": out.code}}),
    );
    assert!(ok, "alive {alive}, {out:?}, after exit {s:?}");
    server.shutdown();
}
