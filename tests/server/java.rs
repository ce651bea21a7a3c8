//! The Java dialect: the Java server's v1 compatibility service as
//! PROTOCOL.md describes it (its column "Java compat"), from framing to
//! the machine a job is tied to.

use std::time::Duration;

use serde_json::{Value, json};
use spalloc::server::{Dialect, Machine, ServerConfig, VirtualServer};

use super::{Client, TestResult, start_as, wait_for};

fn java(machines: Vec<Machine>) -> TestResult<VirtualServer> {
    start_as(Dialect::Java, machines)
}

fn m22() -> TestResult<VirtualServer> {
    java(vec![Machine::new("m", 2, 2)])
}

#[test]
fn compact_json_with_crlf_and_version_5() -> TestResult {
    let server = m22()?;
    let mut c = Client::connect(server.local_addr())?;
    assert_eq!(
        c.exchange(b"{\"command\": \"version\"}\n")?,
        "{\"return\":\"5.0.0\"}\r\n"
    );
    assert_eq!(
        c.exchange(b"{\"command\":\"create_job\",\"kwargs\":{\"owner\":\"me\"}}\n")?,
        "{\"return\":1}\r\n"
    );
    // Every line end the service's reader knows: \r\n, \r, \n.
    c.send_raw(
        b"{\"command\":\"version\"}\r{\"command\":\"version\"}\r\n{\"command\":\"version\"}\n",
    )?;
    for _ in 0..3 {
        assert_eq!(c.read_raw()?, "{\"return\":\"5.0.0\"}\r\n");
    }
    // A \r\n split across two writes is still one line end.
    c.send_raw(b"{\"command\":\"version\"}\r")?;
    assert_eq!(c.read_raw()?, "{\"return\":\"5.0.0\"}\r\n");
    c.send_raw(b"\n{\"command\":\"version\"}\n")?;
    assert_eq!(c.read_raw()?, "{\"return\":\"5.0.0\"}\r\n");
    // Times in whole seconds, in Java's exponent form; the keepalive is
    // when it was last renewed.
    let state = c.exchange(b"{\"command\":\"get_job_state\",\"args\":[1]}\n")?;
    assert!(
        state.starts_with("{\"return\":{\"state\":3,\"power\":true,\"start_time\":1.")
            && state
                .contains("E9,\"reason\":\"\",\"keepalivehost\":\"127.0.0.1\",\"keepalive\":1.")
            && state.ends_with("E9}}\r\n"),
        "{state}"
    );
    Ok(())
}

#[test]
fn bad_json_is_an_exception_and_the_connection_carries_on() -> TestResult {
    let server = m22()?;
    let mut c = Client::connect(server.local_addr())?;
    let cases: [(&[u8], &str); 10] = [
        (b"this is not json\n", "Unrecognized token 'this'"),
        (
            b"{\"command\": }\n",
            "Unexpected character ('}' (code 125))",
        ),
        (
            b"\xff{\"command\": \"version\"}\n",
            "Unexpected character ('\u{fffd}'",
        ),
        (
            b"[1, 2]\n",
            "Cannot deserialize value of type `uk.ac.manchester.spinnaker.alloc.compat.Command` from Array value",
        ),
        (
            b"42\n",
            "no int/Int-argument constructor/factory method to deserialize from Integer value (42)",
        ),
        (b"{\"command\": 5}\n", "unknown command: 5"),
        (
            b"{\"command\": \"launch_missiles\"}\n",
            "unknown command: launch_missiles",
        ),
        (
            b"{\"command\": \"version\", \"args\": {}}\n",
            "Cannot deserialize value of type `java.util.ArrayList<java.lang.Object>` from Object value",
        ),
        (
            b"{\"command\": \"version\", \"kwargs\": []}\n",
            "Cannot deserialize value of type `java.util.LinkedHashMap<java.lang.String,java.lang.Object>` from Array value",
        ),
        (
            b"{\"command\": \"login\"}\n",
            "upgrading security is not supported",
        ),
    ];
    for (line, want) in cases {
        let e = c.raw_err(line)?;
        assert!(
            e.contains(want),
            "{:?}: {e:?}",
            String::from_utf8_lossy(line)
        );
        assert_eq!(c.call("version", json!([]), json!({}))?, "5.0.0");
    }
    // Trailing data and unknown fields are ignored; unused arguments too.
    assert_eq!(
        c.exchange(b"{\"command\": \"version\", \"args\": [1], \"x\": 2} trailing\n")?,
        "{\"return\":\"5.0.0\"}\r\n"
    );
    assert_eq!(
        c.call(
            "report_problem",
            json!(["10.0.0.1"]),
            json!({"x": 1, "y": 2, "description": "smoke"})
        )?,
        Value::Null
    );
    Ok(())
}

