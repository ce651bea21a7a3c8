//! Benchmarks of the virtual server at the scale it promises: a 1200-board
//! machine (20 x 20 triads) holding 1000 live jobs, driven over loopback
//! exactly as clients drive it.

use std::hint::black_box;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::thread;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use spalloc::server::{Machine, ServerConfig, VirtualServer};

/// A bare line client: one request, one reply (no notifications are
/// subscribed, so every line read is the reply).
struct Line {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
    buf: String,
}

impl Line {
    fn connect(server: &VirtualServer) -> std::io::Result<Line> {
        let stream = TcpStream::connect(server.local_addr())?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        stream.set_nodelay(true)?;
        let reader = BufReader::new(stream.try_clone()?);
        Ok(Line {
            stream,
            reader,
            buf: String::new(),
        })
    }

    fn call(&mut self, request: &str) -> std::io::Result<&str> {
        self.stream.write_all(request.as_bytes())?;
        self.buf.clear();
        self.reader.read_line(&mut self.buf)?;
        Ok(&self.buf)
    }
}

const CREATE_ONE: &str = "{\"command\": \"create_job\", \"args\": [], \"kwargs\": {\"owner\": \"bench\", \"keepalive\": null}}\n";

/// A server with a 20 x 20 triad machine and 1000 live single-board jobs.
fn loaded_server() -> std::io::Result<VirtualServer> {
    let server = VirtualServer::start(
        ServerConfig::instant()
            .machines(vec![Machine::new("big", 20, 20)])
            .timeout_check_interval(Duration::from_secs(1)),
    )
    .map_err(std::io::Error::other)?;
    let mut c = Line::connect(&server)?;
    for _ in 0..1000 {
        c.call(CREATE_ONE)?;
    }
    Ok(server)
}

fn id_of(reply: &str) -> u64 {
    reply
        .trim()
        .trim_start_matches("{\"return\": ")
        .trim_end_matches('}')
        .parse()
        .unwrap_or(0)
}

fn benches(c: &mut Criterion) {
    let server = match loaded_server() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cannot start the server: {e}");
            return;
        }
    };
    let Ok(mut client) = Line::connect(&server) else {
        return;
    };
    let mut group = c.benchmark_group("1200 boards, 1000 jobs");
    group.sample_size(30);

    group.bench_function("version round trip", |b| {
        b.iter(|| black_box(client.call("{\"command\": \"version\"}\n").map(str::len)))
    });
    group.bench_function("create and destroy a single-board job", |b| {
        b.iter(|| {
            let id = client.call(CREATE_ONE).map(id_of).unwrap_or(0);
            let destroy = format!("{{\"command\": \"destroy_job\", \"args\": [{id}]}}\n");
            black_box(client.call(&destroy).map(str::len))
        })
    });
    group.bench_function("create and destroy a 4x4-triad job", |b| {
        b.iter(|| {
            let req =
                "{\"command\": \"create_job\", \"args\": [4, 4], \"kwargs\": {\"owner\": \"b\"}}\n";
            let id = client.call(req).map(id_of).unwrap_or(0);
            let destroy = format!("{{\"command\": \"destroy_job\", \"args\": [{id}]}}\n");
            black_box(client.call(&destroy).map(str::len))
        })
    });
    group.bench_function("list_jobs", |b| {
        b.iter(|| black_box(client.call("{\"command\": \"list_jobs\"}\n").map(str::len)))
    });
    group.bench_function("where_is", |b| {
        b.iter(|| {
            black_box(
                client
                    .call("{\"command\": \"where_is\", \"kwargs\": {\"machine\": \"big\", \"chip_x\": 100, \"chip_y\": 50}}\n")
                    .map(str::len),
            )
        })
    });
    group.sample_size(10);
    group.bench_function("100 clients, 10 get_job_state each", |b| {
        b.iter(|| {
            let workers: Vec<_> = (0..100u64)
                .map(|i| {
                    let addr = server.local_addr();
                    thread::spawn(move || -> std::io::Result<()> {
                        let stream = TcpStream::connect(addr)?;
                        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
                        let mut reader = BufReader::new(stream.try_clone()?);
                        let mut w = &stream;
                        let mut line = String::new();
                        for k in 0..10 {
                            let id = 1 + (i * 10 + k) % 1000;
                            w.write_all(
                                format!("{{\"command\": \"get_job_state\", \"args\": [{id}]}}\n")
                                    .as_bytes(),
                            )?;
                            line.clear();
                            reader.read_line(&mut line)?;
                        }
                        Ok(())
                    })
                })
                .collect();
            for w in workers {
                let _ = w.join();
            }
        })
    });
    group.finish();
    drop(client);
    server.shutdown();
}

criterion_group!(server_benches, benches);
criterion_main!(server_benches);
