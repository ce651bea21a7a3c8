//! Measures `version` calls per second on one connection, several ways, in
//! turns, for `benches/compare.sh`: against the floor this machine allows,
//! and with and without pipelining.
//!
//! ```text
//! bench_rpc_floor HOST PORT SECONDS
//! ```
//!
//! First asks the real server at `HOST:PORT` for its reply to the request
//! [`spalloc::protocol::encode_call`] produces for `version`, and keeps
//! that reply's exact bytes. Then starts a trivial echo server on a free
//! loopback port that answers every request line with those bytes (a
//! thread per connection, no JSON, no bookkeeping). Six subjects then take
//! turns, twenty slices each, for about `SECONDS` each in all, so that a
//! burst of load from elsewhere lands on all of them; each rate is the
//! median of a subject's slices:
//!
//! * `calls_per_s`: a bare client (write the request, read up to the
//!   reply's `\n`) against the echo server: the floor, one call at a time;
//! * `client_calls_per_s`: [`spalloc::ProtocolClient`] against the echo
//!   server: what the client costs over the floor;
//! * `server_calls_per_s`: the bare client against the real server: what
//!   the server costs over the floor;
//! * `client_server_calls_per_s`: `ProtocolClient` against the real server;
//! * `pipelined_calls_per_s`: `ProtocolClient::call_pipelined`, 64 calls at
//!   a time, against the real server;
//! * `pipelined_echo_calls_per_s`: the same against the echo server.
//!
//! Prints them as `NAME=RATE …`, then `pipeline_depth=… request_bytes=…
//! reply_bytes=…`.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};

use spalloc::protocol::encode_call;
use spalloc::{Map, Pipeline, ProtocolClient};

/// Calls per pipeline in the pipelined measurements.
const PIPELINE_DEPTH: usize = 64;
/// How many turns each subject gets.
const SLICES: u32 = 20;

/// Reads from `stream` until `buf[..len]` ends with `\n`; returns the
/// length of the first line, keeping any bytes after it.
fn read_line(stream: &mut TcpStream, buf: &mut [u8], len: &mut usize) -> io::Result<usize> {
    loop {
        if let Some(i) = buf[..*len].iter().position(|&b| b == b'\n') {
            return Ok(i + 1);
        }
        let n = stream.read(&mut buf[*len..])?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        *len += n;
    }
}

/// Takes the first line out of the buffer.
fn consume(buf: &mut [u8], len: &mut usize, line: usize) {
    buf.copy_within(line..*len, 0);
    *len -= line;
}

fn real_reply(addr: SocketAddr, request: &[u8]) -> io::Result<Vec<u8>> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(request)?;
    let mut buf = vec![0; 64 * 1024];
    let mut len = 0;
    let n = read_line(&mut s, &mut buf, &mut len)?;
    Ok(buf[..n].to_vec())
}

/// Answers every request line on every connection with `reply`, a thread
/// per connection; the threads end with the process.
fn echo_server(listener: TcpListener, reply: Vec<u8>) {
    for stream in listener.incoming() {
        let Ok(mut s) = stream else { return };
        let reply = reply.clone();
        thread::spawn(move || -> io::Result<()> {
            s.set_nodelay(true)?;
            let mut buf = vec![0; 64 * 1024];
            let mut len = 0;
            loop {
                let line = read_line(&mut s, &mut buf, &mut len)?;
                consume(&mut buf, &mut len, line);
                s.write_all(&reply)?;
            }
        });
    }
}

/// Makes some calls, returning how many.
type Caller = Box<dyn FnMut() -> io::Result<u64>>;

/// One way of making `version` calls, measured in turns with the others.
struct Subject {
    name: &'static str,
    call: Caller,
    /// Calls per second in each slice.
    rates: Vec<f64>,
}

impl Subject {
    /// The median of the slices' rates: a slice that a burst of load from
    /// elsewhere slowed down moves it less than it moves a mean.
    fn rate(&self) -> f64 {
        let mut r = self.rates.clone();
        r.sort_by(f64::total_cmp);
        match r.len() {
            0 => 0.0,
            n if n % 2 == 1 => r[n / 2],
            n => (r[n / 2 - 1] + r[n / 2]) / 2.0,
        }
    }
}

