//! Measures the v2 side of the library and of `spalloc serve`, for
//! `benches/compare.sh`. Every mode talks HTTPS to a v2 service whose CA
//! is in the file `CA`, as the user `USER` with the password in the
//! environment variable `SPALLOC_PASSWORD` (never on the command line).
//!
//! ```text
//! bench_v2 lifecycle URL CA USER COUNT
//! bench_v2 load      URL CA USER CLIENTS SECONDS SERVER_PID
//! bench_v2 waiters   URL CA TOKEN WAITERS SECONDS SERVER_PID
//! bench_v2 proxy     URL CA USER SECONDS SPALLOC
//! ```
//!
//! * `lifecycle`: the whole life of a [`spalloc::Job`] over v2, create a
//!   one-board job, wait until it is ready, destroy it; prints
//!   `median_ms=… min_ms=… max_ms=… count=…` over `COUNT` lives after one
//!   to warm up (which logs in).
//! * `load`: `CLIENTS` threads, each logged in with a session of its own,
//!   create a one-board job, describe it, keep it alive and delete it, over
//!   and over for `SECONDS`. Prints each operation's median and 99th
//!   percentile round trip (`create_us=… create_p99_us=…`, likewise
//!   `describe`, `keepalive`, `delete`), the requests per second, and the
//!   server's CPU time per request (`server_cpu_us_per_request=…`, read
//!   from `/proc/SERVER_PID/stat` before and after; logging in is left
//!   out).
//! * `waiters`: creates a job, parks `WAITERS` long-polls on it (`GET
//!   jobs/ID?wait=true`, each on a connection of its own, sent with the
//!   bearer token `TOKEN`), measures
//!   the server's CPU time over `SECONDS` of quiet with them parked and
//!   over `SECONDS` of quiet before (`idle_cpu_ms=… parked_cpu_ms=…`;
//!   measured once the server's CPU time has stood still for a second,
//!   as it does when every request is read and parked, `settled_s=…`
//!   after they were sent),
//!   then deletes the job and reports how long it took until
//!   every waiter had its answer (`wake_all_ms=…`). The server's wait
//!   limit must exceed `SECONDS`. Linux only (it reads `/proc`).
//! * `proxy`: creates a one-board job, waits until it is ready, and runs
//!   the real tool `SPALLOC proxy JOB -H URL --json` (in a directory of
//!   its own whose `.spalloc` names the CA, as `SPALLOC_USER` = `USER`)
//!   as a child; then sends SCP version requests (`CMD_VER`) to the local
//!   port it gives the board, and the same requests to a responder in
//!   this process on 127.0.0.1 that answers each with a reply of the
//!   board's shape and size ("direct UDP to a board on this machine": the
//!   virtual boards answer only the proxy's own sockets, as the real ones
//!   sit behind a firewall). Each is measured two ways, taking turns in
//!   four slices: one request at a time (the median and 99th percentile
//!   round trip, `proxy_rtt_us=… proxy_rtt_p99_us=…`, likewise `direct`),
//!   and with a window of requests outstanding (`proxy_dps=…
//!   direct_dps=…`, replies per second, `window=…`), each for `SECONDS` in
//!   all. UDP may lose datagrams: every read is bounded, a request not
//!   answered within 200 ms counts as lost (`proxy_lost=…`) and frees its
//!   place in the window. Ends by stopping the proxy (SIGTERM; its exit
//!   status must be 0) and destroying the job, on every path.

use std::process::ExitCode;
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use spalloc::v2::{RestClient, V2Settings};
use spalloc::{CreateJobOptions, Job, JobOptions, JobRequest, Number};

const TIMEOUT: Option<Duration> = Some(Duration::from_secs(30));

#[path = "bench_v2_proxy.rs"]
mod proxy;

fn usage() -> ExitCode {
    eprintln!(
        "usage: bench_v2 lifecycle URL CA USER COUNT\n       \
         bench_v2 load URL CA USER CLIENTS SECONDS SERVER_PID\n       \
         bench_v2 waiters URL CA TOKEN WAITERS SECONDS SERVER_PID\n       \
         bench_v2 proxy URL CA USER SECONDS SPALLOC"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).map(String::as_str);
    let num = |i: usize| arg(i).and_then(|s| s.parse::<f64>().ok());
    let result = match (arg(0), arg(1), arg(2), arg(3)) {
        (Some("lifecycle"), Some(url), Some(ca), Some(user)) => match num(4) {
            Some(n) => lifecycle(url, &password(ca, user), n as usize),
            None => return usage(),
        },
        (Some("load"), Some(url), Some(ca), Some(user)) => match (num(4), num(5), num(6)) {
            (Some(c), Some(s), Some(pid)) => load(
                url,
                &password(ca, user),
                c as usize,
                Duration::from_secs_f64(s),
                pid as u32,
            ),
            _ => return usage(),
        },
        (Some("waiters"), Some(url), Some(ca), Some(token)) => match (num(4), num(5), num(6)) {
            (Some(w), Some(s), Some(pid)) => {
                let settings = V2Settings::default().ca_file(ca).token(token);
                waiters(
                    url,
                    &settings,
                    w as usize,
                    Duration::from_secs_f64(s),
                    pid as u32,
                )
            }
            _ => return usage(),
        },
        (Some("proxy"), Some(url), Some(ca), Some(user)) => match (num(4), arg(5)) {
            (Some(s), Some(spalloc)) if s > 0.0 => proxy::run(
                url,
                &password(ca, user),
                ca,
                user,
                Duration::from_secs_f64(s),
                spalloc,
            ),
            _ => return usage(),
        },
        _ => return usage(),
    };
    match result {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bench_v2: {e}");
            ExitCode::FAILURE
        }
    }
}

