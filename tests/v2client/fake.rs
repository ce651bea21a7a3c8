//! What the virtual service will not do, from a scripted fake HTTP server:
//! a session that expires mid-run (401, or a 302 to the login page), 5xx
//! answers, stalls, garbage, and a refused login, which must be tried
//! exactly once.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use spalloc::v2::V2Settings;
use spalloc::{Client, Error, Job, JobOptions, JobRequest, ServerOptions};

use crate::support::PATIENCE;

/// A request as the fake server saw it.
#[derive(Debug, Clone)]
pub struct Req {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Req {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn is(&self, method: &str, path: &str) -> bool {
        self.method == method && self.path.split('?').next() == Some(path)
    }
}

/// What the fake server does with a request.
pub enum Answer {
    /// Status, extra headers and body.
    Respond(u16, Vec<(&'static str, String)>, String),
    /// Hold the connection and say nothing.
    Stall,
}

type Handler = dyn Fn(&Req, usize) -> Option<Answer> + Send + Sync;

/// A loopback HTTP server that answers like a v2 service, except where a
/// test's handler says otherwise (the handler gets the request and how
/// many like it came before; `None` means "answer as usual").
pub struct FakeHttp {
    addr: SocketAddr,
    requests: Arc<Log>,
    stop: Arc<AtomicBool>,
}

/// The requests received, and a condition signalled on each new one and
/// when the server stops.
#[derive(Default)]
struct Log {
    requests: Mutex<Vec<Req>>,
    changed: Condvar,
}

impl Drop for FakeHttp {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake stalled answers (under the lock, so none misses it) and the
        // accept loop.
        drop(self.requests.requests.lock());
        self.requests.changed.notify_all();
        let _ = TcpStream::connect(self.addr);
    }
}

impl FakeHttp {
    pub fn start(
        handler: impl Fn(&Req, usize) -> Option<Answer> + Send + Sync + 'static,
    ) -> FakeHttp {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let requests = Arc::new(Log::default());
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        let (r, s) = (requests.clone(), stop.clone());
        let sessions = Arc::new(AtomicUsize::new(0));
        thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let (r, s, h, n) = (r.clone(), s.clone(), handler.clone(), sessions.clone());
                thread::spawn(move || serve(conn, &r, &s, &*h, &n));
            }
        });
        FakeHttp {
            addr,
            requests,
            stop,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/spalloc/", self.addr)
    }

    pub fn requests(&self) -> Vec<Req> {
        self.requests.requests.lock().expect("lock").clone()
    }

    pub fn count(&self, method: &str, path: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.is(method, path))
            .count()
    }

    /// Waits (bounded) until `count(method, path) >= n`.
    pub fn wait_for(&self, method: &str, path: &str, n: usize) -> bool {
        let until = Instant::now() + PATIENCE;
        let mut all = self.requests.requests.lock().expect("lock");
        loop {
            if all.iter().filter(|r| r.is(method, path)).count() >= n {
                return true;
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            all = self
                .requests
                .changed
                .wait_timeout(all, left)
                .expect("lock")
                .0;
        }
    }

    /// Everything any request carried, as text, to look for secrets in.
    pub fn server_options(&self, settings: V2Settings) -> ServerOptions {
        ServerOptions::new()
            .hostname(self.url())
            .timeout(Some(Duration::from_secs(5)))
            .reconnect_delay(Duration::from_millis(20))
            .v2(settings)
    }

    pub fn job_options(&self, settings: V2Settings) -> JobOptions {
        JobOptions::new()
            .hostname(self.url())
            .timeout(Some(Duration::from_secs(5)))
            .reconnect_delay(Duration::from_millis(20))
            .keepalive(Some(Duration::from_millis(200)))
            .v2(settings)
    }
}

