//! Every proxy fault at every phase of a job's life, for the library `Job`
//! and for `spalloc alloc`, over v1 (the proxy in front of the v1 listener)
//! and over v2 (the proxy in front of the plain-HTTP v2 listener, its
//! triggers matching request lines).
//!
//! Each cell has its own virtual server and proxy, so the cells run in
//! parallel. A fault lasts [`FAULT_FOR`], well under the job's keepalive
//! ([`KEEPALIVE`]), so the job must survive it. After each cell:
//! * nothing panicked, and the call under fault returned (or failed with a
//!   clear error) within [`CALL_LIMIT`];
//! * where the job existed before the fault, it is still alive one full
//!   keepalive interval after the fault cleared, keepalives went on reaching
//!   the server, and the job's own connection works again;
//! * once released, the server (asked directly, not through the proxy)
//!   holds no job: released at once when the client could tell the server,
//!   otherwise expired after its keepalive.

use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use spalloc::server::{ServerConfig, V2Config, V2User, VirtualServer};
use spalloc::v2::V2Settings;
use spalloc::{CreateJobOptions, Error, Job, JobOptions, JobRequest, JobState};

use super::{
    direct, is_live, live_jobs, no_jobs_within, one_triad, parallel, record, start_server, state_of,
};
use crate::support::cli::{ConfigFile, Sandbox};
use crate::support::eventually;
use crate::support::proxy::{Fault, Proxy};

/// The jobs' keepalive interval, in seconds.
const KEEPALIVE: f64 = 2.0;
/// How long each lasting fault (stall, delay, refusal) lasts.
const FAULT_FOR: Duration = Duration::from_millis(400);
/// The per-line delay of [`Fault::Delay`].
const LINE_DELAY: Duration = Duration::from_millis(150);
/// The client's per-call timeout.
const TIMEOUT: Duration = Duration::from_secs(1);
/// The client's pause between reconnection attempts.
const RECONNECT: Duration = Duration::from_millis(100);
/// The longest any one call under fault may take.
const CALL_LIMIT: Duration = Duration::from_secs(8);
/// How long a job the client could not release may take to expire.
const EXPIRY: Duration = Duration::from_millis(2000 + 2000);

/// The v2 user of the v2 cells.
const V2_USER: &str = "matrix";
const V2_PASSWORD: &str = "password";
/// [`V2_PASSWORD`] hashed with two iterations (salt `salt`), so that 81
/// servers starting and logging in at once stay cheap.
const V2_HASH: &str =
    "pbkdf2-sha256$2$73616c74$ae4d0c95af6b46d32d0adff928f06dd02a303f8ef3c251dfd6e2d85a95474c43";

/// The protocol a cell speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Proto {
    V1,
    V2,
}

impl Proto {
    /// A server for one cell; over v2 with a plain-HTTP v2 listener that
    /// accepts keepalive intervals from 1 s.
    fn server(self, config: ServerConfig) -> VirtualServer {
        match self {
            Proto::V1 => start_server(config),
            Proto::V2 => start_server(
                config.v2(Some(
                    V2Config::default()
                        .users(vec![V2User::with_hash(V2_USER, V2_HASH)])
                        .keepalive_bounds(Duration::from_secs(1), Duration::from_secs(300)),
                )),
            ),
        }
    }

    /// A proxy in front of the listener this protocol uses.
    fn proxy(self, server: &VirtualServer) -> Proxy {
        match self {
            Proto::V1 => Proxy::start(server.local_addr()),
            Proto::V2 => Proxy::start_http(server.v2_local_addr().expect("a v2 listener")),
        }
    }

    /// The service's URL through the proxy (v2).
    fn url(server: &VirtualServer, proxy: &Proxy) -> String {
        let url = server.v2_url().expect("a v2 listener");
        let path = url
            .split_once("://")
            .and_then(|(_, rest)| rest.split_once('/'))
            .map_or("", |(_, path)| path);
        format!("http://127.0.0.1:{}/{path}", proxy.port())
    }

