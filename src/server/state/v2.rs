//! What the v2 (REST) front-end asks of the engine, as typed values: making
//! a job by the Java server's rules (PROTOCOL_V2.md §4.5), describing live
//! and destroyed jobs without refreshing their keepalive, allocations in
//! triads, machines with their down boards and links, board lookups, and
//! issue reports.
//!
//! It is a child of the controller's module so that it reads the job table
//! directly instead of widening the controller's interface for one caller;
//! nothing here touches a socket, a clock or JSON.

use std::time::{Duration, Instant};

use log::info;
use serde_json::{Map, Value, json};

use super::super::allocator::{Kind, Request, Shape};
use super::super::geometry::{Board, Link, board_to_chip, chip_to_board, neighbour};
use super::super::machine::MachineDef;
use super::{
    Controller, Echo, Found, Keepalive, NewJob, Phase, PowerOutcome, Refusal, component_min,
};

/// How many issue reports are kept (the newest).
const MAX_REPORTS: usize = 1000;

/// Which machines a job may run on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Selector {
    Machine(String),
    /// Machines carrying all of these tags (none, if the list is empty).
    Tags(Vec<String>),
}

/// A board named one of the three ways the v2 service allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BoardRef {
    Triad(i64, i64, i64),
    Physical(i64, i64, i64),
    Address(String),
}

/// What a v2 job asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum V2Shape {
    /// This many boards (1: any one board).
    Boards(i64),
    /// A rectangle of triads.
    Dimensions(i64, i64),
    /// One specific board.
    Board(BoardRef),
    /// A rectangle of triads whose lower-left triad holds this board.
    DimensionsAt(i64, i64, BoardRef),
}

/// A v2 create request, already validated by the front-end.
#[derive(Debug, Clone)]
pub(crate) struct V2Request {
    pub owner: String,
    pub keepalive: Duration,
    pub selector: Selector,
    pub shape: V2Shape,
    pub max_dead_boards: i64,
    /// The request as `original-request` will show it (JSON).
    pub original: String,
}

/// Why a v2 create was refused; no job was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CreateRefused {
    /// No eligible machine could ever meet the request.
    NoMachine,
    /// A rectangle's root board is not the first board (z = 0) of a triad.
    RootNotFirstOfTriad,
}

impl CreateRefused {
    /// The message for the client (the Java server's where it has one).
    pub fn message(self) -> &'static str {
        match self {
            CreateRefused::NoMachine => "no machine available which matches allocation request",
            CreateRefused::RootNotFirstOfTriad => {
                "the board at the root of a rectangle must have z = 0"
            }
        }
    }
}

/// A job's state by the v2 service's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum V2State {
    Queued,
    Power,
    Ready,
    Destroyed,
}

impl V2State {
    pub fn name(self) -> &'static str {
        match self {
            V2State::Queued => "QUEUED",
            V2State::Power => "POWER",
            V2State::Ready => "READY",
            V2State::Destroyed => "DESTROYED",
        }
    }
}

/// A live or destroyed job, as `GET jobs/{id}` describes it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct JobView {
    pub state: V2State,
    pub owner: String,
    pub start_time: f64,
    pub finish_time: Option<f64>,
    pub reason: Option<String>,
    /// Only for a live job that has had a keepalive.
    pub keepalive_host: Option<String>,
    /// Only for a live job.
    pub keepalive_time: Option<f64>,
    pub v2_request: Option<String>,
}

/// A job's boards, as `GET jobs/{id}/machine` describes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AllocView {
    pub machine: String,
    /// In triads (1 x 1 for a single board).
    pub width: i64,
    pub height: i64,
    /// 1 for a single board, 3 for whole triads.
    pub depth: i64,
    /// Each board's Ethernet chip relative to the job's root chip, and its
    /// address; sorted.
    pub connections: Vec<((i64, i64), String)>,
    pub boards: Vec<Board>,
    /// Whether every board is on (and no power change is under way).
    pub power_on: bool,
}

/// A board with where it is and its address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BoardInfo {
    pub board: Board,
    pub physical: Option<(i32, i32, i32)>,
    pub address: Option<String>,
}

