//! Jobs through the v2 service: creating them by every form and every
//! refusal, describing them in each state, keepalive, power, machine,
//! chip, report-issue, deleting, expiry, paging and the history.

use std::time::Duration;

use serde_json::{Value, json};
use spalloc::server::{Machine, ServerConfig, V2User};

use super::{alice, boards, start, start_with, v2};
use crate::support::http::Http;

fn job_url(h: &Http, id: u64) -> String {
    h.srv(&format!("jobs/{id}"))
}

#[test]
fn create_answers_201_with_location() {
    let server = start(v2());
    let h = alice(&server);
    let r = h.post_json(&h.srv("jobs"), &boards(3));
    r.expect(201);
    let body = r.json();
    let id = body["job-id"].as_u64().expect("job-id");
    let url = format!("http://{}/spalloc/srv/spalloc/jobs/{id}", h.addr);
    assert_eq!(r.header("location"), Some(url.as_str()));
    assert_eq!(body["job-ref"], url);
}

#[test]
fn every_refusal_makes_no_job() {
    let server = start(v2());
    let h = alice(&server);
    let base = json!({"tags": ["default"], "keepalive-interval": "PT60S"});
    let with = |extra: Value| {
        let mut b = base.clone();
        if let (Some(b), Value::Object(e)) = (b.as_object_mut(), extra) {
            for (k, v) in e {
                if v.is_null() {
                    b.remove(&k);
                } else {
                    b.insert(k, v);
                }
            }
        }
        b
    };
    let cases: Vec<(Value, &str)> = vec![
        (
            with(json!({"keepalive-interval": null})),
            "keepalive-interval is required",
        ),
        (
            with(json!({"keepalive-interval": "PT0.5S"})),
            "keepalive-interval must be 1 to 300 seconds",
        ),
        (
            with(json!({"keepalive-interval": "PT301S"})),
            "keepalive-interval must be 1 to 300 seconds",
        ),
        (
            with(json!({"keepalive-interval": "sixty"})),
            "keepalive-interval \"sixty\" is not an ISO-8601 duration such as \"PT60S\"",
        ),
        (
            with(json!({"num-boards": 0})),
            "number of boards must be at least 1 if given",
        ),
        (
            with(json!({"machine-name": "m"})),
            "either machine-name or tags must be supplied",
        ),
        (
            with(json!({"tags": null})),
            "either machine-name or tags must be supplied",
        ),
        (
            with(json!({"tags": null, "machine-name": " "})),
            "machine-name, if given, must be non-blank",
        ),
        (with(json!({"tags": [""]})), "tags must not be blank"),
        (
            with(json!({"num-boards": 2, "dimensions": {"width": 1, "height": 1}})),
            "either specify num-boards or dimensions and/or board",
        ),
        (
            with(json!({"board": {"x": 1, "y": 1}})),
            "at least one way of identifying a board must be given",
        ),
        (
            with(json!({"board": {"x": 0, "y": 0, "z": 3}})),
            "Z coordinate (3) must be 0, 1, or 2",
        ),
        (
            with(json!({"board": {"address": "not-an-ip"}})),
            "'not-an-ip' is a bad IPv4 address",
        ),
        (
            with(json!({"dimensions": {"width": 0, "height": 1}})),
            "triad width (0) must be at least 1",
        ),
        (
            with(json!({"max-dead-boards": -1})),
            "max-dead-boards may not be negative",
        ),
        (
            with(json!({"group": "g", "nmpi-collab": "c"})),
            "At most one of group, nmpiCollabId or nmpiJobId can be specified",
        ),
        // Requests no machine could ever meet.
        (
            with(json!({"tags": ["nothing"]})),
            "no machine available which matches allocation request",
        ),
        (
            with(json!({"tags": []})),
            "no machine available which matches allocation request",
        ),
        (
            with(json!({"tags": null, "machine-name": "nope"})),
            "no machine available which matches allocation request",
        ),
        (
            with(json!({"dimensions": {"width": 3, "height": 1}})),
            "no machine available which matches allocation request",
        ),
        (
            with(json!({"num-boards": 13})),
            "no machine available which matches allocation request",
        ),
        (
            with(json!({"board": {"address": "10.99.0.1"}})),
            "no machine available which matches allocation request",
        ),
        (
            with(
                json!({"dimensions": {"width": 1, "height": 1}, "board": {"x": 0, "y": 0, "z": 1}}),
            ),
            "the board at the root of a rectangle must have z = 0",
        ),
    ];
    for (body, message) in cases {
        let r = h.post_json(&h.srv("jobs"), &body);
        assert_eq!((r.status, r.text().as_str()), (400, message), "{body}");
        assert_eq!(r.header("content-type"), Some("text/plain;charset=UTF-8"));
    }
    // Bodies that are not a create request at all.
    for (body, fragment) in [
        (&b"{\"min-ratio\": 0.5}"[..], "unknown field `min-ratio`"),
        (b"{\"num-boards\": \"three\"}", "invalid type"),
        (b"[1, 2]", "bad JSON"),
        (b"{", "bad JSON"),
        (b"", "request must be supplied"),
    ] {
        let r = h.call(
            "POST",
            &h.srv("jobs"),
            &[("Content-Type", "application/json")],
            body,
        );
        r.expect(400);
        assert!(r.text().contains(fragment), "{}", r.text());
    }
    let all = h.get(&h.srv("jobs?deleted=true")).json();
    assert_eq!(all["jobs"], json!([]), "a refused request made a job");
}

