//! Change notifications: what triggers them, coalescing, filtering and order.

use std::time::Duration;

use serde_json::{Value, json};
use spalloc::server::{Machine, ServerConfig, VirtualServer};

use super::{Client, Reply, TestResult, start};

const QUIET: Duration = Duration::from_millis(200);

/// Collects notifications until none arrives for `QUIET`.
fn drain(c: &mut Client) -> TestResult<Vec<Value>> {
    let mut out = Vec::new();
    while let Some(n) = c.notification(QUIET)? {
        out.push(n);
    }
    Ok(out)
}

#[test]
fn watch_all_jobs_and_machines() -> TestResult {
    let server = start(vec![Machine::new("m", 2, 2)])?;
    let mut w = Client::connect(server.local_addr())?;
    let mut c = Client::connect(server.local_addr())?;
    assert_eq!(w.call("notify_job", json!([]), json!({}))?, Value::Null);
    assert_eq!(w.call("notify_machine", json!([]), json!({}))?, Value::Null);

    // Creating and allocating (with its instant power-on) is one tick: one
    // message per kind.
    let a = c.create(json!([1, 1]), json!({}))?;
    assert_eq!(
        drain(&mut w)?,
        vec![
            json!({"jobs_changed": [a]}),
            json!({"machines_changed": ["m"]})
        ]
    );
    // A job cancelled at once is still reported, without a machine change.
    let x = c.create(json!([9, 9, 9]), json!({}))?;
    assert_eq!(drain(&mut w)?, vec![json!({"jobs_changed": [x]})]);
    // Destroying one job and allocating the next are coalesced, sorted.
    let b = c.create(json!([2, 2]), json!({}))?;
    assert_eq!(drain(&mut w)?, vec![json!({"jobs_changed": [b]})]);
    c.call("destroy_job", json!([a]), json!({}))?;
    assert_eq!(
        drain(&mut w)?,
        vec![
            json!({"jobs_changed": [a, b]}),
            json!({"machines_changed": ["m"]})
        ]
    );
    // Power changes notify jobs only.
    c.call("power_off_job_boards", json!([b]), json!({}))?;
    assert_eq!(drain(&mut w)?, vec![json!({"jobs_changed": [b]})]);
    // Queries notify nobody.
    c.call("list_jobs", json!([]), json!({}))?;
    c.call("get_job_state", json!([b]), json!({}))?;
    assert_eq!(drain(&mut w)?, Vec::<Value>::new());
    Ok(())
}

#[test]
fn specific_watches_and_unsubscribing() -> TestResult {
    let server = start(vec![
        Machine::new("m", 1, 1),
        Machine::new("n", 1, 1)
            .tags(["n"])
            .base_ip("10.0.0.0".parse()?),
    ])?;
    let mut w = Client::connect(server.local_addr())?;
    let mut c = Client::connect(server.local_addr())?;
    let a = c.create(json!([]), json!({}))?;
    let b = c.create(json!([]), json!({}))?;
    w.call("notify_job", json!([b]), json!({}))?;
    w.call("notify_job", json!([]), json!({"job_id": 777}))?;
    w.call("notify_machine", json!(["n"]), json!({}))?;
    c.call("power_off_job_boards", json!([a]), json!({}))?;
    c.call("power_off_job_boards", json!([b]), json!({}))?;
    assert_eq!(drain(&mut w)?, vec![json!({"jobs_changed": [b]})]);
    // Activity on machine m is not reported; on n it is.
    let on_m = c.create(json!([]), json!({}))?;
    assert_eq!(drain(&mut w)?, Vec::<Value>::new());
    let on_n = c.create(json!([]), json!({"machine": "n"}))?;
    assert_eq!(drain(&mut w)?, vec![json!({"machines_changed": ["n"]})]);

    // Unsubscribe one id; then everything with null.
    w.call("no_notify_job", json!([b]), json!({}))?;
    c.call("power_on_job_boards", json!([b]), json!({}))?;
    assert_eq!(drain(&mut w)?, Vec::<Value>::new());
    w.call("notify_job", json!([null]), json!({}))?;
    c.call("power_on_job_boards", json!([on_m]), json!({}))?;
    assert_eq!(drain(&mut w)?, vec![json!({"jobs_changed": [on_m]})]);
    // Removing one id while watching everything changes nothing.
    w.call("no_notify_job", json!([on_m]), json!({}))?;
    c.call("power_on_job_boards", json!([on_m]), json!({}))?;
    assert_eq!(drain(&mut w)?, vec![json!({"jobs_changed": [on_m]})]);
    w.call("no_notify_job", json!([]), json!({}))?;
    w.call(
        "no_notify_machine",
        json!([]),
        json!({"machine_name": null}),
    )?;
    c.call("destroy_job", json!([on_n]), json!({}))?;
    assert_eq!(drain(&mut w)?, Vec::<Value>::new());
    Ok(())
}

#[test]
fn reply_comes_before_the_notification_it_causes() -> TestResult {
    let server = start(vec![Machine::new("m", 1, 1)])?;
    let mut c = Client::connect(server.local_addr())?;
    c.call("notify_job", json!([]), json!({}))?;
    c.send_raw(b"{\"command\": \"create_job\", \"kwargs\": {\"owner\": \"o\"}}\n")?;
    let first = c.read_value()?;
    assert_eq!(first, json!({"return": 1}));
    let second = c.read_value()?;
    assert_eq!(second, json!({"jobs_changed": [1]}));
    Ok(())
}

#[test]
fn notifications_for_timed_events() -> TestResult {
    let server = VirtualServer::start(
        ServerConfig::for_tests()
            .machines(vec![Machine::new("m", 1, 1)])
            .power_delay(Duration::from_millis(100)),
    )?;
    let mut c = Client::connect(server.local_addr())?;
    c.call("notify_job", json!([]), json!({}))?;
    c.call("notify_machine", json!([]), json!({}))?;
    let a = c.create(json!([]), json!({"keepalive": 1.0}))?;
    // Creation and the start of power-on, then its completion, then expiry.
    assert_eq!(
        c.notification(Duration::from_secs(2))?,
        Some(json!({"jobs_changed": [a]}))
    );
    assert_eq!(
        c.notification(Duration::from_secs(2))?,
        Some(json!({"machines_changed": ["m"]}))
    );
    assert_eq!(
        c.notification(Duration::from_secs(2))?,
        Some(json!({"jobs_changed": [a]}))
    );
    assert_eq!(
        c.notification(Duration::from_secs(2))?,
        Some(json!({"jobs_changed": [a]}))
    );
    assert_eq!(
        c.notification(Duration::from_secs(2))?,
        Some(json!({"machines_changed": ["m"]}))
    );
    match c.request("get_job_state", json!([a]), json!({}))? {
        Reply::Return(s) => assert_eq!(s["reason"], "Job timed out."),
        Reply::Exception(e) => return super::fail(e),
    }
    Ok(())
}

#[test]
fn subscriptions_end_with_the_connection() -> TestResult {
    let server = start(vec![Machine::new("m", 1, 1)])?;
    let mut c = Client::connect(server.local_addr())?;
    {
        let mut w = Client::connect(server.local_addr())?;
        w.call("notify_job", json!([]), json!({}))?;
    }
    // A new connection starts with no subscriptions.
    let mut w2 = Client::connect(server.local_addr())?;
    c.create(json!([]), json!({}))?;
    assert_eq!(drain(&mut w2)?, Vec::<Value>::new());
    // And the server still works for everyone.
    assert_eq!(c.call("version", json!([]), json!({}))?, "1.1.0");
    Ok(())
}
