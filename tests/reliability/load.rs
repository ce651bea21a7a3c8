//! Load: 100 concurrent clients creating, keeping alive and destroying jobs
//! on a 1200-board machine (20 x 20 triads) served by a `spalloc serve`
//! process, for `SPALLOC_LOAD_SECS` seconds (12 by default; set it to,
//! say, 600 for a soak run).
//!
//! Checked throughout: no board is ever in two live jobs (in any
//! `list_jobs` snapshot), job ids are handed out once each with none
//! skipped, every job kept alive is still alive when its client destroys
//! it, and the server's resident memory stays bounded.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::json;
use spalloc::{CreateJobOptions, JobRequest, JobState, Number, ProtocolClient};

use super::record;
use crate::support::cli::{Running, Sandbox};

const CLIENTS: u64 = 100;
const KEEPALIVE: f64 = 1.5;

const CONFIG: &str = "\
[server]
ip = \"127.0.0.1\"
timeout_check_interval = 0.1
power_delay = 0.05
seconds_before_free = 0.0

[[machine]]
name = \"big\"
width = 20
height = 20
";

fn load_secs() -> u64 {
    std::env::var("SPALLOC_LOAD_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(12)
}

fn serve(sb: &Sandbox) -> (Running, u16) {
    let config = sb.cwd().join("big.toml");
    std::fs::write(&config, CONFIG).expect("write config");
    let config = config.display().to_string();
    let running = sb.spawn(&["serve", "--config", &config, "--port", "0"]);
    let line = running.wait_for_stdout_line("listening on", Duration::from_secs(20));
    let port = line
        .as_deref()
        .and_then(|l| l.strip_prefix("spalloc virtual server listening on "))
        .and_then(|a| a.rsplit(':').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no port: {}", running.stderr()));
    (running, port)
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// A small deterministic generator, so each client varies its requests.
struct Rng(u64);

impl Rng {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[derive(Default)]
struct Tally {
    ids: Vec<u64>,
    errors: Vec<String>,
    destroyed: u64,
}

fn client(port: u16, seed: u64, end: Instant, tally: &Mutex<Tally>) {
    let fail = |m: String| {
        tally
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .errors
            .push(m)
    };
    let mut c = match ProtocolClient::connect("127.0.0.1", port, Some(Duration::from_secs(10))) {
        Ok(c) => c,
        Err(e) => return fail(format!("client {seed}: connect: {e}")),
    };
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut options = CreateJobOptions::new(format!("load-{seed}"));
    options.keepalive = Some(Number::Float(KEEPALIVE));
    while Instant::now() < end {
        let request = match rng.next(4) {
            0 => JobRequest::AnyBoard,
            1 => JobRequest::Boards(1 + rng.next(24) as u32),
            2 => JobRequest::Triads {
                width: 1 + rng.next(4) as u32,
                height: 1 + rng.next(4) as u32,
            },
            _ => JobRequest::Boards(3),
        };
        let id = match c.create_job(&request, &options) {
            Ok(id) => id,
            Err(e) => return fail(format!("client {seed}: create_job: {e}")),
        };
        tally
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .ids
            .push(id);
        let hold_until = Instant::now() + Duration::from_millis(100 + rng.next(1400));
        while Instant::now() < hold_until {
            if let Err(e) = c.job_keepalive(id) {
                return fail(format!("client {seed}: keepalive {id}: {e}"));
            }
            thread::sleep(
                Duration::from_millis(300).min(hold_until - Instant::now().min(hold_until)),
            );
        }
        match c.get_job_state(id) {
            Ok(s)
                if matches!(
                    s.state,
                    JobState::Queued | JobState::Power | JobState::Ready
                ) => {}
            Ok(s) => fail(format!(
                "client {seed}: job {id} lost while kept alive: {s:?}"
            )),
            Err(e) => return fail(format!("client {seed}: get_job_state {id}: {e}")),
        }
        if rng.next(3) == 0
            && let Err(e) = c.get_job_machine_info(id)
        {
            return fail(format!("client {seed}: machine info {id}: {e}"));
        }
        if let Err(e) = c.destroy_job(id, Some("load test")) {
            return fail(format!("client {seed}: destroy {id}: {e}"));
        }
        match c.get_job_state(id) {
            Ok(s)
                if s.state == JobState::Destroyed
                    && s.reason
                        .as_deref()
                        .is_some_and(|r| r.ends_with("load test")) => {}
            other => fail(format!("client {seed}: job {id} after destroy: {other:?}")),
        }
        tally
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .destroyed += 1;
    }
}

#[test]
fn a_hundred_clients_on_a_1200_board_machine() {
    let secs = load_secs();
    let sb = Sandbox::new();
    let (server, port) = serve(&sb);
    let pid = server.pid();
    let end = Instant::now() + Duration::from_secs(secs);
    let tally = Mutex::new(Tally::default());
    let running = AtomicBool::new(true);
    let mut overlaps: Vec<String> = Vec::new();
    let mut snapshots = 0u64;
    let mut most_live = 0usize;
    let mut most_boards = 0usize;
    let mut most_queued = 0usize;
    let mut rss: Vec<u64> = Vec::new();

    thread::scope(|s| {
        let clients: Vec<_> = (0..CLIENTS)
            .map(|i| {
                let tally = &tally;
                s.spawn(move || client(port, i + 1, end, tally))
            })
            .collect();
        let memory = s.spawn(|| {
            let mut samples = Vec::new();
            while running.load(Ordering::SeqCst) {
                if let Some(k) = rss_kib(pid) {
                    samples.push(k);
                }
                thread::sleep(Duration::from_millis(250));
            }
            samples
        });
        // Snapshots: no board in two live jobs, no id listed twice.
        let mut watcher = ProtocolClient::connect("127.0.0.1", port, Some(Duration::from_secs(10)))
            .expect("connect the watcher");
        while Instant::now() < end {
            let jobs = watcher.list_jobs().expect("list_jobs");
            snapshots += 1;
            most_live = most_live.max(jobs.len());
            most_queued =
                most_queued.max(jobs.iter().filter(|j| j.state == JobState::Queued).count());
            let mut owner_of = BTreeMap::new();
            let mut ids = HashSet::new();
            for j in &jobs {
                if !ids.insert(j.job_id) {
                    overlaps.push(format!("job {} listed twice", j.job_id));
                }
                for b in &j.boards {
                    if let Some(other) = owner_of.insert(*b, j.job_id) {
                        overlaps.push(format!("board {b:?} in jobs {other} and {}", j.job_id));
                    }
                }
            }
            most_boards = most_boards.max(owner_of.len());
            thread::sleep(Duration::from_millis(100));
        }
        for c in clients {
            if c.join().is_err() {
                tally
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .errors
                    .push("a client panicked".into());
            }
        }
        running.store(false, Ordering::SeqCst);
        rss = memory.join().unwrap_or_default();
    });

    let tally = tally.into_inner().unwrap_or_else(PoisonError::into_inner);
    let mut ids = tally.ids.clone();
    ids.sort_unstable();
    let unique = ids.windows(2).all(|w| w[0] != w[1]);
    let contiguous = ids.first() == Some(&1) && ids.last() == Some(&(ids.len() as u64));
    let left = ProtocolClient::connect("127.0.0.1", port, Some(Duration::from_secs(10)))
        .and_then(|mut c| c.list_jobs())
        .map(|j| j.len())
        .ok();
    // Memory: after the first quarter (warm-up), resident memory may not
    // keep growing: the last sample is within 50% (+16 MiB) of the
    // quarter-way sample, and the peak stays under 256 MiB.
    let quarter = rss.get(rss.len() / 4).copied().unwrap_or(0);
    let last = rss.last().copied().unwrap_or(0);
    let peak = rss.iter().max().copied().unwrap_or(0);
    let memory_ok = !rss.is_empty() && last <= quarter * 3 / 2 + 16 * 1024 && peak < 256 * 1024;
    server.signal(15);
    let out = server.finish(Duration::from_secs(20));

    let ok = tally.errors.is_empty()
        && overlaps.is_empty()
        && unique
        && contiguous
        && left == Some(0)
        && memory_ok
        && out.code == Some(0);
    record(
        "load",
        json!({"case": format!("{CLIENTS} clients for {secs} s on 20x20 triads (1200 boards), keepalive {KEEPALIVE} s"),
               "outcome": if ok { "pass" } else { "fail" },
               "detail": {"jobs created": ids.len(), "jobs destroyed by their clients": tally.destroyed,
                          "list_jobs snapshots checked": snapshots, "most live jobs": most_live,
                          "most boards in use": most_boards, "most jobs queued": most_queued, "double allocations": overlaps.len(),
                          "ids unique and contiguous": unique && contiguous,
                          "errors": tally.errors.len(),
                          "server RSS MiB (quarter-way, end, peak)": [quarter / 1024, last / 1024, peak / 1024]}}),
    );
    assert!(tally.errors.is_empty(), "{:#?}", tally.errors);
    assert!(overlaps.is_empty(), "{overlaps:#?}");
    assert!(
        unique && contiguous,
        "ids {:?}..{:?} of {}",
        ids.first(),
        ids.last(),
        ids.len()
    );
    assert_eq!(left, Some(0), "jobs left on the server");
    assert!(memory_ok, "RSS samples (KiB): {rss:?}");
    assert_eq!(out.code, Some(0), "{out:?}");
}
