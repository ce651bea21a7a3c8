//! Clients that abuse the virtual server: over-long lines, slow clients
//! that never finish a line, and thousands of connections opened and
//! dropped (some mid-line, some reset). A well-behaved client, polling all
//! the while, must stay served with bounded latency.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::json;
use spalloc::server::{Machine, ServerConfig};
use spalloc::{CreateJobOptions, JobRequest, ProtocolClient};

use super::{record, start_server};

const SLOW_CLIENTS: usize = 100;
const CHURN: u64 = 3000;
const LONG_LINE: usize = 3 << 20;

/// Latencies of a well-behaved client's calls while `busy` holds.
fn probe(addr: SocketAddr, busy: &AtomicBool, job: u64) -> Vec<Duration> {
    let mut c = ProtocolClient::connect("127.0.0.1", addr.port(), Some(Duration::from_secs(5)))
        .expect("probe connects");
    let mut latencies = Vec::new();
    while busy.load(Ordering::SeqCst) {
        let t = Instant::now();
        c.get_job_state(job).expect("probe call");
        c.list_jobs().expect("probe call");
        latencies.push(t.elapsed());
        thread::sleep(Duration::from_millis(10));
    }
    latencies
}

fn summary(mut l: Vec<Duration>) -> serde_json::Value {
    l.sort();
    let at = |q: f64| {
        l.get(((l.len() as f64 - 1.0) * q).round() as usize)
            .map_or(0.0, |d| (d.as_secs_f64() * 1e5).round() / 100.0)
    };
    json!({"calls": l.len(), "p50 ms": at(0.5), "p99 ms": at(0.99), "max ms": at(1.0)})
}

/// Sends `LONG_LINE` bytes with no newline, then a newline: the server
/// must answer with an exception and keep the connection usable.
fn long_line(addr: SocketAddr) -> Result<(), String> {
    let mut s = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let chunk = vec![b'x'; 64 * 1024];
    for _ in 0..LONG_LINE / chunk.len() {
        s.write_all(&chunk).map_err(|e| e.to_string())?;
    }
    s.write_all(b"\n{\"command\": \"version\"}\n")
        .map_err(|e| e.to_string())?;
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).map_err(|e| e.to_string())?;
    if !line.contains("line too long") {
        return Err(format!("over-long line answered with {line:?}"));
    }
    line.clear();
    r.read_line(&mut line).map_err(|e| e.to_string())?;
    if !line.contains("\"return\"") {
        return Err(format!("connection not usable after it: {line:?}"));
    }
    Ok(())
}

#[test]
fn abusive_clients_do_not_starve_others() {
    let server = start_server(ServerConfig::instant().machines(vec![Machine::new("m", 2, 2)]));
    let addr = server.local_addr();
    let job = ProtocolClient::connect("127.0.0.1", addr.port(), Some(Duration::from_secs(5)))
        .expect("connect")
        .create_job(&JobRequest::AnyBoard, &{
            let mut o = CreateJobOptions::new("probe");
            o.keepalive = None;
            o
        })
        .expect("create");

    // A quiet baseline first.
    let busy = AtomicBool::new(true);
    let baseline = thread::scope(|s| {
        let h = s.spawn(|| probe(addr, &busy, job));
        thread::sleep(Duration::from_millis(800));
        busy.store(false, Ordering::SeqCst);
        h.join().expect("probe")
    });

    let busy = AtomicBool::new(true);
    let churned = AtomicU64::new(0);
    let (under_abuse, long_lines, slow_held) = thread::scope(|s| {
        let probe = s.spawn(|| probe(addr, &busy, job));
        let long = s.spawn(|| (0..3).map(|_| long_line(addr)).collect::<Vec<_>>());
        // Slow clients: each sends one byte of a line at a time, forever.
        let slow = s.spawn(|| {
            let mut socks: Vec<TcpStream> = (0..SLOW_CLIENTS)
                .filter_map(|_| TcpStream::connect(addr).ok())
                .collect();
            let held = socks.len();
            let end = Instant::now() + Duration::from_secs(4);
            let mut i = 0;
            while Instant::now() < end {
                for s in &mut socks {
                    let _ = s.write_all(&[b"{\"command\": \"ver"[i % 16]]);
                }
                i += 1;
                thread::sleep(Duration::from_millis(50));
            }
            held
        });
        // Churn: connections opened and dropped, some mid-line, some with
        // garbage, some reset by closing with unread data.
        let churn: Vec<_> = (0..2u64)
            .map(|k| {
                let churned = &churned;
                s.spawn(move || {
                    for i in 0..CHURN / 2 {
                        let Ok(mut c) = TcpStream::connect(addr) else {
                            continue;
                        };
                        match (i + k) % 4 {
                            0 => {}
                            1 => {
                                let _ = c.write_all(b"{\"command\": \"list_jo");
                            }
                            2 => {
                                let _ = c.write_all(b"\xff\xfe garbage\n\n\r\n{}\n[1]\n");
                            }
                            _ => {
                                let _ = c.write_all(b"{\"command\": \"list_jobs\"}\n");
                                let _ = c.shutdown(std::net::Shutdown::Write);
                            }
                        }
                        churned.fetch_add(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        for c in churn {
            c.join().expect("churn");
        }
        let long = long.join().expect("long lines");
        let held = slow.join().expect("slow clients");
        busy.store(false, Ordering::SeqCst);
        (probe.join().expect("probe"), long, held)
    });

    // Afterwards the server still takes and serves new clients.
    let mut after = ProtocolClient::connect("127.0.0.1", addr.port(), Some(Duration::from_secs(5)))
        .expect("connect after the abuse");
    let still = after.list_jobs().map(|j| j.len()).ok();

    let worst = under_abuse.iter().max().copied().unwrap_or_default();
    let long_ok = long_lines.iter().all(Result::is_ok);
    let ok =
        long_ok && still == Some(1) && worst < Duration::from_secs(2) && !under_abuse.is_empty();
    record(
        "hostile",
        json!({"case": format!(
                   "{SLOW_CLIENTS} slow clients never finishing a line, {} connections opened and dropped, 3 lines of 3 MiB, for 4 s",
                   churned.load(Ordering::SeqCst)),
               "outcome": if ok { "pass" } else { "fail" },
               "detail": {"well-behaved client, quiet": summary(baseline),
                          "well-behaved client, under abuse": summary(under_abuse.clone()),
                          "slow clients connected": slow_held,
                          "over-long lines answered with an exception": long_lines.iter().filter(|r| r.is_ok()).count()}}),
    );
    assert!(long_ok, "{long_lines:?}");
    assert_eq!(still, Some(1));
    assert!(
        !under_abuse.is_empty() && worst < Duration::from_secs(2),
        "worst latency under abuse {worst:?}"
    );
}
