//! `spalloc man`: the manual page, spalloc(1), as roff, written from the
//! flag declarations in `args` and the notes in `help`, so that it lists
//! exactly the flags the commands accept.

use std::process::ExitCode;

use crate::args::{Count, ManArgs, Section, Sub};
use crate::exit::CliResult;
use crate::help::{self, COMMAND_ENVIRONMENT};
use crate::{Ctx, VERSION, print};

/// Runs `spalloc man`.
pub fn run(_args: ManArgs, _ctx: &Ctx) -> CliResult {
    print(&page())?;
    Ok(ExitCode::SUCCESS)
}

/// Text made safe for roff: backslashes and hyphens escaped, and a line
/// that would start with a control character protected.
fn roff(text: &str) -> String {
    let escaped = text.replace('\\', "\\e").replace('-', "\\-");
    escaped
        .lines()
        .map(|l| {
            if l.starts_with('.') || l.starts_with('\'') {
                format!("\\&{l}")
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `\fBbold\fR`.
fn bold(text: &str) -> String {
    format!("\\fB{}\\fR", roff(text))
}

/// `\fIitalic\fR`.
fn italic(text: &str) -> String {
    format!("\\fI{}\\fR", roff(text))
}

/// A flag's invocation: spellings in bold, value names in italics.
fn invocation(spec: &crate::args::Spec) -> String {
    let names: Vec<String> = spec.names.iter().map(|n| bold(n)).collect();
    let value = spec.value_synopsis();
    if value.is_empty() {
        names.join(", ")
    } else {
        let value: Vec<String> = value
            .split(' ')
            .map(|w| {
                let core = w.trim_matches(|c| c == '[' || c == ']' || c == '.');
                w.replace(core, &italic(core))
            })
            .collect();
        format!("{} {}", names.join(", "), value.join(" "))
    }
}

/// The whole page.
pub fn page() -> String {
    let mut out = format!(
        ".TH SPALLOC 1 \"\" \"spalloc {VERSION}\" \"User Commands\"\n\
         .nh\n\
         .ad l\n\
         .SH NAME\n\
         spalloc \\- request SpiNNaker boards from a spalloc server, and manage them\n\
         .SH SYNOPSIS\n"
    );
    for sub in Sub::ALL {
        let (flags, positionals) = help::synopsis_atoms(&sub.syntax(), false);
        out.push_str(&format!(
            ".PP\n.B spalloc {}\n{}\n",
            sub.name(),
            roff(&[flags, positionals].concat().join(" "))
        ));
    }
    out.push_str(&format!(
        ".PP\n.B spalloc\n{}\n\
         .SH DESCRIPTION\n\
         {}\n.PP\n{}\n",
        roff("[alloc options] [WHAT...] [-c COMMAND...]"),
        roff(
            "spalloc asks a spalloc server for SpiNNaker boards, holds them while \
             they are used, and releases them: the Python spalloc tools in one \
             binary, with the same flags, output and exit codes."
        ),
        roff(
            "Without a command, the arguments are those of spalloc alloc. A link to \
             the binary named spalloc-job, spalloc-ps, spalloc-machine or \
             spalloc-where-is behaves as that Python tool did. Flags may be \
             abbreviated to any unique prefix, may be given as --flag=VALUE, and \
             the last of a repeated flag wins, as with the Python tools."
        ),
    ));
    out.push_str(".SH COMMANDS\n");
    for sub in Sub::ALL {
        let syntax = sub.syntax();
        out.push_str(&format!(
            ".SS \"spalloc {}\"\n{}\n",
            sub.name(),
            roff(&syntax.about)
        ));
        if let Some(py) = sub.legacy_name() {
            out.push_str(&format!(".PP\nReplaces the Python tool {}.\n", bold(py)));
        }
        for p in syntax.positionals.iter().filter(|p| p.count != Count::Fed) {
            out.push_str(&format!(".TP\n{}\n{}\n", italic(&p.name), roff(&p.help)));
        }
        for section in [Section::Options, Section::Server] {
            for spec in syntax
                .flags
                .iter()
                .filter(|f| !f.hidden && f.section == section)
            {
                out.push_str(&format!(
                    ".TP\n{}\n{}\n",
                    invocation(spec),
                    roff(&spec.help)
                ));
            }
        }
        for (title, body) in help::notes(sub) {
            if title == "exit status" {
                continue;
            }
            out.push_str(&format!(
                ".PP\n{}:\n.nf\n{}\n.fi\n",
                roff(&capitalise(title)),
                roff(body.trim_end())
            ));
        }
        out.push_str(".PP\nExit status:\n");
        for (code, meaning) in help::exit_statuses(sub) {
            out.push_str(&format!(".TP\n{}\n{}\n", bold(code), roff(meaning)));
        }
    }
    out.push_str(".SH ENVIRONMENT\n");
    let environment: Vec<(&str, String)> = [
        (
            "NO_COLOR",
            "when set and not empty, --color auto does not colour",
        ),
        (
            "TERM",
            "dumb turns off colour (under auto) and cursor movement",
        ),
        (
            "TMPDIR",
            "where alloc writes the Ethernet CSV file (default /tmp)",
        ),
        (
            "XDG_CONFIG_HOME, XDG_CONFIG_DIRS",
            "where the user and system configuration files are looked for",
        ),
        (
            "RUST_LOG",
            "what is logged on stderr (default: warnings; --debug: everything)",
        ),
    ]
    .into_iter()
    .map(|(n, v)| (n, v.to_owned()))
    .chain(
        COMMAND_ENVIRONMENT
            .iter()
            .map(|(n, v)| (*n, format!("set for the alloc -c command: {v}"))),
    )
    .collect();
    for (name, meaning) in environment {
        out.push_str(&format!(".TP\n{}\n{}\n", bold(name), roff(&meaning)));
    }
    out.push_str(&format!(
        ".SH FILES\n\
         Settings are read from the [spalloc] section of each of these files, \
         a later one overriding an earlier one key by key; flags override them all.\n\
         .TP\n{}\n{}\n.TP\n{}\n{}\n.TP\n{}\n{}\n\
         .PP\n{}\n\
         .SH SEE ALSO\n{}\n",
        bold("/etc/xdg/spalloc"),
        roff("system-wide (the first directory of XDG_CONFIG_DIRS)"),
        bold("~/.config/spalloc"),
        roff("the user's (XDG_CONFIG_HOME)"),
        bold("./.spalloc"),
        roff("the current directory's"),
        roff(
            "The keys are hostname, owner, port, keepalive, reconnect_delay, timeout, \
             machine, tags, min_ratio, max_dead_boards, max_dead_links, \
             require_torus and ignore_version; spalloc config shows each one's \
             value and where it came from."
        ),
        roff(
            "The reference pages and guide in the docs/ directory of the spalloc \
             repository; spalloc completions bash|zsh|fish."
        ),
    ));
    out
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roff_escapes() {
        assert_eq!(roff("a-b \\x\n.TH"), "a\\-b \\ex\n\\&.TH");
        assert_eq!(bold("--json"), "\\fB\\-\\-json\\fR");
    }

    #[test]
    fn invocations_mark_values() {
        let spec = Sub::Alloc
            .syntax()
            .flags
            .into_iter()
            .find(|f| f.canonical == "--machine")
            .expect("--machine");
        assert_eq!(
            invocation(&spec),
            "\\fB\\-m\\fR, \\fB\\-\\-machine\\fR [\\fIMACHINE\\fR]"
        );
    }
}
