//! The `spalloc` command-line tool: `alloc`, `job`, `ps`, `machine`,
//! `where-is`, `config` and `serve`, drop-in replacements for the Python
//! tools `spalloc`, `spalloc-job`, `spalloc-ps`, `spalloc-machine` and
//! `spalloc-where-is`, and `completions` and `man` to document them.
//!
//! `main` only works out which subcommand runs (from the program name or the
//! first argument), parses its arguments, and turns the subcommand's result
//! into an exit code. Each subcommand lives in its own file and reaches the
//! library only through its public API; what they share is in `args`
//! (syntax), `help` (help and usage written from that syntax), `settings`
//! (flags and configuration resolved), `render` (everything shown),
//! `watch`, `signals` and `exit`.

#![forbid(unsafe_code)]

mod alloc;
mod args;
mod completions;
mod config_cmd;
mod exit;
mod help;
mod job;
mod keeper;
mod machine;
mod man;
mod proxy;
mod ps;
mod render;
mod serve;
mod settings;
mod signals;
mod watch;
mod where_is;

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use argh::FromArgs;

use crate::args::{
    AllocArgs, Common, CompletionsArgs, ConfigArgs, JobArgs, MachineArgs, ManArgs, Normalised,
    ProxyArgs, PsArgs, ServeArgs, Sub, Syntax, WhereIsArgs,
};
use crate::exit::{CliError, CliResult, is_broken_pipe};
use crate::settings::Term;

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Everything a subcommand needs besides its arguments.
#[derive(Debug)]
pub struct Ctx {
    /// The program name for messages, e.g. `spalloc ps` or `spalloc-ps`.
    pub prog: String,
    /// What stdout and stderr can do.
    pub term: Term,
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let program = argv
        .first()
        .map(Path::new)
        .and_then(Path::file_name)
        .map(|n| n.to_string_lossy().trim_end_matches(".exe").to_owned())
        .unwrap_or_else(|| "spalloc".to_owned());
    let rest = argv.get(1..).unwrap_or_default();

    let (sub, prog, args) = if let Some(sub) = Sub::from_legacy_name(&program) {
        (sub, program, rest)
    } else {
        let first = rest.first().map(String::as_str);
        match (first, first.and_then(Sub::from_name)) {
            (Some(name), Some(sub)) => (sub, format!("spalloc {name}"), &rest[1..]),
            // `spalloc help ps` is `spalloc ps --help`.
            (Some("help"), _) => match rest.get(1).map(|n| (n, Sub::from_name(n))) {
                Some((name, Some(sub))) => {
                    (sub, format!("spalloc {name}"), &["--help".to_owned()][..])
                }
                Some((name, None)) => return unknown_command(name),
                None => return print_stdout(&help::top_help()),
            },
            (Some("-h" | "--help"), _) => return print_stdout(&help::top_help()),
            (Some("-V" | "--version"), _) => return print_stdout(&format!("{VERSION}\n")),
            // A word that is neither a command, an option nor a number is
            // a mistyped command, not a WHAT of the old command line.
            (Some(word), None) if looks_like_command(word) => return unknown_command(word),
            // The old `spalloc WHAT… [-c …]` command line.
            _ => (Sub::Alloc, "spalloc".to_owned(), rest),
        }
    };
    let normalised = match args::normalise(sub, args) {
        Ok(normalised) if normalised.help => return print_stdout(&help::help(sub, &prog)),
        Ok(normalised) => normalised,
        Err(message) => return usage_error(sub, &prog, &message),
    };
    match sub {
        Sub::Alloc => dispatch::<AllocArgs>(sub, &prog, normalised, alloc::run),
        Sub::Job => dispatch::<JobArgs>(sub, &prog, normalised, |a, ctx, _| job::run(a, ctx)),
        Sub::Proxy => dispatch::<ProxyArgs>(sub, &prog, normalised, |a, ctx, _| proxy::run(a, ctx)),
        Sub::Ps => dispatch::<PsArgs>(sub, &prog, normalised, |a, ctx, _| ps::run(a, ctx)),
        Sub::Machine => {
            dispatch::<MachineArgs>(sub, &prog, normalised, |a, ctx, _| machine::run(a, ctx))
        }
        Sub::WhereIs => {
            dispatch::<WhereIsArgs>(sub, &prog, normalised, |a, ctx, _| where_is::run(a, ctx))
        }
        Sub::Config => {
            dispatch::<ConfigArgs>(sub, &prog, normalised, |a, ctx, _| config_cmd::run(a, ctx))
        }
        Sub::Serve => dispatch::<ServeArgs>(sub, &prog, normalised, |a, ctx, _| serve::run(a, ctx)),
        Sub::Completions => dispatch::<CompletionsArgs>(sub, &prog, normalised, |a, ctx, _| {
            completions::run(a, ctx)
        }),
        Sub::Man => dispatch::<ManArgs>(sub, &prog, normalised, |a, ctx, _| man::run(a, ctx)),
    }
}

