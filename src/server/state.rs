//! The job controller: jobs, queues, power, keepalives and releases.
//!
//! This is the virtual counterpart of the real servers' allocation engine.
//! It owns every machine's allocator and every job, answers queries with
//! typed results, and records which jobs and machines changed so that the
//! front-ends can notify subscribers. It knows nothing of any wire format:
//! the front-ends turn its results into replies (and its "not found"s into
//! `null`s or exceptions, as their protocol wants).
//!
//! Where the Python and Java servers differ in behaviour rather than in
//! presentation (when a job is tied to a machine, whether an impossible
//! request is refused, what expiry is called), the controller follows its
//! [`Policy`]. It never touches a socket or a clock of its own: every
//! operation gets `now` from its caller, which keeps timing decisions in one
//! place and testable.

use std::cell::OnceCell;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use log::{debug, info};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::allocator::{Allocation, Allocator, Kind, Request};
use super::geometry::{Board, Link, Wrap, board_to_chip, chip_to_board, triads_to_chips};
use super::machine::MachineDef;

mod v2;
pub(crate) use v2::{
    AllocView, BoardInfo, BoardRef, IssueReport, JobView, Locate, Located, MachineView,
    ReportedBoard, Selector, V2Request, V2Shape, V2State,
};

/// The behaviours in which the Python server and the Java server's engine
/// differ, whatever protocol a client speaks to them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Policy {
    /// Java: a new job is tied to the first machine (in priority order) that
    /// could ever run it and waits only there. Python: it waits on every
    /// machine that could run it and takes whichever frees up first.
    pub bind_at_create: bool,
    /// Java: a request no machine could ever satisfy is refused and no job
    /// is made. Python: the job is made and cancelled at once.
    pub refuse_impossible: bool,
    /// Python: `where_is` coordinates wrap around the machine. Java: a
    /// coordinate off the machine finds nothing.
    pub wrap_coordinates: bool,
    /// Python: allocating a job's boards counts as a keepalive (by the
    /// host that created it). Java: only the client's calls do.
    pub allocation_is_keepalive: bool,
    /// The keepalive of a job that asked for the default, in seconds.
    pub default_keepalive: f64,
    /// How destroy reasons are worded.
    pub reasons: Reasons,
}

/// The wording of the reasons the server gives for destroying a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reasons {
    /// `"Job timed out."`; a job destroyed while queued gets `"Cancelled: "`
    /// in front of its reason.
    Python,
    /// `"keepalive expired"`; reasons are kept as they are.
    Java,
}

impl Policy {
    /// The Python `spalloc_server`.
    pub fn python() -> Policy {
        Policy {
            bind_at_create: false,
            refuse_impossible: false,
            wrap_coordinates: true,
            allocation_is_keepalive: true,
            default_keepalive: 60.0,
            reasons: Reasons::Python,
        }
    }

    /// The Java server (its v1 compatibility service and its REST API share
    /// one engine).
    pub fn java() -> Policy {
        Policy {
            bind_at_create: true,
            refuse_impossible: true,
            wrap_coordinates: false,
            allocation_is_keepalive: false,
            default_keepalive: 60.0,
            reasons: Reasons::Java,
        }
    }

    /// The stored reason for destroying a job that `was_queued` (or not)
    /// because of `cause`.
    fn reason(&self, cause: Cause, was_queued: bool) -> Option<String> {
        let text = match cause {
            Cause::Requested(r) => r,
            Cause::Expired => Some(match self.reasons {
                Reasons::Python => "Job timed out.".to_owned(),
                Reasons::Java => "keepalive expired".to_owned(),
            }),
            Cause::NoMachine => Some("No suitable machines available.".to_owned()),
            Cause::MachineRemoved => Some("Machine removed.".to_owned()),
        };
        match (self.reasons, was_queued) {
            (Reasons::Python, true) => Some(format!("Cancelled: {}", text.unwrap_or_default())),
            _ => text,
        }
    }
}

/// Why a job is destroyed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Cause {
    /// A client asked, giving this reason.
    Requested(Option<String>),
    /// Its keepalive ran out.
    Expired,
    /// No machine can ever run it.
    NoMachine,
    /// Its machine is gone (after a restart with a changed configuration).
    MachineRemoved,
}

/// The timing and memory settings the controller needs.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub power_delay: Duration,
    pub seconds_before_free: Duration,
    pub max_retired_jobs: usize,
    pub policy: Policy,
}

/// How long a new job may go without a keepalive.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Keepalive {
    /// The policy's default.
    Default,
    /// It never expires.
    Never,
    /// This many seconds (zero, negative or NaN as the client gave it).
    Seconds(f64),
}

