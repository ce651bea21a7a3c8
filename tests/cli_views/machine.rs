//! `spalloc machine`: the summary table, one machine's map with its jobs
//! (compact and `--detailed`), dead boards and links with and without
//! colour, errors and JSON.

use serde_json::{Value, json};
use spalloc::server::{Link, Machine, ServerConfig};
use spalloc::{Board, JobRequest};

use super::{
    client, job_15_listing, ready_job, same, sample_machines, sample_server, sandbox, server_with,
};
use crate::support::{Dialect, FakeServer, Reply};

/// The map of `big` with job 15 as `A` and the dead link (1, 1, 0) N.
const BIG_MAP: &str = " ___     ___     ___
/ . \\___/ A \\___/ A \\___     ___
\\___/ . \\___/ A \\___/ A \\___/ . \\
/ . \\___/ A \\___/ A \\___/ . \\___/
\\___/ . \\___/ A \\___/ A \\___/ . \\___
    \\___/ . \\XXX/ A \\___/ A \\___/ . \\
    / . \\___/ A \\___/ A \\___/ . \\___/
    \\___/ . \\___/ . \\___/ . \\___/ . \\___
        \\___/ . \\___/ . \\___/   \\___/ . \\
        / . \\___/ . \\___/ . \\   / . \\___/
        \\___/   \\___/   \\___/   \\___/
";

const BIG_HEAD: &str = "  Name: big\n  Tags: big\nIn-use: 12 of 34\n  Jobs: 1\n\n";

#[test]
fn summary_sample() {
    let fake = sample_server();
    let out = sandbox(fake.addr()).run(&["machine"]);
    out.expect_code(0);
    same(
        "Name  Num boards  In-use  Jobs  Tags\n\
         m             12       0     0  default\n\
         big           34      12     1  big\n\
         one            1       0     0  one\n",
        &out.stdout,
    );
    same("", &out.stderr);
}

#[test]
fn big_sample_compact_and_detailed() {
    let fake = sample_server();
    let sb = sandbox(fake.addr());
    let out = sb.run(&["machine", "big"]);
    out.expect_code(0);
    same(&format!("{BIG_HEAD}{BIG_MAP}\nA:15\n"), &out.stdout);

    let out = sb.run(&["machine", "big", "-d"]);
    out.expect_code(0);
    same(
        &format!(
            "{BIG_HEAD}{BIG_MAP}\n\
             Key  Job ID  Num boards  Owner (Host)\n\
             A        15          12  oracle@example.com 127.0.0.1\n"
        ),
        &out.stdout,
    );
    // The options may come first, long or short.
    same(
        &out.stdout,
        &sb.run(&["machine", "--detailed", "big"]).stdout,
    );
}

#[test]
fn big_sample_in_colour() {
    let fake = sample_server();
    let sb = sandbox(fake.addr());
    let out = sb.run(&["machine", "big", "--color", "always"]);
    out.expect_code(0);
    let text = &out.stdout;
    // Python's colours exactly: the dead link red with the normal edge, the
    // job's key in its colour (15 mod 15 = 0: green), live boards dim.
    assert!(!text.contains("XXX"), "{text:?}");
    assert_eq!(text.matches("\x1b[31m").count(), 1, "{text:?}");
    assert!(text.contains("\x1b[31m___\x1b[0m"), "{text:?}");
    assert!(text.contains("\x1b[32m A \x1b[0m"), "{text:?}");
    assert!(text.contains("\x1b[2m . \x1b[0m"), "{text:?}");
    assert!(text.ends_with("\n\x1b[32mA\x1b[0m:15\n"), "{text:?}");
    // Without the escapes it is the uncoloured map, apart from the link.
    let stripped = strip_escapes(text);
    same(
        &format!("{BIG_HEAD}{BIG_MAP}\nA:15\n").replace("XXX", "___"),
        &stripped,
    );

    let out = sb.run(&["machine", "big", "-d", "--color", "always"]);
    out.expect_code(0);
    assert!(
        out.stdout.ends_with(
            "\x1b[4;1mKey\x1b[0m  \x1b[4;1mJob ID\x1b[0m  \x1b[4;1mNum boards\x1b[0m  \
             \x1b[4;1mOwner (Host)\x1b[0m\n\
             \x1b[32mA\x1b[0m        15          12  oracle@example.com 127.0.0.1\n"
        ),
        "{:?}",
        out.stdout
    );
}

