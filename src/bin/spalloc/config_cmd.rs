//! `spalloc config`: where configuration is read from, and each key's
//! effective value and the file that set it. Contacts no server.

use std::process::ExitCode;

use spalloc::{ConfigEntry, ConfigValue, Protocol};

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
    let mut entries = config.entries();
    // A password in the service URL is not shown.
    for e in &mut entries {
        if let ConfigValue::Str(Some(url)) = &mut e.value {
            *url = without_password(url);
        }
    }
    let v2 = V2View::of(&config)?;
    if args.json {
        let mut view = ConfigView::new(config.files(), &entries);
        if let Some(v2) = &v2 {
            view = view.v2(&v2.entries, &v2.url, &v2.credentials);
        }
        print(&json::line(&view))?;
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
    let rows = table_rows(&entries);
    out.push_str(&render_table(
        &["Key", "Value", "Source"],
        &rows,
        ctx.term.out_colour,
    ));
    if let Some(v2) = &v2 {
        out.push_str("\nServer: ");
        out.push_str(&visible(&v2.url));
        out.push_str(" (protocol v2: the REST service)\nCredentials: ");
        out.push_str(&visible(&v2.credentials));
        out.push_str("\n\n");
        out.push_str(&render_table(
            &["v2 key", "Value", "Source"],
            &table_rows(&v2.entries),
            ctx.term.out_colour,
        ));
    }
    print(&out)?;
    Ok(ExitCode::SUCCESS)
}

/// What `spalloc config` adds for a v2 service: which it is, where the
/// credentials come from (never the secret), and the v2 keys.
struct V2View {
    url: String,
    credentials: String,
    entries: Vec<ConfigEntry>,
}

impl V2View {
    /// The v2 part, when the server named is a v2 service or a v2 key is
    /// set; `None` otherwise, so a v1 set-up shows what it always has.
    fn of(config: &spalloc::Config) -> Result<Option<V2View>, crate::exit::CliError> {
        let entries = config.v2_entries();
        let server = spalloc::ServerOptions::from_config(config)
            .map_err(|e| crate::exit::CliError::config(&e))?;
        let any_set = entries.iter().any(|e| e.source.is_some());
        if server.protocol() != Protocol::V2 && !any_set {
            return Ok(None);
        }
        let url = match server.protocol() {
            Protocol::V2 => server.describe(),
            _ => "(hostname is not an http(s):// URL, so the v1 protocol is used)".into(),
        };
        Ok(Some(V2View {
            url,
            credentials: server.v2.describe_credentials(server.hostname.as_deref()),
            entries,
        }))
    }
}

/// `scheme://user:password@host…` as `scheme://user:***@host…`; anything
/// else as it is.
fn without_password(text: &str) -> String {
    let Some((scheme, rest)) = text.split_once("://") else {
        return text.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}{path}")
        }
        _ => text.to_owned(),
    }
}

/// `Key  Value  Source` rows.
fn table_rows(entries: &[ConfigEntry]) -> Vec<Vec<Cell>> {
    entries
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
        .collect()
}

/// A value in configuration-file syntax.
fn display(e: &ConfigEntry) -> String {
    match &e.value {
        ConfigValue::Str(None) if matches!(e.key, "hostname" | "owner" | "user" | "password") => {
            "(not set)".into()
        }
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

#[cfg(test)]
mod tests {
    use super::without_password;

    #[test]
    fn passwords_in_urls_are_hidden() {
        assert_eq!(
            without_password("https://alice:s3cret@h.example/spalloc/"),
            "https://alice:***@h.example/spalloc/"
        );
        assert_eq!(
            without_password("https://alice@h.example/x"),
            "https://alice@h.example/x"
        );
        assert_eq!(
            without_password("spalloc.example.org"),
            "spalloc.example.org"
        );
        assert_eq!(without_password("http://h/p?q=a:b@c"), "http://h/p?q=a:b@c");
    }
}