/// What the front-end keeps with a job to give back in job listings: the
/// request as the client sent it. The controller never looks inside.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Echo {
    pub args: Vec<Value>,
    pub kwargs: Map<String, Value>,
}

/// A new job's request.
#[derive(Debug, Clone)]
pub(crate) struct NewJob {
    pub request: Request,
    pub owner: String,
    pub keepalive: Keepalive,
    /// Only this machine (then `tags` are not looked at).
    pub machine: Option<String>,
    /// Machines with all these tags; `None` means `["default"]`.
    pub tags: Option<Vec<String>>,
    pub echo: Echo,
    /// For a job made through the v2 service, its request as that service
    /// describes it back (`original-request`); `None` for v1 jobs. v2 jobs
    /// follow the Java server's engine in every dialect (see
    /// [`Spec::policy`]).
    pub v2_request: Option<String>,
}

/// Why a job was not created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// No machine could ever run it (only with [`Policy::refuse_impossible`]).
    NoMachine,
}

/// What became of a job id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Found {
    Live,
    Destroyed,
    Unknown,
}

/// A live job's progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Waiting for boards.
    Queued,
    /// A power change is in progress.
    Power,
    /// Allocated, no power change in progress.
    Ready,
}

impl Phase {
    /// The protocol's state number (1, 2 or 3).
    pub fn number(self) -> u8 {
        match self {
            Phase::Queued => 1,
            Phase::Power => 2,
            Phase::Ready => 3,
        }
    }
}

/// What is known about a job.
#[derive(Debug, Clone, Copy)]
pub(crate) enum JobStatus<'a> {
    Live(LiveJob<'a>),
    Destroyed(&'a Retired),
    Unknown,
}

/// A live job, as `get_job_state` describes it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LiveJob<'a> {
    pub phase: Phase,
    /// The power last asked for; `None` while the job has no boards.
    pub power: Option<bool>,
    /// Seconds; `None` never expires.
    pub keepalive: Option<f64>,
    /// Unix time of creation.
    pub start_time: f64,
    /// Unix time of the last keepalive.
    pub last_keepalive: f64,
    pub keepalivehost: &'a str,
}

/// A destroyed job, remembered for a while.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Retired {
    pub reason: Option<String>,
    pub start_time: f64,
    pub last_keepalive: f64,
    pub keepalivehost: String,
    /// Who owned it ("" if not known, from an old state file).
    pub owner: String,
    /// Unix time of its destruction (0 if not known).
    pub finish_time: f64,
    /// Its v2 request, as for a live job.
    pub v2_request: Option<String>,
}

/// A job's boards, as `get_job_machine_info` describes them.
#[derive(Debug, Clone, Copy)]
pub(crate) enum MachineInfo<'a> {
    Allocated(Allocated<'a>),
    /// A live job still waiting, or a destroyed one.
    NoBoards,
    Unknown,
}

/// An allocation in chips and boards.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Allocated<'a> {
    pub width: i64,
    pub height: i64,
    /// Each board's Ethernet chip (relative to the allocation) and IP
    /// address, sorted by chip.
    pub connections: &'a [((i64, i64), String)],
    pub machine_name: &'a str,
    /// Sorted.
    pub boards: &'a [Board],
}

/// What a power request did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PowerOutcome {
    Started,
    /// The job is queued or destroyed.
    NoBoards,
    Unknown,
}

/// Why a board lookup found nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Miss {
    NoSuchMachine,
    NoSuchBoard,
    NoSuchJob,
    /// The job has no boards, or the chip is not on them.
    NotInJob,
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

/// Where a board or chip is, and who holds it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Location<'a> {
    pub machine: &'a str,
    pub logical: Board,
    pub physical: (i32, i32, i32),
    /// In the whole machine.
    pub chip: (i64, i64),
    /// Within its board.
    pub board_chip: (i64, i64),
    /// The job holding the board, and the chip relative to that job.
    pub job: Option<(u64, (i64, i64))>,
}

/// One machine, as `list_machines` describes it.
#[derive(Debug, Clone)]
pub(crate) struct MachineRow<'a> {
    pub name: &'a str,
    pub tags: &'a [String],
    /// In triads.
    pub width: i32,
    pub height: i32,
    /// Sorted.
    pub dead_boards: Vec<Board>,
    /// Sorted; each as configured (leaving the board in that direction).
    pub dead_links: Vec<(Board, Link)>,
}

/// Which jobs and machines changed since the last look.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Changes {
    /// Sorted.
    pub jobs: Vec<u64>,
    /// Sorted.
    pub machines: Vec<String>,
    /// The jobs among `jobs` that were created in this time.
    pub created: BTreeSet<u64>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.jobs.is_empty() && self.machines.is_empty()
    }
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

