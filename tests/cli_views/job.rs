//! `spalloc job`: the info layout (live, destroyed, unknown), finding the
//! owner's job, powering, Ethernet addresses, destroying, usage errors and
//! JSON.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use spalloc::server::{Machine, ServerConfig};
use spalloc::{Board, CreateJobOptions, JobRequest, JobState};

use super::{
    SAMPLE_TZ, client, raw_create, ready_job, same, sample_server, sandbox, server_m, server_with,
    wait_state,
};
use crate::support::cli::{ConfigFile, Sandbox};
use crate::support::{Dialect, FakeServer, PATIENCE, Reply};

#[test]
fn info_sample_is_byte_exact() {
    let fake = sample_server();
    let mut sb = sandbox(fake.addr());
    sb.env("TZ", SAMPLE_TZ);
    let out = sb.run(&["job", "15"]);
    out.expect_code(0);
    same(
        "     Job ID: 15
      Owner: oracle@example.com
      State: ready
 Start time: 23/11/2026 20:21:56
  Keepalive: None
 Owner host: 127.0.0.1
    Request: Job(2, 2,
                 machine='big',
                 max_dead_boards=0,
                 max_dead_links=None,
                 min_ratio=0.333,
                 require_torus=False,
                 tags=None)
 Allocation:  ___     ___
             / . \\___/ . \\___
             \\___/ . \\___/ . \\
             / . \\___/ . \\___/
             \\___/ . \\___/ . \\___
                 \\___/ . \\___/ . \\
                 / . \\___/ . \\___/
                 \\___/   \\___/
   Hostname: 127.101.0.97
      Width: 28
     Height: 28
 Num boards: 12
Board power: on
 Running on: big
",
        &out.stdout,
    );
    same("", &out.stderr);
    // `-i/--info` is the same action, spelled out.
    same(&out.stdout, &sb.run(&["job", "-i", "15"]).stdout);
    same(&out.stdout, &sb.run(&["job", "15", "--info"]).stdout);
}

#[test]
fn info_in_colour_dims_the_map_inside() {
    let fake = sample_server();
    let out = sandbox(fake.addr()).run(&["job", "15", "--color", "always"]);
    out.expect_code(0);
    // Labels and inner edges dim, outer edges bright; nothing else coloured.
    assert!(
        out.stdout
            .contains(" Allocation:  \x1b[1m___\x1b[0m     \x1b[1m___\x1b[0m\n"),
        "{:?}",
        out.stdout
    );
    assert!(out.stdout.contains("\x1b[2m . \x1b[0m"), "{:?}", out.stdout);
    assert!(
        out.stdout.starts_with("     Job ID: 15\n"),
        "{:?}",
        out.stdout
    );
}

#[test]
fn info_of_destroyed_and_unknown_jobs() {
    let server = server_m();
    let mut c = client(server.local_addr());
    let id = ready_job(&mut c, JobRequest::AnyBoard, "ann");
    c.destroy_job(id, Some("finished with it"))
        .expect("destroy");
    let sb = sandbox(server.local_addr());
    let out = sb.run(&["job", &id.to_string()]);
    out.expect_code(0);
    same(
        &format!("Job ID: {id}\n State: destroyed\nReason: finished with it\n"),
        &out.stdout,
    );
    let out = sb.run(&["job", "9999"]);
    out.expect_code(0);
    same("Job ID: 9999\n State: unknown\n", &out.stdout);

    let out = sb.run(&["job", "9999", "--json"]);
    out.expect_code(0);
    let v: Value = serde_json::from_str(&out.stdout).expect("JSON");
    let obj = v.as_object().expect("object");
    assert_eq!(obj.len(), 18);
    for (k, val) in obj {
        match k.as_str() {
            "id" => assert_eq!(val, &json!(9999)),
            "state" => assert_eq!(val, &json!("unknown")),
            _ => assert!(val.is_null(), "{k}: {val}"),
        }
    }
    let out = sb.run(&["job", &id.to_string(), "--json"]);
    let v: Value = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(v["state"], json!("destroyed"));
    assert_eq!(v["reason"], json!("finished with it"));
    assert_eq!(v["owner"], Value::Null);
}

