//! The HTTP layer under bad input: malformed requests, oversized heads and
//! bodies, slow clients, too many connections, persistent connections with
//! pipelining, and HTTPS with the throw-away certificate.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use spalloc::server::{V2Tls, VirtualServer};

use super::{alice, boards, start, v2};
use crate::support::http::{HTTP_TIMEOUT, Http, KeepAlive, parse};

/// Sends raw bytes and reads the one response (the server closes after
/// an unreadable request).
fn raw_exchange(server: &VirtualServer, bytes: &[u8]) -> Vec<u8> {
    Http::new(server).exchange(bytes)
}

fn status_of(bytes: &[u8]) -> u16 {
    parse(bytes).map_or(0, |r| r.status)
}

#[test]
fn malformed_and_oversized_requests_get_a_clear_4xx() {
    let server = start(v2().max_request(2048, 4096));
    let long_header = format!("GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n", "a".repeat(4000));
    let many_headers = format!(
        "GET / HTTP/1.1\r\n{}\r\n",
        (0..100)
            .map(|i| format!("X-{i}: v\r\n"))
            .collect::<String>()
    );
    let cases: Vec<(Vec<u8>, u16, &str)> = vec![
        (b"NOT HTTP AT ALL\r\n\r\n".to_vec(), 400, "bad request"),
        (
            b"GET /spalloc/ HTTP/3.0\r\n\r\n".to_vec(),
            505,
            "HTTP/1.0 and HTTP/1.1",
        ),
        (
            b"GET http://x/spalloc/ HTTP/1.1\r\n\r\n".to_vec(),
            400,
            "starting with '/'",
        ),
        (
            b"GET / HTTP/1.1\r\nNo colon here\r\n\r\n".to_vec(),
            400,
            "bad request",
        ),
        (long_header.into_bytes(), 431, "at most 2048 bytes"),
        (many_headers.into_bytes(), 431, "header lines"),
        (
            b"POST /spalloc/srv/spalloc/jobs HTTP/1.1\r\nContent-Length: 5000\r\n\r\n".to_vec(),
            413,
            "at most 4096 bytes",
        ),
        (
            b"POST /x HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec(),
            400,
            "both Content-Length and Transfer-Encoding",
        ),
        (
            b"POST /x HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n".to_vec(),
            501,
            "only chunked",
        ),
        (
            b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".to_vec(),
            400,
            "chunk size",
        ),
        (
            b"POST /x HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n".to_vec(),
            400,
            "conflicting Content-Length",
        ),
    ];
    for (bytes, status, fragment) in cases {
        let got = raw_exchange(&server, &bytes);
        let r = parse(&got)
            .unwrap_or_else(|| panic!("no response to {:?}", String::from_utf8_lossy(&bytes)));
        assert_eq!(
            r.status,
            status,
            "{:?}: {}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(60)]),
            r.text()
        );
        assert!(r.text().contains(fragment), "{}", r.text());
        assert_eq!(r.header("connection"), Some("close"));
    }
    // A body that never ends in time (the request timeout is long, so this
    // is checked by the size bound on a chunked body instead).
    let mut chunked = b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..10 {
        chunked.extend_from_slice(b"200\r\n");
        chunked.extend_from_slice(&[b'x'; 0x200]);
        chunked.extend_from_slice(b"\r\n");
    }
    assert_eq!(status_of(&raw_exchange(&server, &chunked)), 413);
    // The server is unharmed.
    let h = alice(&server);
    h.create(&boards(1));
}

#[test]
fn chunked_bodies_and_expect_continue_work() {
    let server = start(v2());
    let h = alice(&server);
    let body = boards(1).to_string();
    let (a, b) = body.split_at(10);
    let chunked = format!("{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n", a.len(), b.len());
    let cookie = format!("JSESSIONID={}", h.cookie.clone().unwrap_or_default());
    let csrf = h.csrf.clone().unwrap_or_default();
    let r = h.raw(
        "POST",
        &h.srv("jobs"),
        &[
            ("Cookie", &cookie),
            ("X-CSRF-TOKEN", &csrf),
            ("Content-Type", "application/json"),
            ("Transfer-Encoding", "chunked"),
        ],
        chunked.as_bytes(),
    );
    r.expect(201);
    // Expect: 100-continue gets a 100 before the final answer.
    let mut s = TcpStream::connect(h.addr).expect("connect");
    s.set_read_timeout(Some(HTTP_TIMEOUT)).expect("timeout");
    write!(
        s,
        "POST {} HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\nX-CSRF-TOKEN: {csrf}\r\n\
         Content-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        h.srv("jobs"),
        body.len()
    )
    .expect("send head");
    let mut first = [0u8; 25];
    s.read_exact(&mut first).expect("read 100");
    assert_eq!(&first, b"HTTP/1.1 100 Continue\r\n\r\n");
    s.write_all(body.as_bytes()).expect("send body");
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    assert_eq!(status_of(&rest), 201);
}

