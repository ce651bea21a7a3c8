//! The command line as argparse read it, in every subcommand (a repeated
//! flag's last value wins, unique prefixes of long flags, `--flag=VALUE`,
//! argparse's messages and exit code 2, the short usage after an error),
//! and what is written from the flag declarations: `--help`, the shell
//! completions and the man page. All by running the real binary.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use spalloc::server::{Machine, ServerConfig, VirtualServer};
use spalloc::{JobRequest, ProtocolClient};

use crate::support::cli::{Output, Sandbox};

/// Every subcommand, as `spalloc --help` lists them.
pub const SUBCOMMANDS: [&str; 10] = [
    "alloc",
    "job",
    "proxy",
    "ps",
    "machine",
    "where-is",
    "config",
    "serve",
    "completions",
    "man",
];

/// The Python tools' names and the subcommands they stand for.
pub const LEGACY: [(&str, &str); 4] = [
    ("spalloc-job", "job"),
    ("spalloc-ps", "ps"),
    ("spalloc-machine", "machine"),
    ("spalloc-where-is", "where-is"),
];

fn server() -> VirtualServer {
    VirtualServer::start(ServerConfig::instant().machines(vec![Machine::new("m", 2, 2)]))
        .expect("start the virtual server")
}

fn sandbox(server: &VirtualServer) -> Sandbox {
    let sb = Sandbox::new();
    sb.use_server(server.local_addr());
    sb
}

fn client(server: &VirtualServer) -> ProtocolClient {
    crate::cli_views::client(server.local_addr())
}

/// A job for `owner`, ready.
fn ready_job(server: &VirtualServer, owner: &str) -> u64 {
    crate::cli_views::ready_job(&mut client(server), JobRequest::AnyBoard, owner)
}

#[track_caller]
fn ok(out: &Output) -> &str {
    out.expect_code(0);
    &out.stdout
}

