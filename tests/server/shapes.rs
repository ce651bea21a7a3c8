//! The "other shapes" table of the worked example: each case on a fresh
//! machine, checking boards, wrap-around (through the chip size) and
//! cancellations. Both dialects allocate alike; the tests whose requests
//! mean the same to both servers run in each.

use serde_json::{Value, json};
use spalloc::server::{Dialect, Link, Machine};

use super::{Client, TestResult, boards, start, start_as, triads};

const BOTH: [Dialect; 2] = [Dialect::Python, Dialect::Java];

const NO_MACHINE: &str = "Cancelled: No suitable machines available.";

fn fresh(m: Machine) -> TestResult<(spalloc::server::VirtualServer, Client)> {
    let server = start(vec![m])?;
    let c = Client::connect(server.local_addr())?;
    Ok((server, c))
}

fn fresh_as(dialect: Dialect, m: Machine) -> TestResult<(spalloc::server::VirtualServer, Client)> {
    let server = start_as(dialect, vec![m])?;
    let c = Client::connect(server.local_addr())?;
    Ok((server, c))
}

fn size(c: &mut Client, id: u64) -> TestResult<(i64, i64)> {
    let info = c.info(id)?;
    Ok((
        info["width"].as_i64().unwrap_or(-1),
        info["height"].as_i64().unwrap_or(-1),
    ))
}

#[test]
fn whole_machine_requests() -> TestResult {
    let forms = [
        (json!([2, 2]), json!({"require_torus": true})),
        (json!([2, 2]), json!({})),
        (json!([7]), json!({})),
        (json!([10]), json!({})),
        (json!([12]), json!({})),
    ];
    for dialect in BOTH {
        for (args, kwargs) in forms.clone() {
            let (_s, mut c) = fresh_as(dialect, Machine::new("m", 2, 2))?;
            let id = c.create(args.clone(), kwargs)?;
            assert_eq!(c.boards(id)?, triads(0, 0, 2, 2), "{dialect} {args}");
            assert_eq!(size(&mut c, id)?, (24, 24), "{dialect} {args}");
        }
    }
    Ok(())
}

#[test]
fn rows_across_the_width_wrap_in_x() -> TestResult {
    for (dialect, args) in BOTH
        .into_iter()
        .flat_map(|d| [(d, json!([2, 1])), (d, json!([4]))])
    {
        let (_s, mut c) = fresh_as(dialect, Machine::new("m", 2, 2))?;
        let a = c.create(args.clone(), json!({}))?;
        let b = c.create(args.clone(), json!({}))?;
        assert_eq!(c.boards(a)?, triads(0, 0, 2, 1));
        assert_eq!(c.boards(b)?, triads(0, 1, 2, 1));
        assert_eq!(size(&mut c, a)?, (24, 16));
        assert_eq!(size(&mut c, b)?, (24, 16));
    }
    Ok(())
}

#[test]
fn impossible_requests_are_cancelled() -> TestResult {
    let forms = [
        (json!([13]), json!({})),
        (json!([2, 1]), json!({"require_torus": true})),
        (json!([3, 1]), json!({})),
        (json!([5, 5, 5]), json!({})),
        (json!([0, 0, 3]), json!({})),
        (json!([0]), json!({})),
    ];
    let (_s, mut c) = fresh(Machine::new("m", 2, 2))?;
    for (args, kwargs) in forms {
        let id = c.create(args.clone(), kwargs)?;
        let s = c.state(id)?;
        assert_eq!(s["state"], 4, "{args}");
        assert_eq!(s["reason"], NO_MACHINE, "{args}");
    }
    // Unknown machines and unmatched tags are cancelled the same way.
    let id = c.create(json!([]), json!({"machine": "nope"}))?;
    assert_eq!(c.state(id)?["reason"], NO_MACHINE);
    let id = c.create(json!([]), json!({"tags": ["special"]}))?;
    assert_eq!(c.state(id)?["reason"], NO_MACHINE);
    // Ids were consumed by the cancelled jobs.
    assert_eq!(c.create(json!([]), json!({"tags": []}))?, 9);
    Ok(())
}

