//! Tables, definition lists and the compact job cells, laid out as the
//! Python tools lay them out (CLI_REFERENCE §4.1, §4.2, §4.6), byte for
//! byte.
//!
//! Widths are counted in Unicode code points of the text: escapes are
//! added afterwards and never measured, and padding goes outside them.

use std::borrow::Cow;
use std::fmt::Write as _;

use super::style::{Style, job_colour, paint_into, push_spaces};
use super::text::visible;

/// The key of the job at position `index` (from 0) on a machine, named like
/// spreadsheet columns: `A`…`Z`, `AA`…`AZ`, `BA`…, `ZZ`, `AAA`….
pub fn job_key(index: usize) -> String {
    // Bijective base 26: there is no zero digit, so after each digit is
    // taken the remaining value is shifted down by one.
    // The digits come out last first, into the end of a small buffer.
    let mut letters = [0u8; 16];
    let mut at = letters.len();
    let mut n = index;
    loop {
        at -= 1;
        letters[at] = b'A' + (n % 26) as u8;
        if n < 26 {
            break;
        }
        n = n / 26 - 1;
    }
    letters[at..].iter().map(|&b| char::from(b)).collect()
}

/// Appends `text` centred in `width` characters as Python's `str.center`
/// does.
///
/// When the padding cannot be split evenly, Python puts the extra space on
/// the left if the width is odd and on the right if it is even: `'A'` →
/// `' A '`, `'AB'` → `' AB'` in three columns. Text already as wide as
/// `width` is appended unchanged.
pub fn push_centred(out: &mut String, text: &str, width: usize) {
    let margin = width.saturating_sub(text.chars().count());
    let left = margin / 2 + (margin & width & 1);
    push_spaces(out, left);
    out.push_str(text);
    push_spaces(out, margin - left);
}

/// Strips trailing whitespace as Python's `str.rstrip()` does.
///
/// Python also counts the information separators U+001C–U+001F as
/// whitespace, which Rust's `trim_end` does not; a server string ending in
/// one would otherwise leave a line one character longer than Python's.
pub(super) fn py_rstrip(s: &str) -> &str {
    s.trim_end_matches(|c: char| c.is_whitespace() || ('\x1c'..='\x1f').contains(&c))
}

/// One cell of a table: an integer, right-aligned, or a string,
/// left-aligned, with an optional style.
///
/// Alignment follows the type of the value, not the column, as in the
/// Python tools: a `Boards` header is left-aligned above right-aligned
/// counts, and a missing value is the empty string. Build cells with
/// `Cell::from(15u64)` or `Cell::from("queue")`, then `.styled(…)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cell {
    text: CellText,
    right_aligned: bool,
    style: Style,
}

/// The longest text a [`Cell`] keeps inline.
const INLINE: usize = 22;

/// A cell's text. Most are short (states, counts, dates, host names), and
/// keeping those inline spares a table of a thousand rows an allocation per
/// cell.
#[derive(Clone, PartialEq, Eq)]
enum CellText {
    Inline { len: u8, bytes: [u8; INLINE] },
    Heap(String),
}

impl CellText {
    fn new(text: &str) -> CellText {
        match u8::try_from(text.len()) {
            Ok(len) if text.len() <= INLINE => {
                let mut bytes = [0; INLINE];
                bytes[..text.len()].copy_from_slice(text.as_bytes());
                CellText::Inline { len, bytes }
            }
            _ => CellText::Heap(text.to_owned()),
        }
    }

    fn as_str(&self) -> &str {
        match self {
            // Copied from a `str` whole, so always valid UTF-8.
            CellText::Inline { len, bytes } => {
                std::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or_default()
            }
            CellText::Heap(s) => s,
        }
    }
}

impl std::fmt::Debug for CellText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.as_str().fmt(f)
    }
}

impl Cell {
    /// This cell, painted in `style` when colour is on.
    pub fn styled(self, style: Style) -> Cell {
        Cell { style, ..self }
    }
}

