//! `spalloc machine` (Python: `spalloc-machine`): a summary table of every
//! machine, or one machine's board map with its jobs keyed A, B, C….

use std::collections::HashSet;
use std::process::ExitCode;

use spalloc::{Board, Client, Error, JobDescription, MachineDescription, Watch};

use crate::Ctx;
use crate::args::{MachineArgs, Server};
use crate::exit::{CliError, CliResult, code};
use crate::render::json::{self, MachineJobView, MachineView as MachineJson};
use crate::render::{
    Cell, MapBoard, MapDeadLink, MapJob, job_colour, job_key, machine_map, render_compact_cells,
    render_deflist, render_table, shown,
};
use crate::watch::{View, watch};
use crate::{print, settings};

/// Runs `spalloc machine`.
pub fn run(args: MachineArgs, ctx: &Ctx) -> CliResult {
    let config = settings::load_config()?;
    let server = settings::server(&args.server_flags(), &config)?;
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
    let fail = |e| CliError::server(&server, e);
    let mut client = Client::connect(&server).map_err(fail)?;
    let (machines, jobs) = fetch(&mut client).map_err(fail)?;
    print(&render(&machines, &jobs, &args, colour)?)?;
    // The process ends next: freeing a thousand jobs one by one first would
    // only add to the time the user waits.
    std::mem::forget(jobs);
    Ok(ExitCode::SUCCESS)
}

fn fetch(client: &mut Client) -> Result<(Vec<MachineDescription>, Vec<JobDescription>), Error> {
    Ok((client.list_machines()?, client.list_jobs()?))
}

struct MachineView {
    args: MachineArgs,
    colour: bool,
}

impl View for MachineView {
    fn watched(&self) -> Watch {
        match &self.args.machine {
            Some(name) => Watch::Machine(name.clone()),
            None => Watch::Machines,
        }
    }

    fn rewatch_each_frame(&self) -> bool {
        true
    }

    fn draw(
        &mut self,
        client: &mut Client,
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
        None if args.json => Ok(json::line(
            &machines
                .iter()
                .map(|m| summary_json(m, jobs))
                .collect::<Vec<_>>(),
        )),
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

fn tuple(b: &Board) -> MapBoard {
    (b.x, b.y, b.z)
}

fn detail(
    machine: &MachineDescription,
    jobs: &[JobDescription],
    detailed: bool,
    colour: bool,
) -> String {
    let on_it: Vec<&JobDescription> = jobs_on(machine, jobs).collect();
    let keys: Vec<String> = (0..on_it.len()).map(job_key).collect();
    let mut out = render_deflist(&[
        ("Name", shown(&machine.name)),
        ("Tags", shown(&machine.tags.join(", "))),
        (
            "In-use",
            format!("{} of {}", in_use(machine, jobs), machine.num_boards()),
        ),
        ("Jobs", on_it.len().to_string()),
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
    let job_boards: Vec<Vec<MapBoard>> = on_it
        .iter()
        .map(|j| j.boards.iter().map(tuple).collect())
        .collect();
    let map_jobs: Vec<MapJob<'_>> = on_it
        .iter()
        .zip(&keys)
        .zip(&job_boards)
        .map(|((j, key), boards)| (key.as_str(), j.job_id, boards.as_slice()))
        .collect();
    let dead_links: Vec<MapDeadLink> = machine
        .dead_links
        .iter()
        .map(|l| (l.board.x, l.board.y, l.board.z, l.link))
        .collect();
    out.push('\n');
    out.push_str(&machine_map(&live, &map_jobs, &dead_links, colour));
    out.push_str("\n\n");
    if detailed {
        let rows: Vec<Vec<Cell>> = on_it
            .iter()
            .zip(&keys)
            .map(|(j, key)| {
                let mut owner = j.owner.clone().unwrap_or_else(|| "None".into());
                if let Some(host) = &j.keepalive_host {
                    owner.push(' ');
                    owner.push_str(host);
                }
                vec![
                    Cell::from(key.clone()).styled(job_colour(j.job_id)),
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
            .zip(on_it.iter().map(|j| j.job_id))
            .collect();
        out.push_str(&render_compact_cells(&cells, colour));
    }
    out
}

fn summary_json<'a>(machine: &'a MachineDescription, jobs: &[JobDescription]) -> MachineJson<'a> {
    MachineJson::new(
        machine,
        in_use(machine, jobs),
        jobs_on(machine, jobs).count(),
    )
}

fn detail_json<'a>(machine: &'a MachineDescription, jobs: &'a [JobDescription]) -> MachineJson<'a> {
    let listed = jobs_on(machine, jobs)
        .enumerate()
        .map(|(i, j)| MachineJobView::new(job_key(i), j))
        .collect();
    summary_json(machine, jobs).with_jobs(listed)
}
