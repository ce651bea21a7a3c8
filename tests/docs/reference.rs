//! `docs/` against the real binary: a page for every command naming every
//! flag its `--help` lists and the same exit statuses, and a `--json`
//! schema for every JSON document that names exactly the fields the
//! command prints, with their types.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use spalloc::server::{Link, Machine, ServerConfig, VirtualServer};
use spalloc::{CreateJobOptions, JobRequest, JobState};

use crate::cli_syntax::{SUBCOMMANDS, flags_of};
use crate::cli_views::{client, ready_job, wait_state};
use crate::support::cli::Sandbox;

use super::read;

#[test]
fn every_command_has_a_page_naming_every_flag() {
    let sb = Sandbox::new();
    let index = read("docs/README.md");
    for sub in SUBCOMMANDS {
        let page = read(&format!("docs/{sub}.md"));
        assert!(
            page.starts_with(&format!("# `spalloc {sub}`\n")),
            "docs/{sub}.md"
        );
        for flag in flags_of(&sb, sub) {
            assert!(
                page.contains(&format!("`{flag}`")),
                "docs/{sub}.md does not name {flag}"
            );
        }
        assert!(
            index.contains(&format!("[`{sub}`]({sub}.md)")),
            "docs/README.md does not link {sub}.md"
        );
    }
    assert!(index.contains("[The guide](guide.md)"));
    let readme = read("README.md");
    assert!(readme.contains("](docs/README.md)"), "README links docs/");
    assert!(
        readme.contains("](docs/guide.md)"),
        "README links the guide"
    );
}

/// The statuses of a page's `## Exit status` table (`| 126, 127 |` is two).
fn documented_statuses(page: &str) -> BTreeSet<String> {
    let table = page.split("\n## Exit status\n").nth(1).unwrap_or_default();
    table
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .flat_map(|row| {
            let cell = row.split('|').nth(1).unwrap_or_default().trim();
            cell.split(", ").map(str::to_owned).collect::<Vec<_>>()
        })
        .collect()
}

