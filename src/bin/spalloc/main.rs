//! The `spalloc` command-line tool.

// Nothing calls the output primitives until the subcommands land.
#[allow(dead_code)]
mod pyfmt;
#[allow(dead_code)]
mod term;

fn main() {}
