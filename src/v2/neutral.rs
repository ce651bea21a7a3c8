//! The protocol-neutral operations of [`Client`](crate::Client) over a v2
//! service: the v1 shapes (job states as numbers, sizes in chips, dead
//! links by number, where-is with the chip within its board) made from the
//! REST documents, as PROTOCOL_V2.md §6 says a unified client must.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Map, Value, json};

use super::client::RestClient;
use super::types::{BoardLocation, JobAllocation, JobInfo, Machine};
use crate::error::{Error, Phase, Result};
use crate::interrupt::InterruptHandle;
use crate::remote::{JobListing, ServerOptions, Watch};
use crate::seconds::{deadline, time_left};
use crate::types::{
    Board, BoardPosition, Chip, CreateJobOptions, DeadLink, JobDescription, JobMachineInfo,
    JobRequest, JobState, JobStateInfo, MachineDescription, Number, WhereIs, WhereIsQuery,
};

/// How long a watch of every job (or machine) waits before it looks again
/// anyway: the service has no event for a job created meanwhile.
const COLLECTION_REFRESH: Duration = Duration::from_secs(10);

/// A long-poll that answers sooner than this was woken by a change (the
/// Java server waits 30 s when nothing changes).
const WOKEN_BEFORE: Duration = Duration::from_secs(25);

/// How long a watch of one job first long-polls before it looks again.
/// The service's long-poll answers the next change after the request
/// arrives, with no way to say "since what I saw": a change between a look
/// and the long-poll's arrival would go unseen for the server's whole wait
/// (30 s). Such changes come in bursts (power, then state), so the watch
/// looks again after this, then after twice as long each quiet time, up to
/// the server's wait: a few extra looks after each change, none once quiet.
const FIRST_RECHECK: Duration = Duration::from_secs(1);

/// Past the server's own wait: once quiet, each long-poll runs its course.
const QUIET_RECHECK: Duration = Duration::from_secs(64);

/// What a watch compares a long-poll's answer with.
#[derive(Debug)]
enum Watched {
    Job(u64, Option<JobLook>),
    Machine(String, Option<Machine>),
    Jobs,
}

/// What a watch of one job compares: its state, keepalive host and power.
type JobLook = (JobState, Option<String>, Option<bool>);

/// A job's boards and power as a listing last read them, and the job as it
/// was just after (the reads themselves count as a keepalive).
#[derive(Debug)]
struct Details {
    seen: Option<(JobState, Option<f64>, Option<String>)>,
    alloc: Option<JobAllocation>,
    power: Option<bool>,
}

impl Details {
    /// Whether nothing has touched the job since: same state, same
    /// keepalive time and host (a power change or a keepalive moves the
    /// time).
    fn still(&self, now: &JobInfo) -> bool {
        self.seen.as_ref().is_some_and(|(state, time, host)| {
            *state == now.state && *time == now.keepalive_time && *host == now.keepalive_host
        })
    }
}

/// A v2 service as [`Client`](crate::Client) uses it.
#[derive(Debug)]
pub(crate) struct V2Backend {
    rest: RestClient,
    watched: Option<Watched>,
    /// How long the next long-poll of a watched job may last before the
    /// job is looked at again ([`FIRST_RECHECK`]).
    recheck: Duration,
    /// Machines by name, for sizes (they do not change while we look).
    machines: HashMap<String, (u32, u32)>,
    /// While a watch lists jobs: each listed job's boards and power.
    details: HashMap<u64, Details>,
    interrupt: Option<InterruptHandle>,
}

impl V2Backend {
    pub fn connect(
        url: &str,
        server: &ServerOptions,
        timeout: Option<Duration>,
        interrupt: Option<&InterruptHandle>,
    ) -> Result<V2Backend> {
        let rest = RestClient::connect(url, &server.v2, timeout, interrupt)?;
        if !server.ignore_version {
            rest.check_version()?;
        }
        Ok(V2Backend {
            rest,
            watched: None,
            recheck: FIRST_RECHECK,
            machines: HashMap::new(),
            details: HashMap::new(),
            interrupt: interrupt.cloned(),
        })
    }

    pub fn rest(&mut self) -> &mut RestClient {
        &mut self.rest
    }

    pub fn timeout(&self) -> Option<Duration> {
        self.rest.timeout()
    }

    pub fn set_timeout(&mut self, t: Option<Duration>) {
        self.rest.set_timeout(t);
    }

