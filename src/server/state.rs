//! The job controller: jobs, queues, power, keepalives and releases.
//!
//! This is the virtual counterpart of the Python server's controller and job
//! queue. It owns every machine's allocator and every job, answers the
//! commands of the protocol with JSON values, and records which jobs and
//! machines changed so that the network layer can notify subscribers. It
//! never touches a socket or a clock of its own: every operation gets `now`
//! from its caller, which keeps timing decisions in one place and testable.

use std::cell::OnceCell;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use log::{debug, info};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::allocator::{Allocation, Allocator, Kind, Request};
use super::geometry::{Board, Wrap, board_to_chip, chip_to_board, triads_to_chips};
use super::machine::MachineDef;

mod v2;
pub(crate) use v2::{
    AllocView, BoardInfo, BoardRef, Finished, IssueReport, JobView, Locate, Located, MachineView,
    ReportedBoard, Selector, V2Request, V2Shape, V2State,
};

/// The timing and memory settings the controller needs.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub power_delay: Duration,
    pub seconds_before_free: Duration,
    pub max_retired_jobs: usize,
}

/// A new job's parsed request and the values to echo back in `list_jobs`.
#[derive(Debug, Clone)]
pub(crate) struct NewJob {
    pub request: Request,
    pub owner: String,
    /// Seconds; `None` never expires.
    pub keepalive: Option<f64>,
    /// The keepalive exactly as the client sent it (60.0 if it sent none).
    pub keepalive_echo: Value,
    pub machine: Option<String>,
    pub tags: Option<Vec<String>>,
    pub args: Vec<Value>,
    pub kwargs: Map<String, Value>,
    /// For a job made through the v2 service, its request as that service
    /// describes it back (`original-request`); `None` for v1 jobs. v2 jobs
    /// also expire and end with the Java server's reasons.
    pub v2_request: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Queued,
    Power,
    Ready,
}

#[derive(Debug, Clone)]
struct JobAlloc {
    machine: usize,
    kind: Kind,
    boards: Vec<Board>,
    torus: Wrap,
    width: i64,
    height: i64,
    /// Sorted by chip coordinate.
    connections: Vec<((i64, i64), String)>,
}

#[derive(Debug, Clone)]
struct Job {
    spec: NewJob,
    /// The parts of the job's `list_jobs` entry that never change, encoded
    /// on first use (see [`JobRow::fixed`]).
    listed: OnceCell<FixedParts>,
    start_time: f64,
    keepalive_until: Option<Instant>,
    /// Unix time of the last keepalive (or of creation).
    keepalive_time: f64,
    /// Whether a keepalive came since creation (the v2 service shows
    /// `keepalive-host` only then); always true for v1 jobs.
    keepalive_seen: bool,
    keepalivehost: String,
    creator_host: String,
    phase: Phase,
    power: Option<bool>,
    pending_power: u32,
    alloc: Option<JobAlloc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    /// One power operation of a live job finished.
    PowerDone(u64),
    /// The power-off of a destroyed job's boards finished.
    PoweredOff(usize, Kind),
}

#[derive(Debug)]
struct MachineState {
    def: MachineDef,
    alloc: Allocator,
    queue: VecDeque<u64>,
    owners: HashMap<Board, u64>,
}

/// The four forms of `where_is`, already reduced to numbers.
#[derive(Debug, Clone)]
pub(crate) enum WhereIs {
    Logical {
        machine: String,
        x: i64,
        y: i64,
        z: i64,
    },
    Physical {
        machine: String,
        cabinet: i64,
        frame: i64,
        board: i64,
    },
    Chip {
        machine: String,
        x: i64,
        y: i64,
    },
    JobChip {
        job_id: Option<u64>,
        x: i64,
        y: i64,
    },
}

/// All jobs and machines of one server.
#[derive(Debug)]
pub(crate) struct Controller {
    settings: Settings,
    machines: Vec<MachineState>,
    jobs: BTreeMap<u64, Job>,
    retired: HashMap<u64, Option<String>>,
    retired_order: VecDeque<u64>,
    /// What the v2 service shows of each retired job (same ids as
    /// `retired`).
    finished: HashMap<u64, Finished>,
    /// Issue reports through the v2 service, newest last (bounded).
    reports: VecDeque<IssueReport>,
    next_id: u64,
    events: BinaryHeap<Reverse<(Instant, u64, Event)>>,
    event_seq: u64,
    changed_jobs: BTreeSet<u64>,
    changed_machines: BTreeSet<String>,
    dirty: bool,
    /// No job's keepalive runs out before this (`None`: no job's ever
    /// does), so that `tick`, which runs after every command, only looks
    /// through the jobs when one may have expired. A refreshed keepalive
    /// only ever moves later, so the bound stays true until a scan
    /// recomputes it.
    next_expiry: Option<Instant>,
}

