//! The Python dialect against the real server's own answers.
//!
//! Every expected line below is what `spalloc_server` 1!7.0.0 (from PyPI,
//! run with its BMPs replaced by ones that finish at once) sent for the
//! same request, byte for byte, except where a comment says why not.

use std::time::Duration;

use serde_json::{Value, json};
use spalloc::server::{Dialect, Machine, ServerConfig, VirtualServer};

use super::{Client, TestResult, fail, start, start_as, wait_for};

fn m22() -> TestResult<VirtualServer> {
    start(vec![Machine::new("m", 2, 2)])
}

/// The reply line to one raw request on a fresh connection.
fn answer(server: &VirtualServer, request: &str) -> TestResult<String> {
    let mut c = Client::connect(server.local_addr())?;
    c.exchange(format!("{request}\n").as_bytes())
}

#[test]
fn list_jobs_keeps_the_kwargs_in_the_order_sent() -> TestResult {
    let server = m22()?;
    let mut c = Client::connect(server.local_addr())?;
    // The Python client's order (owner and keepalive first), then another.
    c.exchange(
        b"{\"command\": \"create_job\", \"args\": [], \"kwargs\": {\"owner\": \"me\", \"keepalive\": 60.0, \
          \"machine\": null, \"tags\": null, \"min_ratio\": 0.333, \"max_dead_boards\": 0, \
          \"max_dead_links\": null, \"require_torus\": false}}\n",
    )?;
    c.exchange(
        b"{\"command\": \"create_job\", \"args\": [], \"kwargs\": {\"keepalive\": 60.0, \"owner\": \"me\", \
          \"tags\": null, \"machine\": null, \"require_torus\": false, \"min_ratio\": 0.333, \
          \"max_dead_boards\": 0, \"max_dead_links\": null, \"client\": \"x\"}}\n",
    )?;
    let listing = c.exchange(b"{\"command\": \"list_jobs\"}\n")?;
    let kwargs: Vec<&str> = listing
        .split("\"kwargs\": ")
        .skip(1)
        .filter_map(|s| s.split('}').next())
        .collect();
    assert_eq!(
        kwargs,
        [
            "{\"machine\": null, \"tags\": null, \"min_ratio\": 0.333, \"max_dead_boards\": 0, \
             \"max_dead_links\": null, \"require_torus\": false",
            "{\"tags\": null, \"machine\": null, \"require_torus\": false, \"min_ratio\": 0.333, \
             \"max_dead_boards\": 0, \"max_dead_links\": null",
        ]
    );
    Ok(())
}

#[test]
fn power_requests_read_together_notify_together() -> TestResult {
    // Long enough for both requests, handled in one pass, to overlap.
    let server = VirtualServer::start(
        ServerConfig::instant()
            .machines(vec![Machine::new("m", 1, 1)])
            .power_delay(Duration::from_millis(300)),
    )?;
    let mut c = Client::connect(server.local_addr())?;
    let id = c.create(json!([]), json!({}))?;
    wait_for(Duration::from_secs(10), || {
        Ok((c.state_num(id)? == 3).then_some(()))
    })?;
    c.call("notify_job", json!([]), json!({}))?;
    c.notes.clear();
    // Both in one write: the server handles them in one pass of its loop,
    // so both replies come first, then one notification for the pass.
    let both = format!(
        "{{\"command\": \"power_off_job_boards\", \"args\": [{id}]}}\n\
         {{\"command\": \"power_on_job_boards\", \"args\": [{id}]}}\n"
    );
    c.send_raw(both.as_bytes())?;
    assert_eq!(c.read_raw()?, "{\"return\": null}\n");
    assert_eq!(c.read_raw()?, "{\"return\": null}\n");
    assert_eq!(c.read_raw()?, format!("{{\"jobs_changed\": [{id}]}}\n"));
    wait_for(Duration::from_secs(10), || {
        Ok((c.state_num(id)? == 3).then_some(()))
    })?;
    let notes: Vec<Value> = c.notes.drain(..).collect();
    assert_eq!(notes, vec![json!({"jobs_changed": [id]})]);
    Ok(())
}

