//! `spalloc ps` (Python: `spalloc-ps`): the table of live jobs, optionally
//! filtered by machine or owner, once or on every change.

use std::process::ExitCode;

use serde_json::{Map, Value, json};
use spalloc::{Error, JobDescription, JobState, Number, ProtocolClient};

use crate::Ctx;
use crate::args::PsArgs;
use crate::common::{Server, View, load_config, print, watch};
use crate::exit::{CliError, CliResult};
use crate::json;
use crate::pyfmt::py_float;
use crate::term::{Cell, Style, format_local_time, render_table};

/// Runs `spalloc ps`.
pub fn run(args: PsArgs, ctx: &Ctx) -> CliResult {
    let config = load_config()?;
    let server = Server::resolve(&args, &config)?;
    let colour = ctx.term.out_colour;
    if args.watch {
        let json = args.json;
        return watch(&server, ctx.term, json, &mut PsView { args, colour });
    }
    let mut client = server.connect()?;
    let jobs = client.list_jobs().map_err(|e| server.error(e))?;
    print(&render(&jobs, &args, colour))?;
    // The process ends next: freeing a thousand jobs one by one first would
    // only add to the time the user waits.
    std::mem::forget(jobs);
    Ok(ExitCode::SUCCESS)
}

struct PsView {
    args: PsArgs,
    colour: bool,
}

impl View for PsView {
    fn subscribe(&mut self, client: &mut ProtocolClient) -> Result<(), Error> {
        client.notify_job(None)
    }

    fn draw(
        &mut self,
        client: &mut ProtocolClient,
        frame: &mut Vec<u8>,
    ) -> Result<Result<(), CliError>, Error> {
        let jobs = client.list_jobs()?;
        frame.extend_from_slice(render(&jobs, &self.args, self.colour).as_bytes());
        Ok(Ok(()))
    }
}

fn selected<'a>(
    jobs: &'a [JobDescription],
    args: &'a PsArgs,
) -> impl Iterator<Item = &'a JobDescription> {
    jobs.iter().filter(move |j| {
        args.machine
            .as_ref()
            .is_none_or(|m| j.allocated_machine_name.as_ref() == Some(m))
            && args
                .owner
                .as_ref()
                .is_none_or(|o| j.owner.as_ref() == Some(o))
    })
}

fn render(jobs: &[JobDescription], args: &PsArgs, colour: bool) -> String {
    if args.json {
        return json::line(&Value::Array(selected(jobs, args).map(job_json).collect()));
    }
    let rows: Vec<Vec<Cell>> = selected(jobs, args).map(row).collect();
    render_table(
        &[
            "ID",
            "State",
            "Power",
            "Boards",
            "Machine",
            "Created at",
            "Keepalive",
            "Owner (Host)",
        ],
        &rows,
        colour,
    )
}

/// The Python tools print a keepalive with `str()`.
pub fn keepalive_text(k: Option<Number>) -> String {
    match k {
        None => "None".to_owned(),
        Some(Number::Int(i)) => i.to_string(),
        Some(Number::Float(f)) => py_float(f),
    }
}

fn row(job: &JobDescription) -> Vec<Cell> {
    let state = match job.state {
        JobState::Queued => Cell::from("queue").styled(Style::BLUE),
        JobState::Power => Cell::from("power").styled(Style::YELLOW),
        JobState::Ready => Cell::from("ready").styled(Style::GREEN),
        other => Cell::from(other.code().to_string()),
    };
    let power = match job.power {
        None => Cell::from(""),
        Some(on) => {
            let style = match (job.state, on) {
                (JobState::Power, _) => Style::YELLOW,
                (_, true) => Style::GREEN,
                (_, false) => Style::RED,
            };
            Cell::from(if on { "on" } else { "off" }).styled(style)
        }
    };
    let boards = if job.boards.is_empty() {
        Cell::from("")
    } else {
        Cell::from(job.boards.len())
    };
    let mut owner = job.owner.clone().unwrap_or_else(|| "None".into());
    if let Some(host) = &job.keepalive_host {
        owner.push_str(&format!(" ({host})"));
    }
    vec![
        Cell::from(job.job_id),
        state,
        power,
        boards,
        Cell::from(job.allocated_machine_name.clone().unwrap_or_default()),
        Cell::from(
            job.start_time
                .and_then(format_local_time)
                .unwrap_or_default(),
        ),
        Cell::from(keepalive_text(job.keepalive)),
        Cell::from(owner),
    ]
}

/// The `--json` form of a job: shared with `spalloc job`.
pub fn job_json(job: &JobDescription) -> Value {
    let mut obj = Map::new();
    obj.insert("id".into(), job.job_id.into());
    obj.insert("state".into(), json::state(job.state));
    obj.insert("power".into(), job.power.into());
    let allocated = !job.boards.is_empty();
    obj.insert(
        "num_boards".into(),
        if allocated {
            job.boards.len().into()
        } else {
            Value::Null
        },
    );
    obj.insert(
        "boards".into(),
        if allocated {
            json::boards(&job.boards)
        } else {
            Value::Null
        },
    );
    obj.insert("machine".into(), job.allocated_machine_name.clone().into());
    json::insert_time(&mut obj, "start_time", job.start_time);
    obj.insert("keepalive".into(), json::number(job.keepalive));
    obj.insert("owner".into(), job.owner.clone().into());
    obj.insert("keepalive_host".into(), job.keepalive_host.clone().into());
    obj.insert(
        "request".into(),
        json!({"args": job.args, "kwargs": job.kwargs}),
    );
    Value::Object(obj)
}
