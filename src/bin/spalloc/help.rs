//! Help, written from the flag declarations in `args`: the usage synopsis
//! (in full for `--help`, short after a usage error, as argparse's is), one
//! entry per flag, and what a flag's line cannot hold (the `-c`
//! placeholders and environment, exit statuses). The man page and the shell
//! completions are written from the same declarations and the same notes.

use crate::args::{Count, Kind, Section, Spec, Sub, Syntax};

/// The width help is wrapped to, as argparse's on an 80-column terminal.
pub const WIDTH: usize = 80;

/// The column flag help starts in (argparse's `max_help_position`).
const HELP_COLUMN: usize = 24;

/// The flag as the synopsis shows it: its short spelling (else its first
/// long one) and its values, `-r JOB_ID`.
pub fn flag_synopsis(spec: &Spec) -> String {
    let name = spec
        .short()
        .or_else(|| spec.longs().next())
        .unwrap_or(&spec.canonical);
    let value = spec.value_synopsis();
    if value.is_empty() {
        name.to_owned()
    } else {
        format!("{name} {value}")
    }
}

/// The unbreakable pieces of a synopsis: the flags', and the positionals'
/// (with `-c COMMAND...`, which must come last). The short one (after a
/// usage error) folds every optional flag into `[options]`.
pub fn synopsis_atoms(syntax: &Syntax, short: bool) -> (Vec<String>, Vec<String>) {
    let shown: Vec<&Spec> = syntax.flags.iter().filter(|f| !f.hidden).collect();
    let mut atoms = Vec::new();
    if short {
        atoms.push("[options]".to_owned());
    }
    let mut groups: Vec<&str> = Vec::new();
    let mut rest = None;
    for spec in &shown {
        if spec.kind == Kind::Rest {
            rest = Some(format!("[{}]", flag_synopsis(spec)));
            continue;
        }
        match spec.exclusive {
            None if !short => atoms.push(format!("[{}]", flag_synopsis(spec))),
            None => {}
            Some(e) if groups.contains(&e.group) || (short && !e.required) => {}
            Some(e) => {
                groups.push(e.group);
                let members: Vec<String> = shown
                    .iter()
                    .filter(|f| f.exclusive == Some(e))
                    .map(|f| flag_synopsis(f))
                    .collect();
                let (open, close) = if e.required { ("(", ")") } else { ("[", "]") };
                let last = members.len() - 1;
                for (k, m) in members.iter().enumerate() {
                    atoms.push(format!(
                        "{}{m}{}",
                        if k == 0 { open } else { "" },
                        if k == last { close } else { " |" }
                    ));
                }
            }
        }
    }
    let mut positionals: Vec<String> = syntax
        .positionals
        .iter()
        .filter_map(|p| p.synopsis())
        .collect();
    positionals.extend(rest);
    (atoms, positionals)
}

/// Words joined into lines of at most [`WIDTH`] columns where they fit:
/// the first line starts with `lead`, the others with `indent` spaces.
fn fill(lead: &str, indent: usize, words: &[String]) -> String {
    let mut out = String::from(lead);
    let mut column = lead.chars().count();
    let mut first = true;
    for word in words {
        let len = word.chars().count();
        if !first && column + 1 + len > WIDTH {
            out.push('\n');
            out.push_str(&" ".repeat(indent));
            column = indent;
        } else if !first {
            out.push(' ');
            column += 1;
        }
        out.push_str(word);
        column += len;
        first = false;
    }
    out
}

/// `text` wrapped to `width` columns, every line indented by `indent`.
pub fn wrap(text: &str, indent: usize, width: usize) -> String {
    let words: Vec<String> = text.split_whitespace().map(str::to_owned).collect();
    let pad = " ".repeat(indent);
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in words {
        if !line.is_empty() && indent + line.chars().count() + 1 + word.chars().count() > width {
            lines.push(format!("{pad}{line}"));
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&word);
    }
    if !line.is_empty() {
        lines.push(format!("{pad}{line}"));
    }
    lines.join("\n")
}

