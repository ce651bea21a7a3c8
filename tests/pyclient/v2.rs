//! The published Python v2 client (SpiNNMan `1!7.4.1`'s `SpallocClient`,
//! which SpiNNaker's own tool chain uses) against `spalloc serve`'s v2
//! service over HTTPS with the throw-away certificate: log in, list
//! machines, create a job, wait until it is ready, read its connections
//! and root host, where-is, keepalive, destroy, and see it destroyed; and
//! its proxied connections (`connect_to_board`, `connect_for_booting`)
//! through the proxy websocket to the virtual boards, which answer SCP's
//! version command.
//!
//! The client comes from `$SPALLOC_SPINNMAN_VENV` (a virtualenv, as
//! `.ci/run` prepares), or is installed once into a virtualenv under the
//! target directory. If that is impossible (no network, no `python3`), the
//! test is skipped with a message, except under `CI=true`, where it fails.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::cli::{Sandbox, finish};

const PACKAGE: &str = "spinnman==1!7.4.1";

/// Starts `spalloc serve` with HTTPS and users; returns it, the v2 URL and
/// the CA file.
fn serve(sb: &Sandbox) -> (crate::support::cli::Running, String, PathBuf) {
    let config = sb.cwd().join("server.toml");
    std::fs::write(
        &config,
        "[server]\npower_delay = 0\nseconds_before_free = 0\n\n\
         [v2]\nport = 0\nboard_scp_port = 0\nboard_boot_port = 0\n\n\
         [[v2.user]]\nname = \"alice\"\npassword = \"alice's password\"\n\n\
         [[v2.user]]\nname = \"root\"\npassword = \"root-pw\"\nrole = \"admin\"\n\n\
         [[machine]]\nname = \"m\"\nwidth = 2\nheight = 2\ndead_boards = [[1, 1, 2]]\n",
    )
    .expect("write the server config");
    let ca = sb.cwd().join("v2-ca.pem");
    let server = sb.spawn(&[
        "serve",
        "--config",
        &config.display().to_string(),
        "--port",
        "0",
        "--v2-self-signed",
        &ca.display().to_string(),
    ]);
    assert!(
        server.wait_for_stdout("v2 service at", Duration::from_secs(20)),
        "{}",
        server.stderr()
    );
    let url = server
        .stdout()
        .lines()
        .find_map(|l| l.strip_prefix("spalloc v2 service at "))
        .expect("the v2 URL")
        .to_owned();
    (server, url, ca)
}

#[test]
fn spinnman_spalloc_client_works_against_the_v2_service() {
    let Some(venv) = super::venv_or_skip(
        "spinnman_spalloc_client_works_against_the_v2_service",
        "SPALLOC_SPINNMAN_VENV",
        "spinnman-venv",
        PACKAGE,
    ) else {
        return;
    };
    let mut sb = Sandbox::new();
    let (server, url, ca) = serve(&sb);
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    sb.env("REQUESTS_CA_BUNDLE", &ca.display().to_string());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pyclient/spinnman_v2.py");
    let mut cmd = sb.command(
        &venv.join("bin/python"),
        &[
            &script.display().to_string(),
            &url,
            "alice",
            "alice's password",
            "5",
        ],
    );
    let out = finish(cmd.spawn().expect("run python"), Duration::from_secs(180));
    assert_eq!(
        out.code,
        Some(0),
        "SpiNNMan failed:\n{}\n{}\n--- server ---\n{}",
        out.stdout,
        out.stderr,
        server.stderr()
    );
    let line = out.stdout.lines().last().unwrap_or_default();
    let got: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {}", out.stdout));

    assert_eq!(got["version"], "7.4.1");
    assert_eq!(
        got["machines"]["m"],
        json!({"width": 2, "height": 2, "tags": ["default"],
               "dead_boards": [{"x": 1, "y": 1, "z": 2, "cabinet": 0, "frame": 0, "board": 7,
                                "address": "192.168.0.57"}],
               "dead_links": []})
    );
    // Five boards: two triads side by side, every board's Ethernet chip.
    assert_eq!(got["state"], "READY");
    let connections = got["connections"].as_array().expect("connections");
    assert_eq!(connections.len(), 6);
    assert_eq!(connections[0], json!([0, 0, got["root"]]));
    assert!(
        got["root"]
            .as_str()
            .is_some_and(|r| r.starts_with("192.168.0."))
    );
    // Chip (9, 5) of the job is on its root triad's second board.
    assert_eq!(got["where_is_9_5"].as_array().map(Vec::len), Some(3));
    assert_eq!(got["listed"], 1);
    assert_eq!(got["keepalive_host"], "127.0.0.1");
    assert_eq!(got["after_destroy"], "DESTROYED");
    assert_eq!(got["waited"], "DESTROYED");
    assert_eq!(got["reason"], "done by spinnman");

    // The server agrees, asked over v1 as well.
    let v1_port: u16 = server
        .stdout()
        .lines()
        .find_map(|l| l.strip_prefix("spalloc virtual server listening on "))
        .and_then(|a| a.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .expect("v1 port");
    let mut c =
        spalloc::ProtocolClient::connect("127.0.0.1", v1_port, Some(Duration::from_secs(10)))
            .expect("connect to v1");
    assert!(c.list_jobs().expect("list_jobs").is_empty());
    let s = c.get_job_state(1).expect("state");
    assert_eq!(s.reason.as_deref(), Some("done by spinnman"));
    server.signal(15);
}

#[test]
fn spinnman_reaches_every_board_through_the_proxy() {
    let Some(venv) = super::venv_or_skip(
        "spinnman_reaches_every_board_through_the_proxy",
        "SPALLOC_SPINNMAN_VENV",
        "spinnman-venv",
        PACKAGE,
    ) else {
        return;
    };
    let mut sb = Sandbox::new();
    let (server, url, ca) = serve(&sb);
    let ca = ca.display().to_string();
    sb.env("REQUESTS_CA_BUNDLE", &ca);
    // websocket-client's own variable, for the wss:// proxy.
    sb.env("WEBSOCKET_CLIENT_CA_BUNDLE", &ca);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pyclient/spinnman_proxy.py");
    let mut cmd = sb.command(
        &venv.join("bin/python"),
        &[
            &script.display().to_string(),
            &url,
            "alice",
            "alice's password",
            "5",
        ],
    );
    let out = finish(cmd.spawn().expect("run python"), Duration::from_secs(180));
    assert_eq!(
        out.code,
        Some(0),
        "SpiNNMan failed:\n{}\n{}\n--- server ---\n{}",
        out.stdout,
        out.stderr,
        server.stderr()
    );
    let line = out.stdout.lines().last().unwrap_or_default();
    let got: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {}", out.stdout));
    let boards = got["boards"].as_array().expect("boards");
    // Every board of the job (two triads, one of whose boards is dead).
    assert_eq!(boards.len(), 6, "{got}");
    for b in boards {
        let (x, y) = (
            b["chip"][0].as_u64().expect("x"),
            b["chip"][1].as_u64().expect("y"),
        );
        assert_eq!(b["result"], "RC_OK", "{b}");
        assert_eq!(b["sequence"], 100 + x + 16 * y, "{b}");
        // The version comes from the chip the request was addressed to.
        assert_eq!(b["reply_chip"], json!([x, y]), "{b}");
        assert_eq!(b["core"], 0);
        assert_eq!(b["name"], "SC&MP");
        assert_eq!(b["hardware"], "SpiNNaker");
        assert_eq!(b["version"], json!([4, 0, 0]));
    }
    assert_eq!(got["boot"], "sent");
    server.signal(15);
}
