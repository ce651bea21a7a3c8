//! Measures the wall-clock time of whole commands, for `benches/compare.sh`:
//! how long `spalloc ps` takes from exec to exit, against `spalloc-ps`.
//!
//! ```text
//! bench_wall RUNS LABEL -- COMMAND... [:: LABEL -- COMMAND...]...
//! ```
//!
//! Runs each command once to warm the page cache, then `RUNS` times in
//! turn (A, B, A, B, …), so that a burst of load from elsewhere lands on
//! both rather than on one. Output goes to `/dev/null`. Prints one line per
//! command: `LABEL median_ms=… min_ms=… max_ms=… runs=…`. A command that
//! fails stops the measurement with its exit status.

use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

struct Subject {
    label: String,
    argv: Vec<String>,
    times_ms: Vec<f64>,
}

fn run_once(s: &Subject) -> Result<f64, String> {
    let start = Instant::now();
    let status = Command::new(&s.argv[0])
        .args(&s.argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .map_err(|e| format!("{}: {e}", s.argv[0]))?;
    let elapsed = start.elapsed().as_secs_f64() * 1e3;
    if status.success() {
        Ok(elapsed)
    } else {
        Err(format!("{} failed: {status}", s.label))
    }
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

fn parse(args: &[String]) -> Option<(usize, Vec<Subject>)> {
    let runs: usize = args.first()?.parse().ok().filter(|&n| n > 0)?;
    let mut subjects = Vec::new();
    for part in args[1..].split(|a| a == "::") {
        match part {
            [label, sep, argv @ ..] if sep == "--" && !argv.is_empty() => subjects.push(Subject {
                label: label.clone(),
                argv: argv.to_vec(),
                times_ms: Vec::new(),
            }),
            _ => return None,
        }
    }
    Some((runs, subjects))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((runs, mut subjects)) = parse(&args) else {
        eprintln!("usage: bench_wall RUNS LABEL -- COMMAND... [:: LABEL -- COMMAND...]...");
        return ExitCode::from(2);
    };
    let result = (|| -> Result<(), String> {
        for s in &subjects {
            run_once(s)?;
        }
        for _ in 0..runs {
            for s in &mut subjects {
                let t = run_once(s)?;
                s.times_ms.push(t);
            }
        }
        Ok(())
    })();
    if let Err(e) = result {
        eprintln!("bench_wall: {e}");
        return ExitCode::FAILURE;
    }
    for s in &mut subjects {
        let n = s.times_ms.len();
        let m = median(&mut s.times_ms);
        println!(
            "{} median_ms={m:.3} min_ms={:.3} max_ms={:.3} runs={n}",
            s.label,
            s.times_ms[0],
            s.times_ms[n - 1]
        );
    }
    ExitCode::SUCCESS
}
