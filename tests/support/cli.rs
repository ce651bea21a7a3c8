//! Running the real `spalloc` binary in a sealed environment.
//!
//! Every run gets an empty environment apart from PATH, a temporary HOME
//! with XDG_CONFIG_HOME and XDG_CONFIG_DIRS inside it (so neither the
//! developer's nor the machine's spalloc configuration leaks in), a
//! temporary working directory, TZ=UTC and a temporary TMPDIR; and every
//! run is killed if it outlives its deadline, so a hang fails the test.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// The binary under test.
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_spalloc"))
}

/// What a finished run produced.
#[derive(Debug)]
pub struct Output {
    pub code: Option<i32>,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// Panics with everything the run printed unless it exited with `code`.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Output {
        assert_eq!(
            self.code,
            Some(code),
            "exit status {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }
}

/// Which configuration file to write.
#[derive(Debug, Clone, Copy)]
pub enum ConfigFile {
    System,
    User,
    Cwd,
}

/// A sealed home, working directory and environment for CLI runs.
pub struct Sandbox {
    root: TempDir,
    extra_env: Vec<(String, String)>,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let root = tempfile::tempdir().expect("temp dir");
        for dir in ["home/.config", "etc", "cwd", "tmp"] {
            std::fs::create_dir_all(root.path().join(dir)).expect("mkdir");
        }
        Sandbox {
            root,
            extra_env: Vec::new(),
        }
    }

    pub fn home(&self) -> PathBuf {
        self.root.path().join("home")
    }

    pub fn cwd(&self) -> PathBuf {
        self.root.path().join("cwd")
    }

    pub fn tmp(&self) -> PathBuf {
        self.root.path().join("tmp")
    }

    pub fn config_path(&self, which: ConfigFile) -> PathBuf {
        match which {
            ConfigFile::System => self.root.path().join("etc/spalloc"),
            ConfigFile::User => self.home().join(".config/spalloc"),
            ConfigFile::Cwd => self.cwd().join(".spalloc"),
        }
    }

    pub fn write_config(&self, which: ConfigFile, text: &str) {
        std::fs::write(self.config_path(which), text).expect("write config");
    }

    /// A config pointing every tool at `addr`.
    pub fn use_server(&self, addr: std::net::SocketAddr) {
        self.write_config(
            ConfigFile::User,
            &format!(
                "[spalloc]\nhostname = {}\nport = {}\nowner = tester@example.org\n",
                addr.ip(),
                addr.port()
            ),
        );
    }

    pub fn env(&mut self, key: &str, value: &str) -> &mut Sandbox {
        self.extra_env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// A copy of the binary under another name (for the legacy names).
    pub fn link(&self, name: &str) -> PathBuf {
        let path = self.root.path().join(name);
        if !path.exists() {
            #[cfg(unix)]
            std::os::unix::fs::symlink(binary(), &path).expect("symlink");
        }
        path
    }

    /// The command, sealed, ready to spawn.
    pub fn command(&self, program: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(program);
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.home())
            .env("XDG_CONFIG_HOME", self.home().join(".config"))
            .env("XDG_CONFIG_DIRS", self.root.path().join("etc"))
            .env("TMPDIR", self.tmp())
            .env("TZ", "UTC")
            .current_dir(self.cwd())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in &self.extra_env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs `spalloc ARGS…` to completion (at most 30 s).
    pub fn run(&self, args: &[&str]) -> Output {
        self.run_program(&binary(), args, None)
    }

    /// Runs with `input` on stdin.
    pub fn run_with_input(&self, args: &[&str], input: &str) -> Output {
        self.run_program(&binary(), args, Some(input))
    }

    pub fn run_program(&self, program: &Path, args: &[&str], input: Option<&str>) -> Output {
        let mut cmd = self.command(program, args);
        if input.is_some() {
            cmd.stdin(Stdio::piped());
        }
        let mut child = cmd.spawn().expect("spawn spalloc");
        if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
            let _ = stdin.write_all(text.as_bytes());
        }
        finish(child, Duration::from_secs(30))
    }

    /// Starts `spalloc ARGS…` and returns it running, stdin piped.
    pub fn spawn(&self, args: &[&str]) -> Running {
        let mut cmd = self.command(&binary(), args);
        cmd.stdin(Stdio::piped());
        Running::start(cmd.spawn().expect("spawn spalloc"))
    }

