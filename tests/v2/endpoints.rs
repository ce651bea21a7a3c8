//! The service root, machines and board lookups, and the HTTP rules every
//! endpoint shares: trailing slashes, content types, 404/405/406/415.

use serde_json::{Value, json};
use spalloc::server::{Link, Machine, ServerConfig};

use super::{alice, boards, start, start_with, v2};
use crate::support::http::Http;

#[test]
fn machines_are_listed_with_their_dead_hardware() {
    let server = start_with(
        ServerConfig::instant().machines(vec![
            Machine::new("m", 2, 2)
                .dead_boards([(1, 0, 2)])
                .dead_links([(0, 0, 0, Link::North)]),
            Machine::new("small", 1, 1)
                .tags(["small", "x"])
                .base_ip("10.2.0.0".parse().expect("ip")),
        ]),
        v2(),
    );
    let h = alice(&server);
    let list = h.get(&h.srv("machines"));
    list.expect(200);
    assert_eq!(list.header("content-type"), Some("application/json"));
    let list = list.json();
    let m = &list["machines"][0];
    assert_eq!(m["name"], "m");
    assert_eq!(m["tags"], json!(["default"]));
    assert_eq!(
        m["uri"],
        format!("http://{}/spalloc/srv/spalloc/machines/m", h.addr)
    );
    assert_eq!(
        (m["width"].clone(), m["height"].clone()),
        (json!(2), json!(2))
    );
    assert_eq!(
        m["dead-boards"],
        json!([{"x": 1, "y": 0, "z": 2, "cabinet": 0, "frame": 0, "board": 6, "address": "192.168.0.49"}])
    );
    // The link north from (0,0,0) is (0,0,2)'s link south, listed once
    // with both ends: the Java server's names for them are N and S.
    let link = &m["dead-links"];
    assert_eq!(link.as_array().map(Vec::len), Some(1));
    assert_eq!(
        (link[0][0]["board"].clone(), link[0][0]["direction"].clone()),
        (
            json!({"x": 0, "y": 0, "z": 0, "cabinet": 0, "frame": 0, "board": 0, "address": "192.168.0.1"}),
            json!("N")
        )
    );
    assert_eq!(
        (
            link[0][1]["board"]["z"].clone(),
            link[0][1]["direction"].clone()
        ),
        (json!(2), json!("S"))
    );
    assert_eq!(list["machines"][1]["tags"], json!(["small", "x"]));
    assert_eq!(list["machines"][1]["dead-boards"], json!([]));

    let one = h.get(&h.srv("machines/m")).json();
    assert_eq!(one["down-boards"], m["dead-boards"]);
    assert_eq!(one["down-links"], m["dead-links"]);
    let base = format!("http://{}/spalloc/srv/spalloc/machines/m", h.addr);
    assert_eq!(
        one["lookup-by-physical-board"],
        format!("{base}/physical-board")
    );
    assert_eq!(
        one["lookup-by-logical-board"],
        format!("{base}/logical-board")
    );
    assert_eq!(one["lookup-by-chip"], format!("{base}/chip"));
    assert_eq!(one["lookup-by-address"], format!("{base}/board-ip"));
    let r = h.get(&h.srv("machines/nope"));
    r.expect(404);
    assert_eq!(r.text(), "no such machine");
}

fn where_is(h: &Http, query: &str) -> Value {
    let r = h.get(&h.srv(&format!("machines/m/{query}")));
    r.expect(200);
    r.json()
}

#[test]
fn boards_are_found_four_ways() {
    let server = start(v2());
    let h = alice(&server);
    // Board (1,1,2): cabinet 0, frame 0, board 7; its Ethernet chip is
    // (16,20).
    let expected = json!({
        "chip": [16, 20], "logical-board-coordinates": [1, 1, 2], "machine": "m",
        "machine-ref": format!("http://{}/spalloc/srv/spalloc/machines/m", h.addr),
        "board-chip": [16, 20], "physical-board-coordinates": [0, 0, 7]
    });
    assert_eq!(where_is(&h, "logical-board?x=1&y=1&z=2"), expected);
    assert_eq!(
        where_is(&h, "physical-board?cabinet=0&frame=0&board=7"),
        expected
    );
    assert_eq!(where_is(&h, "board-ip?address=192.168.0.57"), expected);
    // The chip form: the chip asked about, and its board's Ethernet chip.
    let chip = where_is(&h, "chip?x=17&y=22");
    assert_eq!(chip["chip"], json!([17, 22]));
    assert_eq!(chip["board-chip"], json!([16, 20]));
    assert_eq!(chip["logical-board-coordinates"], json!([1, 1, 2]));
    // Missing parameters are 0.
    assert_eq!(
        where_is(&h, "logical-board")["logical-board-coordinates"],
        json!([0, 0, 0])
    );

    // A held board names its job, and the chip relative to the job's root.
    let id = h.create(&json!({"dimensions": {"width": 1, "height": 1},
        "board": {"x": 1, "y": 1, "z": 0}, "tags": ["default"], "keepalive-interval": "PT60S"}));
    let held = where_is(&h, "chip?x=17&y=22");
    assert_eq!(held["job-id"], id);
    assert_eq!(
        held["job-ref"],
        format!("http://{}/spalloc/srv/spalloc/jobs/{id}", h.addr)
    );
    assert_eq!(held["job-chip"], json!([5, 10]));

    for q in [
        "logical-board?x=2&y=0&z=0",
        "physical-board?cabinet=3&frame=0&board=0",
        "board-ip?address=10.9.9.9",
        "board-ip",
        "chip?x=24&y=0",
        "chip?x=-1&y=0",
    ] {
        let r = h.get(&h.srv(&format!("machines/m/{q}")));
        r.expect(404);
        assert_eq!(r.text(), "failed to locate board", "{q}");
    }
    h.get(&h.srv("machines/nope/chip?x=0&y=0")).expect(404);
    let r = h.get(&h.srv("machines/m/chip?x=one"));
    r.expect(400);
    assert_eq!(r.text(), "x must be an integer, not \"one\"");
    h.get(&h.srv("machines/m/elsewhere")).expect(404);
}

