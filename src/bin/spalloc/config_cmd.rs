//! `spalloc config`: where configuration is read from, and each key's
//! effective value and the file that set it. Contacts no server.

use std::process::ExitCode;

use spalloc::{ConfigEntry, ConfigValue};

use crate::Ctx;
use crate::args::ConfigArgs;
use crate::exit::CliResult;
use crate::render::json::{self, ConfigView};
use crate::render::pyfmt::py_float;
use crate::render::{Cell, render_table, visible};
use crate::{print, settings};

/// Runs `spalloc config`.
pub fn run(args: ConfigArgs, ctx: &Ctx) -> CliResult {
    let config = settings::load_config()?;
    let entries = config.entries();
    if args.json {
        print(&json::line(&ConfigView::new(config.files(), &entries)))?;
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