/// Accounting groups, as the Java server checks them: a user in several
/// must name one of theirs; a user in one need not.
#[test]
fn a_job_is_charged_to_one_of_the_owners_groups() {
    let mut users = super::users();
    users.push(V2User::new("carol", "carol-pw").group("g1").group("g2"));
    users.push(V2User::new("dave", "dave-pw").group("solo"));
    let server = start(v2().users(users));
    let carol = Http::logged_in(&server, "carol", "carol-pw");
    let with_group = |g: &str| {
        let mut b = boards(1);
        b["group"] = json!(g);
        b
    };
    let refused = [
        (
            boards(1),
            "unexpected server problem: NoSuchGroup: User is a member of more than one group, \
             so the group must be selected in the request",
        ),
        (
            with_group("g3"),
            "unexpected server problem: NoSuchGroup: group g3 does not exist or carol is not a \
             member of it",
        ),
    ];
    for (body, message) in refused {
        let r = carol.post_json(&carol.srv("jobs"), &body);
        r.expect(500);
        assert_eq!(r.text(), message);
    }
    let listed = carol.get(&carol.srv("jobs?deleted=true")).json();
    assert_eq!(listed["jobs"], json!([]), "a refused job was made");
    let id = carol.create(&with_group("g2"));
    assert_eq!(carol.job(id)["original-request"]["group"], "g2");
    // One group is charged without being named.
    let dave = Http::logged_in(&server, "dave", "dave-pw");
    dave.create(&boards(1));
}