fn password(ca: &str, user: &str) -> V2Settings {
    let password = std::env::var("SPALLOC_PASSWORD").unwrap_or_default();
    V2Settings::default().ca_file(ca).login(user, password)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

fn lifecycle(url: &str, settings: &V2Settings, count: usize) -> spalloc::Result<String> {
    let options = JobOptions::new()
        .hostname(url)
        .v2(settings.clone())
        .keepalive(Some(Duration::from_secs(60)))
        .timeout(TIMEOUT);
    let life = || -> spalloc::Result<f64> {
        let start = Instant::now();
        let mut job = Job::create(JobRequest::AnyBoard, &options)?;
        job.wait_until_ready(Some(Duration::from_secs(10)))?;
        job.destroy(None)?;
        Ok(start.elapsed().as_secs_f64() * 1e3)
    };
    life()?;
    let mut times = Vec::with_capacity(count);
    for _ in 0..count.max(1) {
        times.push(life()?);
    }
    times.sort_by(f64::total_cmp);
    Ok(format!(
        "median_ms={:.3} min_ms={:.3} max_ms={:.3} count={}",
        percentile(&times, 0.5),
        times[0],
        times[times.len() - 1],
        times.len()
    ))
}

/// The CPU time (user and system) a process has used, from `/proc`.
fn cpu_time(pid: u32) -> spalloc::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after = stat.rfind(')').map_or("", |i| &stat[i + 2..]);
    let fields: Vec<&str> = after.split(' ').collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after
    // the command name; in clock ticks, 100 a second on Linux.
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok());
    match (ticks(11), ticks(12)) {
        (Some(u), Some(s)) => Ok(Duration::from_millis((u + s) * 10)),
        _ => Err(std::io::Error::other(format!("unreadable /proc/{pid}/stat")).into()),
    }
}

fn load(
    url: &str,
    settings: &V2Settings,
    clients: usize,
    seconds: Duration,
    server: u32,
) -> spalloc::Result<String> {
    // Four lists of round trips, one per operation, from every client.
    type Times = [Vec<f64>; 4];
    let times: Arc<Mutex<Times>> = Arc::default();
    let ready = Arc::new(Barrier::new(clients + 1));
    let start = Arc::new(Barrier::new(clients + 1));
    let deadline: Arc<Mutex<Option<Instant>>> = Arc::default();
    let mut threads = Vec::new();
    for i in 0..clients {
        let (url, settings) = (url.to_owned(), settings.clone());
        let (times, ready, start, deadline) = (
            times.clone(),
            ready.clone(),
            start.clone(),
            deadline.clone(),
        );
        threads.push(thread::spawn(move || -> spalloc::Result<()> {
            let connected = RestClient::connect(&url, &settings, TIMEOUT, None);
            ready.wait();
            start.wait();
            let mut client = connected?;
            let end = deadline
                .lock()
                .ok()
                .and_then(|d| *d)
                .unwrap_or_else(Instant::now);
            let mut options = CreateJobOptions::new(format!("load-{i}"));
            options.keepalive = Some(Number::Float(60.0));
            let mut mine: Times = Default::default();
            let timed = |f: &mut dyn FnMut() -> spalloc::Result<()>,
                         into: &mut Vec<f64>|
             -> spalloc::Result<()> {
                let t = Instant::now();
                f()?;
                into.push(t.elapsed().as_secs_f64() * 1e6);
                Ok(())
            };
            while Instant::now() < end {
                let mut id = 0;
                let [create, describe, keepalive, delete] = &mut mine;
                timed(
                    &mut || {
                        id = client.create_job(&JobRequest::AnyBoard, &options)?;
                        Ok(())
                    },
                    create,
                )?;
                timed(&mut || client.job(id).map(drop), describe)?;
                timed(&mut || client.keepalive(id), keepalive)?;
                timed(&mut || client.delete_job(id, None), delete)?;
            }
            if let Ok(mut all) = times.lock() {
                for (a, m) in all.iter_mut().zip(mine) {
                    a.extend(m);
                }
            }
            Ok(())
        }));
    }
    // Everyone has logged in (or failed to) before the clock starts.
    ready.wait();
    if let Ok(mut d) = deadline.lock() {
        *d = Some(Instant::now() + seconds);
    }
    let cpu_before = cpu_time(server)?;
    let began = Instant::now();
    start.wait();
    let mut failure = None;
    for t in threads {
        match t.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failure = Some(e),
            Err(_) => failure = Some(std::io::Error::other("a client panicked").into()),
        }
    }
    let elapsed = began.elapsed().as_secs_f64();
    let cpu = cpu_time(server)?.saturating_sub(cpu_before);
    if let Some(e) = failure {
        return Err(e);
    }
    let mut all = match Arc::try_unwrap(times).map(Mutex::into_inner) {
        Ok(Ok(all)) => all,
        _ => return Err(std::io::Error::other("the clients' figures are lost").into()),
    };
    let requests: usize = all.iter().map(Vec::len).sum();
    let mut out = String::new();
    for (name, t) in ["create", "describe", "keepalive", "delete"]
        .iter()
        .zip(all.iter_mut())
    {
        t.sort_by(f64::total_cmp);
        out.push_str(&format!(
            "{name}_us={:.0} {name}_p99_us={:.0} ",
            percentile(t, 0.5),
            percentile(t, 0.99)
        ));
    }
    out.push_str(&format!(
        "requests={requests} requests_per_s={:.0} server_cpu_us_per_request={:.1} clients={clients}",
        requests as f64 / elapsed,
        cpu.as_secs_f64() * 1e6 / requests.max(1) as f64
    ));
    Ok(out)
}