/// The lines of `Request` in the info of a job made with these raw
/// arguments.
fn request_lines(args: Value, kwargs: Value) -> String {
    let server = server_m();
    let mut c = client(server.local_addr());
    let id = raw_create(&mut c, args, kwargs);
    let out = sandbox(server.local_addr()).run(&["job", &id.to_string()]);
    out.expect_code(0);
    let start = out.stdout.find("Request: ").expect("a Request line");
    let end = out.stdout[start..]
        .find(")\n")
        .map(|e| start + e + 2)
        .expect("the end of the Request");
    let line_start = out.stdout[..start].rfind('\n').map_or(0, |i| i + 1);
    out.stdout[line_start..end].to_owned()
}

#[test]
fn request_is_printed_as_python_repr() {
    // A raw create with one argument and one keyword.
    same(
        "    Request: Job(1,\n                 machine='m')\n",
        &request_lines(json!([1]), json!({"owner": "o", "machine": "m"})),
    );
    // As the Python alloc sends it: every keyword, sorted, in repr.
    same(
        "    Request: Job(machine=None,\n\
         \x20                max_dead_boards=0,\n\
         \x20                max_dead_links=None,\n\
         \x20                min_ratio=0.333,\n\
         \x20                require_torus=False,\n\
         \x20                tags=['default'])\n",
        &request_lines(
            json!([]),
            json!({"owner": "o", "keepalive": 60.0, "machine": null, "tags": ["default"],
                "min_ratio": 0.333, "max_dead_boards": 0, "max_dead_links": null,
                "require_torus": false}),
        ),
    );
    same(
        "    Request: Job()\n",
        &request_lines(json!([]), json!({"owner": "o"})),
    );
}

#[test]
fn keepalive_line_keeps_the_wire_type() {
    let server = server_m();
    let mut c = client(server.local_addr());
    let int = raw_create(&mut c, json!([]), json!({"owner": "o", "keepalive": 5}));
    let float = raw_create(&mut c, json!([]), json!({"owner": "o", "keepalive": 60.0}));
    let none = raw_create(&mut c, json!([]), json!({"owner": "o", "keepalive": null}));
    let sb = sandbox(server.local_addr());
    // The server keeps float(keepalive), as the real one does.
    for (id, text) in [(int, "5.0"), (float, "60.0"), (none, "None")] {
        let out = sb.run(&["job", &id.to_string()]);
        out.expect_code(0);
        assert!(
            out.stdout.contains(&format!("\n  Keepalive: {text}\n")),
            "{}",
            out.stdout
        );
    }
}

#[test]
fn owner_discovery() {
    let server = server_with(
        ServerConfig::instant().machines(vec![Machine::new("m", 2, 2).tags(["default"])]),
    );
    let mut c = client(server.local_addr());
    let solo = ready_job(&mut c, JobRequest::AnyBoard, "solo");
    let d1 = ready_job(&mut c, JobRequest::AnyBoard, "duo");
    let d2 = ready_job(&mut c, JobRequest::AnyBoard, "duo");
    let mine = ready_job(&mut c, JobRequest::AnyBoard, "tester@example.org");
    let sb = sandbox(server.local_addr());

    let out = sb.run(&["job", "-o", "solo"]);
    out.expect_code(0);
    assert!(
        out.stdout
            .starts_with(&format!("     Job ID: {solo}\n      Owner: solo\n")),
        "{}",
        out.stdout
    );
    // The config's owner when there is no -o.
    let out = sb.run(&["job"]);
    out.expect_code(0);
    assert!(
        out.stdout.starts_with(&format!("     Job ID: {mine}\n")),
        "{}",
        out.stdout
    );

    let out = sb.run(&["job", "--owner", "nobody"]);
    out.expect_code(3);
    same("", &out.stdout);
    same("Owner nobody has no live jobs\n", &out.stderr);

    let out = sb.run(&["job", "-o", "duo"]);
    out.expect_code(3);
    same("", &out.stdout);
    same(
        &format!("Ambiguous: duo has 2 live jobs: {d1}, {d2}\n"),
        &out.stderr,
    );

    // A destroyed job no longer counts.
    c.destroy_job(d1, None).expect("destroy");
    let out = sb.run(&["job", "-o", "duo", "--json"]);
    out.expect_code(0);
    let v: Value = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(v["id"], json!(d2));

    // No id and no owner anywhere: a usage error.
    let bare = Sandbox::new();
    bare.write_config(
        ConfigFile::User,
        &format!(
            "[spalloc]\nhostname = 127.0.0.1\nport = {}\n",
            server.local_addr().port()
        ),
    );
    let out = bare.run(&["job"]);
    out.expect_code(2);
    assert!(
        out.stderr.starts_with(
            "spalloc job: error: job ID (or --owner) not specified\nusage: spalloc job"
        ),
        "{}",
        out.stderr
    );
}

