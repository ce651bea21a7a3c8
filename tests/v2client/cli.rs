//! The `spalloc` binary over v2, end to end: `alloc` over HTTP and HTTPS,
//! `job`, `ps`, `machine`, `where-is` and `config`, sessions cached between
//! runs, options only one protocol has, and no secret in any output.

use std::time::Duration;

use spalloc::server::{ServerConfig, V2Config, V2Tls, VirtualServer};
use spalloc::v2::{RestClient, V2Settings};
use spalloc::{CreateJobOptions, JobRequest, JobState};

use super::fake::{self, FakeHttp};
use super::{alice, start, start_with};
use crate::cli_views::same;
use crate::support::PATIENCE;
use crate::support::cli::{ConfigFile, Output, Sandbox};

const TIMEOUT: Option<Duration> = Some(Duration::from_secs(10));

/// A sandbox whose configuration names `url` (and `ca_file`), with alice's
/// credentials in the environment.
fn sandbox(url: &str, ca_file: Option<&std::path::Path>) -> Sandbox {
    let mut sb = Sandbox::new();
    let mut text = format!("[spalloc]\nhostname = {url}\n");
    if let Some(ca) = ca_file {
        text.push_str(&format!("ca_file = {}\n", ca.display()));
    }
    sb.write_config(ConfigFile::User, &text);
    sb.env("SPALLOC_USER", "alice")
        .env("SPALLOC_PASSWORD", "alice-pw");
    sb
}

fn rest(server: &VirtualServer) -> RestClient {
    RestClient::connect(server.v2_url().expect("v2"), &alice(), TIMEOUT, None).expect("connect")
}

/// Asserts that no secret shows anywhere in a run's output.
#[track_caller]
fn no_secrets(out: &Output, secrets: &[&str]) {
    for s in secrets {
        assert!(
            !out.stdout.contains(s) && !out.stderr.contains(s),
            "{s:?} shown:\n{}\n{}",
            out.stdout,
            out.stderr
        );
    }
}

/// The session cookie cached in a sandbox, if any.
fn cached_cookie(sb: &Sandbox) -> Option<String> {
    let dir = sb.home().join(".cache/spalloc");
    let entry = std::fs::read_dir(dir).ok()?.next()?;
    let text = std::fs::read_to_string(entry.ok()?.path()).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["cookie"].as_str().map(str::to_owned)
}

#[test]
fn alloc_over_http_and_https() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = dir.path().join("ca.pem");
    let plain = start();
    let secure = start_with(
        ServerConfig::instant(),
        V2Config::default().tls(V2Tls::SelfSigned {
            ca_file: Some(ca.clone()),
        }),
    );
    for (server, ca_file) in [(&plain, None), (&secure, Some(ca.as_path()))] {
        let url = server.v2_url().expect("v2");
        let sb = sandbox(url, ca_file);
        let out = sb.run(&[
            "alloc",
            "3",
            "--debug",
            "-c",
            "echo",
            "host={hostname}",
            "w={w}",
            "h={h}",
            "id={id}",
        ]);
        out.expect_code(0);
        let line = out.stdout.lines().last().expect("a line").to_owned();
        assert!(
            line.starts_with("host=")
                && !line.starts_with("host= ")
                && line.contains(" w=16 h=16 id="),
            "{line}"
        );
        let id: u64 = line.rsplit('=').next().expect("id").parse().expect("id");
        // Released on the way out, with a reason.
        let info = {
            let mut c = RestClient::connect(url, &alice().ca_file(ca.clone()), TIMEOUT, None)
                .expect("connect");
            c.job(id).expect("job").expect("known")
        };
        assert_eq!(info.state, JobState::Destroyed);
        let cookie = cached_cookie(&sb).expect("a cached session");
        no_secrets(&out, &["alice-pw", &cookie]);
    }
}

