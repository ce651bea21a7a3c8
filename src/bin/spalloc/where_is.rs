//! `spalloc where-is` (Python: `spalloc-where-is`): locate a board or chip
//! by logical coordinate, physical location, machine chip or job chip. All
//! four forms work (the Python tool's first three failed before sending);
//! a v2 server also finds a board by IP address (`--ip`).

use std::process::ExitCode;

use spalloc::{Chip, Client, InvalidArgument, Protocol, WhereIs, WhereIsQuery};

use crate::Ctx;
use crate::args::{Server, WhereIsArgs};
use crate::exit::{CliError, CliResult, code};
use crate::render::json::{self, WhereIsView};
use crate::render::{render_deflist, shown};
use crate::{print, settings};

/// Runs `spalloc where-is`.
pub fn run(args: WhereIsArgs, _ctx: &Ctx) -> CliResult {
    let (query, show_board_chip) = query(&args)?;
    let config = settings::load_config()?;
    let server = settings::server(&args.server_flags(), &config)?;
    if matches!(query, WhereIsQuery::Address { .. }) && server.protocol() != Protocol::V2 {
        return Err(settings::invalid(InvalidArgument::NotOnProtocol {
            option: "where-is by IP address",
            protocol: "v1",
        }));
    }
    let fail = |e| CliError::server(&server, e);
    let mut client = Client::connect(&server).map_err(fail)?;
    let found = match &query {
        // No machine named: each in turn.
        WhereIsQuery::Address { machine, address } if machine.is_empty() => {
            let mut found = None;
            for m in client.list_machines().map_err(fail)? {
                let q = WhereIsQuery::Address {
                    machine: m.name,
                    address: address.clone(),
                };
                found = client.where_is(&q).map_err(fail)?;
                if found.is_some() {
                    break;
                }
            }
            found
        }
        q => client.where_is(q).map_err(fail)?,
    };
    let Some(w) = found else {
        return Err(CliError::exit(
            code::INTERRUPTED_OR_NOTHING,
            "No boards at the specified location",
        ));
    };
    if args.json {
        print(&json::line(&WhereIsView::from(&w)))?;
    } else {
        print(&render(&w, show_board_chip))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn int(form: &str, v: &str) -> Result<i64, CliError> {
    v.parse()
        .map_err(|_| CliError::Usage(format!("argument {form}: invalid int value: '{v}'")))
}

/// The query, and whether to show the chip's position within its board.
fn query(args: &WhereIsArgs) -> Result<(WhereIsQuery, bool), CliError> {
    let forms = [
        (args.board, "--board/-b/--logical/-l", 4),
        (args.physical, "--physical/-p", 4),
        (args.chip, "--chip/-c", 3),
        (args.job_chip, "--job-chip/-j", 3),
        (args.ip, "--ip", 1),
    ];
    let chosen: Vec<_> = forms.iter().filter(|f| f.0).collect();
    let &&(_, form, arity) = match chosen.as_slice() {
        [one] => one,
        [] => {
            return Err(CliError::Usage(
                "one of the arguments --board/-b/--logical/-l --physical/-p --chip/-c --job-chip/-j is required"
                    .into(),
            ));
        }
        [first, second, ..] => {
            return Err(CliError::Usage(format!(
                "argument {}: not allowed with argument {}",
                second.1, first.1
            )));
        }
    };
    let v = &args.values;
    if v.len() != arity {
        let names = match form {
            "--board/-b/--logical/-l" => "MACHINE X Y Z",
            "--physical/-p" => "MACHINE CABINET FRAME BOARD",
            "--chip/-c" => "MACHINE X Y",
            "--ip" => "ADDRESS",
            _ => "JOB_ID X Y",
        };
        return Err(CliError::Usage(format!(
            "argument {form}: expected {arity} arguments: {names}"
        )));
    }
    if form == "--ip" {
        let address = &v[0];
        if address.parse::<std::net::Ipv4Addr>().is_err() {
            return Err(CliError::Usage(format!(
                "argument --ip: expected an IPv4 address, got '{}'",
                crate::render::visible(address)
            )));
        }
        // No machine: each is asked in turn.
        return Ok((
            WhereIsQuery::Address {
                machine: String::new(),
                address: address.clone(),
            },
            false,
        ));
    }
    let machine = v[0].clone();
    Ok(match form {
        "--board/-b/--logical/-l" => (
            WhereIsQuery::Board {
                machine,
                x: int(form, &v[1])?,
                y: int(form, &v[2])?,
                z: int(form, &v[3])?,
            },
            false,
        ),
        "--physical/-p" => (
            WhereIsQuery::Physical {
                machine,
                cabinet: int(form, &v[1])?,
                frame: int(form, &v[2])?,
                board: int(form, &v[3])?,
            },
            false,
        ),
        "--chip/-c" => (
            WhereIsQuery::Chip {
                machine,
                x: int(form, &v[1])?,
                y: int(form, &v[2])?,
            },
            true,
        ),
        _ => {
            let job_id = v[0].parse().map_err(|_| {
                CliError::Usage(format!("argument {form}: invalid int value: '{}'", v[0]))
            })?;
            (
                WhereIsQuery::JobChip {
                    job_id,
                    x: int(form, &v[1])?,
                    y: int(form, &v[2])?,
                },
                true,
            )
        }
    })
}

fn pair(c: &Chip) -> String {
    format!("({}, {})", c.x, c.y)
}

fn render(w: &WhereIs, show_board_chip: bool) -> String {
    let mut items = vec![
        ("Machine", shown(&w.machine)),
        (
            "Physical location",
            format!(
                "Cabinet {}, Frame {}, Board {}",
                w.physical.cabinet, w.physical.frame, w.physical.board
            ),
        ),
        ("Board coordinate", w.logical.to_string()),
        ("Machine chip coordinates", pair(&w.chip)),
    ];
    if show_board_chip {
        items.push(("Coordinates within board", pair(&w.board_chip)));
    }
    items.push((
        "Job using board",
        w.job_id.map_or_else(|| "None".into(), |id| id.to_string()),
    ));
    if let (Some(_), Some(chip)) = (w.job_id, &w.job_chip) {
        items.push(("Coordinates within job", pair(chip)));
    }
    render_deflist(&items)
}
