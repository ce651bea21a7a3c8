//! The v2 front-end's fuzzing hook, and its property tests (the fuzz target
//! `http_requests` in `fuzz/` runs the same hook for longer): arbitrary
//! bytes, HTTP-shaped requests with arbitrary parts, and well-formed
//! requests with arbitrary bodies to every endpoint, in sequences on one
//! connection. Nothing may panic, every request read gets exactly one
//! well-formed response, and an unreadable one ends the connection.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use super::{V2Config, V2User, api, auth, http};
use crate::server::config::ServerConfig;
use crate::server::machine::Machine;
use crate::server::net::{Clock, Core, FairLock, Shared};
use crate::server::state::Controller;

/// The bearer token of the fuzzing server's user (`test`, password `test`).
pub(crate) const FUZZ_TOKEN: &str = "fuzz-token-0001";

/// Runs `input` as a stream of HTTP requests through a fresh in-memory v2
/// service (one 2 x 2-triad machine, instant power, no sockets, no
/// threads, long-polls that do not wait) and returns each response as
/// sent. A request that cannot be read gets its error response, which
/// ends the stream, as it ends a connection.
pub(crate) fn fuzz(input: &[u8]) -> Vec<Vec<u8>> {
    let config = ServerConfig::instant().machines(vec![Machine::new("m", 2, 2)]);
    let Ok(defs) = config.validate() else {
        return Vec::new();
    };
    let core = Core::new(
        Controller::new(crate::server::settings(&config), defs),
        config.dialect,
    );
    let changes = core.changes.clone();
    let shared = Arc::new(Shared {
        core: FairLock::new(core),
        clock: Clock::default(),
        wake: Mutex::new(false),
        wake_signal: Condvar::new(),
        config,
        stopping: AtomicBool::new(false),
        threads: Mutex::new(Vec::new()),
    });
    let v2 = V2Config::default()
        .users(vec![V2User::new("test", "test").token(FUZZ_TOKEN)])
        .wait_timeout(Duration::ZERO)
        .keepalive_bounds(Duration::from_secs(1), Duration::from_secs(300));
    let Ok(auth) = auth::Auth::with_iterations(&v2, 1) else {
        return Vec::new();
    };
    let limits = http::Limits {
        max_head: 4096,
        max_body: 4096,
    };
    let service = api::Service {
        shared,
        changes,
        auth,
        config: v2,
        secure: false,
        local: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080),
        proxy: None,
    };
    let peer = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let mut reader = http::Reader::new(limits);
    reader.feed(input);
    let mut out = Vec::new();
    loop {
        match reader.next_request() {
            Ok(Some(req)) => {
                let resp = service.handle(&req, peer);
                out.push(resp.to_bytes(req.keep_alive(), "Thu, 01 Jan 1970 00:00:00 GMT"));
            }
            Ok(None) => break,
            Err(e) => {
                out.push(
                    e.response(&limits)
                        .to_bytes(false, "Thu, 01 Jan 1970 00:00:00 GMT"),
                );
                break;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use proptest::test_runner::TestCaseError;
    use serde_json::json;

    use super::{FUZZ_TOKEN, fuzz};
    use crate::fuzzing::check;

    /// Every response must be a complete HTTP/1.1 response whose length
    /// matches its `Content-Length`.
    fn well_formed(responses: &[Vec<u8>]) -> Result<(), TestCaseError> {
        for r in responses {
            let end = r.windows(4).position(|w| w == b"\r\n\r\n");
            prop_assert!(
                end.is_some(),
                "no end of head: {:?}",
                String::from_utf8_lossy(r)
            );
            let end = end.unwrap_or_default();
            let head = String::from_utf8_lossy(&r[..end]).into_owned();
            prop_assert!(head.starts_with("HTTP/1.1 "), "{}", head);
            let status: u16 = head[9..12].parse().unwrap_or(0);
            prop_assert!((100..600).contains(&status), "{}", head);
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .and_then(|l| l.parse::<usize>().ok());
            match length {
                Some(n) => prop_assert_eq!(r.len() - end - 4, n),
                None => prop_assert!(status == 204 || status < 200, "{}", head),
            }
        }
        Ok(())
    }

    const PATHS: &[&str] = &[
        "/spalloc/srv/spalloc/",
        "/spalloc/srv/spalloc/machines",
        "/spalloc/srv/spalloc/machines/m",
        "/spalloc/srv/spalloc/machines/m/logical-board",
        "/spalloc/srv/spalloc/machines/m/physical-board",
        "/spalloc/srv/spalloc/machines/m/chip",
        "/spalloc/srv/spalloc/machines/m/board-ip",
        "/spalloc/srv/spalloc/jobs",
        "/spalloc/srv/spalloc/jobs/1",
        "/spalloc/srv/spalloc/jobs/1/keepalive",
        "/spalloc/srv/spalloc/jobs/1/machine",
        "/spalloc/srv/spalloc/jobs/1/machine/power",
        "/spalloc/srv/spalloc/jobs/1/chip",
        "/spalloc/srv/spalloc/jobs/1/report-issue",
        "/spalloc/srv/spalloc/jobs/2",
        "/spalloc/system/login.html",
        "/spalloc/system/perform_login",
        "/spalloc/system/perform_logout",
        "/spalloc/system/",
        "/spalloc/proxy/1",
        "/spalloc/proxy/2",
        "/spalloc/proxy/0",
        "/spalloc/proxy/x",
        "/elsewhere",
    ];

    const METHODS: &[&str] = &["GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS"];

    const QUERIES: &[&str] = &[
        "",
        "?wait=true",
        "?wait=false&deleted=true",
        "?limit=1&start=1",
        "?limit=0",
        "?x=9&y=5&z=1",
        "?cabinet=0&frame=0&board=3",
        "?address=192.168.0.1",
        "?reason=done%20now",
        "?x=%zz",
    ];

    fn body() -> impl Strategy<Value = Vec<u8>> {
        let doc = prop_oneof![
            Just(json!({"num-boards": 3, "tags": ["default"], "keepalive-interval": "PT60S"})),
            Just(json!({"dimensions": {"width": 1, "height": 2}, "board": {"x": 1, "y": 0, "z": 0},
                        "machine-name": "m", "keepalive-interval": 60})),
            Just(json!({"board": {"address": "192.168.0.9"}, "tags": ["default"], "keepalive-interval": "PT1M"})),
            Just(json!({"power": "ON"})),
            Just(json!({"power": "OFF"})),
            Just(json!({"issue": "x", "boards": [{"chip": [9, 5]}, {"x": 0, "y": 0, "z": 0}]})),
            any::<i64>().prop_map(|n| json!({"num-boards": n, "tags": ["default"], "keepalive-interval": format!("PT{n}S")})),
            "[a-z-]{1,12}".prop_map(|k| json!({ k: null })),
        ]
        .prop_map(|v| serde_json::to_vec(&v).unwrap_or_default());
        prop_oneof![
            doc,
            proptest::collection::vec(any::<u8>(), 0..64),
            Just(b"alive".to_vec()),
            Just(b"_csrf=x&username=test&password=test".to_vec()),
        ]
    }

    /// A request with a valid frame and arbitrary-ish parts.
    fn request() -> impl Strategy<Value = Vec<u8>> {
        (
            proptest::sample::select(METHODS),
            proptest::sample::select(PATHS),
            proptest::sample::select(QUERIES),
            proptest::sample::select(&["application/json", "text/plain", "application/x-www-form-urlencoded", "x/y"][..]),
            proptest::sample::select(&["", "*/*", "application/json", "text/plain", "text/html"][..]),
            any::<bool>(),
            body(),
            proptest::sample::select(&["", "13", "8"][..]),
        )
            .prop_map(|(method, path, query, ctype, accept, bearer, body, websocket)| {
                let mut r = format!(
                    "{method} {path}{query} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n",
                    body.len()
                );
                if !accept.is_empty() {
                    r += &format!("Accept: {accept}\r\n");
                }
                if bearer {
                    r += &format!("Authorization: Bearer {FUZZ_TOKEN}\r\n");
                }
                if !websocket.is_empty() {
                    // An upgrade to the proxy websocket.
                    r += &format!(
                        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: {websocket}\r\n\
                         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                    );
                }
                r += "\r\n";
                let mut bytes = r.into_bytes();
                bytes.extend_from_slice(&body);
                bytes
            })
    }

    #[test]
    fn fuzzing_arbitrary_bytes_get_well_formed_answers() {
        check(
            "server: arbitrary bytes to the v2 (HTTP) service",
            proptest::collection::vec(any::<u8>(), 0..512),
            |input| {
                let responses = fuzz(&input);
                // Bytes that are not HTTP get at most one answer (an error),
                // then the connection ends.
                well_formed(&responses)
            },
        );
    }

    #[test]
    fn fuzzing_request_sequences_get_one_answer_each() {
        check(
            "server: sequences of HTTP requests to every v2 endpoint, arbitrary bodies",
            proptest::collection::vec(request(), 1..10),
            |requests| {
                let input = requests.concat();
                let responses = fuzz(&input);
                prop_assert_eq!(responses.len(), requests.len());
                well_formed(&responses)
            },
        );
    }

    #[test]
    fn fuzzing_mutated_requests_never_panic() {
        check(
            "server: HTTP requests with bytes flipped, cut or inserted",
            (request(), 0usize..200, any::<u8>(), 0u8..3),
            |(mut r, at, b, how)| {
                let at = at.min(r.len());
                match how {
                    0 => {
                        if let Some(x) = r.get_mut(at) {
                            *x = b;
                        }
                    }
                    1 => r.truncate(at),
                    _ => r.insert(at, b),
                }
                well_formed(&fuzz(&r))
            },
        );
    }

    #[test]
    fn the_proxy_upgrade_is_answered_without_a_socket() {
        let upgrade = format!(
            "GET /spalloc/proxy/1 HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer {FUZZ_TOKEN}\r\n\
             Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        );
        let body = r#"{"num-boards": 1, "tags": ["default"], "keepalive-interval": "PT60S"}"#;
        let create = format!(
            "POST /spalloc/srv/spalloc/jobs HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer {FUZZ_TOKEN}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let input = [upgrade.as_str(), &create, &upgrade].concat();
        let responses = fuzz(input.as_bytes());
        let heads: Vec<String> = responses
            .iter()
            .map(|r| {
                String::from_utf8_lossy(r)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_owned()
            })
            .collect();
        // No job 1 yet: Spring's empty 200; then the job; then the upgrade.
        assert_eq!(
            heads,
            [
                "HTTP/1.1 200 OK",
                "HTTP/1.1 201 Created",
                "HTTP/1.1 101 Switching Protocols"
            ]
        );
        let accept = String::from_utf8_lossy(&responses[2]).into_owned();
        assert!(
            accept.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"),
            "{accept}"
        );
    }
}
