//! `spalloc serve`: the example configuration, the address it reports,
//! clean shutdown on signals, configuration errors, and jobs that survive a
//! restart with a state file.

use std::path::Path;
use std::time::Duration;

use serde_json::json;
use spalloc::server::{ServerConfig, V2Role, V2Tls};
use spalloc::{CreateJobOptions, JobRequest, ProtocolClient};

use crate::support::cli::{Running, Sandbox};
use crate::support::http::Http;

const LONG: Duration = Duration::from_secs(20);

fn example() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/virtual-server.toml")
        .display()
        .to_string()
}

/// Starts `spalloc serve ARGS…` and returns it with the port it listens on,
/// once it has printed both of its lines (the second, listing the
/// machines, may arrive separately from the first).
fn serve(sb: &Sandbox, args: &[&str]) -> (Running, u16) {
    let running = sb.spawn(&[&["serve"], args].concat());
    let machines = running.wait_for_stdout_line("machines: ", LONG);
    assert!(machines.is_some(), "{}", running.stderr());
    let out = running.stdout();
    let addr = out
        .lines()
        .find_map(|l| l.strip_prefix("spalloc virtual server listening on "))
        .unwrap_or_default();
    let port = addr
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    assert_ne!(port, 0, "{out}");
    (running, port)
}

#[test]
fn the_example_configuration_is_valid() {
    let config = ServerConfig::from_file(Path::new(&example())).expect("example parses");
    assert_eq!(config.machines.len(), 3);
    assert_eq!(config.listen.port(), 22244);
    let v2 = config.v2.expect("the example runs v2");
    assert_eq!(v2.listen.map(|a| a.port()), Some(22245));
    assert_eq!(v2.base_path, "/spalloc/");
    assert_eq!(v2.tls, V2Tls::Off);
    let names: Vec<(&str, V2Role)> = v2.users.iter().map(|u| (u.name.as_str(), u.role)).collect();
    assert_eq!(
        names,
        vec![("alice", V2Role::User), ("admin", V2Role::Admin)]
    );
}

/// The v2 URL `spalloc serve` printed.
fn v2_url(running: &Running) -> String {
    running
        .stdout()
        .lines()
        .find_map(|l| l.strip_prefix("spalloc v2 service at "))
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("no v2 URL in {:?}", running.stdout()))
}

#[test]
fn serves_v2_beside_v1_with_the_test_user() {
    let sb = Sandbox::new();
    let (running, port) = serve(&sb, &["--port", "0", "--power-delay", "0"]);
    let url = v2_url(&running);
    assert!(
        url.starts_with("http://127.0.0.1:") && url.ends_with("/spalloc/"),
        "{url}"
    );
    assert!(
        running
            .stdout()
            .contains("v2 login: user \"test\", password \"test\" (the built-in test user)")
    );
    // A job made through v2 by the test user is there through v1.
    let mut h = Http::at(&url, None);
    h.login("test", "test");
    let id =
        h.create(&json!({"num-boards": 1, "tags": ["default"], "keepalive-interval": "PT60S"}));
    let mut c = ProtocolClient::connect("127.0.0.1", port, Some(LONG)).expect("connect");
    let jobs = c.list_jobs().expect("list");
    assert_eq!(jobs.iter().map(|j| j.job_id).collect::<Vec<_>>(), vec![id]);
    assert_eq!(jobs[0].owner.as_deref(), Some("test"));
    running.signal(15);
    running.finish(LONG).expect_code(0);
}

#[test]
fn v2_flags_choose_port_tls_or_none() {
    // --no-v2: only v1.
    let sb = Sandbox::new();
    let (running, _) = serve(&sb, &["--port", "0", "--no-v2"]);
    assert!(!running.stdout().contains("v2"), "{}", running.stdout());
    running.signal(2);
    running.finish(LONG).expect_code(0);

    // --v2-port and --v2-self-signed: HTTPS on that port, the CA written.
    let sb = Sandbox::new();
    let port = crate::support::dead_port();
    let ca = sb.cwd().join("ca.pem");
    let (running, _) = serve(
        &sb,
        &[
            "--port",
            "0",
            "--v2-port",
            &port.to_string(),
            "--v2-self-signed",
            &ca.display().to_string(),
        ],
    );
    let url = v2_url(&running);
    assert_eq!(url, format!("https://127.0.0.1:{port}/spalloc/"));
    let pem = std::fs::read_to_string(&ca).expect("the CA file");
    let mut h = Http::at(&url, Some(&pem));
    h.login("test", "test");
    h.get(&h.srv("machines")).expect(200);
    running.signal(2);
    running.finish(LONG).expect_code(0);
}

