//! The worked example of the server semantics (§9), step by step.

use serde_json::{Value, json};
use spalloc::server::Machine;

use super::{Client, TestResult, boards, start, triads};

fn conn(x: i64, y: i64, ip: &str) -> Value {
    json!([[x, y], ip])
}

fn expect_info(
    c: &mut Client,
    id: u64,
    w: i64,
    h: i64,
    connections: Vec<Value>,
    bs: Value,
) -> TestResult {
    let info = c.info(id)?;
    assert_eq!(
        info,
        json!({
            "width": w, "height": h, "connections": connections,
            "machine_name": "m", "boards": bs,
        }),
        "job {id}"
    );
    Ok(())
}

#[test]
fn worked_example_step_by_step() -> TestResult {
    let server = start(vec![Machine::new("m", 2, 2)])?;
    let mut c = Client::connect(server.local_addr())?;

    // 1: any board -> (0,0,0).
    assert_eq!(c.create(json!([]), json!({}))?, 1);
    assert_eq!(c.state_num(1)?, 3);
    expect_info(
        &mut c,
        1,
        8,
        8,
        vec![conn(0, 0, "192.168.0.1")],
        boards(&[(0, 0, 0)]),
    )?;
    // 2: reuses triad (0,0).
    assert_eq!(c.create(json!([]), json!({}))?, 2);
    expect_info(
        &mut c,
        2,
        8,
        8,
        vec![conn(0, 0, "192.168.0.65")],
        boards(&[(0, 0, 1)]),
    )?;
    // 3: three boards -> triad (0,1).
    assert_eq!(c.create(json!([3]), json!({}))?, 3);
    expect_info(
        &mut c,
        3,
        16,
        16,
        vec![
            conn(0, 0, "192.168.0.9"),
            conn(4, 8, "192.168.0.41"),
            conn(8, 4, "192.168.0.73"),
        ],
        triads(0, 1, 1, 1),
    )?;
    // 4: one triad -> (1,0).
    assert_eq!(c.create(json!([1, 1]), json!({}))?, 4);
    expect_info(
        &mut c,
        4,
        16,
        16,
        vec![
            conn(0, 0, "192.168.0.81"),
            conn(4, 8, "192.168.0.49"),
            conn(8, 4, "192.168.0.17"),
        ],
        triads(1, 0, 1, 1),
    )?;
    // 5: a specific board on a busy triad waits; 6 is blocked behind it.
    assert_eq!(c.create(json!([0, 1, 2]), json!({}))?, 5);
    assert_eq!(c.create(json!([]), json!({}))?, 6);
    for id in [5, 6] {
        assert_eq!(c.state_num(id)?, 1);
        let info = c.info(id)?;
        assert_eq!(
            info,
            json!({"width": null, "height": null, "connections": null, "machine_name": null, "boards": null})
        );
    }

    // Destroying 3 lets 5 and then 6 in.
    assert_eq!(c.call("destroy_job", json!([3]), json!({}))?, Value::Null);
    let s3 = c.state(3)?;
    assert_eq!(s3["state"], 4);
    assert_eq!(s3["reason"], Value::Null);
    expect_info(
        &mut c,
        5,
        8,
        8,
        vec![conn(0, 0, "192.168.0.41")],
        boards(&[(0, 1, 2)]),
    )?;
    expect_info(
        &mut c,
        6,
        8,
        8,
        vec![conn(0, 0, "192.168.0.33")],
        boards(&[(0, 0, 2)]),
    )?;

    assert_eq!(
        c.call("destroy_job", json!([1, "bye"]), json!({}))?,
        Value::Null
    );
    let s1 = c.state(1)?;
    assert_eq!(s1["state"], 4);
    assert_eq!(s1["reason"], "bye");

    let expected = [
        (7, (0, 1, 0), "192.168.0.9"),
        (8, (0, 1, 1), "192.168.0.73"),
        (9, (0, 0, 0), "192.168.0.1"),
        (10, (1, 1, 0), "192.168.0.89"),
    ];
    for (id, b, ip) in expected {
        assert_eq!(c.create(json!([]), json!({}))?, id);
        expect_info(&mut c, id, 8, 8, vec![conn(0, 0, ip)], boards(&[b]))?;
    }
    assert_eq!(c.create(json!([2, 2]), json!({}))?, 11);
    assert_eq!(c.state_num(11)?, 1);

    // list_jobs shows the live jobs in creation order.
    let jobs = c.call("list_jobs", json!([]), json!({}))?;
    let ids: Vec<u64> = jobs
        .as_array()
        .map(|a| a.iter().filter_map(|j| j["job_id"].as_u64()).collect())
        .unwrap_or_default();
    assert_eq!(ids, vec![2, 4, 5, 6, 7, 8, 9, 10, 11]);

    // where_is in the final state.
    let row = |logical: [i64; 3],
               physical: [i64; 3],
               chip: [i64; 2],
               board_chip: [i64; 2],
               job: Value,
               job_chip: Value| {
        json!({
            "machine": "m", "logical": logical, "physical": physical, "chip": chip,
            "board_chip": board_chip, "job_id": job, "job_chip": job_chip,
        })
    };
    let cases = [
        (
            json!({"machine": "m", "x": 1, "y": 1, "z": 1}),
            row(
                [1, 1, 1],
                [0, 0, 3],
                [20, 16],
                [0, 0],
                Value::Null,
                Value::Null,
            ),
        ),
        (
            json!({"machine": "m", "cabinet": 0, "frame": 0, "board": 3}),
            row(
                [1, 1, 1],
                [0, 0, 3],
                [20, 16],
                [0, 0],
                Value::Null,
                Value::Null,
            ),
        ),
        (
            json!({"machine": "m", "chip_x": 0, "chip_y": 0}),
            row(
                [0, 0, 0],
                [0, 0, 0],
                [0, 0],
                [0, 0],
                json!(9),
                json!([0, 0]),
            ),
        ),
        (
            json!({"machine": "m", "chip_x": 11, "chip_y": 11}),
            row(
                [0, 0, 2],
                [0, 0, 4],
                [11, 11],
                [7, 3],
                json!(6),
                json!([7, 3]),
            ),
        ),
        (
            json!({"machine": "m", "chip_x": 23, "chip_y": 0}),
            row(
                [1, 1, 2],
                [0, 0, 7],
                [23, 0],
                [7, 4],
                Value::Null,
                Value::Null,
            ),
        ),
        (
            json!({"machine": "m", "chip_x": -1, "chip_y": -1}),
            row(
                [1, 1, 2],
                [0, 0, 7],
                [23, 23],
                [7, 3],
                Value::Null,
                Value::Null,
            ),
        ),
        (
            json!({"job_id": 4, "chip_x": 0, "chip_y": 0}),
            row(
                [1, 0, 0],
                [0, 0, 10],
                [12, 0],
                [0, 0],
                json!(4),
                json!([0, 0]),
            ),
        ),
        (
            json!({"job_id": 4, "chip_x": 15, "chip_y": 11}),
            row(
                [1, 0, 1],
                [0, 0, 2],
                [3, 11],
                [7, 7],
                json!(4),
                json!([15, 11]),
            ),
        ),
        (
            json!({"job_id": 4, "chip_x": 8, "chip_y": 8}),
            row(
                [1, 0, 2],
                [0, 0, 6],
                [20, 8],
                [4, 0],
                json!(4),
                json!([8, 8]),
            ),
        ),
        (
            json!({"job_id": 5, "chip_x": 7, "chip_y": 7}),
            row(
                [0, 1, 2],
                [0, 0, 5],
                [11, 3],
                [7, 7],
                json!(5),
                json!([7, 7]),
            ),
        ),
        (json!({"job_id": 5, "chip_x": 8, "chip_y": 0}), Value::Null),
        (json!({"job_id": 99, "chip_x": 0, "chip_y": 0}), Value::Null),
        (json!({"job_id": 11, "chip_x": 0, "chip_y": 0}), Value::Null),
        (
            json!({"machine": "nope", "chip_x": 0, "chip_y": 0}),
            Value::Null,
        ),
        (
            json!({"machine": "nope", "x": 0, "y": 0, "z": 0}),
            Value::Null,
        ),
        // Logical coordinates wrap; an unknown z counts as 0.
        (
            json!({"machine": "m", "x": 2, "y": 0, "z": 0}),
            row(
                [0, 0, 0],
                [0, 0, 0],
                [0, 0],
                [0, 0],
                json!(9),
                json!([0, 0]),
            ),
        ),
        (
            json!({"machine": "m", "x": 5, "y": 5, "z": 5}),
            row(
                [1, 1, 0],
                [0, 0, 11],
                [12, 12],
                [0, 0],
                json!(10),
                json!([0, 0]),
            ),
        ),
    ];
    for (query, want) in cases {
        let got = c.call("where_is", json!([]), query.clone())?;
        assert_eq!(got, want, "where_is {query}");
    }

    // Board positions.
    let pos = |c: &mut Client, cmd: &str, x: i64, y: i64, z: i64| {
        c.call(
            cmd,
            json!([]),
            json!({"machine_name": "m", "x": x, "y": y, "z": z}),
        )
    };
    assert_eq!(
        pos(&mut c, "get_board_position", 1, 1, 2)?,
        json!([0, 0, 7])
    );
    assert_eq!(
        pos(&mut c, "get_board_at_position", 0, 0, 7)?,
        json!([1, 1, 2])
    );
    assert_eq!(pos(&mut c, "get_board_position", 3, 0, 0)?, Value::Null);
    assert_eq!(pos(&mut c, "get_board_at_position", 0, 0, 12)?, Value::Null);
    // Positional arguments work as in the Python server.
    assert_eq!(
        c.call("get_board_position", json!(["m", 0, 0, 1]), json!({}))?,
        json!([0, 0, 8])
    );
    assert_eq!(
        c.call("get_board_position", json!(["nope", 0, 0, 1]), json!({}))?,
        Value::Null
    );
    server.shutdown();
    Ok(())
}

