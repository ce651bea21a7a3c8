//! A v1 server without sockets or threads, whose clock the test moves: for
//! testing whatever takes time (power changes, keepalive expiry, releases,
//! the notifications of timed events) exactly and at once, instead of
//! sleeping through it.
//!
//! Requests go through the same handling as on a connection
//! (`v1::handle_line`, then the controller's tick and the round of
//! notifications that `net` sends after each request); only the sockets
//! and the ticker thread are left out, and time passes only when
//! [`Clocked::advance`] says so.
//!
//! The tests below are those of `tests/server/` that used to wait for real
//! time to pass (or for silence, to be sure a notification did not come).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::config::{Dialect, ServerConfig};
use super::state::Controller;
use super::v1::{self, Broadcast, Context, Outcome, Subscriptions};

/// One client: its subscriptions, and the notifications it was sent.
#[derive(Debug, Default)]
struct Client {
    subscriptions: Subscriptions,
    inbox: VecDeque<Value>,
}

/// A server and its clients, at a time the test sets.
#[derive(Debug)]
pub(crate) struct Clocked {
    controller: Controller,
    dialect: Dialect,
    version: String,
    clients: Vec<Client>,
    now: Instant,
}

impl Clocked {
    /// A server as `config` sets it up, at time zero.
    pub fn new(config: ServerConfig) -> Clocked {
        let defs = config
            .validate()
            .unwrap_or_else(|e| panic!("invalid configuration: {e}"));
        Clocked {
            controller: Controller::new(super::settings(&config), defs),
            dialect: config.dialect,
            version: config.version,
            clients: Vec::new(),
            now: Instant::now(),
        }
    }

    /// A new client, with no subscriptions.
    pub fn connect(&mut self) -> usize {
        self.clients.push(Client::default());
        self.clients.len() - 1
    }

    /// Sends a command as `client`: its return value, or the exception's
    /// message.
    pub fn request(
        &mut self,
        client: usize,
        command: &str,
        args: Value,
        kwargs: Value,
    ) -> Result<Value, String> {
        let line = json!({"command": command, "args": args, "kwargs": kwargs}).to_string();
        let mut ctx = Context {
            controller: &mut self.controller,
            subscriptions: &mut self.clients[client].subscriptions,
            version: &self.version,
            host: "127.0.0.1",
            now: self.now,
        };
        let outcome = v1::handle_line(self.dialect, &mut ctx, line.as_bytes());
        self.controller.tick(self.now);
        self.notify();
        match outcome {
            Outcome::Reply(reply) => {
                let reply: Value = serde_json::from_str(&reply)
                    .unwrap_or_else(|e| panic!("reply {reply:?} is not JSON: {e}"));
                match (reply.get("return"), reply.get("exception")) {
                    (Some(v), _) => Ok(v.clone()),
                    (None, Some(e)) => Err(e.as_str().unwrap_or_default().to_owned()),
                    (None, None) => panic!("neither a return nor an exception: {reply}"),
                }
            }
            other => panic!("{command}: no reply ({other:?})"),
        }
    }

    /// [`request`](Self::request), expecting a return value.
    pub fn call(&mut self, client: usize, command: &str, args: Value, kwargs: Value) -> Value {
        self.request(client, command, args, kwargs)
            .unwrap_or_else(|e| panic!("{command}: exception {e}"))
    }

    /// Creates a job for owner `tester` (with `kwargs` besides); its id.
    pub fn create(&mut self, client: usize, args: Value, kwargs: Value) -> u64 {
        let mut kwargs = kwargs;
        kwargs["owner"] = json!("tester");
        let id = self.call(client, "create_job", args, kwargs);
        id.as_u64()
            .unwrap_or_else(|| panic!("create_job gave {id}"))
    }

    /// `get_job_state`'s reply.
    pub fn state(&mut self, client: usize, id: u64) -> Value {
        self.call(client, "get_job_state", json!([id]), json!({}))
    }

    /// The number of a job's state.
    pub fn state_num(&mut self, client: usize, id: u64) -> u64 {
        self.state(client, id)["state"].as_u64().unwrap_or(u64::MAX)
    }