#[test]
fn persistent_connections_serve_pipelined_requests_in_order() {
    let server = start(v2());
    let h = alice(&server);
    let cookie = h.cookie.clone().unwrap_or_default();
    let mut s = TcpStream::connect(h.addr).expect("connect");
    s.set_read_timeout(Some(HTTP_TIMEOUT)).expect("timeout");
    let one = |path: &str, close: bool| {
        format!(
            "GET {path} HTTP/1.1\r\nHost: x\r\nCookie: JSESSIONID={cookie}\r\n{}\r\n",
            if close { "Connection: close\r\n" } else { "" }
        )
    };
    let reqs = [
        one(&h.srv(""), false),
        one(&h.srv("machines"), false),
        one(&h.srv("jobs/77"), false),
        one(&h.srv("jobs"), true),
    ]
    .concat();
    s.write_all(reqs.as_bytes()).expect("send");
    let mut all = Vec::new();
    let _ = s.read_to_end(&mut all);
    let text = String::from_utf8_lossy(&all);
    let statuses: Vec<&str> = text
        .match_indices("HTTP/1.1 ")
        .map(|(i, _)| &text[i + 9..i + 12])
        .collect();
    assert_eq!(statuses, vec!["200", "200", "404", "200"], "{text}");
    // Only the last says it closes.
    assert_eq!(text.matches("Connection: close").count(), 1);
}

/// Answers to pipelined requests are written together, but never held back
/// behind a long-poll: the answer before one arrives while it waits.
#[test]
fn a_pipelined_long_poll_does_not_hold_back_the_answers_before_it() {
    let server = start(v2().wait_timeout(Duration::from_secs(120)));
    let h = alice(&server);
    let id = h.create(&boards(1));
    let cookie = h.cookie.clone().unwrap_or_default();
    let mut s = TcpStream::connect(h.addr).expect("connect");
    s.set_read_timeout(Some(HTTP_TIMEOUT)).expect("timeout");
    let one = |path: &str| {
        format!("GET {path} HTTP/1.1\r\nHost: x\r\nCookie: JSESSIONID={cookie}\r\n\r\n")
    };
    let reqs = [
        one(&h.srv("machines")),
        one(&h.srv(&format!("jobs/{id}"))),
        one(&h.srv(&format!("jobs/{id}?wait=true"))),
    ]
    .concat();
    s.write_all(reqs.as_bytes()).expect("send");
    // Both answers before the long-poll come while it is still waiting
    // (for 120 s; the read gives up long before that).
    let mut got = Vec::new();
    let mut chunk = [0u8; 8192];
    while String::from_utf8_lossy(&got)
        .matches("HTTP/1.1 200")
        .count()
        < 2
    {
        let n = s
            .read(&mut chunk)
            .expect("the answers before the long-poll");
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&chunk[..n]);
    }
    // Destroying the job ends the long-poll.
    h.delete(&h.srv(&format!("jobs/{id}"))).expect(204);
    let mut more = Vec::new();
    while !String::from_utf8_lossy(&more).contains("DESTROYED") {
        let n = s.read(&mut chunk).expect("the long-poll's answer");
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&more));
        more.extend_from_slice(&chunk[..n]);
    }
}

#[test]
fn slow_and_idle_clients_are_cut_off_and_do_not_block_others() {
    let server = start(v2().timeouts(Duration::from_millis(500), Duration::from_millis(700)));
    let h = alice(&server);
    // A request trickling in slower than the request timeout: 408.
    let mut slow = TcpStream::connect(h.addr).expect("connect");
    slow.set_read_timeout(Some(HTTP_TIMEOUT)).expect("timeout");
    let started = Instant::now();
    slow.write_all(b"GET /spalloc/srv/spalloc/ HTTP/1.1\r\nX-Slow: ")
        .expect("send");
    // Others are served meanwhile.
    h.get(&h.srv("machines")).expect(200);
    let mut got = Vec::new();
    let _ = slow.read_to_end(&mut got);
    assert_eq!(status_of(&got), 408, "{}", String::from_utf8_lossy(&got));
    assert!(started.elapsed() >= Duration::from_millis(500));
    // An idle connection is closed without a word.
    let mut idle = TcpStream::connect(h.addr).expect("connect");
    idle.set_read_timeout(Some(HTTP_TIMEOUT)).expect("timeout");
    let started = Instant::now();
    let mut got = Vec::new();
    let _ = idle.read_to_end(&mut got);
    assert!(got.is_empty());
    assert!(started.elapsed() >= Duration::from_millis(700));
    assert!(started.elapsed() < HTTP_TIMEOUT);
}