/// The statuses `--help` lists.
fn help_statuses(help: &str) -> BTreeSet<String> {
    let list = help.split("\nexit status:\n").nth(1).unwrap_or_default();
    list.lines()
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

#[test]
fn pages_give_the_exit_statuses_the_help_gives() {
    let sb = Sandbox::new();
    for sub in SUBCOMMANDS {
        let help = sb.run(&[sub, "--help"]);
        help.expect_code(0);
        let documented = documented_statuses(&read(&format!("docs/{sub}.md")));
        assert!(documented.contains("0"), "docs/{sub}.md: {documented:?}");
        assert_eq!(
            documented,
            help_statuses(&help.stdout),
            "docs/{sub}.md against --help"
        );
    }
}

/// One documented field: its type, as written.
type Schema = BTreeMap<String, String>;

/// The `<!-- json: ID -->` tables of every page.
fn documented_schemas() -> BTreeMap<String, Schema> {
    let mut schemas = BTreeMap::new();
    for sub in SUBCOMMANDS {
        let page = read(&format!("docs/{sub}.md"));
        for part in page.split("<!-- json: ").skip(1) {
            let (id, rest) = part.split_once(" -->\n").expect("a marker line");
            let mut schema = Schema::new();
            for row in rest.lines().skip(2).take_while(|l| l.starts_with('|')) {
                let cells: Vec<&str> = row.split('|').map(str::trim).collect();
                let path = cells[1].trim_matches('`').to_owned();
                assert!(
                    schema.insert(path.clone(), cells[2].to_owned()).is_none(),
                    "{id}: {path} twice"
                );
            }
            assert!(!schema.is_empty(), "{id}: an empty table");
            assert!(
                schemas.insert(id.to_owned(), schema).is_none(),
                "{id} twice"
            );
        }
    }
    schemas
}

/// Whether `value` is of the documented type (`integer`, `string or
/// null`, `array (any JSON values)`, `any`, …).
fn of_type(value: &Value, ty: &str) -> bool {
    let base = ty.split(" (").next().unwrap_or(ty);
    base.split(" or ").any(|t| match t {
        "any" => true,
        "null" => value.is_null(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        other => panic!("unknown type {other:?} in {ty:?}"),
    })
}

/// Every path in `value` with the values found there, `[]` for each
/// element of an array and `*` for each key of an object documented so,
/// not looking inside what the schema leaves free.
fn walk<'v>(
    value: &'v Value,
    path: &str,
    schema: &Schema,
    found: &mut BTreeMap<String, Vec<&'v Value>>,
) {
    if !path.is_empty() && !path.ends_with("[]") {
        found.entry(path.to_owned()).or_default().push(value);
    }
    let free = schema
        .get(path)
        .is_some_and(|t| t == "any" || t.contains("(any"));
    if free {
        return;
    }
    let join = |key: &str| {
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    };
    match value {
        Value::Object(map) => {
            let wild = join("*");
            for (k, v) in map {
                let p = if schema.contains_key(&wild) {
                    wild.clone()
                } else {
                    join(k)
                };
                walk(v, &p, schema, found);
            }
        }
        Value::Array(items) => {
            for v in items {
                walk(v, &format!("{path}[]"), schema, found);
            }
        }
        _ => {}
    }
}

#[test]
fn json_schemas_name_exactly_the_fields_printed() {
    let server = VirtualServer::start(ServerConfig::instant().machines(vec![
            Machine::new("m", 2, 2)
                .tags(["default"])
                .dead_boards([(1, 1, 2)])
                .dead_links([(0, 0, 0, Link::North)]),
        ]))
    .expect("start the virtual server");
    let sb = Sandbox::new();
    sb.use_server(server.local_addr());
    let mut c = client(server.local_addr());
    let live = ready_job(&mut c, JobRequest::Boards(2), "tester@example.org").to_string();
    let dead = c
        .create_job(&JobRequest::AnyBoard, &CreateJobOptions::new("gone"))
        .expect("create");
    c.destroy_job(dead, Some("for the docs")).expect("destroy");
    wait_state(&mut c, dead, JobState::Destroyed);
    let dead = dead.to_string();

    let cases: [(&str, Vec<Vec<&str>>); 8] = [
        ("alloc", vec![vec!["alloc", "--json", "-q", "-c", "true"]]),
        (
            "job",
            vec![vec!["job", &live, "--json"], vec!["job", &dead, "--json"]],
        ),
        (
            "job-ethernet-ips",
            vec![vec!["job", &live, "--ethernet-ips", "--json"]],
        ),
        ("ps", vec![vec!["ps", "--json"]]),
        ("machines", vec![vec!["machine", "--json"]]),
        ("machine", vec![vec!["machine", "m", "--json"]]),
        (
            "where-is",
            vec![vec!["where-is", "--job-chip", &live, "0", "0", "--json"]],
        ),
        ("config", vec![vec!["config", "--json"]]),
    ];
    let schemas = documented_schemas();
    let tested: BTreeSet<&str> = cases.iter().map(|(id, _)| *id).collect();
    assert_eq!(
        schemas.keys().map(String::as_str).collect::<BTreeSet<_>>(),
        tested,
        "every JSON document is documented once, and tested"
    );
    for (id, runs) in &cases {
        let schema = &schemas[*id];
        let mut found = BTreeMap::new();
        let outputs: Vec<Value> = runs
            .iter()
            .map(|args| {
                let out = sb.run(args);
                out.expect_code(0);
                let line = out.stdout.lines().next().unwrap_or_default();
                serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", out.stdout))
            })
            .collect();
        for output in &outputs {
            walk(output, "", schema, &mut found);
        }
        let printed: BTreeSet<&String> = found.keys().collect();
        let named: BTreeSet<&String> = schema.keys().collect();
        assert_eq!(
            printed.difference(&named).collect::<Vec<_>>(),
            Vec::<&&String>::new(),
            "{id}: printed but not documented"
        );
        assert_eq!(
            named.difference(&printed).collect::<Vec<_>>(),
            Vec::<&&String>::new(),
            "{id}: documented but not printed (by these runs)"
        );
        for (path, values) in &found {
            for v in values {
                assert!(
                    of_type(v, &schema[path]),
                    "{id}: {path} is {v} but documented as {}",
                    schema[path]
                );
            }
        }
    }
    // The alloc run left nothing behind.
    let jobs = c.list_jobs().expect("list");
    assert_eq!(jobs.len(), 1, "{jobs:?}");
}
