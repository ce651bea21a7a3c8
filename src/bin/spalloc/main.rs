//! The `spalloc` command-line tool.

fn main() {}
