//! Logging in and staying logged in (PROTOCOL_V2.md §2): the form login
//! with its CSRF token and session cookie, bearer tokens, Basic, the CSRF
//! rules for state changes, 401 and 403 shapes, session expiry, the
//! optional lockout, roles, and who may see which job.

use std::time::Duration;

use serde_json::json;
use spalloc::server::Lockout;

use super::{alice, boards, start, v2};
use crate::support::http::Http;

#[test]
fn form_login_as_the_reference_clients_do_it() {
    let server = start(v2());
    let h = Http::new(&server);
    let (csrf, temp) = h.login_page();
    // Tomcat-style session ids (the Java client only accepts [A-Z0-9]+).
    assert_eq!(temp.len(), 32);
    assert!(
        temp.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    );
    assert!(!csrf.is_empty() && !csrf.contains('"'));

    let r = h.post_login(&temp, &csrf, "alice", "alice-pw");
    r.expect(302);
    assert_eq!(
        r.header("location"),
        Some(format!("http://{}/spalloc/system/", h.addr).as_str())
    );
    let session = r.session_cookie().expect("a new session cookie");
    assert_ne!(session, temp, "the session id changes at login");
    assert!(
        r.header("set-cookie")
            .is_some_and(|c| c.contains("; Path=/;") && c.contains("HttpOnly")),
        "{:?}",
        r.header("set-cookie")
    );

    // The root gives the CSRF token to use from now on.
    let mut h = h;
    h.cookie = Some(session.clone());
    let root = h.get(&h.srv(""));
    root.expect(200);
    let root = root.json();
    assert_eq!(root["csrf-header"], "X-CSRF-TOKEN");
    let token = root["csrf-token"].as_str().expect("csrf-token").to_owned();
    assert_ne!(token, csrf, "the login page's token is replaced at login");
    assert_eq!(
        root["version"],
        json!({"major-version": 7, "minor-version": 4, "revision": 1})
    );
    assert_eq!(
        root["jobs-ref"],
        format!("http://{}/spalloc/srv/spalloc/jobs", h.addr)
    );
    // The temporary session is gone.
    h.cookie = Some(temp);
    h.get(&h.srv("")).expect(401);

    // The system page after login.
    h.cookie = Some(session);
    let page = h.call("GET", "/spalloc/system/", &[("Accept", "text/html")], b"");
    page.expect(200);
    assert!(page.text().contains("Logged in as alice"));
}

#[test]
fn failed_logins_say_computer_says_no() {
    let server = start(v2());
    let h = Http::new(&server);
    for (user, password) in [("alice", "wrong"), ("nobody", "alice-pw"), ("alice", "")] {
        let (csrf, temp) = h.login_page();
        let r = h.post_login(&temp, &csrf, user, password);
        r.expect(401);
        assert_eq!(r.session_cookie(), None);
        let body = r.json();
        assert_eq!(body["message"], "computer says no");
        assert!(
            body["timestamp"]
                .as_str()
                .is_some_and(|t| t.ends_with('Z') && t.contains('T'))
        );
    }
    // Without the login page's token the form is refused before any check.
    let (_, temp) = h.login_page();
    h.post_login(&temp, "not-the-token", "alice", "alice-pw")
        .expect(403);
}

#[test]
fn unauthenticated_requests_get_the_challenges_or_the_login_page() {
    let server = start(v2());
    let h = Http::new(&server);
    let r = h.raw(
        "GET",
        &h.srv("machines"),
        &[("Accept", "application/json")],
        b"",
    );
    r.expect(401);
    assert_eq!(
        r.headers_named("www-authenticate"),
        vec![
            "Basic realm=\"SpallocService\"",
            "Bearer realm=\"SpallocService\", scope=\"openid, profile, roles, email, team, group\""
        ]
    );
    assert!(r.text().starts_with("log in required"));
    // The same with no Accept at all, or */*.
    h.raw("GET", &h.srv(""), &[], b"").expect(401);
    h.raw("GET", &h.srv(""), &[("Accept", "*/*")], b"")
        .expect(401);
    // A browser is sent to the login page.
    for accept in ["text/html,application/xhtml+xml,*/*;q=0.8", "text/plain"] {
        let r = h.raw("GET", &h.srv("jobs"), &[("Accept", accept)], b"");
        r.expect(302);
        assert_eq!(
            r.header("location"),
            Some(format!("http://{}/spalloc/system/login.html", h.addr).as_str())
        );
    }
    // The login page itself needs nothing.
    h.raw("GET", "/spalloc/system/login.html", &[], b"")
        .expect(200);
}