    /// The library's options, through the proxy.
    fn options(self, server: &VirtualServer, proxy: &Proxy) -> JobOptions {
        match self {
            Proto::V1 => options(proxy.port()),
            Proto::V2 => JobOptions::new()
                .hostname(Proto::url(server, proxy))
                .keepalive(Some(Duration::from_secs_f64(KEEPALIVE)))
                .timeout(Some(TIMEOUT))
                .reconnect_delay(RECONNECT)
                .v2(V2Settings::default().login(V2_USER, V2_PASSWORD)),
        }
    }

    /// A sandbox whose `spalloc` goes through the proxy.
    fn sandbox(self, server: &VirtualServer, proxy: &Proxy) -> Sandbox {
        let mut sb = Sandbox::new();
        match self {
            Proto::V1 => sb.use_server(proxy.addr()),
            Proto::V2 => {
                sb.write_config(
                    ConfigFile::User,
                    &format!("[spalloc]\nhostname = {}\n", Proto::url(server, proxy)),
                );
                sb.env("SPALLOC_USER", V2_USER)
                    .env("SPALLOC_PASSWORD", V2_PASSWORD);
            }
        }
        sb
    }

    /// The owner the server records for the sandbox's jobs.
    fn cli_owner(self) -> &'static str {
        match self {
            Proto::V1 => "tester@example.org",
            Proto::V2 => V2_USER,
        }
    }

    /// Keepalives that have reached the server through the proxy.
    fn keepalives(self, proxy: &Proxy) -> u64 {
        match self {
            Proto::V1 => proxy.count("job_keepalive"),
            Proto::V2 => proxy.count_requests("/keepalive HTTP/1.1"),
        }
    }

    /// How long powering takes in the powering cells: long enough for
    /// the client to see it (v2 logs in and creates in more round trips).
    fn powering_for(self) -> Duration {
        match self {
            Proto::V1 => Duration::from_millis(1000),
            Proto::V2 => Duration::from_millis(2000),
        }
    }

    /// The pause between starting cells, from v1's: v2 takes more than
    /// twice the round trips (login page, login, service root, create)
    /// before a job exists, so its cells start further apart.
    fn stagger(self, v1_millis: u64) -> Duration {
        match self {
            Proto::V1 => Duration::from_millis(v1_millis),
            Proto::V2 => Duration::from_millis(v1_millis * 3),
        }
    }

    fn suite(self, base: &str) -> String {
        match self {
            Proto::V1 => base.to_owned(),
            Proto::V2 => format!("{base}-v2"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Connect,
    CreateJob,
    Queued,
    Powering,
    ReadyIdle,
    Keepalive,
    Power,
    Destroy,
    Drop,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::Connect => "connect",
            Phase::CreateJob => "create_job",
            Phase::Queued => "queued",
            Phase::Powering => "powering",
            Phase::ReadyIdle => "ready-idle",
            Phase::Keepalive => "keepalive",
            Phase::Power => "power command",
            Phase::Destroy => "destroy",
            Phase::Drop => "drop",
        }
    }

    /// The client line whose passing starts the fault, for phases defined
    /// by a command in flight.
    fn trigger(self, proto: Proto) -> Option<&'static str> {
        match proto {
            Proto::V1 => match self {
                Phase::Connect => Some("\"version\""),
                Phase::CreateJob => Some("\"create_job\""),
                Phase::Keepalive => Some("\"job_keepalive\""),
                Phase::Power => Some("\"power_on_job_boards\""),
                Phase::Destroy | Phase::Drop => Some("\"destroy_job\""),
                _ => None,
            },
            // The request lines: the login page (the first request), the
            // create, the keepalive, the power command and the delete.
            Proto::V2 => match self {
                Phase::Connect => Some("GET /spalloc/system/login.html "),
                Phase::CreateJob => Some("POST /spalloc/srv/spalloc/jobs "),
                Phase::Keepalive => Some("/keepalive HTTP/1.1"),
                Phase::Power => Some("POST /spalloc/srv/spalloc/jobs/"),
                Phase::Destroy | Phase::Drop => Some("DELETE /spalloc/srv/spalloc/jobs/"),
                _ => None,
            },
        }
    }
}