#[test]
fn a_keepalive_of_zero_or_less_ends_the_job_at_once() -> TestResult {
    for keepalive in ["-1", "0", "-0.5"] {
        let server = m22()?;
        let mut w = Client::connect(server.local_addr())?;
        w.call("notify_job", json!([]), json!({}))?;
        w.call("notify_machine", json!([]), json!({}))?;
        let mut c = Client::connect(server.local_addr())?;
        let create = format!(
            "{{\"command\": \"create_job\", \"args\": [], \"kwargs\": {{\"owner\": \"me\", \"keepalive\": {keepalive}}}}}\n"
        );
        assert_eq!(c.exchange(create.as_bytes())?, "{\"return\": 1}\n");
        // Straight away, with no ticker in between: gone.
        assert_eq!(
            c.exchange(b"{\"command\": \"get_job_state\", \"args\": [1]}\n")?,
            "{\"return\": {\"state\": 4, \"power\": null, \"keepalive\": null, \"reason\": \"Job timed out.\", \
             \"start_time\": null, \"keepalivehost\": null}}\n"
        );
        // The watcher saw one round: the job (created, allocated, powered,
        // destroyed) and its machine.
        w.call("list_machines", json!([]), json!({}))?;
        assert_eq!(
            w.notes.drain(..).collect::<Vec<_>>(),
            [
                json!({"jobs_changed": [1]}),
                json!({"machines_changed": ["m"]})
            ]
        );
    }
    Ok(())
}

#[test]
fn an_empty_line_is_skipped_but_a_blank_one_hangs_up() -> TestResult {
    let server = m22()?;
    let mut c = Client::connect(server.local_addr())?;
    assert_eq!(
        c.exchange(b"\n\n{\"command\": \"version\"}\n")?,
        "{\"return\": \"1.1.0\"}\n"
    );
    assert_eq!(
        c.exchange(b"{\"command\": \"version\"}\n")?,
        "{\"return\": \"1.1.0\"}\n"
    );
    // The real server splits on `\n` only: "\r" and "  " are not JSON.
    for blank in [&b"\r\n"[..], b"   \n", b"\t\n"] {
        let mut c = Client::connect(server.local_addr())?;
        let mut request = blank.to_vec();
        request.extend_from_slice(b"{\"command\": \"version\"}\n");
        c.send_raw(&request)?;
        c.expect_closed()?;
    }
    Ok(())
}

#[test]
fn min_ratio_null_for_a_number_of_boards_is_an_exception() -> TestResult {
    let server = m22()?;
    assert_eq!(
        answer(
            &server,
            "{\"command\": \"create_job\", \"args\": [4], \"kwargs\": {\"owner\": \"me\", \"min_ratio\": null}}"
        )?,
        "{\"exception\": \"'<' not supported between instances of 'NoneType' and 'float'\"}\n"
    );
    // Unlike the real server, which leaves the job behind, half made.
    let mut c = Client::connect(server.local_addr())?;
    assert_eq!(c.call("list_jobs", json!([]), json!({}))?, json!([]));
    // Other shapes do not look at the ratio.
    assert_eq!(c.create(json!([1]), json!({"min_ratio": null}))?, 1);
    assert_eq!(c.create(json!([1, 1]), json!({"min_ratio": null}))?, 2);
    Ok(())
}

