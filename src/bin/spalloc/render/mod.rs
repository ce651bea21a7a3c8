//! Everything the tool shows: text laid out as the Python tools lay it out,
//! and the `--json` documents.
//!
//! Users compare our output with the Python tools' and scripts parse it,
//! so the layout rules here are written to give the same bytes. Every
//! function is pure: it returns a `String` (or a value to serialise), the
//! subcommands decide where it goes and whether colour is on, and each rule
//! is tested against exact expected strings. Views that more than one
//! subcommand shows live here too, so that no subcommand borrows from
//! another.
//!
//! * `style`: ANSI colour and cursor control, and when a stream gets them.
//! * `table`: tables, definition lists, the compact job cells.
//! * `map`: the hexagon map of boards.
//! * `time`: local and UTC times.
//! * `text`: untrusted text made safe for a terminal.
//! * `pyfmt`: values spelled as Python's `str()` and `repr()` spell them.
//! * `json`: the `--json` view structs.

pub mod json;
mod map;
pub mod pyfmt;
mod style;
mod table;
pub mod text;
mod time;

pub use map::{Board as MapBoard, DeadLink as MapDeadLink, MapJob, job_map, machine_map};
pub use style::{
    CLEAR_SCREEN, ColorChoice, REWRITE_PREVIOUS_LINE, Style, colour_enabled, cursor_control,
    job_colour, paint,
};
pub use table::{Cell, job_key, render_compact_cells, render_deflist, render_table};
pub use text::{shown, visible, visible_lines};
pub use time::format_local_time;

use spalloc::{JobMachineInfo, Number};

/// A keepalive as the Python tools print it, with `str()`: `None`, `5`,
/// `60.0`.
pub fn keepalive_text(k: Option<Number>) -> String {
    match k {
        None => "None".to_owned(),
        Some(Number::Int(i)) => i.to_string(),
        Some(Number::Float(f)) => pyfmt::py_float(f),
    }
}

/// The CSV of a job's Ethernet-connected chips, sorted by chip: what
/// `job --ethernet-ips` prints and `alloc` writes for `{ethernet_ips}`.
pub fn ethernet_csv(info: &JobMachineInfo) -> String {
    let mut connections = info.connections.clone();
    connections.sort_unstable();
    let mut out = String::from("x,y,hostname\n");
    for c in connections {
        out.push_str(&format!(
            "{},{},{}\n",
            c.chip.x,
            c.chip.y,
            visible(&c.hostname)
        ));
    }
    out
}