#[test]
fn blank_lines_null_and_missing_commands_hang_up() -> TestResult {
    let server = m22()?;
    for bad in [
        &b"\n"[..],
        b"\r\n",
        b"   \n",
        b"null\n",
        b"{}\n",
        b"{\"command\": null}\n",
        b"{\"args\": []}\n",
    ] {
        let mut c = Client::connect(server.local_addr())?;
        let mut bytes = b"{\"command\": \"version\"}\n".to_vec();
        bytes.extend_from_slice(bad);
        bytes.extend_from_slice(b"{\"command\": \"version\"}\n");
        c.send_raw(&bytes)?;
        assert_eq!(c.read_raw()?, "{\"return\":\"5.0.0\"}\r\n");
        c.expect_closed()?;
    }
    Ok(())
}

#[test]
fn not_found_is_an_exception() -> TestResult {
    let server = java(vec![Machine::new("m", 1, 1)])?;
    let mut c = Client::connect(server.local_addr())?;
    let ready = c.create(json!([1, 1]), json!({}))?;
    let queued = c.create(json!([]), json!({}))?;
    let gone = c.create(json!([]), json!({}))?;
    c.call("destroy_job", json!([gone]), json!({}))?;
    let cases = [
        ("get_job_state", json!([99]), json!({}), "no such job"),
        ("job_keepalive", json!([99]), json!({}), "no such job"),
        ("destroy_job", json!([99]), json!({}), "no such job"),
        ("power_on_job_boards", json!([99]), json!({}), "no such job"),
        ("notify_job", json!([99]), json!({}), "no such job"),
        ("no_notify_job", json!([99]), json!({}), "no such job"),
        (
            "get_job_machine_info",
            json!([99]),
            json!({}),
            "no such job",
        ),
        (
            "get_job_machine_info",
            json!([queued]),
            json!({}),
            "boards not allocated",
        ),
        (
            "get_job_machine_info",
            json!([gone]),
            json!({}),
            "boards not allocated",
        ),
        (
            "power_on_job_boards",
            json!([queued]),
            json!({}),
            "no boards currently allocated",
        ),
        (
            "power_off_job_boards",
            json!([gone]),
            json!({}),
            "no boards currently allocated",
        ),
        (
            "notify_machine",
            json!(["nope"]),
            json!({}),
            "no such machine",
        ),
        (
            "no_notify_machine",
            json!(["nope"]),
            json!({}),
            "no such machine",
        ),
        (
            "get_board_position",
            json!([]),
            json!({"machine_name": "nope", "x": 0, "y": 0, "z": 0}),
            "no such machine",
        ),
        (
            "get_board_position",
            json!([]),
            json!({"machine_name": "m", "x": 5, "y": 0, "z": 0}),
            "no such board",
        ),
        (
            "get_board_at_position",
            json!([]),
            json!({"machine_name": "m", "x": 0, "y": 0, "z": 99}),
            "no such board",
        ),
        (
            "where_is",
            json!([]),
            json!({"machine": "nope", "x": 0, "y": 0, "z": 0}),
            "no such machine",
        ),
        (
            "where_is",
            json!([]),
            json!({"machine": "m", "x": 1, "y": 0, "z": 0}),
            "no such board",
        ),
        (
            "where_is",
            json!([]),
            json!({"machine": "m", "chip_x": 12, "chip_y": 0}),
            "no such board",
        ),
        (
            "where_is",
            json!([]),
            json!({"job_id": 99, "chip_x": 0, "chip_y": 0}),
            "no such job",
        ),
        (
            "where_is",
            json!([]),
            json!({"job_id": queued, "chip_x": 0, "chip_y": 0}),
            "no boards currently allocated",
        ),
        (
            "where_is",
            json!([]),
            json!({"job_id": ready, "chip_x": 12, "chip_y": 0}),
            "no boards currently allocated",
        ),
    ];
    for (command, args, kwargs, want) in cases {
        assert_eq!(
            c.call_err(command, args.clone(), kwargs.clone())?,
            want,
            "{command} {args} {kwargs}"
        );
    }
    // A destroyed job still answers (state 4, every field filled in), and
    // keepalives and destroys of it are accepted.
    let s = c.state(gone)?;
    assert_eq!(
        (&s["state"], &s["power"], &s["reason"]),
        (&json!(4), &json!(false), &json!(""))
    );
    assert!(s["start_time"].is_f64() && s["keepalive"].is_f64(), "{s}");
    assert_eq!(
        c.call("job_keepalive", json!([gone]), json!({}))?,
        Value::Null
    );
    assert_eq!(
        c.call("destroy_job", json!([gone]), json!({}))?,
        Value::Null
    );
    Ok(())
}

