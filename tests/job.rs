//! `Job` against a scripted server: keepalive cadence and resilience,
//! waiting, destroy-on-drop, close, and bounded shutdown.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use spalloc::{
    ConnectionEvent, Error, InterruptHandle, Job, JobOptions, JobRequest, JobState,
    KeepaliveInterval,
};

use crate::support::{
    Action, Dialect, FakeServer, PATIENCE, Reply, dead_port, eventually, jobs_changed,
};

/// A job's state number and destroy reason.
type Record = (u64, Option<String>);

/// Job states a test can change while the server runs.
#[derive(Clone, Default)]
struct Jobs(Arc<Mutex<HashMap<u64, Record>>>);

impl Jobs {
    fn set(&self, id: u64, state: u64, reason: Option<&str>) {
        self.0
            .lock()
            .expect("lock")
            .insert(id, (state, reason.map(str::to_owned)));
    }

    fn get(&self, id: u64) -> (u64, Option<String>) {
        self.0
            .lock()
            .expect("lock")
            .get(&id)
            .cloned()
            .unwrap_or((0, None))
    }
}

/// A minimal stateful spalloc: jobs are created ready unless `initial`
/// says otherwise; destroy_job marks them destroyed.
fn mini(initial: u64) -> (FakeServer, Jobs) {
    let jobs = Jobs::default();
    let j = jobs.clone();
    let next = Arc::new(Mutex::new(1u64));
    let server = FakeServer::start(Dialect::Python, move |c| {
        let id = c.job_id().unwrap_or(0);
        let v = match c.command.as_str() {
            "version" => json!("1!7.1.0"),
            "create_job" => {
                let mut n = next.lock().expect("lock");
                let id = *n;
                *n += 1;
                j.set(id, initial, None);
                json!(id)
            }
            "get_job_state" => {
                let (state, reason) = j.get(id);
                let power = if state == 2 || state == 3 {
                    json!(true)
                } else {
                    Value::Null
                };
                json!({"state": state, "power": power, "keepalive": 60.0, "reason": reason,
                       "start_time": 1.0, "keepalivehost": "127.0.0.1"})
            }
            "get_job_machine_info" if j.get(id).0 == 3 => json!({"width": 8, "height": 8,
                "connections": [[[0, 0], "10.1.2.3"]], "machine_name": "m", "boards": [[0, 0, 0]]}),
            "get_job_machine_info" => json!({"width": null, "height": null, "connections": null,
                "machine_name": null, "boards": null}),
            "destroy_job" => {
                let reason = c.kwargs.get("reason").and_then(Value::as_str);
                j.set(id, 4, reason);
                Value::Null
            }
            _ => Value::Null,
        };
        Reply::Return(v)
    });
    (server, jobs)
}

fn options(server: &FakeServer) -> JobOptions {
    JobOptions::new()
        .hostname("127.0.0.1")
        .port(server.port())
        .owner("tester")
        .timeout(Some(Duration::from_secs(2)))
        .reconnect_delay(Duration::from_millis(100))
}

#[test]
fn create_wait_and_query() -> Result<(), Error> {
    let (server, _) = mini(3);
    let mut job = Job::create(JobRequest::Boards(3), &options(&server))?;
    assert_eq!(job.id(), 1);
    job.wait_until_ready(Some(PATIENCE))?;
    assert_eq!(job.hostname()?.as_deref(), Some("10.1.2.3"));
    assert_eq!((job.width()?, job.height()?), (Some(8), Some(8)));
    assert_eq!(job.machine_name()?.as_deref(), Some("m"));
    assert_eq!(job.power()?, Some(true));
    assert_eq!(job.boards()?.map(|b| b.len()), Some(1));
    // Machine info is fetched once and then cached.
    assert_eq!(server.count("get_job_machine_info"), 1);
    let create = &server.calls_named("create_job")[0];
    assert_eq!(create.args, vec![json!(3)]);
    assert_eq!(create.kwargs["owner"], json!("tester"));
    job.set_power(false)?;
    job.reset()?;
    assert_eq!(server.count("power_off_job_boards"), 1);
    assert_eq!(server.count("power_on_job_boards"), 1);
    Ok(())
}

