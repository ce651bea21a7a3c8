//! Job states, power, keepalives, destroy reasons and memory of old jobs.

use std::thread::sleep;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use spalloc::server::{Machine, ServerConfig, VirtualServer};

use super::{Client, TestResult, start, wait_for};

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
fn keepalive_expiry_of_allocated_and_queued_jobs() -> TestResult {
    let server = start(vec![Machine::new("m", 1, 1)])?;
    let mut c = Client::connect(server.local_addr())?;
    let started = Instant::now();
    // The queued job runs out first, so it is still queued when it does.
    let a = c.create(json!([1, 1]), json!({"keepalive": 0.5}))?;
    let q = c.create(json!([1, 1]), json!({"keepalive": 0.2}))?;
    let kept = c.create(json!([1, 1]), json!({"keepalive": 1.0}))?;
    let forever = c.create(json!([1, 1]), json!({"keepalive": null}))?;
    // Keep one queued job alive from a second connection while the others
    // run out; list_jobs and where_is must not count as keepalives.
    let mut other = Client::connect(server.local_addr())?;
    let until = Instant::now() + Duration::from_millis(1200);
    while Instant::now() < until {
        other.call("job_keepalive", json!([kept]), json!({}))?;
        c.call("list_jobs", json!([]), json!({}))?;
        c.call(
            "where_is",
            json!([]),
            json!({"job_id": a, "chip_x": 0, "chip_y": 0}),
        )?;
        sleep(Duration::from_millis(50));
    }
    assert!(started.elapsed() >= Duration::from_millis(1200));
    let sa = c.state(a)?;
    assert_eq!(sa["state"], 4);
    assert_eq!(sa["reason"], "Job timed out.");
    let sq = c.state(q)?;
    assert_eq!(sq["reason"], "Cancelled: Job timed out.");
    // The kept job got the freed machine when the first one expired.
    let sk = c.state(kept)?;
    assert_eq!(sk["state"], 3);
    assert_eq!(c.state_num(forever)?, 1);
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
fn power_transitions_take_the_power_delay() -> TestResult {
    let delay = Duration::from_millis(600);
    let server = VirtualServer::start(
        ServerConfig::for_tests()
            .machines(vec![Machine::new("m", 1, 1)])
            .power_delay(delay),
    )?;
    let mut c = Client::connect(server.local_addr())?;
    let t0 = Instant::now();
    let id = c.create(json!([1, 1]), json!({}))?;
    let s = c.state(id)?;
    assert_eq!(s["state"], 2);
    assert_eq!(s["power"], true);
    // Machine info is there while powering on.
    assert_eq!(c.info(id)?["machine_name"], "m");
    wait_for(Duration::from_secs(3), || {
        Ok((c.state_num(id)? == 3).then_some(()))
    })?;
    assert!(t0.elapsed() >= delay);

    // Two overlapping power requests: ready only when both are done.
    c.call("power_off_job_boards", json!([id]), json!({}))?;
    sleep(Duration::from_millis(300));
    let t1 = Instant::now();
    c.call("power_on_job_boards", json!([id]), json!({}))?;
    let s = c.state(id)?;
    assert_eq!(
        (s["state"].clone(), s["power"].clone()),
        (json!(2), json!(true))
    );
    // By now the first request has finished but not the second (unless
    // the machine is so loaded that the second's delay is over too).
    sleep(Duration::from_millis(400));
    let state = c.state_num(id)?;
    assert!(
        state == 2 || t1.elapsed() >= delay,
        "ready {:?} after the second request, before its delay",
        t1.elapsed()
    );
    wait_for(Duration::from_secs(3), || {
        Ok((c.state_num(id)? == 3).then_some(()))
    })?;
    assert!(t1.elapsed() >= delay);
    assert_eq!(c.state(id)?["power"], true);

    // Power commands on queued or unknown jobs do nothing.
    let q = c.create(json!([1, 1]), json!({}))?;
    c.call("power_on_job_boards", json!([q]), json!({}))?;
    assert_eq!(c.state(q)?["power"], Value::Null);
    c.call("power_on_job_boards", json!([4242]), json!({}))?;

    // Destroying powers off before the boards are released: the queued job
    // gets them only after the delay.
    let t2 = Instant::now();
    c.call("destroy_job", json!([id]), json!({}))?;
    assert_eq!(c.state_num(q)?, 1);
    wait_for(Duration::from_secs(3), || {
        Ok((c.state_num(q)? >= 2).then_some(()))
    })?;
    assert!(t2.elapsed() >= delay);
    Ok(())
}

#[test]
fn seconds_before_free_delays_reuse() -> TestResult {
    let hold = Duration::from_millis(600);
    let server = VirtualServer::start(
        ServerConfig::for_tests()
            .machines(vec![Machine::new("m", 1, 1)])
            .seconds_before_free(hold),
    )?;
    let mut c = Client::connect(server.local_addr())?;
    let a = c.create(json!([1, 1]), json!({}))?;
    let b = c.create(json!([1, 1]), json!({}))?;
    let t = Instant::now();
    c.call("destroy_job", json!([a]), json!({}))?;
    // The boards are not reported as belonging to anyone meanwhile.
    let w = c.call(
        "where_is",
        json!([]),
        json!({"machine": "m", "x": 0, "y": 0, "z": 0}),
    )?;
    assert_eq!(w["job_id"], Value::Null);
    // Still queued, unless the machine is so loaded that the hold is over.
    for _ in 0..2 {
        let state = c.state_num(b)?;
        assert!(
            state == 1 || t.elapsed() >= hold,
            "{state} after {:?}",
            t.elapsed()
        );
        sleep(hold / 3);
    }
    wait_for(Duration::from_secs(3), || {
        Ok((c.state_num(b)? == 3).then_some(()))
    })?;
    assert!(t.elapsed() >= hold);
    Ok(())
}

#[test]
fn destroyed_jobs_are_forgotten_beyond_the_cap() -> TestResult {
    let server = VirtualServer::start(
        ServerConfig::for_tests()
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
