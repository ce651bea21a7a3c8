//! Malformed input, argument checking, misbehaving clients and many clients.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use spalloc::server::{Machine, ServerConfig, VirtualServer};

use super::{Client, READ_TIMEOUT, TestResult, fail, start};

/// The connection must still answer properly.
fn still_usable(c: &mut Client) -> TestResult {
    assert_eq!(c.call("version", json!([]), json!({}))?, "1.1.0");
    Ok(())
}

#[test]
fn argument_types_are_checked_and_the_connection_survives() -> TestResult {
    let server = start(vec![Machine::new("m", 1, 1)])?;
    let mut c = Client::connect(server.local_addr())?;
    // Our own messages, where the real server fails later with a Python
    // TypeError from deep inside (or leaves half a job behind).
    let cases: Vec<(&[u8], &str)> = vec![
        (b"{\"command\": \"destroy_job\", \"args\": [1, 5]}\n", "reason must be a string, not 5"),
        (b"{\"command\": \"where_is\", \"args\": [], \"kwargs\": {\"machine\": \"m\", \"chip_x\": 0, \"chip_y\": \"0\"}}\n", "chip_y must be an integer, not '0'"),
        (b"{\"command\": \"where_is\", \"kwargs\": {\"machine\": [\"m\"], \"x\": 0, \"y\": 0, \"z\": 0}}\n", "unhashable type: 'list'"),
        (b"{\"command\": \"where_is\", \"kwargs\": {\"machine\": \"m\", \"x\": 0}}\n", "Invalid arguments: machine, x"),
    ];
    for (line, want) in cases {
        let e = c.raw_err(line)?;
        assert_eq!(e, want, "{:?}", String::from_utf8_lossy(line));
        still_usable(&mut c)?;
    }
    // An unknown machine or job is found out first: no complaint about
    // the coordinates.
    for kwargs in [
        json!({"machine": 5, "x": 0, "y": 0, "z": "zero"}),
        json!({"machine": "nope", "chip_x": "a", "chip_y": 0}),
        json!({"job_id": 99, "chip_x": "a", "chip_y": 0}),
    ] {
        assert_eq!(c.call("where_is", json!([]), kwargs)?, Value::Null);
    }
    // \r\n line endings are accepted (JSON allows the \r), and a request
    // may arrive in pieces.
    c.send_raw(b"{\"command\": \"vers")?;
    thread::sleep(Duration::from_millis(50));
    c.send_raw(b"ion\"}\r\n")?;
    assert_eq!(c.reply()?, super::Reply::Return(json!("1.1.0")));
    // Several requests in one write are answered in order.
    c.send_raw(
        b"{\"command\": \"version\"}\n{\"command\": \"list_machines\"}\n{\"command\": \"get_job_state\"}\n",
    )?;
    assert_eq!(c.reply()?, super::Reply::Return(json!("1.1.0")));
    assert!(matches!(c.reply()?, super::Reply::Return(Value::Array(_))));
    assert!(matches!(c.reply()?, super::Reply::Exception(_)));
    Ok(())
}

#[test]
fn create_job_is_checked_before_a_job_exists() -> TestResult {
    let server = start(vec![Machine::new("m", 2, 2)])?;
    let mut c = Client::connect(server.local_addr())?;
    let cases = [
        (json!([]), json!({}), "owner must be specified for all jobs"),
        (
            json!([]),
            json!({"owner": null}),
            "owner must be specified for all jobs",
        ),
        (
            json!([]),
            json!({"owner": "o", "colour": "red"}),
            "unexpected keyword argument 'colour'",
        ),
        (
            json!([]),
            json!({"owner": "o", "machine": "m", "tags": ["default"]}),
            "Only one of machine and tags may be specified for a job.",
        ),
        (
            json!([]),
            json!({"owner": "o", "require_torus": true}),
            "require_torus must be False when allocating boards.",
        ),
        (
            json!([1, 1, 1]),
            json!({"owner": "o", "require_torus": true}),
            "require_torus must be False when allocating boards.",
        ),
        (
            json!([4]),
            json!({"owner": "o", "min_ratio": -0.5}),
            "Aspect ratio cannot be negative.",
        ),
        (
            json!([1, 1, 1, 0, 0, false, 0.0, 9]),
            json!({"owner": "o"}),
            "takes from 1 to 8 positional arguments but 9 were given",
        ),
        (json!(["2"]), json!({"owner": "o"}), "must be an integer"),
        (
            json!([]),
            json!({"owner": "o", "keepalive": "sixty"}),
            "could not convert string to float: 'sixty'",
        ),
        (
            json!([]),
            json!({"owner": "o", "tags": "default"}),
            "tags must be a list",
        ),
        (
            json!([]),
            json!({"owner": "o", "tags": [1]}),
            "each tag must be a string",
        ),
        (
            json!([]),
            json!({"owner": "o", "machine": 1}),
            "machine must be a string",
        ),
        (
            json!([2]),
            json!({"owner": "o", "min_ratio": "x"}),
            "'<' not supported between instances of 'str' and 'float'",
        ),
        (
            json!([2]),
            json!({"owner": "o", "max_dead_boards": 0.5}),
            "whole number",
        ),
    ];
    for (args, kwargs, want) in cases {
        let e = c.call_err("create_job", args.clone(), kwargs.clone())?;
        assert!(e.contains(want), "{args} {kwargs}: got {e:?}");
    }
    // No job was created and no id used up.
    assert_eq!(c.call("list_jobs", json!([]), json!({}))?, json!([]));
    assert_eq!(c.create(json!([]), json!({}))?, 1);
    // null optional arguments mean their defaults (except min_ratio, which
    // a number of boards compares); trailing null positional arguments
    // are ignored.
    let id = c.create(
        json!([2, null]),
        json!({"max_dead_boards": null, "max_dead_links": null,
               "require_torus": null, "machine": null, "tags": null}),
    )?;
    assert_eq!(c.state_num(id)?, 3);
    Ok(())
}