#[test]
fn v2_settings_and_users_from_the_file() {
    let sb = Sandbox::new();
    let file = sb.cwd().join("v2.toml");
    std::fs::write(
        &file,
        "[v2]\nport = 0\nbase_path = \"/alloc/\"\n\n\
         [[v2.user]]\nname = \"ann\"\npassword = \"pw\"\n",
    )
    .expect("write");
    let (running, _) = serve(
        &sb,
        &["--config", &file.display().to_string(), "--port", "0"],
    );
    let url = v2_url(&running);
    assert!(url.ends_with("/alloc/"), "{url}");
    assert!(!running.stdout().contains("test user"));
    let mut h = Http::at(&url, None);
    h.login("ann", "pw");
    let (csrf, temp) = h.login_page();
    h.post_login(&temp, &csrf, "test", "test").expect(401);
    running.signal(15);
    running.finish(LONG).expect_code(0);

    // enabled = false turns it off.
    std::fs::write(&file, "[v2]\nenabled = false\n").expect("write");
    let (running, _) = serve(
        &sb,
        &["--config", &file.display().to_string(), "--port", "0"],
    );
    assert!(!running.stdout().contains("v2 service"));
    running.signal(15);
    running.finish(LONG).expect_code(0);
}

#[test]
fn v2_configuration_errors_name_the_field() {
    let sb = Sandbox::new();
    let bad = sb.cwd().join("bad.toml");
    for (text, field) in [
        ("[v2]\nbase_path = \"spalloc\"\n", "v2.base_path"),
        ("[v2]\nportt = 1\n", "portt"),
        ("[[v2.user]]\nname = \"a\"\n", "v2.user[0]"),
        (
            "[[v2.user]]\nname = \"a\"\npassword = \"x\"\nrole = \"boss\"\n",
            "v2.user[0].role",
        ),
        ("[v2]\ntls_cert = \"c.pem\"\n", "v2.tls_cert"),
        ("[v2]\nkeepalive_min = 400\n", "v2.keepalive_min"),
        (
            "[[v2.user]]\nname = \"a\"\npassword = \"x\"\ngroups = [\"g\", \" \"]\n",
            "v2.user[0].groups[1]",
        ),
    ] {
        std::fs::write(&bad, text).expect("write");
        let out = sb.run(&["serve", "--config", &bad.display().to_string()]);
        out.expect_code(2);
        assert!(out.stderr.contains(field), "{text}: {}", out.stderr);
    }
    // A v2 port that is taken: the message names the v2 address.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port().to_string();
    let out = sb.run(&["serve", "--port", "0", "--v2-port", &port]);
    assert_ne!(out.code, Some(0));
    assert!(
        out.stderr
            .contains(&format!("v2 service: cannot listen on 127.0.0.1:{port}")),
        "{}",
        out.stderr
    );
    // A certificate file that is not there: named when the server starts.
    std::fs::write(
        &bad,
        "[v2]\nport = 0\ntls_cert = \"/no/cert.pem\"\ntls_key = \"/no/key.pem\"\n",
    )
    .expect("write");
    let out = sb.run(&[
        "serve",
        "--config",
        &bad.display().to_string(),
        "--port",
        "0",
    ]);
    assert_ne!(out.code, Some(0));
    assert!(out.stderr.contains("/no/cert.pem"), "{}", out.stderr);
}

#[test]
fn serves_the_example_and_stops_on_signals() {
    for signal in [2, 15, 1] {
        let sb = Sandbox::new();
        let (running, port) = serve(
            &sb,
            &[
                "--config",
                &example(),
                "--port",
                "0",
                "--v2-port",
                "0",
                "--power-delay",
                "0",
            ],
        );
        assert!(
            running
                .stdout()
                .contains("machines: spin24 (4x2 triads), big (4x3 triads), one (1x1 triads)")
        );
        let out = sb.run(&["machine", "-H", "127.0.0.1", "-P", &port.to_string()]);
        out.expect_code(0);
        assert_eq!(
            out.stdout,
            "Name    Num boards  In-use  Jobs  Tags\nspin24          24       0     0  default\nbig             34       0     0  big\none              1       0     0  small\n"
        );
        running.signal(signal);
        running.finish(LONG).expect_code(0);
    }
}

