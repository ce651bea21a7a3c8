//! `spalloc config`: the search path and its statuses, each key's value and
//! source with key-by-key precedence, configparser syntax, errors and JSON.

use serde_json::{Value, json};

use super::{same, sample_server};
use crate::support::cli::{ConfigFile, Sandbox};

/// The `Key  Value  Source` table for these rows, laid out as §4.1 says.
fn table(rows: &[(&str, &str, &str)]) -> String {
    let kw = rows.iter().map(|r| r.0.len()).max().unwrap_or(0).max(3);
    let vw = rows
        .iter()
        .map(|r| r.1.chars().count())
        .max()
        .unwrap_or(0)
        .max(5);
    let mut out = format!("{:<kw$}  {:<vw$}  Source\n", "Key", "Value");
    for (k, v, s) in rows {
        out.push_str(format!("{k:<kw$}  {v:<vw$}  {s}").trim_end());
        out.push('\n');
    }
    out
}

/// The search-path block for the sandbox's three files.
fn search_path(sb: &Sandbox, status: [&str; 3]) -> String {
    let paths = [
        sb.config_path(ConfigFile::System).display().to_string(),
        sb.config_path(ConfigFile::User).display().to_string(),
        "./.spalloc".to_owned(),
    ];
    let w = paths.iter().map(String::len).max().unwrap_or(0);
    let mut out = String::from("Config files (lowest priority first):\n");
    for (p, s) in paths.iter().zip(status) {
        out.push_str(&format!("  {p:<w$}  {s}\n"));
    }
    out.push('\n');
    out
}

#[test]
fn defaults_when_no_file_exists() {
    let sb = Sandbox::new();
    let out = sb.run(&["config"]);
    out.expect_code(0);
    same("", &out.stderr);
    let expected = search_path(&sb, ["not found"; 3])
        + &table(&[
            ("hostname", "(not set)", "default"),
            ("owner", "(not set)", "default"),
            ("port", "22244", "default"),
            ("keepalive", "60.0", "default"),
            ("reconnect_delay", "5.0", "default"),
            ("timeout", "10.0", "default"),
            ("machine", "None", "default"),
            ("tags", "None", "default"),
            ("min_ratio", "0.333", "default"),
            ("max_dead_boards", "0", "default"),
            ("max_dead_links", "None", "default"),
            ("require_torus", "False", "default"),
            ("ignore_version", "False", "default"),
        ]);
    same(&expected, &out.stdout);
}

/// Three files, each overriding the one before key by key, in
/// configparser syntax: `=` or `:`, any key case, trimmed values, comment
/// lines, booleans in any case, and `None`.
fn three_files(sb: &Sandbox) {
    sb.write_config(
        ConfigFile::System,
        "[spalloc]\nhostname = sys.example.org\nport = 1000\ntimeout = None\nmachine = sysm\n",
    );
    sb.write_config(
        ConfigFile::User,
        "# a comment line\n[spalloc]\n; another\nPort: 2000\nowner = user@example.org\ntags =  a, b ,c  \nmax_dead_links = 2\n",
    );
    sb.write_config(
        ConfigFile::Cwd,
        "[spalloc]\nowner=me@example.org\nignore_version = YES\nkeepalive = None\n\
         max_dead_boards = None\nmin_ratio = 0.5\nrequire_torus = On\nRECONNECT_DELAY : 0.25\n\
         machine = None\n",
    );
}

