//! `spalloc job` (Python: `spalloc-job`): show, watch, power, list the
//! Ethernet addresses of, or destroy one job — by id, or the owner's only
//! live job.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use spalloc::v2::IssueBoard;
use spalloc::{
    Board, Chip, Client, Error, JobDescription, JobMachineInfo, JobState, JobStateInfo, Watch,
    WhereIsQuery,
};

use crate::alloc::seconds_text;
use crate::args::{JobArgs, Server};
use crate::exit::{CliError, CliResult, code};
use crate::render::json::{self, JobView as JobJson};
use crate::render::pyfmt::request_repr;
use crate::render::{
    MapBoard, ethernet_csv, format_local_time, job_map, keepalive_text, render_deflist, shown,
    visible,
};
use crate::watch::{Interrupt, View, subscribe, wait_for_change, watch};
use crate::{Ctx, keeper};
use crate::{print, settings};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Info,
    Watch,
    PowerOn,
    PowerOff,
    EthernetIps,
    Destroy,
    WaitReady,
    Keepalive,
    ReportProblem,
}

fn action(args: &JobArgs) -> Result<Action, CliError> {
    let chosen: Vec<(Action, &str)> = [
        (args.info, Action::Info, "--info"),
        (args.watch, Action::Watch, "--watch"),
        (args.power_on, Action::PowerOn, "--power-on"),
        (args.power_off, Action::PowerOff, "--power-off"),
        (args.ethernet_ips, Action::EthernetIps, "--ethernet-ips"),
        (args.destroy, Action::Destroy, "--destroy"),
        (args.wait_ready, Action::WaitReady, "--wait-ready"),
        (args.keepalive, Action::Keepalive, "--keepalive"),
        (
            args.report_problem.is_some(),
            Action::ReportProblem,
            "--report-problem",
        ),
    ]
    .into_iter()
    .filter(|(on, _, _)| *on)
    .map(|(_, a, name)| (a, name))
    .collect();
    match chosen.as_slice() {
        [] => Ok(Action::Info),
        [(a, _)] => Ok(*a),
        [(_, first), (_, second), ..] => Err(CliError::Usage(format!(
            "argument {second}: not allowed with argument {first}"
        ))),
    }
}

