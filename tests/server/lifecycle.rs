//! Job states, power, keepalives, destroy reasons and memory of old jobs.
//! What takes time (power delays, expiry, the hold before reuse) is tested
//! with a clock the test moves, in `src/server/clocked.rs`.

use serde_json::{Value, json};
use spalloc::server::{Machine, ServerConfig, VirtualServer};

use super::{Client, TestResult, start};

#[test]
fn get_job_state_fields() -> TestResult {
    let server = start(vec![Machine::new("m", 1, 1)])?;
    let mut c = Client::connect(server.local_addr())?;
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs_f64();
    let id = c.create(json!([]), json!({"keepalive": 5}))?;
    let s = c.state(id)?;
    assert_eq!(s["state"], 3);
    assert_eq!(s["power"], true);
    assert_eq!(s["reason"], Value::Null);
    assert_eq!(s["keepalivehost"], "127.0.0.1");
    // The server keeps float(keepalive): an int comes back as a float.
    assert_eq!(s["keepalive"], json!(5.0));
    assert!(s["keepalive"].is_f64());
    let start_time = s["start_time"].as_f64().unwrap_or(0.0);
    assert!(s["start_time"].is_f64());
    assert!(
        (before - 1.0..before + 60.0).contains(&start_time),
        "{start_time}"
    );

    let id2 = c.create(json!([]), json!({"keepalive": 60.0}))?;
    assert!(c.state(id2)?["keepalive"].is_f64());
    let id3 = c.create(json!([]), json!({}))?;
    assert_eq!(c.state(id3)?["keepalive"], json!(60.0));
    let id4 = c.create(json!([]), json!({"keepalive": null}))?;
    assert_eq!(c.state(id4)?["keepalive"], Value::Null);
    // The fourth does not fit a 1x1 machine: queued, power null.
    assert_eq!(c.state(id4)?["state"], 1);
    assert_eq!(c.state(id4)?["power"], Value::Null);

    // Unknown ids are state 0 with everything null.
    assert_eq!(
        c.state(999)?,
        json!({"state": 0, "power": null, "keepalive": null, "reason": null,
               "start_time": null, "keepalivehost": null})
    );
    c.call("destroy_job", json!([id]), json!({"reason": "done"}))?;
    assert_eq!(
        c.state(id)?,
        json!({"state": 4, "power": null, "keepalive": null, "reason": "done",
               "start_time": null, "keepalivehost": null})
    );
    Ok(())
}

#[test]
fn list_jobs_echoes_the_request() -> TestResult {
    let server = start(vec![Machine::new("m", 1, 1)])?;
    let mut c = Client::connect(server.local_addr())?;
    let id = c.call(
        "create_job",
        json!([1, 1]),
        json!({"owner": "alice", "keepalive": 5, "tags": ["default"], "max_dead_boards": 0, "client": "x"}),
    )?;
    let queued = c.call(
        "create_job",
        json!([]),
        json!({"owner": "bob", "keepalive": 60.0, "min_ratio": 0.333}),
    )?;
    let jobs = c.call("list_jobs", json!([]), json!({}))?;
    let Some(list) = jobs.as_array() else {
        return super::fail(format!("list_jobs gave {jobs}"));
    };
    assert_eq!(list.len(), 2);
    let a = &list[0];
    assert_eq!(a["job_id"], id);
    assert_eq!(a["owner"], "alice");
    assert_eq!(a["keepalive"], json!(5.0));
    assert!(a["keepalive"].is_f64());
    assert_eq!(a["state"], 3);
    assert_eq!(a["power"], true);
    assert_eq!(a["args"], json!([1, 1]));
    assert_eq!(
        a["kwargs"],
        json!({"tags": ["default"], "max_dead_boards": 0})
    );
    assert_eq!(a["allocated_machine_name"], "m");
    assert_eq!(a["boards"], json!([[0, 0, 0], [0, 0, 1], [0, 0, 2]]));
    assert_eq!(a["keepalivehost"], "127.0.0.1");
    assert!(a["start_time"].is_f64());
    let b = &list[1];
    assert_eq!(b["job_id"], queued);
    assert_eq!(b["keepalive"], json!(60.0));
    assert!(b["keepalive"].is_f64());
    assert_eq!(b["state"], 1);
    assert_eq!(b["power"], Value::Null);
    assert_eq!(b["allocated_machine_name"], Value::Null);
    assert_eq!(b["boards"], Value::Null);
    assert_eq!(b["kwargs"], json!({"min_ratio": 0.333}));
    Ok(())
}

