//! `?wait=true`: a waiting request returns as soon as what it watches
//! changes, or after the bound with the current state; waiting costs no
//! polling, and shutdown wakes waiters.

use std::thread;
use std::time::{Duration, Instant};

use serde_json::json;

use super::{alice, boards, start, v2};

/// A bound long enough that returning before it proves a wake-up.
const LONG: Duration = Duration::from_secs(15);

/// Makes a change with `poke` until `waiter` has answered (the first pokes
/// may come before its request is waiting; each later one is a change it
/// must see), then returns the answer and how long after the first poke it
/// came.
fn poke_until<T>(waiter: thread::JoinHandle<T>, mut poke: impl FnMut()) -> (T, Duration) {
    let t = Instant::now();
    while !waiter.is_finished() && t.elapsed() < LONG {
        poke();
        thread::sleep(Duration::from_millis(50));
    }
    (waiter.join().expect("waiter"), t.elapsed())
}

#[test]
fn a_job_wait_returns_on_a_change() {
    let server = start(v2().wait_timeout(LONG));
    let h = alice(&server);
    let id = h.create(&boards(1));
    let url = h.srv(&format!("jobs/{id}?wait=true"));
    let waiter = {
        let h = h.clone();
        thread::spawn(move || h.get(&url))
    };
    // Change it from another client.
    let power = h.srv(&format!("jobs/{id}/machine/power"));
    let (r, took) = poke_until(waiter, || {
        h.post_json(&power, &json!({"power": "OFF"})).expect(202);
    });
    r.expect(200);
    assert!(took < LONG, "took {took:?}");
    // The answer is the state after the change (instant power: READY again,
    // with the power off).
    assert_eq!(r.json()["state"], "READY");
    assert_eq!(
        h.get(&h.srv(&format!("jobs/{id}/machine/power"))).json(),
        json!({"power": "OFF"})
    );
}

#[test]
fn a_job_wait_returns_after_the_bound_unchanged() {
    let bound = Duration::from_millis(400);
    let server = start(v2().wait_timeout(bound));
    let h = alice(&server);
    let id = h.create(&boards(1));
    let t = Instant::now();
    let r = h.get(&h.srv(&format!("jobs/{id}?wait=true")));
    let took = t.elapsed();
    r.expect(200);
    assert_eq!(r.json()["state"], "READY");
    assert!(took >= bound, "returned early, after {took:?}");
    assert!(took < bound + Duration::from_secs(5), "took {took:?}");
}

#[test]
fn a_job_wait_sees_destruction_and_expiry() {
    let server = start(v2().wait_timeout(LONG));
    let h = alice(&server);
    let id = h.create(&json!({"num-boards": 1, "tags": ["default"], "keepalive-interval": "PT1S"}));
    let url = h.srv(&format!("jobs/{id}?wait=true"));
    let waiter = {
        let h = h.clone();
        thread::spawn(move || h.get(&url))
    };
    // The keepalive interval passes on the server's clock.
    let (r, took) = poke_until(waiter, || server.advance(Duration::from_secs(2)));
    r.expect(200);
    let body = r.json();
    assert_eq!(body["state"], "DESTROYED");
    assert_eq!(body["reason"], "keepalive expired");
    assert!(took < LONG);
}

#[test]
fn a_wait_on_a_destroyed_job_answers_at_once() {
    let server = start(v2().wait_timeout(LONG));
    let h = alice(&server);
    let id = h.create(&boards(1));
    h.delete(&h.srv(&format!("jobs/{id}"))).expect(204);
    let t = Instant::now();
    let r = h.get(&h.srv(&format!("jobs/{id}?wait=true")));
    assert_eq!(r.json()["state"], "DESTROYED");
    assert!(t.elapsed() < LONG);
}

#[test]
fn list_and_machine_waits() {
    let server = start(v2().wait_timeout(LONG));
    let h = alice(&server);
    // An empty page does not wait.
    let t = Instant::now();
    let r = h.get(&h.srv("jobs?wait=true"));
    assert_eq!(r.json()["jobs"], json!([]));
    assert!(t.elapsed() < LONG);

    let id = h.create(&boards(1));
    // A machine wait ends when its allocations change.
    let url = h.srv("machines/m?wait=true");
    let waiter = {
        let h = h.clone();
        thread::spawn(move || h.get(&url))
    };
    let (r, took) = poke_until(waiter, || {
        let other = h.create(&boards(3));
        h.delete(&h.srv(&format!("jobs/{other}"))).expect(204);
    });
    r.expect(200);
    assert_eq!(r.json()["name"], "m");
    assert!(took < LONG);

    // A list wait ends when a job on the page changes, and answers with a
    // fresh page.
    let url = h.srv("jobs?wait=true");
    let waiter = {
        let h = h.clone();
        thread::spawn(move || h.get(&url))
    };
    let power = h.srv(&format!("jobs/{id}/machine/power"));
    let (r, took) = poke_until(waiter, || {
        h.post_json(&power, &json!({"power": "OFF"})).expect(202);
    });
    assert!(took < LONG);
    let jobs = r.json()["jobs"].clone();
    assert_eq!(
        jobs,
        json!([format!("http://{}/spalloc/srv/spalloc/jobs/{id}", h.addr)])
    );
}

#[test]
fn shutdown_wakes_waiters() {
    let server = start(v2().wait_timeout(Duration::from_secs(60)));
    let h = alice(&server);
    let id = h.create(&boards(1));
    let url = h.srv(&format!("jobs/{id}?wait=true"));
    let (tx, rx) = std::sync::mpsc::channel();
    let addr = h.addr;
    let waiter = thread::spawn(move || {
        // The raw exchange: the connection may close before a response.
        let mut c = h.clone();
        c.addr = addr;
        let got = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| c.get(&url)));
        let _ = tx.send(got.is_ok());
    });
    // Give the request time to arrive; a server stopped before it arrives
    // refuses or closes the connection, which ends the request just as well.
    thread::sleep(Duration::from_millis(200));
    let t = Instant::now();
    server.shutdown();
    let _ = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the waiter ended");
    assert!(t.elapsed() < Duration::from_secs(10));
    waiter.join().expect("waiter thread");
}
