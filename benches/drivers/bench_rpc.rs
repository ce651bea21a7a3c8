//! Measures round trips per second through [`spalloc::ProtocolClient`]:
//! `version` calls, one after another on one connection, for
//! `benches/compare.sh` to set against the Python `ProtocolClient` and
//! against the floor that `bench_rpc_floor` measures.
//!
//! ```text
//! bench_rpc HOST PORT SECONDS
//! ```
//!
//! After a short warm-up, calls `version` for about `SECONDS` and prints
//! `calls_per_s=… calls=…`.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use spalloc::ProtocolClient;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(host), Some(Ok(port)), Some(Ok(seconds))) = (
        args.first(),
        args.get(1).map(|p| p.parse::<u16>()),
        args.get(2).map(|s| s.parse::<f64>()),
    ) else {
        eprintln!("usage: bench_rpc HOST PORT SECONDS");
        return ExitCode::from(2);
    };
    let run = || -> spalloc::Result<(u64, f64)> {
        let mut client = ProtocolClient::connect(host, port, Some(Duration::from_secs(10)))?;
        for _ in 0..200 {
            client.version()?;
        }
        let limit = Duration::from_secs_f64(seconds.max(0.01));
        let start = Instant::now();
        let mut calls = 0u64;
        // Look at the clock only every 64 calls: it is not free either.
        loop {
            for _ in 0..64 {
                client.version()?;
            }
            calls += 64;
            if start.elapsed() >= limit {
                break;
            }
        }
        Ok((calls, start.elapsed().as_secs_f64()))
    };
    match run() {
        Ok((calls, secs)) => {
            println!("calls_per_s={:.0} calls={calls}", calls as f64 / secs);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bench_rpc: {e}");
            ExitCode::FAILURE
        }
    }
}