#[test]
fn an_impossible_request_is_refused_without_a_job() -> TestResult {
    let server = java(vec![Machine::new("m", 1, 1)])?;
    let mut c = Client::connect(server.local_addr())?;
    for (args, kwargs) in [
        (json!([9, 9, 9]), json!({})),
        (json!([5, 5]), json!({})),
        (json!([4]), json!({})),
        (json!([]), json!({"machine": "nope"})),
        (json!([]), json!({"tags": ["gpu"]})),
    ] {
        let mut kw = json!({"owner": "me"});
        if let (Some(kw), Value::Object(extra)) = (kw.as_object_mut(), kwargs) {
            kw.extend(extra);
        }
        assert_eq!(
            c.call_err("create_job", args, kw)?,
            "no machine available which matches allocation request"
        );
    }
    assert_eq!(c.call("list_jobs", json!([]), json!({}))?, json!([]));
    // No id was used up.
    assert_eq!(c.create(json!([]), json!({}))?, 1);
    Ok(())
}

#[test]
fn a_job_is_tied_to_its_first_possible_machine() -> TestResult {
    let machines = || {
        vec![
            Machine::new("first", 1, 1),
            Machine::new("second", 1, 1).base_ip("10.2.0.0".parse().expect("ip")),
        ]
    };
    // Python: the second job takes the free machine.
    let server = start_as(Dialect::Python, machines())?;
    let mut c = Client::connect(server.local_addr())?;
    c.create(json!([1, 1]), json!({}))?;
    let b = c.create(json!([1, 1]), json!({}))?;
    assert_eq!(c.info(b)?["machine_name"], "second");

    // Java: it waits for the first, which it was tied to at creation.
    let server = java(machines())?;
    let mut c = Client::connect(server.local_addr())?;
    let a = c.create(json!([1, 1]), json!({}))?;
    let b = c.create(json!([1, 1]), json!({}))?;
    assert_eq!(c.state_num(b)?, 1);
    let jobs = c.call("list_jobs", json!([]), json!({}))?;
    assert_eq!(jobs[1]["allocated_machine_name"], "first");
    assert_eq!(jobs[1]["boards"], json!([]));
    assert_eq!(jobs[1]["power"], false);
    c.call("destroy_job", json!([a]), json!({}))?;
    assert_eq!(c.state_num(b)?, 3);
    assert_eq!(c.info(b)?["machine_name"], "first");
    // A named machine wins over tags.
    let d = c.create(
        json!([]),
        json!({"machine": "second", "tags": ["nonsense"]}),
    )?;
    assert_eq!(c.info(d)?["machine_name"], "second");
    Ok(())
}

#[test]
fn keepalives_default_and_expire_as_the_service_does() -> TestResult {
    let server = VirtualServer::start(
        ServerConfig::instant()
            .dialect(Dialect::Java)
            .machines(vec![Machine::new("m", 1, 1)]),
    )?;
    let mut c = Client::connect(server.local_addr())?;
    // null means the default, 60 s; listed in whole seconds.
    let never = c.create(json!([]), json!({"keepalive": null}))?;
    let short = c.create(json!([]), json!({"keepalive": 0.3}))?;
    let queued = c.create(json!([1, 1]), json!({"keepalive": 0.3}))?;
    let jobs = c.call("list_jobs", json!([]), json!({}))?;
    assert_eq!(jobs[0]["job_id"], never);
    assert_eq!(jobs[0]["keepalive"], json!(60.0));
    assert_eq!(jobs[1]["keepalive"], json!(0.0));
    // Watching the list (which renews nothing) until both have expired.
    wait_for(Duration::from_secs(10), || {
        let jobs = c.call("list_jobs", json!([]), json!({}))?;
        Ok((jobs.as_array().map(Vec::len) == Some(1)).then_some(()))
    })?;
    for id in [short, queued] {
        let s = c.state(id)?;
        assert_eq!(
            (&s["state"], &s["reason"]),
            (&json!(4), &json!("keepalive expired"))
        );
    }
    assert_eq!(c.state_num(never)?, 3);
    Ok(())
}

