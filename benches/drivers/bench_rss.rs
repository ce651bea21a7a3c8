//! Measures the memory a command costs while it runs, counting every
//! process it starts, for `benches/compare.sh`: what holding a job with
//! `spalloc alloc -c 'sleep N'` costs, against the Python `spalloc` and the
//! keepalive process it spawns.
//!
//! ```text
//! bench_rss [--exclude NAME,NAME...] [--every MS] -- COMMAND...
//! ```
//!
//! Starts the command and, until it exits, reads `/proc` every 5 ms to
//! find the command's process tree. `--exclude` names processes (by their
//! `comm`, such as `sh` and `sleep`) whose whole subtree belongs to the
//! user's command rather than to the client, and is left out. Prints
//! `peak_rss_kb=…`, the largest sum of `VmRSS` seen at one instant;
//! `sum_hwm_kb=…`, the sum over processes of each one's own peak
//! (`VmHWM`), an upper bound that sampling cannot miss; and the processes
//! counted, with their peaks; and `cpu_ms=…`, the CPU time (user and
//! system) those processes used, as last seen, and `elapsed_s=…`, how long
//! the command ran. `--every MS` samples every `MS` milliseconds instead of
//! 5 (for commands that run for minutes). Linux only.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::process::{Command, ExitCode, Stdio};
use std::thread;
use std::time::Duration;

#[derive(Debug, Default)]
struct Proc {
    comm: String,
    ppid: u32,
    rss_kb: u64,
    hwm_kb: u64,
    /// User and system time, in clock ticks.
    cpu_ticks: u64,
}

fn read_proc(pid: u32) -> Option<Proc> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `comm` is in parentheses and may itself contain spaces or ')'.
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat[open + 1..close].to_owned();
    let fields: Vec<&str> = stat.get(close + 2..)?.split(' ').collect();
    let ppid = fields.get(1)?.parse().ok()?;
    // utime and stime: fields 14 and 15 of the line, 12 and 13 after `comm`.
    let cpu_ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Some(Proc {
        comm,
        ppid,
        rss_kb: field("VmRSS:"),
        hwm_kb: field("VmHWM:"),
        cpu_ticks,
    })
}

/// The processes of the tree rooted at `root`, without excluded subtrees;
/// the roots of those subtrees are added to `excluded`.
fn tree(root: u32, exclude: &HashSet<String>, excluded: &mut HashSet<u32>) -> HashMap<u32, Proc> {
    let mut all: HashMap<u32, Proc> = HashMap::new();
    if let Ok(dir) = fs::read_dir("/proc") {
        for entry in dir.flatten() {
            if let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok())
                && let Some(p) = read_proc(pid)
            {
                all.insert(pid, p);
            }
        }
    }
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for (&pid, p) in &all {
        children.entry(p.ppid).or_default().push(pid);
    }
    let mut out = HashMap::new();
    let mut todo = vec![root];
    while let Some(pid) = todo.pop() {
        let Some(p) = all.remove(&pid) else { continue };
        if pid != root && exclude.contains(&p.comm) {
            excluded.insert(pid);
            continue;
        }
        todo.extend(children.get(&pid).into_iter().flatten());
        out.insert(pid, p);
    }
    out
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (exclude, every, command) = match args.iter().position(|a| a == "--") {
        Some(i) => {
            let mut exclude = HashSet::new();
            let mut every = Duration::from_millis(5);
            let mut opts = args[..i].iter();
            while let Some(o) = opts.next() {
                match (o.as_str(), opts.next()) {
                    ("--exclude", Some(names)) => {
                        exclude.extend(names.split(',').map(str::to_owned));
                    }
                    ("--every", Some(ms)) if ms.parse::<u64>().is_ok_and(|ms| ms > 0) => {
                        every = Duration::from_millis(ms.parse().unwrap_or(5));
                    }
                    _ => {
                        eprintln!("bench_rss: unknown option {o}");
                        return ExitCode::from(2);
                    }
                }
            }
            (exclude, every, &args[i + 1..])
        }
        None => (HashSet::new(), Duration::from_millis(5), &args[..]),
    };
    if command.is_empty() {
        eprintln!("usage: bench_rss [--exclude NAME,NAME...] [--every MS] -- COMMAND...");
        return ExitCode::from(2);
    }
    let mut child = match Command::new(&command[0])
        .args(&command[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("bench_rss: {}: {e}", command[0]);
            return ExitCode::FAILURE;
        }
    };
    let root = child.id();
    let started = std::time::Instant::now();
    let mut peak_sum = 0;
    // Each process's latest figures, kept after it exits.
    let mut seen: BTreeMap<u32, Proc> = BTreeMap::new();
    // Between fork and exec, the command's shell still carries the client's
    // name: once it shows its own, forget what it was counted as before.
    let mut excluded = HashSet::new();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(e) => {
                eprintln!("bench_rss: {e}");
                return ExitCode::FAILURE;
            }
        }
        let now = tree(root, &exclude, &mut excluded);
        peak_sum = peak_sum.max(now.values().map(|p| p.rss_kb).sum());
        for (pid, p) in now {
            // A process that has exited reads as zero: keep what it had.
            if p.hwm_kb > 0 {
                seen.insert(pid, p);
            }
        }
        thread::sleep(every);
    };
    let elapsed = started.elapsed().as_secs_f64();
    if !status.success() {
        eprintln!("bench_rss: the command failed: {status}");
        return ExitCode::FAILURE;
    }
    seen.retain(|pid, _| !excluded.contains(pid));
    let sum_hwm: u64 = seen.values().map(|p| p.hwm_kb).sum();
    // Clock ticks are 100 a second on Linux.
    let cpu_ms: u64 = seen.values().map(|p| p.cpu_ticks * 10).sum();
    let procs: Vec<String> = seen
        .values()
        .map(|p| format!("{}:{}", p.comm, p.hwm_kb))
        .collect();
    println!(
        "peak_rss_kb={peak_sum} sum_hwm_kb={sum_hwm} cpu_ms={cpu_ms} elapsed_s={elapsed:.1} processes={}",
        procs.join(",")
    );
    ExitCode::SUCCESS
}