#[test]
fn narrow_and_tiny_machines_wrap() -> TestResult {
    for dialect in BOTH {
        let (_s, mut c) = fresh_as(dialect, Machine::new("m", 1, 2))?;
        let id = c.create(json!([1, 1]), json!({}))?;
        assert_eq!(c.boards(id)?, triads(0, 0, 1, 1));
        assert_eq!(size(&mut c, id)?, (12, 16));

        let (_s, mut c) = fresh_as(dialect, Machine::new("m", 1, 1))?;
        let id = c.create(json!([1, 1]), json!({}))?;
        assert_eq!(c.boards(id)?, triads(0, 0, 1, 1));
        assert_eq!(size(&mut c, id)?, (12, 12));
    }
    Ok(())
}

#[test]
fn four_board_jobs_on_a_4x2_machine() -> TestResult {
    for dialect in BOTH {
        let (_s, mut c) = fresh_as(dialect, Machine::new("m", 4, 2))?;
        let want = [
            (triads(0, 0, 1, 2), (16, 24)),
            (triads(1, 0, 1, 2), (16, 24)),
            (triads(2, 0, 2, 1), (28, 16)),
            (triads(2, 1, 2, 1), (28, 16)),
        ];
        for (bs, sz) in want {
            let id = c.create(json!([4]), json!({}))?;
            assert_eq!(c.boards(id)?, bs, "{dialect}");
            assert_eq!(size(&mut c, id)?, sz, "{dialect}");
        }
        let id = c.create(json!([4]), json!({}))?;
        assert_eq!(c.state_num(id)?, 1, "{dialect}");
    }

    let (_s, mut c) = fresh(Machine::new("m", 4, 2))?;
    let id = c.create(json!([9]), json!({"min_ratio": 1}))?;
    assert_eq!(c.boards(id)?, triads(0, 0, 2, 2));
    assert_eq!(size(&mut c, id)?, (28, 24));
    Ok(())
}

#[test]
fn dead_boards_shape_allocations() -> TestResult {
    let (_s, mut c) = fresh(Machine::new("m", 2, 2).dead_boards([(0, 0, 1)]))?;
    let a = c.create(json!([1, 1]), json!({"max_dead_boards": 0}))?;
    let b = c.create(json!([1, 1]), json!({"max_dead_boards": 0}))?;
    let d = c.create(json!([1, 1]), json!({}))?;
    assert_eq!(c.boards(a)?, triads(0, 1, 1, 1));
    assert_eq!(c.boards(b)?, triads(1, 0, 1, 1));
    assert_eq!(c.boards(d)?, boards(&[(0, 0, 0), (0, 0, 2)]));
    for id in [a, b, d] {
        assert_eq!(size(&mut c, id)?, (16, 16));
    }
    // The dead board is listed by list_machines.
    let machines = c.call("list_machines", json!([]), json!({}))?;
    assert_eq!(machines[0]["dead_boards"], json!([[0, 0, 1]]));

    let (_s, mut c) = fresh(Machine::new("m", 2, 2).dead_boards([(0, 0, 0)]))?;
    for kwargs in [json!({}), json!({"max_dead_boards": 1})] {
        let id = c.create(json!([2, 2]), kwargs)?;
        assert_eq!(c.state(id)?["reason"], NO_MACHINE);
    }
    Ok(())
}

#[test]
fn dead_links_shape_allocations() -> TestResult {
    let m = || {
        Machine::new("m", 2, 2).dead_links([(0, 0, 0, Link::NorthEast), (0, 0, 1, Link::SouthWest)])
    };
    let (_s, mut c) = fresh(m())?;
    let id = c.create(json!([1, 1]), json!({"max_dead_links": 0}))?;
    assert_eq!(c.boards(id)?, triads(0, 1, 1, 1));
    assert_eq!(size(&mut c, id)?, (16, 16));
    let machines = c.call("list_machines", json!([]), json!({}))?;
    assert_eq!(
        machines[0]["dead_links"],
        json!([[0, 0, 0, 1], [0, 0, 1, 4]])
    );

    let (_s, mut c) = fresh(m())?;
    let id = c.create(json!([1, 1]), json!({"max_dead_links": 2}))?;
    assert_eq!(c.boards(id)?, triads(0, 0, 1, 1));
    Ok(())
}

