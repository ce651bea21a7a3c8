//! `spalloc serve`: the virtual server in the foreground (placeholder until
//! the server module lands).

use crate::Ctx;
use crate::args::ServeArgs;
use crate::exit::{CliError, CliResult};

/// Runs `spalloc serve`.
pub fn run(_args: ServeArgs, _ctx: &Ctx) -> CliResult {
    Err(CliError::exit(1, "spalloc serve: not available yet"))
}