/// A machine with its out-of-service hardware.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MachineView {
    pub name: String,
    pub tags: Vec<String>,
    pub width: i32,
    pub height: i32,
    /// Ordered by z, then x, then y, as the Java server lists them.
    pub dead_boards: Vec<BoardInfo>,
    /// Each dead link once, with both of its ends.
    pub dead_links: Vec<((BoardInfo, Link), (BoardInfo, Link))>,
}

/// A board lookup on a machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Locate {
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
    /// A global chip.
    Chip {
        machine: String,
        x: i64,
        y: i64,
    },
    Address {
        machine: String,
        address: String,
    },
}

/// Where a board is, and who holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Located {
    pub machine: String,
    pub board: Board,
    pub physical: Option<(i32, i32, i32)>,
    /// The chip asked about (global, or job-relative for a job lookup), or
    /// the board's Ethernet chip.
    pub chip: (i64, i64),
    /// The board's Ethernet chip (global, or job-relative for a job
    /// lookup).
    pub board_chip: (i64, i64),
    /// The job holding the board, and `chip` relative to that job's root.
    pub job: Option<(u64, (i64, i64))>,
}

/// A board named in an issue report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ReportedBoard {
    /// A job-relative chip.
    Chip(i64, i64),
    Triad(i64, i64, i64),
    Physical(i64, i64, i64),
    Address(String),
}

/// An issue report that was accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IssueReport {
    pub job: u64,
    pub reporter: String,
    pub issue: String,
    pub boards: Vec<(String, Board)>,
}

/// `ceil(sqrt(n))` for `n >= 0`.
fn ceil_sqrt(n: i64) -> i64 {
    let mut r = 0i64;
    while r.saturating_mul(r) < n {
        r += 1;
    }
    r
}

fn resolve(def: &MachineDef, board: &BoardRef) -> Option<Board> {
    match board {
        BoardRef::Triad(x, y, z) => {
            let b = (
                i32::try_from(*x).ok()?,
                i32::try_from(*y).ok()?,
                i32::try_from(*z).ok()?,
            );
            def.in_range(b).then_some(b)
        }
        BoardRef::Physical(c, f, b) => {
            let p = (
                i32::try_from(*c).ok()?,
                i32::try_from(*f).ok()?,
                i32::try_from(*b).ok()?,
            );
            def.board_at.get(&p).copied()
        }
        BoardRef::Address(ip) => def.ips.iter().find(|(_, a)| *a == ip).map(|(b, _)| *b),
    }
}

/// The allocator request for `shape` on machine `def`, by the Java
/// server's rules; `Ok(None)` when the request names a board this machine
/// does not have.
fn request_on(
    def: &MachineDef,
    shape: &V2Shape,
    max_dead_boards: i64,
) -> Result<Option<Request>, CreateRefused> {
    let request = |shape: Shape, max_dead_boards: Option<i64>| Request {
        shape,
        min_ratio: 0.0,
        max_dead_boards,
        max_dead_links: None,
        require_torus: false,
    };
    let (mw, mh) = (i64::from(def.width), i64::from(def.height));
    Ok(Some(match shape {
        V2Shape::Boards(n) if *n <= 1 => request(Shape::AnyBoard, None),
        V2Shape::Boards(n) => {
            // ⌈n/3⌉ triads in a near-square rectangle clipped to the
            // machine; the spare boards of the rectangle may be dead.
            let triads = (n + 2) / 3;
            let w = ceil_sqrt(triads).min(mw).max(1);
            let h = ((triads + w - 1) / w).min(mh).max(1);
            let tolerance = w * h * 3 - n + max_dead_boards;
            request(Shape::Triads(w, h), Some(tolerance))
        }
        V2Shape::Dimensions(1, 1) if max_dead_boards >= 2 => request(Shape::AnyBoard, None),
        V2Shape::Dimensions(w, h) => request(Shape::Triads(*w, *h), Some(max_dead_boards)),
        V2Shape::Board(b) => {
            let Some((x, y, z)) = resolve(def, b) else {
                return Ok(None);
            };
            request(Shape::Board(i64::from(x), i64::from(y), i64::from(z)), None)
        }
        V2Shape::DimensionsAt(w, h, b) => {
            let Some((x, y, z)) = resolve(def, b) else {
                return Ok(None);
            };
            if z != 0 {
                return Err(CreateRefused::RootNotFirstOfTriad);
            }
            request(
                Shape::TriadsAt {
                    x: i64::from(x),
                    y: i64::from(y),
                    w: *w,
                    h: *h,
                },
                Some(max_dead_boards),
            )
        }
    }))
}