#[test]
fn keepalive_cadence_on_its_own_connection() -> Result<(), Error> {
    let (server, _) = mini(3);
    let job = Job::create(
        JobRequest::AnyBoard,
        &options(&server).keepalive(Some(Duration::from_secs_f64(0.4))),
    )?;
    assert_eq!(job.keepalive_period(), Duration::from_millis(200));
    let start = Instant::now();
    assert!(server.wait_for_count("job_keepalive", 5));
    let elapsed = start.elapsed();
    // Five keepalives at 200 ms intervals: about a second, never a burst.
    assert!(elapsed >= Duration::from_millis(800), "{elapsed:?}");
    let kas = server.calls_named("job_keepalive");
    let create_conn = server.calls_named("create_job")[0].conn;
    assert!(
        kas.iter()
            .all(|c| c.conn != create_conn && c.job_id() == Some(1))
    );
    for pair in kas.windows(2) {
        let gap = pair[1].at - pair[0].at;
        assert!(
            gap >= Duration::from_millis(150),
            "keepalives {gap:?} apart"
        );
    }
    drop(job);
    Ok(())
}

#[test]
fn keepalive_survives_dropped_connections() -> Result<(), Error> {
    let (server, _) = mini(3);
    let job = Job::create(
        JobRequest::AnyBoard,
        &options(&server).keepalive(Some(Duration::from_secs_f64(0.2))),
    )?;
    assert!(server.wait_for_count("job_keepalive", 2));
    let first_conn = server.calls_named("job_keepalive")[0].conn;
    // Kill every connection and refuse new ones for a while.
    server.refuse(true);
    server.kill_connections();
    thread::sleep(Duration::from_millis(400));
    let before = server.count("job_keepalive");
    server.refuse(false);
    assert!(
        server.wait_for_count("job_keepalive", before + 3),
        "keepalives resumed"
    );
    let last = server.calls_named("job_keepalive").last().map(|c| c.conn);
    assert!(last.is_some_and(|c| c != first_conn), "on a new connection");
    job.destroy(Some("done"))?;
    Ok(())
}

#[test]
fn drop_destroys_and_stops_keepalives() -> Result<(), Error> {
    let (server, jobs) = mini(3);
    {
        let _job = Job::create(
            JobRequest::AnyBoard,
            &options(&server).keepalive(Some(Duration::from_secs_f64(0.2))),
        )?;
        assert!(server.wait_for_count("job_keepalive", 1));
    }
    assert_eq!(jobs.get(1).0, 4, "destroyed on drop");
    let destroy = &server.calls_named("destroy_job")[0];
    assert_eq!(destroy.args, vec![json!(1)]);
    let after = server.count("job_keepalive");
    thread::sleep(Duration::from_millis(500));
    assert_eq!(
        server.count("job_keepalive"),
        after,
        "no keepalive after drop"
    );
    let last_ka = server.calls_named("job_keepalive").last().map(|c| c.at);
    assert!(
        last_ka.is_none_or(|t| t < destroy.at),
        "keepalive stopped before destroy"
    );
    Ok(())
}

#[test]
fn destroy_sends_reason() -> Result<(), Error> {
    let (server, jobs) = mini(3);
    let job = Job::create(JobRequest::AnyBoard, &options(&server))?;
    job.destroy(Some("finished"))?;
    assert_eq!(jobs.get(1), (4, Some("finished".into())));
    assert_eq!(server.count("destroy_job"), 1);
    Ok(())
}

#[test]
fn close_keeps_the_job() -> Result<(), Error> {
    let (server, jobs) = mini(3);
    let job = Job::create(
        JobRequest::AnyBoard,
        &options(&server).keepalive(Some(Duration::from_secs_f64(0.2))),
    )?;
    assert!(server.wait_for_count("job_keepalive", 1));
    job.close()?;
    let after = server.count("job_keepalive");
    thread::sleep(Duration::from_millis(500));
    assert_eq!(server.count("destroy_job"), 0);
    assert_eq!(server.count("job_keepalive"), after);
    assert_eq!(jobs.get(1).0, 3);
    Ok(())
}

#[test]
fn drop_is_prompt_when_the_server_is_gone() -> Result<(), Error> {
    let (server, _) = mini(3);
    let job = Job::create(
        JobRequest::AnyBoard,
        &options(&server).keepalive(Some(Duration::from_secs_f64(0.2))),
    )?;
    drop(server);
    let start = Instant::now();
    drop(job);
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    Ok(())
}