/// The usage synopsis, `usage: PROG …`; `short` after an error. As with
/// argparse, when it needs more than one line the positionals start a line
/// of their own.
pub fn usage(prog: &str, syntax: &Syntax, short: bool) -> String {
    let lead = format!("usage: {prog} ");
    let indent = lead.chars().count();
    let (flags, positionals) = synopsis_atoms(syntax, short);
    let all: Vec<String> = flags.iter().chain(&positionals).cloned().collect();
    let one = fill(&lead, indent, &all);
    if !one.contains('\n') || flags.is_empty() || positionals.is_empty() {
        return one;
    }
    format!(
        "{}\n{}",
        fill(&lead, indent, &flags),
        fill(&" ".repeat(indent), indent, &positionals)
    )
}

/// A flag's spellings and values as its help entry shows them:
/// `-r, --resume JOB_ID`.
pub fn invocation(spec: &Spec) -> String {
    let value = spec.value_synopsis();
    let names = spec.names.join(", ");
    if value.is_empty() {
        names
    } else {
        format!("{names} {value}")
    }
}

/// One entry of the help: the invocation, and its help from
/// [`HELP_COLUMN`], wrapped.
fn entry(invocation: &str, help: &str) -> String {
    let lead = format!("  {invocation}");
    let text = wrap(help, HELP_COLUMN, WIDTH);
    if text.is_empty() {
        return lead;
    }
    if lead.chars().count() + 2 <= HELP_COLUMN {
        let pad = HELP_COLUMN - lead.chars().count();
        format!("{lead}{}{}", " ".repeat(pad), &text[HELP_COLUMN..])
    } else {
        format!("{lead}\n{text}")
    }
}

/// `PROG --help`.
pub fn help(sub: Sub, prog: &str) -> String {
    let syntax = sub.syntax();
    let mut out = usage(prog, &syntax, false);
    out.push_str("\n\n");
    out.push_str(&wrap(&syntax.about, 0, WIDTH));
    out.push('\n');
    let positionals: Vec<String> = syntax
        .positionals
        .iter()
        .filter(|p| p.count != Count::Fed)
        .map(|p| entry(&p.name, &p.help))
        .collect();
    if !positionals.is_empty() {
        out.push_str("\npositional arguments:\n");
        out.push_str(&positionals.join("\n"));
        out.push('\n');
    }
    for (section, title) in [
        (Section::Options, "options"),
        (Section::Server, "server options"),
    ] {
        let entries: Vec<String> = syntax
            .flags
            .iter()
            .filter(|f| !f.hidden && f.section == section)
            .map(|f| entry(&invocation(f), &f.help))
            .collect();
        if !entries.is_empty() {
            out.push_str(&format!("\n{title}:\n"));
            out.push_str(&entries.join("\n"));
            out.push('\n');
        }
    }
    for (title, body) in notes(sub) {
        out.push_str(&format!("\n{title}:\n{body}"));
    }
    out
}

/// What follows a usage error's message: the short synopsis, and where the
/// rest is.
pub fn usage_after_error(sub: Sub, prog: &str) -> String {
    format!(
        "{}\nRun '{prog} --help' for every option.\n",
        usage(prog, &sub.syntax(), true)
    )
}

/// `spalloc --help`: the commands, from the same list as dispatch uses.
pub fn top_help() -> String {
    let mut out = String::from(
        "usage: spalloc <command> [<args>]\n       \
         spalloc [alloc options] [WHAT...] [-c COMMAND...]\n\n\
         Request SpiNNaker boards from a spalloc server, and manage them.\n\ncommands:\n",
    );
    for sub in Sub::ALL {
        let summary = match sub.legacy_name() {
            Some(py) => format!("{} ({py})", sub.summary()),
            None => sub.summary().to_owned(),
        };
        out.push_str(&entry(sub.name(), &summary));
        out.push('\n');
    }
    out.push_str(
        "\nWithout a command, the arguments are those of `spalloc alloc`.\n\
         Run `spalloc <command> --help` (or `spalloc help <command>`) for a\n\
         command's options, and `spalloc man | man -l -` for the manual.\n",
    );
    out
}

/// The `-c` placeholders, as the help lists them: `(names, value)`.
pub const PLACEHOLDERS: [(&str, &str); 5] = [
    (
        "{} {hostname}",
        "the IP address of chip (0, 0), the one to boot",
    ),
    ("{w} {width}", "the width of the allocation, in chips"),
    ("{h} {height}", "the height of the allocation, in chips"),
    (
        "{ethernet_ips}",
        "a CSV file (x,y,hostname) of every Ethernet-connected chip",
    ),
    ("{id}", "the job id"),
];