#[test]
fn sessions_are_reused_between_runs() {
    let server = start();
    let url = server.v2_url().expect("v2");
    let sb = sandbox(url, None);
    sb.run(&["ps"]).expect_code(0);
    let first = cached_cookie(&sb).expect("cached");
    let cache = sb.home().join(".cache/spalloc");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let file = std::fs::read_dir(&cache)
            .expect("dir")
            .next()
            .expect("a file")
            .expect("entry")
            .path();
        let mode = std::fs::metadata(file).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let mode = std::fs::metadata(&cache)
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700);
    }
    // Another run with no password: the cached session is enough.
    let mut bare = Sandbox::new();
    bare.write_config(
        ConfigFile::User,
        &format!("[spalloc]\nhostname = {url}\nuser = alice\n"),
    );
    let to = bare.home().join(".cache/spalloc");
    std::fs::create_dir_all(&to).expect("mkdir");
    for entry in std::fs::read_dir(&cache).expect("dir") {
        let path = entry.expect("entry").path();
        std::fs::copy(&path, to.join(path.file_name().expect("name"))).expect("copy");
    }
    bare.run(&["ps"]).expect_code(0);
    assert_eq!(cached_cookie(&bare).as_deref(), Some(first.as_str()));
    // Once it has expired, there is no password to log in with: the error
    // says what to do.
    server.advance(Duration::from_secs(31 * 60));
    let out = bare.run(&["ps"]);
    out.expect_code(1);
    assert!(
        out.stderr.contains("Cannot log in: no password for alice"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("SPALLOC_PASSWORD"), "{}", out.stderr);
    bare.env("SPALLOC_PASSWORD", "alice-pw");
    bare.run(&["ps"]).expect_code(0);
    assert_ne!(cached_cookie(&bare), Some(first));
}

#[test]
fn the_views_match_v1_for_the_same_facts() {
    let server = start();
    let url = server.v2_url().expect("v2");
    let v2 = sandbox(url, None);
    let mut v1 = Sandbox::new();
    v1.use_server(server.local_addr());
    v1.env("TZ", "UTC");
    let mut c = rest(&server);
    let mut o = CreateJobOptions::new("");
    o.tags = Some(vec!["default".into()]);
    let id = c.create_job(&JobRequest::Boards(3), &o).expect("create");
    let alloc = c.job_machine(id).expect("machine").expect("allocated");
    let b = alloc.boards[1];
    // The job's chip (0, 0) is on its first board.
    let (root, ip) = (alloc.boards[0], alloc.connections[0].hostname.clone());
    for args in [
        vec!["machine".to_owned()],
        vec!["machine".into(), "m".into()],
        vec!["machine".into(), "m".into(), "--detailed".into()],
        vec![
            "where-is".into(),
            "--board".into(),
            "m".into(),
            b.x.to_string(),
            b.y.to_string(),
            b.z.to_string(),
        ],
        vec![
            "where-is".into(),
            "--physical".into(),
            "m".into(),
            "0".into(),
            "0".into(),
            "2".into(),
        ],
        vec![
            "where-is".into(),
            "--chip".into(),
            "m".into(),
            "9".into(),
            "6".into(),
        ],
        vec![
            "where-is".into(),
            "--chip".into(),
            "m".into(),
            "21".into(),
            "19".into(),
        ],
        vec![
            "where-is".into(),
            "--job-chip".into(),
            id.to_string(),
            "9".into(),
            "6".into(),
        ],
        vec!["job".into(), id.to_string(), "--ethernet-ips".into()],
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let over_v1 = v1.run(&args);
        let over_v2 = v2.run(&args);
        over_v1.expect_code(0);
        over_v2.expect_code(0);
        same(&over_v1.stdout, &over_v2.stdout);
    }
    // A board by IP address: v2 only, on whichever machine has it.
    let by_ip = v2.run(&["where-is", "--ip", &ip]);
    by_ip.expect_code(0);
    assert!(
        by_ip.stdout.contains(&format!("Job using board: {id}")),
        "{}",
        by_ip.stdout
    );
    let by_xyz = v2.run(&[
        "where-is",
        "--board",
        "m",
        &root.x.to_string(),
        &root.y.to_string(),
        &root.z.to_string(),
    ]);
    same(&by_xyz.stdout, &by_ip.stdout);
    v2.run(&["where-is", "--ip", "10.99.99.99"]).expect_code(4);
    let on_v1 = v1.run(&["where-is", "--ip", &ip]);
    on_v1.expect_code(2);
    assert!(
        on_v1
            .stderr
            .contains("argument --ip: only available with a v2 server"),
        "{}",
        on_v1.stderr
    );
}