/// The flags a `--help` lists: every spelling on each entry line.
pub fn flags_in_help(help: &str) -> BTreeSet<String> {
    help.lines()
        .filter_map(|l| l.strip_prefix("  -"))
        .flat_map(|l| {
            format!("-{l}")
                .split_whitespace()
                .map(|w| w.trim_end_matches(',').to_owned())
                .take_while(|w| w.starts_with('-'))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The flags of `spalloc SUB --help`.
pub fn flags_of(sb: &Sandbox, sub: &str) -> BTreeSet<String> {
    let out = sb.run(&[sub, "--help"]);
    let flags = flags_in_help(ok(&out));
    assert!(flags.contains("--help"), "{sub}: {flags:?}");
    flags
}

/// `spalloc SUB ARGS…` fails as a usage error with argparse's `message`,
/// the short usage and the hint, and nothing on stdout.
#[track_caller]
fn usage_error(sb: &Sandbox, args: &[&str], message: &str) {
    let out = sb.run(args);
    out.expect_code(2);
    assert_eq!(out.stdout, "");
    let prog = format!("spalloc {}", args[0]);
    let mut lines = out.stderr.lines();
    assert_eq!(
        lines.next(),
        Some(format!("{prog}: error: {message}").as_str()),
        "{args:?}"
    );
    assert_eq!(
        lines
            .next()
            .map(|l| l.starts_with(&format!("usage: {prog} [options]"))),
        Some(true),
        "{}",
        out.stderr
    );
    assert_eq!(
        out.stderr.lines().last(),
        Some(format!("Run '{prog} --help' for every option.").as_str())
    );
    // The short usage: the options are not listed one by one.
    assert!(!out.stderr.contains("[-V]"), "{}", out.stderr);
}

#[test]
fn repeated_abbreviated_and_attached_flags_in_every_subcommand() {
    let server = server();
    let sb = sandbox(&server);
    let port = server.local_addr().port().to_string();
    let port_eq = format!("--port={port}");
    let alice = ready_job(&server, "alice");

    // alloc: --own, --keep and --po abbreviate; the last owner, keepalive
    // and port win; `=` attaches values.
    let out = sb.run(&[
        "alloc",
        "--own",
        "someone",
        "--owner=bob",
        "--keep",
        "5",
        "--keepalive=-1",
        "--po",
        "1",
        &port_eq,
        "--no-d",
        "-q",
        "-c",
        "true",
    ]);
    ok(&out);
    let jobs = client(&server).list_jobs().expect("list");
    let bob = jobs
        .iter()
        .find(|j| j.owner.as_deref() == Some("bob"))
        .unwrap_or_else(|| panic!("bob's job: {jobs:?}"));
    assert_eq!(bob.keepalive, None, "the last --keepalive, -1, wins");
    let bob = bob.job_id;

    // job: the owner's only job, found through an abbreviated, repeated,
    // attached --owner.
    let out = sb.run(&[
        "job",
        "--own",
        "bob",
        "--owner=alice",
        "--por",
        "1",
        &port_eq,
        "--js",
    ]);
    let job: Value = serde_json::from_str(ok(&out)).expect("job JSON");
    assert_eq!(job["id"], alice);

    // ps
    let out = sb.run(&["ps", "--own=bob", "--owner", "alice", "--js", "--mach", "m"]);
    let jobs: Value = serde_json::from_str(ok(&out)).expect("ps JSON");
    assert_eq!(
        jobs.as_array()
            .map(|j| j.iter().map(|j| j["id"].clone()).collect::<Vec<_>>()),
        Some(vec![Value::from(alice)])
    );

    // machine
    let expected = sb.run(&["machine", "m", "-d"]);
    let out = sb.run(&["machine", "--deta", "--port", "1", &port_eq, "m"]);
    assert_eq!(ok(&out), ok(&expected));

    // where-is
    let id = alice.to_string();
    let expected = sb.run(&["where-is", "-j", &id, "0", "0"]);
    let out = sb.run(&[
        "where-is",
        "--job-c",
        &id,
        "0",
        "0",
        "--ign=yes",
        "--hostname=nowhere.invalid",
        "--ho",
        "127.0.0.1",
        "--por",
        &port,
    ]);
    assert_eq!(ok(&out), ok(&expected));

    // config
    let expected = sb.run(&["config", "--json"]);
    let out = sb.run(&["config", "--col", "always", "--colo=never", "--js"]);
    assert_eq!(ok(&out), ok(&expected));

    // completions and man
    let expected = sb.run(&["completions", "bash"]);
    let out = sb.run(&["completions", "--col=never", "--colour", "always", "bash"]);
    assert_eq!(ok(&out), ok(&expected));
    let expected = sb.run(&["man"]);
    let out = sb.run(&["man", "--col", "always", "--colo=never"]);
    assert_eq!(ok(&out), ok(&expected));

    // serve: the last dialect, the abbreviated --no-v2, the last port.
    let serve = sb.spawn(&[
        "serve",
        "--dial",
        "java",
        "--dialect=python",
        "--no",
        "--port",
        "1",
        "--port=0",
    ]);
    let line = serve.wait_for_stdout_line("dialect:", Duration::from_secs(20));
    assert_eq!(
        line.as_deref(),
        Some("dialect: python (version 1.1.0)"),
        "{}",
        serve.stderr()
    );
    assert!(!serve.stdout().contains("v2 service"), "{}", serve.stdout());
    assert!(serve.stdout().contains("listening on 127.0.0.1:"));
    drop(serve);

    let mut c = client(&server);
    c.destroy_job(bob, None).expect("destroy");
}

#[test]
fn ambiguous_prefixes_and_misused_flags_are_argparse_usage_errors() {
    let server = server();
    let sb = sandbox(&server);
    for (args, message) in [
        (
            &["alloc", "--ma", "1"][..],
            "ambiguous option: --ma could match --machine, --max-dead-boards, --max-dead-links",
        ),
        (
            &["alloc", "--re=1"],
            "ambiguous option: --re=1 could match --resume, --require-torus, --reconnect-delay",
        ),
        (
            &["job", "--po"],
            "ambiguous option: --po could match --power-on, --power-off, --port",
        ),
        (
            &["ps", "--h", "x"],
            "ambiguous option: --h could match --help, --hostname",
        ),
        (
            &["machine", "--de"],
            "ambiguous option: --de could match --detailed, --debug",
        ),
        (
            &["where-is", "--j", "1", "2", "3"],
            "ambiguous option: --j could match --job-chip, --json",
        ),
        (
            &["serve", "--p", "1"],
            "ambiguous option: --p could match --port, --power-delay",
        ),
        // A value given to a switch.
        (
            &["ps", "--watch=yes"],
            "argument --watch/-w: ignored explicit argument 'yes'",
        ),
        (
            &["alloc", "-qx"],
            "argument --quiet/-q: ignored explicit argument 'x'",
        ),
        (
            &["config", "--js=1"],
            "argument --json: ignored explicit argument '1'",
        ),
        (
            &["ps", "--ignore-version=perhaps"],
            "argument --ignore-version: invalid boolean value: 'perhaps' \
             (use yes/no, true/false, on/off or 1/0)",
        ),
        // Every value is checked, even one a later one overrides.
        (
            &["ps", "--port", "x", "--port", "1"],
            "argument --port/-P: invalid int value: 'x'",
        ),
        (
            &["job", "--owner", "--json"],
            "argument --owner/-o: expected one argument",
        ),
        (
            &["where-is", "--physical", "m", "0", "0"],
            "argument --physical/-p: expected 4 arguments",
        ),
        (
            &["job", "-w", "--destroy"],
            "argument --destroy/-D: not allowed with argument --watch/-w",
        ),
        (
            &["where-is", "--json"],
            "one of the arguments --board/-b/--logical/-l --physical/-p --chip/-c \
             --job-chip/-j is required",
        ),
        (
            &["machine", "a", "b", "--frob", "-x"],
            "unrecognized arguments: b --frob -x",
        ),
        (
            &["completions"],
            "the following arguments are required: SHELL",
        ),
        (
            &["completions", "tcsh"],
            "argument SHELL: invalid choice: 'tcsh' (choose from 'bash', 'zsh', 'fish')",
        ),
        (&["man", "page"], "unrecognized arguments: page"),
    ] {
        usage_error(&sb, args, message);
    }
    assert!(
        client(&server).list_jobs().expect("list").is_empty(),
        "a usage error creates nothing"
    );
    // -V and --help win over what is only found wrong at the end.
    let out = sb.run(&["where-is", "-V"]);
    assert_eq!(ok(&out), format!("{}\n", env!("CARGO_PKG_VERSION")));
    let out = sb.run(&["machine", "a", "b", "--hel"]);
    assert!(ok(&out).starts_with("usage: spalloc machine"));
}

#[test]
fn legacy_names_keep_argparse_reading() {
    let server = server();
    let sb = sandbox(&server);
    let alice = ready_job(&server, "alice");
    let out = sb.run_program(&sb.link("spalloc-ps"), &["--own", "alice", "--js"], None);
    assert!(
        ok(&out).contains(&format!("\"id\":{alice}")),
        "{}",
        out.stdout
    );
    let out = sb.run_program(&sb.link("spalloc-job"), &["--po"], None);
    out.expect_code(2);
    assert!(
        out.stderr.starts_with(
            "spalloc-job: error: ambiguous option: --po could match --power-on, --power-off, --port\n\
             usage: spalloc-job [options] [JOB_ID]\n"
        ),
        "{}",
        out.stderr
    );
}

/// The `-c` notes of `alloc --help`: the placeholders and variables listed.
fn command_notes(help: &str) -> (Vec<String>, BTreeSet<String>) {
    let notes = help
        .split("\nthe command (-c):\n")
        .nth(1)
        .and_then(|n| n.split("\n\n").next())
        .expect("the -c notes");
    let placeholders: Vec<String> = notes
        .lines()
        .filter(|l| l.starts_with("  {"))
        .flat_map(|l| {
            l.split("  ")
                .nth(1)
                .unwrap_or_default()
                .split(" or ")
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    let variables = notes
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("SPALLOC_"))
        .map(str::to_owned)
        .collect();
    (placeholders, variables)
}

#[test]
fn alloc_help_lists_what_the_command_really_gets() {
    let server = server();
    let sb = sandbox(&server);
    let help = sb.run(&["alloc", "--help"]);
    let help = ok(&help);
    for part in [
        "[-r JOB_ID]",
        "[-t TAG...]",
        "[-m [MACHINE]]",
        "[WHAT...] [-c COMMAND...]",
        "sh -c",
        "with no shell",
    ] {
        assert!(help.contains(part), "{part}:\n{help}");
    }
    let (placeholders, variables) = command_notes(help);
    assert_eq!(
        placeholders,
        [
            "{}",
            "{hostname}",
            "{w}",
            "{width}",
            "{h}",
            "{height}",
            "{ethernet_ips}",
            "{id}"
        ]
    );
    // Every placeholder listed is replaced, in both forms of the command...
    let line = placeholders.join("|");
    let out = sb.run(&["alloc", "-q", "-c", "echo", &line]);
    let words = ok(&out).trim_end().to_owned();
    assert!(!words.contains(['{', '}']), "{words}");
    assert_eq!(words.split('|').count(), placeholders.len());
    let out = sb.run(&["alloc", "-q", "-c", &format!("echo '{line}'; env")]);
    let shell = ok(&out);
    let first = shell.lines().next().unwrap_or_default();
    assert!(!first.contains(['{', '}']), "{first}");
    assert_eq!(first.split('|').count(), placeholders.len());
    // ... and the command's environment has exactly the variables listed.
    let given: BTreeSet<String> = shell
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, _)| k))
        .filter(|k| k.starts_with("SPALLOC_"))
        .map(str::to_owned)
        .collect();
    assert_eq!(given, variables);
}

#[test]
fn usage_lines_show_value_names_and_where_is_arities() {
    let sb = Sandbox::new();
    let help = sb.run(&["where-is", "--help"]);
    let usage: String = ok(&help)
        .split("\n\n")
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        usage.starts_with(
            "usage: spalloc where-is [-h] (-b MACHINE X Y Z | -p MACHINE CABINET FRAME BOARD \
             | -c MACHINE X Y | -j JOB_ID X Y | --ip ADDRESS) [--json]"
        ),
        "{usage}"
    );
    // After an error, only the short usage: for where-is, the forms.
    let out = sb.run(&["where-is", "-b", "m"]);
    out.expect_code(2);
    let short: Vec<&str> = out.stderr.lines().skip(1).collect();
    assert_eq!(
        short.join("\n"),
        "usage: spalloc where-is [options] (-b MACHINE X Y Z |\n                        \
         -p MACHINE CABINET FRAME BOARD | -c MACHINE X Y |\n                        \
         -j JOB_ID X Y | --ip ADDRESS)\n\
         Run 'spalloc where-is --help' for every option."
    );
    for sub in SUBCOMMANDS {
        let help = sb.run(&[sub, "--help"]);
        assert!(
            ok(&help).lines().all(|l| l.chars().count() <= 80),
            "{sub}:\n{}",
            help.stdout
        );
    }
    let top = sb.run(&["--help"]);
    for sub in SUBCOMMANDS {
        assert!(ok(&top).contains(&format!("\n  {sub} ")), "{sub}");
    }
}