#[test]
fn trailing_slashes_and_url_rules() {
    let server = start(v2());
    let h = alice(&server);
    let id = h.create(&boards(1));
    for path in [
        "".to_owned(),
        "machines/".into(),
        "machines/m/".into(),
        "machines/m/chip/?x=1&y=1".into(),
        "jobs/".into(),
        format!("jobs/{id}/"),
        format!("jobs/{id}/machine/"),
        format!("jobs/{id}/machine/power/"),
        format!("jobs/{id}/chip/"),
    ] {
        h.get(&h.srv(&path)).expect(200);
    }
    h.get("/spalloc/srv/spalloc").expect(200);
    // The root without the slash, and POST to the collection with one.
    let r = h.post_json(&h.srv("jobs/"), &boards(1));
    r.expect(201);
    assert!(
        r.header("location")
            .is_some_and(|l| !l.contains("jobs//") && l.contains("/jobs/"))
    );
    // A double slash is refused, as Spring's firewall does (SpiNNMan's
    // get_job builds one).
    h.get(&format!("/spalloc/srv/spalloc/jobs//{id}/"))
        .expect(400);
    // Non-numeric and non-positive ids.
    h.get(&h.srv("jobs/abc")).expect(404);
    let r = h.get(&h.srv("jobs/0"));
    r.expect(400);
    assert_eq!(r.text(), "job ID must be positive");
    h.get(&h.srv("jobs/99")).expect(404);
    // Outside the application, and unknown paths.
    h.get("/elsewhere").expect(404);
    h.get("/spalloc/srv/other/").expect(404);
    h.get("/spalloc/srv/spalloc/nothing").expect(404);
    h.get("/spalloc/srv/spalloc/emergencyStop?commandCode=x")
        .expect(404);
    // Escapes in machine names are decoded; an encoded slash is refused.
    h.get(&h.srv("machines/%6D")).expect(200);
    h.get(&h.srv("machines/m%2Fx")).expect(400);
    h.get(&h.srv("machines/%zz")).expect(400);
}

#[test]
fn methods_and_content_types() {
    let server = start(v2());
    let h = alice(&server);
    let id = h.create(&boards(1));
    let job = h.srv(&format!("jobs/{id}"));
    let r = h.call("PUT", &h.srv("jobs"), &[], b"");
    r.expect(405);
    assert_eq!(r.header("allow"), Some("GET, POST"));
    h.call("POST", &h.srv("machines"), &[], b"").expect(405);
    h.call("PATCH", &job, &[], b"").expect(405);
    h.get(&format!("{job}/keepalive")).expect(405);
    h.call("DELETE", &format!("{job}/machine"), &[], b"")
        .expect(405);
    h.get(&format!("{job}/report-issue")).expect(405);

    // Bodies in the wrong type.
    let body = boards(1).to_string();
    h.call(
        "POST",
        &h.srv("jobs"),
        &[("Content-Type", "text/plain")],
        body.as_bytes(),
    )
    .expect(415);
    h.call(
        "PUT",
        &format!("{job}/keepalive"),
        &[("Content-Type", "application/json"), ("Accept", "*/*")],
        b"\"alive\"",
    )
    .expect(415);
    h.call(
        "POST",
        &format!("{job}/machine/power"),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"power=ON",
    )
    .expect(415);
    // Answers in a type the client will not take.
    h.call(
        "PUT",
        &format!("{job}/keepalive"),
        &[
            ("Content-Type", "text/plain"),
            ("Accept", "application/json"),
        ],
        b"alive",
    )
    .expect(406);
    h.call("GET", &job, &[("Accept", "text/html")], b"")
        .expect(406);
    // application/json with a charset is fine; so is Accept: */*.
    let r = h.call(
        "POST",
        &h.srv("jobs"),
        &[
            ("Content-Type", "application/json; charset=UTF-8"),
            ("Accept", "*/*"),
        ],
        body.as_bytes(),
    );
    r.expect(201);
    // HEAD is GET without the body.
    let r = h.call("HEAD", &job, &[], b"");
    r.expect(200);
    assert!(r.body.is_empty());
    assert!(r.header("content-length").is_some_and(|l| l != "0"));
    // Out-of-scope endpoints say so.
    h.get(&format!("{job}/memory?x=0&y=0&address=0&size=4"))
        .expect(501);
    h.call("DELETE", &format!("{job}/router"), &[], b"")
        .expect(501);
}
