//! The published Python client (`spalloc==1!7.4.1`) against a running
//! `spalloc serve`, side by side with our own tools: the Python tools must work
//! with the server, and where both are specified to print the same thing,
//! they must print the same bytes.
//!
//! The client is taken from `$SPALLOC_PYTHON_CLIENT` (a virtualenv, as
//! `.ci/run` prepares), or else installed once into a virtualenv under the
//! target directory (which needs `python3` and access to PyPI). If that is
//! impossible, each test is skipped with a message saying why, except
//! under `CI=true`, where it fails.

mod v2;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use spalloc::{CreateJobOptions, JobRequest, Number, ProtocolClient};

use crate::support::cli::{Output, Running, Sandbox};

const PACKAGE: &str = "spalloc==1!7.4.1";

/// A virtualenv with `package` installed: `$var` if set, else one made
/// once under the target directory as `name` (marked ready with a file, so
/// that a half-made one is made again), or why there cannot be one.
pub(crate) fn venv(var: &str, name: &str, package: &str) -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os(var) {
        return Ok(PathBuf::from(dir));
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let ready = |d: &Path| d.join("bin/python").exists() && d.join(".installed").exists();
    if ready(&dir) {
        return Ok(dir);
    }
    // Test processes may run in parallel: one installs, under a lock
    // directory (mkdir is atomic).
    let lock = dir.with_extension("lock");
    let start = Instant::now();
    while std::fs::create_dir(&lock).is_err() {
        if start.elapsed() > Duration::from_secs(900) {
            return Err(format!("timed out waiting for {}", lock.display()));
        }
        std::thread::sleep(Duration::from_millis(500));
        if ready(&dir) {
            return Ok(dir);
        }
    }
    let result = (|| -> Result<(), String> {
        let run = |cmd: &mut Command| -> Result<(), String> {
            let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
            if out.status.success() {
                Ok(())
            } else {
                Err(format!(
                    "{cmd:?} failed:\n{}",
                    String::from_utf8_lossy(&out.stderr)
                ))
            }
        };
        run(Command::new("python3").args(["-m", "venv"]).arg(&dir))?;
        run(Command::new(dir.join("bin/pip")).args([
            "install",
            "--quiet",
            "--disable-pip-version-check",
            package,
        ]))?;
        std::fs::write(dir.join(".installed"), package).map_err(|e| e.to_string())
    })();
    let _ = std::fs::remove_dir(&lock);
    result.map(|()| dir)
}

/// [`venv`], or `None` after saying on stderr why `test` is skipped; under
/// `CI=true` a missing virtualenv fails the test instead.
pub(crate) fn venv_or_skip(test: &str, var: &str, name: &str, package: &str) -> Option<PathBuf> {
    match venv(var, name, package) {
        Ok(dir) => Some(dir),
        Err(why) if std::env::var("CI").as_deref() != Ok("true") => {
            eprintln!(
                "SKIPPED {test}: cannot install {package} ({why}); \
                 set {var} to a virtualenv that has it"
            );
            None
        }
        Err(why) => panic!("cannot install {package} under CI: {why}"),
    }
}

struct Scene {
    /// The Python client's virtualenv.
    venv: PathBuf,
    /// `spalloc serve`, killed when the scene is dropped.
    _server: Running,
    sb: Sandbox,
    port: u16,
    jobs: Vec<u64>,
}

impl Scene {
    /// Runs one of the Python client's tools in the scene's sandbox.
    fn python(&self, tool: &str, args: &[&str]) -> Output {
        let program = self.venv.join("bin").join(tool);
        self.sb.run_program(&program, args, None)
    }

    fn client(&self) -> ProtocolClient {
        ProtocolClient::connect("127.0.0.1", self.port, Some(Duration::from_secs(5)))
            .expect("connect")
    }
}