// Cells hold server text (owners, machine names, hosts): control
// characters are made visible here, once, before widths are measured.
impl From<&str> for Cell {
    fn from(text: &str) -> Cell {
        Cell {
            text: CellText::new(&visible(text)),
            right_aligned: false,
            style: Style::PLAIN,
        }
    }
}

impl From<String> for Cell {
    fn from(text: String) -> Cell {
        let text = match visible(&text) {
            Cow::Owned(shown) if shown.len() <= INLINE => CellText::new(&shown),
            Cow::Owned(shown) => CellText::Heap(shown),
            Cow::Borrowed(_) if text.len() <= INLINE => CellText::new(&text),
            Cow::Borrowed(_) => CellText::Heap(text),
        };
        Cell {
            text,
            right_aligned: false,
            style: Style::PLAIN,
        }
    }
}

/// The decimal digits of `n`, inline: no integer a cell takes has more than
/// 20 digits and a sign.
fn int_text(n: i128) -> CellText {
    let mut digits = [0u8; 40];
    let mut at = digits.len();
    // Every integer type a cell takes fits in 64 bits without its sign, and
    // dividing those is much cheaper than dividing 128-bit ones.
    let mut m = u64::try_from(n.unsigned_abs()).unwrap_or(u64::MAX);
    loop {
        at -= 1;
        digits[at] = b'0' + (m % 10) as u8;
        m /= 10;
        if m == 0 {
            break;
        }
    }
    if n < 0 {
        at -= 1;
        digits[at] = b'-';
    }
    CellText::new(std::str::from_utf8(&digits[at..]).unwrap_or_default())
}

macro_rules! int_cells {
    ($($t:ty),*) => {$(
        impl From<$t> for Cell {
            fn from(n: $t) -> Cell {
                Cell { text: int_text(n as i128), right_aligned: true, style: Style::PLAIN }
            }
        }
    )*};
}
int_cells!(u8, u16, u32, u64, usize, i8, i16, i32, i64, isize);

/// Renders a table: the header row, then `rows` (CLI_REFERENCE §4.1).
///
/// Each column is as wide as its widest cell, counted in Unicode code points
/// of the text (escapes are added afterwards and do not count). Columns are
/// separated by two spaces, padding goes outside the escapes, trailing
/// spaces are stripped, and every line, the last included, ends with `\n`.
/// The header is always printed, in the header style when `colour` is on.
/// Rows may have different lengths.
pub fn render_table(header: &[&str], rows: &[Vec<Cell>], colour: bool) -> String {
    let header_row: Vec<Cell> = header
        .iter()
        .map(|h| Cell::from(*h).styled(Style::HEADER))
        .collect();
    let all_rows = std::iter::once(&header_row).chain(rows);

    let mut widths: Vec<usize> = Vec::new();
    for row in all_rows.clone() {
        for (i, cell) in row.iter().enumerate() {
            let len = cell.text.as_str().chars().count();
            match widths.get_mut(i) {
                Some(w) => *w = (*w).max(len),
                None => widths.push(len),
            }
        }
    }

    let mut out = String::with_capacity(
        (widths.iter().sum::<usize>() + 2 * widths.len() + 1) * (rows.len() + 1),
    );
    for row in all_rows {
        let line_start = out.len();
        for (i, cell) in row.iter().enumerate() {
            if i > 0 {
                out.push_str("  ");
            }
            let text = cell.text.as_str();
            let len = text.chars().count();
            let padding = widths.get(i).copied().unwrap_or(0).saturating_sub(len);
            if cell.right_aligned {
                push_spaces(&mut out, padding);
                paint_into(&mut out, text, cell.style, colour);
            } else {
                paint_into(&mut out, text, cell.style, colour);
                push_spaces(&mut out, padding);
            }
        }
        let kept = py_rstrip(&out[line_start..]).len();
        out.truncate(line_start + kept);
        out.push('\n');
    }
    out
}