/// The job's request in the v1 protocol's terms, for v1 clients' job lists.
fn v1_echo(req: &V2Request) -> (Vec<Value>, Map<String, Value>) {
    let args = match &req.shape {
        V2Shape::Boards(n) if *n > 1 => vec![json!(n)],
        V2Shape::Dimensions(w, h) | V2Shape::DimensionsAt(w, h, _) => vec![json!(w), json!(h)],
        V2Shape::Board(BoardRef::Triad(x, y, z)) => vec![json!(x), json!(y), json!(z)],
        _ => Vec::new(),
    };
    let mut kwargs = Map::new();
    match &req.selector {
        Selector::Machine(m) => kwargs.insert("machine".into(), json!(m)),
        Selector::Tags(t) => kwargs.insert("tags".into(), json!(t)),
    };
    kwargs.insert("max_dead_boards".into(), json!(req.max_dead_boards));
    (args, kwargs)
}

impl Controller {
    /// Makes a job by the v2 service's rules: the first eligible machine (in
    /// priority order) that could ever meet the request is chosen, and the
    /// job stays queued for that machine alone. Nothing is made if none
    /// could. The job then follows the Java engine's policy, whatever the
    /// server's dialect.
    pub fn create_job_v2(
        &mut self,
        req: V2Request,
        host: &str,
        now: Instant,
    ) -> Result<u64, CreateRefused> {
        let mut refusal = CreateRefused::NoMachine;
        let mut chosen = None;
        for m in &self.machines {
            let eligible = match &req.selector {
                Selector::Machine(name) => m.def.name == *name,
                Selector::Tags(tags) => !tags.is_empty() && m.def.has_tags(tags),
            };
            if !eligible {
                continue;
            }
            match request_on(&m.def, &req.shape, req.max_dead_boards) {
                Ok(Some(r)) if m.alloc.possible(&m.def, &r) => {
                    chosen = Some((m.def.name.clone(), r));
                    break;
                }
                Ok(_) => {}
                Err(e) => refusal = e,
            }
        }
        let Some((machine, request)) = chosen else {
            return Err(refusal);
        };
        let (args, kwargs) = v1_echo(&req);
        let new = NewJob {
            request,
            owner: req.owner,
            keepalive: Keepalive::Seconds(req.keepalive.as_secs_f64()),
            machine: Some(machine),
            tags: None,
            echo: Echo { args, kwargs },
            v2_request: Some(req.original),
        };
        self.create_job(new, host, now)
            .map_err(|Refusal::NoMachine| CreateRefused::NoMachine)
    }

    /// The owner of a live or remembered job.
    pub fn job_owner(&self, id: u64) -> Option<&str> {
        match self.jobs.get(&id) {
            Some(j) => Some(&j.spec.owner),
            None => self.retired.get(&id).map(|r| r.owner.as_str()),
        }
    }

    /// A live or remembered job; does not count as a keepalive.
    pub fn job_view(&self, id: u64) -> Option<JobView> {
        if let Some(j) = self.jobs.get(&id) {
            return Some(JobView {
                state: match j.phase {
                    Phase::Queued => V2State::Queued,
                    Phase::Power => V2State::Power,
                    Phase::Ready => V2State::Ready,
                },
                owner: j.spec.owner.clone(),
                start_time: j.start_time,
                finish_time: None,
                reason: None,
                keepalive_host: j.keepalive_seen.then(|| j.keepalivehost.clone()),
                keepalive_time: Some(j.last_keepalive),
                v2_request: j.spec.v2_request.clone(),
            });
        }
        let r = self.retired.get(&id)?;
        Some(JobView {
            state: V2State::Destroyed,
            owner: r.owner.clone(),
            start_time: r.start_time,
            finish_time: Some(r.finish_time),
            reason: r.reason.clone(),
            keepalive_host: None,
            keepalive_time: None,
            v2_request: r.v2_request.clone(),
        })
    }