#[test]
fn argument_errors_in_pythons_words() -> TestResult {
    let server = m22()?;
    let cases = [
        (
            "{\"command\": \"version\", \"args\": [1]}",
            "SpallocServer.version() takes 2 positional arguments but 3 were given",
        ),
        (
            "{\"command\": \"get_job_state\"}",
            "SpallocServer.get_job_state() missing 1 required positional argument: 'job_id'",
        ),
        (
            "{\"command\": \"get_job_state\", \"args\": [1, 2]}",
            "SpallocServer.get_job_state() takes 3 positional arguments but 4 were given",
        ),
        (
            "{\"command\": \"get_job_state\", \"kwargs\": {\"jobid\": 1}}",
            "SpallocServer.get_job_state() got an unexpected keyword argument 'jobid'",
        ),
        (
            "{\"command\": \"get_job_state\", \"args\": [1], \"kwargs\": {\"job_id\": 1}}",
            "SpallocServer.get_job_state() got multiple values for argument 'job_id'",
        ),
        (
            "{\"command\": \"destroy_job\"}",
            "SpallocServer.destroy_job() missing 1 required positional argument: 'job_id'",
        ),
        (
            "{\"command\": \"destroy_job\", \"args\": [1, 2, 3]}",
            "SpallocServer.destroy_job() takes from 3 to 4 positional arguments but 5 were given",
        ),
        (
            "{\"command\": \"get_board_position\", \"args\": [\"m\", 0]}",
            "SpallocServer.get_board_position() missing 2 required positional arguments: 'y' and 'z'",
        ),
        (
            "{\"command\": \"get_board_position\"}",
            "SpallocServer.get_board_position() missing 4 required positional arguments: 'machine_name', 'x', 'y', and 'z'",
        ),
        (
            "{\"command\": \"where_is\", \"args\": [1]}",
            "SpallocServer.where_is() takes 2 positional arguments but 3 were given",
        ),
        (
            "{\"command\": \"list_jobs\", \"args\": [1]}",
            "SpallocServer.list_jobs() takes 2 positional arguments but 3 were given",
        ),
        (
            "{\"command\": \"notify_job\", \"args\": [1, 2]}",
            "SpallocServer.notify_job() takes from 2 to 3 positional arguments but 4 were given",
        ),
        (
            "{\"command\": \"job_keepalive\", \"kwargs\": {\"x\": 1}}",
            "SpallocServer.job_keepalive() got an unexpected keyword argument 'x'",
        ),
        (
            "{\"command\": \"where_is\", \"kwargs\": {\"machine\": \"m\"}}",
            "Invalid arguments: machine",
        ),
        (
            "{\"command\": \"create_job\", \"args\": [1, 2, 3, 4, 5, 6, 7, 8], \"kwargs\": {\"owner\": \"me\"}}",
            "Allocator._alloc_type() takes from 1 to 8 positional arguments but 9 were given",
        ),
        (
            "{\"command\": \"create_job\", \"args\": [1, 1, 1, 1], \"kwargs\": {\"owner\": \"me\", \"max_dead_boards\": 1}}",
            "Allocator._alloc_type() got multiple values for argument 'max_dead_boards'",
        ),
        (
            "{\"command\": \"create_job\", \"args\": [], \"kwargs\": {\"owner\": \"me\", \"colour\": \"red\"}}",
            "Allocator._alloc_type() got an unexpected keyword argument 'colour'",
        ),
    ];
    let mut c = Client::connect(server.local_addr())?;
    for (request, message) in cases {
        let want = format!("{{\"exception\": {}}}\n", serde_json::to_string(message)?);
        assert_eq!(
            c.exchange(format!("{request}\n").as_bytes())?,
            want,
            "{request}"
        );
    }
    // None of those made a job.
    assert_eq!(c.call("list_jobs", json!([]), json!({}))?, json!([]));
    Ok(())
}

#[test]
fn create_job_converts_and_checks_as_the_real_server_does() -> TestResult {
    let server = m22()?;
    let mut c = Client::connect(server.local_addr())?;
    let cases = [
        (json!([]), json!({}), "owner must be specified for all jobs"),
        (
            json!([]),
            json!({"owner": "o", "keepalive": "x"}),
            "could not convert string to float: 'x'",
        ),
        (
            json!([]),
            json!({"owner": "o", "keepalive": [1]}),
            "float() argument must be a string or a real number, not 'list'",
        ),
        (
            json!([]),
            json!({"owner": "o", "machine": "m", "tags": ["default"]}),
            "Only one of machine and tags may be specified for a job.",
        ),
        (
            json!([]),
            json!({"owner": "o", "require_torus": true}),
            "require_torus must be False when allocating boards.",
        ),
        (
            json!([1, 1, 1]),
            json!({"owner": "o", "require_torus": 1}),
            "require_torus must be False when allocating boards.",
        ),
        (
            json!([5]),
            json!({"owner": "o", "min_ratio": -1}),
            "Aspect ratio cannot be negative.",
        ),
        (
            json!([5]),
            json!({"owner": "o", "min_ratio": "square"}),
            "'<' not supported between instances of 'str' and 'float'",
        ),
    ];
    for (args, kwargs, want) in cases {
        assert_eq!(
            c.call_err("create_job", args.clone(), kwargs.clone())?,
            want,
            "{args} {kwargs}"
        );
    }
    // The owner becomes str(owner), the keepalive float(keepalive).
    let id = c.call(
        "create_job",
        json!([]),
        json!({"owner": 5, "keepalive": "30"}),
    )?;
    assert_eq!(id, json!(1));
    let id2 = c.call(
        "create_job",
        json!([]),
        json!({"owner": "me", "keepalive": true}),
    )?;
    let jobs = c.call("list_jobs", json!([]), json!({}))?;
    assert_eq!(jobs[0]["owner"], "5");
    assert_eq!(jobs[0]["keepalive"], json!(30.0));
    assert_eq!(jobs[1]["job_id"], id2);
    assert_eq!(jobs[1]["keepalive"], json!(1.0));
    // Positional arguments after a board's x, y and z fill
    // max_dead_boards, max_dead_links, require_torus and min_ratio.
    let id3 = c.create(json!([1, 1, 1, 0, null, false, 0.5]), json!({}))?;
    assert_eq!(c.boards(id3)?, json!([[1, 1, 1]]));
    Ok(())
}