    /// The temporary files spalloc left in its TMPDIR.
    pub fn leftover_temp_files(&self) -> Vec<PathBuf> {
        std::fs::read_dir(self.tmp())
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default()
    }
}

/// Reads a pipe to its end into a shared buffer, on a thread.
fn drain(
    pipe: Option<impl Read + Send + 'static>,
) -> (Arc<Mutex<Vec<u8>>>, thread::JoinHandle<()>) {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let b = Arc::clone(&buf);
    let handle = thread::spawn(move || {
        let Some(mut pipe) = pipe else { return };
        let mut chunk = [0u8; 4096];
        loop {
            match pipe.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => b
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .extend_from_slice(&chunk[..n]),
            }
        }
    });
    (buf, handle)
}

fn text(buf: &Mutex<Vec<u8>>) -> String {
    String::from_utf8_lossy(
        &buf.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    )
    .into_owned()
}

/// Waits for a child, killing it after `limit`, and collects its output.
pub fn finish(mut child: Child, limit: Duration) -> Output {
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    Running {
        child: Some(child),
        out,
        err,
    }
    .finish(limit)
}

type Drained = (Arc<Mutex<Vec<u8>>>, thread::JoinHandle<()>);

/// A spalloc process still running; killed if dropped.
pub struct Running {
    child: Option<Child>,
    out: Drained,
    err: Drained,
}

impl Running {
    fn start(mut child: Child) -> Running {
        let out = drain(child.stdout.take());
        let err = drain(child.stderr.take());
        Running {
            child: Some(child),
            out,
            err,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// What it has written to stdout so far.
    pub fn stdout(&self) -> String {
        text(&self.out.0)
    }

    /// What it has written to stderr so far.
    pub fn stderr(&self) -> String {
        text(&self.err.0)
    }

    /// Waits until stderr contains `pattern`; false after `limit`.
    pub fn wait_for_stderr(&self, pattern: &str, limit: Duration) -> bool {
        super::eventually(limit, || self.stderr().contains(pattern))
    }

    /// Waits until stdout contains `pattern`; false after `limit`. Text
    /// after the pattern may not have been read yet: to look at the rest
    /// of its line, use [`wait_for_stdout_line`](Self::wait_for_stdout_line).
    pub fn wait_for_stdout(&self, pattern: &str, limit: Duration) -> bool {
        super::eventually(limit, || self.stdout().contains(pattern))
    }

    /// Waits until stdout has a whole line (its `\n` read too) containing
    /// `pattern`, and returns it without the `\n`.
    pub fn wait_for_stdout_line(&self, pattern: &str, limit: Duration) -> Option<String> {
        let mut found = None;
        super::eventually(limit, || {
            let out = self.stdout();
            found = out
                .split_inclusive('\n')
                .find(|l| l.ends_with('\n') && l.contains(pattern))
                .map(|l| l.trim_end_matches('\n').to_owned());
            found.is_some()
        });
        found
    }

    /// Sends a signal to the process.
    pub fn signal(&self, signal: i32) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Closes its stdin (end of input).
    pub fn close_stdin(&mut self) {
        if let Some(c) = self.child.as_mut() {
            drop(c.stdin.take());
        }
    }

    /// Writes to its stdin.
    pub fn type_line(&mut self, text: &str) {
        if let Some(stdin) = self.child.as_mut().and_then(|c| c.stdin.as_mut()) {
            let _ = stdin.write_all(text.as_bytes());
            let _ = stdin.flush();
        }
    }

    /// Waits for it to end (killing it after `limit`, which fails the test).
    pub fn finish(mut self, limit: Duration) -> Output {
        let mut child = self.child.take().expect("running");
        let end = Instant::now() + limit;
        let status = loop {
            match child.try_wait() {
                Ok(Some(s)) => break s,
                Ok(None) if Instant::now() < end => thread::sleep(Duration::from_millis(10)),
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "spalloc did not finish within {limit:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
                        self.stdout(),
                        self.stderr()
                    );
                }
            }
        };
        // The pipes close when the process and anything it started end; a
        // stray grandchild must not hang the test, so wait only a while.
        super::eventually(Duration::from_secs(5), || {
            self.out.1.is_finished() && self.err.1.is_finished()
        });
        Output {
            code: status.code(),
            status,
            stdout: self.stdout(),
            stderr: self.stderr(),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
