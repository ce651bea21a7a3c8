//! Hostile text: every string a server or a configuration file supplies
//! (owners, host names, machine names and tags, destroy reasons, server
//! exceptions, version strings, configuration values) carries escape
//! sequences that would retitle the terminal, change its colours and clear
//! it. Every table, map, info block, status line and error message must
//! show them as visible text; `--json` must carry them as JSON escapes.

use serde_json::{Value, json};

use super::record;
use crate::support::cli::{ConfigFile, Output, Sandbox};
use crate::support::{Call, Dialect, FakeServer, Reply};

/// Retitles the terminal, rings the bell, turns text red, uses a C1
/// control sequence introducer, and reverses the text direction.
const EVIL: &str = "evil\u{1b}]0;pwned\u{7}\u{1b}[31m\u{9b}2J\u{202e}end";
/// How it must appear.
const SHOWN: &str = "evil\\e]0;pwned\\x07\\e[31m\\u{009b}2J\\u{202e}end";

/// What the evil server does differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Answers everything, with evil strings wherever strings go.
    Answers,
    /// Every command but `version` raises an evil exception.
    Raises,
    /// Reports an evil (and incompatible) version.
    Version,
    /// Reports job 7 as destroyed, for an evil reason.
    Destroyed,
}

fn evil_server(mode: Mode) -> FakeServer {
    FakeServer::start(Dialect::Python, move |c: &Call| {
        match (mode, c.command.as_str()) {
            (Mode::Version, "version") => return Reply::Return(json!(format!("9.0.0{EVIL}"))),
            (_, "version") => return Reply::Return(json!("1!7.1.0")),
            (Mode::Raises, _) => return Reply::Exception(EVIL.to_owned()),
            _ => {}
        }
        let state = if mode == Mode::Destroyed || c.job_id() == Some(8) {
            json!({"state": 4, "power": null, "keepalive": null, "reason": EVIL,
                   "start_time": null, "keepalivehost": null})
        } else {
            json!({"state": 3, "power": true, "keepalive": 60.0, "reason": null,
                   "start_time": 1.0, "keepalivehost": EVIL})
        };
        Reply::Return(match c.command.as_str() {
            "create_job" => json!(7),
            "get_job_state" => state,
            "get_job_machine_info" => json!({"width": 8, "height": 8,
                "connections": [[[0, 0], EVIL], [[4, 8], EVIL]], "machine_name": EVIL,
                "boards": [[0, 0, 0], [0, 0, 1]]}),
            "list_jobs" => json!([{"job_id": 7, "owner": EVIL, "start_time": 1.0,
                "keepalive": 60.0, "state": 3, "power": true, "args": [1],
                "kwargs": {"machine": EVIL, "tags": null}, "allocated_machine_name": EVIL,
                "boards": [[0, 0, 0], [0, 0, 1]], "keepalivehost": EVIL}]),
            "list_machines" => json!([{"name": EVIL, "tags": [EVIL, "default"], "width": 1,
                "height": 1, "dead_boards": [], "dead_links": []}]),
            "where_is" => json!({"machine": EVIL, "logical": [0, 0, 1], "physical": [0, 0, 2],
                "chip": [8, 4], "board_chip": [0, 0], "job_id": 7, "job_chip": [8, 4]}),
            _ => Value::Null,
        })
    })
}

/// The problem with what a run printed, if any: a raw control character
/// (other than line ends), or no sign of the evil text at all.
fn problem(out: &Output, expect_shown: bool) -> Option<String> {
    let all = format!("{}{}", out.stdout, out.stderr);
    if let Some(c) = all
        .chars()
        .find(|&c| (c.is_control() && c != '\n') || ('\u{202a}'..='\u{202e}').contains(&c))
    {
        return Some(format!("raw {c:?} on the terminal"));
    }
    if expect_shown && !all.contains(SHOWN) {
        return Some("the text is not shown in its visible form".into());
    }
    if all.contains("panicked") {
        return Some("panicked".into());
    }
    None
}

struct Check<'a> {
    surface: &'a str,
    args: Vec<&'a str>,
    code: i32,
}