#[test]
fn job_ids_are_found_as_a_python_dict_finds_them() -> TestResult {
    let server = m22()?;
    let mut c = Client::connect(server.local_addr())?;
    let id = c.create(json!([]), json!({}))?;
    assert_eq!(id, 1);
    let live = c.state(1)?;
    assert_eq!(live["state"], 3);
    // True == 1 and 1.0 == 1, with the same hash: job 1.
    for key in [json!(true), json!(1.0)] {
        assert_eq!(c.call("get_job_state", json!([key]), json!({}))?, live);
    }
    let unknown = json!({"state": 0, "power": null, "keepalive": null, "reason": null,
                         "start_time": null, "keepalivehost": null});
    for key in [
        json!("1"),
        json!("abc"),
        json!(1.5),
        json!(false),
        json!(null),
        json!(-1),
    ] {
        assert_eq!(
            c.call("get_job_state", json!([key]), json!({}))?,
            unknown,
            "{key}"
        );
    }
    for (key, kind) in [(json!([1]), "list"), (json!({"id": 1}), "dict")] {
        for command in [
            "get_job_state",
            "job_keepalive",
            "destroy_job",
            "notify_job",
        ] {
            assert_eq!(
                c.call_err(command, json!([key]), json!({}))?,
                format!("unhashable type: '{kind}'")
            );
        }
    }
    // Board lookups hash their coordinates too.
    assert_eq!(
        c.call_err("get_board_position", json!(["m", 0, 0, [0]]), json!({}))?,
        "unhashable type: 'list'"
    );
    assert_eq!(
        c.call(
            "get_board_position",
            json!(["m", 0.0, true, false]),
            json!({})
        )?,
        c.call("get_board_position", json!(["m", 0, 1, 0]), json!({}))?
    );
    assert_eq!(
        c.call("get_board_position", json!(["nope", 0, 0, [0]]), json!({}))?,
        Value::Null
    );
    // Positional power and destroy of job `true` reach job 1.
    c.call("destroy_job", json!([true, "by bool"]), json!({}))?;
    assert_eq!(c.state(1)?["reason"], "by bool");
    Ok(())
}

#[test]
fn malformed_requests_end_the_connection_without_a_reply() -> TestResult {
    let server = start_as(Dialect::Python, vec![Machine::new("m", 1, 1)])?;
    let cases: [&[u8]; 19] = [
        b"\xff\xfe{}\n",
        b"this is not json\n",
        b"{\"command\": \"version\"\n",
        b"{\"command\": \"version\"} trailing\n",
        b"42\n",
        b"[1, 2]\n",
        b"\"command\"\n",
        b"null\n",
        b"{}\n",
        b"{\"command\": null}\n",
        b"{\"command\": 5}\n",
        b"{\"command\": \"launch_missiles\"}\n",
        b"{\"command\": \"report_problem\", \"args\": [\"10.0.0.1\"]}\n",
        b"{\"command\": \"login\"}\n",
        b"{\"command\": \"version\", \"args\": {}}\n",
        b"{\"command\": \"version\", \"args\": null}\n",
        b"{\"command\": \"version\", \"kwargs\": []}\n",
        b"{\"command\": \"version\", \"kwargs\": null}\n",
        b"\r\n",
    ];
    for bad in cases {
        let mut c = Client::connect(server.local_addr())?;
        // A good request first, answered; the bad one ends it; the one
        // after is never read.
        let mut bytes = b"{\"command\": \"version\"}\n".to_vec();
        bytes.extend_from_slice(bad);
        bytes.extend_from_slice(b"{\"command\": \"version\"}\n");
        c.send_raw(&bytes)?;
        assert_eq!(c.read_raw()?, "{\"return\": \"1.1.0\"}\n");
        if let Err(e) = c.expect_closed() {
            return fail(format!("{:?}: {e}", String::from_utf8_lossy(bad)));
        }
    }
    Ok(())
}