/// A bare client: write the request, read up to the reply's `\n`.
fn bare(addr: SocketAddr, request: Vec<u8>) -> io::Result<Caller> {
    let mut s = TcpStream::connect(addr)?;
    s.set_nodelay(true)?;
    let mut buf = vec![0; 64 * 1024];
    let mut len = 0;
    Ok(Box::new(move || {
        s.write_all(&request)?;
        let line = read_line(&mut s, &mut buf, &mut len)?;
        consume(&mut buf, &mut len, line);
        Ok(1)
    }))
}

fn client(addr: SocketAddr) -> io::Result<ProtocolClient> {
    ProtocolClient::from_stream(TcpStream::connect(addr)?, Some(Duration::from_secs(10)))
        .map_err(io::Error::other)
}

fn one_at_a_time(addr: SocketAddr) -> io::Result<Caller> {
    let mut c = client(addr)?;
    Ok(Box::new(move || {
        c.version().map_err(io::Error::other)?;
        Ok(1)
    }))
}

fn pipelined(addr: SocketAddr) -> io::Result<Caller> {
    let mut c = client(addr)?;
    let mut p = Pipeline::new();
    for _ in 0..PIPELINE_DEPTH {
        p.call("version", &[], &Map::new());
    }
    Ok(Box::new(move || {
        for r in c.call_pipelined(&p, Some(Duration::from_secs(10))) {
            r.map_err(io::Error::other)?;
        }
        Ok(p.len() as u64)
    }))
}

/// Runs each subject for a slice of `total` at a time, in turn, `slices`
/// times; after a warm-up of at least 200 calls each.
fn measure(subjects: &mut [Subject], total: Duration, slices: u32) -> io::Result<()> {
    for s in subjects.iter_mut() {
        let mut warm = 0;
        while warm < 200 {
            warm += (s.call)()?;
        }
    }
    let slice = total / slices;
    for _ in 0..slices {
        for s in subjects.iter_mut() {
            let start = Instant::now();
            let mut calls = 0;
            // Look at the clock only every 64 calls: it is not free either.
            loop {
                let next_look = calls + 64;
                while calls < next_look {
                    calls += (s.call)()?;
                }
                if start.elapsed() >= slice {
                    break;
                }
            }
            s.rates.push(calls as f64 / start.elapsed().as_secs_f64());
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(host), Some(Ok(port)), Some(Ok(seconds))) = (
        args.first(),
        args.get(1).map(|p| p.parse::<u16>()),
        args.get(2).map(|s| s.parse::<f64>()),
    ) else {
        eprintln!("usage: bench_rpc_floor HOST PORT SECONDS");
        return ExitCode::from(2);
    };
    let request = encode_call("version", &[], &Map::new());
    let total = Duration::from_secs_f64(seconds.max(0.01));
    let run = || -> io::Result<(Vec<Subject>, usize)> {
        let real = (host.as_str(), port)
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| io::Error::other("the host has no address"))?;
        let reply = real_reply(real, &request)?;
        let reply_len = reply.len();
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let echo = listener.local_addr()?;
        thread::spawn(move || echo_server(listener, reply));
        let subject = |name, call| Subject {
            name,
            call,
            rates: Vec::new(),
        };
        let mut subjects = vec![
            subject("calls_per_s", bare(echo, request.clone())?),
            subject("client_calls_per_s", one_at_a_time(echo)?),
            subject("server_calls_per_s", bare(real, request.clone())?),
            subject("client_server_calls_per_s", one_at_a_time(real)?),
            subject("pipelined_calls_per_s", pipelined(real)?),
            subject("pipelined_echo_calls_per_s", pipelined(echo)?),
        ];
        measure(&mut subjects, total, SLICES)?;
        Ok((subjects, reply_len))
    };
    match run() {
        Ok((subjects, reply_len)) => {
            for s in &subjects {
                print!("{}={:.0} ", s.name, s.rate());
            }
            println!(
                "pipeline_depth={PIPELINE_DEPTH} request_bytes={} reply_bytes={reply_len}",
                request.len()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bench_rpc_floor: {e}");
            ExitCode::FAILURE
        }
    }
}
