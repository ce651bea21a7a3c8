//! `spalloc job` (Python: `spalloc-job`): show, watch, power, list the
//! Ethernet addresses of, or destroy one job — by id, or the owner's only
//! live job.

use std::process::ExitCode;
use std::time::Duration;

use spalloc::{
    Board, Client, Error, JobDescription, JobMachineInfo, JobState, JobStateInfo, Watch,
};

use crate::Ctx;
use crate::args::{JobArgs, Server};
use crate::exit::{CliError, CliResult, code};
use crate::render::json::{self, JobView as JobJson};
use crate::render::pyfmt::request_repr;
use crate::render::{
    MapBoard, ethernet_csv, format_local_time, job_map, keepalive_text, render_deflist, shown,
    visible,
};
use crate::watch::{Interrupt, View, subscribe, wait_for_change, watch};
use crate::{print, settings};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Info,
    Watch,
    PowerOn,
    PowerOff,
    EthernetIps,
    Destroy,
}

fn action(args: &JobArgs) -> Result<Action, CliError> {
    let chosen: Vec<(Action, &str)> = [
        (args.info, Action::Info, "--info"),
        (args.watch, Action::Watch, "--watch"),
        (args.power_on, Action::PowerOn, "--power-on"),
        (args.power_off, Action::PowerOff, "--power-off"),
        (args.ethernet_ips, Action::EthernetIps, "--ethernet-ips"),
        (args.destroy, Action::Destroy, "--destroy"),
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
    let interrupt = matches!(action, Action::PowerOn | Action::PowerOff).then(Interrupt::catch);
    let fail = |e: Error| match e {
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
    let colour = ctx.term.out_colour;
    match action {
        Action::Info => {
            let text = show(&mut client, id, args.json, colour).map_err(fail)?;
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

fn show(client: &mut Client, id: u64, as_json: bool, colour: bool) -> Result<String, Error> {
    let jobs = client.list_jobs()?;
    match jobs.into_iter().find(|j| j.job_id == id) {
        Some(job) => {
            let info = client.job_machine_info(id)?;
            Ok(if as_json {
                json::line(&JobJson::live(&job, info.as_ref()))
            } else {
                live_text(&job, info.as_ref(), colour)
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

fn live_text(job: &JobDescription, info: Option<&JobMachineInfo>, colour: bool) -> String {
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
        let text = show(client, self.id, self.json, self.colour)?;
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