fn serve(
    mut conn: TcpStream,
    requests: &Log,
    stop: &AtomicBool,
    handler: &Handler,
    sessions: &AtomicUsize,
) {
    let _ = conn.set_read_timeout(Some(Duration::from_millis(200)));
    let mut buf = Vec::new();
    loop {
        // One request: the head, then the body by Content-Length.
        let head_end = loop {
            if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            let mut chunk = [0u8; 4096];
            match conn.read(&mut chunk) {
                Ok(0) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(_) if !stop.load(Ordering::SeqCst) => {}
                Err(_) => return,
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let mut first = lines.next().unwrap_or_default().split(' ');
        let method = first.next().unwrap_or_default().to_owned();
        let path = first.next().unwrap_or_default().to_owned();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
            .collect();
        let length: usize = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        while buf.len() < head_end + length {
            let mut chunk = [0u8; 4096];
            match conn.read(&mut chunk) {
                Ok(0) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(_) if !stop.load(Ordering::SeqCst) => {}
                Err(_) => return,
            }
        }
        let body = String::from_utf8_lossy(&buf[head_end..head_end + length]).into_owned();
        buf.drain(..head_end + length);
        let req = Req {
            method,
            path,
            headers,
            body,
        };
        let before = {
            let mut all = requests.requests.lock().expect("lock");
            let n = all
                .iter()
                .filter(|r| r.method == req.method && r.path == req.path)
                .count();
            all.push(req.clone());
            requests.changed.notify_all();
            n
        };
        let answer = handler(&req, before).unwrap_or_else(|| usual(&req, sessions));
        match answer {
            Answer::Stall => {
                let mut all = requests.requests.lock().expect("lock");
                while !stop.load(Ordering::SeqCst) {
                    all = requests.changed.wait(all).expect("lock");
                }
                return;
            }
            Answer::Respond(status, extra, body) => {
                let mut out = format!("HTTP/1.1 {status} X\r\nContent-Length: {}\r\n", body.len());
                for (n, v) in extra {
                    out.push_str(&format!("{n}: {v}\r\n"));
                }
                out.push_str("\r\n");
                out.push_str(&body);
                if conn.write_all(out.as_bytes()).is_err() {
                    return;
                }
            }
        }
    }
}

/// The password the fake service accepts.
pub const PASSWORD: &str = "s3cret-pw";
/// The token it accepts.
pub const TOKEN: &str = "t0ken-value";

fn json(status: u16, body: &str) -> Answer {
    Answer::Respond(
        status,
        vec![("Content-Type", "application/json".into())],
        body.into(),
    )
}

/// A v2 service in miniature: login, root, one machine, job 1.
fn usual(req: &Req, sessions: &AtomicUsize) -> Answer {
    let base = "/spalloc/";
    let p = req.path.split('?').next().unwrap_or_default();
    let Some(rest) = p.strip_prefix(base) else {
        return Answer::Respond(404, vec![], "not found".into());
    };
    match (req.method.as_str(), rest) {
        ("GET", "system/login.html") => Answer::Respond(
            200,
            vec![("Set-Cookie", "JSESSIONID=TEMP0000; Path=/; HttpOnly".into())],
            r#"<form><input type="hidden" name="_csrf" value="form-csrf" /></form>"#.into(),
        ),
        ("POST", "system/perform_login") => {
            if req.body.contains(&format!("password={PASSWORD}")) {
                let n = sessions.fetch_add(1, Ordering::SeqCst);
                Answer::Respond(
                    302,
                    vec![
                        ("Location", "/spalloc/system/".into()),
                        (
                            "Set-Cookie",
                            format!("JSESSIONID=SESSION{n:04}; Path=/; HttpOnly"),
                        ),
                    ],
                    String::new(),
                )
            } else {
                Answer::Respond(
                    401,
                    vec![],
                    r#"{"message":"computer says no","timestamp":"2025-03-01T10:00:00Z"}"#.into(),
                )
            }
        }
        _ => {
            let authorised = req
                .header("cookie")
                .is_some_and(|c| c.contains("JSESSIONID=SESSION"))
                || req.header("authorization") == Some(&format!("Bearer {TOKEN}"));
            if !authorised {
                return Answer::Respond(401, vec![], "log in required\n".into());
            }
            let srv = rest.strip_prefix("srv/spalloc/").unwrap_or("?");
            match (req.method.as_str(), srv) {
                ("GET", "") => json(
                    200,
                    r#"{"version":{"major-version":7,"minor-version":4,"revision":1},"jobs-ref":"x","machines-ref":"y","csrf-header":"X-CSRF-TOKEN","csrf-token":"srv-csrf"}"#,
                ),
                ("GET", "machines") => json(
                    200,
                    r#"{"machines":[{"name":"m","tags":["default"],"width":1,"height":1,"dead-boards":[],"dead-links":[]}]}"#,
                ),
                ("POST", "jobs") => Answer::Respond(
                    201,
                    vec![(
                        "Location",
                        "http://127.0.0.1/spalloc/srv/spalloc/jobs/1".into(),
                    )],
                    r#"{"job-id":1}"#.into(),
                ),
                ("GET", "jobs/1") => json(
                    200,
                    r#"{"state":"QUEUED","owner":"alice","start-time":"2025-03-01T10:00:05Z","original-request":{"keepalive-interval":0.2}}"#,
                ),
                ("PUT", "jobs/1/keepalive") => Answer::Respond(200, vec![], "ok".into()),
                ("DELETE", "jobs/1") => Answer::Respond(204, vec![], String::new()),
                _ => Answer::Respond(404, vec![], "not found".into()),
            }
        }
    }
}

fn alice() -> V2Settings {
    V2Settings::default().login("alice", PASSWORD)
}

#[test]
fn a_refused_login_is_tried_exactly_once() {
    let fake = FakeHttp::start(|_, _| None);
    let wrong = V2Settings::default().login("alice", "wrong-password");
    let e = Client::connect(&fake.server_options(wrong.clone())).unwrap_err();
    let message = e.to_string();
    assert!(matches!(e, Error::Login(_)), "{e:?}");
    assert!(message.contains("computer says no"), "{message}");
    assert!(message.contains("not tried again"), "{message}");
    assert!(!message.contains("wrong-password"), "{message}");
    // A job, its keepalive thread, reconnections: none tries again.
    let e = Job::create(JobRequest::AnyBoard, &fake.job_options(wrong.clone())).unwrap_err();
    assert!(matches!(e, Error::Login(_)), "{e:?}");
    let _ = Client::connect(&fake.server_options(wrong));
    assert_eq!(fake.count("POST", "/spalloc/system/perform_login"), 1);
    assert_eq!(fake.count("POST", "/spalloc/srv/spalloc/jobs"), 0);
}

#[test]
fn an_expired_session_mid_run_is_renewed_once() {
    // The first describe of job 1 says 401, the second a 302 to the login
    // page (a browser-ish answer): each costs one login, and the call
    // carries on.
    let fake = FakeHttp::start(|req, before| {
        match (req.is("GET", "/spalloc/srv/spalloc/jobs/1"), before) {
            (true, 0) => Some(Answer::Respond(401, vec![], "log in required\n".into())),
            (true, 2) => Some(Answer::Respond(
                302,
                vec![(
                    "Location",
                    "http://127.0.0.1/spalloc/system/login.html".into(),
                )],
                String::new(),
            )),
            _ => None,
        }
    });
    let mut c = Client::connect(&fake.server_options(alice())).expect("connect");
    assert_eq!(fake.count("POST", "/spalloc/system/perform_login"), 1);
    let s = c.job_state(1).expect("state after a 401");
    assert_eq!(s.state, spalloc::JobState::Queued);
    assert_eq!(fake.count("POST", "/spalloc/system/perform_login"), 2);
    c.job_state(1).expect("state after a 302");
    assert_eq!(fake.count("POST", "/spalloc/system/perform_login"), 3);
    // State changes carry the new session's CSRF token.
    c.keepalive(1).expect("keepalive");
    let put = fake
        .requests()
        .into_iter()
        .find(|r| r.is("PUT", "/spalloc/srv/spalloc/jobs/1/keepalive"))
        .expect("a keepalive");
    assert_eq!(put.header("X-CSRF-TOKEN"), Some("srv-csrf"));
    assert!(
        put.header("cookie")
            .is_some_and(|c| c.contains("SESSION0002"))
    );
}

#[test]
fn a_session_that_cannot_be_renewed_is_a_login_error() {
    // Every describe says 401, however often we log in.
    let fake = FakeHttp::start(|req, _| {
        req.is("GET", "/spalloc/srv/spalloc/jobs/1")
            .then(|| Answer::Respond(401, vec![], "log in required\n".into()))
    });
    let mut c = Client::connect(&fake.server_options(alice())).expect("connect");
    let e = c.job_state(1).unwrap_err();
    assert!(matches!(e, Error::Login(_)), "{e:?}");
    // One renewal, not a loop.
    assert_eq!(fake.count("POST", "/spalloc/system/perform_login"), 2);
}

#[test]
fn unavailable_garbage_and_stalls_are_transport_errors() {
    let fake = FakeHttp::start(|req, _| {
        if req.is("GET", "/spalloc/srv/spalloc/machines") {
            return Some(Answer::Respond(503, vec![], "Service Unavailable".into()));
        }
        if req.is("GET", "/spalloc/srv/spalloc/jobs") {
            return Some(json(200, "{\"jobs\": [garbage"));
        }
        if req.is("GET", "/spalloc/srv/spalloc/jobs/1/machine") {
            return Some(Answer::Stall);
        }
        None
    });
    let mut c = Client::connect(&fake.server_options(alice())).expect("connect");
    let e = c.list_machines().unwrap_err();
    assert!(matches!(e, Error::Http { status: 503, .. }), "{e:?}");
    assert!(e.is_transport());
    assert_eq!(
        e.to_string(),
        "server answered HTTP 503: GET machines: Service Unavailable"
    );
    let e = c.list_jobs().unwrap_err();
    assert!(matches!(e, Error::Json(_)), "{e:?}");
    c.set_timeout(Some(Duration::from_millis(300)));
    let e = c.job_machine_info(1).unwrap_err();
    assert!(matches!(e, Error::Timeout(_)), "{e:?}");
    // The client is still usable afterwards.
    c.set_timeout(Some(Duration::from_secs(5)));
    assert!(c.keepalive(1).is_ok());
}

#[test]
fn the_keepalive_thread_rides_out_failures_and_renews_the_session() {
    // Keepalives 2-4 fail with 502, 5 with 401 (an expired session); the
    // thread carries on, logs in again once, and keeps going.
    let fake = FakeHttp::start(|req, before| {
        if !req.is("PUT", "/spalloc/srv/spalloc/jobs/1/keepalive") {
            return None;
        }
        match before {
            1..=3 => Some(Answer::Respond(502, vec![], "Bad Gateway".into())),
            4 => Some(Answer::Respond(401, vec![], "log in required\n".into())),
            _ => None,
        }
    });
    let job = Job::create(JobRequest::AnyBoard, &fake.job_options(alice())).expect("create");
    assert!(
        fake.wait_for("PUT", "/spalloc/srv/spalloc/jobs/1/keepalive", 8),
        "keepalives stopped: {:?}",
        fake.requests()
            .iter()
            .map(|r| (&r.method, &r.path))
            .collect::<Vec<_>>()
    );
    assert_eq!(fake.count("POST", "/spalloc/system/perform_login"), 2);
    drop(job);
    assert_eq!(fake.count("DELETE", "/spalloc/srv/spalloc/jobs/1"), 1);
    // The reason goes as a query parameter, empty when none was given.
    let delete = fake
        .requests()
        .into_iter()
        .find(|r| r.is("DELETE", "/spalloc/srv/spalloc/jobs/1"))
        .expect("delete");
    assert_eq!(delete.path, "/spalloc/srv/spalloc/jobs/1?reason=");
}

#[test]
fn drop_is_bounded_when_the_service_stalls() {
    let fake = FakeHttp::start(|req, _| {
        req.is("DELETE", "/spalloc/srv/spalloc/jobs/1")
            .then_some(Answer::Stall)
    });
    let mut options = fake.job_options(alice());
    options = options.timeout(Some(Duration::from_millis(500)));
    let job = Job::create(JobRequest::AnyBoard, &options).expect("create");
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        drop(job);
        let _ = tx.send(());
    });
    rx.recv_timeout(PATIENCE).expect("drop returned");
    assert!(fake.count("DELETE", "/spalloc/srv/spalloc/jobs/1") >= 1);
}