/// `spalloc serve` with a 2x2 machine and a one-board machine, three jobs
/// allocated and one queued, and a config file that both clients read; or
/// `None` if `test` is skipped for want of the Python client.
fn scene(test: &str) -> Option<Scene> {
    let venv = venv_or_skip(test, "SPALLOC_PYTHON_CLIENT", "pyspalloc-venv", PACKAGE)?;
    let sb = Sandbox::new();
    let config = sb.cwd().join("server.toml");
    std::fs::write(
        &config,
        "[server]\npower_delay = 0\nseconds_before_free = 0\n\n\
         [[machine]]\nname = \"m\"\nwidth = 2\nheight = 2\n\n\
         [[machine]]\nname = \"other\"\ntags = [\"other\"]\nwidth = 1\nheight = 1\nbase_ip = \"10.2.0.0\"\n",
    )
    .expect("write server config");
    let server = sb.spawn(&[
        "serve",
        "--config",
        &config.display().to_string(),
        "--port",
        "0",
    ]);
    let line = server.wait_for_stdout_line("listening on", Duration::from_secs(20));
    let port: u16 = line
        .as_deref()
        .and_then(|l| l.rsplit_once(':').and_then(|(_, p)| p.parse().ok()))
        .unwrap_or_else(|| panic!("no port: {}", server.stderr()));
    sb.use_server(std::net::SocketAddr::from(([127, 0, 0, 1], port)));
    let mut scene = Scene {
        venv,
        _server: server,
        sb,
        port,
        jobs: Vec::new(),
    };
    let mut c = scene.client();
    let mut o = CreateJobOptions::new("alice@example.org");
    o.keepalive = None;
    scene
        .jobs
        .push(c.create_job(&JobRequest::Boards(3), &o).expect("create"));
    o.owner = "bob@example.org".into();
    o.keepalive = Some(Number::Int(120));
    scene
        .jobs
        .push(c.create_job(&JobRequest::AnyBoard, &o).expect("create"));
    o.tags = Some(vec!["other".into()]);
    scene.jobs.push(
        c.create_job(
            &JobRequest::Triads {
                width: 1,
                height: 1,
            },
            &o,
        )
        .expect("create"),
    );
    scene
        .jobs
        .push(c.create_job(&JobRequest::AnyBoard, &o).expect("create"));
    // Wait until everything that can be allocated is.
    let start = Instant::now();
    while c
        .list_jobs()
        .expect("list")
        .iter()
        .filter(|j| j.state == spalloc::JobState::Ready)
        .count()
        < 3
    {
        assert!(start.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(scene)
}

#[track_caller]
fn same(ours: &Output, theirs: &Output) {
    assert_eq!(
        theirs.code,
        Some(0),
        "Python tool failed:\n{}\n{}",
        theirs.stdout,
        theirs.stderr
    );
    assert_eq!(ours.code, Some(0), "ours failed:\n{}", ours.stderr);
    assert_eq!(
        ours.stdout, theirs.stdout,
        "\n--- ours ---\n{}\n--- Python ---\n{}",
        ours.stdout, theirs.stdout
    );
}

#[test]
fn ps_matches_the_python_tool() {
    let Some(s) = scene("ps_matches_the_python_tool") else {
        return;
    };
    let port = s.port.to_string();
    let theirs = s.python("spalloc-ps", &["--port", &port]);
    let ours = s.sb.run(&["ps", "--port", &port]);
    same(&ours, &theirs);
    assert!(
        ours.stdout.contains("alice@example.org (127.0.0.1)"),
        "{}",
        ours.stdout
    );
    let theirs = s.python("spalloc-ps", &["--owner", "bob@example.org"]);
    let ours = s.sb.run(&["ps", "--owner", "bob@example.org"]);
    same(&ours, &theirs);
}

#[test]
fn machine_views_match_the_python_tool() {
    let Some(s) = scene("machine_views_match_the_python_tool") else {
        return;
    };
    for args in [
        &[][..],
        &["m"][..],
        &["m", "--detailed"][..],
        &["other"][..],
    ] {
        let theirs = s.python("spalloc-machine", args);
        let ours = s.sb.run(&[&["machine"][..], args].concat());
        same(&ours, &theirs);
    }
}

#[test]
fn job_info_matches_the_python_tool() {
    let Some(s) = scene("job_info_matches_the_python_tool") else {
        return;
    };
    for id in &s.jobs {
        let id = id.to_string();
        let theirs = s.python("spalloc-job", &[&id]);
        let ours = s.sb.run(&["job", &id]);
        same(&ours, &theirs);
        let theirs = s.python("spalloc-job", &[&id, "--ethernet-ips"]);
        let ours = s.sb.run(&["job", &id, "--ethernet-ips"]);
        if theirs.code == Some(0) {
            same(&ours, &theirs);
        } else {
            // The queued job has no addresses: both exit 9.
            assert_eq!((theirs.code, ours.code), (Some(9), Some(9)));
        }
    }
    // A job that no longer exists.
    let theirs = s.python("spalloc-job", &["9999"]);
    let ours = s.sb.run(&["job", "9999"]);
    same(&ours, &theirs);
}

#[test]
fn where_is_job_chip_matches_the_python_tool() {
    let Some(s) = scene("where_is_job_chip_matches_the_python_tool") else {
        return;
    };
    let id = s.jobs[0].to_string();
    for (x, y) in [("0", "0"), ("9", "5"), ("8", "4")] {
        let theirs = s.python("spalloc-where-is", &["--job-chip", &id, x, y]);
        let ours = s.sb.run(&["where-is", "--job-chip", &id, x, y]);
        same(&ours, &theirs);
    }
    // The machine forms crash in the Python tool (a TypeError before
    // anything is sent); ours work.
    let theirs = s.python("spalloc-where-is", &["--chip", "m", "9", "5"]);
    assert_ne!(theirs.code, Some(0));
    s.sb.run(&["where-is", "--chip", "m", "9", "5"])
        .expect_code(0);
}

#[test]
fn python_alloc_and_job_control_work_against_the_server() {
    let Some(s) = scene("python_alloc_and_job_control_work_against_the_server") else {
        return;
    };
    // The Python `spalloc` refuses versions it cannot parse: ours parses.
    let out = s.python(
        "spalloc",
        &[
            "--owner",
            "carol@example.org",
            "-m",
            "m",
            "-c",
            "echo",
            "{hostname}",
            "{w}",
            "{h}",
        ],
    );
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    assert_eq!(
        out.stdout, "192.168.0.73 8 8\n",
        "the board next to job 2, as the allocator packs single boards"
    );
    // Its job is gone afterwards.
    let mut c = s.client();
    assert!(
        c.list_jobs()
            .expect("list")
            .iter()
            .all(|j| j.owner.as_deref() != Some("carol@example.org"))
    );

    // Power control and destroy through the Python spalloc-job.
    let id = s.jobs[1].to_string();
    let out = s.python("spalloc-job", &[&id, "--power-off"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let out = s.python("spalloc-job", &[&id, "--destroy", "done"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let state = c.get_job_state(s.jobs[1]).expect("state");
    assert_eq!(state.reason.as_deref(), Some("done"));
}

/// The error line of a usage error: argparse's, the last line of the
/// Python tool's stderr; ours, the first of ours.
fn error_line(out: &Output, ours: bool) -> String {
    let mut lines = out.stderr.lines();
    let line = if ours { lines.next() } else { lines.last() };
    line.unwrap_or_default().to_owned()
}

#[test]
fn command_lines_read_as_the_python_tools_read_them() {
    let Some(s) = scene("command_lines_read_as_the_python_tools_read_them") else {
        return;
    };
    let port = s.port.to_string();
    let job = s.jobs[0].to_string();
    // Ours by the same names, so that the messages name the same program.
    let ours = |tool: &str, args: &[&str]| -> Output {
        if tool == "spalloc" {
            s.sb.run(args)
        } else {
            s.sb.run_program(&s.sb.link(tool), args, None)
        }
    };
    let errors: [(&str, &[&str]); 20] = [
        ("spalloc-ps", &["--h", "x"]),
        ("spalloc-ps", &["--watch=yes"]),
        ("spalloc-ps", &["-wx"]),
        ("spalloc-ps", &["--port", "x", "--port", &port]),
        ("spalloc-ps", &["--owner"]),
        ("spalloc-ps", &["--frob", "a"]),
        ("spalloc-job", &["--po"]),
        ("spalloc-job", &["-w", "--power-off"]),
        ("spalloc-job", &["1", "2"]),
        ("spalloc-job", &["x"]),
        ("spalloc-machine", &["a", "b"]),
        ("spalloc-where-is", &["--chip", "m", "1"]),
        ("spalloc-where-is", &[]),
        (
            "spalloc-where-is",
            &["-b", "m", "0", "0", "0", "-j", "1", "0", "0"],
        ),
        ("spalloc", &["--ma", "x"]),
        ("spalloc", &["--re", "1"]),
        ("spalloc", &["--no"]),
        ("spalloc", &["-q=x"]),
        ("spalloc", &["--min-ratio", "x"]),
        ("spalloc", &["--resume"]),
    ];
    for (tool, args) in errors {
        let theirs = s.python(tool, args);
        let ours = ours(tool, args);
        assert_eq!(
            (ours.code, error_line(&ours, true)),
            (theirs.code, error_line(&theirs, false)),
            "{tool} {args:?}\n--- ours ---\n{}--- Python ---\n{}",
            ours.stderr,
            theirs.stderr
        );
        assert_eq!(ours.code, Some(2));
    }
    let alike: [(&str, &[&str]); 9] = [
        ("spalloc-ps", &["--own", "alice@example.org"]),
        (
            "spalloc-ps",
            &["--owner=bob@example.org", "--owner", "alice@example.org"],
        ),
        ("spalloc-ps", &["--mach=m", "--port", "1", "--po", &port]),
        ("spalloc-machine", &["--deta", "m"]),
        ("spalloc-job", &[&job, "--ethernet"]),
        ("spalloc-job", &["--own", "alice@example.org"]),
        ("spalloc-where-is", &["--job-c", &job, "0", "0"]),
        (
            "spalloc-where-is",
            &["--job-chip", "99", "0", "0", "--job-chip", &job, "9", "5"],
        ),
        (
            "spalloc",
            &[
                "--own",
                "someone",
                "--owner",
                "carol@example.org",
                "-m",
                "m",
                "--keep",
                "5",
                "-c",
                "echo",
                "{w}",
                "{h}",
            ],
        ),
    ];
    for (tool, args) in alike {
        same(&ours(tool, args), &s.python(tool, args));
    }
}
