//! `spalloc machine` (Python: `spalloc-machine`): a summary table of every
//! machine, or one machine's board map with its jobs keyed A, B, C….

use std::collections::HashSet;
use std::process::ExitCode;

use serde_json::{Map, Value};
use spalloc::{Board, Error, JobDescription, MachineDescription, ProtocolClient};

use crate::Ctx;
use crate::args::MachineArgs;
use crate::common::{Server, View, load_config, print, watch};
use crate::exit::{CliError, CliResult, code};
use crate::json;
use crate::term::{self, Cell, render_compact_cells, render_deflist, render_table};

/// Runs `spalloc machine`.
pub fn run(args: MachineArgs, ctx: &Ctx) -> CliResult {
    let config = load_config()?;
    let server = Server::resolve(&args, &config)?;
    // After the hostname, as the Python tool checks them; still before
    // anything is sent.
    if args.detailed && args.machine.is_none() {
        return Err(CliError::Usage(
            "--detailed only works when a specific machine is specified".into(),
        ));
    }
    let colour = ctx.term.out_colour;
    if args.watch {
        let json = args.json;
        return watch(&server, ctx.term, json, &mut MachineView { args, colour });
    }
    let mut client = server.connect()?;
    let (machines, jobs) = fetch(&mut client).map_err(|e| server.error(e))?;
    print(&render(&machines, &jobs, &args, colour)?)?;
    // The process ends next: freeing a thousand jobs one by one first would
    // only add to the time the user waits.
    std::mem::forget(jobs);
    Ok(ExitCode::SUCCESS)
}

fn fetch(
    client: &mut ProtocolClient,
) -> Result<(Vec<MachineDescription>, Vec<JobDescription>), Error> {
    Ok((client.list_machines()?, client.list_jobs()?))
}

struct MachineView {
    args: MachineArgs,
    colour: bool,
}

impl View for MachineView {
    fn subscribe(&mut self, client: &mut ProtocolClient) -> Result<(), Error> {
        client.notify_machine(self.args.machine.as_deref())
    }

    fn resubscribe_each_frame(&self) -> bool {
        true
    }

    fn draw(
        &mut self,
        client: &mut ProtocolClient,
        frame: &mut Vec<u8>,
    ) -> Result<Result<(), CliError>, Error> {
        let (machines, jobs) = fetch(client)?;
        Ok(render(&machines, &jobs, &self.args, self.colour)
            .map(|text| frame.extend_from_slice(text.as_bytes())))
    }
}

fn render(
    machines: &[MachineDescription],
    jobs: &[JobDescription],
    args: &MachineArgs,
    colour: bool,
) -> Result<String, CliError> {
    match &args.machine {
        None if args.json => Ok(json::line(&Value::Array(
            machines.iter().map(|m| summary_json(m, jobs)).collect(),
        ))),
        None => Ok(summary(machines, jobs, colour)),
        Some(name) => {
            let machine = machines.iter().find(|m| &m.name == name).ok_or_else(|| {
                CliError::exit(
                    code::NO_SERVER_OR_MACHINE,
                    format!("No machine '{name}' was found"),
                )
            })?;
            if args.json {
                Ok(json::line(&detail_json(machine, jobs)))
            } else {
                Ok(detail(machine, jobs, args.detailed, colour))
            }
        }
    }
}

fn jobs_on<'a>(
    machine: &'a MachineDescription,
    jobs: &'a [JobDescription],
) -> impl Iterator<Item = &'a JobDescription> {
    jobs.iter()
        .filter(move |j| j.allocated_machine_name.as_deref() == Some(machine.name.as_str()))
}

fn in_use(machine: &MachineDescription, jobs: &[JobDescription]) -> usize {
    jobs_on(machine, jobs).map(|j| j.boards.len()).sum()
}

fn summary(machines: &[MachineDescription], jobs: &[JobDescription], colour: bool) -> String {
    let rows: Vec<Vec<Cell>> = machines
        .iter()
        .map(|m| {
            vec![
                Cell::from(m.name.clone()),
                Cell::from(m.num_boards()),
                Cell::from(in_use(m, jobs)),
                Cell::from(jobs_on(m, jobs).count()),
                Cell::from(m.tags.join(", ")),
            ]
        })
        .collect();
    render_table(
        &["Name", "Num boards", "In-use", "Jobs", "Tags"],
        &rows,
        colour,
    )
}

fn tuple(b: &Board) -> term::Board {
    (b.x, b.y, b.z)
}