#[test]
fn job_and_ps_over_v2() {
    let server = start();
    let url = server.v2_url().expect("v2");
    let sb = sandbox(url, None);
    let mut c = rest(&server);
    let mut o = CreateJobOptions::new("");
    o.tags = Some(vec!["default".into()]);
    let id = c.create_job(&JobRequest::Boards(3), &o).expect("create");
    // Bob's job is listed to alice but not shown: counted.
    let mut bob = RestClient::connect(
        url,
        &V2Settings::default().login("bob", "bob-pw"),
        TIMEOUT,
        None,
    )
    .expect("bob");
    let bobs = bob.create_job(&JobRequest::AnyBoard, &o).expect("create");
    c.keepalive(id).expect("keepalive");

    let ps = sb.run(&["ps"]);
    ps.expect_code(0);
    let lines: Vec<&str> = ps.stdout.lines().collect();
    assert!(
        lines[0].starts_with("ID  State  Power  Boards  Machine"),
        "{}",
        ps.stdout
    );
    assert!(
        lines[1].contains(" ready ") && lines[1].contains(" on "),
        "{}",
        ps.stdout
    );
    assert!(lines[1].contains("alice (127.0.0.1)"), "{}", ps.stdout);
    assert_eq!(
        lines.last(),
        Some(&"(1 more job of other users: the server does not show it to you)")
    );
    // `job` with no id finds alice's only job.
    let info = sb.run(&["job"]);
    info.expect_code(0);
    assert!(
        info.stdout.contains(&format!("     Job ID: {id}\n")),
        "{}",
        info.stdout
    );
    assert!(info.stdout.contains("Num boards: 3"), "{}", info.stdout);
    let json = sb.run(&["job", &id.to_string(), "--json"]);
    json.expect_code(0);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON");
    assert_eq!(v["owner"], "alice");
    // Power off, then on again, waiting for each.
    sb.run(&["job", &id.to_string(), "--power-off"])
        .expect_code(0);
    assert_eq!(c.power(id).expect("power"), Some(false));
    sb.run(&["job", &id.to_string(), "--power-on"])
        .expect_code(0);
    assert_eq!(c.power(id).expect("power"), Some(true));
    // Destroy with a reason; `ps --all` then shows when and why.
    sb.run(&["job", &id.to_string(), "--destroy", "finished with it"])
        .expect_code(0);
    let gone = c.job(id).expect("job").expect("known");
    assert_eq!(gone.reason.as_deref(), Some("finished with it"));
    let ps = sb.run(&["ps"]);
    assert!(!ps.stdout.contains(" ready "), "{}", ps.stdout);
    let all = sb.run(&["ps", "--all"]);
    all.expect_code(0);
    assert!(
        all.stdout
            .lines()
            .next()
            .is_some_and(|h| h.ends_with("Finished at          Reason")),
        "{}",
        all.stdout
    );
    assert!(
        all.stdout.contains("destroyed") && all.stdout.contains("finished with it"),
        "{}",
        all.stdout
    );
    let all = sb.run(&["ps", "--all", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&all.stdout).expect("JSON");
    assert_eq!(v[0]["reason"], "finished with it");
    assert!(
        all.stderr.contains("1 more job of other users"),
        "{}",
        all.stderr
    );
    bob.delete_job(bobs, None).expect("destroy");
}

#[test]
fn options_only_one_protocol_has_are_refused_before_anything_is_made() {
    let server = start();
    let url = server.v2_url().expect("v2");
    let sb = sandbox(url, None);
    for (args, flag) in [
        (
            &["alloc", "3", "--min-ratio", "0.5", "-c", "true"][..],
            "--min-ratio",
        ),
        (
            &["alloc", "3", "--max-dead-links", "2", "-c", "true"],
            "--max-dead-links",
        ),
        (
            &["alloc", "3", "--require-torus", "-c", "true"],
            "--require-torus",
        ),
        (
            &["alloc", "3", "--keepalive", "-1", "-c", "true"],
            "--keepalive -1",
        ),
    ] {
        let out = sb.run(args);
        out.expect_code(2);
        assert!(
            out.stderr.contains(&format!("argument {flag}"))
                && out.stderr.contains("not available with a v2 server"),
            "{}",
            out.stderr
        );
    }
    let v1 = Sandbox::new();
    v1.use_server(server.local_addr());
    let out = v1.run(&["alloc", "--ip", "10.2.0.1", "-c", "true"]);
    out.expect_code(2);
    assert!(
        out.stderr
            .contains("argument --ip: only available with a v2 server"),
        "{}",
        out.stderr
    );
    let out = v1.run(&["alloc", "--group", "g1", "-c", "true"]);
    out.expect_code(2);
    assert!(
        out.stderr
            .contains("argument --group: only available with a v2 server"),
        "{}",
        out.stderr
    );
    assert!(
        rest(&server).job_ids(true).expect("jobs").is_empty(),
        "something was created"
    );
    // The v2-only and physical forms do work where they belong.
    let out = sb.run(&[
        "alloc", "-m", "small", "--ip", "10.2.0.1", "--json", "-c", "true",
    ]);
    out.expect_code(0);
    let out = v1.run(&[
        "alloc",
        "-m",
        "m",
        "--physical",
        "0",
        "0",
        "2",
        "-c",
        "true",
    ]);
    out.expect_code(0);
    let out = sb.run(&["alloc", "--physical", "0", "0", "2", "-c", "true"]);
    out.expect_code(0);
}

/// Runs `spalloc ARGS…` on a pseudo-terminal (through Python's `pty`),
/// typing `typed` and Enter once `Password for` shows; everything the
/// terminal showed comes back as stdout.
fn run_on_a_terminal(sb: &Sandbox, args: &[&str], typed: &str) -> Output {
    const DRIVER: &str = r#"
import os, pty, select, sys, time
typed, argv = sys.argv[1].encode(), sys.argv[2:]
pid, fd = pty.fork()
if pid == 0:
    os.execv(argv[0], argv)
seen, sent, end = b"", False, time.monotonic() + 20
while time.monotonic() < end:
    ready, _, _ = select.select([fd], [], [], end - time.monotonic())
    if not ready:
        break
    try:
        data = os.read(fd, 4096)
    except OSError:
        break
    if not data:
        break
    seen += data
    if not sent and b"Password for" in seen:
        os.write(fd, typed + b"\n")
        sent = True
_, status = os.waitpid(pid, 0)
sys.stdout.buffer.write(seen)
sys.exit(os.waitstatus_to_exitcode(status))
"#;
    let binary = crate::support::cli::binary();
    let mut all = vec!["-c", DRIVER, typed, binary.to_str().expect("a UTF-8 path")];
    all.extend_from_slice(args);
    sb.run_program(std::path::Path::new("python3"), &all, None)
}

/// On a terminal, with no password anywhere, spalloc asks for it without
/// echo, logs in with it, and shows it nowhere.
#[test]
fn the_password_is_asked_for_without_echo_on_a_terminal() {
    let server = start();
    let url = server.v2_url().expect("v2");
    let mut sb = Sandbox::new();
    sb.write_config(ConfigFile::User, &format!("[spalloc]\nhostname = {url}\n"));
    sb.env("SPALLOC_USER", "alice");
    let out = run_on_a_terminal(&sb, &["ps"], "alice-pw");
    out.expect_code(0);
    assert!(
        out.stdout.contains(&format!("Password for alice at {url}")),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("State"), "no job table: {}", out.stdout);
    no_secrets(&out, &["alice-pw"]);
    // A wrong one is refused once, and said so.
    let mut other = Sandbox::new();
    other.write_config(ConfigFile::User, &format!("[spalloc]\nhostname = {url}\n"));
    other.env("SPALLOC_USER", "alice");
    let out = run_on_a_terminal(&other, &["ps"], "not-her-password");
    assert_ne!(out.code, Some(0), "{}", out.stdout);
    assert!(out.stdout.contains("refused the login"), "{}", out.stdout);
    no_secrets(&out, &["not-her-password"]);
}

/// The job id of `alloc --json`'s line.
fn job_id_of(out: &Output) -> u64 {
    let v: serde_json::Value = serde_json::from_str(out.stdout.trim()).expect("one JSON line");
    v["id"].as_u64().expect("id")
}

/// A user in two accounting groups names one with `--group` (or the
/// configuration's `group`); without, the service's reason is shown and
/// nothing is left behind.
#[test]
fn alloc_charges_the_group_named() {
    let mut users = super::users();
    users.push(
        spalloc::server::V2User::new("carol", "carol-pw")
            .group("g1")
            .group("g2"),
    );
    let server = crate::v2::start(crate::v2::v2().users(users));
    let url = server.v2_url().expect("v2");
    let mut sb = sandbox(url, None);
    sb.env("SPALLOC_USER", "carol")
        .env("SPALLOC_PASSWORD", "carol-pw");
    let out = sb.run(&["alloc", "1", "-c", "true"]);
    // The server refused the request: 6, as for any refusal.
    out.expect_code(6);
    assert!(
        out.stderr
            .contains("more than one group, so the group must be selected"),
        "{}",
        out.stderr
    );
    let out = sb.run(&["alloc", "1", "--group", "", "-c", "true"]);
    out.expect_code(2);
    assert!(
        out.stderr
            .contains("argument --group: expected a group name"),
        "{}",
        out.stderr
    );
    let out = sb.run(&["alloc", "1", "--group", "g2", "--json", "-c", "true"]);
    out.expect_code(0);
    let id = job_id_of(&out);
    let carol = V2Settings::default().login("carol", "carol-pw");
    let mut c = RestClient::connect(url, &carol, TIMEOUT, None).expect("connect");
    let original = c.job(id).expect("job").expect("known").original_request;
    assert_eq!(original.expect("stored")["group"], "g2");
    // The configuration's group, when no flag is given.
    sb.write_config(
        ConfigFile::User,
        &format!("[spalloc]\nhostname = {url}\ngroup = g1\n"),
    );
    let out = sb.run(&["alloc", "1", "--json", "-c", "true"]);
    out.expect_code(0);
    let id = job_id_of(&out);
    let original = c.job(id).expect("job").expect("known").original_request;
    assert_eq!(original.expect("stored")["group"], "g1");
}

#[test]
fn a_refused_login_is_tried_once_and_said_plainly() {
    let fake = FakeHttp::start(|_, _| None);
    let mut sb = Sandbox::new();
    sb.write_config(
        ConfigFile::User,
        &format!("[spalloc]\nhostname = {}\n", fake.url()),
    );
    sb.env("SPALLOC_USER", "alice")
        .env("SPALLOC_PASSWORD", "wrong-pw-123");
    let out = sb.run(&["alloc", "1", "--debug", "-c", "true"]);
    out.expect_code(6);
    assert!(
        out.stderr.contains("Cannot log in: the service at"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("not tried again automatically"),
        "{}",
        out.stderr
    );
    assert_eq!(fake.count("POST", "/spalloc/system/perform_login"), 1);
    no_secrets(&out, &["wrong-pw-123"]);
    // A bearer token over a whole run, --debug included, shows nowhere.
    let mut sb = Sandbox::new();
    sb.write_config(
        ConfigFile::User,
        &format!("[spalloc]\nhostname = {}\n", fake.url()),
    );
    sb.env("OIDC_BEARER_TOKEN", fake::TOKEN);
    let out = sb.run(&["ps", "--debug"]);
    no_secrets(&out, &[fake::TOKEN]);
    let out = sb.run(&["config"]);
    out.expect_code(0);
    assert!(
        out.stdout
            .contains("Credentials: bearer token from environment variable OIDC_BEARER_TOKEN"),
        "{}",
        out.stdout
    );
    no_secrets(&out, &[fake::TOKEN]);
}

#[test]
fn config_shows_the_protocol_and_where_credentials_come_from() {
    let mut sb = Sandbox::new();
    sb.write_config(
        ConfigFile::User,
        "[spalloc]\nhostname = https://bob:hunter2@spin.example.org/spalloc/\nca_file = ca.pem\n",
    );
    sb.env("SPALLOC_PASSWORD", "from-env-pw");
    let out = sb.run(&["config"]);
    out.expect_code(0);
    let user_file = sb.config_path(ConfigFile::User);
    assert!(
        out.stdout
            .contains("https://bob:***@spin.example.org/spalloc/"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(
            "\nServer: https://spin.example.org/spalloc/ (protocol v2: the REST service)\n\
             Credentials: user bob (from the service URL), password from environment variable SPALLOC_PASSWORD\n"
        ),
        "{}",
        out.stdout
    );
    // A relative ca_file is the configuration file's neighbour.
    let ca = user_file.with_file_name("ca.pem");
    assert!(
        out.stdout.contains(&ca.display().to_string()),
        "{}",
        out.stdout
    );
    no_secrets(&out, &["hunter2", "from-env-pw"]);
    let out = sb.run(&["config", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(v["server"]["protocol"], "v2");
    assert_eq!(v["server"]["url"], "https://spin.example.org/spalloc/");
    no_secrets(&out, &["hunter2", "from-env-pw"]);
}

#[test]
fn signals_release_a_queued_job_and_watches_follow_changes() {
    let server = start();
    let url = server.v2_url().expect("v2");
    let sb = sandbox(url, None);
    let mut c = rest(&server);
    let mut o = CreateJobOptions::new("");
    o.machine = Some("small".into());
    // Every board of `small` taken: the next job there queues.
    let hog = c
        .create_job(
            &JobRequest::Triads {
                width: 1,
                height: 1,
            },
            &o,
        )
        .expect("hog");
    let running = sb.spawn(&["alloc", "-m", "small", "3", "-c", "true"]);
    assert!(
        running.wait_for_stderr("Waiting in queue", PATIENCE),
        "{}",
        running.stderr()
    );
    running.signal(15);
    let out = running.finish(PATIENCE);
    out.expect_code(143);
    let ids = c.job_ids(true).expect("jobs");
    let queued = ids
        .iter()
        .copied()
        .find(|i| *i != hog)
        .expect("the queued job");
    let info = c.job(queued).expect("job").expect("known");
    assert_eq!(info.state, JobState::Destroyed, "the job was left behind");

    // `job --watch` redraws when the boards are powered off.
    let watching = sb.spawn(&["job", &hog.to_string(), "--watch"]);
    assert!(
        watching.wait_for_stdout("Board power: on", PATIENCE),
        "{}",
        watching.stdout()
    );
    c.set_power(hog, false).expect("power off");
    assert!(
        watching.wait_for_stdout("Board power: off", PATIENCE),
        "{}",
        watching.stdout()
    );
    watching.signal(2);
    watching.finish(PATIENCE).expect_code(0);
}