    /// Job ids, newest first: the live ones, or with `deleted` also the
    /// remembered destroyed ones.
    pub fn job_ids(&self, deleted: bool) -> Vec<u64> {
        let mut ids: Vec<u64> = self.jobs.keys().copied().collect();
        if deleted {
            ids.extend(self.retired.keys().copied());
        }
        ids.sort_unstable_by(|a, b| b.cmp(a));
        ids
    }

    /// Refreshes a live job's keepalive from `host`; returns whether it is
    /// live.
    pub fn keepalive_v2(&mut self, id: u64, host: &str, now: Instant) -> bool {
        self.touch(Some(id), host, now) == Found::Live
    }

    /// A live job's boards, if it has any.
    pub fn job_allocation(&self, id: u64) -> Option<AllocView> {
        let j = self.jobs.get(&id)?;
        let a = j.alloc.as_ref()?;
        let xs = a.boards.iter().map(|b| b.0);
        let ys = a.boards.iter().map(|b| b.1);
        let (width, height, depth) = match a.kind {
            Kind::Board(..) => (1, 1, 1),
            Kind::Triads(..) => (
                i64::from(xs.clone().max()? - xs.min()? + 1),
                i64::from(ys.clone().max()? - ys.min()? + 1),
                3,
            ),
        };
        Some(AllocView {
            machine: self.machines[a.machine].def.name.clone(),
            width,
            height,
            depth,
            connections: a.connections.clone(),
            boards: a.boards.clone(),
            power_on: j.power == Some(true) && j.pending_power == 0,
        })
    }

    /// Whether live job `id` holds the board at `address` with its power on
    /// (and no power change under way): whether a virtual board answers.
    pub fn board_on(&self, id: u64, address: &str) -> bool {
        self.jobs.get(&id).is_some_and(|j| {
            j.power == Some(true)
                && j.pending_power == 0
                && j.alloc
                    .as_ref()
                    .is_some_and(|a| a.connections.iter().any(|(_, h)| h == address))
        })
    }

    /// Starts powering a live job's boards on or off (counting as a
    /// keepalive); returns whether it has boards.
    pub fn power_v2(&mut self, id: u64, on: bool, host: &str, now: Instant) -> bool {
        self.touch(Some(id), host, now) == Found::Live
            && self.power(Some(id), on, now) == PowerOutcome::Started
    }

    fn board_info(def: &MachineDef, board: Board) -> BoardInfo {
        BoardInfo {
            board,
            physical: def.locations.get(&board).copied(),
            address: def.ips.get(&board).cloned(),
        }
    }

    fn machine_view(&self, mi: usize) -> MachineView {
        let d = &self.machines[mi].def;
        let mut dead: Vec<Board> = d.dead_boards.iter().copied().collect();
        dead.sort_by_key(|&(x, y, z)| (z, x, y));
        let mut links = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for &(b, l) in &d.dead_links {
            let (other, _) = neighbour(b, l, d.width, d.height);
            if !seen.insert((b, l)) || !seen.insert((other, l.opposite())) {
                continue;
            }
            links.push((
                (Self::board_info(d, b), l),
                (Self::board_info(d, other), l.opposite()),
            ));
        }
        MachineView {
            name: d.name.clone(),
            tags: d.tags.clone(),
            width: d.width,
            height: d.height,
            dead_boards: dead.into_iter().map(|b| Self::board_info(d, b)).collect(),
            dead_links: links,
        }
    }

    /// Every machine, in priority order.
    pub fn machines_v2(&self) -> Vec<MachineView> {
        (0..self.machines.len())
            .map(|mi| self.machine_view(mi))
            .collect()
    }

    /// One machine.
    pub fn machine_v2(&self, name: &str) -> Option<MachineView> {
        self.machine_index(name).map(|mi| self.machine_view(mi))
    }

    /// The job holding `board` of machine `mi`, with its root chip.
    fn holder(&self, mi: usize, board: Board) -> Option<(u64, (i64, i64))> {
        let id = *self.machines[mi].owners.get(&board)?;
        let a = self.jobs.get(&id)?.alloc.as_ref()?;
        let (x, y, z) = component_min(&a.boards)?;
        Some((id, board_to_chip(i64::from(x), i64::from(y), i64::from(z))))
    }