#[test]
fn drop_is_bounded_when_the_server_stalls() -> Result<(), Error> {
    let stalled = Arc::new(Mutex::new(false));
    let s = Arc::clone(&stalled);
    let server = FakeServer::start(Dialect::Python, move |c| {
        if *s.lock().expect("lock") {
            return Reply::Nothing;
        }
        match c.command.as_str() {
            "version" => Reply::Return(json!("1!7.1.0")),
            "create_job" => Reply::Return(json!(1)),
            _ => Reply::Return(Value::Null),
        }
    });
    let job = Job::create(
        JobRequest::AnyBoard,
        &options(&server).timeout(Some(Duration::from_millis(500))),
    )?;
    *stalled.lock().expect("lock") = true;
    let start = Instant::now();
    drop(job);
    // One destroy attempt plus one retry, each bounded by the timeout, plus
    // stopping the keepalive thread.
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    assert!(server.count("destroy_job") >= 1);
    Ok(())
}

#[test]
fn panic_while_holding_a_job_destroys_it() {
    let (server, jobs) = mini(3);
    let opts = options(&server);
    let result = std::panic::catch_unwind(move || {
        let _job = Job::create(JobRequest::AnyBoard, &opts).expect("create");
        panic!("user code failed");
    });
    assert!(result.is_err());
    assert_eq!(jobs.get(1).0, 4);
    assert_eq!(server.count("destroy_job"), 1);
}

#[test]
fn wait_until_ready_follows_notifications() -> Result<(), Error> {
    let (server, jobs) = mini(1);
    let mut job = Job::create(JobRequest::AnyBoard, &options(&server))?;
    let start = Instant::now();
    let waiter = thread::spawn(move || {
        let r = job.wait_until_ready(Some(PATIENCE));
        (r, job)
    });
    assert!(server.wait_for_count("notify_job", 1));
    assert!(server.wait_for_count("get_job_state", 1));
    jobs.set(1, 2, None);
    server.push(&jobs_changed(Dialect::Python, &[1]));
    assert!(server.wait_for_count("get_job_state", 2));
    jobs.set(1, 3, None);
    server.push(&jobs_changed(Dialect::Python, &[1]));
    let (r, job) = waiter.join().expect("waiter");
    r?;
    // Woken by notifications, not by the 30 s polling fallback.
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_eq!(server.calls_named("notify_job")[0].args, vec![json!(1)]);
    drop(job);
    Ok(())
}

#[test]
fn waiting_polls_without_notifications() -> Result<(), Error> {
    let (server, jobs) = mini(1);
    // With a 0.4 s keepalive, the fallback poll comes every 0.2 s.
    let mut job = Job::create(
        JobRequest::AnyBoard,
        &options(&server).keepalive(Some(Duration::from_secs_f64(0.4))),
    )?;
    let j = jobs.clone();
    thread::spawn(move || {
        thread::sleep(Duration::from_millis(300));
        j.set(1, 3, None);
    });
    job.wait_until_ready(Some(PATIENCE))?;
    Ok(())
}

#[test]
fn waiting_reports_destruction_with_reason() -> Result<(), Error> {
    let (server, jobs) = mini(1);
    let mut job = Job::create(
        JobRequest::AnyBoard,
        &options(&server).keepalive(Some(Duration::from_secs_f64(0.4))),
    )?;
    jobs.set(1, 4, Some("Cancelled: No suitable machines available."));
    let err = job.wait_until_ready(Some(PATIENCE)).unwrap_err();
    assert!(
        matches!(err, Error::JobDestroyed { id: 1, ref reason } if reason.as_deref() == Some("Cancelled: No suitable machines available.")),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "job 1 was destroyed: Cancelled: No suitable machines available."
    );
    Ok(())
}

#[test]
fn waiting_times_out() -> Result<(), Error> {
    let (server, _) = mini(1);
    let mut job = Job::create(JobRequest::AnyBoard, &options(&server))?;
    let start = Instant::now();
    let err = job
        .wait_until_ready(Some(Duration::from_millis(300)))
        .unwrap_err();
    assert!(
        matches!(err, Error::Timeout(spalloc::Phase::Wait)),
        "{err:?}"
    );
    assert!(start.elapsed() < Duration::from_secs(3));
    let err = job
        .wait_for_state_change(JobState::Queued, Some(Duration::from_millis(200)))
        .unwrap_err();
    assert!(
        matches!(err, Error::Timeout(spalloc::Phase::Wait)),
        "{err:?}"
    );
    Ok(())
}