    /// Lets `d` pass: whatever was due in that time happens, and its
    /// notifications are sent.
    pub fn advance(&mut self, d: Duration) {
        self.now += d;
        self.controller.tick(self.now);
        self.notify();
    }

    /// The notifications `client` has been sent since it last looked.
    pub fn notifications(&mut self, client: usize) -> Vec<Value> {
        self.clients[client].inbox.drain(..).collect()
    }

    /// Sends this round's changes to every subscriber, as `net` does after
    /// each request and each tick.
    fn notify(&mut self) {
        let changes = self.controller.take_changes();
        if changes.is_empty() {
            return;
        }
        let broadcast = Broadcast::new(self.dialect, &changes);
        for c in &mut self.clients {
            for line in broadcast.lines_for(&c.subscriptions) {
                let v: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("notification {line:?} is not JSON: {e}"));
                c.inbox.push_back(v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! Job life in time, and notifications.

    use super::*;
    use crate::server::Machine;

    const MS: Duration = Duration::from_millis(1);

    fn one_triad() -> Clocked {
        Clocked::new(ServerConfig::instant().machines(vec![Machine::new("m", 1, 1)]))
    }

    #[test]
    fn keepalive_expiry_of_allocated_and_queued_jobs() {
        let mut s = one_triad();
        let c = s.connect();
        // The queued job runs out first, so it is still queued when it does.
        let a = s.create(c, json!([1, 1]), json!({"keepalive": 0.5}));
        let q = s.create(c, json!([1, 1]), json!({"keepalive": 0.2}));
        let kept = s.create(c, json!([1, 1]), json!({"keepalive": 1.0}));
        let forever = s.create(c, json!([1, 1]), json!({"keepalive": null}));
        // Keep one queued job alive from a second connection while the
        // others run out; list_jobs and where_is must not count as
        // keepalives.
        let other = s.connect();
        for _ in 0..24 {
            s.call(other, "job_keepalive", json!([kept]), json!({}));
            s.call(c, "list_jobs", json!([]), json!({}));
            s.call(
                c,
                "where_is",
                json!([]),
                json!({"job_id": a, "chip_x": 0, "chip_y": 0}),
            );
            s.advance(50 * MS);
        }
        let sa = s.state(c, a);
        assert_eq!(sa["state"], 4);
        assert_eq!(sa["reason"], "Job timed out.");
        let sq = s.state(c, q);
        assert_eq!(sq["reason"], "Cancelled: Job timed out.");
        // The kept job got the freed machine when the first one expired.
        assert_eq!(s.state(c, kept)["state"], 3);
        assert_eq!(s.state_num(c, forever), 1);
    }

    #[test]
    fn power_transitions_take_the_power_delay() {
        let delay = 600 * MS;
        let mut s = Clocked::new(
            ServerConfig::instant()
                .machines(vec![Machine::new("m", 1, 1)])
                .power_delay(delay),
        );
        let c = s.connect();
        let id = s.create(c, json!([1, 1]), json!({}));
        let st = s.state(c, id);
        assert_eq!(st["state"], 2);
        assert_eq!(st["power"], true);
        // Machine info is there while powering on.
        assert_eq!(
            s.call(c, "get_job_machine_info", json!([id]), json!({}))["machine_name"],
            "m"
        );
        s.advance(delay - MS);
        assert_eq!(s.state_num(c, id), 2, "ready before the power delay");
        s.advance(MS);
        assert_eq!(s.state_num(c, id), 3);

        // Two overlapping power requests: ready only when both are done.
        s.call(c, "power_off_job_boards", json!([id]), json!({}));
        s.advance(300 * MS);
        s.call(c, "power_on_job_boards", json!([id]), json!({}));
        let st = s.state(c, id);
        assert_eq!(
            (st["state"].clone(), st["power"].clone()),
            (json!(2), json!(true))
        );
        // The first request has finished, but not the second.
        s.advance(400 * MS);
        assert_eq!(s.state_num(c, id), 2);
        s.advance(delay - 400 * MS);
        assert_eq!(s.state_num(c, id), 3);
        assert_eq!(s.state(c, id)["power"], true);

        // Power commands on queued or unknown jobs do nothing.
        let q = s.create(c, json!([1, 1]), json!({}));
        s.call(c, "power_on_job_boards", json!([q]), json!({}));
        assert_eq!(s.state(c, q)["power"], Value::Null);
        s.call(c, "power_on_job_boards", json!([4242]), json!({}));

        // Destroying powers off before the boards are released: the queued
        // job gets them only after the delay.
        s.call(c, "destroy_job", json!([id]), json!({}));
        assert_eq!(s.state_num(c, q), 1);
        s.advance(delay - MS);
        assert_eq!(s.state_num(c, q), 1);
        s.advance(MS);
        assert!(s.state_num(c, q) >= 2);
    }

    #[test]
    fn seconds_before_free_delays_reuse() {
        let hold = 600 * MS;
        let mut s = Clocked::new(
            ServerConfig::instant()
                .machines(vec![Machine::new("m", 1, 1)])
                .seconds_before_free(hold),
        );
        let c = s.connect();
        let a = s.create(c, json!([1, 1]), json!({}));
        let b = s.create(c, json!([1, 1]), json!({}));
        s.call(c, "destroy_job", json!([a]), json!({}));
        // The boards are not reported as belonging to anyone meanwhile.
        let w = s.call(
            c,
            "where_is",
            json!([]),
            json!({"machine": "m", "x": 0, "y": 0, "z": 0}),
        );
        assert_eq!(w["job_id"], Value::Null);
        // Still queued until the hold is over.
        for _ in 0..2 {
            assert_eq!(s.state_num(c, b), 1);
            s.advance(hold / 3);
        }
        assert_eq!(s.state_num(c, b), 1);
        s.advance(hold / 3);
        assert_eq!(s.state_num(c, b), 3);
    }

    #[test]
    fn power_changes_notify_once_per_completed_set() {
        let delay = 1000 * MS;
        let mut s = Clocked::new(
            ServerConfig::instant()
                .machines(vec![Machine::new("m", 1, 1)])
                .power_delay(delay),
        );
        let c = s.connect();
        let id = s.create(c, json!([]), json!({}));
        s.advance(delay);
        assert_eq!(s.state_num(c, id), 3);
        s.call(c, "notify_job", json!([]), json!({}));
        // Off, then on before the off has finished, as separate calls.
        s.call(c, "power_off_job_boards", json!([id]), json!({}));
        s.advance(delay / 2);
        s.call(c, "power_on_job_boards", json!([id]), json!({}));
        // The off's time is up, but the set is not complete: no news.
        s.advance(delay / 2);
        assert_eq!(s.state_num(c, id), 2);
        s.advance(delay / 2);
        assert_eq!(s.state_num(c, id), 3);
        // One as each request starts, one when the last of them finishes.
        assert_eq!(s.notifications(c), vec![json!({"jobs_changed": [id]}); 3]);
    }

    #[test]
    fn watch_all_jobs_and_machines() {
        let mut s = Clocked::new(ServerConfig::instant().machines(vec![Machine::new("m", 2, 2)]));
        let w = s.connect();
        let c = s.connect();
        assert_eq!(s.call(w, "notify_job", json!([]), json!({})), Value::Null);
        assert_eq!(
            s.call(w, "notify_machine", json!([]), json!({})),
            Value::Null
        );

        // Creating and allocating (with its instant power-on) is one tick:
        // one message per kind.
        let a = s.create(c, json!([1, 1]), json!({}));
        assert_eq!(
            s.notifications(w),
            vec![
                json!({"jobs_changed": [a]}),
                json!({"machines_changed": ["m"]})
            ]
        );
        // A job cancelled at once is still reported, without a machine
        // change.
        let x = s.create(c, json!([9, 9, 9]), json!({}));
        assert_eq!(s.notifications(w), vec![json!({"jobs_changed": [x]})]);
        // Destroying one job and allocating the next are coalesced, sorted.
        let b = s.create(c, json!([2, 2]), json!({}));
        assert_eq!(s.notifications(w), vec![json!({"jobs_changed": [b]})]);
        s.call(c, "destroy_job", json!([a]), json!({}));
        assert_eq!(
            s.notifications(w),
            vec![
                json!({"jobs_changed": [a, b]}),
                json!({"machines_changed": ["m"]})
            ]
        );
        // Power changes notify jobs only.
        s.call(c, "power_off_job_boards", json!([b]), json!({}));
        assert_eq!(s.notifications(w), vec![json!({"jobs_changed": [b]})]);
        // Queries notify nobody.
        s.call(c, "list_jobs", json!([]), json!({}));
        s.call(c, "get_job_state", json!([b]), json!({}));
        assert_eq!(s.notifications(w), Vec::<Value>::new());
    }

    #[test]
    fn specific_watches_and_unsubscribing() {
        let mut s = Clocked::new(ServerConfig::instant().machines(vec![
            Machine::new("m", 1, 1),
            Machine::new("n", 1, 1)
                .tags(["n"])
                .base_ip(std::net::Ipv4Addr::new(10, 0, 0, 0)),
        ]));
        let w = s.connect();
        let c = s.connect();
        let a = s.create(c, json!([]), json!({}));
        let b = s.create(c, json!([]), json!({}));
        s.call(w, "notify_job", json!([b]), json!({}));
        s.call(w, "notify_job", json!([]), json!({"job_id": 777}));
        s.call(w, "notify_machine", json!(["n"]), json!({}));
        s.call(c, "power_off_job_boards", json!([a]), json!({}));
        s.call(c, "power_off_job_boards", json!([b]), json!({}));
        assert_eq!(s.notifications(w), vec![json!({"jobs_changed": [b]})]);
        // Activity on machine m is not reported; on n it is.
        let on_m = s.create(c, json!([]), json!({}));
        assert_eq!(s.notifications(w), Vec::<Value>::new());
        let on_n = s.create(c, json!([]), json!({"machine": "n"}));
        assert_eq!(s.notifications(w), vec![json!({"machines_changed": ["n"]})]);

        // Unsubscribe one id; then everything with null.
        s.call(w, "no_notify_job", json!([b]), json!({}));
        s.call(c, "power_on_job_boards", json!([b]), json!({}));
        assert_eq!(s.notifications(w), Vec::<Value>::new());
        s.call(w, "notify_job", json!([null]), json!({}));
        s.call(c, "power_on_job_boards", json!([on_m]), json!({}));
        assert_eq!(s.notifications(w), vec![json!({"jobs_changed": [on_m]})]);
        // Removing one id while watching everything changes nothing.
        s.call(w, "no_notify_job", json!([on_m]), json!({}));
        s.call(c, "power_on_job_boards", json!([on_m]), json!({}));
        assert_eq!(s.notifications(w), vec![json!({"jobs_changed": [on_m]})]);
        s.call(w, "no_notify_job", json!([]), json!({}));
        s.call(
            w,
            "no_notify_machine",
            json!([]),
            json!({"machine_name": null}),
        );
        s.call(c, "destroy_job", json!([on_n]), json!({}));
        assert_eq!(s.notifications(w), Vec::<Value>::new());
    }

    #[test]
    fn notifications_for_timed_events() {
        let mut s = Clocked::new(
            ServerConfig::instant()
                .machines(vec![Machine::new("m", 1, 1)])
                .power_delay(100 * MS),
        );
        let c = s.connect();
        s.call(c, "notify_job", json!([]), json!({}));
        s.call(c, "notify_machine", json!([]), json!({}));
        let a = s.create(c, json!([]), json!({"keepalive": 1.0}));
        // Creation and the start of power-on...
        assert_eq!(
            s.notifications(c),
            vec![
                json!({"jobs_changed": [a]}),
                json!({"machines_changed": ["m"]})
            ]
        );
        // ...then its completion...
        s.advance(100 * MS);
        assert_eq!(s.notifications(c), vec![json!({"jobs_changed": [a]})]);
        // ...then expiry, a second after the last keepalive (the create).
        s.advance(900 * MS - MS);
        assert_eq!(s.notifications(c), Vec::<Value>::new());
        s.advance(MS);
        assert_eq!(
            s.notifications(c),
            vec![
                json!({"jobs_changed": [a]}),
                json!({"machines_changed": ["m"]})
            ]
        );
        assert_eq!(s.state(c, a)["reason"], "Job timed out.");
    }
}