/// A program, if installed, for the syntax and behaviour checks; without
/// it those are skipped with a message, except under `CI=true` (`.ci/run`
/// installs them).
fn program(name: &str) -> Option<std::path::PathBuf> {
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "{name} is not installed, and CI=true"
        );
        eprintln!("SKIPPED the checks that need {name}: it is not installed");
    }
    found
}

/// Runs `program ARGS…` in the sandbox; it must succeed.
fn run_ok(sb: &Sandbox, program: &Path, args: &[&str]) -> String {
    let out = sb.run_program(program, args, None);
    assert_eq!(
        out.code,
        Some(0),
        "{args:?}\n{}\n{}",
        out.stdout,
        out.stderr
    );
    out.stdout
}

/// Text as a terminal shows it: overstrikes (`X\bX`, `_\bX`) resolved,
/// typographic hyphens and minus signs made `-`.
fn plain(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if chars.peek() == Some(&'\u{8}') {
            chars.next();
            continue;
        }
        out.push(match c {
            '\u{2010}' | '\u{2212}' => '-',
            c => c,
        });
    }
    out
}

fn write(sb: &Sandbox, name: &str, text: &str) -> std::path::PathBuf {
    let path = sb.cwd().join(name);
    std::fs::write(&path, text).expect("write");
    path
}