#[test]
fn waiting_reconnects_after_a_lost_connection() -> Result<(), Error> {
    let (server, jobs) = mini(1);
    let mut job = Job::create(JobRequest::AnyBoard, &options(&server))?;
    let waiter = thread::spawn(move || {
        let r = job.wait_until_ready(Some(PATIENCE));
        (r, job)
    });
    assert!(server.wait_for_count("notify_job", 1));
    let made = server.connections_made();
    server.kill_connections();
    assert!(eventually(PATIENCE, || server.connections_made() > made));
    jobs.set(1, 3, None);
    server.push(&jobs_changed(Dialect::Python, &[1]));
    let (r, job) = waiter.join().expect("waiter");
    r?;
    assert!(
        server.count("notify_job") >= 2,
        "subscribed again after reconnecting"
    );
    drop(job);
    Ok(())
}

#[test]
fn queries_reconnect_after_a_lost_connection() -> Result<(), Error> {
    let (server, _) = mini(3);
    let mut job = Job::create(JobRequest::AnyBoard, &options(&server))?;
    server.kill_connections();
    assert_eq!(job.state()?, JobState::Ready);
    Ok(())
}

#[test]
fn resume_checks_and_keeps_alive_at_once() -> Result<(), Error> {
    let (server, jobs) = mini(3);
    jobs.set(7, 3, None);
    jobs.set(8, 4, Some("bye"));
    let opts = options(&server).keepalive(Some(Duration::from_secs_f64(600.0)));
    let err = Job::resume(99, &opts).unwrap_err();
    assert!(matches!(err, Error::JobUnknown { id: 99 }), "{err:?}");
    let err = Job::resume(8, &opts).unwrap_err();
    assert!(
        matches!(err, Error::JobDestroyed { id: 8, ref reason } if reason.as_deref() == Some("bye"))
    );
    let job = Job::resume(7, &opts)?;
    // The job's own 60 s interval wins over the configured 600 s.
    assert_eq!(job.keepalive_period(), Duration::from_secs(30));
    assert!(server.wait_until(Duration::from_secs(2), |calls| {
        calls.iter().any(|c| c.command == "job_keepalive")
    }));
    assert_eq!(server.count("create_job"), 0);
    drop(job);
    assert_eq!(jobs.get(7).0, 4);
    Ok(())
}

#[test]
fn incompatible_server_creates_nothing() {
    let server = FakeServer::start(Dialect::Python, |c| match c.command.as_str() {
        "version" => Reply::Return(json!("9.0.0")),
        _ => Reply::Return(json!(1)),
    });
    let err = Job::create(JobRequest::AnyBoard, &options(&server)).unwrap_err();
    assert!(matches!(err, Error::IncompatibleVersion(ref v) if v == "9.0.0"));
    assert_eq!(server.count("create_job"), 0);
    // Unless the check is skipped.
    let job = Job::create(JobRequest::AnyBoard, &options(&server).ignore_version(true));
    assert!(job.is_ok());
}

#[test]
fn refused_request_is_a_server_error() {
    let server = FakeServer::start(Dialect::Java, |c| match c.command.as_str() {
        "version" => Reply::Return(json!("5.0.0")),
        _ => Reply::Exception("no machine available which matches allocation request".into()),
    });
    let err = Job::create(JobRequest::Boards(1000), &options(&server)).unwrap_err();
    assert!(matches!(err, Error::Server(ref m) if m.contains("no machine available")));
}

#[test]
fn unreachable_server_fails_fast() {
    let opts = JobOptions::new()
        .hostname("127.0.0.1")
        .port(dead_port())
        .owner("me");
    let start = Instant::now();
    let err = Job::create(JobRequest::AnyBoard, &opts).unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    assert!(start.elapsed() < Duration::from_secs(3));
    assert_eq!(
        err.to_string(),
        format!(
            "cannot connect to 127.0.0.1:{}: connection refused",
            opts.server.port
        )
    );
}

