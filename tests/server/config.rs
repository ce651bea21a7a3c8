//! Configuration files and defaults.

use std::time::Duration;

use serde_json::json;
use spalloc::server::{ServerConfig, VirtualServer};

use super::{Client, TestResult, fail};

const EXAMPLE: &str = r#"
[server]
ip = "127.0.0.1"
port = 0
timeout_check_interval = 0.05
max_retired_jobs = 10
seconds_before_free = 0
power_delay = 0
version = "1.2.3"

[[machine]]
name = "m"
tags = ["default", "big"]
width = 2
height = 2
dead_boards = [[0, 0, 1]]
dead_links = [[1, 1, 1, "north"], [1, 1, 0, 3], [0, 1, 0, "South-West"]]
layout = "spinner"
base_ip = "10.2.0.0"

[[machine]]
name = "one"
tags = ["small"]
base_ip = "10.3.0.0"
single_board = { spinnaker_ip = "10.3.0.1", bmp_ip = "10.3.0.0" }

[[machine]]
name = "hand"
tags = ["hand"]
layout = "explicit"
dead_boards = [[0, 0, 2]]
boards = [
  { x = 0, y = 0, z = 0, cabinet = 1, frame = 2, board = 3, ip = "hand-0" },
  { x = 0, y = 0, z = 1, cabinet = 1, frame = 2, board = 4 },
]
"#;