    /// Finds a board of a machine. `None` for an unknown machine, a board
    /// it does not have, or one with no known position.
    pub fn locate(&self, query: &Locate) -> Option<Located> {
        let (machine, target) = match query {
            Locate::Logical { machine, .. }
            | Locate::Physical { machine, .. }
            | Locate::Chip { machine, .. }
            | Locate::Address { machine, .. } => (machine, query),
        };
        let mi = self.machine_index(machine)?;
        let d = &self.machines[mi].def;
        let (cw, ch) = (12 * i64::from(d.width), 12 * i64::from(d.height));
        let (board, chip) = match target {
            Locate::Logical { x, y, z, .. } => {
                let b = resolve(d, &BoardRef::Triad(*x, *y, *z))?;
                (b, None)
            }
            Locate::Physical {
                cabinet,
                frame,
                board,
                ..
            } => (
                resolve(d, &BoardRef::Physical(*cabinet, *frame, *board))?,
                None,
            ),
            Locate::Address { address, .. } => {
                (resolve(d, &BoardRef::Address(address.clone()))?, None)
            }
            Locate::Chip { x, y, .. } => {
                if !(0..cw).contains(x) || !(0..ch).contains(y) {
                    return None;
                }
                let (b, _) = chip_to_board(*x, *y, d.width, d.height);
                (b, Some((*x, *y)))
            }
        };
        let physical = Some(*d.locations.get(&board)?);
        let (bx, by, bz) = board;
        let board_chip = board_to_chip(i64::from(bx), i64::from(by), i64::from(bz));
        let chip = chip.unwrap_or(board_chip);
        let job = self.holder(mi, board).map(|(id, (rx, ry))| {
            (
                id,
                ((chip.0 - rx).rem_euclid(cw), (chip.1 - ry).rem_euclid(ch)),
            )
        });
        Some(Located {
            machine: d.name.clone(),
            board,
            physical,
            chip,
            board_chip,
            job,
        })
    }

    /// Finds the board of job `id` holding the job-relative chip `(x, y)`;
    /// `None` if the job has no boards or the chip is not on them.
    pub fn locate_in_job(&self, id: u64, x: i64, y: i64) -> Option<Located> {
        let a = self.jobs.get(&id)?.alloc.as_ref()?;
        // Within the job's extent in chips (which may cross the machine's
        // edge; the board test below decides the rest).
        if !(0..a.width).contains(&x) || !(0..a.height).contains(&y) {
            return None;
        }
        let d = &self.machines[a.machine].def;
        let (cw, ch) = (12 * i64::from(d.width), 12 * i64::from(d.height));
        let (rx, ry, rz) = component_min(&a.boards)?;
        let (ox, oy) = board_to_chip(i64::from(rx), i64::from(ry), i64::from(rz));
        let (gx, gy) = ((ox + x).rem_euclid(cw), (oy + y).rem_euclid(ch));
        let (board, _) = chip_to_board(gx, gy, d.width, d.height);
        if self.machines[a.machine].owners.get(&board) != Some(&id) {
            return None;
        }
        let (bx, by, bz) = board;
        let (ex, ey) = board_to_chip(i64::from(bx), i64::from(by), i64::from(bz));
        Some(Located {
            machine: d.name.clone(),
            board,
            physical: d.locations.get(&board).copied(),
            chip: (x, y),
            board_chip: ((ex - ox).rem_euclid(cw), (ey - oy).rem_euclid(ch)),
            job: Some((id, (x, y))),
        })
    }