/// A job's request, with its keepalive resolved.
#[derive(Debug, Clone)]
struct Spec {
    request: Request,
    owner: String,
    /// Seconds; `None` never expires.
    keepalive: Option<f64>,
    machine: Option<String>,
    tags: Option<Vec<String>>,
    echo: Echo,
    v2_request: Option<String>,
}

impl Spec {
    /// The policy this job follows: the server's, or the Java engine's for
    /// a job made through the v2 service (as on the Java server, whose v2
    /// service and v1 compatibility service share that engine).
    fn policy(&self, server: Policy) -> Policy {
        if self.v2_request.is_some() {
            Policy::java()
        } else {
            server
        }
    }
}

#[derive(Debug, Clone)]
struct Job {
    spec: Spec,
    /// The front-end's encoding of the job's unchanging listing fields,
    /// made on first use (see [`JobRow::fixed`]).
    listed: OnceCell<FixedParts>,
    /// The only machine the job may run on ([`Policy::bind_at_create`]).
    bound: Option<usize>,
    start_time: f64,
    last_keepalive: f64,
    keepalive_until: Option<Instant>,
    keepalivehost: String,
    /// Whether a keepalive came since creation (the v2 service shows
    /// `keepalive-host` only then); always true for v1 jobs.
    keepalive_seen: bool,
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

/// All jobs and machines of one server.
#[derive(Debug)]
pub(crate) struct Controller {
    settings: Settings,
    machines: Vec<MachineState>,
    jobs: BTreeMap<u64, Job>,
    retired: HashMap<u64, Retired>,
    retired_order: VecDeque<u64>,
    next_id: u64,
    events: BinaryHeap<Reverse<(Instant, u64, Event)>>,
    event_seq: u64,
    changed_jobs: BTreeSet<u64>,
    changed_machines: BTreeSet<String>,
    created_jobs: BTreeSet<u64>,
    /// Issue reports through the v2 service, newest last (bounded).
    reports: VecDeque<IssueReport>,
    dirty: bool,
    /// No job's keepalive runs out before this (`None`: no job's ever
    /// does), so that `tick`, which runs after every command, only looks
    /// through the jobs when one may have expired. A refreshed keepalive
    /// only ever moves later, so the bound stays true until a scan
    /// recomputes it.
    next_expiry: Option<Instant>,
    /// A moment of the server's clock and the Unix time then: the times
    /// the server reports follow its clock, moved on by
    /// [`advance`](crate::server::VirtualServer::advance) too.
    epoch: (Instant, f64),
}

/// Unix time in seconds.
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

/// When a keepalive of `keepalive` seconds refreshed at `now` runs out. As
/// in Python, zero or less runs out at once (the next check), and NaN or
/// a time too large to represent never does.
fn keepalive_deadline(now: Instant, keepalive: Option<f64>) -> Option<Instant> {
    let secs = keepalive?;
    if secs.is_nan() {
        return None;
    }
    if secs <= 0.0 {
        return Some(now);
    }
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
            next_id: 1,
            events: BinaryHeap::new(),
            event_seq: 0,
            changed_jobs: BTreeSet::new(),
            changed_machines: BTreeSet::new(),
            created_jobs: BTreeSet::new(),
            reports: VecDeque::new(),
            dirty: false,
            next_expiry: None,
            epoch: (Instant::now(), unix_now()),
        }
    }

    /// Unix time (seconds) at `now` of the server's clock.
    fn unix_at(&self, now: Instant) -> f64 {
        self.epoch.1 + now.saturating_duration_since(self.epoch.0).as_secs_f64()
    }

    pub fn policy(&self) -> &Policy {
        &self.settings.policy
    }

    /// Keeps [`next_expiry`](Self::next_expiry) a lower bound after a job's
    /// keepalive deadline is set to `until`.
    fn expiry_at_or_after(&mut self, until: Option<Instant>) {
        if let Some(t) = until {
            self.next_expiry = Some(self.next_expiry.map_or(t, |e| e.min(t)));
        }
    }

    /// Takes the jobs and machines changed since the last call.
    pub fn take_changes(&mut self) -> Changes {
        let mut created = std::mem::take(&mut self.created_jobs);
        created.retain(|id| self.changed_jobs.contains(id));
        Changes {
            jobs: std::mem::take(&mut self.changed_jobs).into_iter().collect(),
            machines: std::mem::take(&mut self.changed_machines)
                .into_iter()
                .collect(),
            created,
        }
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

    /// Whether there is a machine called `name`.
    pub fn has_machine(&self, name: &str) -> bool {
        self.machine_index(name).is_some()
    }

    fn schedule(&mut self, at: Instant, event: Event) {
        self.event_seq += 1;
        self.events.push(Reverse((at, self.event_seq, event)));
    }

    fn retire(&mut self, id: u64, retired: Retired) {
        if self.settings.max_retired_jobs == 0 {
            return;
        }
        if self.retired.insert(id, retired).is_none() {
            self.retired_order.push_back(id);
        }
        while self.retired_order.len() > self.settings.max_retired_jobs {
            if let Some(old) = self.retired_order.pop_front() {
                self.retired.remove(&old);
            }
        }
    }

    // ----- creating, allocating and destroying jobs -----

    /// The machines that could ever run `spec`, in priority order (just the
    /// bound one, for a bound job).
    fn candidates(&self, spec: &Spec, bound: Option<usize>) -> Vec<usize> {
        let default_tags = ["default".to_owned()];
        let tags: &[String] = spec.tags.as_deref().unwrap_or(&default_tags);
        self.machines
            .iter()
            .enumerate()
            .filter(|(i, m)| {
                let eligible = match (bound, &spec.machine) {
                    (Some(b), _) => *i == b,
                    (None, Some(name)) => *name == m.def.name,
                    (None, None) => m.def.has_tags(tags),
                };
                eligible && m.alloc.possible(&m.def, &spec.request)
            })
            .map(|(i, _)| i)
            .collect()
    }

    /// Creates a job for a client at `host`. With
    /// [`Policy::refuse_impossible`], a request no machine could ever run
    /// makes no job (and uses no id); otherwise such a job is destroyed at
    /// once.
    pub fn create_job(&mut self, new: NewJob, host: &str, now: Instant) -> Result<u64, Refusal> {
        let policy = self.settings.policy;
        let spec = Spec {
            request: new.request,
            owner: new.owner,
            keepalive: match new.keepalive {
                Keepalive::Default => Some(policy.default_keepalive),
                Keepalive::Never => None,
                Keepalive::Seconds(s) => Some(s),
            },
            machine: new.machine,
            tags: new.tags,
            echo: new.echo,
            v2_request: new.v2_request,
        };
        let candidates = self.candidates(&spec, None);
        if candidates.is_empty() && policy.refuse_impossible {
            debug!("refused a job for {}: {:?}", spec.owner, spec.request);
            return Err(Refusal::NoMachine);
        }
        let bound = if policy.bind_at_create {
            candidates.first().copied()
        } else {
            None
        };
        let id = self.next_id;
        self.next_id += 1;
        debug!(
            "job {id}: created by {} from {host}: {:?}",
            spec.owner, spec.request
        );
        let until = keepalive_deadline(now, spec.keepalive);
        self.expiry_at_or_after(until);
        let spec_is_v1 = spec.v2_request.is_none();
        let unix = self.unix_at(now);
        let job = Job {
            keepalive_until: until,
            spec,
            listed: OnceCell::new(),
            bound,
            start_time: unix,
            last_keepalive: unix,
            keepalivehost: host.to_owned(),
            keepalive_seen: spec_is_v1,
            creator_host: host.to_owned(),
            phase: Phase::Queued,
            power: None,
            pending_power: 0,
            alloc: None,
        };
        self.jobs.insert(id, job);
        self.changed_jobs.insert(id);
        self.created_jobs.insert(id);
        self.dirty = true;
        if self.enqueue(id) {
            self.advance_queues(now);
        } else {
            self.destroy(id, Cause::NoMachine, now);
        }
        Ok(id)
    }

    /// Puts a queued job on the queue of every machine that could ever run
    /// it (just its bound machine, if it has one); returns whether there
    /// was one.
    fn enqueue(&mut self, id: u64) -> bool {
        let Some(job) = self.jobs.get(&id) else {
            return false;
        };
        if self.settings.policy.bind_at_create && job.bound.is_none() {
            return false;
        }
        let candidates = self.candidates(&job.spec, job.bound);
        for &mi in &candidates {
            self.machines[mi].queue.push_back(id);
        }
        !candidates.is_empty()
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
        let server = self.settings.policy;
        let unix = self.unix_at(now);
        if let Some(job) = self.jobs.get_mut(&id)
            && job.spec.policy(server).allocation_is_keepalive
        {
            let until = keepalive_deadline(now, job.spec.keepalive);
            job.keepalive_until = until;
            job.last_keepalive = unix;
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

    /// One power operation of job `id` finished. The job is ready (and
    /// reported changed) only when the last one it was waiting for does.
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
            self.changed_jobs.insert(id);
            self.dirty = true;
        }
    }

    /// Destroys a live job (no-op for any other id), with the reason the
    /// policy gives `cause`.
    pub fn destroy(&mut self, id: u64, cause: Cause, now: Instant) {
        let Some(job) = self.jobs.remove(&id) else {
            return;
        };
        let reason = job
            .spec
            .policy(self.settings.policy)
            .reason(cause, job.alloc.is_none());
        debug!(
            "job {id}: destroyed ({})",
            reason.as_deref().unwrap_or("no reason")
        );
        for m in &mut self.machines {
            m.queue.retain(|&q| q != id);
        }
        if let Some(a) = &job.alloc {
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
        self.retire(
            id,
            Retired {
                reason,
                start_time: job.start_time,
                last_keepalive: job.last_keepalive,
                keepalivehost: job.keepalivehost,
                owner: job.spec.owner,
                finish_time: self.unix_at(now),
                v2_request: job.spec.v2_request,
            },
        );
        self.changed_jobs.insert(id);
        self.dirty = true;
        self.advance_queues(now);
    }

    /// `destroy_job`: destroys the job if it is live.
    pub fn destroy_job(&mut self, id: Option<u64>, reason: Option<String>, now: Instant) -> Found {
        let found = self.find(id);
        if let (Found::Live, Some(id)) = (found, id) {
            self.destroy(id, Cause::Requested(reason), now);
        }
        found
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
    /// releases and keepalive expiry (a keepalive that runs out at `now`
    /// has run out).
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
        if self.next_expiry.is_some_and(|t| t <= now) {
            let expired: Vec<u64> = self
                .jobs
                .iter()
                .filter(|(_, j)| j.keepalive_until.is_some_and(|t| t <= now))
                .map(|(&id, _)| id)
                .collect();
            for id in expired {
                self.destroy(id, Cause::Expired, now);
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

    // ----- queries and actions on jobs -----

    /// Whether `id` names a live job, a remembered destroyed one, or
    /// nothing.
    pub fn find(&self, id: Option<u64>) -> Found {
        match id {
            Some(id) if self.jobs.contains_key(&id) => Found::Live,
            Some(id) if self.retired.contains_key(&id) => Found::Destroyed,
            _ => Found::Unknown,
        }
    }

    /// A keepalive from `host`: refreshes a live job's timer (destroyed and
    /// unknown jobs are left as they are).
    pub fn touch(&mut self, id: Option<u64>, host: &str, now: Instant) -> Found {
        let unix = self.unix_at(now);
        let Some(job) = id.and_then(|id| self.jobs.get_mut(&id)) else {
            return self.find(id);
        };
        let until = keepalive_deadline(now, job.spec.keepalive);
        job.keepalive_until = until;
        job.last_keepalive = unix;
        job.keepalive_seen = true;
        if job.keepalivehost != host {
            job.keepalivehost = host.to_owned();
            self.dirty = true;
        }
        self.expiry_at_or_after(until);
        Found::Live
    }

    pub fn job_status(&self, id: Option<u64>) -> JobStatus<'_> {
        let Some(id) = id else {
            return JobStatus::Unknown;
        };
        if let Some(job) = self.jobs.get(&id) {
            return JobStatus::Live(LiveJob {
                phase: job.phase,
                power: job.power,
                keepalive: job.spec.keepalive,
                start_time: job.start_time,
                last_keepalive: job.last_keepalive,
                keepalivehost: &job.keepalivehost,
            });
        }
        match self.retired.get(&id) {
            Some(r) => JobStatus::Destroyed(r),
            None => JobStatus::Unknown,
        }
    }

    pub fn machine_info(&self, id: Option<u64>) -> MachineInfo<'_> {
        let Some(job) = id.and_then(|id| self.jobs.get(&id)) else {
            return match self.find(id) {
                Found::Unknown => MachineInfo::Unknown,
                _ => MachineInfo::NoBoards,
            };
        };
        let Some(a) = &job.alloc else {
            return MachineInfo::NoBoards;
        };
        MachineInfo::Allocated(Allocated {
            width: a.width,
            height: a.height,
            connections: &a.connections,
            machine_name: &self.machines[a.machine].def.name,
            boards: &a.boards,
        })
    }

    /// Powers a job's boards on (or resets them) or off.
    pub fn power(&mut self, id: Option<u64>, on: bool, now: Instant) -> PowerOutcome {
        let Some(job) = id.and_then(|id| self.jobs.get(&id)) else {
            return match self.find(id) {
                Found::Unknown => PowerOutcome::Unknown,
                _ => PowerOutcome::NoBoards,
            };
        };
        if job.alloc.is_none() {
            return PowerOutcome::NoBoards;
        }
        if let Some(id) = id {
            self.start_power(id, on, now);
        }
        PowerOutcome::Started
    }

    /// The live jobs in creation order, ready to be serialised.
    pub fn list_jobs(&self) -> Vec<JobRow<'_>> {
        self.jobs
            .iter()
            .map(|(&id, j)| JobRow {
                job_id: id,
                owner: &j.spec.owner,
                start_time: j.start_time,
                keepalive: j.spec.keepalive,
                state: j.phase.number(),
                power: j.power,
                echo: &j.spec.echo,
                allocated_machine_name: j
                    .alloc
                    .as_ref()
                    .map(|a| self.machines[a.machine].def.name.as_str()),
                bound_machine_name: j.bound.map(|mi| self.machines[mi].def.name.as_str()),
                boards: j.alloc.as_ref().map(|a| a.boards.as_slice()),
                keepalivehost: &j.keepalivehost,
                fixed: &j.listed,
            })
            .collect()
    }

    // ----- machines and boards -----

    pub fn list_machines(&self) -> Vec<MachineRow<'_>> {
        self.machines
            .iter()
            .map(|m| MachineRow {
                name: &m.def.name,
                tags: &m.def.tags,
                width: m.def.width,
                height: m.def.height,
                dead_boards: m.def.dead_boards.iter().copied().collect(),
                dead_links: m.def.dead_links.iter().copied().collect(),
            })
            .collect()
    }

    /// The physical position of logical board `(x, y, z)`.
    pub fn board_position(
        &self,
        machine: &str,
        x: i64,
        y: i64,
        z: i64,
    ) -> Result<(i32, i32, i32), Miss> {
        let mi = self.machine_index(machine).ok_or(Miss::NoSuchMachine)?;
        let b = (
            i32::try_from(x).map_err(|_| Miss::NoSuchBoard)?,
            i32::try_from(y).map_err(|_| Miss::NoSuchBoard)?,
            i32::try_from(z).map_err(|_| Miss::NoSuchBoard)?,
        );
        self.machines[mi]
            .def
            .locations
            .get(&b)
            .copied()
            .ok_or(Miss::NoSuchBoard)
    }

    /// The logical board at physical position `(c, f, b)`.
    pub fn board_at_position(&self, machine: &str, c: i64, f: i64, b: i64) -> Result<Board, Miss> {
        let mi = self.machine_index(machine).ok_or(Miss::NoSuchMachine)?;
        let p = (
            i32::try_from(c).map_err(|_| Miss::NoSuchBoard)?,
            i32::try_from(f).map_err(|_| Miss::NoSuchBoard)?,
            i32::try_from(b).map_err(|_| Miss::NoSuchBoard)?,
        );
        self.machines[mi]
            .def
            .board_at
            .get(&p)
            .copied()
            .ok_or(Miss::NoSuchBoard)
    }

    pub fn where_is(&self, query: &WhereIs) -> Result<Location<'_>, Miss> {
        let wrap = self.settings.policy.wrap_coordinates;
        let machine = |name: &str| self.machine_index(name).ok_or(Miss::NoSuchMachine);
        let (mi, cx, cy, wanted_job) = match query {
            WhereIs::Logical {
                machine: m,
                x,
                y,
                z,
            } => {
                let mi = machine(m)?;
                let d = &self.machines[mi].def;
                let (w, h) = (i64::from(d.width), i64::from(d.height));
                let (x, y) = if wrap {
                    (x.rem_euclid(w), y.rem_euclid(h))
                } else if (0..w).contains(x) && (0..h).contains(y) && (0..3).contains(z) {
                    (*x, *y)
                } else {
                    return Err(Miss::NoSuchBoard);
                };
                let (cx, cy) = board_to_chip(x, y, *z);
                (mi, cx, cy, None)
            }
            WhereIs::Physical {
                machine: m,
                cabinet,
                frame,
                board,
            } => {
                let mi = machine(m)?;
                let p = (
                    i32::try_from(*cabinet).map_err(|_| Miss::NoSuchBoard)?,
                    i32::try_from(*frame).map_err(|_| Miss::NoSuchBoard)?,
                    i32::try_from(*board).map_err(|_| Miss::NoSuchBoard)?,
                );
                let (x, y, z) = *self.machines[mi]
                    .def
                    .board_at
                    .get(&p)
                    .ok_or(Miss::NoSuchBoard)?;
                let (cx, cy) = board_to_chip(i64::from(x), i64::from(y), i64::from(z));
                (mi, cx, cy, None)
            }
            WhereIs::Chip { machine: m, x, y } => {
                let mi = machine(m)?;
                if !wrap && !self.chip_on_machine(mi, *x, *y) {
                    return Err(Miss::NoSuchBoard);
                }
                (mi, *x, *y, None)
            }
            WhereIs::JobChip { job_id, x, y } => {
                let id = job_id.ok_or(Miss::NoSuchJob)?;
                let job = match self.jobs.get(&id) {
                    Some(j) => j,
                    None if self.retired.contains_key(&id) => return Err(Miss::NotInJob),
                    None => return Err(Miss::NoSuchJob),
                };
                let a = job.alloc.as_ref().ok_or(Miss::NotInJob)?;
                let (jx, jy, jz) = component_min(&a.boards).ok_or(Miss::NotInJob)?;
                let d = &self.machines[a.machine].def;
                if !wrap && !self.chip_on_machine(a.machine, *x, *y) {
                    return Err(Miss::NotInJob);
                }
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
        let physical = *d.locations.get(&board).ok_or(Miss::NoSuchBoard)?;
        let holder = self.machines[mi].owners.get(&board).copied();
        if wanted_job.is_some() && holder != wanted_job {
            return Err(Miss::NotInJob);
        }
        let job = holder.and_then(|id| {
            let a = self.jobs.get(&id)?.alloc.as_ref()?;
            let (jx, jy, jz) = component_min(&a.boards)?;
            let (x, y, z) = board;
            let (bx, by) = board_to_chip(i64::from(x - jx), i64::from(y - jy), i64::from(z - jz));
            Some((
                id,
                (
                    (bx + lx).rem_euclid(a.width),
                    (by + ly).rem_euclid(a.height),
                ),
            ))
        });
        Ok(Location {
            machine: &d.name,
            logical: board,
            physical,
            chip: (cx, cy),
            board_chip: (lx, ly),
            job,
        })
    }

    fn chip_on_machine(&self, mi: usize, x: i64, y: i64) -> bool {
        let d = &self.machines[mi].def;
        (0..12 * i64::from(d.width)).contains(&x) && (0..12 * i64::from(d.height)).contains(&y)
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
                machine: j.spec.machine.clone(),
                tags: j.spec.tags.clone(),
                args: j.spec.echo.args.clone(),
                kwargs: j.spec.echo.kwargs.clone(),
                request: j.spec.request.clone(),
                start_time: j.start_time,
                last_keepalive: Some(j.last_keepalive),
                keepalivehost: j.keepalivehost.clone(),
                creator_host: j.creator_host.clone(),
                power: j.power,
                bound_machine: j.bound.map(|mi| self.machines[mi].def.name.clone()),
                v2_request: j.spec.v2_request.clone(),
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
            .filter_map(|id| {
                let r = self.retired.get(id)?;
                Some(SavedRetired::Full {
                    id: *id,
                    reason: r.reason.clone(),
                    start_time: r.start_time,
                    last_keepalive: r.last_keepalive,
                    keepalivehost: r.keepalivehost.clone(),
                    owner: r.owner.clone(),
                    finish_time: r.finish_time,
                    v2_request: r.v2_request.clone(),
                })
            })
            .collect();
        Saved {
            format: SAVE_FORMAT,
            next_id: self.next_id,
            machines,
            jobs,
            retired,
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
        for r in saved.retired {
            let (id, retired) = r.into_parts();
            self.retire(id, retired);
        }
        let mut max_id = 0;
        let mut pending = Vec::new();
        for sj in saved.jobs {
            max_id = max_id.max(sj.id);
            let spec = Spec {
                request: sj.request,
                owner: sj.owner,
                keepalive: sj.keepalive,
                machine: sj.machine,
                tags: sj.tags,
                echo: Echo {
                    args: sj.args,
                    kwargs: sj.kwargs,
                },
                v2_request: sj.v2_request,
            };
            let mut job = Job {
                keepalive_until: keepalive_deadline(now, spec.keepalive),
                spec,
                listed: OnceCell::new(),
                bound: sj
                    .bound_machine
                    .as_deref()
                    .and_then(|n| self.machine_index(n)),
                start_time: sj.start_time,
                last_keepalive: sj.last_keepalive.unwrap_or(sj.start_time),
                keepalivehost: sj.keepalivehost,
                keepalive_seen: sj.keepalive_seen.unwrap_or(true),
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
                            let reason = self.settings.policy.reason(Cause::MachineRemoved, false);
                            self.retire(
                                sj.id,
                                Retired {
                                    reason,
                                    start_time: job.start_time,
                                    last_keepalive: job.last_keepalive,
                                    keepalivehost: job.keepalivehost,
                                    owner: job.spec.owner,
                                    finish_time: unix_now(),
                                    v2_request: job.spec.v2_request,
                                },
                            );
                            self.changed_jobs.insert(sj.id);
                        }
                    }
                }
            }
        }
        self.next_id = saved.next_id.max(max_id + 1).max(1);
        for id in pending {
            if !self.enqueue(id) {
                let cause = if self.policy().bind_at_create {
                    Cause::MachineRemoved
                } else {
                    Cause::NoMachine
                };
                self.destroy(id, cause, now);
            }
        }
        self.advance_queues(now);
        self.dirty = true;
        self.next_expiry = self.jobs.values().filter_map(|j| j.keepalive_until).min();
    }
}