    /// A machine's width and height in triads.
    fn machine_size(&mut self, name: &str) -> Result<Option<(u32, u32)>> {
        if let Some(size) = self.machines.get(name) {
            return Ok(Some(*size));
        }
        let Some(m) = self.rest.machine(name)? else {
            return Ok(None);
        };
        self.machines.insert(name.to_owned(), (m.width, m.height));
        Ok(Some((m.width, m.height)))
    }

    pub fn list_machines(&mut self) -> Result<Vec<MachineDescription>> {
        let machines = self.rest.machines()?;
        Ok(machines
            .into_iter()
            .map(|m| {
                self.machines.insert(m.name.clone(), (m.width, m.height));
                machine_description(m)
            })
            .collect())
    }

    pub fn job_list(&mut self, destroyed: bool) -> Result<JobListing> {
        let ids = self.rest.job_ids(destroyed)?;
        // The service lists only ids: each job's description, and then the
        // boards and power of those that have boards, are asked for in
        // pipelined rounds rather than one request at a time.
        let infos = self.rest.jobs(&ids)?;
        let hidden = infos.iter().filter(|i| i.is_none()).count();
        let infos: Vec<JobInfo> = infos
            .into_iter()
            .flatten()
            .filter(|i| destroyed || i.state.is_live())
            .collect();
        // Reading a job's boards or power counts as a keepalive of it on
        // the Java service. While a watch lists the jobs again and again,
        // they are read again only for a job that someone else has touched
        // since (its state, or its keepalive time or host, moved): one left
        // to expire is not kept alive by being watched, and costs one
        // request a look, not three. The service keeps whole seconds, so a
        // power change made in the same second as the last look, and over
        // before the next, would go unseen until the job is next touched;
        // on real boards a power change spends seconds in state POWER,
        // which the look its long-poll wakes sees.
        let watching = matches!(self.watched, Some(Watched::Jobs | Watched::Machine(..)));
        if !watching {
            self.details.clear();
        }
        let with_boards: Vec<&JobInfo> = infos
            .iter()
            .filter(|i| matches!(i.state, JobState::Power | JobState::Ready))
            .collect();
        let stale: Vec<u64> = with_boards
            .iter()
            .filter(|i| self.details.get(&i.id).is_none_or(|d| !d.still(i)))
            .map(|i| i.id)
            .collect();
        let allocations = self.rest.job_machines(&stale)?;
        let powers = self.rest.powers(&stale)?;
        // What the reads just did to each job, to compare with next time.
        let touched = if watching {
            self.rest.jobs(&stale)?
        } else {
            vec![None; stale.len()]
        };
        for ((id, (alloc, power)), after) in stale
            .iter()
            .zip(allocations.into_iter().zip(powers))
            .zip(touched)
        {
            self.details.insert(
                *id,
                Details {
                    seen: after.map(|a| (a.state, a.keepalive_time, a.keepalive_host)),
                    alloc,
                    power,
                },
            );
        }
        let listed: std::collections::HashSet<u64> = with_boards.iter().map(|i| i.id).collect();
        self.details.retain(|id, _| listed.contains(id));
        let mut jobs: Vec<JobDescription> = infos
            .iter()
            .map(|info| match self.details.get(&info.id) {
                Some(d) => job_description(info, d.alloc.as_ref(), d.power),
                None => job_description(info, None, None),
            })
            .collect();
        if !watching {
            self.details.clear();
        }
        // Oldest first, as the v1 servers list them.
        jobs.sort_by_key(|j| j.job_id);
        Ok(JobListing { jobs, hidden })
    }

    pub fn job_state(&mut self, id: u64) -> Result<JobStateInfo> {
        let Some(info) = self.rest.job(id)? else {
            return Ok(JobStateInfo::unknown());
        };
        let power = match info.state {
            JobState::Power | JobState::Ready => self.rest.power(id)?,
            _ => None,
        };
        Ok(state_info(&info, power))
    }