    /// Records an issue with boards of job `id` by `reporter`, checking
    /// that each board belongs to the job; returns what the v2 service says
    /// back (a bad board is reported in the answer, not as an error, as the
    /// Java server does). `None` if the job is not live.
    pub fn report_issue(
        &mut self,
        id: u64,
        reporter: &str,
        issue: &str,
        boards: &[ReportedBoard],
    ) -> Option<String> {
        let a = self.jobs.get(&id)?.alloc.as_ref();
        let mut found = Vec::new();
        for b in boards {
            let board = match b {
                ReportedBoard::Chip(x, y) => match self.locate_in_job(id, *x, *y) {
                    Some(l) => l.board,
                    None => return Some(format!("chip at ({x},{y}) not in job's allocation")),
                },
                other => {
                    let (what, r) = match other {
                        ReportedBoard::Triad(x, y, z) => {
                            (format!("triad ({x},{y},{z})"), BoardRef::Triad(*x, *y, *z))
                        }
                        ReportedBoard::Physical(c, f, b) => (
                            format!("physical board [{c},{f},{b}]"),
                            BoardRef::Physical(*c, *f, *b),
                        ),
                        ReportedBoard::Address(ip) => {
                            (format!("board at {ip}"), BoardRef::Address(ip.clone()))
                        }
                        ReportedBoard::Chip(..) => continue,
                    };
                    // The job's own machine; a queued job has none, so
                    // nothing of it can be in the job.
                    let Some(a) = a else {
                        return Some(format!("{what} not allocated to job {id}"));
                    };
                    let d = &self.machines[a.machine].def;
                    let Some(board) = resolve(d, &r).filter(|b| d.locations.contains_key(b)) else {
                        return Some(format!("{what} not in machine"));
                    };
                    if self.machines[a.machine].owners.get(&board) != Some(&id) {
                        return Some(format!("{what} not allocated to job {id}"));
                    }
                    board
                }
            };
            let machine = a.map(|a| self.machines[a.machine].def.name.clone());
            found.push((machine.unwrap_or_default(), board));
        }
        info!(
            "issue reported by {reporter:?} for job {id}, boards {:?}: {issue:?}",
            found
        );
        self.reports.push_back(IssueReport {
            job: id,
            reporter: reporter.to_owned(),
            issue: issue.to_owned(),
            boards: found,
        });
        while self.reports.len() > MAX_REPORTS {
            self.reports.pop_front();
        }
        Some("report noted".to_owned())
    }

    /// How many jobs the engine knows (live and remembered).
    pub fn known_jobs(&self) -> usize {
        self.jobs.len() + self.retired.len()
    }

    /// Whether the engine knows job `id` (live or remembered).
    pub fn knows_job(&self, id: u64) -> bool {
        self.jobs.contains_key(&id) || self.retired.contains_key(&id)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Cause, Policy, Settings};
    use super::*;
    use crate::server::machine::Machine;

    fn controller(machines: Vec<Machine>) -> Controller {
        let defs = machines
            .iter()
            .map(|m| m.resolve())
            .collect::<Result<Vec<_>, _>>();
        let Ok(defs) = defs else {
            panic!("bad machine");
        };
        Controller::new(
            Settings {
                power_delay: Duration::ZERO,
                seconds_before_free: Duration::ZERO,
                max_retired_jobs: 100,
                policy: Policy::python(),
            },
            defs,
        )
    }

    fn req(shape: V2Shape, selector: Selector, mdb: i64) -> V2Request {
        V2Request {
            owner: "alice".into(),
            keepalive: Duration::from_secs(60),
            selector,
            shape,
            max_dead_boards: mdb,
            original: "{}".into(),
        }
    }

    fn tags() -> Selector {
        Selector::Tags(vec!["default".into()])
    }

    #[test]
    fn num_boards_shapes_follow_the_java_rule() {
        let mut c = controller(vec![Machine::new("m", 4, 4)]);
        let now = Instant::now();
        let mut dims = Vec::new();
        for n in [1, 2, 3, 4, 5, 7, 10, 13] {
            let id = c.create_job_v2(req(V2Shape::Boards(n), tags(), 0), "h", now);
            let a = id.ok().and_then(|id| c.job_allocation(id));
            dims.push(a.map(|a| (a.width, a.height, a.depth, a.boards.len())));
            c.destroy(id.unwrap_or(0), Cause::Requested(None), now);
        }
        assert_eq!(
            dims,
            vec![
                Some((1, 1, 1, 1)),
                Some((1, 1, 3, 3)),
                Some((1, 1, 3, 3)),
                Some((2, 1, 3, 6)),
                Some((2, 1, 3, 6)),
                Some((2, 2, 3, 12)),
                Some((2, 2, 3, 12)),
                Some((3, 2, 3, 18)),
            ]
        );
    }