/// Removes `ESC [ … m` sequences.
fn strip_escapes(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for d in chars.by_ref() {
                if d == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn one_board_machine_without_jobs() {
    let fake = sample_server();
    let sb = sandbox(fake.addr());
    let out = sb.run(&["machine", "one"]);
    out.expect_code(0);
    // The map, an empty line, then the empty cell block.
    same(
        "  Name: one\n  Tags: one\nIn-use: 0 of 1\n  Jobs: 0\n\n ___\n/ . \\\n\\___/\n\n\n",
        &out.stdout,
    );
    let out = sb.run(&["machine", "one", "-d"]);
    out.expect_code(0);
    same(
        "  Name: one\n  Tags: one\nIn-use: 0 of 1\n  Jobs: 0\n\n ___\n/ . \\\n\\___/\n\n\
         Key  Job ID  Num boards  Owner (Host)\n",
        &out.stdout,
    );
}

#[test]
fn unknown_machine_exits_6() {
    let fake = sample_server();
    let out = sandbox(fake.addr()).run(&["machine", "nosuch"]);
    out.expect_code(6);
    same("", &out.stdout);
    same("No machine 'nosuch' was found\n", &out.stderr);
    let out = sandbox(fake.addr()).run(&["machine", "nosuch", "--json"]);
    out.expect_code(6);
    same("", &out.stdout);
    same("No machine 'nosuch' was found\n", &out.stderr);
}

#[test]
fn detailed_needs_a_machine() {
    let fake = sample_server();
    let out = sandbox(fake.addr()).run(&["machine", "-d"]);
    out.expect_code(2);
    same("", &out.stdout);
    let mut lines = out.stderr.lines();
    assert_eq!(
        lines.next(),
        Some("spalloc machine: error: --detailed only works when a specific machine is specified")
    );
    assert!(
        lines
            .next()
            .is_some_and(|l| l.starts_with("usage: spalloc machine")),
        "{}",
        out.stderr
    );
    assert_eq!(
        fake.connections_made(),
        0,
        "a usage error contacts no server"
    );
}

/// Jobs are keyed A…Z, AA, AB… in list order; compact cells wrap before
/// column 80 whatever the terminal.
#[test]
fn many_jobs_get_spreadsheet_keys_and_wrap() {
    let jobs: Vec<Value> = (0..28)
        .map(|i| {
            let mut j = job_15_listing();
            j["job_id"] = json!(100 + i);
            j["boards"] = json!([[i % 4, (i / 4) % 3, i / 12]]);
            j
        })
        .collect();
    let fake = FakeServer::start(Dialect::Python, move |c| {
        Reply::Return(match c.command.as_str() {
            "version" => json!("1.1.0"),
            "list_machines" => sample_machines(),
            "list_jobs" => Value::Array(jobs.clone()),
            _ => Value::Null,
        })
    });
    let mut sb = sandbox(fake.addr());
    sb.env("COLUMNS", "200");
    let out = sb.run(&["machine", "big"]);
    out.expect_code(0);
    assert!(
        out.stdout.ends_with(
            "\n\nA:100   B:101   C:102   D:103   E:104   F:105   G:106   H:107   I:108   J:109\n\
             K:110   L:111   M:112   N:113   O:114   P:115   Q:116   R:117   S:118   T:119\n\
             U:120   V:121   W:122   X:123   Y:124   Z:125   AA:126  AB:127\n"
        ),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("In-use: 28 of 34\n  Jobs: 28\n"),
        "{}",
        out.stdout
    );
    // A two-letter key is centred the way Python's str.center does it.
    assert!(out.stdout.contains("/ AA\\"), "{}", out.stdout);
    let out = sb.run(&["machine", "big", "-d"]);
    out.expect_code(0);
    assert!(
        out.stdout.ends_with(
            "Z       125           1  oracle@example.com 127.0.0.1\n\
             AA      126           1  oracle@example.com 127.0.0.1\n\
             AB      127           1  oracle@example.com 127.0.0.1\n"
        ),
        "{}",
        out.stdout
    );
}

/// The same views against the virtual server, with real allocations.
#[test]
fn live_machine_with_jobs_dead_board_and_dead_link() {
    let server = server_with(ServerConfig::instant().machines(vec![
        Machine::new("m", 2, 2)
            .tags(["default", "extra"])
            .dead_boards([(1, 1, 2)])
            .dead_links([(1, 1, 0, Link::North)]),
    ]));
    let mut c = client(server.local_addr());
    let a = ready_job(&mut c, JobRequest::AnyBoard, "ann");
    let b = ready_job(&mut c, JobRequest::Board(Board::new(1, 0, 1)), "bob");
    let sb = sandbox(server.local_addr());

    let out = sb.run(&["machine"]);
    out.expect_code(0);
    same(
        "Name  Num boards  In-use  Jobs  Tags\n\
         m             11       2     2  default, extra\n",
        &out.stdout,
    );

    let out = sb.run(&["machine", "m"]);
    out.expect_code(0);
    same(
        &format!(
            "  Name: m\n  Tags: default, extra\nIn-use: 2 of 11\n  Jobs: 2\n\n\
             \x20___\n\
             / . \\___     ___\n\
             \\___/ . \\XXX/ . \\\n\
             / . \\___/ . \\___/\n\
             \\___/ . \\___/ . \\___\n\
             \x20   \\___/ . \\___/ B \\\n\
             \x20   / A \\___/ . \\___/\n\
             \x20   \\___/   \\___/\n\
             \nA:{a}  B:{b}\n"
        ),
        &out.stdout,
    );

    let out = sb.run(&["machine", "m", "--detailed"]);
    out.expect_code(0);
    assert!(
        out.stdout.ends_with(&format!(
            "\n\nKey  Job ID  Num boards  Owner (Host)\n\
             A    {a:>6}           1  ann 127.0.0.1\n\
             B    {b:>6}           1  bob 127.0.0.1\n"
        )),
        "{}",
        out.stdout
    );
}

#[test]
fn json_summary_and_detail() {
    let fake = sample_server();
    let sb = sandbox(fake.addr());
    let out = sb.run(&["machine", "--json"]);
    out.expect_code(0);
    assert_eq!(out.stdout.lines().count(), 1);
    let v: Value = serde_json::from_str(&out.stdout).expect("JSON");
    let fields = [
        "name",
        "tags",
        "width_triads",
        "height_triads",
        "num_boards",
        "in_use",
        "num_jobs",
        "dead_boards",
        "dead_links",
    ];
    let machines = v.as_array().expect("an array");
    assert_eq!(machines.len(), 3);
    for m in machines {
        let keys: Vec<&str> = m
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, fields);
    }
    assert_eq!(
        machines[1],
        json!({"name": "big", "tags": ["big"], "width_triads": 4, "height_triads": 3,
            "num_boards": 34, "in_use": 12, "num_jobs": 1,
            "dead_boards": [{"x": 2, "y": 0, "z": 1}, {"x": 3, "y": 2, "z": 2}],
            "dead_links": [{"x": 1, "y": 1, "z": 0, "link": 2}]})
    );
    assert_eq!(machines[2]["num_boards"], json!(1));

    let out = sb.run(&["machine", "big", "--json"]);
    out.expect_code(0);
    let v: Value = serde_json::from_str(&out.stdout).expect("JSON");
    let keys: Vec<&str> = v
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    let mut with_jobs = fields.to_vec();
    with_jobs.push("jobs");
    assert_eq!(keys, with_jobs);
    let boards: Vec<Value> = (1..3)
        .flat_map(|x| {
            (1..3).flat_map(move |y| (0..3).map(move |z| json!({"x": x, "y": y, "z": z})))
        })
        .collect();
    assert_eq!(
        v["jobs"],
        json!([{"key": "A", "id": 15, "num_boards": 12, "owner": "oracle@example.com",
            "keepalive_host": "127.0.0.1", "boards": boards}])
    );
    let out = sb.run(&["machine", "one", "--json"]);
    let v: Value = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(v["jobs"], json!([]));
}