/// Whether the first argument was meant as a command: not an option, not
/// a number (the old `spalloc WHAT…`) and not empty.
fn looks_like_command(word: &str) -> bool {
    !word.is_empty() && !word.starts_with('-') && word.parse::<f64>().is_err()
}

/// `spalloc: error: unknown command 'WORD'`, the commands, and where to
/// read more; exit 2.
fn unknown_command(word: &str) -> ExitCode {
    let names: Vec<&str> = Sub::ALL.iter().map(|s| s.name()).collect();
    let mut err = std::io::stderr().lock();
    let _ = writeln!(
        err,
        "spalloc: error: unknown command '{}' (not a command, and not a number of boards for `spalloc alloc`)\n\
         usage: spalloc <command> [<args>]\n\
         The commands are {}.\n\
         Run 'spalloc --help' for more.",
        render::visible(word),
        names.join(", ")
    );
    ExitCode::from(exit::code::USAGE)
}

/// Parses, handles version and usage errors, runs, and reports.
fn dispatch<T: FromArgs + Common>(
    sub: Sub,
    prog: &str,
    normalised: Normalised,
    run: impl FnOnce(T, &Ctx, Option<Vec<String>>) -> CliResult,
) -> ExitCode {
    // argparse checks each value given, even one a later one overrides.
    for [flag, value] in &normalised.overridden {
        if let Err(early) = T::from_args(&[prog], &[flag, value]) {
            return usage_error(sub, prog, &argparse_wording(&early.output, &sub.syntax()));
        }
    }
    let argv: Vec<&str> = normalised.argv.iter().map(String::as_str).collect();
    let parsed = match T::from_args(&[prog], &argv) {
        Ok(parsed) => parsed,
        Err(early) => {
            return match early.status {
                Ok(()) => print_stdout(&help::help(sub, prog)),
                Err(()) => usage_error(sub, prog, &argparse_wording(&early.output, &sub.syntax())),
            };
        }
    };
    // As argparse does, `-V` wins over what is only found wrong once every
    // argument has been read.
    if parsed.wants_version() {
        return print_stdout(&format!("{VERSION}\n"));
    }
    if let Some(message) = normalised.late_error {
        return usage_error(sub, prog, &message);
    }
    init_logging(parsed.debug());
    let ctx = Ctx {
        prog: prog.to_owned(),
        term: Term::detect(parsed.colour()),
    };
    match run(parsed, &ctx, normalised.command) {
        Ok(code) => code,
        Err(CliError::Usage(message)) => usage_error(sub, prog, &message),
        Err(CliError::Exit { code, message }) => {
            if let Some(m) = message {
                // Most messages quote a server or a file somewhere.
                let _ = writeln!(std::io::stderr(), "{}", render::visible_lines(&m));
            }
            ExitCode::from(code)
        }
        Err(CliError::Output(e)) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(CliError::Output(e)) => {
            let _ = writeln!(
                std::io::stderr(),
                "{prog}: cannot write output: {}",
                exit::plain(&e)
            );
            ExitCode::from(exit::code::FAILED)
        }
    }
}

/// `PROG: error: MESSAGE` and the short usage on stderr; exit 2.
fn usage_error(sub: Sub, prog: &str, message: &str) -> ExitCode {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{prog}: error: {}", render::visible_lines(message));
    let _ = err.write_all(help::usage_after_error(sub, prog).as_bytes());
    ExitCode::from(exit::code::USAGE)
}