/// One entry of `list_jobs`, borrowed from the job table: encoding straight
/// from it (see the front-ends) keeps the shared state locked for less time
/// than building a value tree first would, with a thousand jobs.
#[derive(Debug)]
pub(crate) struct JobRow<'a> {
    pub job_id: u64,
    pub owner: &'a str,
    pub start_time: f64,
    /// Seconds; `None` never expires.
    pub keepalive: Option<f64>,
    pub state: u8,
    pub power: Option<bool>,
    pub echo: &'a Echo,
    pub allocated_machine_name: Option<&'a str>,
    /// The machine the job is tied to ([`Policy::bind_at_create`]).
    pub bound_machine_name: Option<&'a str>,
    pub boards: Option<&'a [Board]>,
    pub keepalivehost: &'a str,
    /// A slot where the front-end keeps its encoding of the parts of the
    /// entry that never change; they are most of the encoding work.
    pub fixed: &'a OnceCell<FixedParts>,
}

/// Two runs of an encoded `list_jobs` entry that never change.
pub(crate) type FixedParts = (Box<str>, Box<str>);

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
    /// Destroyed jobs, oldest first.
    pub retired: Vec<SavedRetired>,
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
    pub machine: Option<String>,
    pub tags: Option<Vec<String>>,
    pub args: Vec<Value>,
    pub kwargs: Map<String, Value>,
    pub request: Request,
    pub start_time: f64,
    /// Absent from files of earlier versions.
    #[serde(default)]
    pub last_keepalive: Option<f64>,
    pub keepalivehost: String,
    pub creator_host: String,
    pub power: Option<bool>,
    /// Absent from files of earlier versions.
    #[serde(default)]
    pub bound_machine: Option<String>,
    pub allocation: Option<SavedAllocation>,
    /// Absent from files of earlier versions (then a v1 job).
    #[serde(default)]
    pub v2_request: Option<String>,
    /// Absent from files of earlier versions.
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