#[test]
fn power_actions_block_until_ready() {
    let delay = Duration::from_millis(300);
    let server = server_with(
        ServerConfig::instant()
            .machines(vec![Machine::new("m", 1, 1).tags(["default"])])
            .power_delay(delay),
    );
    let mut c = client(server.local_addr());
    let id = ready_job(&mut c, JobRequest::AnyBoard, "ann");
    let sb = sandbox(server.local_addr());
    let ids = id.to_string();
    for (args, power) in [
        (vec!["job", &ids, "--power-off"], false),
        (vec!["job", &ids, "--power-on"], true),
        (vec!["job", "--reset", &ids], true),
        (vec!["job", &ids, "-r"], true),
        (vec!["job", "-p", &ids], true),
    ] {
        let started = Instant::now();
        let out = sb.run(&args);
        out.expect_code(0);
        same("", &out.stdout);
        same("", &out.stderr);
        assert!(
            started.elapsed() >= delay,
            "{args:?} returned before the power change"
        );
        let state = c.get_job_state(id).expect("get_job_state");
        assert_eq!(state.state, JobState::Ready, "{args:?}");
        assert_eq!(state.power, Some(power), "{args:?}");
    }

    // A destroyed or unknown job cannot be powered: exit 8.
    c.destroy_job(id, None).expect("destroy");
    let out = sb.run(&["job", &ids, "--power-on"]);
    out.expect_code(8);
    same(
        &format!("Error: Cannot power on job {id} in state destroyed\n"),
        &out.stderr,
    );
    let out = sb.run(&["job", &ids, "--power-off"]);
    out.expect_code(8);
    same(
        &format!("Error: Cannot power off job {id} in state destroyed\n"),
        &out.stderr,
    );
    let out = sb.run(&["job", "9999", "-p"]);
    out.expect_code(8);
    same(
        "Error: Cannot power on job 9999 in state unknown\n",
        &out.stderr,
    );
    // A queued job neither.
    let mut opts = CreateJobOptions::new("q");
    opts.machine = Some("m".into());
    let big = c
        .create_job(
            &JobRequest::Triads {
                width: 1,
                height: 1,
            },
            &opts,
        )
        .expect("create");
    wait_state(&mut c, big, JobState::Ready);
    let queued = c.create_job(&JobRequest::AnyBoard, &opts).expect("create");
    wait_state(&mut c, queued, JobState::Queued);
    let out = sb.run(&["job", &queued.to_string(), "--power-on"]);
    out.expect_code(8);
    same(
        &format!("Error: Cannot power on job {queued} in state queued\n"),
        &out.stderr,
    );
}

#[test]
fn sigint_while_waiting_on_power_exits_7() {
    // A job that stays in state power forever.
    let fake = FakeServer::start(Dialect::Python, |c| {
        Reply::Return(match c.command.as_str() {
            "version" => json!("1.1.0"),
            "get_job_state" => json!({"state": 2, "power": true, "keepalive": 60.0,
                "reason": null, "start_time": 1.0, "keepalivehost": "127.0.0.1"}),
            _ => Value::Null,
        })
    });
    let sb = sandbox(fake.addr());
    let running = sb.spawn(&["job", "4", "--power-on"]);
    assert!(
        fake.wait_for_count("get_job_state", 1),
        "never asked for the state"
    );
    assert!(fake.wait_for_count("notify_job", 1));
    running.signal(2);
    let out = running.finish(PATIENCE);
    out.expect_code(7);
    same("", &out.stdout);
    same("", &out.stderr);
    assert_eq!(fake.calls_named("power_on_job_boards")[0].args, [json!(4)]);
}