/// Runs `spalloc job`.
pub fn run(mut args: JobArgs, ctx: &Ctx) -> CliResult {
    let action = action(&args)?;
    // `spalloc job --destroy 15` means job 15, not reason "15" for the
    // owner's only job (the Python tool's reading).
    let reason_as_id = args
        .destroy_reason
        .as_deref()
        .and_then(|r| r.parse::<u64>().ok());
    if let (Action::Destroy, None, Some(id)) = (action, args.job_id, reason_as_id) {
        args.job_id = Some(id);
        args.destroy_reason = None;
    }
    let ready_timeout = match args.ready_timeout {
        _ if args.ready_timeout.is_some() && action != Action::WaitReady => {
            return Err(CliError::Usage(
                "argument --ready-timeout: only with --wait-ready".into(),
            ));
        }
        None => None,
        Some(s) if s.is_finite() && (0.0..1e9).contains(&s) => Some(Duration::from_secs_f64(s)),
        Some(s) => {
            return Err(CliError::Usage(format!(
                "argument --ready-timeout: expected a number of seconds from 0, got {s}"
            )));
        }
    };
    let target = report_target(&args, action)?;
    let config = settings::load_config()?;
    let server = settings::server(&args.server_flags(), &config)?;
    // On v2, jobs belong to the user logged in.
    let owner = settings::owner(args.owner.as_deref(), &config).or_else(|| {
        (server.protocol() == spalloc::Protocol::V2)
            .then(|| server.v2.user.clone())
            .flatten()
    });
    if args.job_id.is_none() && owner.is_none() {
        return Err(CliError::Usage("job ID (or --owner) not specified".into()));
    }
    // Powering waits until done; Ctrl-C ends that wait (exit 7), and must
    // be able to cut short any call the server is slow to answer.
    let interrupt = matches!(
        action,
        Action::PowerOn | Action::PowerOff | Action::WaitReady
    )
    .then(Interrupt::catch);
    let fail = |e: Error| match e {
        Error::Interrupted if action == Action::WaitReady => {
            CliError::silent(code::INTERRUPTED_OR_NOTHING)
        }
        Error::Interrupted => CliError::silent(code::POWER_INTERRUPTED),
        e => CliError::server(&server, e),
    };
    let connected = match &interrupt {
        Some(i) => Client::connect_interruptible(&server, i.handle()),
        None => Client::connect(&server),
    };
    let mut client = connected.map_err(fail)?;
    let id = match args.job_id {
        Some(id) => id,
        None => find_job(&mut client, &fail, owner.as_deref().unwrap_or_default())?,
    };
    if action == Action::Keepalive {
        drop(client);
        return keeper::run(id, server);
    }
    let colour = ctx.term.out_colour;
    match action {
        Action::Info => {
            let keeper = keeper::holder(id, &server);
            let text = show(&mut client, id, args.json, colour, keeper).map_err(fail)?;
            print(&text)?;
        }
        Action::Watch => {
            drop(client);
            return watch(
                &server,
                ctx.term,
                args.json,
                &mut JobView {
                    id,
                    json: args.json,
                    colour,
                    keeper: keeper::holder(id, &server),
                },
            );
        }
        Action::PowerOn | Action::PowerOff => {
            let interrupt = interrupt.unwrap_or_else(Interrupt::catch);
            power(
                &mut client,
                &fail,
                &interrupt,
                id,
                action == Action::PowerOn,
            )?;
        }
        Action::WaitReady => {
            let interrupt = interrupt.unwrap_or_else(Interrupt::catch);
            wait_ready(&mut client, &fail, &interrupt, id, ready_timeout)?;
        }
        Action::Keepalive => {}
        Action::ReportProblem => {
            let reason = args.report_problem.unwrap_or_default();
            if let Some(answer) = report(&mut client, &fail, id, &reason, target)? {
                print(&format!("{}\n", visible(&answer)))?;
            }
        }
        Action::EthernetIps => {
            let info = client.job_machine_info(id).map_err(fail)?;
            let Some(info) = info else {
                return Err(CliError::exit(
                    code::NO_IPS,
                    format!("Job {id} is queued or does not exist"),
                ));
            };
            if args.json {
                print(&json::line(&json::connections(&info.connections)))?;
            } else {
                print(&ethernet_csv(&info))?;
            }
        }
        Action::Destroy => {
            // An empty REASON (`--destroy ""`) gets the default too, as
            // in the Python tool.
            let reason = match (args.destroy_reason.filter(|r| !r.is_empty()), &owner) {
                (Some(r), _) => r,
                (None, Some(o)) => format!("Destroyed by {o}"),
                (None, None) => String::new(),
            };
            match client.destroy_job(id, Some(&reason)) {
                Ok(()) => {}
                // The Java service raises for an id it does not know, where
                // the Python server does nothing: a job that is not live is
                // accepted silently whichever answers.
                Err(Error::Server(m)) => {
                    if client.job_state(id).map_err(fail)?.state.is_live() {
                        return Err(fail(Error::Server(m)));
                    }
                }
                Err(e) => return Err(fail(e)),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The owner's only live job, or exit 3.
pub(crate) fn find_job(
    client: &mut Client,
    fail: &dyn Fn(Error) -> CliError,
    owner: &str,
) -> Result<u64, CliError> {
    let jobs = client.list_jobs().map_err(fail)?;
    let ids: Vec<u64> = jobs
        .iter()
        .filter(|j| j.owner.as_deref() == Some(owner))
        .map(|j| j.job_id)
        .collect();
    match ids.as_slice() {
        [id] => Ok(*id),
        [] => Err(CliError::exit(
            code::STATE,
            format!("Owner {} has no live jobs", visible(owner)),
        )),
        many => Err(CliError::exit(
            code::STATE,
            format!(
                "Ambiguous: {} has {} live jobs: {}",
                visible(owner),
                many.len(),
                many.iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

fn show(
    client: &mut Client,
    id: u64,
    as_json: bool,
    colour: bool,
    keeper: Option<u32>,
) -> Result<String, Error> {
    let jobs = client.list_jobs()?;
    match jobs.into_iter().find(|j| j.job_id == id) {
        Some(job) => {
            let info = client.job_machine_info(id)?;
            Ok(if as_json {
                json::line(&JobJson::live(&job, info.as_ref(), keeper))
            } else {
                live_text(&job, info.as_ref(), colour, keeper)
            })
        }
        None => {
            let state = client.job_state(id)?;
            Ok(if as_json {
                json::line(&JobJson::dead(id, &state))
            } else {
                dead_text(id, &state)
            })
        }
    }
}

fn live_text(
    job: &JobDescription,
    info: Option<&JobMachineInfo>,
    colour: bool,
    keeper: Option<u32>,
) -> String {
    let mut items: Vec<(&str, String)> = vec![("Job ID", job.job_id.to_string())];
    if let Some(owner) = &job.owner {
        items.push(("Owner", shown(owner)));
    }
    items.push(("State", job.state.to_string()));
    if let Some(t) = job.start_time.and_then(format_local_time) {
        items.push(("Start time", t));
    }
    items.push(("Keepalive", keepalive_text(job.keepalive)));
    if let Some(host) = &job.keepalive_host {
        items.push(("Owner host", shown(host)));
    }
    if let Some(pid) = keeper {
        items.push(("Kept by", format!("local keeper, pid {pid}")));
    }
    items.push(("Request", request_repr(&job.args, &job.kwargs)));
    if !job.boards.is_empty() {
        let boards: Vec<MapBoard> = job.boards.iter().map(|b: &Board| (b.x, b.y, b.z)).collect();
        items.push(("Allocation", job_map(&boards, colour)));
    }
    if let Some(info) = info {
        if let Some(host) = info.hostname() {
            items.push(("Hostname", shown(host)));
        }
        items.push(("Width", info.width.to_string()));
        items.push(("Height", info.height.to_string()));
    }
    if !job.boards.is_empty() {
        items.push(("Num boards", job.boards.len().to_string()));
    }
    if let Some(on) = job.power {
        items.push(("Board power", if on { "on" } else { "off" }.to_owned()));
    }
    if let Some(m) = &job.allocated_machine_name {
        items.push(("Running on", shown(m)));
    }
    render_deflist(&items)
}

fn dead_text(id: u64, state: &JobStateInfo) -> String {
    let mut items = vec![
        ("Job ID", id.to_string()),
        ("State", state.state.to_string()),
    ];
    if let Some(r) = &state.reason {
        items.push(("Reason", shown(r)));
    }
    render_deflist(&items)
}

struct JobView {
    id: u64,
    json: bool,
    colour: bool,
    keeper: Option<u32>,
}

impl View for JobView {
    fn watched(&self) -> Watch {
        Watch::Job(self.id)
    }

    fn draw(
        &mut self,
        client: &mut Client,
        frame: &mut Vec<u8>,
    ) -> Result<Result<(), CliError>, Error> {
        let text = show(client, self.id, self.json, self.colour, self.keeper)?;
        frame.extend_from_slice(text.as_bytes());
        Ok(Ok(()))
    }
}

/// Powers on (or resets) or off and waits until the job is ready again.
///
/// The state is looked at first: a job without boards cannot be powered,
/// and the Python server ignores the request where the Java service raises
/// an exception, so the outcome must not depend on the server's answer.
fn power(
    client: &mut Client,
    fail: &dyn Fn(Error) -> CliError,
    interrupt: &Interrupt,
    id: u64,
    on: bool,
) -> Result<(), CliError> {
    let cannot = |state: JobState| {
        CliError::exit(
            code::POWER_STATE,
            format!(
                "Error: Cannot power {} job {id} in state {state}",
                if on { "on" } else { "off" }
            ),
        )
    };
    let powerable = |state: JobState| matches!(state, JobState::Ready | JobState::Power);
    let state = client.job_state(id).map_err(fail)?.state;
    if !powerable(state) {
        return Err(cannot(state));
    }
    match client.power(id, on) {
        Ok(()) => {}
        Err(Error::Server(m)) => {
            // Destroyed in the meantime?
            let state = client.job_state(id).map_err(fail)?.state;
            return Err(if powerable(state) {
                fail(Error::Server(m))
            } else {
                cannot(state)
            });
        }
        Err(e) => return Err(fail(e)),
    }
    loop {
        subscribe(client, &Watch::Job(id)).map_err(fail)?;
        let state = client.job_state(id).map_err(fail)?;
        match state.state {
            JobState::Ready => return Ok(()),
            JobState::Power => {
                // Changes are hints; look again every few seconds anyway.
                let again = wait_for_change(client, interrupt, Some(Duration::from_secs(2)));
                if !again.map_err(fail)? {
                    return Err(CliError::silent(code::POWER_INTERRUPTED));
                }
            }
            other => return Err(cannot(other)),
        }
    }
}

/// Waits until the job is ready (exit 0), ends (exit 1) or `timeout`
/// passes (exit 5); Ctrl-C ends the wait (exit 4).
fn wait_ready(
    client: &mut Client,
    fail: &dyn Fn(Error) -> CliError,
    interrupt: &Interrupt,
    id: u64,
    timeout: Option<Duration>,
) -> Result<(), CliError> {
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    loop {
        subscribe(client, &Watch::Job(id)).map_err(fail)?;
        let state = client.job_state(id).map_err(fail)?;
        match state.state {
            JobState::Ready => return Ok(()),
            JobState::Queued | JobState::Power => {}
            JobState::Destroyed => {
                return Err(CliError::exit(
                    code::FAILED,
                    match &state.reason {
                        Some(r) => format!("Job {id}: Destroyed: {}", visible(r)),
                        None => format!("Job {id}: Destroyed."),
                    },
                ));
            }
            other => {
                return Err(CliError::exit(
                    code::FAILED,
                    format!("Job {id}: {other}: it will never be ready"),
                ));
            }
        }
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        if left.is_some_and(|l| l.is_zero()) {
            return Err(CliError::exit(
                code::NOT_READY,
                format!(
                    "Job {id}: Not ready after {} (--ready-timeout); it is left as it was.",
                    seconds_text(timeout.unwrap_or_default())
                ),
            ));
        }
        // Changes are hints; look again every few seconds anyway.
        let hint = Duration::from_secs(2);
        let again = wait_for_change(client, interrupt, Some(left.map_or(hint, |l| l.min(hint))));
        if !again.map_err(fail)? {
            return Err(CliError::silent(code::INTERRUPTED_OR_NOTHING));
        }
    }
}

/// What `--report-problem` is about.
#[derive(Debug, Clone, Copy)]
enum Target {
    /// Every board of the job.
    All,
    /// `--board X Y Z`.
    Board(Board),
    /// `--chip X Y`: the board holding this job-relative chip.
    Chip(Chip),
}

fn report_target(args: &JobArgs, action: Action) -> Result<Target, CliError> {
    let given = |flag: &str, values: &[i64]| -> Result<Option<Vec<u32>>, CliError> {
        if values.is_empty() {
            return Ok(None);
        }
        if action != Action::ReportProblem {
            return Err(CliError::Usage(format!(
                "argument {flag}: only with --report-problem"
            )));
        }
        values
            .iter()
            .map(|v| u32::try_from(*v))
            .collect::<Result<Vec<u32>, _>>()
            .map(Some)
            .map_err(|_| CliError::Usage(format!("argument {flag}: expected coordinates from 0")))
    };
    let board = given("--board", &args.board)?;
    let chip = given("--chip", &args.chip)?;
    match (board.as_deref(), chip.as_deref()) {
        (Some(_), Some(_)) => Err(CliError::Usage(
            "argument --chip: not allowed with argument --board".into(),
        )),
        (Some([x, y, z]), None) => Ok(Target::Board(Board {
            x: *x,
            y: *y,
            z: *z,
        })),
        (None, Some([x, y])) => Ok(Target::Chip(Chip { x: *x, y: *y })),
        (None, None) => Ok(Target::All),
        // The parser takes exactly three (two) values.
        _ => Err(CliError::Usage(
            "argument --board/--chip: wrong number of values".into(),
        )),
    }
}

/// Reports a problem with the job's boards: v2 `report-issue`, answered
/// with what the service did (returned); v1 `report_problem`, once per
/// board, by the board's IP address (the Java service and the virtual
/// server know it; the Python server does not).
fn report(
    client: &mut Client,
    fail: &dyn Fn(Error) -> CliError,
    id: u64,
    reason: &str,
    target: Target,
) -> Result<Option<String>, CliError> {
    let Some(info) = client.job_machine_info(id).map_err(fail)? else {
        return Err(CliError::exit(
            code::NO_IPS,
            format!("Job {id} is queued or does not exist"),
        ));
    };
    let machine = info.machine_name.clone();
    if let Some(rest) = client.as_v2() {
        let boards: Vec<(String, IssueBoard)> = match target {
            Target::Board(b) => vec![(machine, IssueBoard::Logical(b))],
            Target::Chip(c) => vec![(machine, IssueBoard::Chip(c))],
            Target::All => info
                .boards
                .iter()
                .map(|b| (machine.clone(), IssueBoard::Logical(*b)))
                .collect(),
        };
        return rest
            .report_issue(id, reason, &boards)
            .map(Some)
            .map_err(fail);
    }
    let not_in_job = |what: String| {
        CliError::exit(
            code::INTERRUPTED_OR_NOTHING,
            format!("Job {id}: {what} is not in the job's allocation"),
        )
    };
    // The job-relative Ethernet chip of the board reported, and the chip
    // within that board.
    let ip_of = |eth: (i64, i64)| {
        info.connections
            .iter()
            .find(|c| (i64::from(c.chip.x), i64::from(c.chip.y)) == eth)
            .map(|c| c.hostname.clone())
    };
    let targets: Vec<(String, Option<(u32, u32)>)> = match target {
        Target::All => info
            .connections
            .iter()
            .map(|c| (c.hostname.clone(), None))
            .collect(),
        Target::Board(b) => {
            let what = format!("board ({}, {}, {})", b.x, b.y, b.z);
            let found = client
                .where_is(&WhereIsQuery::Board {
                    machine: machine.clone(),
                    x: b.x.into(),
                    y: b.y.into(),
                    z: b.z.into(),
                })
                .map_err(fail)?
                .filter(|w| w.job_id == Some(id));
            let ip = found
                .and_then(|w| w.job_chip)
                .and_then(|c| ip_of((c.x.into(), c.y.into())));
            vec![(ip.ok_or_else(|| not_in_job(what))?, None)]
        }
        Target::Chip(c) => {
            let what = format!("chip ({}, {})", c.x, c.y);
            let found = client
                .where_is(&WhereIsQuery::JobChip {
                    job_id: id,
                    x: c.x.into(),
                    y: c.y.into(),
                })
                .map_err(fail)?
                .filter(|w| w.job_id == Some(id));
            let located = found.and_then(|w| {
                let job_chip = w.job_chip?;
                let (w_, h) = (i64::from(info.width.max(1)), i64::from(info.height.max(1)));
                let eth = (
                    (i64::from(job_chip.x) - i64::from(w.board_chip.x)).rem_euclid(w_),
                    (i64::from(job_chip.y) - i64::from(w.board_chip.y)).rem_euclid(h),
                );
                Some((ip_of(eth)?, (w.board_chip.x, w.board_chip.y)))
            });
            let (ip, chip) = located.ok_or_else(|| not_in_job(what))?;
            vec![(ip, Some(chip))]
        }
    };
    let Some(v1) = client.as_v1() else {
        return Ok(None);
    };
    for (ip, chip) in targets {
        v1.report_problem(&ip, chip, None, Some(reason))
            .map_err(fail)?;
    }
    Ok(None)
}