/// A destroyed job: id and reason in files of earlier versions, everything
/// `get_job_state` may report now.
#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged)]
pub(crate) enum SavedRetired {
    Full {
        id: u64,
        reason: Option<String>,
        start_time: f64,
        last_keepalive: f64,
        keepalivehost: String,
        /// Absent from files of earlier versions.
        #[serde(default)]
        owner: String,
        #[serde(default)]
        finish_time: f64,
        #[serde(default)]
        v2_request: Option<String>,
    },
    Reason(u64, Option<String>),
}

impl SavedRetired {
    fn into_parts(self) -> (u64, Retired) {
        match self {
            SavedRetired::Full {
                id,
                reason,
                start_time,
                last_keepalive,
                keepalivehost,
                owner,
                finish_time,
                v2_request,
            } => (
                id,
                Retired {
                    reason,
                    start_time,
                    last_keepalive,
                    keepalivehost,
                    owner,
                    finish_time,
                    v2_request,
                },
            ),
            SavedRetired::Reason(id, reason) => (
                id,
                Retired {
                    reason,
                    start_time: 0.0,
                    last_keepalive: 0.0,
                    keepalivehost: String::new(),
                    owner: String::new(),
                    finish_time: 0.0,
                    v2_request: None,
                },
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A state file written before the dialects: no bound machines or
    /// keepalive times, an echoed keepalive, and retired jobs as
    /// `[id, reason]`.
    #[test]
    fn state_files_of_earlier_versions_still_load() {
        let old = r#"{"format": 1, "next_id": 4, "machines": [], "retired": [[2, "bye"], [3, null]],
            "jobs": [{"id": 1, "owner": "me", "keepalive": 60.0, "keepalive_echo": 60,
                      "machine": null, "tags": null, "args": [], "kwargs": {},
                      "request": {"shape": "AnyBoard", "min_ratio": 0.0, "max_dead_boards": null,
                                  "max_dead_links": null, "require_torus": false},
                      "start_time": 5.0, "keepalivehost": "h", "creator_host": "h",
                      "power": null, "allocation": null}]}"#;
        let saved: Result<Saved, _> = serde_json::from_str(old);
        let Ok(saved) = saved else {
            panic!("{saved:?}");
        };
        assert_eq!(saved.jobs[0].bound_machine, None);
        assert_eq!(saved.jobs[0].last_keepalive, None);
        let retired: Vec<(u64, Retired)> = saved
            .retired
            .into_iter()
            .map(SavedRetired::into_parts)
            .collect();
        assert_eq!(retired[0].0, 2);
        assert_eq!(retired[0].1.reason.as_deref(), Some("bye"));
        assert_eq!(retired[1].1.reason, None);
    }
}