#[test]
fn arguments_are_read_as_the_service_reads_them() -> TestResult {
    let server = m22()?;
    let mut c = Client::connect(server.local_addr())?;
    let id = c.create(json!([]), json!({}))?;
    let npe = "Cannot invoke \"java.lang.Integer.intValue()\" because the return value of \
               \"uk.ac.manchester.spinnaker.alloc.compat.Utils.parseDec(Object)\" is null";
    let cases = [
        ("get_job_state", json!([]), json!({"job_id": id}), "missing argument at index 0".to_owned()),
        ("get_job_state", json!([true]), json!({}), "needed a number, got a java.lang.Boolean".to_owned()),
        ("get_job_state", json!([-1]), json!({}), "negative values not supported".to_owned()),
        ("get_job_state", json!(["x"]), json!({}), "For input string: \"x\"".to_owned()),
        ("get_job_state", json!([null]), json!({}), npe.to_owned()),
        ("notify_job", json!([null]), json!({}), npe.to_owned()),
        ("get_board_position", json!(["m", 0, 0, 0]), json!({}), "missing keyword argument: x".to_owned()),
        ("where_is", json!([]), json!({"x": 0}), "missing parameter: machine".to_owned()),
        ("where_is", json!([]), json!({"machine": "m"}), "missing parameter: chip_x, x, or cabinet".to_owned()),
        ("create_job", json!([1, 1, 1, 1]), json!({"owner": "me"}), "unsupported number of arguments: 4".to_owned()),
        ("create_job", json!([]), json!({"owner": "  "}), "invalid owner identifier; must be non-empty".to_owned()),
        ("create_job", json!([]), json!({}), "invalid owner identifier; must be non-empty".to_owned()),
        ("create_job", json!([]), json!({"owner": "m\u{e9}"}), "invalid owner identifier; must be printable ASCII".to_owned()),
        (
            "create_job",
            json!([]),
            json!({"owner": "me", "keepalive": "60"}),
            "class java.lang.String cannot be cast to class java.lang.Number (java.lang.String and \
             java.lang.Number are in module java.base of loader 'bootstrap')".to_owned(),
        ),
        (
            "destroy_job",
            json!([id]),
            json!({"reason": 5}),
            "class java.lang.Integer cannot be cast to class java.lang.String (java.lang.Integer and \
             java.lang.String are in module java.base of loader 'bootstrap')".to_owned(),
        ),
        ("report_problem", json!([]), json!({}), "Index 0 out of bounds for length 0".to_owned()),
    ];
    for (command, args, kwargs, want) in cases {
        assert_eq!(
            c.call_err(command, args.clone(), kwargs.clone())?,
            want,
            "{command} {args} {kwargs}"
        );
    }
    // A decimal string or a float is a job id; extra arguments are ignored.
    for key in [json!("1"), json!(1.9)] {
        assert_eq!(
            c.call("get_job_state", json!([key, "extra"]), json!({}))?["state"],
            3
        );
    }
    // The reason is read only by keyword.
    c.call("destroy_job", json!([id, "positional"]), json!({}))?;
    assert_eq!(c.state(id)?["reason"], "");
    let id = c.create(json!([]), json!({}))?;
    c.call("destroy_job", json!([id]), json!({"reason": "by keyword"}))?;
    assert_eq!(c.state(id)?["reason"], "by keyword");
    Ok(())
}

#[test]
fn list_jobs_as_the_service_lists_them() -> TestResult {
    let server = java(vec![Machine::new("m", 1, 1)])?;
    let mut c = Client::connect(server.local_addr())?;
    let kwargs = "{\"owner\":\"me\",\"keepalive\":30.5,\"colour\":\"red\",\"tags\":null}";
    let create = format!("{{\"command\":\"create_job\",\"args\":[1,1],\"kwargs\":{kwargs}}}\n");
    assert_eq!(c.exchange(create.as_bytes())?, "{\"return\":1}\r\n");
    c.create(json!([]), json!({}))?;
    let listing = c.exchange(b"{\"command\":\"list_jobs\"}\n")?;
    let first = listing
        .strip_prefix("{\"return\":[{")
        .and_then(|s| s.split("},{").next())
        .unwrap_or_default();
    let head = format!(
        "\"owner\":\"me\",\"state\":3,\"power\":true,\"reason\":\"\",\"args\":[1,1],\"kwargs\":{kwargs},\
         \"boards\":[[0,0,0],[0,0,1],[0,0,2]],\"job_id\":1,\"start_time\":"
    );
    assert!(first.starts_with(&head), "{first}");
    assert!(
        first.contains(
            "E9,\"keepalive\":30.0,\"allocated_machine_name\":\"m\",\"keepalivehost\":\"127.0.0.1\""
        ),
        "{first}"
    );
    // The second waits, tied to `m`: power false, no boards.
    let jobs = c.call("list_jobs", json!([]), json!({}))?;
    assert_eq!(jobs[1]["state"], 1);
    assert_eq!(jobs[1]["power"], false);
    assert_eq!(jobs[1]["boards"], json!([]));
    assert_eq!(jobs[1]["allocated_machine_name"], "m");
    assert_eq!(jobs[1]["keepalive"], json!(60.0));
    Ok(())
}