/// A server that answers everything except `stalls`, and `create_job` (if
/// not stalled) after `create_delay`.
fn stalling(stalls: &'static str, create_delay: Duration) -> FakeServer {
    FakeServer::start(Dialect::Python, move |c| {
        if c.command == stalls {
            return Reply::Nothing;
        }
        match c.command.as_str() {
            "version" => Reply::Return(json!("1!7.1.0")),
            "create_job" => Reply::Script(vec![
                Action::Sleep(create_delay),
                Action::Send(b"{\"return\": 7}\n".to_vec()),
            ]),
            "get_job_state" => Reply::Return(json!({"state": 2, "power": true,
                "keepalive": 60.0, "reason": null, "start_time": 1.0, "keepalivehost": null})),
            _ => Reply::Return(Value::Null),
        }
    })
}

/// Interrupts `handle` once `server` has received `command`.
fn interrupt_after(server: &FakeServer, command: &str, handle: &InterruptHandle) {
    assert!(server.wait_for_count(command, 1), "never sent {command}");
    handle.interrupt();
}

/// `JobOptions::interrupt` reaches every blocking step, with no timeout at
/// all: the version check, `create_job`, and the waits after it.
#[test]
fn an_interrupt_handle_cuts_every_blocking_step_short() {
    for stalls in ["version", "create_job"] {
        let server = stalling(stalls, Duration::ZERO);
        let handle = InterruptHandle::new();
        let options = options(&server).timeout(None).interrupt(handle.clone());
        let started = Instant::now();
        let err = thread::scope(|s| {
            s.spawn(|| interrupt_after(&server, stalls, &handle));
            Job::create(JobRequest::AnyBoard, &options).unwrap_err()
        });
        assert!(matches!(err, Error::Interrupted), "{stalls}: {err:?}");
        // create_job waits a second for the id before giving up.
        assert!(
            started.elapsed() < PATIENCE,
            "{stalls}: {:?}",
            started.elapsed()
        );
        assert!(!handle.is_interrupted(), "used up");
        assert_eq!(server.count("destroy_job"), 0);
    }

    // A wait whose call the server never answers.
    let server = stalling("notify_job", Duration::ZERO);
    let handle = InterruptHandle::new();
    let options = options(&server).timeout(None).interrupt(handle.clone());
    let mut job = Job::create(JobRequest::AnyBoard, &options).expect("create");
    let err = thread::scope(|s| {
        s.spawn(|| interrupt_after(&server, "notify_job", &handle));
        job.wait_until_ready(None).unwrap_err()
    });
    assert!(matches!(err, Error::Interrupted), "{err:?}");
    // The job can still be destroyed afterwards.
    job.destroy(Some("interrupted")).expect("destroy");
    assert_eq!(server.count("destroy_job"), 1);
}

/// An interruption while `create_job` is in flight waits (up to a second)
/// for the job's id, so that the new job is destroyed, not left to expire.
#[test]
fn an_interruption_during_create_job_still_gets_the_id() {
    let server = stalling("none", Duration::from_millis(300));
    let handle = InterruptHandle::new();
    let options = options(&server).interrupt(handle.clone());
    let job = thread::scope(|s| {
        s.spawn(|| interrupt_after(&server, "create_job", &handle));
        Job::create(JobRequest::AnyBoard, &options)
    })
    .expect("the id arrived within the grace period");
    assert_eq!(job.id(), 7);
    // The interruption is left for the next wait; dropping destroys.
    assert!(handle.is_interrupted());
    drop(job);
    assert_eq!(server.count("destroy_job"), 1);
}

/// The observer hears of a lost connection once, and of its return.
#[test]
fn connection_changes_are_reported_once_each() -> Result<(), Error> {
    let (server, jobs) = mini(2);
    let mut job = Job::create(JobRequest::AnyBoard, &options(&server))?;
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&events);
    job.on_connection_change(move |e| {
        let text = match e {
            ConnectionEvent::Lost(err) => format!("lost: {}", err.is_transport()),
            ConnectionEvent::Restored => "restored".to_owned(),
            _ => "other".to_owned(),
        };
        seen.lock().expect("lock").push(text);
    });
    assert_eq!(job.state()?, JobState::Power);
    server.refuse(true);
    server.kill_connections();
    assert!(job.state().is_err());
    assert!(job.state().is_err());
    server.refuse(false);
    assert_eq!(job.state()?, JobState::Power);
    jobs.set(1, 3, None);
    assert_eq!(job.state()?, JobState::Ready);
    assert_eq!(*events.lock().expect("lock"), ["lost: true", "restored"]);
    job.destroy(None)?;
    // Nothing is reported about the release.
    assert_eq!(events.lock().expect("lock").len(), 2);
    Ok(())
}