fn run_checks(sb: &Sandbox, checks: &[Check<'_>]) -> Vec<String> {
    let mut failures = Vec::new();
    for c in checks {
        let out = sb.run(&c.args);
        let mut p = problem(&out, true);
        if out.code != Some(c.code) {
            p = Some(format!("exit {:?}, expected {}", out.code, c.code));
        }
        record(
            "hostile-text",
            json!({"case": c.surface, "outcome": if p.is_none() { "pass" } else { "fail" },
                   "detail": {"command": format!("spalloc {}", c.args.join(" ").replace(EVIL, "EVIL")),
                              "exit": out.code}}),
        );
        if let Some(p) = p {
            failures.push(format!("{}: {p}\n{out:?}", c.surface));
        }
    }
    failures
}

#[test]
fn server_strings_in_tables_maps_and_info_blocks_are_made_visible() {
    let server = evil_server(Mode::Answers);
    let sb = Sandbox::new();
    sb.use_server(server.addr());
    let failures = run_checks(
        &sb,
        &[
            Check {
                surface: "ps table: owner, host and machine",
                args: vec!["ps", "--color", "never"],
                code: 0,
            },
            Check {
                surface: "job info block: owner, host, request, hostname, machine",
                args: vec!["job", "7", "--color", "never"],
                code: 0,
            },
            Check {
                surface: "job info block of a dead job: reason",
                args: vec!["job", "8"],
                code: 0,
            },
            Check {
                surface: "job --ethernet-ips: host names",
                args: vec!["job", "7", "--ethernet-ips"],
                code: 0,
            },
            Check {
                surface: "machine summary table: name and tags",
                args: vec!["machine"],
                code: 0,
            },
            Check {
                surface: "machine map and job table: name, tags, owner, host",
                args: vec!["machine", EVIL, "--detailed"],
                code: 0,
            },
            Check {
                surface: "where-is block: machine",
                args: vec!["where-is", "--job-chip", "7", "8", "4"],
                code: 0,
            },
            Check {
                surface: "alloc info block before the prompt: hostname, machine",
                args: vec!["alloc", "--color", "never"],
                code: 0,
            },
        ],
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Colour escapes of our own are still written, and only they.
#[test]
fn colour_survives_and_only_our_escapes_are_written() {
    let server = evil_server(Mode::Answers);
    let sb = Sandbox::new();
    sb.use_server(server.addr());
    let out = sb.run(&["ps", "--color", "always"]);
    out.expect_code(0);
    assert!(
        out.stdout.contains("\u{1b}[4;1mID\u{1b}[0m"),
        "{:?}",
        out.stdout
    );
    assert!(out.stdout.contains(SHOWN), "{:?}", out.stdout);
    assert!(!out.stdout.contains("\u{1b}]0;"), "{:?}", out.stdout);
    assert!(!out.stdout.contains('\u{7}'), "{:?}", out.stdout);
}

#[test]
fn server_strings_in_status_lines_and_errors_are_made_visible() {
    let mut failures = Vec::new();
    for (mode, checks) in [
        (
            Mode::Raises,
            vec![
                Check {
                    surface: "alloc: Error from server",
                    args: vec!["alloc", "-c", "true"],
                    code: 6,
                },
                Check {
                    surface: "ps: Error from server",
                    args: vec!["ps"],
                    code: 1,
                },
                Check {
                    surface: "job: Error from server",
                    args: vec!["job", "7"],
                    code: 1,
                },
                Check {
                    surface: "machine --watch: Error from server",
                    args: vec!["machine", "--watch"],
                    code: 1,
                },
            ],
        ),
        (
            Mode::Version,
            vec![
                Check {
                    surface: "alloc: Incompatible server version",
                    args: vec!["alloc", "-c", "true"],
                    code: 2,
                },
                Check {
                    surface: "ps: Incompatible server version",
                    args: vec!["ps"],
                    code: 2,
                },
            ],
        ),
        (
            Mode::Destroyed,
            vec![Check {
                surface: "alloc status line: Destroyed: REASON",
                args: vec!["alloc", "-c", "true"],
                code: 1,
            }],
        ),
    ] {
        let server = evil_server(mode);
        let sb = Sandbox::new();
        sb.use_server(server.addr());
        failures.extend(run_checks(&sb, &checks));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn configuration_values_and_errors_are_made_visible() {
    let sb = Sandbox::new();
    sb.write_config(ConfigFile::User, &format!("[spalloc]\nowner = {EVIL}\n"));
    let mut failures = run_checks(
        &sb,
        &[Check {
            surface: "spalloc config table: a value from a file",
            args: vec!["config"],
            code: 0,
        }],
    );
    sb.write_config(ConfigFile::User, &format!("[spalloc]\nport = {EVIL}\n"));
    failures.extend(run_checks(
        &sb,
        &[
            Check {
                surface: "config error quoting a value",
                args: vec!["ps"],
                code: 2,
            },
            Check {
                surface: "config error in spalloc config",
                args: vec!["config"],
                code: 2,
            },
        ],
    ));
    sb.write_config(ConfigFile::User, &format!("[spalloc]\n{EVIL}\n"));
    failures.extend(run_checks(
        &sb,
        &[Check {
            surface: "config error quoting a line",
            args: vec!["ps"],
            code: 2,
        }],
    ));
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// JSON escapes control characters itself: `--json` output carries the
/// text unchanged, as JSON strings.
#[test]
fn json_output_carries_the_text_unchanged() {
    let server = evil_server(Mode::Answers);
    let sb = Sandbox::new();
    sb.use_server(server.addr());
    let mut failures = Vec::new();
    for args in [
        &["ps", "--json"][..],
        &["job", "7", "--json"],
        &["machine", "--json"],
        &["where-is", "--job-chip", "7", "8", "4", "--json"],
    ] {
        let out = sb.run(args);
        let parsed: Result<Value, _> = serde_json::from_str(&out.stdout);
        let ok = out.code == Some(0)
            && !out.stdout.contains('\u{1b}')
            && out.stdout.contains("\\u001b")
            && parsed.is_ok_and(|v| holds(&v, EVIL));
        record(
            "hostile-text",
            json!({"case": format!("spalloc {} (JSON keeps the text, escaped)", args.join(" ")),
                   "outcome": if ok { "pass" } else { "fail" }, "detail": {"exit": out.code}}),
        );
        if !ok {
            failures.push(format!("{args:?}: {out:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Whether `text` appears as a string anywhere in `v`.
fn holds(v: &Value, text: &str) -> bool {
    match v {
        Value::String(s) => s == text,
        Value::Array(a) => a.iter().any(|x| holds(x, text)),
        Value::Object(m) => m.values().any(|x| holds(x, text)),
        _ => false,
    }
}
