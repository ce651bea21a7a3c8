//! Both front-ends on one engine: a job made through either protocol is
//! seen, kept alive, powered and destroyed through the other, as on the
//! Java server (whose v1 service and REST API share one database).

use std::time::Duration;

use serde_json::json;
use spalloc::{CreateJobOptions, JobRequest, JobState, ProtocolClient};

use super::{alice, boards, start, v2};

fn v1(server: &spalloc::server::VirtualServer) -> ProtocolClient {
    ProtocolClient::connect(
        "127.0.0.1",
        server.local_addr().port(),
        Some(Duration::from_secs(10)),
    )
    .expect("connect to v1")
}

#[test]
fn a_v2_job_through_v1() {
    let server = start(v2());
    let h = alice(&server);
    let id = h.create(&boards(3));
    let mut c = v1(&server);
    // v1 sees it, with its owner and boards.
    let jobs = c.list_jobs().expect("list_jobs");
    let job = jobs
        .iter()
        .find(|j| j.job_id == id)
        .expect("listed through v1");
    assert_eq!(job.owner.as_deref(), Some("alice"));
    assert_eq!(job.boards.len(), 3);
    let info = c
        .get_job_machine_info(id)
        .expect("machine info")
        .expect("allocated");
    assert_eq!(info.connections.len(), 3);
    // v1 keeps it alive, powers it off, and v2 sees both.
    c.job_keepalive(id).expect("keepalive");
    c.power_off_job_boards(id).expect("power off");
    assert_eq!(
        h.get(&h.srv(&format!("jobs/{id}/machine/power"))).json(),
        json!({"power": "OFF"})
    );
    // v1 destroys it; v2 sees why.
    c.destroy_job(id, Some("from v1")).expect("destroy");
    let d = h.job(id);
    assert_eq!(d["state"], "DESTROYED");
    assert_eq!(d["reason"], "from v1");
    assert!(c.list_jobs().expect("list").iter().all(|j| j.job_id != id));
}

#[test]
fn a_v1_job_through_v2() {
    let server = start(v2());
    let h = alice(&server);
    let mut c = v1(&server);
    let mut o = CreateJobOptions::new("alice");
    o.keepalive = None;
    let id = c.create_job(&JobRequest::Boards(3), &o).expect("create");
    let mine = h.job(id);
    assert_eq!(mine["state"], "READY");
    assert_eq!(mine["owner"], "alice");
    assert!(mine.get("original-request").is_none());
    let m = h.get(&h.srv(&format!("jobs/{id}/machine"))).json();
    assert_eq!(m["boards"].as_array().map(Vec::len), Some(3));
    // v2 powers it off; v1 sees it powering, then off.
    h.post_json(
        &h.srv(&format!("jobs/{id}/machine/power")),
        &json!({"power": "OFF"}),
    )
    .expect(202);
    let s = c.get_job_state(id).expect("state");
    assert_eq!((s.state, s.power), (JobState::Ready, Some(false)));
    // v2 destroys it; v1 sees the reason.
    h.delete(&h.srv(&format!("jobs/{id}?reason=from%20v2")))
        .expect(204);
    let s = c.get_job_state(id).expect("state");
    assert_eq!(s.state, JobState::Destroyed);
    assert_eq!(s.reason.as_deref(), Some("from v2"));

    // Someone else's v1 job is hidden from alice, shown to an admin.
    let mut o = CreateJobOptions::new("carol");
    o.keepalive = None;
    let carol = c.create_job(&JobRequest::AnyBoard, &o).expect("create");
    h.get(&h.srv(&format!("jobs/{carol}"))).expect(404);
    let root = crate::support::http::Http::logged_in(&server, "root", "root-pw");
    assert_eq!(root.job(carol)["owner"], "carol");
}