fn error_of(text: &str) -> String {
    match ServerConfig::from_toml_str(text) {
        Ok(_) => String::new(),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_full_config_file_runs() -> TestResult {
    let config = ServerConfig::from_toml_str(EXAMPLE)?;
    assert_eq!(config.timeout_check_interval, Duration::from_millis(50));
    assert_eq!(config.max_retired_jobs, 10);
    assert_eq!(config.machines.len(), 3);
    let server = VirtualServer::start(config)?;
    let mut c = Client::connect(server.local_addr())?;
    assert_eq!(c.call("version", json!([]), json!({}))?, "1.2.3");
    let machines = c.call("list_machines", json!([]), json!({}))?;
    assert_eq!(
        machines,
        json!([
            {"name": "m", "tags": ["big", "default"], "width": 2, "height": 2,
             "dead_boards": [[0, 0, 1]], "dead_links": [[0, 1, 0, 4], [1, 1, 0, 3], [1, 1, 1, 2]]},
            {"name": "one", "tags": ["small"], "width": 1, "height": 1,
             "dead_boards": [[0, 0, 1], [0, 0, 2]], "dead_links": []},
            {"name": "hand", "tags": ["hand"], "width": 1, "height": 1,
             "dead_boards": [[0, 0, 2]], "dead_links": []},
        ])
    );
    let one = c.create(json!([]), json!({"tags": ["small"]}))?;
    assert_eq!(c.info(one)?["connections"], json!([[[0, 0], "10.3.0.1"]]));
    let m = c.create(json!([0, 0, 0]), json!({}))?;
    assert_eq!(c.info(m)?["connections"], json!([[[0, 0], "10.2.0.1"]]));
    let hand = c.create(json!([1, 1]), json!({"machine": "hand"}))?;
    assert_eq!(
        c.info(hand)?["connections"],
        json!([[[0, 0], "hand-0"], [[8, 4], "192.168.7.33"]])
    );
    assert_eq!(
        c.call("get_board_position", json!(["hand", 0, 0, 1]), json!({}))?,
        json!([1, 2, 4])
    );
    Ok(())
}

#[test]
fn config_files_are_read_from_disk() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("server.toml");
    std::fs::write(&path, "[server]\nport = 0\nversion = \"1.0.0\"\n")?;
    let config = ServerConfig::from_file(&path)?;
    assert_eq!(config.version, "1.0.0");
    assert_eq!(config.listen.port(), 0);

    std::fs::write(&path, "[server]\npower_delay = -1\n")?;
    let e = ServerConfig::from_file(&path)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(e.starts_with(&path.display().to_string()), "{e}");
    assert!(e.contains("server.power_delay"), "{e}");

    let missing = dir.path().join("nope.toml");
    let e = ServerConfig::from_file(&missing)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(e.contains("nope.toml") && e.contains("cannot read"), "{e}");
    Ok(())
}

#[test]
fn errors_name_the_field() -> TestResult {
    let cases = [
        ("[server]\nport = \"x\"\n", "port"),
        ("[server]\nport = 70000\n", "port"),
        ("[server]\nbogus = 1\n", "bogus"),
        ("[server]\nip = \"localhost\"\n", "server.ip"),
        (
            "[server]\ntimeout_check_interval = 0\n",
            "server.timeout_check_interval",
        ),
        (
            "[[machine]]\nname = \"m\"\nheight = 1\n",
            "machine[0].width",
        ),
        (
            "[[machine]]\nname = \"m\"\nwidth = 0\nheight = 1\n",
            "machine[0].width",
        ),
        (
            "[[machine]]\nname = \"m\"\nwidth = 1\nheight = 1\ndead_boards = [[1, 0, 0]]\n",
            "machine[0].dead_boards[0]",
        ),
        (
            "[[machine]]\nname = \"m\"\nwidth = 1\nheight = 1\ndead_links = [[0, 0, 0, \"up\"]]\n",
            "machine[0].dead_links[0]",
        ),
        (
            "[[machine]]\nname = \"m\"\nwidth = 1\nheight = 1\ndead_links = [[0, 0, 0, 6]]\n",
            "machine[0].dead_links[0]",
        ),
        (
            "[[machine]]\nname = \"m\"\nwidth = 1\nheight = 1\nlayout = \"round\"\n",
            "machine[0].layout",
        ),
        (
            "[[machine]]\nname = \"m\"\nwidth = 1\nheight = 1\nbase_ip = \"1.2.3\"\n",
            "machine[0].base_ip",
        ),
        (
            "[[machine]]\nname = \"m\"\nwidth = 1\nheight = 1\n[[machine]]\nname = \"m\"\nwidth = 1\nheight = 1\nbase_ip = \"10.0.0.0\"\n",
            "machine[1].name",
        ),
        (
            "[[machine]]\nname = \"a\"\nwidth = 1\nheight = 1\n[[machine]]\nname = \"b\"\nwidth = 1\nheight = 1\n",
            "machine[1].base_ip",
        ),
        (
            "[[machine]]\nname = \"m\"\nwidth = 1\nheight = 1\ncolour = 1\n",
            "colour",
        ),
        (
            "[[machine]]\nname = \"m\"\nlayout = \"explicit\"\nboards = [{ x = 0, y = 0, z = 0, cabinet = 0, frame = 0, board = 0 }]\n",
            "machine[0].boards",
        ),
        (
            "[[machine]]\nname = \"m\"\nsingle_board = { spinnaker_ip = \"1.1.1.1\" }\nwidth = 2\n",
            "machine[0].single_board",
        ),
    ];
    for (text, field) in cases {
        let e = error_of(text);
        if !e.contains(field) {
            return fail(format!("{text:?}: error {e:?} does not name {field:?}"));
        }
    }
    Ok(())
}

#[test]
fn default_server_has_one_virtual_machine_and_version() -> TestResult {
    let server = VirtualServer::start(ServerConfig::instant())?;
    let mut c = Client::connect(server.local_addr())?;
    assert_eq!(c.call("version", json!([]), json!({}))?, "1.1.0");
    assert_eq!(
        c.call("list_machines", json!([]), json!({}))?,
        json!([{"name": "virtual", "tags": ["default"], "width": 4, "height": 2,
                "dead_boards": [], "dead_links": []}])
    );
    // An invalid configuration is refused at start.
    let bad = ServerConfig::instant().max_line_length(0);
    let e = VirtualServer::start(bad)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(e.contains("max_line_length"), "{e}");
    Ok(())
}
