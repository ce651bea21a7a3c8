//! Fills a spalloc server with live single-board jobs that never expire,
//! for `benches/compare.sh`: the scene in which `spalloc ps` and
//! `spalloc machine` are timed.
//!
//! ```text
//! bench_fill HOST PORT COUNT [OWNER]
//! ```
//!
//! Prints how long the `COUNT` `create_job` calls took on one connection.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use spalloc::{CreateJobOptions, JobRequest, ProtocolClient};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(host), Some(Ok(port)), Some(Ok(count))) = (
        args.first(),
        args.get(1).map(|p| p.parse::<u16>()),
        args.get(2).map(|n| n.parse::<u32>()),
    ) else {
        eprintln!("usage: bench_fill HOST PORT COUNT [OWNER]");
        return ExitCode::from(2);
    };
    let owner = args.get(3).map_or("bench-fill", String::as_str);
    let mut options = CreateJobOptions::new(owner);
    options.keepalive = None;
    let start = Instant::now();
    let result = (|| -> spalloc::Result<()> {
        let mut client = ProtocolClient::connect(host, port, Some(Duration::from_secs(30)))?;
        for _ in 0..count {
            client.create_job(&JobRequest::AnyBoard, &options)?;
        }
        Ok(())
    })();
    match result {
        Ok(()) => {
            println!(
                "created {count} jobs in {:.1} ms",
                start.elapsed().as_secs_f64() * 1e3
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bench_fill: {e}");
            ExitCode::FAILURE
        }
    }
}