    #[test]
    fn impossible_requests_make_no_job() {
        let mut c = controller(vec![Machine::new("m", 2, 2).dead_boards([(1, 1, 1)])]);
        let now = Instant::now();
        let refused = |c: &mut Controller, shape, sel, mdb| {
            c.create_job_v2(req(shape, sel, mdb), "h", now).err()
        };
        let no = Some(CreateRefused::NoMachine);
        assert_eq!(refused(&mut c, V2Shape::Dimensions(3, 1), tags(), 0), no);
        assert_eq!(refused(&mut c, V2Shape::Boards(13), tags(), 0), no);
        assert_eq!(
            refused(&mut c, V2Shape::Boards(2), Selector::Machine("x".into()), 0),
            no
        );
        assert_eq!(
            refused(&mut c, V2Shape::Boards(1), Selector::Tags(vec![]), 0),
            no
        );
        assert_eq!(
            refused(&mut c, V2Shape::Board(BoardRef::Triad(1, 1, 1)), tags(), 0),
            no
        );
        assert_eq!(
            refused(
                &mut c,
                V2Shape::Board(BoardRef::Address("1.2.3.4".into())),
                tags(),
                0
            ),
            no
        );
        // The whole machine has a dead board: only with a tolerance.
        assert_eq!(refused(&mut c, V2Shape::Dimensions(2, 2), tags(), 0), no);
        assert_eq!(
            refused(
                &mut c,
                V2Shape::DimensionsAt(1, 1, BoardRef::Triad(0, 0, 1)),
                tags(),
                0
            ),
            Some(CreateRefused::RootNotFirstOfTriad)
        );
        assert!(c.job_ids(true).is_empty());
        assert!(
            c.create_job_v2(req(V2Shape::Dimensions(2, 2), tags(), 1), "h", now)
                .is_ok()
        );
    }

    #[test]
    fn boards_by_address_and_position_and_rooted_rectangles() {
        let mut c = controller(vec![Machine::new("m", 2, 2)]);
        let now = Instant::now();
        let ip = c.machines[0]
            .def
            .ips
            .get(&(1, 0, 2))
            .cloned()
            .unwrap_or_default();
        let id = c.create_job_v2(
            req(V2Shape::Board(BoardRef::Address(ip)), tags(), 0),
            "h",
            now,
        );
        let a = id.ok().and_then(|id| c.job_allocation(id));
        assert_eq!(a.map(|a| a.boards), Some(vec![(1, 0, 2)]));
        let (cab, fr, bd) = c.machines[0].def.locations[&(0, 1, 1)];
        let shape = V2Shape::Board(BoardRef::Physical(cab.into(), fr.into(), bd.into()));
        let id = c.create_job_v2(req(shape, tags(), 0), "h", now);
        let a = id.ok().and_then(|id| c.job_allocation(id));
        assert_eq!(a.map(|a| a.boards), Some(vec![(0, 1, 1)]));
        let shape = V2Shape::DimensionsAt(1, 1, BoardRef::Triad(1, 1, 0));
        let id = c.create_job_v2(req(shape, tags(), 0), "h", now);
        let a = id.ok().and_then(|id| c.job_allocation(id));
        assert_eq!(
            a.map(|a| (a.boards.first().copied(), a.depth, a.connections.len())),
            Some((Some((1, 1, 0)), 3, 3))
        );
    }

