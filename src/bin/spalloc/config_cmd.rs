//! `spalloc config`: where configuration is read from, and each key's
//! effective value and the file that set it. Contacts no server.

use std::process::ExitCode;

use serde_json::{Map, Value};
use spalloc::{ConfigEntry, ConfigValue, FileStatus};

use crate::Ctx;
use crate::args::ConfigArgs;
use crate::common::{load_config, print};
use crate::exit::CliResult;
use crate::json;
use crate::pyfmt::py_float;
use crate::term::{Cell, render_table};
use crate::visible::visible;

/// Runs `spalloc config`.
pub fn run(args: ConfigArgs, ctx: &Ctx) -> CliResult {
    let config = load_config()?;
    let entries = config.entries();
    if args.json {
        let files: Vec<Value> = config
            .files()
            .iter()
            .map(|f| {
                let status = match f.status {
                    FileStatus::Read => "read",
                    FileStatus::NotFound => "not_found",
                    FileStatus::NotAFile => "not_a_file",
                };
                serde_json::json!({"path": f.path.display().to_string(), "status": status})
            })
            .collect();
        let values: Map<String, Value> = entries
            .iter()
            .map(|e| {
                let source = e
                    .source
                    .as_ref()
                    .map_or_else(|| "default".to_owned(), |p| p.display().to_string());
                (
                    e.key.to_owned(),
                    serde_json::json!({"value": typed(&e.value), "source": source}),
                )
            })
            .collect();
        print(&json::line(
            &serde_json::json!({"search_path": files, "values": values}),
        ))?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = String::from("Config files (lowest priority first):\n");
    let width = config
        .files()
        .iter()
        .map(|f| visible(&f.path.display().to_string()).chars().count())
        .max()
        .unwrap_or(0);
    for f in config.files() {
        let path = visible(&f.path.display().to_string()).into_owned();
        let pad = width - path.chars().count() + 2;
        out.push_str(&format!("  {path}{}{}\n", " ".repeat(pad), f.status));
    }
    out.push('\n');
    let rows: Vec<Vec<Cell>> = entries
        .iter()
        .map(|e| {
            vec![
                Cell::from(e.key),
                Cell::from(display(e)),
                Cell::from(
                    e.source
                        .as_ref()
                        .map_or_else(|| "default".to_owned(), |p| p.display().to_string()),
                ),
            ]
        })
        .collect();
    out.push_str(&render_table(
        &["Key", "Value", "Source"],
        &rows,
        ctx.term.out_colour,
    ));
    print(&out)?;
    Ok(ExitCode::SUCCESS)
}

/// A value in configuration-file syntax.
fn display(e: &ConfigEntry) -> String {
    match &e.value {
        ConfigValue::Str(None) if matches!(e.key, "hostname" | "owner") => "(not set)".into(),
        ConfigValue::Str(None)
        | ConfigValue::Int(None)
        | ConfigValue::Float(None)
        | ConfigValue::List(None) => "None".into(),
        ConfigValue::Str(Some(s)) => s.clone(),
        ConfigValue::Int(Some(i)) => i.to_string(),
        ConfigValue::Float(Some(f)) => py_float(*f),
        ConfigValue::Bool(b) => if *b { "True" } else { "False" }.into(),
        ConfigValue::List(Some(items)) => items.join(","),
    }
}

fn typed(v: &ConfigValue) -> Value {
    match v {
        ConfigValue::Str(s) => s.clone().into(),
        ConfigValue::Int(i) => (*i).into(),
        ConfigValue::Float(f) => f
            .and_then(serde_json::Number::from_f64)
            .map_or(Value::Null, Value::Number),
        ConfigValue::Bool(b) => (*b).into(),
        ConfigValue::List(l) => l.clone().into(),
    }
}