#[test]
fn single_board_machine() -> TestResult {
    let (_s, mut c) = fresh(Machine::single_board("one", "10.0.0.1"))?;
    let a = c.create(json!([]), json!({}))?;
    assert_eq!(c.boards(a)?, boards(&[(0, 0, 0)]));
    assert_eq!(size(&mut c, a)?, (8, 8));
    assert_eq!(c.info(a)?["connections"], json!([[[0, 0], "10.0.0.1"]]));
    let b = c.create(json!([1, 1]), json!({}))?;
    assert_eq!(c.state_num(b)?, 1);

    let (_s, mut c) = fresh(Machine::single_board("one", "10.0.0.1"))?;
    let id = c.create(json!([3]), json!({"max_dead_boards": 0}))?;
    assert_eq!(c.state(id)?["reason"], NO_MACHINE);
    Ok(())
}

#[test]
fn specific_board_then_any_boards() -> TestResult {
    for dialect in BOTH {
        let (_s, mut c) = fresh_as(dialect, Machine::new("m", 2, 2))?;
        let mut got = Vec::new();
        for args in [json!([1, 1, 2]), json!([]), json!([]), json!([])] {
            let id = c.create(args, json!({}))?;
            assert_eq!(size(&mut c, id)?, (8, 8));
            got.push(c.boards(id)?);
        }
        assert_eq!(
            got,
            vec![
                boards(&[(1, 1, 2)]),
                boards(&[(1, 1, 0)]),
                boards(&[(1, 1, 1)]),
                boards(&[(0, 0, 0)])
            ],
            "{dialect}"
        );
    }
    Ok(())
}

#[test]
fn released_boards_of_a_shared_triad_come_back_in_set_pop_order() -> TestResult {
    // Boards 0 and 1 of a triad taken, board 0 released: the next two
    // single-board jobs get board 2 and then board 0 (CPython's set order).
    for dialect in BOTH {
        let (_s, mut c) = fresh_as(dialect, Machine::new("m", 1, 1))?;
        let a = c.create(json!([]), json!({}))?;
        let _b = c.create(json!([]), json!({}))?;
        c.call("destroy_job", json!([a]), json!({}))?;
        let d = c.create(json!([]), json!({}))?;
        let e = c.create(json!([]), json!({}))?;
        assert_eq!(c.boards(d)?, boards(&[(0, 0, 2)]), "{dialect}");
        assert_eq!(c.boards(e)?, boards(&[(0, 0, 0)]), "{dialect}");
    }
    Ok(())
}

#[test]
fn jobs_go_to_the_first_machine_with_room() -> TestResult {
    let server = start(vec![
        Machine::new("a", 1, 1),
        Machine::new("b", 1, 1).base_ip("10.0.0.0".parse()?),
        Machine::new("c", 1, 1)
            .tags(["other"])
            .base_ip("10.1.0.0".parse()?),
    ])?;
    let mut c = Client::connect(server.local_addr())?;
    let x = c.create(json!([1, 1]), json!({}))?;
    let y = c.create(json!([1, 1]), json!({}))?;
    let z = c.create(json!([1, 1]), json!({}))?;
    let names: Vec<Value> = [x, y]
        .iter()
        .map(|&id| c.info(id).map(|i| i["machine_name"].clone()))
        .collect::<TestResult<_>>()?;
    assert_eq!(names, vec![json!("a"), json!("b")]);
    // The third waits on both default machines; freeing b lets it in there.
    assert_eq!(c.state_num(z)?, 1);
    c.call("destroy_job", json!([y]), json!({}))?;
    assert_eq!(c.info(z)?["machine_name"], "b");
    // A job for tag "other" goes only to c; one for machine c likewise.
    let t = c.create(json!([]), json!({"tags": ["other"]}))?;
    assert_eq!(c.info(t)?["machine_name"], "c");
    let list = c.call("list_machines", json!([]), json!({}))?;
    assert_eq!(
        list,
        json!([
            {"name": "a", "tags": ["default"], "width": 1, "height": 1, "dead_boards": [], "dead_links": []},
            {"name": "b", "tags": ["default"], "width": 1, "height": 1, "dead_boards": [], "dead_links": []},
            {"name": "c", "tags": ["other"], "width": 1, "height": 1, "dead_boards": [], "dead_links": []},
        ])
    );
    Ok(())
}