#[test]
fn shapes_by_every_form() {
    let server = start(v2());
    let h = alice(&server);
    let machine_of = |body: Value| {
        let id = h.create(&body);
        let r = h.get(&format!("{}/machine", job_url(&h, id)));
        r.expect(200);
        h.delete(&job_url(&h, id)).expect(204);
        r.json()
    };
    let ka = "PT60S";
    // Nothing, or one board: a single board, depth 1.
    let one = machine_of(json!({"tags": ["default"], "keepalive-interval": ka}));
    assert_eq!(
        (
            one["width"].clone(),
            one["height"].clone(),
            one["depth"].clone()
        ),
        (json!(1), json!(1), json!(1))
    );
    assert_eq!(one["connections"].as_array().map(Vec::len), Some(1));
    assert_eq!(one["connections"][0][0], json!([0, 0]));
    // n > 1: ⌈n/3⌉ triads, near square.
    let five = machine_of(boards(5));
    assert_eq!(
        (
            five["width"].clone(),
            five["height"].clone(),
            five["depth"].clone()
        ),
        (json!(2), json!(1), json!(3))
    );
    assert_eq!(five["boards"].as_array().map(Vec::len), Some(6));
    let seven = machine_of(boards(7));
    assert_eq!(
        (seven["width"].clone(), seven["height"].clone()),
        (json!(2), json!(2))
    );
    // Dimensions.
    let d = machine_of(
        json!({"dimensions": {"width": 2, "height": 1}, "machine-name": "m", "keepalive-interval": ka}),
    );
    assert_eq!(d["boards"].as_array().map(Vec::len), Some(6));
    assert_eq!(d["machine-name"], "m");
    // A specific board, three ways.
    for board in [
        json!({"x": 1, "y": 0, "z": 2}),
        json!({"cabinet": 0, "frame": 0, "board": 6}),
        json!({"address": "192.168.0.49"}),
    ] {
        let b = machine_of(json!({"board": board, "tags": ["default"], "keepalive-interval": ka}));
        assert_eq!(b["boards"], json!([[1, 0, 2]]), "{board}");
        assert_eq!(b["connections"], json!([[[0, 0], "192.168.0.49"]]));
    }
    // A rectangle rooted at a board.
    let r = machine_of(
        json!({"dimensions": {"width": 1, "height": 2}, "board": {"x": 1, "y": 0, "z": 0},
        "tags": ["default"], "keepalive-interval": ka}),
    );
    assert_eq!(
        r["boards"].as_array().and_then(|b| b.first()).cloned(),
        Some(json!([1, 0, 0]))
    );
    assert_eq!(
        (r["width"].clone(), r["height"].clone()),
        (json!(1), json!(2))
    );
    // Tags choose the machine.
    let s = machine_of(json!({"num-boards": 3, "tags": ["small"], "keepalive-interval": ka}));
    assert_eq!(s["machine-name"], "small");
    // 1 x 1 with two dead boards allowed is a single board.
    let x = machine_of(
        json!({"dimensions": {"width": 1, "height": 1}, "max-dead-boards": 2,
        "tags": ["default"], "keepalive-interval": ka}),
    );
    assert_eq!(x["depth"], 1);
}