#[test]
fn bearer_tokens_go_on_every_request_and_nothing_else_does() {
    let fake = FakeHttp::start(|_, _| None);
    let settings = V2Settings::default().token(TOKEN);
    let job = Job::create(JobRequest::AnyBoard, &fake.job_options(settings)).expect("create");
    assert!(fake.wait_for("PUT", "/spalloc/srv/spalloc/jobs/1/keepalive", 2));
    job.destroy(Some("done")).expect("destroy");
    let requests = fake.requests();
    assert_eq!(fake.count("POST", "/spalloc/system/perform_login"), 0);
    for r in &requests {
        assert_eq!(
            r.header("authorization"),
            Some(&*format!("Bearer {TOKEN}")),
            "{} {}",
            r.method,
            r.path
        );
        assert_eq!(r.header("cookie"), None);
    }
    // The create request: v2 names, a keepalive as an ISO duration.
    let create = requests
        .iter()
        .find(|r| r.is("POST", "/spalloc/srv/spalloc/jobs"))
        .expect("create");
    let body: serde_json::Value = serde_json::from_str(&create.body).expect("JSON");
    assert_eq!(
        body,
        serde_json::json!({"keepalive-interval": "PT0.2S", "tags": ["default"], "max-dead-boards": 0})
    );
}
