//! `spalloc ps` (Python: `spalloc-ps`): the table of live jobs, optionally
//! filtered by machine or owner, once or on every change.

use std::process::ExitCode;

use spalloc::{Client, Error, JobDescription, JobListing, JobState, Watch};

use crate::Ctx;
use crate::args::{PsArgs, Server};
use crate::exit::{CliError, CliResult};
use crate::render::json::{self, PsJob};
use crate::render::{Cell, Style, format_local_time, keepalive_text, render_table};
use crate::watch::{View, watch};
use crate::{print, settings};

/// Runs `spalloc ps`.
pub fn run(args: PsArgs, ctx: &Ctx) -> CliResult {
    let config = settings::load_config()?;
    let server = settings::server(&args.server_flags(), &config)?;
    let colour = ctx.term.out_colour;
    if args.watch {
        let json = args.json;
        return watch(&server, ctx.term, json, &mut PsView { args, colour });
    }
    let mut client = Client::connect(&server).map_err(|e| CliError::server(&server, e))?;
    let listing = client
        .job_list(args.all)
        .map_err(|e| CliError::server(&server, e))?;
    print(&render(&listing, &args, colour))?;
    if args.json && listing.hidden > 0 {
        eprintln!("{}", hidden_note(listing.hidden).trim_end());
    }
    // The process ends next: freeing a thousand jobs one by one first would
    // only add to the time the user waits.
    std::mem::forget(listing);
    Ok(ExitCode::SUCCESS)
}

/// The line that counts the jobs a v2 service listed but would not show.
fn hidden_note(hidden: usize) -> String {
    let (jobs, them) = if hidden == 1 {
        ("job", "it")
    } else {
        ("jobs", "them")
    };
    format!("({hidden} more {jobs} of other users: the server does not show {them} to you)\n")
}

struct PsView {
    args: PsArgs,
    colour: bool,
}

impl View for PsView {
    fn watched(&self) -> Watch {
        Watch::Jobs
    }

    fn draw(
        &mut self,
        client: &mut Client,
        frame: &mut Vec<u8>,
    ) -> Result<Result<(), CliError>, Error> {
        let listing = client.job_list(self.args.all)?;
        frame.extend_from_slice(render(&listing, &self.args, self.colour).as_bytes());
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

fn render(listing: &JobListing, args: &PsArgs, colour: bool) -> String {
    let jobs = &listing.jobs;
    if args.json {
        return json::line(
            &selected(jobs, args)
                .map(|j| PsJob::from(j).ended(args.all, j))
                .collect::<Vec<_>>(),
        );
    }
    let mut head = vec![
        "ID",
        "State",
        "Power",
        "Boards",
        "Machine",
        "Created at",
        "Keepalive",
        "Owner (Host)",
    ];
    let rows: Vec<Vec<Cell>> = selected(jobs, args)
        .map(|j| {
            let mut r = row(j);
            if args.all {
                // (Without --all, v1's number, as the Python tool shows it.)
                if j.state == JobState::Destroyed {
                    r[1] = Cell::from("destroyed").styled(Style::RED);
                }
                r.push(Cell::from(
                    j.finish_time
                        .and_then(format_local_time)
                        .unwrap_or_default(),
                ));
                r.push(Cell::from(match j.state {
                    JobState::Destroyed => j.reason.clone().unwrap_or_default(),
                    _ => String::new(),
                }));
            }
            r
        })
        .collect();
    if args.all {
        head.extend(["Finished at", "Reason"]);
    }
    let mut out = render_table(&head, &rows, colour);
    if listing.hidden > 0 {
        out.push_str(&hidden_note(listing.hidden));
    }
    out
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
