//! The v2 (HTTP) front-end under abuse and under load.
//!
//! * Hostile clients: slow clients that never finish a head, thousands of
//!   connections opened and dropped (mid-head, with garbage, with heads and
//!   bodies over the limits, reset, upgrades to the proxy websocket without
//!   credentials or followed by garbage frames), and failed logins, while a
//!   well-behaved client keeps working with bounded latency.
//! * Load: many logged-in clients creating, keeping alive, describing and
//!   deleting jobs at once through v2 while v1 clients do the same, checked
//!   for double allocation and leaked jobs.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use spalloc::server::{Machine, ServerConfig, V2Config, V2User, VirtualServer};

use super::record;
use crate::support::http::{Http, KeepAlive};

const SLOW_CLIENTS: usize = 100;
const CHURN: u64 = 2000;

fn server(max_connections: usize) -> VirtualServer {
    VirtualServer::start(
        ServerConfig::instant()
            .machines(vec![Machine::new("m", 4, 4)])
            .v2(Some(
                V2Config::default()
                    .users(
                        (0..20)
                            .map(|i| V2User::new(format!("u{i}"), "pw"))
                            .collect(),
                    )
                    .max_connections(max_connections)
                    .timeouts(Duration::from_secs(30), Duration::from_secs(30))
                    .board_ports(0, 0),
            )),
    )
    .expect("start")
}

fn summary(mut l: Vec<Duration>) -> Value {
    l.sort();
    let at = |q: f64| {
        l.get(((l.len() as f64 - 1.0) * q).round() as usize)
            .map_or(0.0, |d| (d.as_secs_f64() * 1e5).round() / 100.0)
    };
    json!({"requests": l.len(), "p50 ms": at(0.5), "p99 ms": at(0.99), "max ms": at(1.0)})
}

/// A well-behaved client's latencies (describe a job, list jobs, on one
/// persistent connection) while `busy` holds.
fn probe(h: &Http, id: u64, busy: &AtomicBool) -> Vec<Duration> {
    let mut c = KeepAlive::open(h);
    let mut latencies = Vec::new();
    while busy.load(Ordering::SeqCst) {
        let t = Instant::now();
        c.get(&h.srv(&format!("jobs/{id}"))).expect(200);
        c.get(&h.srv("jobs")).expect(200);
        latencies.push(t.elapsed());
        thread::sleep(Duration::from_millis(10));
    }
    latencies
}

/// One hostile connection of kind `i`; `upgrade` is an accepted upgrade
/// to the proxy websocket.
fn churn_one(addr: SocketAddr, i: u64, upgrade: &str) {
    let Ok(mut c) = TcpStream::connect(addr) else {
        return;
    };
    let _ = c.set_write_timeout(Some(Duration::from_secs(5)));
    let big = "x".repeat(20_000);
    let _ = match i % 8 {
        0 => Ok(()),
        1 => c.write_all(b"GET /spalloc/srv/spal"),
        2 => c.write_all(b"\xff\xfe garbage\r\n\r\n\x16\x03\x01 tls hello?"),
        3 => c.write_all(format!("GET / HTTP/1.1\r\nX: {big}\r\n\r\n").as_bytes()),
        4 => c.write_all(
            b"POST /spalloc/srv/spalloc/jobs HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n{",
        ),
        5 => c
            .write_all(b"GET /spalloc/srv/spalloc/ HTTP/1.1\r\n\r\n")
            .and_then(|()| c.shutdown(std::net::Shutdown::Write)),
        // An upgrade with no credentials (401).
        6 => c.write_all(
            b"GET /spalloc/proxy/1 HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: eA==\r\n\r\n",
        ),
        // An accepted upgrade, then an unmasked frame claiming 2^63 bytes.
        _ => c
            .write_all(upgrade.as_bytes())
            .and_then(|()| c.write_all(b"\x82\x7f\x7f\xff\xff\xff\xff\xff\xff\xff garbage")),
    };
}

