//! The documentation against what it documents: the README's library
//! example must be the crate documentation's (which `cargo test`
//! compiles), the guide's must be a test that runs, and `docs/` must name
//! every flag, exit status and `--json` field of the real binary
//! (`reference`).

use std::path::Path;

pub fn read(name: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(name)).expect("read file")
}

/// The body of the first fenced block after `opening`.
fn first_block(text: &str, opening: &str) -> Option<String> {
    let start = text.find(opening)? + opening.len();
    let rest = &text[start..];
    let body = &rest[rest.find('\n')? + 1..];
    Some(body[..body.find("```")?].to_owned())
}

#[test]
fn readme_example_is_the_crate_example() {
    let lib: String = read("src/lib.rs")
        .lines()
        .filter_map(|l| l.strip_prefix("//!"))
        .map(|l| l.strip_prefix(' ').unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n");
    let crate_example = first_block(&lib, "```no_run").expect("crate example");
    let readme_example = first_block(&read("README.md"), "```rust,no_run").expect("README example");
    assert_eq!(readme_example, crate_example);
}

#[test]
fn readme_gives_the_two_commands_ci_runs() {
    let readme = read("README.md");
    let quick = first_block(&readme, "```sh").expect("quick start block");
    let commands: Vec<&str> = quick.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(commands.len(), 2, "{quick}");
    assert!(commands[0].contains("alloc --virtual"));
    assert_eq!(commands[1], "cargo test");
    assert!(read(".ci/run").lines().any(|l| l.trim() == "cargo test"));
}

mod guide_example;
mod reference;

#[test]
fn the_guide_example_is_the_test_that_runs() {
    let guide = read("docs/guide.md");
    let example = first_block(&guide, "```rust").expect("the guide's Rust example");
    let test = read("tests/docs/guide_example.rs");
    let body = test
        .split("// guide: begin\n")
        .nth(1)
        .and_then(|t| t.split("// guide: end\n").next())
        .expect("the markers");
    assert_eq!(example, body);
}