    pub fn job_machine_info(&mut self, id: u64) -> Result<Option<JobMachineInfo>> {
        let alloc = match self.rest.job_machine(id) {
            Ok(Some(a)) => a,
            Ok(None) => return Ok(None),
            Err(Error::Server(m)) if m.trim().eq_ignore_ascii_case("no such job") => {
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let size = self.machine_size(&alloc.machine_name)?;
        Ok(Some(machine_info(alloc, size)))
    }

    pub fn create_job(
        &mut self,
        request: &JobRequest,
        options: &CreateJobOptions,
        grace: Option<Duration>,
    ) -> Result<u64> {
        match grace {
            Some(g) => self
                .rest
                .with_interrupt_grace(g, |r| r.create_job(request, options)),
            None => self.rest.create_job(request, options),
        }
    }

    pub fn keepalive(&mut self, id: u64) -> Result<()> {
        match self.rest.keepalive(id) {
            Err(Error::Timeout(Phase::Reply)) => Err(Error::Timeout(Phase::Keepalive)),
            other => other,
        }
    }

    pub fn power(&mut self, id: u64, on: bool) -> Result<()> {
        if self.rest.set_power(id, on)? {
            Ok(())
        } else {
            Err(Error::Server(format!("job {id} has no boards to power")))
        }
    }

    pub fn destroy_job(&mut self, id: u64, reason: Option<&str>) -> Result<()> {
        self.rest.delete_job(id, reason)
    }

    pub fn where_is(&mut self, query: &WhereIsQuery) -> Result<Option<WhereIs>> {
        let non_neg = |v: i64| u32::try_from(v).ok();
        match query {
            WhereIsQuery::Board { machine, x, y, z } => {
                let (Some(x), Some(y), Some(z)) = (non_neg(*x), non_neg(*y), non_neg(*z)) else {
                    return Ok(None);
                };
                let loc = self.rest.logical_board(machine, x, y, z)?;
                Ok(loc.map(|l| board_form(l, Chip { x: 0, y: 0 })))
            }
            WhereIsQuery::Physical {
                machine,
                cabinet,
                frame,
                board,
            } => {
                let (Some(c), Some(f), Some(b)) =
                    (non_neg(*cabinet), non_neg(*frame), non_neg(*board))
                else {
                    return Ok(None);
                };
                let loc = self.rest.physical_board(machine, c, f, b)?;
                Ok(loc.map(|l| board_form(l, Chip { x: 0, y: 0 })))
            }
            WhereIsQuery::Address { machine, address } => {
                let loc = self.rest.board_ip(machine, address)?;
                Ok(loc.map(|l| board_form(l, Chip { x: 0, y: 0 })))
            }
            WhereIsQuery::Chip { machine, x, y } => {
                // The server's own chip lookup is wrong (PROTOCOL_V2.md E2):
                // find the board here and ask for it by coordinate.
                let Some((w, h)) = self.machine_size(machine)? else {
                    return Ok(None);
                };
                let (cw, ch) = (12 * i64::from(w), 12 * i64::from(h));
                if cw == 0 || ch == 0 {
                    return Ok(None);
                }
                let (cx, cy) = (x.rem_euclid(cw), y.rem_euclid(ch));
                let (board, local) = chip_to_board(cx, cy, cw, ch);
                let Some(loc) = self
                    .rest
                    .logical_board(machine, board.x, board.y, board.z)?
                else {
                    return Ok(None);
                };
                let mut w = board_form(loc, local);
                w.chip = Chip {
                    x: u32::try_from(cx).unwrap_or(0),
                    y: u32::try_from(cy).unwrap_or(0),
                };
                w.job_chip = w.job_chip.map(|j| Chip {
                    x: j.x + local.x,
                    y: j.y + local.y,
                });
                Ok(Some(w))
            }
            WhereIsQuery::JobChip { job_id, x, y } => {
                let (Some(qx), Some(qy)) = (non_neg(*x), non_neg(*y)) else {
                    return Ok(None);
                };
                let loc = match self.rest.job_chip(*job_id, qx, qy) {
                    Ok(Some(l)) => l,
                    Ok(None) => return Ok(None),
                    Err(Error::Server(m)) if m.trim().eq_ignore_ascii_case("no such job") => {
                        return Ok(None);
                    }
                    Err(e) => return Err(e),
                };
                // `board-chip` is the board's Ethernet chip relative to the
                // job; the chip within the board is what is left.
                let local = Chip {
                    x: qx.wrapping_sub(loc.board_chip.x) % 12,
                    y: qy.wrapping_sub(loc.board_chip.y) % 12,
                };
                let (w, h) = self
                    .machine_size(&loc.machine)?
                    .unwrap_or((u32::MAX / 12, u32::MAX / 12));
                let eth = board_to_chip(loc.logical);
                let global = Chip {
                    x: (eth.x + local.x) % (12 * w).max(1),
                    y: (eth.y + local.y) % (12 * h).max(1),
                };
                let mut out = board_form(loc, local);
                out.chip = global;
                out.job_chip = Some(Chip { x: qx, y: qy });
                out.job_id = Some(*job_id);
                Ok(Some(out))
            }
        }
    }

    pub fn watch(&mut self, what: &Watch) -> Result<()> {
        self.recheck = FIRST_RECHECK;
        self.watched = Some(match what {
            Watch::Job(id) => Watched::Job(*id, self.look_at_job(*id)?),
            Watch::Machine(name) => Watched::Machine(name.clone(), self.rest.machine(name)?),
            Watch::Jobs | Watch::Machines => Watched::Jobs,
        });
        Ok(())
    }

    /// A job as a watch compares it: the description, and the power of
    /// its boards (the description does not say).
    fn look_at_job(&mut self, id: u64) -> Result<Option<JobLook>> {
        let Some(j) = self.rest.job(id)? else {
            return Ok(None);
        };
        let power = match j.state {
            JobState::Power | JobState::Ready => self.rest.power(id)?,
            _ => None,
        };
        Ok(Some((j.state, j.keepalive_host, power)))
    }

    /// Long-polls what is watched until it differs from what was seen, or
    /// `timeout` runs out (`false`).
    pub fn wait_for_change(&mut self, timeout: Option<Duration>) -> Result<bool> {
        let until = deadline(timeout);
        loop {
            if let Some(i) = &self.interrupt {
                i.take()?;
            }
            let left = time_left(until);
            if left.is_some_and(|l| l.is_zero()) {
                return Ok(false);
            }
            match self.watched.as_mut() {
                None => {
                    // Nothing to wait for: just the time.
                    match &self.interrupt {
                        Some(i) => i.sleep(left.unwrap_or(COLLECTION_REFRESH))?,
                        None => std::thread::sleep(left.unwrap_or(COLLECTION_REFRESH)),
                    }
                    return Ok(false);
                }
                Some(Watched::Job(id, _)) => {
                    let id = *id;
                    // A change since the watch began (or the last wait)
                    // counts: the service's long-poll would not see it.
                    let now = self.look_at_job(id)?;
                    if let Some(Watched::Job(_, seen)) = self.watched.as_mut()
                        && now != *seen
                    {
                        *seen = now;
                        self.recheck = FIRST_RECHECK;
                        return Ok(true);
                    }
                    if now.as_ref().is_none_or(|n| n.0 == JobState::Destroyed) {
                        // Nothing more will happen to it, and its wait may
                        // answer at once: just the time.
                        let pause = left.map_or(COLLECTION_REFRESH, |l| l.min(COLLECTION_REFRESH));
                        match &self.interrupt {
                            Some(i) => i.sleep(pause)?,
                            None => std::thread::sleep(pause),
                        }
                        return Ok(left.is_none_or(|l| l > pause));
                    }
                    let started = std::time::Instant::now();
                    let cap = left.map_or(self.recheck, |l| l.min(self.recheck));
                    match self.rest.wait_for_job(id, Some(cap)) {
                        // Look again (above), unless the caller's time is
                        // up; the next long-poll may last twice as long.
                        Ok(None) => {
                            self.recheck = (self.recheck * 2).min(QUIET_RECHECK);
                        }
                        // Woken before the server's wait was up: something
                        // changed; otherwise look again, above.
                        Ok(Some(_)) if started.elapsed() < WOKEN_BEFORE => {
                            let now = self.look_at_job(id)?;
                            if let Some(Watched::Job(_, seen)) = self.watched.as_mut() {
                                *seen = now;
                            }
                            self.recheck = FIRST_RECHECK;
                            return Ok(true);
                        }
                        Ok(Some(_)) => {}
                        // The job is gone: that is a change.
                        Err(Error::Server(_)) => return Ok(true),
                        Err(e) => return Err(e),
                    }
                }
                Some(Watched::Machine(name, seen)) => {
                    let name = name.clone();
                    match self.rest.wait_for_machine(&name, left) {
                        Ok(None) => return Ok(false),
                        Ok(Some(m)) => {
                            if seen.as_ref() != Some(&m) {
                                *seen = Some(m);
                                return Ok(true);
                            }
                            // The machine's own description did not change,
                            // but its boards may have changed hands.
                            return Ok(true);
                        }
                        Err(Error::Server(_)) => return Ok(true),
                        Err(e) => return Err(e),
                    }
                }
                Some(Watched::Jobs) => {
                    let limit = left.map_or(COLLECTION_REFRESH, |l| l.min(COLLECTION_REFRESH));
                    let started = std::time::Instant::now();
                    let answered = self.rest.wait_for_jobs(Some(limit))?;
                    if answered && started.elapsed() < Duration::from_millis(100) {
                        // An empty list answers at once: nothing to wait on
                        // but the time.
                        let rest = limit.saturating_sub(started.elapsed());
                        match &self.interrupt {
                            Some(i) => i.sleep(rest)?,
                            None => std::thread::sleep(rest),
                        }
                    }
                    return Ok(true);
                }
            }
        }
    }
}

/// The Ethernet chip of a board, in machine coordinates.
pub(crate) fn board_to_chip(b: Board) -> Chip {
    let (ox, oy) = match b.z {
        1 => (8, 4),
        2 => (4, 8),
        _ => (0, 0),
    };
    Chip {
        x: 12 * b.x + ox,
        y: 12 * b.y + oy,
    }
}

/// The board holding chip `(cx, cy)` (already within the machine's `cw` by
/// `ch` chips) and the chip's place within it.
pub(crate) fn chip_to_board(cx: i64, cy: i64, cw: i64, ch: i64) -> (Board, Chip) {
    let in_board = |lx: i64, ly: i64| {
        (0..=7).contains(&lx) && (0..=7).contains(&ly) && lx - ly <= 4 && ly - lx <= 3
    };
    let (tx, ty) = (cx.rem_euclid(12), cy.rem_euclid(12));
    for (rx, ry) in [(0, 0), (8, 4), (4, 8)] {
        let (lx, ly) = ((tx - rx).rem_euclid(12), (ty - ry).rem_euclid(12));
        if in_board(lx, ly) {
            let (ex, ey) = ((cx - lx).rem_euclid(cw), (cy - ly).rem_euclid(ch));
            let z = match (ex % 12, ey % 12) {
                (8, 4) => 1,
                (4, 8) => 2,
                _ => 0,
            };
            let u = |v: i64| u32::try_from(v).unwrap_or(0);
            return (
                Board::new(u(ex / 12), u(ey / 12), z),
                Chip { x: u(lx), y: u(ly) },
            );
        }
    }
    // Every cell belongs to one of the three boards.
    (Board::new(0, 0, 0), Chip { x: 0, y: 0 })
}

/// A where-is answer from a board form, with `local` the chip within the
/// board.
fn board_form(l: BoardLocation, local: Chip) -> WhereIs {
    WhereIs {
        machine: l.machine,
        logical: l.logical,
        physical: BoardPosition {
            cabinet: l.physical.0,
            frame: l.physical.1,
            board: l.physical.2.unwrap_or(0),
        },
        chip: l.chip,
        board_chip: local,
        job_id: l.job_id,
        job_chip: l.job_chip,
    }
}

fn machine_description(m: Machine) -> MachineDescription {
    let mut dead_boards: Vec<Board> = m.dead_boards.iter().map(|b| b.logical).collect();
    dead_boards.sort();
    let mut dead_links: Vec<DeadLink> = m
        .dead_links
        .iter()
        .flat_map(|l| {
            [
                DeadLink {
                    board: l.from.0.logical,
                    link: l.from.1.0,
                },
                DeadLink {
                    board: l.to.0.logical,
                    link: l.to.1.0,
                },
            ]
        })
        .collect();
    dead_links.sort();
    dead_links.dedup();
    MachineDescription {
        name: m.name,
        tags: m.tags,
        width: m.width,
        height: m.height,
        dead_boards,
        dead_links,
    }
}

fn state_info(info: &JobInfo, power: Option<bool>) -> JobStateInfo {
    JobStateInfo {
        state: info.state,
        power,
        keepalive: info.keepalive_interval(),
        reason: info.reason.clone(),
        start_time: info.start_time,
        keepalive_host: info.keepalive_host.clone(),
    }
}

/// The size in chips of an allocation, as the Java compatibility service
/// gives it: a single board is 8 x 8; whole triads are 12 per triad, plus 4
/// unless the allocation spans the (wrapping) machine in that direction.
fn machine_info(a: JobAllocation, machine: Option<(u32, u32)>) -> JobMachineInfo {
    let (width, height) = if a.depth == 1 || a.boards.len() == 1 {
        (8, 8)
    } else {
        let (mw, mh) = machine.unwrap_or((0, 0));
        let extra = |n: u32, whole: u32| if n == whole { 0 } else { 4 };
        (
            12 * a.width + extra(a.width, mw),
            12 * a.height + extra(a.height, mh),
        )
    };
    JobMachineInfo {
        width,
        height,
        connections: a.connections,
        machine_name: a.machine_name,
        boards: a.boards,
    }
}

/// A v2 job as a `list_jobs` entry: the request turned back into v1's
/// positional and keyword arguments.
fn job_description(
    info: &JobInfo,
    alloc: Option<&JobAllocation>,
    power: Option<bool>,
) -> JobDescription {
    let (args, kwargs) = request_args(info.original_request.as_ref());
    JobDescription {
        job_id: info.id,
        owner: info.owner.clone(),
        start_time: info.start_time,
        keepalive: info.keepalive_interval().map(Number::Float),
        state: info.state,
        power,
        args,
        kwargs,
        allocated_machine_name: alloc.map(|a| a.machine_name.clone()),
        boards: alloc.map(|a| a.boards.clone()).unwrap_or_default(),
        keepalive_host: info.keepalive_host.clone(),
        reason: info.reason.clone(),
        finish_time: info.finish_time,
    }
}

fn request_args(request: Option<&Value>) -> (Vec<Value>, Map<String, Value>) {
    let mut kwargs = Map::new();
    let Some(Value::Object(r)) = request else {
        return (Vec::new(), kwargs);
    };
    let get = |k: &str| r.get(k).filter(|v| !v.is_null());
    let args = if let Some(n) = get("num-boards") {
        vec![n.clone()]
    } else if let Some(d) = get("dimensions") {
        vec![
            d.get("width").cloned().unwrap_or(Value::Null),
            d.get("height").cloned().unwrap_or(Value::Null),
        ]
    } else if let Some(b) = get("board").filter(|b| b.get("x").is_some_and(|x| !x.is_null())) {
        vec![
            b.get("x").cloned().unwrap_or(Value::Null),
            b.get("y").cloned().unwrap_or(Value::Null),
            b.get("z").cloned().unwrap_or(Value::Null),
        ]
    } else {
        Vec::new()
    };
    if let Some(b) = get("board") {
        if let Some(a) = b.get("address").filter(|a| !a.is_null()) {
            kwargs.insert("address".into(), a.clone());
        }
        if let Some(c) = b.get("cabinet").filter(|c| !c.is_null()) {
            kwargs.insert(
                "physical".into(),
                json!([c, b.get("frame"), b.get("board")]),
            );
        }
    }
    kwargs.insert(
        "machine".into(),
        get("machine-name").cloned().unwrap_or(Value::Null),
    );
    kwargs.insert(
        "tags".into(),
        get("tags")
            .filter(|t| t.as_array().is_some_and(|a| !a.is_empty()))
            .cloned()
            .unwrap_or(Value::Null),
    );
    kwargs.insert(
        "max_dead_boards".into(),
        get("max-dead-boards").cloned().unwrap_or(Value::Null),
    );
    if let Some(g) = get("group") {
        kwargs.insert("group".into(), g.clone());
    }
    (args, kwargs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chips_and_boards() {
        for (b, eth) in [
            (Board::new(0, 0, 0), (0, 0)),
            (Board::new(0, 0, 1), (8, 4)),
            (Board::new(1, 2, 2), (16, 32)),
        ] {
            let c = board_to_chip(b);
            assert_eq!((c.x, c.y), eth);
            let (back, local) = chip_to_board(i64::from(c.x), i64::from(c.y), 48, 48);
            assert_eq!((back, local), (b, Chip { x: 0, y: 0 }));
        }
        // (1, 0) of the z=1 board of triad (0,0)'s left neighbour wraps.
        let (b, l) = chip_to_board(0, 5, 24, 24);
        assert_eq!((b, l), (Board::new(1, 0, 1), Chip { x: 4, y: 1 }));
        let (b, l) = chip_to_board(9, 6, 24, 24);
        assert_eq!((b, l), (Board::new(0, 0, 1), Chip { x: 1, y: 2 }));
    }
}