    #[test]
    fn descriptions_of_live_and_destroyed_jobs() {
        let mut c = controller(vec![Machine::new("m", 2, 2)]);
        let now = Instant::now();
        let Ok(id) = c.create_job_v2(req(V2Shape::Boards(1), tags(), 0), "10.0.0.1", now) else {
            panic!("refused");
        };
        let v = c.job_view(id);
        assert_eq!(v.as_ref().map(|v| v.state), Some(V2State::Ready));
        // No keepalive yet: no keepalive host.
        assert_eq!(v.as_ref().and_then(|v| v.keepalive_host.clone()), None);
        assert!(c.keepalive_v2(id, "10.0.0.2", now));
        assert_eq!(
            c.job_view(id).and_then(|v| v.keepalive_host),
            Some("10.0.0.2".into())
        );
        assert_eq!(c.job_ids(false), vec![id]);
        c.destroy(id, Cause::Requested(Some(String::new())), now);
        let v = c.job_view(id);
        assert_eq!(v.as_ref().map(|v| v.state), Some(V2State::Destroyed));
        assert_eq!(
            v.as_ref().and_then(|v| v.reason.clone()),
            Some(String::new())
        );
        assert!(v.as_ref().is_some_and(|v| v.finish_time.is_some()));
        assert_eq!(c.job_owner(id), Some("alice"));
        assert!(c.job_ids(false).is_empty());
        assert_eq!(c.job_ids(true), vec![id]);
        assert!(!c.keepalive_v2(id, "h", now));
    }

    #[test]
    fn v2_jobs_follow_the_java_engine_in_the_python_dialect() {
        let mut c = controller(vec![Machine::new("m", 1, 1)]);
        let now = Instant::now();
        let Ok(a) = c.create_job_v2(req(V2Shape::Boards(3), tags(), 0), "h", now) else {
            panic!("refused");
        };
        let Ok(b) = c.create_job_v2(req(V2Shape::Boards(1), tags(), 0), "h", now) else {
            panic!("refused");
        };
        // Destroyed while queued: the reason as given, no "Cancelled: ".
        c.destroy(b, Cause::Requested(Some("gone".into())), now);
        assert_eq!(c.job_view(b).and_then(|v| v.reason), Some("gone".into()));
        // Expired: the Java server's words.
        c.tick(now + Duration::from_secs(61));
        assert_eq!(
            c.job_view(a).and_then(|v| v.reason),
            Some("keepalive expired".into())
        );
    }

    #[test]
    fn lookups() {
        let mut c = controller(vec![Machine::new("m", 2, 2)]);
        let now = Instant::now();
        let Ok(id) = c.create_job_v2(req(V2Shape::Dimensions(1, 1), tags(), 0), "h", now) else {
            panic!("refused");
        };
        let root = c.job_allocation(id).and_then(|a| a.boards.first().copied());
        let Some((rx, ry, _)) = root else {
            panic!("not allocated");
        };
        let (ox, oy) = board_to_chip(rx.into(), ry.into(), 0);
        let l = c.locate(&Locate::Chip {
            machine: "m".into(),
            x: ox + 9,
            y: oy + 5,
        });
        assert_eq!(
            l.as_ref().map(|l| (l.board, l.chip, l.board_chip, l.job)),
            Some((
                (rx, ry, 1),
                (ox + 9, oy + 5),
                (ox + 8, oy + 4),
                Some((id, (9, 5)))
            ))
        );
        let l = c.locate_in_job(id, 9, 5);
        assert_eq!(
            l.as_ref().map(|l| (l.board, l.chip, l.board_chip)),
            Some(((rx, ry, 1), (9, 5), (8, 4)))
        );
        assert_eq!(c.locate_in_job(id, 30, 30), None);
        assert_eq!(
            c.locate(&Locate::Chip {
                machine: "m".into(),
                x: 24,
                y: 0
            }),
            None
        );
        assert_eq!(
            c.locate(&Locate::Logical {
                machine: "m".into(),
                x: 2,
                y: 0,
                z: 0
            }),
            None
        );
        assert_eq!(
            c.report_issue(id, "alice", "x", &[ReportedBoard::Chip(9, 5)]),
            Some("report noted".into())
        );
        let other = if rx == 0 { 1 } else { 0 };
        assert_eq!(
            c.report_issue(id, "alice", "x", &[ReportedBoard::Triad(other, 0, 0)]),
            Some(format!("triad ({other},0,0) not allocated to job {id}"))
        );
        assert_eq!(
            c.report_issue(id, "alice", "x", &[ReportedBoard::Triad(5, 0, 0)]),
            Some("triad (5,0,0) not in machine".into())
        );
        assert_eq!(
            c.report_issue(id, "alice", "x", &[ReportedBoard::Chip(30, 30)]),
            Some("chip at (30,30) not in job's allocation".into())
        );
    }
}
