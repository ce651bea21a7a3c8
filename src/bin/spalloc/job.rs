//! `spalloc job` (Python: `spalloc-job`): show, watch, power, list the
//! Ethernet addresses of, or destroy one job — by id, or the owner's only
//! live job.

use std::process::ExitCode;
use std::time::Duration;

use serde_json::{Map, Value};
use spalloc::{
    Board, Error, JobDescription, JobMachineInfo, JobState, JobStateInfo, ProtocolClient,
};

use crate::Ctx;
use crate::args::JobArgs;
use crate::common::{Interrupt, Server, View, load_config, print, wait_notification, watch};
use crate::exit::{CliError, CliResult, code};
use crate::json;
use crate::ps::{job_json, keepalive_text};
use crate::pyfmt::request_repr;
use crate::term::{self, format_local_time, render_deflist};
use crate::visible::{shown, visible};

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
    let config = load_config()?;
    let owner = args.owner.clone().or_else(|| config.owner.clone());
    let server = Server::resolve(&args, &config)?;
    if args.job_id.is_none() && owner.is_none() {
        return Err(CliError::Usage("job ID (or --owner) not specified".into()));
    }
    // Powering waits until done; Ctrl-C ends that wait (exit 7), and must
    // be able to cut short any call the server is slow to answer.
    let interrupt = matches!(action, Action::PowerOn | Action::PowerOff).then(Interrupt::catch);
    let fail = |e: Error| match e {
        Error::Interrupted => CliError::silent(code::POWER_INTERRUPTED),
        e => server.error(e),
    };
    let mut client = server
        .try_connect(interrupt.as_ref().map(Interrupt::handle))
        .map_err(fail)?;
    let id = match args.job_id {
        Some(id) => id,
        None => find_job(&mut client, &fail, owner.as_deref().unwrap_or_default())?,
    };
    let colour = ctx.term.out_colour;
    match action {
        Action::Info => {
            let text = show(&mut client, id, args.json, colour).map_err(|e| server.error(e))?;
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
            let info = client
                .get_job_machine_info(id)
                .map_err(|e| server.error(e))?;
            let Some(info) = info else {
                return Err(CliError::exit(
                    code::NO_IPS,
                    format!("Job {id} is queued or does not exist"),
                ));
            };
            if args.json {
                print(&json::line(&json::connections(&info.connections)))?;
            } else {
                print(&csv(&info))?;
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
            client
                .destroy_job(id, Some(&reason))
                .map_err(|e| server.error(e))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The owner's only live job, or exit 3.
fn find_job(
    client: &mut ProtocolClient,
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

/// The CSV of Ethernet-connected chips, sorted by chip.
pub fn csv(info: &JobMachineInfo) -> String {
    let mut connections = info.connections.clone();
    connections.sort_unstable();
    let mut out = String::from("x,y,hostname\n");
    for c in connections {
        out.push_str(&format!(
            "{},{},{}\n",
            c.chip.x,
            c.chip.y,
            visible(&c.hostname)
        ));
    }
    out
}

fn show(
    client: &mut ProtocolClient,
    id: u64,
    as_json: bool,
    colour: bool,
) -> Result<String, Error> {
    let jobs = client.list_jobs()?;
    match jobs.into_iter().find(|j| j.job_id == id) {
        Some(job) => {
            let info = client.get_job_machine_info(id)?;
            Ok(if as_json {
                json::line(&live_json(&job, info.as_ref()))
            } else {
                live_text(&job, info.as_ref(), colour)
            })
        }
        None => {
            let state = client.get_job_state(id)?;
            Ok(if as_json {
                json::line(&dead_json(id, &state))
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
        let boards: Vec<term::Board> = job.boards.iter().map(|b: &Board| (b.x, b.y, b.z)).collect();
        items.push(("Allocation", term::job_map(&boards, colour)));
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

const JOB_FIELDS: [&str; 17] = [
    "id",
    "state",
    "owner",
    "start_time",
    "start_time_unix",
    "keepalive",
    "keepalive_host",
    "reason",
    "request",
    "machine",
    "hostname",
    "width",
    "height",
    "num_boards",
    "boards",
    "power",
    "connections",
];

fn empty_job(id: u64) -> Map<String, Value> {
    let mut obj: Map<String, Value> = JOB_FIELDS
        .iter()
        .map(|f| ((*f).to_owned(), Value::Null))
        .collect();
    obj.insert("id".into(), id.into());
    obj
}

fn live_json(job: &JobDescription, info: Option<&JobMachineInfo>) -> Value {
    let mut obj = empty_job(job.job_id);
    let ps = job_json(job);
    for key in [
        "state",
        "owner",
        "start_time",
        "start_time_unix",
        "keepalive",
        "keepalive_host",
        "request",
        "machine",
        "num_boards",
        "boards",
        "power",
    ] {
        if let Some(v) = ps.get(key) {
            obj.insert(key.into(), v.clone());
        }
    }
    if let Some(info) = info {
        obj.insert("hostname".into(), info.hostname().map(str::to_owned).into());
        obj.insert("width".into(), info.width.into());
        obj.insert("height".into(), info.height.into());
        obj.insert("connections".into(), json::connections(&info.connections));
    }
    Value::Object(obj)
}

fn dead_json(id: u64, state: &JobStateInfo) -> Value {
    let mut obj = empty_job(id);
    obj.insert("state".into(), json::state(state.state));
    obj.insert("reason".into(), state.reason.clone().into());
    Value::Object(obj)
}

struct JobView {
    id: u64,
    json: bool,
    colour: bool,
}

impl View for JobView {
    fn subscribe(&mut self, client: &mut ProtocolClient) -> Result<(), Error> {
        client.notify_job(Some(self.id))
    }

    fn draw(
        &mut self,
        client: &mut ProtocolClient,
        frame: &mut Vec<u8>,
    ) -> Result<Result<(), CliError>, Error> {
        let text = show(client, self.id, self.json, self.colour)?;
        frame.extend_from_slice(text.as_bytes());
        Ok(Ok(()))
    }
}

/// Powers on (or resets) or off and waits until the job is ready again.
fn power(
    client: &mut ProtocolClient,
    fail: &dyn Fn(Error) -> CliError,
    interrupt: &Interrupt,
    id: u64,
    on: bool,
) -> Result<(), CliError> {
    let result = if on {
        client.power_on_job_boards(id)
    } else {
        client.power_off_job_boards(id)
    };
    result.map_err(fail)?;
    loop {
        client.notify_job(Some(id)).map_err(fail)?;
        let state = client.get_job_state(id).map_err(fail)?;
        match state.state {
            JobState::Ready => return Ok(()),
            JobState::Power => {
                // Notifications are hints; look again every few seconds anyway.
                let again = wait_notification(client, interrupt, Some(Duration::from_secs(2)));
                if !again.map_err(fail)? {
                    return Err(CliError::silent(code::POWER_INTERRUPTED));
                }
            }
            other => {
                return Err(CliError::exit(
                    code::POWER_STATE,
                    format!(
                        "Error: Cannot power {} job {id} in state {other}",
                        if on { "on" } else { "off" }
                    ),
                ));
            }
        }
    }
}
