//! Colour and cursor control on a real terminal: each run happens inside
//! util-linux `script`, which gives the program a pseudo-terminal. Skipped
//! (with a note) where `script` is not available.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{same, sample_server, sandbox};
use crate::support::cli::{Output, Sandbox, binary, finish};

const CLEAR_SCREEN: &str = "\x1b[2J\x1b[;H";

fn have_script() -> bool {
    let found = Command::new("script")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        eprintln!("note: util-linux `script` not found; terminal tests skipped");
    }
    found
}

/// Starts `shell_line` (where `SPALLOC` stands for the binary) on a
/// pseudo-terminal.
fn spawn_tty(sb: &Sandbox, shell_line: &str) -> Child {
    let line = shell_line.replace("SPALLOC", &format!("'{}'", binary().display()));
    sb.command(Path::new("script"), &["-qec", &line, "/dev/null"])
        .spawn()
        .expect("spawn script")
}

/// Waits for a [`spawn_tty`] run; the terminal's `\r\n` become `\n`.
fn done(child: Child) -> Output {
    let mut out = finish(child, Duration::from_secs(20));
    out.stdout = out.stdout.replace("\r\n", "\n");
    out
}

/// Runs `shell_line` on a pseudo-terminal.
fn on_tty(sb: &Sandbox, shell_line: &str) -> Output {
    done(spawn_tty(sb, shell_line))
}

#[test]
fn colour_follows_the_terminal_per_stream() {
    if !have_script() {
        return;
    }
    let fake = sample_server();
    let mut sb = sandbox(fake.addr());
    sb.env("TERM", "xterm");
    let coloured = on_tty(&sb, "SPALLOC ps");
    coloured.expect_code(0);
    assert!(
        coloured
            .stdout
            .starts_with("\x1b[4;1mID\x1b[0m  \x1b[4;1mState\x1b[0m"),
        "{:?}",
        coloured.stdout
    );
    let plain = sb.run(&["ps"]).stdout;
    assert!(!plain.contains('\x1b'));
    for line in [
        "SPALLOC ps --color never",
        "NO_COLOR=1 SPALLOC ps",
        "TERM=dumb SPALLOC ps",
    ] {
        let out = on_tty(&sb, line);
        out.expect_code(0);
        same(&plain, &out.stdout);
    }
    // `always` beats NO_COLOR; an empty NO_COLOR does not count.
    same(
        &coloured.stdout,
        &on_tty(&sb, "NO_COLOR=1 SPALLOC ps --color always").stdout,
    );
    same(
        &coloured.stdout,
        &on_tty(&sb, "NO_COLOR= SPALLOC ps").stdout,
    );
    // Redirected to a file from a terminal: the file gets no escapes,
    // though stderr is still the terminal.
    let out = on_tty(&sb, "SPALLOC ps > ps.txt");
    out.expect_code(0);
    let file = std::fs::read_to_string(sb.cwd().join("ps.txt")).expect("ps.txt");
    same(&plain, &file);
}

#[test]
fn watch_on_a_terminal_clears_the_screen_whatever_the_colour() {
    if !have_script() {
        return;
    }
    let fake = sample_server();
    let mut sb = sandbox(fake.addr());
    sb.env("TERM", "xterm");
    let plain = sb.run(&["ps"]).stdout;
    // SIGINT after a second ends the watch; `--preserve-status` passes on
    // spalloc's own exit code. The four runs go in parallel.
    let watch = "timeout --preserve-status -s INT 1 SPALLOC ps --watch";
    let runs: Vec<Child> = [
        format!("NO_COLOR=1 {watch}"),
        format!("{watch} --color never"),
        format!("TERM=dumb {watch}"),
        format!("{watch} --json"),
    ]
    .iter()
    .map(|line| spawn_tty(&sb, line))
    .collect();
    let outs: Vec<Output> = runs.into_iter().map(done).collect();
    for out in &outs {
        out.expect_code(0);
    }
    // Cursor control does not depend on colour...
    same(&format!("{CLEAR_SCREEN}{plain}\n"), &outs[0].stdout);
    same(&format!("{CLEAR_SCREEN}{plain}\n"), &outs[1].stdout);
    // ...but a dumb terminal gets neither.
    same(&format!("{plain}\n"), &outs[2].stdout);
    // JSON frames never clear the screen.
    assert!(
        outs[3].stdout.starts_with("[{\"id\":15,"),
        "{:?}",
        outs[3].stdout
    );
}
