//! `spalloc where-is`: the four query forms and their kwargs, the layout,
//! nothing found, argument checking and JSON.

use serde_json::{Value, json};
use spalloc::JobRequest;

use super::{client, ready_job, same, sample_server, sandbox, server_m};

#[test]
fn samples_through_the_scripted_server() {
    let fake = sample_server();
    let sb = sandbox(fake.addr());
    let out = sb.run(&["where-is", "--job-chip", "15", "9", "5"]);
    out.expect_code(0);
    same(
        "                 Machine: big\n\
         \x20      Physical location: Cabinet 0, Frame 0, Board 13\n\
         \x20       Board coordinate: (1, 1, 1)\n\
         Machine chip coordinates: (21, 17)\n\
         Coordinates within board: (1, 1)\n\
         \x20        Job using board: 15\n\
         \x20 Coordinates within job: (9, 5)\n",
        &out.stdout,
    );
    same("", &out.stderr);
    let out = sb.run(&["where-is", "--physical", "big", "0", "0", "5"]);
    out.expect_code(0);
    same(
        "                 Machine: big\n\
         \x20      Physical location: Cabinet 0, Frame 0, Board 5\n\
         \x20       Board coordinate: (0, 1, 2)\n\
         Machine chip coordinates: (4, 20)\n\
         \x20        Job using board: None\n",
        &out.stdout,
    );
    let out = sb.run(&["where-is", "-j", "15", "9", "5", "--json"]);
    out.expect_code(0);
    same(
        "{\"machine\":\"big\",\"physical\":{\"cabinet\":0,\"frame\":0,\"board\":13},\
         \"logical\":{\"x\":1,\"y\":1,\"z\":1},\"chip\":{\"x\":21,\"y\":17},\
         \"board_chip\":{\"x\":1,\"y\":1},\"job_id\":15,\"job_chip\":{\"x\":9,\"y\":5}}\n",
        &out.stdout,
    );
    // The kwargs of each form, as integers.
    let sent: Vec<_> = fake
        .calls_named("where_is")
        .into_iter()
        .map(|c| Value::Object(c.kwargs))
        .collect();
    assert_eq!(
        sent,
        [
            json!({"job_id": 15, "chip_x": 9, "chip_y": 5}),
            json!({"machine": "big", "cabinet": 0, "frame": 0, "board": 5}),
            json!({"job_id": 15, "chip_x": 9, "chip_y": 5}),
        ]
    );
    for args in [
        ["where-is", "--board", "big", "1", "1", "2"],
        ["where-is", "--logical", "big", "1", "1", "2"],
        ["where-is", "-b", "big", "1", "1", "2"],
        ["where-is", "-l", "big", "1", "1", "2"],
    ] {
        sb.run(&args).expect_code(4);
    }
    sb.run(&["where-is", "--chip", "big", "-1", "-2"])
        .expect_code(4);
    sb.run(&["where-is", "-p", "big", "0", "0", "7"])
        .expect_code(4);
    let sent: Vec<_> = fake
        .calls_named("where_is")
        .into_iter()
        .skip(3)
        .map(|c| Value::Object(c.kwargs))
        .collect();
    let board = json!({"machine": "big", "x": 1, "y": 1, "z": 2});
    assert_eq!(
        sent,
        [
            board.clone(),
            board.clone(),
            board.clone(),
            board,
            json!({"machine": "big", "chip_x": -1, "chip_y": -2}),
            json!({"machine": "big", "cabinet": 0, "frame": 0, "board": 7}),
        ]
    );
}