/// The environment the `-c` command gets: `(variable, value)`.
pub const COMMAND_ENVIRONMENT: [(&str, &str); 6] = [
    ("SPALLOC_JOB_ID", "the job id"),
    ("SPALLOC_HOSTNAME", "as {hostname}"),
    ("SPALLOC_WIDTH", "as {width}"),
    ("SPALLOC_HEIGHT", "as {height}"),
    ("SPALLOC_MACHINE", "the machine's name"),
    ("SPALLOC_ETHERNET_IPS", "as {ethernet_ips}"),
];

/// A two-column list, the first column `width` wide, indented by 2.
fn table(rows: &[(&str, &str)], width: usize) -> String {
    rows.iter()
        .map(|(a, b)| format!("  {a:<width$}  {b}\n"))
        .collect()
}

/// The notes after a subcommand's flags: `(title, body)`, the body already
/// wrapped and indented.
pub fn notes(sub: Sub) -> Vec<(&'static str, String)> {
    let mut notes = Vec::new();
    if sub == Sub::Alloc {
        let names: Vec<(String, &str)> = PLACEHOLDERS
            .iter()
            .map(|(n, v)| (n.split(' ').collect::<Vec<_>>().join(" or "), *v))
            .collect();
        let rows: Vec<(&str, &str)> = names.iter().map(|(n, v)| (n.as_str(), *v)).collect();
        notes.push((
            "the command (-c)",
            format!(
                "{}\n{}{}\n{}{}\n",
                wrap(
                    "Given as one word, the command runs through the shell (sh -c), so \
                     quoting, && and pipes work, and the values put in are quoted for \
                     the shell. Given as several words, it runs directly, with no shell. \
                     In each word, once the boards are ready:",
                    2,
                    WIDTH
                ),
                table(&rows, 18),
                wrap(
                    "Any other brace is left as it is; {{ and }} stand for { and }. \
                     The command also gets these environment variables:",
                    2,
                    WIDTH
                ),
                table(&COMMAND_ENVIRONMENT, 20),
                wrap(
                    "When the command ends, the job is destroyed (unless -D) and \
                     spalloc exits with the command's exit code, or 128+N if signal N \
                     ended it. Without -c, spalloc shows the allocation and holds it \
                     until Enter, end of input or Ctrl-C (with --json, it prints one \
                     JSON line and holds it until end of input).",
                    2,
                    WIDTH
                ),
            ),
        ));
    }
    if sub
        .syntax()
        .flags
        .iter()
        .any(|f| f.section == Section::Server)
    {
        notes.push((
            "configuration",
            format!(
                "{}\n",
                wrap(
                    "Defaults come from the [spalloc] section of the configuration files \
                     (on Linux /etc/xdg/spalloc, ~/.config/spalloc, then ./.spalloc, each \
                     overriding the one before); `spalloc config` shows them and where \
                     each came from.",
                    2,
                    WIDTH
                )
            ),
        ));
    }
    notes.push(("exit status", table(exit_statuses(sub), 7)));
    notes
}