/// The messages of Rust's integer and float parsers, by the type argparse
/// would name.
const PARSE_REASONS: [(&str, &str); 6] = [
    ("int", "invalid digit found in string"),
    ("int", "cannot parse integer from empty string"),
    ("int", "number too large to fit in target type"),
    ("int", "number too small to fit in target type"),
    ("float", "invalid float literal"),
    ("float", "cannot parse float from empty string"),
];

/// An argh error message in argparse's words (`argument --port/-P:
/// invalid int value: 'abc'`, `unrecognized arguments: --frob`), which the
/// Python tools' users know and §1.3 asks for, naming a flag by all its
/// spellings as argparse does. Anything else is kept as argh put it.
fn argparse_wording(message: &str, syntax: &Syntax) -> String {
    let m = message.trim_end();
    if let Some(arg) = m.strip_prefix("Unrecognized argument: ") {
        return format!("unrecognized arguments: {}", arg.trim_matches('"'));
    }
    if let Some(opt) = m
        .strip_prefix("No value provided for option '")
        .and_then(|r| r.strip_suffix("'."))
    {
        let name = syntax
            .flags
            .iter()
            .find(|f| f.canonical == opt)
            .map_or(opt, |f| f.argparse_name.as_str());
        return format!("argument {name}: expected one argument");
    }
    let rest = m
        .strip_prefix("Error parsing option '")
        .or_else(|| m.strip_prefix("Error parsing positional argument '"));
    let Some((name, rest)) = rest.and_then(|r| r.split_once("' with value '")) else {
        return m.to_owned();
    };
    let name = syntax
        .flags
        .iter()
        .find(|f| f.canonical == name)
        .map_or(name, |f| f.argparse_name.as_str());
    // The value may itself contain quotes, so recognise the reason from the
    // end when it is one of the parsers' own.
    for (kind, reason) in PARSE_REASONS {
        if let Some(value) = rest
            .strip_suffix(reason)
            .and_then(|r| r.strip_suffix("': "))
        {
            return format!("argument {name}: invalid {kind} value: '{value}'");
        }
    }
    match rest.split_once("': ") {
        Some((_, reason)) => format!("argument {name}: {reason}"),
        None => m.to_owned(),
    }
}

/// Writes to stdout, returning the error for `main` to judge (a closed pipe
/// is success there).
pub fn print(text: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

fn print_stdout(text: &str) -> ExitCode {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(_) => ExitCode::from(exit::code::FAILED),
    }
}

fn init_logging(debug: bool) {
    // Quiet by default: only the library's warnings (e.g. a job that could
    // not be destroyed). RUST_LOG still overrides.
    let default = if debug { "debug" } else { "warn" };
    let _ = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default))
        .format_timestamp_millis()
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argh_errors_in_argparse_words() {
        let cases = [
            (
                "Error parsing option '--port' with value 'abc': invalid digit found in string\n",
                "argument --port/-P: invalid int value: 'abc'",
            ),
            (
                "Error parsing option '--port' with value '99999': number too large to fit in target type\n",
                "argument --port/-P: invalid int value: '99999'",
            ),
            (
                "Error parsing option '--timeout' with value 'soon': invalid float literal\n",
                "argument --timeout: invalid float value: 'soon'",
            ),
            (
                "Error parsing positional argument 'job_id' with value 'x': y': invalid digit found in string\n",
                "argument job_id: invalid int value: 'x': y'",
            ),
            (
                "Error parsing option '--color' with value 'red': invalid choice: 'red' (choose from 'auto', 'always', 'never')\n",
                "argument --color/--colour: invalid choice: 'red' (choose from 'auto', 'always', 'never')",
            ),
            (
                "Unrecognized argument: --frob\n",
                "unrecognized arguments: --frob",
            ),
            (
                "Unrecognized argument: \"-x\"\n",
                "unrecognized arguments: -x",
            ),
            (
                "No value provided for option '--port'.\n",
                "argument --port/-P: expected one argument",
            ),
            ("Something else entirely.\n", "Something else entirely."),
        ];
        for (argh, argparse) in cases {
            assert_eq!(
                argparse_wording(argh, &Sub::Job.syntax()),
                argparse,
                "{argh:?}"
            );
        }
    }
}