/// The §9 worked example on machine `m` (2 × 2 triads), with a job on
/// board (1, 1, 2).
#[test]
fn all_four_forms_against_the_virtual_server() {
    let server = server_m();
    let mut c = client(server.local_addr());
    let id = ready_job(
        &mut c,
        JobRequest::Board(spalloc::Board::new(1, 1, 2)),
        "ann",
    );
    let sb = sandbox(server.local_addr());
    let body = |chip: &str, within: Option<&str>| {
        let mut s = format!(
            "                 Machine: m\n\
             \x20      Physical location: Cabinet 0, Frame 0, Board 7\n\
             \x20       Board coordinate: (1, 1, 2)\n\
             Machine chip coordinates: {chip}\n"
        );
        if let Some(w) = within {
            s.push_str(&format!("Coordinates within board: {w}\n"));
        }
        s
    };
    let out = sb.run(&["where-is", "--board", "m", "1", "1", "2"]);
    out.expect_code(0);
    same(
        &format!(
            "{}         Job using board: {id}\n  Coordinates within job: (0, 0)\n",
            body("(16, 20)", None)
        ),
        &out.stdout,
    );
    let out = sb.run(&["where-is", "--physical", "m", "0", "0", "7"]);
    out.expect_code(0);
    same(
        &format!(
            "{}         Job using board: {id}\n  Coordinates within job: (0, 0)\n",
            body("(16, 20)", None)
        ),
        &out.stdout,
    );
    // Negative chip coordinates wrap around the machine.
    let out = sb.run(&["where-is", "--chip", "m", "-1", "-1"]);
    out.expect_code(0);
    same(
        &format!(
            "{}         Job using board: {id}\n  Coordinates within job: (7, 3)\n",
            body("(23, 23)", Some("(7, 3)"))
        ),
        &out.stdout,
    );
    let out = sb.run(&["where-is", "--job-chip", &id.to_string(), "7", "3"]);
    out.expect_code(0);
    same(
        &format!(
            "{}         Job using board: {id}\n  Coordinates within job: (7, 3)\n",
            body("(23, 23)", Some("(7, 3)"))
        ),
        &out.stdout,
    );
    // A free board: no job, so no job coordinates.
    let out = sb.run(&["where-is", "-c", "m", "1000", "1000"]);
    out.expect_code(0);
    same(
        "                 Machine: m\n\
         \x20      Physical location: Cabinet 0, Frame 0, Board 11\n\
         \x20       Board coordinate: (1, 1, 0)\n\
         Machine chip coordinates: (16, 16)\n\
         Coordinates within board: (4, 4)\n\
         \x20        Job using board: None\n",
        &out.stdout,
    );
    let out = sb.run(&["where-is", "--json", "-c", "m", "1000", "1000"]);
    out.expect_code(0);
    let v: Value = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(
        v,
        json!({"machine": "m", "physical": {"cabinet": 0, "frame": 0, "board": 11},
            "logical": {"x": 1, "y": 1, "z": 0}, "chip": {"x": 16, "y": 16},
            "board_chip": {"x": 4, "y": 4}, "job_id": null, "job_chip": null})
    );
    // `board_chip` is there for the board forms too.
    let out = sb.run(&["where-is", "--json", "-b", "m", "1", "1", "2"]);
    let v: Value = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(v["board_chip"], json!({"x": 0, "y": 0}));
    assert_eq!(v["job_id"], json!(id));
    assert_eq!(v["job_chip"], json!({"x": 0, "y": 0}));
}

#[test]
fn nothing_there_exits_4() {
    let server = server_m();
    let sb = sandbox(server.local_addr());
    for args in [
        vec!["where-is", "--board", "nosuch", "0", "0", "0"],
        vec!["where-is", "--physical", "m", "0", "0", "99"],
        vec!["where-is", "--job-chip", "9999", "0", "0"],
        vec!["where-is", "--chip", "nosuch", "0", "0"],
        vec!["where-is", "--json", "--chip", "nosuch", "0", "0"],
    ] {
        let out = sb.run(&args);
        out.expect_code(4);
        same("", &out.stdout);
        same("No boards at the specified location\n", &out.stderr);
    }
}

#[test]
fn bad_arguments_are_usage_errors() {
    let fake = sample_server();
    let sb = sandbox(fake.addr());
    let cases: [(&[&str], &str); 8] = [
        (
            &["where-is", "--chip", "m", "x", "1"],
            "argument --chip/-c: invalid int value: 'x'",
        ),
        (
            &["where-is", "--job-chip", "j", "1", "1"],
            "argument --job-chip/-j: invalid int value: 'j'",
        ),
        (
            &["where-is", "--board", "m", "1", "1", "1.5"],
            "argument --board/-b/--logical/-l: invalid int value: '1.5'",
        ),
        (
            &["where-is", "--chip", "m", "1"],
            "argument --chip/-c: expected 3 arguments",
        ),
        (
            &["where-is", "--physical", "m", "1", "2", "3", "4"],
            "unrecognized arguments: 4",
        ),
        (
            &["where-is", "m", "1", "1"],
            "one of the arguments --board/-b/--logical/-l --physical/-p --chip/-c --job-chip/-j is required",
        ),
        (
            &["where-is", "-b", "-c", "m", "1", "1"],
            "argument --board/-b/--logical/-l: expected 4 arguments",
        ),
        (
            &["where-is", "-b", "m", "0", "0", "0", "-c", "m", "1", "1"],
            "argument --chip/-c: not allowed with argument --board/-b/--logical/-l",
        ),
    ];
    for (args, message) in cases {
        let out = sb.run(args);
        out.expect_code(2);
        same("", &out.stdout);
        let mut lines = out.stderr.lines();
        assert_eq!(
            lines.next(),
            Some(format!("spalloc where-is: error: {message}").as_str()),
            "{args:?}"
        );
        assert!(
            lines
                .next()
                .is_some_and(|l| l.starts_with("usage: spalloc where-is")),
            "{}",
            out.stderr
        );
    }
    assert_eq!(fake.connections_made(), 0, "usage errors contact no server");
}
