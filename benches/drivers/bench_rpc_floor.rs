//! Measures the floor for `bench_rpc`: the fastest a client and a server on
//! this machine can exchange the very bytes of a `version` call over
//! loopback TCP, with no JSON, no buffering beyond one read and no
//! bookkeeping on either side.
//!
//! ```text
//! bench_rpc_floor HOST PORT SECONDS
//! ```
//!
//! First asks the real server at `HOST:PORT` for its reply to the request
//! [`spalloc::protocol::encode_call`] produces for `version`, and keeps
//! that reply's exact bytes. Then starts a trivial server thread on a free
//! loopback port that answers every request line with those bytes, and a
//! client that sends the request and reads until the reply's `\n`, in a
//! loop, for about `SECONDS`: that rate is the floor. Last, the same bare
//! client runs against the real server for as long, which shows how much
//! of the gap between the floor and a real client is the server's.
//!
//! Prints `calls_per_s=… server_calls_per_s=… request_bytes=…
//! reply_bytes=…`.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};

use spalloc::Map;
use spalloc::protocol::encode_call;

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

fn real_reply(host: &str, port: u16, request: &[u8]) -> io::Result<Vec<u8>> {
    let mut s = TcpStream::connect((host, port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(request)?;
    let mut buf = vec![0; 64 * 1024];
    let mut len = 0;
    let n = read_line(&mut s, &mut buf, &mut len)?;
    Ok(buf[..n].to_vec())
}

fn echo_server(listener: TcpListener, reply: Vec<u8>) -> io::Result<()> {
    let (mut s, _) = listener.accept()?;
    s.set_nodelay(true)?;
    let mut buf = vec![0; 64 * 1024];
    let mut len = 0;
    loop {
        let line = match read_line(&mut s, &mut buf, &mut len) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        };
        consume(&mut buf, &mut len, line);
        s.write_all(&reply)?;
    }
}

/// Round trips per second of `request` on `s`, over about `limit` after a
/// warm-up.
fn rate(s: &mut TcpStream, request: &[u8], limit: Duration) -> io::Result<f64> {
    s.set_nodelay(true)?;
    let mut buf = vec![0; 64 * 1024];
    let mut len = 0;
    let mut call = |s: &mut TcpStream| -> io::Result<()> {
        s.write_all(request)?;
        let line = read_line(s, &mut buf, &mut len)?;
        consume(&mut buf, &mut len, line);
        Ok(())
    };
    for _ in 0..200 {
        call(s)?;
    }
    let start = Instant::now();
    let mut calls = 0u64;
    loop {
        for _ in 0..64 {
            call(s)?;
        }
        calls += 64;
        if start.elapsed() >= limit {
            break;
        }
    }
    Ok(calls as f64 / start.elapsed().as_secs_f64())
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
    let limit = Duration::from_secs_f64(seconds.max(0.01));
    let run = || -> io::Result<(f64, f64, usize)> {
        let reply = real_reply(host, port, &request)?;
        let reply_len = reply.len();
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let server = thread::spawn(move || echo_server(listener, reply));
        let mut s = TcpStream::connect(addr)?;
        let floor = rate(&mut s, &request, limit)?;
        drop(s);
        server
            .join()
            .map_err(|_| io::Error::other("the echo server panicked"))??;
        let mut s = TcpStream::connect((host.as_str(), port))?;
        let real = rate(&mut s, &request, limit)?;
        Ok((floor, real, reply_len))
    };
    match run() {
        Ok((floor, real, reply_len)) => {
            println!(
                "calls_per_s={floor:.0} server_calls_per_s={real:.0} request_bytes={} reply_bytes={reply_len}",
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