#[test]
fn worked_example_table_of_positions_and_addresses() -> TestResult {
    let server = start(vec![Machine::new("m", 2, 2)])?;
    let mut c = Client::connect(server.local_addr())?;
    let table = [
        ((0, 0, 0), 0, "192.168.0.1", (0, 0)),
        ((0, 0, 1), 8, "192.168.0.65", (8, 4)),
        ((0, 0, 2), 4, "192.168.0.33", (4, 8)),
        ((0, 1, 0), 1, "192.168.0.9", (0, 12)),
        ((0, 1, 1), 9, "192.168.0.73", (8, 16)),
        ((0, 1, 2), 5, "192.168.0.41", (4, 20)),
        ((1, 0, 0), 10, "192.168.0.81", (12, 0)),
        ((1, 0, 1), 2, "192.168.0.17", (20, 4)),
        ((1, 0, 2), 6, "192.168.0.49", (16, 8)),
        ((1, 1, 0), 11, "192.168.0.89", (12, 12)),
        ((1, 1, 1), 3, "192.168.0.25", (20, 16)),
        ((1, 1, 2), 7, "192.168.0.57", (16, 20)),
    ];
    for ((x, y, z), b, ip, (cx, cy)) in table {
        let p = c.call(
            "get_board_position",
            json!([]),
            json!({"machine_name": "m", "x": x, "y": y, "z": z}),
        )?;
        assert_eq!(p, json!([0, 0, b]));
        let w = c.call(
            "where_is",
            json!([]),
            json!({"machine": "m", "x": x, "y": y, "z": z}),
        )?;
        assert_eq!(w["chip"], json!([cx, cy]));
        // A job on exactly this board reports its address.
        let id = c.create(json!([x, y, z]), json!({}))?;
        let info = c.info(id)?;
        assert_eq!(info["connections"], json!([[[0, 0], ip]]));
        c.call("destroy_job", json!([id]), json!({}))?;
    }
    Ok(())
}
