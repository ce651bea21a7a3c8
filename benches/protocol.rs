//! Micro-benchmarks of the client side of the protocol: encoding a call,
//! decoding each kind of reply, and whole typed calls.
//!
//! The replies are the exact lines a virtual server writes for a 1200-board
//! machine (20 x 20 triads) holding 1000 live jobs, captured once at start.
//! `decode_line` is the general decoder every line can take. The typed calls
//! run a [`ProtocolClient`] against a loopback server that answers every
//! request with the captured line, next to the same exchange made with bare
//! socket reads and writes: the difference between the two is what the
//! client itself costs per call (encoding, framing, decoding into types).

use std::hint::black_box;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use spalloc::protocol::{create_job_args, decode_line, encode_call};
use spalloc::server::{Machine, ServerConfig, VirtualServer};
use spalloc::{CreateJobOptions, JobRequest, Map, ProtocolClient, Value, WhereIsQuery};

/// The requests whose replies are benchmarked, as a client sends them.
fn requests() -> Vec<(&'static str, Vec<u8>)> {
    let mut where_is = Map::new();
    where_is.insert("machine".into(), json!("big"));
    where_is.insert("chip_x".into(), json!(100));
    where_is.insert("chip_y".into(), json!(50));
    vec![
        ("version", encode_call("version", &[], &Map::new())),
        (
            "get_job_state",
            encode_call("get_job_state", &[json!(1)], &Map::new()),
        ),
        (
            "get_job_machine_info",
            encode_call("get_job_machine_info", &[json!(1)], &Map::new()),
        ),
        ("where_is", encode_call("where_is", &[], &where_is)),
        (
            "list_machines",
            encode_call("list_machines", &[], &Map::new()),
        ),
        (
            "list_jobs (1000 jobs)",
            encode_call("list_jobs", &[], &Map::new()),
        ),
    ]
}

/// Each request's reply line (with its `\n`) from a loaded virtual server.
fn captured_replies() -> io::Result<Vec<(&'static str, Vec<u8>)>> {
    let server = VirtualServer::start(
        ServerConfig::instant()
            .machines(vec![Machine::new("big", 20, 20)])
            .timeout_check_interval(Duration::from_secs(1)),
    )
    .map_err(io::Error::other)?;
    let mut client = ProtocolClient::connect("127.0.0.1", server.local_addr().port(), None)
        .map_err(io::Error::other)?;
    let mut options = CreateJobOptions::new("bench");
    options.keepalive = None;
    for _ in 0..1000 {
        client
            .create_job(&JobRequest::AnyBoard, &options)
            .map_err(io::Error::other)?;
    }
    let stream = TcpStream::connect(server.local_addr())?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    let mut replies = Vec::new();
    for (name, request) in requests() {
        writer.write_all(&request)?;
        let mut line = Vec::new();
        reader.read_until(b'\n', &mut line)?;
        replies.push((name, line));
    }
    server.shutdown();
    Ok(replies)
}

/// A loopback server that answers every request line with `reply`.
fn canned_server(reply: Vec<u8>) -> io::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let reply = reply.clone();
            thread::spawn(move || -> io::Result<()> {
                stream.set_nodelay(true)?;
                let mut reader = BufReader::new(stream.try_clone()?);
                let mut writer = stream;
                let mut line = Vec::new();
                loop {
                    line.clear();
                    if reader.read_until(b'\n', &mut line)? == 0 {
                        return Ok(());
                    }
                    writer.write_all(&reply)?;
                }
            });
        }
    });
    Ok(port)
}

/// One request and its reply with bare socket calls: the transport alone.
fn raw_call(
    stream: &mut TcpStream,
    request: &[u8],
    reply_len: usize,
    buf: &mut [u8],
) -> io::Result<()> {
    stream.write_all(request)?;
    let mut got = 0;
    while got < reply_len {
        let n = stream.read(&mut buf[got..])?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        got += n;
    }
    Ok(())
}

fn encoding(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode_call");
    group.bench_function("version", |b| {
        b.iter(|| black_box(encode_call(black_box("version"), &[], &Map::new())))
    });
    let args = create_job_args(&JobRequest::Triads {
        width: 2,
        height: 3,
    })
    .unwrap_or_default();
    // The keyword arguments `create_job` sends with every option set.
    let Value::Object(kwargs) = json!({
        "owner": "me@example.org", "keepalive": 60.0, "machine": "big", "tags": null,
        "min_ratio": 0.333, "max_dead_boards": 0, "max_dead_links": null,
        "require_torus": false,
    }) else {
        return;
    };
    group.bench_function("create_job with every option", |b| {
        b.iter(|| {
            black_box(encode_call(
                "create_job",
                black_box(&args),
                black_box(&kwargs),
            ))
        })
    });
    let mut reason = Map::new();
    reason.insert("reason".into(), json!("finished"));
    group.bench_function("destroy_job with a reason", |b| {
        b.iter(|| black_box(encode_call("destroy_job", &[json!(42)], black_box(&reason))))
    });
    group.finish();
}

fn decoding(c: &mut Criterion, replies: &[(&'static str, Vec<u8>)]) {
    let mut group = c.benchmark_group("decode_line");
    for (name, line) in replies {
        let bytes = &line[..line.len() - 1];
        group.bench_function(*name, |b| {
            b.iter(|| black_box(decode_line(black_box(bytes))))
        });
    }
    group.finish();
}

fn typed_calls(c: &mut Criterion, replies: &[(&'static str, Vec<u8>)]) -> io::Result<()> {
    let mut group = c.benchmark_group("typed call against a canned reply");
    group.sample_size(30);
    let query = WhereIsQuery::Chip {
        machine: "big".into(),
        x: 100,
        y: 50,
    };
    let connect = |port| {
        ProtocolClient::connect("127.0.0.1", port, Some(Duration::from_secs(30)))
            .map_err(io::Error::other)
    };
    let requests = requests();
    let mut buf = vec![0; 1 << 20];
    for ((name, reply), (_, request)) in replies.iter().zip(&requests) {
        let port = canned_server(reply.clone())?;
        let mut client = connect(port)?;
        group.bench_function(format!("{name}: ProtocolClient"), |b| {
            b.iter(|| {
                let ok = match *name {
                    "version" => client.version().is_ok(),
                    "get_job_state" => client.get_job_state(1).is_ok(),
                    "get_job_machine_info" => client.get_job_machine_info(1).is_ok(),
                    "where_is" => client.where_is(&query).is_ok(),
                    "list_machines" => client.list_machines().is_ok(),
                    _ => client.list_jobs().is_ok(),
                };
                black_box(ok)
            })
        });
        let mut raw = TcpStream::connect(("127.0.0.1", port))?;
        raw.set_nodelay(true)?;
        group.bench_function(format!("{name}: bare socket"), |b| {
            b.iter(|| black_box(raw_call(&mut raw, request, reply.len(), &mut buf).is_ok()))
        });
    }
    group.finish();
    Ok(())
}

fn benches(c: &mut Criterion) {
    encoding(c);
    let replies = match captured_replies() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot capture the replies: {e}");
            return;
        }
    };
    decoding(c, &replies);
    if let Err(e) = typed_calls(c, &replies) {
        eprintln!("typed calls: {e}");
    }
}

criterion_group!(protocol_benches, benches);
criterion_main!(protocol_benches);