/// Unix time in seconds, as the Python server reports `start_time`.
fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// `now + d`, or a time far in the future if that cannot be represented.
pub(crate) fn later(now: Instant, d: Duration) -> Instant {
    now.checked_add(d)
        .or_else(|| now.checked_add(Duration::from_secs(100 * 365 * 86_400)))
        .unwrap_or(now)
}

fn keepalive_deadline(now: Instant, keepalive: Option<f64>) -> Option<Instant> {
    let secs = keepalive?;
    if secs.is_nan() || secs <= 0.0 {
        return Some(now);
    }
    // A keepalive too large for a Duration (or an Instant) never runs out.
    let d = Duration::try_from_secs_f64(secs).ok()?;
    now.checked_add(d)
}

impl Controller {
    pub fn new(settings: Settings, defs: Vec<MachineDef>) -> Controller {
        let machines = defs
            .into_iter()
            .map(|def| MachineState {
                alloc: Allocator::new(&def),
                def,
                queue: VecDeque::new(),
                owners: HashMap::new(),
            })
            .collect();
        Controller {
            settings,
            machines,
            jobs: BTreeMap::new(),
            retired: HashMap::new(),
            retired_order: VecDeque::new(),
            finished: HashMap::new(),
            reports: VecDeque::new(),
            next_id: 1,
            events: BinaryHeap::new(),
            event_seq: 0,
            changed_jobs: BTreeSet::new(),
            changed_machines: BTreeSet::new(),
            dirty: false,
            next_expiry: None,
        }
    }

    /// Keeps [`next_expiry`](Self::next_expiry) a lower bound after a job's
    /// keepalive deadline is set to `until`.
    fn expiry_at_or_after(&mut self, until: Option<Instant>) {
        if let Some(t) = until {
            self.next_expiry = Some(self.next_expiry.map_or(t, |e| e.min(t)));
        }
    }

    /// Takes the jobs and machines changed since the last call, sorted.
    pub fn take_changes(&mut self) -> (Vec<u64>, Vec<String>) {
        (
            std::mem::take(&mut self.changed_jobs).into_iter().collect(),
            std::mem::take(&mut self.changed_machines)
                .into_iter()
                .collect(),
        )
    }

    /// Whether anything worth saving changed since the last call.
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    fn machine_index(&self, name: &str) -> Option<usize> {
        self.machines.iter().position(|m| m.def.name == name)
    }

    fn schedule(&mut self, at: Instant, event: Event) {
        self.event_seq += 1;
        self.events.push(Reverse((at, self.event_seq, event)));
    }

    fn retire(&mut self, id: u64, reason: Option<String>) {
        if self.settings.max_retired_jobs == 0 {
            return;
        }
        if self.retired.insert(id, reason).is_none() {
            self.retired_order.push_back(id);
        }
        while self.retired_order.len() > self.settings.max_retired_jobs {
            if let Some(old) = self.retired_order.pop_front() {
                self.retired.remove(&old);
                self.finished.remove(&old);
            }
        }
    }

    // ----- creating, allocating and destroying jobs -----