#[test]
fn a_job_described_through_its_life() {
    // Four power changes moved on by this much stay well inside the
    // job's two-minute keepalive.
    const POWER: Duration = Duration::from_secs(20);
    let server = start_with(
        ServerConfig::instant()
            // Long enough that no poll can miss the POWER state however
            // loaded the machine; the test moves the clock on instead.
            .power_delay(POWER)
            .machines(vec![Machine::new("m", 1, 1)]),
        v2(),
    );
    let h = alice(&server);
    let blocker = h.create(&boards(3));
    let id = h.create(
        &json!({"num-boards": 1, "tags": ["default"], "keepalive-interval": "PT2M",
        "group": "my-group"}),
    );
    let url = job_url(&h, id);
    let absolute = format!("http://{}{url}", h.addr);

    // Queued behind the first: no keepalive host yet, no finish.
    let queued = h.job(id);
    assert_eq!(queued["state"], "QUEUED");
    assert_eq!(queued["owner"], "alice");
    assert!(queued.get("keepalive-host").is_none(), "{queued}");
    assert!(queued.get("finish-time").is_none() && queued.get("reason").is_none());
    assert!(queued.get("proxy-ref").is_none());
    for (k, tail) in [
        ("keepalive-ref", "/keepalive"),
        ("machine-ref", "/machine"),
        ("power-ref", "/machine/power"),
        ("chip-ref", "/chip"),
    ] {
        assert_eq!(queued[k], format!("{absolute}{tail}"));
    }
    let start = queued["start-time"]
        .as_str()
        .expect("start-time")
        .to_owned();
    assert_eq!(start.len(), "2025-03-01T10:00:05Z".len());
    assert_eq!(queued["keep-alive-time"], start);
    assert_eq!(
        queued["original-request"],
        json!({"owner": "alice", "group": "my-group", "nmpi-collab": null, "nmpi-job-id": null,
               "keepalive-interval": 120.0, "num-boards": 1, "dimensions": null, "board": null,
               "machine-name": null, "tags": ["default"], "max-dead-boards": 0})
    );
    // The duration is written as Jackson writes it.
    let raw = h.get(&url).text();
    assert!(
        raw.contains("\"keepalive-interval\":120.000000000"),
        "{raw}"
    );
    // No boards yet: 204 for machine, power and chip.
    h.get(&format!("{url}/machine")).expect(204);
    h.get(&format!("{url}/machine/power")).expect(204);
    h.get(&format!("{url}/chip?x=0&y=0")).expect(204);
    h.post_json(&format!("{url}/machine/power"), &json!({"power": "ON"}))
        .expect(204);
    // Those calls counted as keepalives.
    assert_eq!(h.job(id)["keepalive-host"], "127.0.0.1");

    // The first job goes; this one is powered, then ready.
    h.delete(&format!("{}?reason=done", job_url(&h, blocker)))
        .expect(204);
    // Its boards are powered off first, then this job's on.
    assert_eq!(h.job(id)["state"], "QUEUED");
    server.advance(POWER);
    wait_states(&h, id, "POWER");
    server.advance(POWER);
    wait_states(&h, id, "READY");
    let power = h.get(&format!("{url}/machine/power"));
    power.expect(200);
    assert_eq!(power.json(), json!({"power": "ON"}));

    // Off, then on again.
    let r = h.post_json(&format!("{url}/machine/power"), &json!({"power": "OFF"}));
    r.expect(202);
    assert!(r.body.is_empty());
    assert_eq!(h.job(id)["state"], "POWER");
    server.advance(POWER);
    wait_states(&h, id, "READY");
    assert_eq!(
        h.get(&format!("{url}/machine/power")).json(),
        json!({"power": "OFF"})
    );
    h.post_json(&format!("{url}/machine/power"), &json!({"power": "ON"}))
        .expect(202);
    assert_eq!(h.job(id)["state"], "POWER");
    server.advance(POWER);
    wait_states(&h, id, "READY");
    assert_eq!(
        h.get(&format!("{url}/machine/power")).json(),
        json!({"power": "ON"})
    );
    for bad in [json!({}), json!({"power": "on"}), json!({"power": 1})] {
        h.post_json(&format!("{url}/machine/power"), &bad)
            .expect(400);
    }

    // Keepalive: text in, "ok" out.
    let k = h.put_keepalive(&format!("{url}/keepalive"));
    k.expect(200);
    assert_eq!(k.text(), "ok");
    assert!(
        k.header("content-type")
            .is_some_and(|t| t.starts_with("text/plain"))
    );

    // Destroyed, with its reason and finish time; no keepalive fields.
    h.delete(&format!("{url}?reason=all%20done")).expect(204);
    let gone = h.job(id);
    assert_eq!(gone["state"], "DESTROYED");
    assert_eq!(gone["reason"], "all done");
    assert!(gone["finish-time"].is_string());
    assert!(gone.get("keepalive-host").is_none() && gone.get("keep-alive-time").is_none());
    // Deleting again, and a keepalive on it, are accepted and do nothing.
    h.delete(&url).expect(204);
    h.put_keepalive(&format!("{url}/keepalive")).expect(200);
    assert_eq!(h.job(id)["reason"], "all done");
    h.get(&format!("{url}/machine")).expect(204);
    // Deleted without a reason: "".
    let other = h.create(&boards(1));
    h.delete(&job_url(&h, other)).expect(204);
    assert_eq!(h.job(other)["reason"], "");
}