#[test]
fn values_and_sources_key_by_key() {
    let sb = Sandbox::new();
    three_files(&sb);
    let out = sb.run(&["config"]);
    out.expect_code(0);
    let sys = sb.config_path(ConfigFile::System).display().to_string();
    let user = sb.config_path(ConfigFile::User).display().to_string();
    let expected = search_path(&sb, ["read"; 3])
        + &table(&[
            ("hostname", "sys.example.org", &sys),
            ("owner", "me@example.org", "./.spalloc"),
            ("port", "2000", &user),
            ("keepalive", "None", "./.spalloc"),
            ("reconnect_delay", "0.25", "./.spalloc"),
            ("timeout", "None", &sys),
            ("machine", "None", "./.spalloc"),
            ("tags", "a,b,c", &user),
            ("min_ratio", "0.5", "./.spalloc"),
            ("max_dead_boards", "None", "./.spalloc"),
            ("max_dead_links", "2", &user),
            ("require_torus", "True", "./.spalloc"),
            ("ignore_version", "True", "./.spalloc"),
        ]);
    same(&expected, &out.stdout);

    let out = sb.run(&["config", "--json"]);
    out.expect_code(0);
    assert_eq!(out.stdout.lines().count(), 1);
    let v: Value = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(
        v["search_path"],
        json!([
            {"path": sys, "status": "read"},
            {"path": user, "status": "read"},
            {"path": "./.spalloc", "status": "read"}
        ])
    );
    let values = v["values"].as_object().expect("values");
    let keys: Vec<&str> = values.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "hostname",
            "owner",
            "port",
            "keepalive",
            "reconnect_delay",
            "timeout",
            "machine",
            "tags",
            "min_ratio",
            "max_dead_boards",
            "max_dead_links",
            "require_torus",
            "ignore_version"
        ]
    );
    let val = |k: &str| (values[k]["value"].clone(), values[k]["source"].clone());
    assert_eq!(val("hostname"), (json!("sys.example.org"), json!(sys)));
    assert_eq!(val("port"), (json!(2000), json!(user)));
    assert_eq!(val("keepalive"), (Value::Null, json!("./.spalloc")));
    assert_eq!(val("reconnect_delay"), (json!(0.25), json!("./.spalloc")));
    assert_eq!(val("timeout"), (Value::Null, json!(sys)));
    assert_eq!(val("tags"), (json!(["a", "b", "c"]), json!(user)));
    assert_eq!(val("min_ratio"), (json!(0.5), json!("./.spalloc")));
    assert_eq!(val("max_dead_links"), (json!(2), json!(user)));
    assert_eq!(val("require_torus"), (json!(true), json!("./.spalloc")));
    assert_eq!(val("ignore_version"), (json!(true), json!("./.spalloc")));

    // Without the files, every value is the default.
    let empty = Sandbox::new();
    let out = empty.run(&["config", "--json"]);
    let v: Value = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(v["search_path"][0]["status"], json!("not_found"));
    assert_eq!(
        v["values"]["hostname"],
        json!({"value": null, "source": "default"})
    );
    assert_eq!(
        v["values"]["keepalive"],
        json!({"value": 60.0, "source": "default"})
    );
    assert_eq!(
        v["values"]["port"],
        json!({"value": 22244, "source": "default"})
    );
    assert_eq!(
        v["values"]["require_torus"],
        json!({"value": false, "source": "default"})
    );
}

#[test]
fn bad_values_are_config_errors() {
    let fake = sample_server();
    let sb = Sandbox::new();
    sb.write_config(
        ConfigFile::User,
        &format!("[spalloc]\nhostname = 127.0.0.1\nport = {}\n", fake.port()),
    );
    sb.write_config(ConfigFile::Cwd, "[spalloc]\nport = abc\n");
    for args in [
        &["config"][..],
        &["config", "--json"],
        &["ps"],
        &["machine"],
        &["job", "15"],
        &["where-is", "-j", "15", "9", "5"],
    ] {
        let out = sb.run(args);
        out.expect_code(2);
        same("", &out.stdout);
        same(
            "spalloc: config error: ./.spalloc: key 'port': expected an integer, got 'abc'\n",
            &out.stderr,
        );
    }
    assert_eq!(fake.connections_made(), 0);

    // The file is named as found; other keys and types too.
    let sb = Sandbox::new();
    sb.write_config(ConfigFile::User, "[spalloc]\nrequire_torus = maybe\n");
    let out = sb.run(&["config"]);
    out.expect_code(2);
    let user = sb.config_path(ConfigFile::User).display().to_string();
    assert!(
        out.stderr.starts_with(&format!(
            "spalloc: config error: {user}: key 'require_torus': "
        )),
        "{}",
        out.stderr
    );
    // `None` is exact: `none` is not it.
    let sb = Sandbox::new();
    sb.write_config(ConfigFile::System, "[spalloc]\ntimeout = none\n");
    let out = sb.run(&["config"]);
    out.expect_code(2);
    let sys = sb.config_path(ConfigFile::System).display().to_string();
    assert!(
        out.stderr
            .starts_with(&format!("spalloc: config error: {sys}: key 'timeout': ")),
        "{}",
        out.stderr
    );
    // Settings outside any section, or a line that is no setting, are
    // errors with the line number, as in Python's configparser.
    for (text, message) in [
        (
            "port = 1\n",
            "line 1: 'port = 1' comes before any [section] header",
        ),
        (
            "[spalloc]\nowner = me\nhostname\n",
            "line 3: expected 'key = value', got 'hostname'",
        ),
    ] {
        let sb = Sandbox::new();
        sb.write_config(ConfigFile::Cwd, text);
        let out = sb.run(&["ps"]);
        out.expect_code(2);
        same(
            &format!("spalloc: config error: ./.spalloc: {message}\n"),
            &out.stderr,
        );
    }
    // A file that is not INI at all.
    let sb = Sandbox::new();
    sb.write_config(ConfigFile::Cwd, "[spalloc\nport = 1\n");
    let out = sb.run(&["config"]);
    out.expect_code(2);
    assert!(
        out.stderr
            .starts_with("spalloc: config error: ./.spalloc: "),
        "{}",
        out.stderr
    );
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
}