const LIB_PHASES: [Phase; 9] = [
    Phase::Connect,
    Phase::CreateJob,
    Phase::Queued,
    Phase::Powering,
    Phase::ReadyIdle,
    Phase::Keepalive,
    Phase::Power,
    Phase::Destroy,
    Phase::Drop,
];

/// `spalloc alloc` has no power command, and its "drop" is its exit.
const CLI_PHASES: [Phase; 7] = [
    Phase::Connect,
    Phase::CreateJob,
    Phase::Queued,
    Phase::Powering,
    Phase::ReadyIdle,
    Phase::Keepalive,
    Phase::Destroy,
];

fn cells(phases: &[Phase]) -> Vec<(Phase, Fault)> {
    phases
        .iter()
        .flat_map(|&p| Fault::all(LINE_DELAY).map(move |f| (p, f)))
        .collect()
}

fn secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

/// A job that holds every board of the one-triad machine, so later
/// requests queue.
fn occupy(addr: std::net::SocketAddr) -> u64 {
    let mut o = CreateJobOptions::new("hog");
    o.keepalive = None;
    direct(addr)
        .create_job(
            &JobRequest::Triads {
                width: 1,
                height: 1,
            },
            &o,
        )
        .expect("create the hog job")
}

fn options(port: u16) -> JobOptions {
    JobOptions::new()
        .hostname("127.0.0.1")
        .port(port)
        .owner("matrix@example.org")
        .keepalive(Some(Duration::from_secs_f64(KEEPALIVE)))
        .timeout(Some(TIMEOUT))
        .reconnect_delay(RECONNECT)
}

/// A call under fault must end in time, and an error must say something.
fn timed<T>(f: impl FnOnce() -> Result<T, Error>) -> (Result<T, Error>, Duration) {
    let t = Instant::now();
    let r = f();
    (r, t.elapsed())
}