    pub fn create_job(&mut self, spec: NewJob, host: &str, now: Instant) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        debug!(
            "job {id}: created by {} from {host}: {:?}",
            spec.owner, spec.request
        );
        let until = keepalive_deadline(now, spec.keepalive);
        self.expiry_at_or_after(until);
        let start_time = unix_now();
        let job = Job {
            keepalive_until: until,
            keepalive_time: start_time,
            keepalive_seen: spec.v2_request.is_none(),
            spec,
            listed: OnceCell::new(),
            start_time,
            keepalivehost: host.to_owned(),
            creator_host: host.to_owned(),
            phase: Phase::Queued,
            power: None,
            pending_power: 0,
            alloc: None,
        };
        self.jobs.insert(id, job);
        self.changed_jobs.insert(id);
        self.dirty = true;
        if self.enqueue(id) {
            self.advance_queues(now);
        } else {
            self.destroy(id, Some("No suitable machines available.".to_owned()), now);
        }
        id
    }

    /// Puts a queued job on the queue of every machine that could ever run
    /// it; returns whether there was one.
    fn enqueue(&mut self, id: u64) -> bool {
        let Some(job) = self.jobs.get(&id) else {
            return false;
        };
        let spec = &job.spec;
        let default_tags = ["default".to_owned()];
        let tags: &[String] = spec.tags.as_deref().unwrap_or(&default_tags);
        let mut accepted = false;
        for m in &mut self.machines {
            let candidate = match &spec.machine {
                Some(name) => *name == m.def.name,
                None => m.def.has_tags(tags),
            };
            if candidate && m.alloc.possible(&m.def, &spec.request) {
                m.queue.push_back(id);
                accepted = true;
            }
        }
        accepted
    }

    /// Allocates queue heads until a whole pass allocates nothing. Each
    /// machine tries only its head, so a job that does not fit blocks every
    /// job behind it on that machine.
    fn advance_queues(&mut self, now: Instant) {
        loop {
            let mut changed = false;
            for mi in 0..self.machines.len() {
                let head = loop {
                    let Some(&head) = self.machines[mi].queue.front() else {
                        break None;
                    };
                    if self.jobs.get(&head).is_some_and(|j| j.alloc.is_none()) {
                        break Some(head);
                    }
                    self.machines[mi].queue.pop_front();
                };
                let Some(head) = head else {
                    continue;
                };
                let Some(request) = self.jobs.get(&head).map(|j| j.spec.request.clone()) else {
                    continue;
                };
                let m = &mut self.machines[mi];
                if let Some(a) = m.alloc.allocate(&m.def, &request, now) {
                    m.queue.pop_front();
                    self.allocated(head, mi, a, now);
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
    }

    /// Records allocation `a` of machine `mi` as job `id`'s boards.
    fn install(&mut self, id: u64, mi: usize, a: Allocation) -> bool {
        let m = &mut self.machines[mi];
        let boards = a.boards;
        let (Some(&(ox, oy, oz)), Some(&(bx, by, _))) = (boards.first(), boards.last()) else {
            return false;
        };
        let Some(job) = self.jobs.get_mut(&id) else {
            return false;
        };
        let (width, height) = if boards.len() == 1 {
            (8, 8)
        } else {
            triads_to_chips(i64::from(bx - ox + 1), i64::from(by - oy + 1), a.torus)
        };
        let mut connections: Vec<((i64, i64), String)> = boards
            .iter()
            .map(|&(x, y, z)| {
                let chip = board_to_chip(i64::from(x - ox), i64::from(y - oy), i64::from(z - oz));
                (chip, m.def.ips.get(&(x, y, z)).cloned().unwrap_or_default())
            })
            .collect();
        connections.sort();
        for &b in &boards {
            m.owners.insert(b, id);
        }
        job.alloc = Some(JobAlloc {
            machine: mi,
            kind: a.kind,
            boards,
            torus: a.torus,
            width,
            height,
            connections,
        });
        true
    }

    fn allocated(&mut self, id: u64, mi: usize, a: Allocation, now: Instant) {
        let count = a.boards.len();
        if !self.install(id, mi, a) {
            return;
        }
        let name = self.machines[mi].def.name.clone();
        debug!("job {id}: allocated {count} board(s) of {name}");
        self.changed_machines.insert(name);
        // The Python server restarts the keepalive when a job gets its
        // boards; the Java server does not.
        if let Some(job) = self.jobs.get_mut(&id)
            && job.spec.v2_request.is_none()
        {
            let until = keepalive_deadline(now, job.spec.keepalive);
            job.keepalive_until = until;
            job.keepalivehost = job.creator_host.clone();
            self.expiry_at_or_after(until);
        }
        self.start_power(id, true, now);
    }

    fn start_power(&mut self, id: u64, on: bool, now: Instant) {
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        if job.alloc.is_none() {
            return;
        }
        job.pending_power += 1;
        job.power = Some(on);
        job.phase = Phase::Power;
        self.changed_jobs.insert(id);
        self.dirty = true;
        if self.settings.power_delay.is_zero() {
            self.power_done(id);
        } else {
            self.schedule(later(now, self.settings.power_delay), Event::PowerDone(id));
        }
    }

    fn power_done(&mut self, id: u64) {
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        if job.pending_power == 0 {
            return;
        }
        job.pending_power -= 1;
        if job.pending_power == 0 {
            job.phase = Phase::Ready;
        }
        self.changed_jobs.insert(id);
        self.dirty = true;
    }

    /// Destroys a live job (no-op for any other id). A job that was still
    /// queued gets `"Cancelled: "` in front of its reason.
    pub fn destroy(&mut self, id: u64, reason: Option<String>, now: Instant) {
        let Some(job) = self.jobs.remove(&id) else {
            return;
        };
        let reason = match &job.alloc {
            // The Java server keeps the reason as given.
            None if job.spec.v2_request.is_none() => {
                Some(format!("Cancelled: {}", reason.unwrap_or_default()))
            }
            _ => reason,
        };
        debug!(
            "job {id}: destroyed ({})",
            reason.as_deref().unwrap_or("no reason")
        );
        let finished = Finished::of(&job, reason.clone());
        for m in &mut self.machines {
            m.queue.retain(|&q| q != id);
        }
        if let Some(a) = job.alloc {
            let m = &mut self.machines[a.machine];
            for b in &a.boards {
                m.owners.remove(b);
            }
            self.changed_machines.insert(m.def.name.clone());
            if self.settings.power_delay.is_zero() {
                self.powered_off(a.machine, a.kind, now);
            } else {
                self.schedule(
                    later(now, self.settings.power_delay),
                    Event::PoweredOff(a.machine, a.kind),
                );
            }
        }
        self.retire(id, reason);
        if self.retired.contains_key(&id) {
            self.finished.insert(id, finished);
        }
        self.changed_jobs.insert(id);
        self.dirty = true;
        self.advance_queues(now);
    }

    fn powered_off(&mut self, mi: usize, kind: Kind, now: Instant) {
        let delay = self.settings.seconds_before_free;
        let Some(m) = self.machines.get_mut(mi) else {
            return;
        };
        m.alloc.schedule_release(kind, later(now, delay));
        if m.alloc.release_matured(&m.def, now) {
            self.dirty = true;
            self.advance_queues(now);
        }
    }

    /// Runs everything that is due: finished power operations, matured
    /// releases and keepalive expiry.
    pub fn tick(&mut self, now: Instant) {
        while let Some(Reverse((at, _, event))) = self.events.peek().copied() {
            if at > now {
                break;
            }
            self.events.pop();
            match event {
                Event::PowerDone(id) => self.power_done(id),
                Event::PoweredOff(mi, kind) => self.powered_off(mi, kind, now),
            }
        }
        let mut freed = false;
        for m in &mut self.machines {
            freed |= m.alloc.release_matured(&m.def, now);
        }
        if freed {
            self.dirty = true;
            self.advance_queues(now);
        }
        if self.next_expiry.is_some_and(|t| t < now) {
            let expired: Vec<u64> = self
                .jobs
                .iter()
                .filter(|(_, j)| j.keepalive_until.is_some_and(|t| t < now))
                .map(|(&id, _)| id)
                .collect();
            for id in expired {
                let v2 = self
                    .jobs
                    .get(&id)
                    .is_some_and(|j| j.spec.v2_request.is_some());
                let reason = if v2 {
                    v2::KEEPALIVE_EXPIRED
                } else {
                    "Job timed out."
                };
                self.destroy(id, Some(reason.to_owned()), now);
            }
            self.next_expiry = self.jobs.values().filter_map(|j| j.keepalive_until).min();
        }
    }

    /// When the next power operation or release falls due, if any.
    pub fn next_event(&self) -> Option<Instant> {
        let power = self.events.peek().map(|Reverse((t, _, _))| *t);
        let release = self
            .machines
            .iter()
            .filter_map(|m| m.alloc.next_release())
            .min();
        match (power, release) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    // ----- the commands of the protocol -----

    /// Refreshes a live job's keepalive; returns whether the job is live.
    fn touch(&mut self, id: Option<u64>, host: &str, now: Instant) -> bool {
        let Some(job) = id.and_then(|id| self.jobs.get_mut(&id)) else {
            return false;
        };
        let until = keepalive_deadline(now, job.spec.keepalive);
        job.keepalive_until = until;
        job.keepalive_time = unix_now();
        job.keepalive_seen = true;
        if job.keepalivehost != host {
            job.keepalivehost = host.to_owned();
            self.dirty = true;
        }
        self.expiry_at_or_after(until);
        true
    }

    pub fn job_keepalive(&mut self, id: Option<u64>, host: &str, now: Instant) {
        self.touch(id, host, now);
    }

    pub fn get_job_state(&mut self, id: Option<u64>, host: &str, now: Instant) -> Value {
        self.touch(id, host, now);
        let live = id.and_then(|id| self.jobs.get(&id));
        if let Some(job) = live {
            return json!({
                "state": phase_number(job.phase),
                "power": job.power,
                "keepalive": job.spec.keepalive_echo,
                "reason": null,
                "start_time": job.start_time,
                "keepalivehost": job.keepalivehost,
            });
        }
        let (state, reason) = match id.and_then(|id| self.retired.get(&id)) {
            Some(reason) => (4, reason.clone()),
            None => (0, None),
        };
        json!({
            "state": state,
            "power": null,
            "keepalive": null,
            "reason": reason,
            "start_time": null,
            "keepalivehost": null,
        })
    }

    pub fn get_job_machine_info(&mut self, id: Option<u64>, host: &str, now: Instant) -> Value {
        self.touch(id, host, now);
        let found = id
            .and_then(|id| self.jobs.get(&id))
            .and_then(|j| j.alloc.as_ref());
        let Some(a) = found else {
            return json!({
                "width": null, "height": null, "connections": null,
                "machine_name": null, "boards": null,
            });
        };
        let connections: Vec<Value> = a
            .connections
            .iter()
            .map(|((x, y), ip)| json!([[x, y], ip]))
            .collect();
        json!({
            "width": a.width,
            "height": a.height,
            "connections": connections,
            "machine_name": self.machines[a.machine].def.name,
            "boards": boards_json(&a.boards),
        })
    }

    pub fn power(&mut self, id: Option<u64>, on: bool, host: &str, now: Instant) {
        if self.touch(id, host, now)
            && let Some(id) = id
        {
            self.start_power(id, on, now);
        }
    }

    /// The live jobs in creation order, ready to be serialised.
    pub fn list_jobs(&self) -> Vec<JobRow<'_>> {
        self.jobs
            .iter()
            .map(|(&id, j)| JobRow {
                job_id: id,
                owner: &j.spec.owner,
                start_time: j.start_time,
                keepalive: &j.spec.keepalive_echo,
                state: phase_number(j.phase),
                power: j.power,
                args: &j.spec.args,
                kwargs: &j.spec.kwargs,
                allocated_machine_name: j
                    .alloc
                    .as_ref()
                    .map(|a| self.machines[a.machine].def.name.as_str()),
                boards: j.alloc.as_ref().map(|a| a.boards.as_slice()),
                keepalivehost: &j.keepalivehost,
                fixed: &j.listed,
            })
            .collect()
    }

    pub fn list_machines(&self) -> Value {
        let machines: Vec<Value> = self
            .machines
            .iter()
            .map(|m| {
                let dead_links: Vec<Value> = m
                    .def
                    .dead_links
                    .iter()
                    .map(|&((x, y, z), l)| json!([x, y, z, l.index()]))
                    .collect();
                json!({
                    "name": m.def.name,
                    "tags": m.def.tags,
                    "width": m.def.width,
                    "height": m.def.height,
                    "dead_boards": boards_json(&m.def.dead_boards.iter().copied().collect::<Vec<_>>()),
                    "dead_links": dead_links,
                })
            })
            .collect();
        Value::Array(machines)
    }

    pub fn get_board_position(&self, machine: &str, x: i64, y: i64, z: i64) -> Value {
        let found = self.machine_index(machine).and_then(|mi| {
            let b = (
                i32::try_from(x).ok()?,
                i32::try_from(y).ok()?,
                i32::try_from(z).ok()?,
            );
            self.machines[mi].def.locations.get(&b).copied()
        });
        match found {
            Some((c, f, b)) => json!([c, f, b]),
            None => Value::Null,
        }
    }

    pub fn get_board_at_position(&self, machine: &str, c: i64, f: i64, b: i64) -> Value {
        let found = self.machine_index(machine).and_then(|mi| {
            let p = (
                i32::try_from(c).ok()?,
                i32::try_from(f).ok()?,
                i32::try_from(b).ok()?,
            );
            self.machines[mi].def.board_at.get(&p).copied()
        });
        match found {
            Some((x, y, z)) => json!([x, y, z]),
            None => Value::Null,
        }
    }

    pub fn where_is(&self, query: &WhereIs) -> Value {
        self.where_is_inner(query).unwrap_or(Value::Null)
    }

    fn where_is_inner(&self, query: &WhereIs) -> Option<Value> {
        let (mi, cx, cy, wanted_job) = match query {
            WhereIs::Logical { machine, x, y, z } => {
                let mi = self.machine_index(machine)?;
                let d = &self.machines[mi].def;
                let (cx, cy) = board_to_chip(
                    x.rem_euclid(i64::from(d.width)),
                    y.rem_euclid(i64::from(d.height)),
                    *z,
                );
                (mi, cx, cy, None)
            }
            WhereIs::Physical {
                machine,
                cabinet,
                frame,
                board,
            } => {
                let mi = self.machine_index(machine)?;
                let p = (
                    i32::try_from(*cabinet).ok()?,
                    i32::try_from(*frame).ok()?,
                    i32::try_from(*board).ok()?,
                );
                let (x, y, z) = *self.machines[mi].def.board_at.get(&p)?;
                let (cx, cy) = board_to_chip(i64::from(x), i64::from(y), i64::from(z));
                (mi, cx, cy, None)
            }
            WhereIs::Chip { machine, x, y } => (self.machine_index(machine)?, *x, *y, None),
            WhereIs::JobChip { job_id, x, y } => {
                let id = (*job_id)?;
                let a = self.jobs.get(&id)?.alloc.as_ref()?;
                let (jx, jy, jz) = component_min(&a.boards)?;
                let d = &self.machines[a.machine].def;
                let (ox, oy) = board_to_chip(i64::from(jx), i64::from(jy), i64::from(jz));
                let cx = x.rem_euclid(12 * i64::from(d.width)) + ox;
                let cy = y.rem_euclid(12 * i64::from(d.height)) + oy;
                (a.machine, cx, cy, Some(id))
            }
        };
        let d = &self.machines[mi].def;
        let (cw, ch) = (12 * i64::from(d.width), 12 * i64::from(d.height));
        let (cx, cy) = (cx.rem_euclid(cw), cy.rem_euclid(ch));
        let (board, (lx, ly)) = chip_to_board(cx, cy, d.width, d.height);
        let (c, f, b) = *d.locations.get(&board)?;
        let job_id = self.machines[mi].owners.get(&board).copied();
        if wanted_job.is_some() && job_id != wanted_job {
            return None;
        }
        let job_chip = job_id
            .and_then(|id| self.jobs.get(&id))
            .and_then(|j| j.alloc.as_ref())
            .and_then(|a| {
                let (jx, jy, jz) = component_min(&a.boards)?;
                let (x, y, z) = board;
                let (bx, by) =
                    board_to_chip(i64::from(x - jx), i64::from(y - jy), i64::from(z - jz));
                Some(json!([
                    (bx + lx).rem_euclid(a.width),
                    (by + ly).rem_euclid(a.height)
                ]))
            })
            .unwrap_or(Value::Null);
        let (x, y, z) = board;
        Some(json!({
            "machine": d.name,
            "logical": [x, y, z],
            "physical": [c, f, b],
            "chip": [cx, cy],
            "board_chip": [lx, ly],
            "job_id": job_id,
            "job_chip": job_chip,
        }))
    }

    // ----- saving and restoring -----

    pub fn save(&self) -> Saved {
        let machines = self
            .machines
            .iter()
            .map(|m| SavedMachine {
                name: m.def.name.clone(),
                signature: m.def.signature(),
                allocator: m.alloc.clone(),
                pending_releases: m.alloc.pending_releases(),
            })
            .collect();
        let mut pending_off: Vec<(usize, Kind)> = self
            .events
            .iter()
            .filter_map(|Reverse((_, _, e))| match e {
                Event::PoweredOff(mi, kind) => Some((*mi, *kind)),
                Event::PowerDone(_) => None,
            })
            .collect();
        pending_off.sort();
        let mut machines: Vec<SavedMachine> = machines;
        for (mi, kind) in pending_off {
            if let Some(m) = machines.get_mut(mi) {
                m.pending_releases.push(kind);
            }
        }
        let jobs = self
            .jobs
            .iter()
            .map(|(&id, j)| SavedJob {
                id,
                owner: j.spec.owner.clone(),
                keepalive: j.spec.keepalive,
                keepalive_echo: j.spec.keepalive_echo.clone(),
                machine: j.spec.machine.clone(),
                tags: j.spec.tags.clone(),
                args: j.spec.args.clone(),
                kwargs: j.spec.kwargs.clone(),
                request: j.spec.request.clone(),
                start_time: j.start_time,
                keepalivehost: j.keepalivehost.clone(),
                creator_host: j.creator_host.clone(),
                power: j.power,
                v2_request: j.spec.v2_request.clone(),
                keepalive_time: Some(j.keepalive_time),
                keepalive_seen: Some(j.keepalive_seen),
                allocation: j.alloc.as_ref().map(|a| SavedAllocation {
                    machine: self.machines[a.machine].def.name.clone(),
                    kind: a.kind,
                    boards: a.boards.clone(),
                    torus: a.torus,
                }),
            })
            .collect();
        let retired = self
            .retired_order
            .iter()
            .map(|id| (*id, self.retired.get(id).cloned().flatten()))
            .collect();
        let finished = self
            .retired_order
            .iter()
            .filter_map(|id| Some((*id, self.finished.get(id)?.clone())))
            .collect();
        Saved {
            format: SAVE_FORMAT,
            next_id: self.next_id,
            machines,
            jobs,
            retired,
            finished,
        }
    }

    /// Rebuilds the controller from a saved state. Machines whose geometry
    /// changed (or vanished) since the save start empty, and their jobs are
    /// destroyed with the reason `"Machine removed."`. Queued jobs are put
    /// back on the queues in creation order, which is the order they had.
    pub fn restore(&mut self, saved: Saved, now: Instant) {
        let mut unchanged = HashSet::new();
        for sm in saved.machines {
            let Some(mi) = self.machine_index(&sm.name) else {
                continue;
            };
            let m = &mut self.machines[mi];
            if m.def.signature() == sm.signature && sm.allocator.is_consistent(&m.def) {
                m.alloc = sm.allocator;
                for kind in sm.pending_releases {
                    m.alloc.release(&m.def, kind);
                }
                unchanged.insert(mi);
            } else {
                info!(
                    "machine {}: changed since the state was saved; starting it empty",
                    sm.name
                );
            }
        }
        for (id, reason) in saved.retired {
            self.retire(id, reason);
        }
        for (id, f) in saved.finished {
            if self.retired.contains_key(&id) {
                self.finished.insert(id, f);
            }
        }
        let mut max_id = 0;
        let mut pending = Vec::new();
        for sj in saved.jobs {
            max_id = max_id.max(sj.id);
            let spec = NewJob {
                request: sj.request,
                owner: sj.owner,
                keepalive: sj.keepalive,
                keepalive_echo: sj.keepalive_echo,
                machine: sj.machine,
                tags: sj.tags,
                args: sj.args,
                kwargs: sj.kwargs,
                v2_request: sj.v2_request,
            };
            let mut job = Job {
                keepalive_until: keepalive_deadline(now, spec.keepalive),
                keepalive_time: sj.keepalive_time.unwrap_or(sj.start_time),
                keepalive_seen: sj.keepalive_seen.unwrap_or(true),
                spec,
                listed: OnceCell::new(),
                start_time: sj.start_time,
                keepalivehost: sj.keepalivehost,
                creator_host: sj.creator_host,
                phase: Phase::Queued,
                power: None,
                pending_power: 0,
                alloc: None,
            };
            match sj.allocation {
                None => {
                    self.jobs.insert(sj.id, job);
                    pending.push(sj.id);
                }
                Some(sa) => {
                    let mi = self
                        .machine_index(&sa.machine)
                        .filter(|mi| unchanged.contains(mi));
                    let owned = mi.is_some_and(|mi| {
                        let m = &self.machines[mi];
                        !sa.boards.is_empty()
                            && sa
                                .boards
                                .iter()
                                .all(|b| m.def.in_range(*b) && !m.owners.contains_key(b))
                    });
                    match mi {
                        Some(mi) if owned => {
                            let mut boards = sa.boards;
                            boards.sort_unstable();
                            // Power operations in flight are taken as done.
                            job.phase = Phase::Ready;
                            job.power = Some(sj.power.unwrap_or(true));
                            self.jobs.insert(sj.id, job);
                            let a = Allocation {
                                kind: sa.kind,
                                boards,
                                torus: sa.torus,
                            };
                            self.install(sj.id, mi, a);
                        }
                        _ => {
                            let reason = Some("Machine removed.".to_owned());
                            let finished = Finished::of(&job, reason.clone());
                            self.retire(sj.id, reason);
                            if self.retired.contains_key(&sj.id) {
                                self.finished.insert(sj.id, finished);
                            }
                            self.changed_jobs.insert(sj.id);
                        }
                    }
                }
            }
        }
        self.next_id = saved.next_id.max(max_id + 1).max(1);
        for id in pending {
            if !self.enqueue(id) {
                self.destroy(id, Some("No suitable machines available.".to_owned()), now);
            }
        }
        self.advance_queues(now);
        self.dirty = true;
        self.next_expiry = self.jobs.values().filter_map(|j| j.keepalive_until).min();
    }
}

/// One entry of `list_jobs`, in the Python server's key order. Encoded
/// straight from the job table (see `commands::encode_jobs`): with a
/// thousand jobs, building a `Value` tree first would double the time the
/// shared state is locked. The derived form is what the hand-written
/// encoder is tested against.
#[derive(Debug)]
#[cfg_attr(test, derive(Serialize))]
pub(crate) struct JobRow<'a> {
    pub job_id: u64,
    pub owner: &'a str,
    pub start_time: f64,
    pub keepalive: &'a Value,
    pub state: u8,
    pub power: Option<bool>,
    pub args: &'a [Value],
    pub kwargs: &'a Map<String, Value>,
    pub allocated_machine_name: Option<&'a str>,
    pub boards: Option<&'a [Board]>,
    pub keepalivehost: &'a str,
    /// `owner` to `keepalive`, and `args` and `kwargs`, already encoded
    /// (with their leading `", "`), or the place to keep them once they
    /// are: they never change, and are most of the encoding work.
    #[cfg_attr(test, serde(skip))]
    pub fixed: &'a OnceCell<FixedParts>,
}

/// Two runs of a `list_jobs` entry, encoded: from `owner` to `keepalive`,
/// and `args` with `kwargs`.
pub(crate) type FixedParts = (Box<str>, Box<str>);

fn phase_number(phase: Phase) -> u8 {
    match phase {
        Phase::Queued => 1,
        Phase::Power => 2,
        Phase::Ready => 3,
    }
}

fn boards_json(boards: &[Board]) -> Value {
    Value::Array(boards.iter().map(|&(x, y, z)| json!([x, y, z])).collect())
}

fn component_min(boards: &[Board]) -> Option<Board> {
    let x = boards.iter().map(|b| b.0).min()?;
    let y = boards.iter().map(|b| b.1).min()?;
    let z = boards.iter().map(|b| b.2).min()?;
    Some((x, y, z))
}

/// Version of the state file layout; bumped on incompatible changes.
pub(crate) const SAVE_FORMAT: u32 = 1;

/// Everything a restarted server needs to carry on.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Saved {
    pub format: u32,
    pub next_id: u64,
    pub machines: Vec<SavedMachine>,
    pub jobs: Vec<SavedJob>,
    /// Destroyed jobs, oldest first, with their reasons.
    pub retired: Vec<(u64, Option<String>)>,
    /// What the v2 service shows of destroyed jobs (added with it).
    #[serde(default)]
    pub finished: Vec<(u64, Finished)>,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct SavedMachine {
    pub name: String,
    pub signature: (i32, i32, Vec<Board>, Vec<(Board, u8)>),
    pub allocator: Allocator,
    pub pending_releases: Vec<Kind>,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct SavedJob {
    pub id: u64,
    pub owner: String,
    pub keepalive: Option<f64>,
    pub keepalive_echo: Value,
    pub machine: Option<String>,
    pub tags: Option<Vec<String>>,
    pub args: Vec<Value>,
    pub kwargs: Map<String, Value>,
    pub request: Request,
    pub start_time: f64,
    pub keepalivehost: String,
    pub creator_host: String,
    pub power: Option<bool>,
    pub allocation: Option<SavedAllocation>,
    /// The fields below were added with the v2 service; older files lack
    /// them.
    #[serde(default)]
    pub v2_request: Option<String>,
    #[serde(default)]
    pub keepalive_time: Option<f64>,
    #[serde(default)]
    pub keepalive_seen: Option<bool>,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct SavedAllocation {
    pub machine: String,
    pub kind: Kind,
    pub boards: Vec<Board>,
    pub torus: Wrap,
}