/// Every value is checked once, when its file is read, and reported with
/// its file and key, by every command alike (not first by `alloc`).
#[test]
fn values_are_checked_when_their_file_is_read() {
    for (text, message) in [
        (
            "[spalloc]\nmin_ratio = -1\n",
            "key 'min_ratio': expected a number that is not negative, got '-1'",
        ),
        (
            "[spalloc]\ntimeout = nan\n",
            "key 'timeout': expected a number of seconds, got NaN",
        ),
        (
            "[spalloc]\nreconnect_delay = inf\n",
            "key 'reconnect_delay': expected at most 1e9 seconds (about 32 years), got inf",
        ),
    ] {
        let sb = Sandbox::new();
        sb.write_config(ConfigFile::Cwd, text);
        for args in [&["config"][..], &["alloc", "-H", "h", "--owner", "me"]] {
            let out = sb.run(args);
            out.expect_code(2);
            same(
                &format!("spalloc: config error: ./.spalloc: {message}\n"),
                &out.stderr,
            );
        }
    }
}

/// `owner =` with nothing after it leaves the owner unset, rather than
/// looking for jobs of the owner "".
#[test]
fn an_empty_owner_is_no_owner() {
    let fake = sample_server();
    let sb = Sandbox::new();
    sb.write_config(
        ConfigFile::User,
        &format!(
            "[spalloc]\nhostname = 127.0.0.1\nport = {}\nowner =\n",
            fake.port()
        ),
    );
    let out = sb.run(&["job"]);
    out.expect_code(2);
    assert!(
        out.stderr
            .starts_with("spalloc job: error: job ID (or --owner) not specified"),
        "{}",
        out.stderr
    );
    let out = sb.run(&["config"]);
    out.expect_code(0);
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with("owner ") && l.contains("(not set)")),
        "{}",
        out.stdout
    );
}

/// A bad line is quoted only in part: a 10 MB line gives a short message.
#[test]
fn long_bad_input_is_quoted_in_part() {
    let sb = Sandbox::new();
    let long = "x".repeat(10 << 20);
    sb.write_config(ConfigFile::Cwd, &format!("[spalloc]\nport = {long}\n"));
    let out = sb.run(&["config"]);
    out.expect_code(2);
    assert!(out.stderr.len() < 300, "{} bytes", out.stderr.len());
    assert!(
        out.stderr.starts_with(&format!(
            "spalloc: config error: ./.spalloc: key 'port': expected an integer, got '{}…' ({} bytes)",
            "x".repeat(60),
            long.len()
        )),
        "{}",
        &out.stderr[..out.stderr.len().min(300)]
    );
    sb.write_config(ConfigFile::Cwd, &format!("[spalloc]\n{long}\n"));
    let out = sb.run(&["config"]);
    out.expect_code(2);
    assert!(out.stderr.len() < 300, "{} bytes", out.stderr.len());
}