#[test]
fn dead_links_in_board_directions_from_both_ends() -> TestResult {
    use spalloc::server::Link;
    let server = java(vec![
        Machine::new("m", 2, 2).dead_links([(1, 1, 1, Link::North), (0, 0, 0, Link::East)]),
    ])?;
    let mut c = Client::connect(server.local_addr())?;
    let machines = c.call("list_machines", json!([]), json!({}))?;
    // North is direction 0 (its far end, south, is 3); east is south-east
    // (2), whose far end is north-west (5).
    assert_eq!(
        machines[0]["dead_links"],
        json!([[0, 0, 0, 2], [0, 1, 2, 5], [1, 1, 1, 0], [0, 0, 0, 3]])
    );
    Ok(())
}

#[test]
fn notifications_come_first_once_per_key_and_not_for_creation() -> TestResult {
    let server = java(vec![Machine::new("m", 1, 1)])?;
    let mut w = Client::connect(server.local_addr())?;
    let mut c = Client::connect(server.local_addr())?;
    let a = c.create(json!([]), json!({}))?;
    w.call("notify_job", json!([]), json!({}))?;
    w.call("notify_job", json!([a]), json!({}))?;
    w.call("notify_machine", json!([]), json!({}))?;
    // A new job is not reported to "all jobs" (nor, here, anything else
    // that happened to it in the same round), but its machine is.
    let b = c.create(json!([]), json!({}))?;
    // The change is reported before the reply to the request causing it.
    c.call("notify_job", json!([]), json!({}))?;
    c.notes.clear();
    let destroy = format!("{{\"command\":\"destroy_job\",\"args\":[{a}]}}\n");
    assert_eq!(
        c.exchange(destroy.as_bytes())?,
        format!("{{\"jobs_changed\":[{a}]}}\r\n")
    );
    assert_eq!(c.read_raw()?, "{\"return\":null}\r\n");
    // The watcher of all jobs and of job `a` hears about `a` twice.
    w.call("list_jobs", json!([]), json!({}))?;
    assert_eq!(
        w.notes.drain(..).collect::<Vec<_>>(),
        [
            json!({"machines_changed": ["m"]}),
            json!({"jobs_changed": [a]}),
            json!({"jobs_changed": [a]}),
            json!({"machines_changed": ["m"]}),
        ]
    );
    // Later changes to the new job are reported.
    c.call("power_off_job_boards", json!([b]), json!({}))?;
    w.call("list_jobs", json!([]), json!({}))?;
    assert_eq!(
        w.notes.drain(..).collect::<Vec<_>>(),
        [json!({"jobs_changed": [b]})]
    );
    Ok(())
}

#[test]
fn a_waiting_job_stays_tied_to_its_machine_across_a_restart() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("state.json");
    let machines = || {
        vec![
            Machine::new("first", 1, 1),
            Machine::new("second", 1, 1).base_ip("10.2.0.0".parse().expect("ip")),
        ]
    };
    let config = || {
        ServerConfig::instant()
            .dialect(Dialect::Java)
            .machines(machines())
            .state_file(Some(path.clone()))
    };
    let server = VirtualServer::start(config())?;
    let addr = server.local_addr();
    let mut c = Client::connect(addr)?;
    let a = c.create(json!([1, 1]), json!({}))?;
    let b = c.create(json!([1, 1]), json!({"keepalive": 300}))?;
    let gone = c.create(json!([]), json!({"machine": "second"}))?;
    c.call("destroy_job", json!([gone]), json!({"reason": "done"}))?;
    let before = c.state(gone)?;
    server.shutdown();

    let server = VirtualServer::start(config().listen(addr))?;
    let mut c = Client::connect(server.local_addr())?;
    let jobs = c.call("list_jobs", json!([]), json!({}))?;
    assert_eq!(jobs[1]["job_id"], b);
    assert_eq!(jobs[1]["allocated_machine_name"], "first");
    assert_eq!(c.state_num(b)?, 1);
    // A destroyed job keeps everything get_job_state reports.
    assert_eq!(c.state(gone)?, before);
    c.call("destroy_job", json!([a]), json!({}))?;
    assert_eq!(c.info(b)?["machine_name"], "first");
    Ok(())
}