/// Each exit status of a subcommand and what it means.
pub fn exit_statuses(sub: Sub) -> &'static [(&'static str, &'static str)] {
    const SERVER: &str = "could not reach the server, or the server raised an error";
    const USAGE: &str = "usage, configuration or server version error";
    match sub {
        Sub::Alloc => &[
            (
                "0",
                "ready, then Enter, end of input or Ctrl-C; or -c returned 0",
            ),
            (
                "1",
                "the job was destroyed before it was ready, or --resume of a dead job",
            ),
            (
                "2",
                "usage, configuration or server version error, or the job vanished",
            ),
            ("3", "the job entered a state spalloc does not know"),
            ("4", "Ctrl-C while connecting, queued or powering on"),
            (
                "5",
                "--queue-timeout: not ready in time (the job was destroyed)",
            ),
            (
                "6",
                "cannot connect, or the server raised an error, on create or resume",
            ),
            ("N", "the -c command's exit code"),
            ("126", "-c with several words: the program cannot be run"),
            ("127", "-c with several words: the program was not found"),
            (
                "128+N",
                "the command died from signal N; 143 SIGTERM, 129 SIGHUP to spalloc",
            ),
        ],
        Sub::Job => &[
            (
                "0",
                "done (a destroy of an unknown job included); Ctrl-C in --watch",
            ),
            (
                "1",
                "could not reach the server, or it failed; or the job was destroyed",
            ),
            ("2", USAGE),
            ("3", "no JOB_ID, and the owner has no live job, or several"),
            (
                "4",
                "Ctrl-C during --wait-ready; the board is not the job's",
            ),
            ("5", "--wait-ready: not ready within --ready-timeout"),
            ("7", "Ctrl-C while waiting for the power to change"),
            ("8", "the job cannot be powered in its state"),
            (
                "9",
                "--ethernet-ips, --report-problem: a queued, dead or unknown job",
            ),
        ],
        Sub::Ps => &[
            ("0", "done; Ctrl-C in --watch"),
            ("1", SERVER),
            ("2", USAGE),
        ],
        Sub::Machine => &[
            ("0", "done; Ctrl-C in --watch"),
            ("1", SERVER),
            ("2", USAGE),
            ("6", "no such machine"),
        ],
        Sub::Proxy => &[
            ("0", "stopped by Ctrl-C, SIGTERM or SIGHUP"),
            ("1", "server error, or the proxy failed for good"),
            ("2", USAGE),
            ("3", "no job with boards to proxy, or the job ended"),
        ],
        Sub::WhereIs => &[
            ("0", "found"),
            ("1", SERVER),
            ("2", USAGE),
            ("4", "nothing at that location"),
        ],
        Sub::Config => &[("0", "done"), ("2", "a configuration error")],
        Sub::Serve => &[
            ("0", "stopped by Ctrl-C, SIGTERM or SIGHUP"),
            ("1", "cannot listen, or cannot keep the state file"),
            ("2", "usage or server configuration error"),
        ],
        Sub::Completions | Sub::Man => &[("0", "done"), ("2", "usage error")],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_shows_value_names_and_groups() {
        let alloc = usage("spalloc alloc", &Sub::Alloc.syntax(), false);
        for part in [
            "[-h]",
            "[-r JOB_ID]",
            "[-m [MACHINE]]",
            "[-t TAG...]",
            "[--keepalive SECONDS]",
            "[WHAT...] [-c COMMAND...]",
        ] {
            assert!(alloc.contains(part), "{part} in\n{alloc}");
        }
        assert!(alloc.lines().all(|l| l.chars().count() <= WIDTH), "{alloc}");
        assert!(
            alloc
                .lines()
                .skip(1)
                .all(|l| l.starts_with("                     "))
        );
        assert_eq!(
            alloc.lines().last(),
            Some("                     [WHAT...] [-c COMMAND...]")
        );
        let where_is = usage("spalloc where-is", &Sub::WhereIs.syntax(), true);
        assert_eq!(
            where_is,
            "usage: spalloc where-is [options] (-b MACHINE X Y Z |\n                        \
             -p MACHINE CABINET FRAME BOARD | -c MACHINE X Y |\n                        \
             -j JOB_ID X Y | --ip ADDRESS)"
        );
        let job = usage("spalloc-job", &Sub::Job.syntax(), false);
        assert!(
            job.split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .contains(
                    "[-i | -w | -p | --power-off | -e | -D [REASON] | --wait-ready | \
                     --report-problem REASON | --keepalive]"
                ),
            "{job}"
        );
        assert_eq!(
            usage("spalloc job", &Sub::Job.syntax(), true),
            "usage: spalloc job [options] [JOB_ID]"
        );
        assert_eq!(
            usage("spalloc completions", &Sub::Completions.syntax(), true),
            "usage: spalloc completions [options] SHELL"
        );
    }

    #[test]
    fn entries_align_as_argparse_does() {
        assert_eq!(
            entry("-q, --quiet", "do not print status lines"),
            "  -q, --quiet           do not print status lines"
        );
        assert_eq!(
            entry("-b, -l, --board, --logical MACHINE X Y Z", "a board"),
            "  -b, -l, --board, --logical MACHINE X Y Z\n                        a board"
        );
    }

    #[test]
    fn every_help_fits_and_lists_every_flag() {
        for sub in Sub::ALL {
            let text = help(sub, &format!("spalloc {}", sub.name()));
            assert!(
                text.lines().all(|l| l.chars().count() <= WIDTH),
                "{sub:?}:\n{text}"
            );
            for spec in sub.syntax().flags.iter().filter(|f| !f.hidden) {
                assert!(text.contains(&invocation(spec)), "{sub:?}: {spec:?}");
            }
        }
    }
}