#[test]
fn ethernet_ips_csv_and_exit_9() {
    let server = server_with(
        ServerConfig::instant().machines(vec![Machine::new("m", 1, 1).tags(["default"])]),
    );
    let mut c = client(server.local_addr());
    let id = ready_job(
        &mut c,
        JobRequest::Triads {
            width: 1,
            height: 1,
        },
        "ann",
    );
    let info = c
        .get_job_machine_info(id)
        .expect("info")
        .expect("allocated");
    let mut expected = String::from("x,y,hostname\n");
    let mut conns = info.connections.clone();
    conns.sort_by_key(|k| (k.chip.x, k.chip.y));
    for k in &conns {
        expected.push_str(&format!("{},{},{}\n", k.chip.x, k.chip.y, k.hostname));
    }
    assert_eq!(conns.len(), 3);
    let sb = sandbox(server.local_addr());
    let out = sb.run(&["job", &id.to_string(), "--ethernet-ips"]);
    out.expect_code(0);
    same(&expected, &out.stdout);
    let out = sb.run(&["job", "-e", &id.to_string(), "--json"]);
    out.expect_code(0);
    let v: Value = serde_json::from_str(&out.stdout).expect("JSON");
    let want: Vec<Value> = conns
        .iter()
        .map(|k| json!({"x": k.chip.x, "y": k.chip.y, "hostname": k.hostname}))
        .collect();
    assert_eq!(v, Value::Array(want));

    // Queued, destroyed and unknown jobs have none: exit 9.
    let queued = c
        .create_job(&JobRequest::AnyBoard, &CreateJobOptions::new("q"))
        .expect("create");
    wait_state(&mut c, queued, JobState::Queued);
    for job in [queued, 9999] {
        let out = sb.run(&["job", &job.to_string(), "-e"]);
        out.expect_code(9);
        same("", &out.stdout);
        same(
            &format!("Job {job} is queued or does not exist\n"),
            &out.stderr,
        );
    }
}

#[test]
fn ethernet_ips_sorted_numerically() {
    let fake = sample_server();
    let out = sandbox(fake.addr()).run(&["job", "15", "-e"]);
    out.expect_code(0);
    same(
        "x,y,hostname\n0,0,127.101.0.97\n0,12,127.101.0.106\n4,8,127.101.0.103\n\
         8,4,127.101.0.104\n12,0,127.101.0.105\n12,12,127.101.0.100\n16,8,127.101.0.107\n\
         16,20,127.101.0.102\n20,4,127.101.0.108\n20,16,127.101.0.110\n24,12,127.101.0.109\n\
         24,24,127.101.0.111\n",
        &out.stdout,
    );
}