/// Polls a job's state (by describing it, which is no keepalive) until it
/// is `want`; returns the states seen.
fn wait_states(h: &Http, id: u64, want: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let ok = crate::support::eventually(Duration::from_secs(10), || {
        let s = h.job(id)["state"].as_str().unwrap_or_default().to_owned();
        if seen.last() != Some(&s) {
            seen.push(s.clone());
        }
        s == want
    });
    assert!(ok, "job {id} never {want}: {seen:?}");
    seen
}

#[test]
fn machine_and_chip_of_a_job() {
    let server = start(v2());
    let h = alice(&server);
    let id = h.create(
        &json!({"dimensions": {"width": 1, "height": 1}, "board": {"x": 1, "y": 1, "z": 0},
        "tags": ["default"], "keepalive-interval": "PT60S"}),
    );
    let url = job_url(&h, id);
    let absolute = format!("http://{}{url}", h.addr);
    let m = h.get(&format!("{url}/machine")).json();
    assert_eq!(
        m,
        json!({"width": 1, "height": 1, "depth": 3, "machine-name": "m",
               "connections": [[[0, 0], "192.168.0.89"], [[4, 8], "192.168.0.57"], [[8, 4], "192.168.0.25"]],
               "boards": [[1, 1, 0], [1, 1, 1], [1, 1, 2]],
               "power": format!("{absolute}/machine/power"),
               "machine-ref": format!("http://{}/spalloc/srv/spalloc/machines/m", h.addr)})
    );
    // A job-relative chip: its board, that board's Ethernet chip relative
    // to the job, and where it is.
    let c = h.get(&format!("{url}/chip?x=9&y=5"));
    c.expect(200);
    assert_eq!(
        c.json(),
        json!({"job-id": id, "job-ref": absolute, "job-chip": [9, 5], "chip": [9, 5],
               "logical-board-coordinates": [1, 1, 1], "machine": "m",
               "machine-ref": format!("http://{}/spalloc/srv/spalloc/machines/m", h.addr),
               "board-chip": [8, 4], "physical-board-coordinates": [0, 0, 3]})
    );
    h.get(&format!("{url}/chip?x=40&y=40")).expect(204);
    h.get(&format!("{url}/chip?x=-1&y=0")).expect(204);
    // report-issue: accepted for the job's boards, refused politely for others.
    let report = |boards: Value| {
        let r = h.post_json(
            &format!("{url}/report-issue"),
            &json!({"issue": "dead chip", "boards": boards}),
        );
        r.expect(200);
        r.json()["action"].as_str().unwrap_or_default().to_owned()
    };
    assert_eq!(
        report(json!([{"machine": "m", "chip": [9, 5]}])),
        "report noted"
    );
    assert_eq!(
        report(json!([{"machine": "m", "x": 1, "y": 1, "z": 2}])),
        "report noted"
    );
    assert_eq!(
        report(json!([{"machine": "m", "x": 0, "y": 0, "z": 0}])),
        format!("triad (0,0,0) not allocated to job {id}")
    );
    assert_eq!(
        report(json!([{"machine": "m", "cabinet": 0, "frame": 0, "board": 3}])),
        "report noted"
    );
    assert_eq!(
        report(json!([{"machine": "m", "address": "10.0.0.1"}])),
        "board at 10.0.0.1 not in machine"
    );
    assert_eq!(
        report(json!([{"machine": "m", "chip": [40, 40]}])),
        "chip at (40,40) not in job's allocation"
    );
    h.post_json(&format!("{url}/report-issue"), &json!({"issue": "x"}))
        .expect(400);
    h.post_json(
        &format!("{url}/report-issue"),
        &json!({"boards": [{"machine": "m"}]}),
    )
    .expect(400);
}

