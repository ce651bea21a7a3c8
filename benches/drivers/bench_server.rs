//! Measures the virtual server's own time per operation, for
//! `benches/compare.sh`: requests written and replies read with bare
//! socket calls (no client library, no decoding), so what is left is the
//! server's work plus one loopback round trip, which `version` shows alone.
//!
//! ```text
//! bench_server HOST PORT COUNT
//! ```
//!
//! Run it against a loaded server (the script's has 1000 live jobs on a
//! 1200-board machine). Each operation is timed `COUNT` times, in turn with
//! the others, and the medians are printed in microseconds:
//! `version_us=… list_jobs_us=… get_job_state_us=… create_destroy_us=…`.
//! The job created is a single board with no keepalive, destroyed at once,
//! so the server is left as it was found.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// A line connection with bare reads and writes.
struct Line {
    stream: TcpStream,
    buf: Vec<u8>,
    len: usize,
}

impl Line {
    fn connect(host: &str, port: u16) -> io::Result<Line> {
        let stream = TcpStream::connect((host, port))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        Ok(Line {
            stream,
            buf: vec![0; 1 << 20],
            len: 0,
        })
    }

    /// Sends one request; returns its reply line (without the `\n`).
    fn call(&mut self, request: &[u8]) -> io::Result<&[u8]> {
        self.stream.write_all(request)?;
        self.len = 0;
        loop {
            // One request at a time and no notifications subscribed, so the
            // reply is complete when the bytes so far end with its `\n` (a
            // JSON line has no other).
            if self.len > 0 && self.buf[self.len - 1] == b'\n' {
                return Ok(&self.buf[..self.len - 1]);
            }
            if self.len == self.buf.len() {
                self.buf.resize(self.buf.len() * 2, 0);
            }
            let n = self.stream.read(&mut self.buf[self.len..])?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            self.len += n;
        }
    }
}

fn micros(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1e6
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn run(host: &str, port: u16, count: usize) -> io::Result<[f64; 4]> {
    let mut c = Line::connect(host, port)?;
    let mut times: [Vec<f64>; 4] = Default::default();
    let create = b"{\"command\": \"create_job\", \"args\": [], \"kwargs\": {\"owner\": \"bench-server\", \"keepalive\": null}}\n";
    // One round to warm up, then `count` timed ones.
    for round in 0..=count {
        let t = Instant::now();
        c.call(b"{\"command\": \"version\"}\n")?;
        let version = micros(t);

        let t = Instant::now();
        c.call(b"{\"command\": \"list_jobs\"}\n")?;
        let list = micros(t);

        let t = Instant::now();
        c.call(b"{\"command\": \"get_job_state\", \"args\": [1]}\n")?;
        let state = micros(t);

        let t = Instant::now();
        let reply = c.call(create)?;
        let id: u64 = std::str::from_utf8(reply)
            .ok()
            .and_then(|r| r.trim().strip_prefix("{\"return\": "))
            .and_then(|r| r.strip_suffix('}'))
            .and_then(|r| r.parse().ok())
            .ok_or_else(|| {
                io::Error::other(format!("create_job: {}", String::from_utf8_lossy(reply)))
            })?;
        c.call(format!("{{\"command\": \"destroy_job\", \"args\": [{id}]}}\n").as_bytes())?;
        let create_destroy = micros(t);

        if round > 0 {
            for (v, x) in times.iter_mut().zip([version, list, state, create_destroy]) {
                v.push(x);
            }
        }
    }
    Ok(times.map(|mut v| median(&mut v)))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(host), Some(Ok(port)), Some(Ok(count))) = (
        args.first(),
        args.get(1).map(|p| p.parse::<u16>()),
        args.get(2).map(|n| n.parse::<usize>()),
    ) else {
        eprintln!("usage: bench_server HOST PORT COUNT");
        return ExitCode::from(2);
    };
    match run(host, port, count.max(1)) {
        Ok([version, list, state, create_destroy]) => {
            println!(
                "version_us={version:.1} list_jobs_us={list:.1} get_job_state_us={state:.1} create_destroy_us={create_destroy:.1}"
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bench_server: {e}");
            ExitCode::FAILURE
        }
    }
}
