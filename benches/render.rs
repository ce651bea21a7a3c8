//! Micro-benchmarks of the terminal renderers behind `spalloc machine NAME`
//! and `spalloc ps`, at the scale of a 1200-board machine (20 x 20 triads)
//! with 1000 single-board jobs.
//!
//! The renderers belong to the binary, not the library, so the module is
//! compiled into this benchmark from its source file rather than exposed
//! as public API for the benchmark's sake.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};

// The benchmark uses only some of what the module has.
#[allow(dead_code, unused_imports, unused_macros)]
#[path = "../src/bin/spalloc/render/mod.rs"]
mod render;

use render as term;
use render::{Cell, Style};

const WIDTH: u32 = 20;
const HEIGHT: u32 = 20;

fn live_boards() -> Vec<term::MapBoard> {
    let mut boards = Vec::new();
    for x in 0..WIDTH {
        for y in 0..HEIGHT {
            for z in 0..3 {
                boards.push((x, y, z));
            }
        }
    }
    boards
}

fn benches(c: &mut Criterion) {
    let live = live_boards();
    let mut group = c.benchmark_group("render");

    // 1000 one-board jobs on the first 1000 boards, keyed as
    // `spalloc machine` keys them.
    let keys: Vec<String> = (0..1000).map(term::job_key).collect();
    let job_boards: Vec<Vec<term::MapBoard>> = live[..1000].iter().map(|&b| vec![b]).collect();
    let jobs: Vec<term::MapJob<'_>> = keys
        .iter()
        .zip(&job_boards)
        .enumerate()
        .map(|(i, (key, boards))| (key.as_str(), i as u64 + 1, boards.as_slice()))
        .collect();
    let dead_links = [(3, 4, 0, 2), (10, 10, 1, 0)];
    group.bench_function("machine map, 1200 boards, 1000 jobs", |b| {
        b.iter(|| black_box(term::machine_map(&live, &jobs, &dead_links, false)))
    });
    group.bench_function("machine map, 1200 boards, 1000 jobs, colour", |b| {
        b.iter(|| black_box(term::machine_map(&live, &jobs, &dead_links, true)))
    });

    // 25 jobs of 4 x 4 triads (48 boards each) tiling the machine.
    let big_jobs: Vec<Vec<term::MapBoard>> = (0..25)
        .map(|j| {
            let (x0, y0) = ((j % 5) * 4, (j / 5) * 4);
            live.iter()
                .copied()
                .filter(|&(x, y, _)| (x0..x0 + 4).contains(&x) && (y0..y0 + 4).contains(&y))
                .collect()
        })
        .collect();
    let jobs: Vec<term::MapJob<'_>> = keys
        .iter()
        .zip(&big_jobs)
        .enumerate()
        .map(|(i, (key, boards))| (key.as_str(), i as u64 + 1, boards.as_slice()))
        .collect();
    group.bench_function("machine map, 1200 boards, 25 jobs of 48 boards", |b| {
        b.iter(|| black_box(term::machine_map(&live, &jobs, &dead_links, false)))
    });

    // The `spalloc ps` table of 1000 jobs.
    let rows: Vec<Vec<Cell>> = (1..=1000u64)
        .map(|id| {
            vec![
                Cell::from(id),
                Cell::from("ready").styled(Style::GREEN),
                Cell::from("on").styled(Style::GREEN),
                Cell::from(1u64),
                Cell::from("big"),
                Cell::from("23/11/2026 21:51:45"),
                Cell::from("60.0"),
                Cell::from("someone@example.org (127.0.0.1)"),
            ]
        })
        .collect();
    let header = [
        "ID",
        "State",
        "Power",
        "Boards",
        "Machine",
        "Created at",
        "Keepalive",
        "Owner (Host)",
    ];
    group.bench_function("ps table, 1000 jobs", |b| {
        b.iter(|| black_box(term::render_table(&header, &rows, false)))
    });
    group.bench_function("ps table, 1000 jobs, colour", |b| {
        b.iter(|| black_box(term::render_table(&header, &rows, true)))
    });
    group.bench_function("local time, 1000 start times", |b| {
        b.iter(|| {
            for i in 0..1000 {
                black_box(term::format_local_time(1_795_470_705.607 + f64::from(i)));
            }
        })
    });
    group.finish();
}

criterion_group!(render_benches, benches);
criterion_main!(render_benches);