/// A server that applies a shorter keepalive interval than the one asked
/// for (as the Java service turns "never" into 60 s): once the check has
/// seen it, keepalives come often enough for it.
#[test]
fn keepalives_follow_the_interval_the_server_applies() -> Result<(), Error> {
    let server = FakeServer::start(Dialect::Java, |c| {
        Reply::Return(match c.command.as_str() {
            "version" => json!("5.0.0"),
            "create_job" => json!(7),
            // The Java service's state: the time of the last keepalive.
            "get_job_state" => json!({"state": 3, "power": true, "keepalive": 1.7e9,
                "reason": "", "start_time": 1.7e9, "keepalivehost": "127.0.0.1"}),
            "list_jobs" => json!([{"job_id": 7, "owner": "tester", "start_time": 1.7e9,
                "keepalive": 0.4, "state": 3, "power": true, "args": [], "kwargs": {},
                "allocated_machine_name": "m", "boards": [[0, 0, 0]],
                "keepalivehost": "127.0.0.1", "reason": ""}]),
            _ => Value::Null,
        })
    });
    let mut job = Job::create(JobRequest::AnyBoard, &options(&server).keepalive(None))?;
    assert_eq!(job.keepalive_period(), Duration::from_secs(30));
    let check = job.keepalive_check()?.expect("listed");
    assert_eq!(check.honoured(), Some(false));
    assert_eq!(job.keepalive_period(), Duration::from_millis(200));
    // One at once, then every 200 ms: never 30 s apart.
    assert!(server.wait_for_count("job_keepalive", 3));
    let kas = server.calls_named("job_keepalive");
    assert!(kas.iter().all(|c| c.job_id() == Some(7)), "{kas:?}");
    Ok(())
}

/// Where the job's state gives the interval asked for (the Python server),
/// the check reads no listing of every job.
#[test]
fn a_keepalive_the_state_confirms_needs_no_listing() -> Result<(), Error> {
    let server = FakeServer::start(Dialect::Python, |c| {
        Reply::Return(match c.command.as_str() {
            "version" => json!("1.1.0"),
            "create_job" => json!(7),
            "get_job_state" => json!({"state": 3, "power": true, "keepalive": 45.0,
                "reason": null, "start_time": 1.7e9, "keepalivehost": "127.0.0.1"}),
            "list_jobs" => json!("a listing was read"),
            _ => Value::Null,
        })
    });
    let options = options(&server).keepalive(Some(Duration::from_secs(45)));
    let mut job = Job::create(JobRequest::AnyBoard, &options)?;
    let check = job.keepalive_check()?.expect("live");
    assert_eq!(check.honoured(), Some(true));
    assert_eq!(check.applied, KeepaliveInterval::Seconds(45.0));
    assert!(server.calls_named("list_jobs").is_empty());
    Ok(())
}

/// The Java service refuses to watch a job it no longer knows, where the
/// Python server accepts any id: a wait ends with the job unknown on both.
#[test]
fn a_wait_for_a_job_the_server_forgot_ends_unknown() {
    let looked = Arc::new(Mutex::new(0u32));
    let l = looked.clone();
    let server = FakeServer::start(Dialect::Java, move |c| match c.command.as_str() {
        "version" => Reply::Return(json!("5.0.0")),
        "create_job" => Reply::Return(json!(7)),
        "get_job_state" => {
            let mut n = l.lock().expect("lock");
            *n += 1;
            if *n == 1 {
                Reply::Return(json!({"state": 1, "power": false, "keepalive": 1.7e9,
                    "reason": "", "start_time": 1.7e9, "keepalivehost": ""}))
            } else {
                Reply::Exception("no such job".into())
            }
        }
        "notify_job" | "job_keepalive" | "destroy_job" => Reply::Exception("no such job".into()),
        _ => Reply::Return(Value::Null),
    });
    let mut job = Job::create(JobRequest::AnyBoard, &options(&server)).expect("create");
    let waited = job.wait_until_ready(Some(PATIENCE));
    assert!(
        matches!(waited, Err(Error::JobUnknown { id: 7 })),
        "{waited:?}"
    );
    assert!(server.count("notify_job") >= 1);
}