#[test]
fn configuration_errors_name_the_field() {
    let sb = Sandbox::new();
    let bad = sb.cwd().join("bad.toml");
    std::fs::write(&bad, "[server]\npower_delay = \"soon\"\n").expect("write");
    let out = sb.run(&["serve", "--config", &bad.display().to_string()]);
    out.expect_code(2);
    assert!(out.stderr.contains("power_delay"), "{}", out.stderr);
    let out = sb.run(&["serve", "--config", "/no/such/file.toml"]);
    out.expect_code(2);
    assert!(out.stderr.contains("/no/such/file.toml"), "{}", out.stderr);
}

#[test]
fn a_state_file_that_cannot_be_written_stops_the_start() {
    let sb = Sandbox::new();
    let out = sb.run(&[
        "serve",
        "--port",
        "0",
        "--state-file",
        "/nonexistent/dir/x.json",
    ]);
    out.expect_code(2);
    assert!(
        out.stderr.starts_with(
            "spalloc serve: state file /nonexistent/dir/x.json: cannot be written there: no such file or directory"
        ),
        "{}",
        out.stderr
    );
    assert_eq!(out.stdout, "");
}

#[test]
fn a_corrupt_state_file_is_reported_as_such() {
    let sb = Sandbox::new();
    let state = sb.cwd().join("state.json");
    std::fs::write(&state, "{ not json").expect("write");
    let out = sb.run(&[
        "serve",
        "--port",
        "0",
        "--state-file",
        &state.display().to_string(),
    ]);
    out.expect_code(1);
    assert!(
        out.stderr.starts_with(&format!(
            "spalloc serve: state file {} is unusable: ",
            state.display()
        )),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("cannot listen"), "{}", out.stderr);
    // A directory where the file should be cannot be read either.
    let dir = sb.cwd().join("dir.json");
    std::fs::create_dir(&dir).expect("mkdir");
    let out = sb.run(&[
        "serve",
        "--port",
        "0",
        "--state-file",
        &dir.display().to_string(),
    ]);
    assert_ne!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stderr.contains(&dir.display().to_string()),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("cannot listen"), "{}", out.stderr);
}

#[test]
fn jobs_survive_a_restart_with_a_state_file() {
    let sb = Sandbox::new();
    let state = sb.cwd().join("state.json").display().to_string();
    let (first, port) = serve(
        &sb,
        &["--port", "0", "--power-delay", "0", "--state-file", &state],
    );
    let mut c = ProtocolClient::connect("127.0.0.1", port, Some(LONG)).expect("connect");
    let mut o = CreateJobOptions::new("me");
    o.keepalive = None;
    let id = c.create_job(&JobRequest::Boards(3), &o).expect("create");
    drop(c);
    // And one through v2, destroyed: its history survives too.
    let mut h = Http::at(&v2_url(&first), None);
    h.login("test", "test");
    let gone =
        h.create(&json!({"num-boards": 1, "tags": ["default"], "keepalive-interval": "PT60S"}));
    h.delete(&h.srv(&format!("jobs/{gone}?reason=old")))
        .expect(204);
    first.signal(15);
    first.finish(LONG).expect_code(0);

    let (second, again) = serve(
        &sb,
        &[
            "--port",
            &port.to_string(),
            "--v2-port",
            "0",
            "--state-file",
            &state,
        ],
    );
    assert_eq!(again, port);
    let mut c = ProtocolClient::connect("127.0.0.1", port, Some(LONG)).expect("connect");
    let jobs = c.list_jobs().expect("list");
    assert_eq!(jobs.iter().map(|j| j.job_id).collect::<Vec<_>>(), vec![id]);
    assert_eq!(jobs[0].boards.len(), 3);
    let mut h = Http::at(&v2_url(&second), None);
    h.login("test", "test");
    let old = h.job(gone);
    assert_eq!(
        (old["state"].clone(), old["reason"].clone()),
        (json!("DESTROYED"), json!("old"))
    );
    assert_eq!(old["original-request"]["num-boards"], 1);
    second.signal(2);
    second.finish(LONG).expect_code(0);
}