#[test]
fn destroy_reasons_and_the_id_as_value() {
    let server = server_m();
    let mut c = client(server.local_addr());
    let sb = sandbox(server.local_addr());
    let reason = |c: &mut spalloc::ProtocolClient, id: u64| {
        let s = c.get_job_state(id).expect("state");
        assert_eq!(s.state, JobState::Destroyed);
        s.reason
    };

    // Default reason names the owner from the config...
    let a = ready_job(&mut c, JobRequest::AnyBoard, "tester@example.org");
    let out = sb.run(&["job", &a.to_string(), "--destroy"]);
    out.expect_code(0);
    same("", &out.stdout);
    same("", &out.stderr);
    assert_eq!(
        reason(&mut c, a).as_deref(),
        Some("Destroyed by tester@example.org")
    );
    // ...or from -o.
    let b = ready_job(&mut c, JobRequest::AnyBoard, "x");
    sb.run(&["job", "-D", &b.to_string(), "-o", "other"])
        .expect_code(0);
    assert_eq!(reason(&mut c, b).as_deref(), Some("Destroyed by other"));
    // An explicit reason, after the id.
    let d = ready_job(&mut c, JobRequest::AnyBoard, "x");
    sb.run(&["job", &d.to_string(), "--destroy", "finished with it"])
        .expect_code(0);
    assert_eq!(reason(&mut c, d).as_deref(), Some("finished with it"));
    // An empty reason is no reason, as in the Python tool.
    let g = ready_job(&mut c, JobRequest::AnyBoard, "x");
    sb.run(&["job", &g.to_string(), "--destroy", ""])
        .expect_code(0);
    assert_eq!(
        reason(&mut c, g).as_deref(),
        Some("Destroyed by tester@example.org")
    );
    // `job ID --destroy 42`: 42 is the reason.
    let e = ready_job(&mut c, JobRequest::AnyBoard, "x");
    sb.run(&["job", &e.to_string(), "--destroy", "42"])
        .expect_code(0);
    assert_eq!(reason(&mut c, e).as_deref(), Some("42"));

    // `job --destroy ID` with no other id: that job, not the owner's only one.
    let mine = ready_job(&mut c, JobRequest::AnyBoard, "tester@example.org");
    let other = ready_job(&mut c, JobRequest::AnyBoard, "someone");
    sb.run(&["job", "--destroy", &other.to_string()])
        .expect_code(0);
    assert_eq!(
        reason(&mut c, other).as_deref(),
        Some("Destroyed by tester@example.org")
    );
    assert_eq!(c.get_job_state(mine).expect("state").state, JobState::Ready);
    // The owner's only job when no id is given at all.
    sb.run(&["job", "--destroy"]).expect_code(0);
    assert_eq!(
        reason(&mut c, mine).as_deref(),
        Some("Destroyed by tester@example.org")
    );

    // An unknown id is accepted silently.
    let out = sb.run(&["job", "9999", "--destroy"]);
    out.expect_code(0);
    same("", &out.stderr);

    // With no owner known, the reason is empty.
    let bare = Sandbox::new();
    bare.write_config(
        ConfigFile::User,
        &format!(
            "[spalloc]\nhostname = 127.0.0.1\nport = {}\n",
            server.local_addr().port()
        ),
    );
    let f = ready_job(&mut c, JobRequest::AnyBoard, "x");
    bare.run(&["job", &f.to_string(), "--destroy"])
        .expect_code(0);
    assert_eq!(reason(&mut c, f), None);
}

#[test]
fn two_actions_are_a_usage_error() {
    let fake = sample_server();
    let sb = sandbox(fake.addr());
    for args in [
        ["job", "15", "--info", "--destroy"],
        ["job", "15", "-e", "-p"],
        ["job", "15", "--power-off", "--watch"],
        ["job", "15", "--reset", "--power-off"],
    ] {
        let out = sb.run(&args);
        out.expect_code(2);
        same("", &out.stdout);
        let first = out.stderr.lines().next().unwrap_or_default();
        assert!(
            first.starts_with("spalloc job: error: argument ")
                && first.contains("not allowed with"),
            "{args:?}: {}",
            out.stderr
        );
        assert!(
            out.stderr.contains("\nusage: spalloc job"),
            "{}",
            out.stderr
        );
    }
    assert_eq!(fake.connections_made(), 0);
}

