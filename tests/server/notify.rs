//! Change notifications on real connections: order against replies, and
//! subscriptions ending with their connection. What triggers them,
//! coalescing, filtering and timed events are tested with a clock the test
//! moves, in `src/server/clocked.rs`.

use serde_json::json;
use spalloc::server::Machine;

use super::{Client, READ_TIMEOUT, TestResult, start};

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
fn subscriptions_end_with_the_connection() -> TestResult {
    let server = start(vec![Machine::new("m", 1, 1)])?;
    let mut c = Client::connect(server.local_addr())?;
    {
        let mut w = Client::connect(server.local_addr())?;
        w.call("notify_job", json!([]), json!({}))?;
    }
    // A new connection starts with no subscriptions: watching machines
    // only, the first news of a new job it hears is the machine's.
    let mut w2 = Client::connect(server.local_addr())?;
    w2.call("notify_machine", json!([]), json!({}))?;
    c.create(json!([]), json!({}))?;
    assert_eq!(
        w2.notification(READ_TIMEOUT)?,
        Some(json!({"machines_changed": ["m"]}))
    );
    // And the server still works for everyone.
    assert_eq!(c.call("version", json!([]), json!({}))?, "1.1.0");
    Ok(())
}