/// Renders a definition list (CLI_REFERENCE §4.2).
///
/// Each key is right-aligned to the longest key, followed by `": "` and the
/// value. A value spanning several lines has each later line indented by the
/// longest key's width plus two, so it lines up under the first. Values may
/// carry colour escapes; only keys are measured. Every line ends with `\n`;
/// an empty list renders as nothing. Lines are not right-trimmed, matching
/// the Python tools.
pub fn render_deflist(items: &[(&str, String)]) -> String {
    let width = items
        .iter()
        .map(|(key, _)| key.chars().count())
        .max()
        .unwrap_or(0);
    let indent = format!("\n{}", " ".repeat(width + 2));
    let mut out = String::new();
    for (key, value) in items {
        let pad = width - key.chars().count();
        out.push_str(&" ".repeat(pad));
        out.push_str(key);
        out.push_str(": ");
        out.push_str(&value.replace('\n', &indent));
        out.push('\n');
    }
    out
}

/// Renders the compact list of a machine's jobs: one `KEY:JOB_ID` cell per
/// job, in columns (CLI_REFERENCE §4.6).
///
/// The cells are `(key, job id)` pairs; the key is painted in the job's
/// colour. Each column is as wide as the longest cell plus two. A line is
/// wrapped when the cells already on it, times the column width, plus the
/// new cell's length would exceed 80, whatever the terminal's width, as in
/// the Python tool. Lines are right-trimmed and end with `\n`; with no jobs
/// the block is a single empty line.
pub fn render_compact_cells(cells: &[(String, u64)], colour: bool) -> String {
    const WIDTH: usize = 80;
    let digits = |mut id: u64| {
        let mut n = 1;
        while id >= 10 {
            id /= 10;
            n += 1;
        }
        n
    };
    let lengths: Vec<usize> = cells
        .iter()
        .map(|(key, id)| key.chars().count() + 1 + digits(*id))
        .collect();
    let column = lengths.iter().copied().max().unwrap_or(0) + 2;

    // Lines are written straight into the output and right-trimmed as each
    // one ends.
    let mut out = String::with_capacity(cells.len() * (column + 12) + 1);
    let mut line_start = 0;
    let mut used = 0;
    let end_line = |out: &mut String, line_start: &mut usize| {
        let kept = py_rstrip(&out[*line_start..]).len();
        out.truncate(*line_start + kept);
        out.push('\n');
        *line_start = out.len();
    };
    for ((key, id), &len) in cells.iter().zip(&lengths) {
        // The test comes before the cell, even for the first one, as in the
        // Python tool; a cell can only be that long with a huge key.
        if used + len > WIDTH {
            end_line(&mut out, &mut line_start);
            used = 0;
        }
        paint_into(&mut out, key, job_colour(*id), colour);
        let _ = write!(out, ":{id}");
        push_spaces(&mut out, column - len);
        used += column;
    }
    end_line(&mut out, &mut line_start);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::paint;
    use crate::render::pyfmt::tests::eqnice;

    #[test]
    fn job_keys_are_spreadsheet_columns() {
        let cases: &[(usize, &str)] = &[
            (0, "A"),
            (1, "B"),
            (25, "Z"),
            (26, "AA"),
            (27, "AB"),
            (51, "AZ"),
            (52, "BA"),
            (701, "ZZ"),
            (702, "AAA"),
            (18_277, "ZZZ"),
            (18_278, "AAAA"),
        ];
        for &(i, key) in cases {
            eqnice!(key, job_key(i));
        }
        // Does not panic at the extreme.
        assert!(!job_key(usize::MAX).is_empty());
    }

    fn py_center(text: &str, width: usize) -> String {
        let mut out = String::new();
        push_centred(&mut out, text, width);
        out
    }

    #[test]
    fn centring_follows_python() {
        eqnice!(" A ", py_center("A", 3));
        eqnice!(" AB", py_center("AB", 3));
        eqnice!("ABC", py_center("ABC", 3));
        eqnice!("ABCD", py_center("ABCD", 3));
        eqnice!("   ", py_center("", 3));
        // Even widths put the odd space on the right.
        eqnice!("A ", py_center("A", 2));
        eqnice!(" AB ", py_center("AB", 4));
        eqnice!(" A  ", py_center("A", 4));
    }

    // ---- tables ------------------------------------------------------------

    const PS_HEADER: [&str; 8] = [
        "ID",
        "State",
        "Power",
        "Boards",
        "Machine",
        "Created at",
        "Keepalive",
        "Owner (Host)",
    ];

    fn ps_row(colour_state: Style, power: Style) -> Vec<Cell> {
        vec![
            Cell::from(15u64),
            Cell::from("ready").styled(colour_state),
            Cell::from("on").styled(power),
            Cell::from(12usize),
            Cell::from("big"),
            Cell::from("23/11/2026 20:21:56"),
            Cell::from("None"),
            Cell::from("oracle@example.com (127.0.0.1)"),
        ]
    }

    #[test]
    fn table_as_ps_prints_it() {
        let rows = vec![ps_row(Style::GREEN, Style::GREEN)];
        eqnice!(
            "ID  State  Power  Boards  Machine  Created at           Keepalive  Owner (Host)\n\
             15  ready  on         12  big      23/11/2026 20:21:56  None       oracle@example.com (127.0.0.1)\n",
            render_table(&PS_HEADER, &rows, false)
        );
    }

    #[test]
    fn table_with_only_a_header() {
        eqnice!(
            "ID  State  Power  Boards  Machine  Created at  Keepalive  Owner (Host)\n",
            render_table(&PS_HEADER, &[], false)
        );
    }

    #[test]
    fn table_strips_trailing_empty_cells() {
        let rows = vec![vec![
            Cell::from(16u64),
            Cell::from("queue"),
            Cell::from(""),
            Cell::from(""),
            Cell::from(""),
            Cell::from(""),
            Cell::from(""),
            Cell::from(""),
        ]];
        let got = render_table(&PS_HEADER, &rows, false);
        eqnice!(
            "ID  State  Power  Boards  Machine  Created at  Keepalive  Owner (Host)\n\
             16  queue\n",
            got
        );
    }

    #[test]
    fn table_as_machine_summary() {
        let header = ["Name", "Num boards", "In-use", "Jobs", "Tags"];
        let rows = vec![
            vec![
                Cell::from("m"),
                Cell::from(12usize),
                Cell::from(0usize),
                Cell::from(0usize),
                Cell::from("default"),
            ],
            vec![
                Cell::from("big"),
                Cell::from(34usize),
                Cell::from(12usize),
                Cell::from(1usize),
                Cell::from("big"),
            ],
            vec![
                Cell::from("one"),
                Cell::from(1usize),
                Cell::from(0usize),
                Cell::from(0usize),
                Cell::from("one"),
            ],
        ];
        eqnice!(
            "Name  Num boards  In-use  Jobs  Tags\n\
             m             12       0     0  default\n\
             big           34      12     1  big\n\
             one            1       0     0  one\n",
            render_table(&header, &rows, false)
        );
    }

    #[test]
    fn table_in_colour_pads_outside_the_escapes() {
        let rows = vec![ps_row(Style::GREEN, Style::GREEN)];
        eqnice!(
            "\x1b[4;1mID\x1b[0m  \x1b[4;1mState\x1b[0m  \x1b[4;1mPower\x1b[0m  \
             \x1b[4;1mBoards\x1b[0m  \x1b[4;1mMachine\x1b[0m  \
             \x1b[4;1mCreated at\x1b[0m           \x1b[4;1mKeepalive\x1b[0m  \
             \x1b[4;1mOwner (Host)\x1b[0m\n\
             15  \x1b[32mready\x1b[0m  \x1b[32mon\x1b[0m         12  big      \
             23/11/2026 20:21:56  None       oracle@example.com (127.0.0.1)\n",
            render_table(&PS_HEADER, &rows, true)
        );
    }

    #[test]
    fn table_styled_int_and_machine_detail() {
        let header = ["Key", "Job ID", "Num boards", "Owner (Host)"];
        let rows = vec![vec![
            Cell::from("A").styled(job_colour(15)),
            Cell::from(15u64),
            Cell::from(12usize),
            Cell::from("oracle@example.com 127.0.0.1"),
        ]];
        eqnice!(
            "Key  Job ID  Num boards  Owner (Host)\n\
             A        15          12  oracle@example.com 127.0.0.1\n",
            render_table(&header, &rows, false)
        );
        eqnice!(
            "\x1b[4;1mKey\x1b[0m  \x1b[4;1mJob ID\x1b[0m  \x1b[4;1mNum boards\x1b[0m  \
             \x1b[4;1mOwner (Host)\x1b[0m\n\
             \x1b[32mA\x1b[0m        15          12  oracle@example.com 127.0.0.1\n",
            render_table(&header, &rows, true)
        );
        // A styled integer keeps its right alignment, padding outside.
        let rows = vec![vec![Cell::from(7i64).styled(Style::RED)]];
        eqnice!(
            "\x1b[4;1mNumber\x1b[0m\n     \x1b[31m7\x1b[0m\n",
            render_table(&["Number"], &rows, true)
        );
    }

    #[test]
    fn table_measures_code_points_and_handles_ragged_rows() {
        let rows = vec![
            vec![Cell::from("日本"), Cell::from(1u32), Cell::from("x")],
            vec![Cell::from("é")],
        ];
        eqnice!(
            "A   B\n日本  1  x\né\n",
            render_table(&["A", "B"], &rows, false)
        );
    }

    #[test]
    fn table_shows_control_characters() {
        // Python's `rstrip` would drop a trailing tab or one of U+001C–U+001F
        // and print the rest raw; here every control character in a cell
        // (text from a server) is made visible, and measured as shown.
        let rows = vec![vec![Cell::from("a\x1f"), Cell::from("b\t")]];
        eqnice!(
            "H1     H2\na\\x1f  b\\t\n",
            render_table(&["H1", "H2"], &rows, false)
        );
        let rows = vec![vec![Cell::from("x"), Cell::from("\x1b[31m".to_owned())]];
        eqnice!(
            "H1  H2\nx   \\e[31m\n",
            render_table(&["H1", "H2"], &rows, false)
        );
    }

    #[test]
    fn cells_keep_any_text_and_integer() {
        // Short texts are kept inline and longer ones on the heap; both, and
        // every integer type's extremes, come out as they went in.
        let long = "a text well over twenty-two bytes long";
        let cases: [(Cell, &str); 9] = [
            (Cell::from(0u8), "0"),
            (Cell::from(7usize), "7"),
            (Cell::from(u64::MAX), "18446744073709551615"),
            (Cell::from(i64::MIN), "-9223372036854775808"),
            (Cell::from(-5i32), "-5"),
            (Cell::from(""), ""),
            (Cell::from("caf\u{e9} \u{1F600}"), "caf\u{e9} \u{1F600}"),
            (
                Cell::from("exactly twenty-two!!!!"),
                "exactly twenty-two!!!!",
            ),
            (Cell::from(long.to_owned()), long),
        ];
        for (cell, text) in cases {
            assert_eq!(cell.text.as_str(), text);
            eqnice!(
                format!("x\n{text}\n"),
                render_table(&["x"], &[vec![cell]], false)
            );
        }
    }

    // ---- definition lists ---------------------------------------------------

    #[test]
    fn deflist_right_aligns_keys() {
        let items = [
            ("Hostname", "127.100.0.9".to_owned()),
            ("Width", "8".to_owned()),
            ("Height", "8".to_owned()),
            ("Running on", "m".to_owned()),
        ];
        eqnice!(
            "  Hostname: 127.100.0.9\n     Width: 8\n    Height: 8\nRunning on: m\n",
            render_deflist(&items)
        );
    }

    #[test]
    fn deflist_indents_multi_line_values() {
        let items = [
            ("Job ID", "15".to_owned()),
            ("Request", "Job(2, 2,\n    machine='big')".to_owned()),
            ("Board power", "on".to_owned()),
        ];
        eqnice!(
            "     Job ID: 15\n    Request: Job(2, 2,\n                 machine='big')\nBoard power: on\n",
            render_deflist(&items)
        );
    }

    #[test]
    fn deflist_does_not_measure_escapes_and_keeps_trailing_spaces() {
        let items = [
            ("Hostname", paint("127.0.0.1", Style::BRIGHT, true)),
            ("Width", "8".to_owned()),
            ("Empty", String::new()),
        ];
        eqnice!(
            "Hostname: \x1b[1m127.0.0.1\x1b[0m\n   Width: 8\n   Empty: \n",
            render_deflist(&items)
        );
    }

    #[test]
    fn deflist_empty_is_nothing() {
        eqnice!("", render_deflist(&[]));
    }

    #[test]
    fn deflist_as_where_is() {
        let items = [
            ("Machine", "big".to_owned()),
            (
                "Physical location",
                "Cabinet 0, Frame 0, Board 13".to_owned(),
            ),
            ("Board coordinate", "(1, 1, 1)".to_owned()),
            ("Machine chip coordinates", "(21, 17)".to_owned()),
            ("Coordinates within board", "(1, 1)".to_owned()),
            ("Job using board", "15".to_owned()),
            ("Coordinates within job", "(9, 5)".to_owned()),
        ];
        eqnice!(
            "                 Machine: big\n\
             \x20      Physical location: Cabinet 0, Frame 0, Board 13\n\
             \x20       Board coordinate: (1, 1, 1)\n\
             Machine chip coordinates: (21, 17)\n\
             Coordinates within board: (1, 1)\n\
             \x20        Job using board: 15\n\
             \x20 Coordinates within job: (9, 5)\n",
            render_deflist(&items)
        );
    }

    // ---- compact cells -----------------------------------------------------

    #[test]
    fn compact_cells_wrap_at_eighty_columns() {
        let cells: Vec<(String, u64)> = (0..26).map(|i| (job_key(i), 100 + i as u64)).collect();
        eqnice!(
            "A:100  B:101  C:102  D:103  E:104  F:105  G:106  H:107  I:108  J:109  K:110\n\
             L:111  M:112  N:113  O:114  P:115  Q:116  R:117  S:118  T:119  U:120  V:121\n\
             W:122  X:123  Y:124  Z:125\n",
            render_compact_cells(&cells, false)
        );
    }

    #[test]
    fn compact_cells_single_and_empty() {
        eqnice!(
            "A:15\n",
            render_compact_cells(&[("A".to_owned(), 15)], false)
        );
        eqnice!("\n", render_compact_cells(&[], false));
        eqnice!("\n", render_compact_cells(&[], true));
    }

    #[test]
    fn compact_cells_in_colour() {
        let cells = [("A".to_owned(), 15), ("B".to_owned(), 1234)];
        eqnice!(
            "\x1b[32mA\x1b[0m:15    \x1b[36mB\x1b[0m:1234\n",
            render_compact_cells(&cells, true)
        );
    }

    #[test]
    fn compact_cells_use_the_longest_cell_for_the_column() {
        // Column width 8 ("AA:12345" + 2): ten fit in 80, the eleventh wraps
        // because 10 × 10 + 8 > 80 is checked before each cell.
        let mut cells: Vec<(String, u64)> = vec![("AA".to_owned(), 12345)];
        cells.extend((1..12).map(|i| (job_key(i), i as u64)));
        eqnice!(
            "AA:12345  B:1       C:2       D:3       E:4       F:5       G:6       H:7\n\
             I:8       J:9       K:10      L:11\n",
            render_compact_cells(&cells, false)
        );
    }
}