#[test]
fn over_long_lines_are_discarded() -> TestResult {
    let server = VirtualServer::start(
        ServerConfig::instant()
            .machines(vec![Machine::new("m", 1, 1)])
            .max_line_length(100),
    )?;
    let mut c = Client::connect(server.local_addr())?;
    let mut long = vec![b'x'; 10_000];
    long.push(b'\n');
    let e = c.raw_err(&long)?;
    assert!(e.contains("line too long"), "{e}");
    still_usable(&mut c)?;
    // Exactly at the limit is fine.
    let request = b"{\"command\": \"version\"}";
    let mut edge = vec![b' '; 100 - request.len()];
    edge.extend_from_slice(request);
    edge.push(b'\n');
    c.send_raw(&edge)?;
    assert_eq!(c.reply()?, super::Reply::Return(json!("1.1.0")));
    // A long line sent in pieces is discarded as a whole.
    c.send_raw(&[b'{'; 80])?;
    c.send_raw(&[b'{'; 80])?;
    let e = c.raw_err(b"}\n")?;
    assert!(e.contains("line too long"), "{e}");
    still_usable(&mut c)?;
    Ok(())
}

#[test]
fn a_client_that_never_reads_does_not_block_others() -> TestResult {
    let server = VirtualServer::start(
        ServerConfig::instant()
            .machines(vec![Machine::new("m", 4, 4)])
            .max_queued_output(64 * 1024),
    )?;
    let addr = server.local_addr();
    let mut c = Client::connect(addr)?;
    for _ in 0..40 {
        c.create(json!([]), json!({}))?;
    }
    // The slow client floods requests for big replies and never reads.
    let slow = TcpStream::connect(addr)?;
    slow.set_write_timeout(Some(Duration::from_millis(100)))?;
    let flood = thread::spawn(move || -> Result<(), String> {
        let line = b"{\"command\": \"list_jobs\"}\n".repeat(100);
        let mut s = &slow;
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            match s.write(&line) {
                Ok(_) => {}
                // Its requests back up while the server is busy with the
                // earlier ones: still connected.
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    thread::sleep(Duration::from_millis(20));
                }
                // Cut off by the server.
                Err(_) => return Ok(()),
            }
        }
        Err("the slow client was never disconnected".to_owned())
    });
    // Meanwhile everyone else is served promptly.
    let mut other = Client::connect(addr)?;
    for _ in 0..50 {
        let t = Instant::now();
        still_usable(&mut other)?;
        c.call("list_jobs", json!([]), json!({}))?;
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "took {:?}",
            t.elapsed()
        );
    }
    match flood.join() {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return fail(e),
        Err(_) => return fail("flood thread panicked"),
    }
    still_usable(&mut other)?;
    Ok(())
}

#[test]
fn many_clients_at_once() -> TestResult {
    let server = start(vec![Machine::new("m", 4, 4)])?;
    let addr = server.local_addr();
    let workers: Vec<_> = (0..20)
        .map(|i| {
            thread::spawn(move || -> Result<Vec<u64>, String> {
                let mut c = Client::connect(addr).map_err(|e| e.to_string())?;
                let mut ids = Vec::new();
                for _ in 0..5 {
                    let id = c
                        .create(json!([]), json!({"owner": format!("w{i}")}))
                        .map_err(|e| e.to_string())?;
                    ids.push(id);
                }
                Ok(ids)
            })
        })
        .collect();
    let mut all = Vec::new();
    for w in workers {
        match w.join() {
            Ok(Ok(ids)) => all.extend(ids),
            Ok(Err(e)) => return fail(e),
            Err(_) => return fail("worker panicked"),
        }
    }
    all.sort_unstable();
    assert_eq!(all, (1..=100).collect::<Vec<u64>>());
    let mut c = Client::connect(addr)?;
    let jobs = c.call("list_jobs", json!([]), json!({}))?;
    let mut used: Vec<Value> = jobs
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|j| j["state"] == 3)
                .map(|j| j["boards"].clone())
                .collect()
        })
        .unwrap_or_default();
    // 48 boards: 48 jobs got one each, all different; the rest wait.
    assert_eq!(used.len(), 48);
    used.sort_by_key(|v| v.to_string());
    used.dedup();
    assert_eq!(used.len(), 48);
    Ok(())
}

