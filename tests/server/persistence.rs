//! Saving the state and carrying on after a restart on the same port.

use std::time::Duration;

use serde_json::{Value, json};
use spalloc::server::{Machine, ServerConfig, VirtualServer};

use super::{Client, TestResult, wait_for};

fn config(path: &std::path::Path, machines: Vec<Machine>) -> ServerConfig {
    ServerConfig::instant()
        .machines(machines)
        .state_file(Some(path.to_owned()))
}

#[test]
fn jobs_survive_a_restart_on_the_same_port() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("state.json");
    let server = VirtualServer::start(config(&path, vec![Machine::new("m", 2, 2)]))?;
    let addr = server.local_addr();
    let mut c = Client::connect(addr)?;
    let a = c.create(json!([1, 1]), json!({"keepalive": 5}))?;
    let b = c.create(json!([]), json!({}))?;
    let gone = c.create(json!([]), json!({}))?;
    c.call("destroy_job", json!([gone, "finished"]), json!({}))?;
    let q = c.create(json!([2, 2]), json!({"keepalive": null}))?;
    c.call("power_off_job_boards", json!([b]), json!({}))?;
    assert_eq!(c.boards(b)?, json!([[0, 1, 0]]));
    let before = c.call("list_jobs", json!([]), json!({}))?;
    let info_a = c.info(a)?;
    // The client is still connected while the server stops, so the server
    // closes first and its side of the connection lingers (FIN_WAIT/
    // TIME_WAIT) on the port. Binding the same port again at once only works
    // with SO_REUSEADDR, which std's TcpListener sets on Unix.
    server.shutdown();
    assert!(path.exists());

    let server = VirtualServer::start(config(&path, vec![Machine::new("m", 2, 2)]).listen(addr))?;
    assert_eq!(server.local_addr(), addr);
    let mut c = Client::connect(addr)?;
    let after = c.call("list_jobs", json!([]), json!({}))?;
    assert_eq!(after, before);
    assert_eq!(c.info(a)?, info_a);
    assert_eq!(c.state(b)?["power"], false);
    assert_eq!(c.state_num(q)?, 1);
    assert_eq!(c.state(gone)?["reason"], "finished");
    // Ids carry on, and the allocator state is the one that was saved: with
    // the queued job out of the way, the next single board continues in b's
    // triad where CPython's set.pop() would (board 2, not the released 1).
    c.call("destroy_job", json!([q]), json!({}))?;
    let d = c.create(json!([]), json!({}))?;
    assert_eq!(d, q + 1);
    assert_eq!(c.boards(d)?, json!([[0, 1, 2]]));
    let e = c.create(json!([]), json!({}))?;
    assert_eq!(c.boards(e)?, json!([[0, 1, 1]]));
    drop(server);
    Ok(())
}

#[test]
fn state_is_saved_while_running() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("state.json");
    let server = VirtualServer::start(config(&path, vec![Machine::new("m", 1, 1)]))?;
    let mut c = Client::connect(server.local_addr())?;
    c.create(json!([]), json!({"owner": "persisted"}))?;
    wait_for(Duration::from_secs(3), || {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        Ok(text.contains("persisted").then_some(()))
    })?;
    Ok(())
}

#[test]
fn a_changed_machine_drops_its_jobs() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("state.json");
    let server = VirtualServer::start(config(&path, vec![Machine::new("m", 2, 2)]))?;
    let mut c = Client::connect(server.local_addr())?;
    let a = c.create(json!([1, 1]), json!({}))?;
    let q = c.create(json!([2, 2]), json!({}))?;
    server.shutdown();

    // Same name, different size: the allocation is void, the queued job is
    // queued again (and now fits).
    let server = VirtualServer::start(config(&path, vec![Machine::new("m", 3, 3)]))?;
    let mut c = Client::connect(server.local_addr())?;
    let s = c.state(a)?;
    assert_eq!(s["state"], 4);
    assert_eq!(s["reason"], "Machine removed.");
    assert_eq!(c.state_num(q)?, 3);
    Ok(())
}

#[test]
fn a_damaged_state_file_is_an_error() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("state.json");
    std::fs::write(&path, "{not json")?;
    let e = VirtualServer::start(config(&path, vec![Machine::new("m", 1, 1)])).err();
    let Some(e) = e else {
        return super::fail("a damaged state file was accepted");
    };
    assert!(
        matches!(e, spalloc::server::ServerError::StateFile(_)),
        "{e:?}"
    );
    assert!(e.to_string().contains("state.json"), "{e}");
    // A missing file just means a fresh start.
    std::fs::remove_file(&path)?;
    let server = VirtualServer::start(config(&path, vec![Machine::new("m", 1, 1)]))?;
    let mut c = Client::connect(server.local_addr())?;
    assert_eq!(
        c.call("list_jobs", json!([]), json!({}))?,
        Value::Array(vec![])
    );
    Ok(())
}