#[test]
fn bash_completion_offers_every_flag_of_every_subcommand() {
    let sb = Sandbox::new();
    let script = sb.run(&["completions", "bash"]);
    let file = write(&sb, "spalloc.bash", ok(&script));
    let bash = program("bash").expect("bash");
    let path = file.display().to_string();
    let complete = |words: &str| -> BTreeSet<String> {
        let cword = words.split(' ').count() - 1;
        let script = format!(
            "source \"$1\" || exit 9; COMP_WORDS=({words}); COMP_CWORD={cword}; _spalloc; \
             printf '%s\\n' \"${{COMPREPLY[@]}}\""
        );
        run_ok(&sb, &bash, &["-c", &script, "bash", &path])
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    };
    run_ok(&sb, &bash, &["-n", &path]);
    for sub in SUBCOMMANDS {
        assert_eq!(
            complete(&format!("spalloc {sub} -")),
            flags_of(&sb, sub),
            "{sub}"
        );
    }
    for (name, sub) in LEGACY {
        assert_eq!(complete(&format!("{name} -")), flags_of(&sb, sub), "{name}");
    }
    // The old command line is alloc's.
    assert_eq!(complete("spalloc 3 -"), flags_of(&sb, "alloc"));
    let commands: BTreeSet<String> = SUBCOMMANDS
        .iter()
        .chain(&["help"])
        .map(|s| (*s).to_owned())
        .collect();
    assert_eq!(complete("spalloc ''"), commands);
    assert_eq!(
        complete("spalloc alloc --ma"),
        ["--machine", "--max-dead-boards", "--max-dead-links"]
            .map(str::to_owned)
            .into()
    );
    assert_eq!(
        complete("spalloc ps --color ''"),
        ["always", "auto", "never"].map(str::to_owned).into()
    );
    assert_eq!(
        complete("spalloc completions ''"),
        ["bash", "fish", "zsh"].map(str::to_owned).into()
    );
    // After -c, commands, not flags.
    assert!(complete("spalloc alloc 3 -c ech").contains("echo"));
    assert!(complete("spalloc alloc -c echo -").is_empty());
}