#[test]
fn keepalives_keep_jobs_and_expiry_ends_them() {
    let server = start(v2());
    let h = alice(&server);
    let kept =
        h.create(&json!({"num-boards": 1, "tags": ["default"], "keepalive-interval": "PT2S"}));
    let left =
        h.create(&json!({"num-boards": 1, "tags": ["default"], "keepalive-interval": "PT1S"}));
    // For well past both intervals of the server's time, keepalives for one
    // job, and only descriptions (which are no keepalive) of the other.
    for _ in 0..40 {
        h.put_keepalive(&format!("{}/keepalive", job_url(&h, kept)))
            .expect(200);
        h.job(left);
        server.advance(Duration::from_millis(100));
    }
    assert_eq!(h.job(left)["state"], "DESTROYED");
    assert_eq!(h.job(left)["reason"], "keepalive expired");
    assert_eq!(h.job(kept)["state"], "READY");
}

#[test]
fn job_lists_page_newest_first() {
    let server = start(v2());
    let h = alice(&server);
    let ids: Vec<u64> = (0..5).map(|_| h.create(&boards(1))).collect();
    let url = |id: u64| format!("http://{}/spalloc/srv/spalloc/jobs/{id}", h.addr);
    let page = h.get(&h.srv("jobs?limit=2"));
    page.expect(200);
    let links = page.header("link").map(str::to_owned);
    let page = page.json();
    assert_eq!(page["jobs"], json!([url(ids[4]), url(ids[3])]));
    assert!(page.get("prev").is_none());
    let next = page["next"].as_str().expect("next").to_owned();
    assert_eq!(
        next,
        format!(
            "http://{}/spalloc/srv/spalloc/jobs?limit=2&wait=false&start=2",
            h.addr
        )
    );
    assert_eq!(links, Some(format!("<{next}>; rel=\"next\"")));
    // Follow the links to the end, as the Python client does.
    let mut seen: Vec<Value> = page["jobs"].as_array().cloned().unwrap_or_default();
    let mut next = Some(next);
    let mut pages = 1;
    while let Some(n) = next {
        let path = n
            .split_once(&h.addr.to_string())
            .map(|(_, p)| p.to_owned())
            .unwrap_or_default();
        let p = h.get(&path).json();
        seen.extend(p["jobs"].as_array().cloned().unwrap_or_default());
        assert!(p["prev"].is_string());
        next = p["next"].as_str().map(str::to_owned);
        pages += 1;
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 5);
    // A full last page has a next that is empty.
    let p = h.get(&h.srv("jobs?limit=5")).json();
    let n = p["next"]
        .as_str()
        .and_then(|n| n.split_once(&h.addr.to_string()).map(|(_, p)| p.to_owned()));
    let empty = h.get(&n.expect("next of a full page")).json();
    assert_eq!(empty["jobs"], json!([]));
    assert_eq!(
        empty["prev"],
        format!(
            "http://{}/spalloc/srv/spalloc/jobs?limit=5&wait=false&start=0",
            h.addr
        )
    );
    // The bounds.
    for (q, message) in [
        ("limit=201", "limit must not be bigger than 200"),
        ("limit=0", "limit must be at least 1"),
        ("start=-1", "start must not be less than 0"),
        ("limit=x", "limit must be an integer, not \"x\""),
    ] {
        let r = h.get(&h.srv(&format!("jobs?{q}")));
        assert_eq!((r.status, r.text().as_str()), (400, message));
    }
    // History: destroyed jobs only with deleted=true.
    h.delete(&job_url(&h, ids[0])).expect(204);
    let live = h.get(&h.srv("jobs")).json();
    assert_eq!(live["jobs"].as_array().map(Vec::len), Some(4));
    let all = h.get(&h.srv("jobs?deleted=true")).json();
    assert_eq!(all["jobs"].as_array().map(Vec::len), Some(5));
    assert_eq!(all["jobs"][4], url(ids[0]));
}