#[test]
fn too_many_connections_are_turned_away() -> TestResult {
    let server = VirtualServer::start(
        ServerConfig::instant()
            .machines(vec![Machine::new("m", 1, 1)])
            .max_connections(2),
    )?;
    let mut a = Client::connect(server.local_addr())?;
    let mut b = Client::connect(server.local_addr())?;
    still_usable(&mut a)?;
    still_usable(&mut b)?;
    let mut third = Client::connect(server.local_addr())?;
    let v = third.read_value()?;
    assert!(
        v["exception"]
            .as_str()
            .is_some_and(|e| e.contains("too many")),
        "{v}"
    );
    drop(a);
    // Once a slot is free, new clients get in.
    super::wait_for(Duration::from_secs(3), || {
        let mut d = Client::connect(server.local_addr())?;
        Ok(match d.request("version", json!([]), json!({})) {
            Ok(super::Reply::Return(_)) => Some(()),
            _ => None,
        })
    })?;
    Ok(())
}

#[test]
fn report_problem_is_accepted_in_the_java_dialect() -> TestResult {
    let server = super::start_as(
        spalloc::server::Dialect::Java,
        vec![Machine::new("m", 1, 1)],
    )?;
    let mut c = Client::connect(server.local_addr())?;
    assert_eq!(
        c.call("report_problem", json!(["192.168.0.1"]), json!({}))?,
        Value::Null
    );
    assert_eq!(
        c.call(
            "report_problem",
            json!(["192.168.0.1"]),
            json!({"x": 1, "y": 2, "p": 3, "description": "smoke"})
        )?,
        Value::Null
    );
    let e = c.call_err("report_problem", json!([]), json!({}))?;
    assert_eq!(e, "Index 0 out of bounds for length 0");
    Ok(())
}

#[test]
fn server_replies_use_python_json_style() -> TestResult {
    let server = start(vec![Machine::new("m", 1, 1)])?;
    let mut stream = TcpStream::connect(server.local_addr())?;
    stream.set_read_timeout(Some(READ_TIMEOUT))?;
    stream.write_all(b"{\"command\": \"get_job_state\", \"args\": [7]}\n")?;
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\n") {
        let n = stream.read(&mut byte)?;
        if n == 0 {
            return fail("closed");
        }
        buf.extend_from_slice(&byte);
    }
    let text = String::from_utf8(buf)?;
    assert!(text.starts_with("{\"return\": {"), "{text}");
    assert!(text.contains("\"state\": 0"), "{text}");
    assert!(text.contains(", \""), "{text}");
    Ok(())
}

#[test]
fn a_big_loaded_machine_stays_responsive() -> TestResult {
    // 1200 boards, 1000 live jobs, 100 clients at once.
    let server = start(vec![Machine::new("big", 20, 20)])?;
    let addr = server.local_addr();
    let mut c = Client::connect(addr)?;
    let mut pipelined = Vec::new();
    for _ in 0..1000 {
        pipelined.extend_from_slice(
            b"{\"command\": \"create_job\", \"kwargs\": {\"owner\": \"o\", \"keepalive\": null}}\n",
        );
    }
    c.send_raw(&pipelined)?;
    for _ in 0..1000 {
        if !matches!(c.reply()?, super::Reply::Return(_)) {
            return fail("create_job failed");
        }
    }
    let workers: Vec<_> = (0..100u64)
        .map(|i| {
            thread::spawn(move || -> Result<Duration, String> {
                let run = || -> TestResult<Duration> {
                    let mut c = Client::connect(addr)?;
                    let mut worst = Duration::ZERO;
                    for k in 0..5 {
                        let t = Instant::now();
                        let id = 1 + (i * 5 + k) % 1000;
                        let s = c.state(id)?;
                        if s["state"] != 3 {
                            return fail(format!("job {id}: {s}"));
                        }
                        c.call(
                            "where_is",
                            json!([]),
                            json!({"job_id": id, "chip_x": 0, "chip_y": 0}),
                        )?;
                        worst = worst.max(t.elapsed());
                    }
                    if i % 10 == 0 {
                        let jobs = c.call("list_jobs", json!([]), json!({}))?;
                        if jobs.as_array().map(Vec::len) != Some(1000) {
                            return fail("list_jobs lost jobs");
                        }
                    }
                    Ok(worst)
                };
                run().map_err(|e| e.to_string())
            })
        })
        .collect();
    let mut worst = Duration::ZERO;
    for w in workers {
        match w.join() {
            Ok(Ok(d)) => worst = worst.max(d),
            Ok(Err(e)) => return fail(e),
            Err(_) => return fail("worker panicked"),
        }
    }
    // Generous for an unoptimised build on two cores; a stalled server
    // would take the 5 s read timeout.
    assert!(
        worst < Duration::from_secs(3),
        "slowest request took {worst:?}"
    );
    Ok(())
}