fn error_text(e: &Error) -> String {
    let mut text = e.to_string();
    if matches!(e, Error::Connect { .. } | Error::Io(_)) {
        // Its message already ends with the operating system's reason.
        return text;
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// After the fault: a full keepalive interval later the job is still
/// alive, keepalives reached the server meanwhile, and the job's own
/// connection answers again.
fn check_kept_alive(
    proto: Proto,
    job: &mut Job,
    proxy: &Proxy,
    addr: std::net::SocketAddr,
) -> Result<(), String> {
    proxy.clear();
    let before = proto.keepalives(proxy);
    thread::sleep(Duration::from_secs_f64(KEEPALIVE) + Duration::from_millis(500));
    let s = state_of(addr, job.id());
    ensure!(
        s.state == JobState::Ready,
        "job {} not alive one keepalive after the fault: {:?} {:?}",
        job.id(),
        s.state,
        s.reason
    );
    ensure!(
        proto.keepalives(proxy) > before,
        "no keepalive reached the server after the fault"
    );
    let (state, took) = timed(|| job.state());
    ensure!(
        matches!(state, Ok(JobState::Ready)),
        "the job's connection did not recover: {state:?}"
    );
    ensure!(took < CALL_LIMIT, "state() took {took:?}");
    Ok(())
}

/// Drops the job: it must end in time and destroy the job at once (over
/// v1 without a reason; over v2 the client gives one).
fn drop_and_check(proto: Proto, job: Job, addr: std::net::SocketAddr) -> Result<(), String> {
    let id = job.id();
    let t = Instant::now();
    drop(job);
    ensure!(t.elapsed() < CALL_LIMIT, "drop took {:?}", t.elapsed());
    let s = state_of(addr, id);
    ensure!(
        s.state == JobState::Destroyed && (proto == Proto::V2 || s.reason.is_none()),
        "job {id} not destroyed by drop: {:?} {:?}",
        s.state,
        s.reason
    );
    Ok(())
}

/// One library cell; `Ok` carries what happened, for the report.
fn lib_cell(proto: Proto, phase: Phase, fault: Fault) -> Result<Value, String> {
    let power_delay = match phase {
        Phase::Powering => proto.powering_for(),
        Phase::Power => Duration::from_millis(300),
        _ => Duration::ZERO,
    };
    let server = proto.server(one_triad().power_delay(power_delay));
    let addr = server.local_addr();
    let proxy = proto.proxy(&server);
    let opts = proto.options(&server, &proxy);
    let hog = (phase == Phase::Queued).then(|| occupy(addr));
    let mut call = "none";
    let mut took = Duration::ZERO;
    let mut error = None;

    let job: Option<Job> = match phase {
        Phase::Connect | Phase::CreateJob => {
            proxy.arm(phase.trigger(proto).unwrap_or_default(), fault, FAULT_FOR);
            call = "Job::create";
            let (r, t) = timed(|| Job::create(JobRequest::AnyBoard, &opts));
            took = t;
            ensure!(proxy.fired(), "the fault was never triggered");
            thread::sleep(FAULT_FOR);
            match r {
                Ok(mut job) => {
                    let (ready, _) = timed(|| job.wait_until_ready(Some(CALL_LIMIT)));
                    ensure!(ready.is_ok(), "created, but never ready: {ready:?}");
                    check_kept_alive(proto, &mut job, &proxy, addr)?;
                    Some(job)
                }
                Err(e) => {
                    ensure!(e.is_transport(), "unexpected kind of error: {e:?}");
                    error = Some(error_text(&e));
                    None
                }
            }
        }
        Phase::Queued | Phase::Powering => {
            let mut job = Job::create(JobRequest::AnyBoard, &opts).map_err(|e| e.to_string())?;
            let expected = if phase == Phase::Queued {
                JobState::Queued
            } else {
                JobState::Power
            };
            let s = state_of(addr, job.id()).state;
            ensure!(s == expected, "job is {s:?}, not {expected:?}");
            call = "wait_until_ready";
            let (ready, t) = thread::scope(|scope| {
                scope.spawn(|| {
                    thread::sleep(Duration::from_millis(200));
                    proxy.inject(fault, FAULT_FOR);
                    if let Some(h) = hog {
                        thread::sleep(Duration::from_millis(200));
                        let _ = direct(addr).destroy_job(h, Some("make room"));
                    }
                });
                timed(|| job.wait_until_ready(Some(CALL_LIMIT)))
            });
            took = t;
            ensure!(ready.is_ok(), "never ready after the fault: {ready:?}");
            check_kept_alive(proto, &mut job, &proxy, addr)?;
            Some(job)
        }
        Phase::ReadyIdle | Phase::Keepalive | Phase::Power => {
            let mut job = Job::create(JobRequest::AnyBoard, &opts).map_err(|e| e.to_string())?;
            job.wait_until_ready(Some(CALL_LIMIT))
                .map_err(|e| e.to_string())?;
            match phase {
                Phase::ReadyIdle => {
                    proxy.inject(fault, FAULT_FOR);
                    thread::sleep(FAULT_FOR);
                }
                Phase::Keepalive => {
                    proxy.arm(phase.trigger(proto).unwrap_or_default(), fault, FAULT_FOR);
                    ensure!(
                        eventually(Duration::from_secs(3), || proxy.fired()),
                        "no keepalive was sent"
                    );
                    thread::sleep(FAULT_FOR);
                }
                _ => {
                    proxy.arm(phase.trigger(proto).unwrap_or_default(), fault, FAULT_FOR);
                    call = "set_power";
                    let (r, t) = timed(|| job.set_power(true));
                    took = t;
                    ensure!(proxy.fired(), "the fault was never triggered");
                    if let Err(e) = r {
                        ensure!(e.is_transport(), "unexpected kind of error: {e:?}");
                        error = Some(error_text(&e));
                    }
                    let (ready, t) = timed(|| job.wait_until_ready(Some(CALL_LIMIT)));
                    ensure!(
                        ready.is_ok(),
                        "never ready after the power command: {ready:?}"
                    );
                    took += t;
                }
            }
            check_kept_alive(proto, &mut job, &proxy, addr)?;
            Some(job)
        }
        Phase::Destroy | Phase::Drop => {
            let mut job = Job::create(JobRequest::AnyBoard, &opts).map_err(|e| e.to_string())?;
            job.wait_until_ready(Some(CALL_LIMIT))
                .map_err(|e| e.to_string())?;
            let id = job.id();
            proxy.arm(phase.trigger(proto).unwrap_or_default(), fault, FAULT_FOR);
            let result = if phase == Phase::Destroy {
                call = "Job::destroy";
                let (r, t) = timed(|| job.destroy(None));
                took = t;
                r
            } else {
                call = "drop(Job)";
                let t = Instant::now();
                drop(job);
                took = t.elapsed();
                Ok(())
            };
            ensure!(proxy.fired(), "the fault was never triggered");
            let keepalives = proto.keepalives(&proxy);
            match result {
                Ok(()) if phase == Phase::Destroy => {
                    let s = state_of(addr, id).state;
                    ensure!(s == JobState::Destroyed, "destroy() said Ok, job is {s:?}");
                }
                Ok(()) => {}
                Err(e) => {
                    ensure!(e.is_transport(), "unexpected kind of error: {e:?}");
                    error = Some(error_text(&e));
                }
            }
            thread::sleep(Duration::from_secs_f64(KEEPALIVE / 2.0) + Duration::from_millis(200));
            ensure!(
                proto.keepalives(&proxy) == keepalives,
                "keepalives went on after the job was released"
            );
            None
        }
    };
    ensure!(took < CALL_LIMIT, "{call} took {took:?}");
    // Jobs the client lost track of (its create_job reply was lost, or it
    // could not send destroy_job): the server must expire them.
    let orphans = live_jobs(addr)
        .into_iter()
        .filter(|j| j.owner.as_deref() != Some("hog"))
        .count();
    let released = match job {
        Some(job) => {
            drop_and_check(proto, job, addr)?;
            "at once"
        }
        None if orphans > 0 => "by expiry",
        None if phase == Phase::Connect || phase == Phase::CreateJob => "none created",
        None => "at once",
    };
    if let Err(left) = no_jobs_within(addr, EXPIRY) {
        return Err(format!("jobs left on the server: {left:?}"));
    }
    Ok(json!({
        "call": call,
        "call_secs": secs(took),
        "error": error,
        "released": released,
    }))
}

/// Runs the matrices one after another: each runs its cells in parallel
/// (up to 81 servers and proxies, or 63 `spalloc` processes), and two at
/// once on a loaded 2-core machine starve cells of their 1 s timeouts.
fn one_at_a_time_lock() -> std::sync::MutexGuard<'static, ()> {
    static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    ONE.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A cell's result: `Err` if it panicked, `Ok(Err)` if a check failed.
type CellResult = Result<Result<Value, String>, String>;

fn report(suite: &str, results: &[((Phase, Fault), CellResult)]) {
    let mut failures = Vec::new();
    for ((phase, fault), r) in results {
        let (outcome, detail) = match r {
            Ok(Ok(v)) => ("pass", v.clone()),
            Ok(Err(why)) => ("fail", json!({ "why": why })),
            Err(panic) => ("fail", json!({ "why": format!("panicked: {panic}") })),
        };
        if outcome == "fail" {
            failures.push(format!("{} x {}: {detail}", phase.name(), fault.name()));
        }
        record(
            suite,
            json!({
                "phase": phase.name(),
                "fault": fault.name(),
                "outcome": outcome,
                "detail": detail,
            }),
        );
    }
    assert!(
        failures.is_empty(),
        "{} of {} cells failed:\n{}",
        failures.len(),
        results.len(),
        failures.join("\n")
    );
}

#[test]
fn library_job_survives_every_fault_in_every_phase() {
    let _one = one_at_a_time_lock();
    let cells = cells(&LIB_PHASES);
    let results = parallel(cells.clone(), Duration::from_millis(15), |(p, f)| {
        lib_cell(Proto::V1, p, f)
    });
    let results: Vec<_> = cells.into_iter().zip(results).collect();
    report(&Proto::V1.suite("matrix-library"), &results);
}

#[test]
fn library_job_over_v2_survives_every_fault_in_every_phase() {
    let _one = one_at_a_time_lock();
    let cells = cells(&LIB_PHASES);
    let results = parallel(cells.clone(), Proto::V2.stagger(15), |(p, f)| {
        lib_cell(Proto::V2, p, f)
    });
    let results: Vec<_> = cells.into_iter().zip(results).collect();
    report(&Proto::V2.suite("matrix-library"), &results);
}

/// One `spalloc alloc` cell.
fn cli_cell(proto: Proto, phase: Phase, fault: Fault) -> Result<Value, String> {
    let power_delay = match phase {
        Phase::Powering => proto.powering_for(),
        _ => Duration::ZERO,
    };
    let server = proto.server(one_triad().power_delay(power_delay));
    let addr = server.local_addr();
    let proxy = proto.proxy(&server);
    let hog = (phase == Phase::Queued).then(|| occupy(addr));
    let sb = proto.sandbox(&server, &proxy);
    let long = matches!(phase, Phase::ReadyIdle | Phase::Keepalive);
    let marker = sb.cwd().join("started");
    // A long command runs until the test has made its checks and says it
    // is done, however slowly a loaded machine gets there.
    let command = if long {
        "touch started && while [ ! -e done ]; do sleep 0.05; done"
    } else {
        "touch started"
    };
    if let Some(trigger) = phase.trigger(proto)
        && phase != Phase::Keepalive
    {
        proxy.arm(trigger, fault, FAULT_FOR);
    }
    let t = Instant::now();
    let running = sb.spawn(&[
        "alloc",
        "--timeout",
        "1",
        "--reconnect-delay",
        "0.1",
        "--keepalive",
        "2",
        "-c",
        command,
    ]);
    let our_job = || {
        live_jobs(addr)
            .into_iter()
            .find(|j| j.owner.as_deref() == Some(proto.cli_owner()))
            .map(|j| j.job_id)
    };
    let mut id = None;
    match phase {
        Phase::Queued | Phase::Powering => {
            let line = if phase == Phase::Queued {
                "Waiting in queue"
            } else {
                "Waiting for power on"
            };
            ensure!(
                running.wait_for_stderr(line, Duration::from_secs(10)),
                "never reached {line:?}: {}",
                running.stderr()
            );
            id = our_job();
            proxy.inject(fault, FAULT_FOR);
            if let Some(h) = hog {
                thread::sleep(Duration::from_millis(200));
                let _ = direct(addr).destroy_job(h, Some("make room"));
            }
        }
        Phase::ReadyIdle | Phase::Keepalive => {
            ensure!(
                eventually(Duration::from_secs(10), || marker.exists()),
                "the command never started: {}",
                running.stderr()
            );
            id = our_job();
            if phase == Phase::ReadyIdle {
                proxy.inject(fault, FAULT_FOR);
            } else {
                proxy.arm(phase.trigger(proto).unwrap_or_default(), fault, FAULT_FOR);
                ensure!(
                    eventually(Duration::from_secs(3), || proxy.fired()),
                    "no keepalive was sent"
                );
            }
            thread::sleep(FAULT_FOR);
            proxy.clear();
            let before = proto.keepalives(&proxy);
            thread::sleep(Duration::from_secs_f64(KEEPALIVE) + Duration::from_millis(300));
            let job = id.ok_or("no job on the server")?;
            ensure!(
                is_live(addr, job),
                "job {job} not alive one keepalive after the fault"
            );
            ensure!(
                proto.keepalives(&proxy) > before,
                "no keepalive reached the server after the fault"
            );
            std::fs::write(sb.cwd().join("done"), "").map_err(|e| e.to_string())?;
        }
        _ => {}
    }
    let out = running.finish(Duration::from_secs(20));
    let took = t.elapsed();
    ensure!(
        proxy.fired(),
        "the fault was never triggered: {}",
        out.stderr
    );
    ensure!(
        !out.stderr.contains("panicked"),
        "spalloc panicked: {}",
        out.stderr
    );
    let must_succeed = !matches!(phase, Phase::Connect | Phase::CreateJob);
    if must_succeed || out.code == Some(0) {
        ensure!(
            out.code == Some(0),
            "exit {:?}, expected 0: {}",
            out.code,
            out.stderr
        );
        ensure!(marker.exists(), "the command did not run");
    } else {
        ensure!(
            !out.stderr.trim().is_empty(),
            "failed (exit {:?}) without saying why",
            out.code
        );
    }
    let mut released = "at once";
    if let Some(job) = id {
        let s = state_of(addr, job);
        if s.state != JobState::Destroyed {
            ensure!(
                phase == Phase::Destroy,
                "job {job} still {:?} after spalloc exited",
                s.state
            );
            released = "by expiry";
        }
    }
    if let Err(left) = no_jobs_within(addr, EXPIRY) {
        return Err(format!("jobs left on the server: {left:?}"));
    }
    let first_line = out.stderr.lines().last().unwrap_or_default().to_owned();
    Ok(json!({
        "call": "spalloc alloc",
        "call_secs": secs(took),
        "exit": out.code,
        "error": (out.code != Some(0)).then_some(first_line),
        "released": released,
    }))
}

#[test]
fn spalloc_alloc_survives_every_fault_in_every_phase() {
    let _one = one_at_a_time_lock();
    let cells = cells(&CLI_PHASES);
    let results = parallel(cells.clone(), Duration::from_millis(30), |(p, f)| {
        cli_cell(Proto::V1, p, f)
    });
    let results: Vec<_> = cells.into_iter().zip(results).collect();
    report(&Proto::V1.suite("matrix-cli"), &results);
}

#[test]
fn spalloc_alloc_over_v2_survives_every_fault_in_every_phase() {
    let _one = one_at_a_time_lock();
    let cells = cells(&CLI_PHASES);
    let results = parallel(cells.clone(), Proto::V2.stagger(30), |(p, f)| {
        cli_cell(Proto::V2, p, f)
    });
    let results: Vec<_> = cells.into_iter().zip(results).collect();
    report(&Proto::V2.suite("matrix-cli"), &results);
}

/// Regression: `wait_until_ready` used to fail at once if the server was
/// unreachable when it started, instead of reconnecting as its waits do.
#[test]
fn wait_until_ready_rides_out_an_outage_at_its_start() {
    wait_rides_out_an_outage(Proto::V1);
}

/// The same over v2, whose waits are long-polls.
#[test]
fn wait_until_ready_over_v2_rides_out_an_outage_at_its_start() {
    wait_rides_out_an_outage(Proto::V2);
}

fn wait_rides_out_an_outage(proto: Proto) {
    let server = proto.server(one_triad());
    let proxy = proto.proxy(&server);
    let mut job =
        Job::create(JobRequest::AnyBoard, &proto.options(&server, &proxy)).expect("create");
    proxy.inject(Fault::Refuse, FAULT_FOR);
    let (ready, took) = timed(|| job.wait_until_ready(Some(CALL_LIMIT)));
    assert!(ready.is_ok(), "{ready:?}");
    assert!(
        took >= FAULT_FOR / 2,
        "the outage was not in the way: {took:?}"
    );
    // And a deadline still bounds it.
    proxy.inject(Fault::Refuse, Duration::from_secs(5));
    let (r, took) = timed(|| job.wait_until_ready(Some(Duration::from_millis(500))));
    assert!(
        matches!(r, Err(Error::Timeout(spalloc::Phase::Wait))),
        "{r:?}"
    );
    assert!(took < Duration::from_secs(2), "{took:?}");
    proxy.clear();
}

/// A server that stops answering for good (both directions stalled): the
/// release must still end within a bound set by the timeout (stopping the
/// keepalive thread, one destroy attempt, one reconnection), and the
/// server expires the job once it can act again.
#[test]
fn release_is_bounded_when_the_server_hangs_for_good() {
    release_is_bounded(Proto::V1);
}

/// The same over v2.
#[test]
fn release_over_v2_is_bounded_when_the_server_hangs_for_good() {
    release_is_bounded(Proto::V2);
}

fn release_is_bounded(proto: Proto) {
    let server = proto.server(one_triad());
    let addr = server.local_addr();
    let proxy = proto.proxy(&server);
    let mut job =
        Job::create(JobRequest::AnyBoard, &proto.options(&server, &proxy)).expect("create");
    job.wait_until_ready(Some(CALL_LIMIT)).expect("ready");
    let id = job.id();
    proxy.inject(Fault::StallUp, Duration::from_secs(60));
    proxy.inject(Fault::StallDown, Duration::from_secs(60));
    let t = Instant::now();
    drop(job);
    let lib_took = t.elapsed();
    let expired = eventually(EXPIRY, || !is_live(addr, id));

    // The same for `spalloc alloc`, hung just as its command finishes.
    let proxy = proto.proxy(&server);
    let sb = proto.sandbox(&server, &proxy);
    let running = sb.spawn(&[
        "alloc",
        "--timeout",
        "1",
        "--reconnect-delay",
        "0.1",
        "--keepalive",
        "2",
        "-q",
        "-c",
        "touch started && sleep 1",
    ]);
    let marker = sb.cwd().join("started");
    assert!(
        eventually(Duration::from_secs(10), || marker.exists()),
        "{}",
        running.stderr()
    );
    proxy.inject(Fault::StallUp, Duration::from_secs(60));
    proxy.inject(Fault::StallDown, Duration::from_secs(60));
    let t = Instant::now();
    let out = running.finish(Duration::from_secs(30));
    let cli_took = t.elapsed();
    let cli_expired = no_jobs_within(addr, EXPIRY).is_ok();

    // Timeout 1 s: stop grace (2 s) + destroy (1 s) + reconnect (1 s).
    let bound = Duration::from_secs(5);
    let ok = lib_took < bound
        && expired
        && cli_took < bound + Duration::from_secs(1)
        && out.stderr.contains("could not be destroyed")
        && cli_expired;
    record(
        "holders",
        json!({"case": format!("release while the server hangs for good (timeout 1 s, keepalive 2 s){}",
                               if proto == Proto::V2 { ", over v2" } else { "" }),
               "outcome": if ok { "pass" } else { "fail" },
               "detail": {"drop(Job) took (s)": secs(lib_took),
                          "spalloc alloc exit after the command (s)": secs(cli_took),
                          "spalloc alloc said": out.stderr.lines().last().unwrap_or_default(),
                          "jobs expired on the server": expired && cli_expired}}),
    );
    assert!(
        ok,
        "drop {lib_took:?} (expired {expired}); alloc {cli_took:?} {out:?} (expired {cli_expired})"
    );
}