#[test]
fn zsh_completion_is_valid_and_covers_every_flag() {
    let sb = Sandbox::new();
    let script = sb.run(&["completions", "zsh"]);
    let text = ok(&script);
    assert!(text.starts_with("#compdef spalloc spalloc-job spalloc-ps"));
    for sub in SUBCOMMANDS {
        let function = format!("_spalloc_{}() {{", sub.replace('-', "_"));
        let body = text
            .split(&function)
            .nth(1)
            .and_then(|b| b.split("\n}\n").next())
            .unwrap_or_else(|| panic!("no {function}"));
        for flag in flags_of(&sb, sub) {
            let spelled = body.contains(&format!(")'{flag}'[")) // one spelling
                || body.contains(&format!("{{{flag},")) // first of several
                || body.contains(&format!(",{flag},"))
                || body.contains(&format!(",{flag}}}"));
            assert!(spelled, "{sub}: {flag} in\n{body}");
        }
    }
    let path = write(&sb, "_spalloc", text).display().to_string();
    if let Some(zsh) = program("zsh") {
        run_ok(&sb, &zsh, &["-n", &path]);
        // Sourced, it registers itself for spalloc and the old names.
        let registered = run_ok(
            &sb,
            &zsh,
            &[
                "-f",
                "-c",
                "autoload -U compinit && compinit -u -D && source \"$1\" && \
                 print -r -- ${_comps[spalloc]} ${_comps[spalloc-where-is]}",
                "zsh",
                &path,
            ],
        );
        assert_eq!(registered, "_spalloc _spalloc\n");
        // What zsh offers, typed into an interactive zsh on a terminal
        // (zpty), with compadd recording the candidates; each step waits
        // for the shell to print a marker, so nothing waits on time.
        let capture = write(&sb, "capture.zsh", ZSH_CAPTURE).display().to_string();
        let complete = |line: &str| -> BTreeSet<String> {
            let out = sb.cwd().join("candidates");
            let _ = std::fs::remove_file(&out);
            run_ok(
                &sb,
                &zsh,
                &["-f", &capture, line, &path, &out.display().to_string()],
            );
            std::fs::read_to_string(&out)
                .unwrap_or_default()
                .lines()
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect()
        };
        for sub in SUBCOMMANDS {
            assert_eq!(
                complete(&format!("spalloc {sub} -")),
                flags_of(&sb, sub),
                "{sub}"
            );
        }
        for (name, sub) in LEGACY {
            assert_eq!(complete(&format!("{name} -")), flags_of(&sb, sub), "{name}");
        }
        assert_eq!(
            complete("spalloc alloc --ma"),
            ["--machine", "--max-dead-boards", "--max-dead-links"]
                .map(str::to_owned)
                .into()
        );
        assert_eq!(
            complete("spalloc ps --color "),
            ["always", "auto", "never"].map(str::to_owned).into()
        );
        assert!(complete("spalloc wh").contains("where-is"));
        // After -c, a command line of its own.
        assert!(complete("spalloc alloc 3 -c ech").contains("echo"));
    }
}