/// How many threads a process has.
fn threads_of(pid: u32) -> usize {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}

fn waiters(
    url: &str,
    settings: &V2Settings,
    count: usize,
    seconds: Duration,
    server: u32,
) -> spalloc::Result<String> {
    // Quiet, before: what the server spends with nothing to do.
    let before = cpu_time(server)?;
    thread::sleep(seconds);
    let idle = cpu_time(server)?.saturating_sub(before);
    let threads_idle = threads_of(server);

    let mut client = RestClient::connect(url, settings, TIMEOUT, None)?;
    let mut options = CreateJobOptions::new("waker");
    options.keepalive = Some(Number::Float(300.0));
    let id = client.create_job(&JobRequest::AnyBoard, &options)?;
    let connected = Arc::new(Barrier::new(count + 1));
    let answered: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let mut threads = Vec::new();
    for _ in 0..count {
        let (url, settings) = (url.to_owned(), settings.clone());
        let (connected, answered) = (connected.clone(), answered.clone());
        threads.push(thread::spawn(move || -> spalloc::Result<bool> {
            let client = RestClient::connect(&url, &settings, TIMEOUT, None);
            connected.wait();
            let woken = client?.wait_for_job(id, TIMEOUT)?.is_some();
            if let Ok(mut a) = answered.lock() {
                a.push(Instant::now());
            }
            Ok(woken)
        }));
    }
    connected.wait();
    // Each parked request holds a connection thread in the server: wait
    // until all of them are there (bounded), then measure.
    let parking = Instant::now();
    while threads_of(server) < threads_idle + count {
        if parking.elapsed() > Duration::from_secs(60) {
            return Err(std::io::Error::other(format!(
                "only {} of {count} waiters reached the server",
                threads_of(server).saturating_sub(threads_idle)
            ))
            .into());
        }
        // Polls: another process's thread count has no event to wait on.
        thread::sleep(Duration::from_millis(20));
    }
    // A thread exists from the accept on, before its TLS handshake and
    // request are read: the requests are parked once the server's CPU
    // time stops moving for a second (bounded).
    let mut last = cpu_time(server)?;
    loop {
        thread::sleep(Duration::from_secs(1));
        let now = cpu_time(server)?;
        if now == last {
            break;
        }
        if parking.elapsed() > Duration::from_secs(120) {
            return Err(std::io::Error::other("the server never went quiet").into());
        }
        last = now;
    }
    let settled = parking.elapsed();
    let before = cpu_time(server)?;
    thread::sleep(seconds);
    let parked = cpu_time(server)?.saturating_sub(before);
    let early = answered.lock().map_or(0, |a| a.len());

    // A change wakes every waiter.
    let changed = Instant::now();
    client.delete_job(id, None)?;
    let mut woken = 0;
    for t in threads {
        match t.join() {
            Ok(Ok(true)) => woken += 1,
            Ok(Ok(false)) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(std::io::Error::other("a waiter panicked").into()),
        }
    }
    let last = answered
        .lock()
        .ok()
        .and_then(|a| a.iter().max().copied())
        .unwrap_or(changed);
    Ok(format!(
        "idle_cpu_ms={} parked_cpu_ms={} seconds={:.1} waiters={count} answered_early={early} \
         woken={woken} wake_all_ms={:.1} settled_s={:.1}",
        idle.as_millis(),
        parked.as_millis(),
        seconds.as_secs_f64(),
        last.saturating_duration_since(changed).as_secs_f64() * 1e3,
        settled.as_secs_f64()
    ))
}