#[test]
fn state_changes_need_the_sessions_csrf_token() {
    let server = start(v2());
    let mut h = alice(&server);
    let create = |h: &Http| h.post_json(&h.srv("jobs"), &boards(1));
    let token = h.csrf.clone();

    // Missing.
    h.csrf = None;
    let r = create(&h);
    r.expect(403);
    // Stale: the login page's token, from before the login.
    let (old, _) = h.login_page();
    h.csrf = Some(old);
    create(&h).expect(403);
    // Another session's token.
    let bob = Http::logged_in(&server, "bob", "bob-pw");
    h.csrf = bob.csrf.clone();
    create(&h).expect(403);
    // No session at all, even with a token.
    let mut nobody = Http::new(&server);
    nobody.csrf = token.clone();
    create(&nobody).expect(403);
    // GET needs none.
    h.csrf = None;
    h.get(&h.srv("jobs")).expect(200);
    // The right one.
    h.csrf = token;
    let id = h.create(&boards(1));
    // The token also works as the form field on PUT, POST and DELETE.
    let mut no_header = h.clone();
    no_header.csrf = None;
    let form = format!("_csrf={}", h.csrf.clone().unwrap_or_default());
    no_header
        .call(
            "DELETE",
            &h.srv(&format!("jobs/{id}")),
            &[("Content-Type", "application/x-www-form-urlencoded")],
            form.as_bytes(),
        )
        .expect(204);
    assert_eq!(h.job(id)["state"], "DESTROYED");
    // Nothing was made by the refused requests.
    let jobs = h.get(&h.srv("jobs?deleted=true")).json();
    assert_eq!(jobs["jobs"].as_array().map(Vec::len), Some(1));
}

#[test]
fn bearer_tokens_need_no_csrf_and_can_start_a_session() {
    let server = start(v2());
    let mut h = Http::new(&server);
    h.bearer = Some("alice-token-0001".into());
    let root = h.get(&h.srv(""));
    root.expect(200);
    // State changes with the token need no CSRF header.
    let id = h.create(&boards(1));
    assert_eq!(h.job(id)["owner"], "alice");
    h.put_keepalive(&h.srv(&format!("jobs/{id}/keepalive")))
        .expect(200);

    // A wrong token is a 401, whatever else is sent.
    h.bearer = Some("alice-token-9999".into());
    let r = h.get(&h.srv(""));
    r.expect(401);
    assert!(
        r.header("www-authenticate")
            .is_some_and(|c| c.starts_with("Bearer"))
    );
    h.post_json(&h.srv("jobs"), &boards(1)).expect(401);

    // The Python client's way: the login page with the token gives an
    // authenticated session; GETs then need only the cookie.
    let mut p = Http::new(&server);
    let r = p.call(
        "GET",
        "/spalloc/system/login.html",
        &[("Authorization", "Bearer alice-token-0001")],
        b"",
    );
    r.expect(200);
    p.cookie = r.session_cookie();
    assert!(p.cookie.is_some());
    let root = p.get(&p.srv(""));
    root.expect(200);
    assert!(root.json()["csrf-token"].is_string());
    assert_eq!(p.job(id)["owner"], "alice");
    let bad = p.call(
        "GET",
        "/spalloc/system/login.html",
        &[("Authorization", "Bearer nope-nope-nope")],
        b"",
    );
    bad.expect(401);
}

#[test]
fn basic_credentials_log_in_and_make_a_session() {
    let server = start(v2());
    let h = Http::new(&server);
    // alice:alice-pw
    let basic = [("Authorization", "Basic YWxpY2U6YWxpY2UtcHc=")];
    let r = h.call("GET", &h.srv(""), &basic, b"");
    r.expect(200);
    let cookie = r.session_cookie().expect("a session");
    let token = r.json()["csrf-token"].as_str().map(str::to_owned);
    // Basic requests are not exempt from CSRF.
    let body = boards(1).to_string();
    h.call(
        "POST",
        &h.srv("jobs"),
        &[
            basic[0],
            ("Content-Type", "application/json"),
            ("Cookie", "JSESSIONID=none"),
        ],
        body.as_bytes(),
    )
    .expect(403);
    let mut s = h.clone();
    s.cookie = Some(cookie);
    s.csrf = token;
    s.create(&boards(1));
    // alice:wrong
    h.call(
        "GET",
        &h.srv(""),
        &[("Authorization", "Basic YWxpY2U6d3Jvbmc=")],
        b"",
    )
    .expect(401);
    h.call("GET", &h.srv(""), &[("Authorization", "Basic !!!")], b"")
        .expect(401);
}