#[test]
fn json_info_of_a_live_job() {
    let fake = sample_server();
    let out = sandbox(fake.addr()).run(&["job", "15", "--json"]);
    out.expect_code(0);
    assert_eq!(out.stdout.lines().count(), 1);
    let v: Value = serde_json::from_str(&out.stdout).expect("JSON");
    let keys: Vec<&str> = v
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
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
            "keeper_pid"
        ]
    );
    assert_eq!(v["id"], json!(15));
    assert_eq!(v["state"], json!("ready"));
    assert_eq!(v["owner"], json!("oracle@example.com"));
    assert_eq!(v["start_time"], json!("2026-11-23T18:21:56Z"));
    assert_eq!(v["start_time_unix"], json!(1_795_458_116.0));
    assert_eq!(v["keepalive"], Value::Null);
    assert_eq!(v["keepalive_host"], json!("127.0.0.1"));
    assert_eq!(v["reason"], Value::Null);
    assert_eq!(v["request"]["args"], json!([2, 2]));
    assert_eq!(v["request"]["kwargs"]["min_ratio"], json!(0.333));
    assert_eq!(v["machine"], json!("big"));
    assert_eq!(v["hostname"], json!("127.101.0.97"));
    assert_eq!(
        (v["width"].clone(), v["height"].clone()),
        (json!(28), json!(28))
    );
    assert_eq!(v["num_boards"], json!(12));
    assert_eq!(v["boards"][0], json!({"x": 1, "y": 1, "z": 0}));
    assert_eq!(v["boards"][11], json!({"x": 2, "y": 2, "z": 2}));
    assert_eq!(v["power"], json!(true));
    let conns = v["connections"].as_array().expect("connections");
    assert_eq!(conns.len(), 12);
    assert_eq!(
        conns[0],
        json!({"x": 0, "y": 0, "hostname": "127.101.0.97"})
    );
    assert_eq!(
        conns[1],
        json!({"x": 0, "y": 12, "hostname": "127.101.0.106"})
    );
    assert_eq!(
        conns[11],
        json!({"x": 24, "y": 24, "hostname": "127.101.0.111"})
    );
}

/// A job that has just been allocated a specific board shows the map of
/// that one board and the machine's size for one board.
#[test]
fn info_of_a_live_single_board_job() {
    let server = server_m();
    let mut c = client(server.local_addr());
    let id = ready_job(&mut c, JobRequest::Board(Board::new(1, 1, 2)), "ann");
    let out = sandbox(server.local_addr()).run(&["job", &id.to_string()]);
    out.expect_code(0);
    let text = &out.stdout;
    assert!(
        text.starts_with(&format!(
            "     Job ID: {id}\n      Owner: ann\n      State: ready\n"
        )),
        "{text}"
    );
    assert!(
        text.contains("    Request: Job(1, 1, 2,\n                 machine=None,\n"),
        "{text}"
    );
    assert!(
        text.contains(" Allocation:  ___\n             / . \\\n             \\___/\n   Hostname: "),
        "{text}"
    );
    assert!(
        text.ends_with(
            "      Width: 8\n     Height: 8\n Num boards: 1\nBoard power: on\n Running on: m\n"
        ),
        "{text}"
    );
}

/// A job destroyed between the look at its state and the power request:
/// the Java service's exception for it ends as a destroyed job does; an
/// exception about a job that is still live is the server's error.
#[test]
fn power_and_destroy_refused_by_the_server() {
    let looks = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let l = looks.clone();
    let fake = FakeServer::start(Dialect::Java, move |c| match c.command.as_str() {
        "version" => Reply::Return(json!("5.0.0")),
        "get_job_state" => {
            // Job 5: ready at the first look, destroyed after. Job 6: ready.
            let n = l.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let state = if c.job_id() == Some(5) && n > 0 { 4 } else { 3 };
            Reply::Return(json!({"state": state, "power": true, "keepalive": 1.7e9,
                "reason": "", "start_time": 1.7e9, "keepalivehost": ""}))
        }
        "power_on_job_boards" if c.job_id() == Some(5) => {
            Reply::Exception("no boards currently allocated".into())
        }
        "power_on_job_boards" | "destroy_job" => Reply::Exception("not yours".into()),
        _ => Reply::Return(Value::Null),
    });
    let sb = sandbox(fake.addr());
    let out = sb.run(&["job", "5", "--power-on"]);
    out.expect_code(8);
    same(
        "Error: Cannot power on job 5 in state destroyed\n",
        &out.stderr,
    );
    let out = sb.run(&["job", "6", "--power-on"]);
    out.expect_code(1);
    same("Error from server: not yours\n", &out.stderr);
    let out = sb.run(&["job", "6", "--destroy"]);
    out.expect_code(1);
    same("Error from server: not yours\n", &out.stderr);
}