/// `zsh -f capture.zsh LINE SCRIPT OUT`: types LINE and a Tab into an
/// interactive zsh that loaded SCRIPT, appending every candidate offered to
/// OUT.
const ZSH_CAPTURE: &str = r#"zmodload zsh/zpty
zpty z zsh -f -i
zpty -w z "autoload -U compinit; compinit -u -D; source ${(q)2}"
zpty -w z "compadd() { builtin compadd -O __hits \"\$@\"; print -rl -- \$__hits >> ${(q)3}; builtin compadd \"\$@\" }"
zpty -w z "LISTMAX=100000; zstyle ':completion:*' list-prompt ''"
zpty -w z 'tab-then-mark() { zle expand-or-complete; zle -M "COMP""LETED" }; zle -N tab-then-mark; bindkey "^I" tab-then-mark'
zpty -w z 'print -r -- "RE""ADY"'
zpty -r z reply '*READY*'
zpty -n -w z "$1"$'\t'
zpty -r z reply '*COMPLETED*'
zpty -n -w z $'\C-u'
zpty -w z 'print -r -- "DO""NE"'
zpty -r z reply '*DONE*'
zpty -d z
"#;

#[test]
fn fish_completion_offers_every_flag_of_every_subcommand() {
    let sb = Sandbox::new();
    let script = sb.run(&["completions", "fish"]);
    let text = ok(&script);
    for sub in SUBCOMMANDS {
        for flag in flags_of(&sb, sub) {
            let option = match flag.strip_prefix("--") {
                Some(long) => format!(" -l {long}"),
                None => format!(" -s {}", &flag[1..]),
            };
            assert!(
                text.lines()
                    .any(|l| l.contains(&format!("'__spalloc_is {sub}'")) && l.contains(&option)),
                "{sub}: {flag}"
            );
        }
    }
    let path = write(&sb, "spalloc.fish", text).display().to_string();
    let Some(fish) = program("fish") else {
        return;
    };
    run_ok(&sb, &fish, &["-n", &path]);
    let complete = |line: &str| -> BTreeSet<String> {
        let script = format!("source '{path}'; complete -C '{line}'");
        run_ok(&sb, &fish, &["--no-config", "-c", &script])
            .lines()
            .map(|l| l.split('\t').next().unwrap_or_default().to_owned())
            .collect()
    };
    for sub in SUBCOMMANDS {
        assert_eq!(
            complete(&format!("spalloc {sub} -")),
            flags_of(&sb, sub),
            "{sub}"
        );
    }
    for (name, sub) in LEGACY {
        assert_eq!(complete(&format!("{name} -")), flags_of(&sb, sub), "{name}");
    }
    assert_eq!(
        complete("spalloc ps --color "),
        ["always", "auto", "never"].map(str::to_owned).into()
    );
}

#[test]
fn man_page_documents_every_flag_and_renders() {
    let sb = Sandbox::new();
    let page = sb.run(&["man"]);
    let page = ok(&page).to_owned();
    assert!(page.starts_with(".TH SPALLOC 1 "));
    for sub in SUBCOMMANDS {
        let section = page
            .split(&format!(".SS \"spalloc {sub}\"\n"))
            .nth(1)
            .and_then(|s| s.split(".SS ").next())
            .unwrap_or_else(|| panic!("no section for {sub}"));
        for flag in flags_of(&sb, sub) {
            let roff = format!("\\fB{}\\fR", flag.replace('-', "\\-"));
            assert!(section.contains(&roff), "{sub}: {flag}");
        }
    }
    let file = write(&sb, "spalloc.1", &page);
    if let Some(groff) = program("groff") {
        let out = sb.run_program(
            &groff,
            &["-man", "-Tutf8", "-ww", "-z", &file.display().to_string()],
            None,
        );
        out.expect_code(0);
        assert_eq!(out.stderr, "", "groff warnings");
    }
    if let Some(man) = program("man") {
        let mut sb = Sandbox::new();
        sb.env("MANWIDTH", "80");
        let out = sb.run_program(&man, &["-l", &file.display().to_string()], None);
        let text = plain(ok(&out));
        for sub in SUBCOMMANDS {
            assert!(text.contains(&format!("spalloc {sub}")), "{sub}");
            for flag in flags_of(&sb, sub) {
                assert!(text.contains(&flag), "{sub}: {flag} not rendered");
            }
        }
    }
}
