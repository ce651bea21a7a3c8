//! Measures the whole life of a [`spalloc::Job`] as a test harness sees it:
//! create a one-board job, wait until it is ready, destroy it; for
//! `benches/compare.sh` to set against the Python `Job`. Run it against a
//! server whose power delay is zero, or it measures the delay.
//!
//! ```text
//! bench_lifecycle HOST PORT COUNT
//! ```
//!
//! Prints `median_ms=… min_ms=… max_ms=… count=…` over `COUNT` lives, after
//! one to warm up.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use spalloc::{Job, JobOptions, JobRequest};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(host), Some(Ok(port)), Some(Ok(count))) = (
        args.first(),
        args.get(1).map(|p| p.parse::<u16>()),
        args.get(2).map(|n| n.parse::<usize>()),
    ) else {
        eprintln!("usage: bench_lifecycle HOST PORT COUNT");
        return ExitCode::from(2);
    };
    // Only what is given here: no configuration files are read.
    let options = JobOptions::new()
        .hostname(host.as_str())
        .port(port)
        .owner("bench-lifecycle")
        .keepalive(Some(Duration::from_secs(60)))
        .timeout(Some(Duration::from_secs(10)));
    let life = || -> spalloc::Result<f64> {
        let start = Instant::now();
        let mut job = Job::create(JobRequest::AnyBoard, &options)?;
        job.wait_until_ready(Some(Duration::from_secs(10)))?;
        job.destroy(None)?;
        Ok(start.elapsed().as_secs_f64() * 1e3)
    };
    let mut times = Vec::with_capacity(count);
    let result = (|| -> spalloc::Result<()> {
        life()?;
        for _ in 0..count.max(1) {
            times.push(life()?);
        }
        Ok(())
    })();
    if let Err(e) = result {
        eprintln!("bench_lifecycle: {e}");
        return ExitCode::FAILURE;
    }
    times.sort_by(f64::total_cmp);
    let n = times.len();
    let median = if n % 2 == 1 {
        times[n / 2]
    } else {
        (times[n / 2 - 1] + times[n / 2]) / 2.0
    };
    println!(
        "median_ms={median:.3} min_ms={:.3} max_ms={:.3} count={n}",
        times[0],
        times[n - 1]
    );
    ExitCode::SUCCESS
}