#[test]
fn hostile_http_clients_do_not_starve_others() {
    let server = server(1000);
    let addr = server.v2_local_addr().expect("v2");
    let mut h = Http::new(&server);
    h.login("u0", "pw");
    let id =
        h.create(&json!({"num-boards": 1, "tags": ["default"], "keepalive-interval": "PT300S"}));

    let busy = AtomicBool::new(true);
    let baseline = thread::scope(|s| {
        let p = s.spawn(|| probe(&h, id, &busy));
        thread::sleep(Duration::from_millis(800));
        busy.store(false, Ordering::SeqCst);
        p.join().expect("probe")
    });

    let busy = AtomicBool::new(true);
    let churned = AtomicU64::new(0);
    let failed_logins = AtomicU64::new(0);
    let (under_abuse, slow_held) = thread::scope(|s| {
        let p = s.spawn(|| probe(&h, id, &busy));
        // Slow clients: a byte of a head at a time, for 4 s.
        let slow = s.spawn(|| {
            let mut socks: Vec<TcpStream> = (0..SLOW_CLIENTS)
                .filter_map(|_| TcpStream::connect(addr).ok())
                .collect();
            let held = socks.len();
            let end = Instant::now() + Duration::from_secs(4);
            let head = b"GET /spalloc/srv/spalloc/jobs HTTP/1.1\r\nX-Slow: ";
            let mut i = 0;
            while Instant::now() < end {
                for s in &mut socks {
                    let _ = s.write_all(&[head[i % head.len()]]);
                }
                i += 1;
                thread::sleep(Duration::from_millis(50));
            }
            held
        });
        let upgrade = format!(
            "GET /spalloc/proxy/{id} HTTP/1.1\r\nCookie: JSESSIONID={}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: eA==\r\n\r\n",
            h.cookie.clone().unwrap_or_default()
        );
        let churners: Vec<_> = (0..2u64)
            .map(|k| {
                let (churned, upgrade) = (&churned, upgrade.clone());
                s.spawn(move || {
                    for i in 0..CHURN / 2 {
                        churn_one(addr, 2 * i + k, &upgrade);
                        churned.fetch_add(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        // Failed logins (no lockout configured: they cost only time).
        let logins = s.spawn(|| {
            let bad = Http::new(&server);
            for _ in 0..50 {
                let (csrf, temp) = bad.login_page();
                if bad.post_login(&temp, &csrf, "u1", "wrong").status == 401 {
                    failed_logins.fetch_add(1, Ordering::SeqCst);
                }
            }
        });
        for c in churners {
            c.join().expect("churn");
        }
        logins.join().expect("logins");
        let held = slow.join().expect("slow clients");
        busy.store(false, Ordering::SeqCst);
        (p.join().expect("probe"), held)
    });

    // Afterwards the service still takes new clients, and the job is fine.
    let mut after = Http::new(&server);
    after.login("u0", "pw");
    let state = after.job(id)["state"].clone();
    let worst = under_abuse.iter().max().copied().unwrap_or_default();
    let ok = state == "READY"
        && worst < Duration::from_secs(3)
        && !under_abuse.is_empty()
        && failed_logins.load(Ordering::SeqCst) == 50;
    record(
        "http",
        json!({"case": format!(
                   "{SLOW_CLIENTS} slow clients never finishing a head, {} connections opened and dropped \
                    (half-heads, garbage, 20 kB heads, 100 MB bodies announced, resets, proxy upgrades without \
                    credentials and with garbage frames), 50 failed logins, for 4 s",
                   churned.load(Ordering::SeqCst)),
               "outcome": if ok { "pass" } else { "fail" },
               "detail": {"well-behaved client, quiet": summary(baseline),
                          "well-behaved client, under abuse": summary(under_abuse.clone()),
                          "slow clients connected": slow_held,
                          "failed logins answered 401": failed_logins.load(Ordering::SeqCst)}}),
    );
    assert_eq!(state, "READY");
    assert_eq!(failed_logins.load(Ordering::SeqCst), 50);
    assert!(
        !under_abuse.is_empty() && worst < Duration::from_secs(3),
        "worst latency under abuse {worst:?}"
    );
}

#[test]
fn many_http_and_v1_clients_share_the_machine_safely() {
    let secs: u64 = std::env::var("SPALLOC_LOAD_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(6)
        .min(60);
    let server = server(1000);
    let v1 = server.local_addr();
    let end = Instant::now() + Duration::from_secs(secs);
    let created = AtomicU64::new(0);
    let errors = AtomicU64::new(0);
    let double = AtomicU64::new(0);
    thread::scope(|s| {
        // v2 clients: create, keep alive, describe, read the boards, delete.
        for i in 0..16 {
            let server = &server;
            let (created, errors) = (&created, &errors);
            s.spawn(move || {
                let mut h = Http::new(server);
                h.login(&format!("u{i}"), "pw");
                let mut n = 0u64;
                while Instant::now() < end {
                    n += 1;
                    let body = json!({"num-boards": 1 + (n + i) % 7, "tags": ["default"], "keepalive-interval": "PT30S"});
                    let r = h.post_json(&h.srv("jobs"), &body);
                    if r.status != 201 {
                        errors.fetch_add(1, Ordering::SeqCst);
                        continue;
                    }
                    created.fetch_add(1, Ordering::SeqCst);
                    let id = r.json()["job-id"].as_u64().unwrap_or(0);
                    let url = h.srv(&format!("jobs/{id}"));
                    let ok = h.put_keepalive(&format!("{url}/keepalive")).status == 200
                        && h.get(&url).status == 200
                        && matches!(h.get(&format!("{url}/machine")).status, 200 | 204)
                        && h.delete(&url).status == 204;
                    if !ok {
                        errors.fetch_add(1, Ordering::SeqCst);
                    }
                }
            });
        }
        // v1 clients doing the same, on the same machine.
        for i in 0..4 {
            let (created, errors) = (&created, &errors);
            s.spawn(move || {
                let mut c = spalloc::ProtocolClient::connect(
                    "127.0.0.1",
                    v1.port(),
                    Some(Duration::from_secs(10)),
                )
                .expect("v1");
                let mut o = spalloc::CreateJobOptions::new(format!("v1-{i}"));
                o.keepalive = None;
                while Instant::now() < end {
                    match c.create_job(&spalloc::JobRequest::Boards(3), &o) {
                        Ok(id) => {
                            created.fetch_add(1, Ordering::SeqCst);
                            if c.destroy_job(id, None).is_err() {
                                errors.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                        Err(_) => {
                            errors.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                }
            });
        }
        // A checker: no board is ever in two live jobs.
        let double = &double;
        s.spawn(move || {
            let mut c = spalloc::ProtocolClient::connect(
                "127.0.0.1",
                v1.port(),
                Some(Duration::from_secs(10)),
            )
            .expect("v1");
            while Instant::now() < end {
                let jobs = c.list_jobs().unwrap_or_default();
                let mut seen = std::collections::HashSet::new();
                for b in jobs.iter().flat_map(|j| j.boards.iter()) {
                    if !seen.insert((b.x, b.y, b.z)) {
                        double.fetch_add(1, Ordering::SeqCst);
                    }
                }
                thread::sleep(Duration::from_millis(20));
            }
        });
    });
    let mut c =
        spalloc::ProtocolClient::connect("127.0.0.1", v1.port(), Some(Duration::from_secs(10)))
            .expect("v1");
    let left = c.list_jobs().expect("list").len();
    let (created, errors, double) = (
        created.load(Ordering::SeqCst),
        errors.load(Ordering::SeqCst),
        double.load(Ordering::SeqCst),
    );
    let ok = errors == 0 && double == 0 && left == 0 && created > 0;
    record(
        "http",
        json!({"case": format!("16 v2 clients and 4 v1 clients for {secs} s on 4x4 triads (48 boards)"),
               "outcome": if ok { "pass" } else { "fail" },
               "detail": {"jobs created": created, "errors": errors,
                          "double allocations": double, "jobs left at the end": left}}),
    );
    assert_eq!((errors, double, left), (0, 0, 0));
    assert!(created > 0);
}