#[test]
fn connections_beyond_the_cap_are_refused_with_503() {
    let server = start(v2().max_connections(4));
    let h = alice(&server);
    // Hold exactly the cap's worth of connections, each known to be
    // counted: it has been answered, and is kept alive. (The server may
    // still count a connection of the log-in that it has not yet seen
    // closed, and refuse one of these: that one is replaced.)
    let mut held = Vec::new();
    for _ in 0..40 {
        if held.len() == 4 {
            break;
        }
        let mut c = KeepAlive::open(&h);
        match c.get(&h.srv("")).status {
            503 => continue,
            200 => held.push(c),
            other => panic!("status {other}"),
        }
    }
    assert_eq!(held.len(), 4, "could not hold the cap's worth");
    // The next is refused, at once, with a reason.
    let got = h.exchange(
        format!(
            "GET {} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            h.srv("")
        )
        .as_bytes(),
    );
    assert_eq!(status_of(&got), 503, "{}", String::from_utf8_lossy(&got));
    assert!(parse(&got).is_some_and(|r| r.text().contains("too many connections")));
    drop(held);
    // Once they are gone, new clients are served again.
    assert!(crate::support::eventually(Duration::from_secs(10), || {
        let got = h.exchange(
            format!(
                "GET {} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                h.srv("")
            )
            .as_bytes(),
        );
        status_of(&got) == 401
    }));
}

#[test]
fn https_with_the_throwaway_certificate() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = dir.path().join("ca.pem");
    let server = start(v2().tls(V2Tls::SelfSigned {
        ca_file: Some(ca.clone()),
    }));
    let url = server.v2_url().expect("v2").to_owned();
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let pem = std::fs::read_to_string(&ca).expect("CA written");
    assert_eq!(Some(pem.as_str()), server.v2_ca_pem());
    // The whole flow over TLS, and URLs that say https.
    let h = alice(&server);
    let root = h.get(&h.srv("")).json();
    assert!(
        root["jobs-ref"]
            .as_str()
            .is_some_and(|u| u.starts_with("https://"))
    );
    let id = h.create(&boards(1));
    let r = h.get(&h.srv(&format!("jobs/{id}")));
    r.expect(200);
    // The session cookie is marked Secure.
    let p = Http::new(&server);
    let r = p.raw("GET", "/spalloc/system/login.html", &[], b"");
    assert!(r.header("set-cookie").is_some_and(|c| c.contains("Secure")));
    // A client that does not trust the CA fails the handshake, and plain
    // HTTP to the TLS port gets nothing useful; neither harms the server.
    let mut plain = TcpStream::connect(h.addr).expect("connect");
    plain.set_read_timeout(Some(HTTP_TIMEOUT)).expect("timeout");
    let _ = plain.write_all(b"GET /spalloc/srv/spalloc/ HTTP/1.1\r\nHost: x\r\n\r\n");
    // Nothing more is coming: the server need not wait for the rest of
    // what it reads as the start of a TLS record.
    let _ = plain.shutdown(std::net::Shutdown::Write);
    let mut got = Vec::new();
    let _ = plain.read_to_end(&mut got);
    assert!(!got.starts_with(b"HTTP/1.1 200"));
    let other = tempfile::tempdir().expect("temp dir");
    let other_server = start(v2().tls(V2Tls::SelfSigned {
        ca_file: Some(other.path().join("ca.pem")),
    }));
    let foreign = crate::support::http::tls_config(other_server.v2_ca_pem().expect("pem"));
    let tcp = TcpStream::connect(h.addr).expect("connect");
    tcp.set_read_timeout(Some(HTTP_TIMEOUT)).expect("timeout");
    let conn = rustls::ClientConnection::new(
        foreign,
        rustls::pki_types::ServerName::try_from("localhost").expect("name"),
    )
    .expect("tls");
    let mut s = rustls::StreamOwned::new(conn, tcp);
    let e = s
        .write_all(b"GET / HTTP/1.1\r\n\r\n")
        .and_then(|()| s.flush());
    let mut buf = [0u8; 16];
    let read = s.read(&mut buf);
    assert!(
        e.is_err() || read.is_err(),
        "an untrusted certificate was accepted"
    );
    h.get(&h.srv("machines")).expect(200);
}