#[test]
fn destroy_reasons() -> TestResult {
    let server = start(vec![Machine::new("m", 1, 1)])?;
    let mut c = Client::connect(server.local_addr())?;
    let a = c.create(json!([1, 1]), json!({}))?;
    let q1 = c.create(json!([1, 1]), json!({}))?;
    let q2 = c.create(json!([1, 1]), json!({}))?;
    let q3 = c.create(json!([1, 1]), json!({}))?;
    c.call(
        "destroy_job",
        json!([q1]),
        json!({"reason": "changed my mind"}),
    )?;
    c.call("destroy_job", json!([q2]), json!({}))?;
    c.call("destroy_job", json!([q3, "positional"]), json!({}))?;
    c.call("destroy_job", json!([a]), json!({}))?;
    assert_eq!(c.state(q1)?["reason"], "Cancelled: changed my mind");
    assert_eq!(c.state(q2)?["reason"], "Cancelled: ");
    assert_eq!(c.state(q3)?["reason"], "Cancelled: positional");
    assert_eq!(c.state(a)?["reason"], Value::Null);
    assert_eq!(c.state(a)?["state"], 4);
    // Destroying again, or an unknown id, is silently ignored.
    assert_eq!(
        c.call("destroy_job", json!([a, "again"]), json!({}))?,
        Value::Null
    );
    assert_eq!(c.state(a)?["reason"], Value::Null);
    assert_eq!(
        c.call("destroy_job", json!([12345]), json!({}))?,
        Value::Null
    );
    assert_eq!(
        c.call("destroy_job", json!([]), json!({"job_id": -3}))?,
        Value::Null
    );
    Ok(())
}

#[test]
fn keepalive_refresh_records_the_caller() -> TestResult {
    let server = start(vec![Machine::new("m", 1, 1)])?;
    let mut c = Client::connect(server.local_addr())?;
    let id = c.create(json!([]), json!({}))?;
    // Every refreshing call works positionally and by keyword.
    for cmd in [
        "job_keepalive",
        "power_on_job_boards",
        "power_off_job_boards",
        "get_job_machine_info",
    ] {
        c.call(cmd, json!([id]), json!({}))?;
        c.call(cmd, json!([]), json!({"job_id": id}))?;
    }
    let s = c.state(id)?;
    assert_eq!(s["keepalivehost"], "127.0.0.1");
    assert_eq!(s["power"], false);
    Ok(())
}

#[test]
fn destroyed_jobs_are_forgotten_beyond_the_cap() -> TestResult {
    let server = VirtualServer::start(
        ServerConfig::instant()
            .machines(vec![Machine::new("m", 1, 1)])
            .max_retired_jobs(3),
    )?;
    let mut c = Client::connect(server.local_addr())?;
    let mut ids = Vec::new();
    for i in 0..5 {
        let id = c.create(json!([]), json!({}))?;
        c.call("destroy_job", json!([id, format!("r{i}")]), json!({}))?;
        ids.push(id);
    }
    let states: Vec<u64> = ids
        .iter()
        .map(|&id| c.state_num(id))
        .collect::<TestResult<_>>()?;
    assert_eq!(states, vec![0, 0, 4, 4, 4]);
    assert_eq!(c.state(ids[2])?["reason"], "r2");
    Ok(())
}

#[test]
fn head_of_line_blocking_per_machine() -> TestResult {
    let server = start(vec![Machine::new("m", 2, 1)])?;
    let mut c = Client::connect(server.local_addr())?;
    let a = c.create(json!([1, 1]), json!({}))?;
    // Needs the whole machine: waits, and blocks the small job behind it
    // even though a triad is free.
    let big = c.create(json!([2, 1]), json!({}))?;
    let small = c.create(json!([1, 1]), json!({}))?;
    assert_eq!(c.state_num(big)?, 1);
    assert_eq!(c.state_num(small)?, 1);
    // When the big job goes, the small one moves up and is allocated.
    c.call("destroy_job", json!([big]), json!({}))?;
    assert_eq!(c.state_num(small)?, 3);
    assert_eq!(c.state_num(a)?, 3);
    Ok(())
}