fn detail(
    machine: &MachineDescription,
    jobs: &[JobDescription],
    detailed: bool,
    colour: bool,
) -> String {
    let shown: Vec<&JobDescription> = jobs_on(machine, jobs).collect();
    let keys: Vec<String> = (0..shown.len()).map(term::job_key).collect();
    let mut out = render_deflist(&[
        ("Name", crate::visible::shown(&machine.name)),
        ("Tags", crate::visible::shown(&machine.tags.join(", "))),
        (
            "In-use",
            format!("{} of {}", in_use(machine, jobs), machine.num_boards()),
        ),
        ("Jobs", shown.len().to_string()),
    ]);

    let dead: HashSet<Board> = machine.dead_boards.iter().copied().collect();
    let mut live = Vec::new();
    for x in 0..machine.width {
        for y in 0..machine.height {
            for z in 0..3 {
                if !dead.contains(&Board::new(x, y, z)) {
                    live.push((x, y, z));
                }
            }
        }
    }
    let job_boards: Vec<Vec<term::Board>> = shown
        .iter()
        .map(|j| j.boards.iter().map(tuple).collect())
        .collect();
    let map_jobs: Vec<term::MapJob<'_>> = shown
        .iter()
        .zip(&keys)
        .zip(&job_boards)
        .map(|((j, key), boards)| (key.as_str(), j.job_id, boards.as_slice()))
        .collect();
    let dead_links: Vec<term::DeadLink> = machine
        .dead_links
        .iter()
        .map(|l| (l.board.x, l.board.y, l.board.z, l.link))
        .collect();
    out.push('\n');
    out.push_str(&term::machine_map(&live, &map_jobs, &dead_links, colour));
    out.push_str("\n\n");
    if detailed {
        let rows: Vec<Vec<Cell>> = shown
            .iter()
            .zip(&keys)
            .map(|(j, key)| {
                let mut owner = j.owner.clone().unwrap_or_else(|| "None".into());
                if let Some(host) = &j.keepalive_host {
                    owner.push(' ');
                    owner.push_str(host);
                }
                vec![
                    Cell::from(key.clone()).styled(term::job_colour(j.job_id)),
                    Cell::from(j.job_id),
                    Cell::from(j.boards.len()),
                    Cell::from(owner),
                ]
            })
            .collect();
        out.push_str(&render_table(
            &["Key", "Job ID", "Num boards", "Owner (Host)"],
            &rows,
            colour,
        ));
    } else {
        let cells: Vec<(String, u64)> = keys
            .iter()
            .cloned()
            .zip(shown.iter().map(|j| j.job_id))
            .collect();
        out.push_str(&render_compact_cells(&cells, colour));
    }
    out
}

fn summary_object(machine: &MachineDescription, jobs: &[JobDescription]) -> Map<String, Value> {
    let mut obj = Map::new();
    obj.insert("name".into(), machine.name.clone().into());
    obj.insert("tags".into(), machine.tags.clone().into());
    obj.insert("width_triads".into(), machine.width.into());
    obj.insert("height_triads".into(), machine.height.into());
    obj.insert("num_boards".into(), machine.num_boards().into());
    obj.insert("in_use".into(), in_use(machine, jobs).into());
    obj.insert("num_jobs".into(), jobs_on(machine, jobs).count().into());
    obj.insert("dead_boards".into(), json::boards(&machine.dead_boards));
    obj.insert(
        "dead_links".into(),
        Value::Array(machine.dead_links.iter().map(json::dead_link).collect()),
    );
    obj
}

fn summary_json(machine: &MachineDescription, jobs: &[JobDescription]) -> Value {
    Value::Object(summary_object(machine, jobs))
}

fn detail_json(machine: &MachineDescription, jobs: &[JobDescription]) -> Value {
    let mut obj = summary_object(machine, jobs);
    let listed: Vec<Value> = jobs_on(machine, jobs)
        .enumerate()
        .map(|(i, j)| {
            let mut o = Map::new();
            o.insert("key".into(), term::job_key(i).into());
            o.insert("id".into(), j.job_id.into());
            o.insert("num_boards".into(), j.boards.len().into());
            o.insert("owner".into(), j.owner.clone().into());
            o.insert("keepalive_host".into(), j.keepalive_host.clone().into());
            o.insert("boards".into(), json::boards(&j.boards));
            Value::Object(o)
        })
        .collect();
    obj.insert("jobs".into(), Value::Array(listed));
    Value::Object(obj)
}