#[test]
fn sessions_expire_when_idle() {
    let server = start(v2().session_timeout(Duration::from_millis(2000)));
    let mut h = alice(&server);
    // Used within the timeout, a session lives on past it (the server's
    // clock moved on, not the test's).
    for _ in 0..5 {
        server.advance(Duration::from_millis(500));
        h.get(&h.srv("")).expect(200);
    }
    // Idle past it, it is gone: 401 for a GET, 403 for a state change
    // (the CSRF check comes first, as on the Java server).
    server.advance(Duration::from_millis(2300));
    h.post_json(&h.srv("jobs"), &boards(1)).expect(403);
    h.get(&h.srv("")).expect(401);
    h.login("alice", "alice-pw");
    h.get(&h.srv("")).expect(200);
}

#[test]
fn lockout_is_off_by_default() {
    let server = start(v2());
    let h = Http::new(&server);
    for _ in 0..5 {
        let (csrf, temp) = h.login_page();
        h.post_login(&temp, &csrf, "alice", "wrong").expect(401);
    }
    let (csrf, temp) = h.login_page();
    h.post_login(&temp, &csrf, "alice", "alice-pw").expect(302);
}

#[test]
fn lockout_when_configured_locks_extends_and_expires() {
    let lock = Duration::from_millis(3000);
    let server = start(v2().lockout(Some(Lockout::new(3, lock))));
    let h = Http::new(&server);
    let attempt = |user: &str, password: &str| {
        let (csrf, temp) = h.login_page();
        h.post_login(&temp, &csrf, user, password).status
    };
    for _ in 0..3 {
        assert_eq!(attempt("alice", "wrong"), 401);
    }
    // Locked: the right password fails too, and so does Basic.
    assert_eq!(attempt("alice", "alice-pw"), 401);
    h.call(
        "GET",
        &h.srv(""),
        &[("Authorization", "Basic YWxpY2U6YWxpY2UtcHc=")],
        b"",
    )
    .expect(401);
    // Other users are not affected.
    assert_eq!(attempt("bob", "bob-pw"), 302);
    // Each attempt while locked extended the lock: once it has run out
    // from the last attempt, the right password works.
    server.advance(lock + Duration::from_millis(200));
    assert_eq!(attempt("alice", "alice-pw"), 302);
}

#[test]
fn roles_and_job_visibility() {
    let server = start(v2());
    let a = alice(&server);
    let b = Http::logged_in(&server, "bob", "bob-pw");
    let root = Http::logged_in(&server, "root", "root-pw");
    let reader = Http::logged_in(&server, "reader", "reader-pw");
    let id = a.create(&boards(1));

    // Another user's job is not found, under every path and method.
    for path in ["", "/machine", "/machine/power", "/chip"] {
        b.get(&b.srv(&format!("jobs/{id}{path}"))).expect(404);
    }
    let r = b.delete(&b.srv(&format!("jobs/{id}")));
    r.expect(404);
    assert_eq!(r.text(), "no such job");
    b.put_keepalive(&b.srv(&format!("jobs/{id}/keepalive")))
        .expect(404);
    assert_eq!(a.job(id)["state"], "READY");
    // But the list shows every job to anyone who may read.
    let list = b.get(&b.srv("jobs")).json();
    assert_eq!(list["jobs"].as_array().map(Vec::len), Some(1));
    // An admin sees and may use every job, and may set an owner.
    assert_eq!(root.job(id)["owner"], "alice");
    let mut for_bob = boards(1);
    for_bob["owner"] = json!("bob");
    let bobs = root.create(&for_bob);
    assert_eq!(b.job(bobs)["owner"], "bob");
    let r = a.post_json(&a.srv("jobs"), &for_bob);
    r.expect(400);
    assert_eq!(r.text(), "Only admin and NMPI users can specify an owner");
    // A reader may look, not touch.
    reader.get(&reader.srv("machines")).expect(200);
    reader.get(&reader.srv("jobs")).expect(200);
    let r = reader.post_json(&reader.srv("jobs"), &boards(1));
    r.expect(403);
    assert_eq!(r.text(), "computer says no");
    reader.get(&reader.srv(&format!("jobs/{id}"))).expect(403);
}

#[test]
fn logout_ends_the_session() {
    let server = start(v2());
    let h = alice(&server);
    let r = h.call("GET", "/spalloc/system/perform_logout", &[], b"");
    r.expect(302);
    assert!(
        r.header("location")
            .is_some_and(|l| l.ends_with("/spalloc/system/login.html"))
    );
    h.get(&h.srv("")).expect(401);
    // POST (with the token) also clears the cookie.
    let h = alice(&server);
    let r = h.call("POST", "/spalloc/system/perform_logout", &[], b"");
    r.expect(302);
    assert!(
        r.header("set-cookie")
            .is_some_and(|c| c.starts_with("JSESSIONID=;") && c.contains("Max-Age=0"))
    );
    h.get(&h.srv("")).expect(401);
}
