//! Terminal output primitives shared by every subcommand.
//!
//! This module owns the look of the tool: ANSI colour, the two-space tables,
//! the definition lists, the hexagon map of boards, the compact job cells and
//! the time formats (CLI_REFERENCE §4). Users compare our output with the
//! Python tools' and scripts parse it, so the layout rules here are written
//! to give the same bytes. Everything is a pure function that returns a
//! `String`: the subcommands decide where the text goes and whether colour
//! is on, and the rules can be tested against exact expected strings. The
//! only contact with the outside world is the C library's time-zone
//! database, read by [`format_local_time`].

use std::borrow::Cow;
use std::cmp::Reverse;
use std::fmt::Write as _;
use std::str::FromStr;

use crate::visible::visible;

/// Clears the screen and moves the cursor to the top-left corner; written
/// before each frame of `--watch` on a terminal.
pub const CLEAR_SCREEN: &str = "\x1b[2J\x1b[;H";

/// Moves the cursor to the start of the previous line and clears that line,
/// so that an alloc status line replaces the one before it (§5.3).
///
/// Moving up relative to the cursor, rather than saving and restoring its
/// position as the Python tool did, keeps working after the terminal has
/// scrolled.
pub const REWRITE_PREVIOUS_LINE: &str = "\x1b[1F\x1b[K";

/// One of the six foreground colours the tools use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Colour {
    /// SGR 31.
    Red,
    /// SGR 32.
    Green,
    /// SGR 33.
    Yellow,
    /// SGR 34.
    Blue,
    /// SGR 35.
    Magenta,
    /// SGR 36.
    Cyan,
}

impl Colour {
    fn code(self) -> &'static str {
        match self {
            Colour::Red => "31",
            Colour::Green => "32",
            Colour::Yellow => "33",
            Colour::Blue => "34",
            Colour::Magenta => "35",
            Colour::Cyan => "36",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Intensity {
    Bright,
    Dim,
}

/// A set of ANSI display attributes (an SGR sequence such as `\e[2;32m`).
///
/// The codes are always emitted in the order underscore, intensity, colour,
/// which is the order of every combination the Python tools use: header
/// `4;1`, dim green `2;32`, bright cyan `1;36`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Style {
    underscore: bool,
    intensity: Option<Intensity>,
    colour: Option<Colour>,
}

impl Style {
    /// No attributes: painting with it leaves the text as it is.
    pub const PLAIN: Style = Style {
        underscore: false,
        intensity: None,
        colour: None,
    };
    /// Bright (`1`).
    pub const BRIGHT: Style = Style::PLAIN.bright();
    /// Dim (`2`).
    pub const DIM: Style = Style::PLAIN.dim();
    /// Table headers: underscore and bright (`4;1`).
    pub const HEADER: Style = Style::PLAIN.underscore().bright();
    /// Red (`31`).
    pub const RED: Style = Style::PLAIN.fg(Colour::Red);
    /// Green (`32`).
    pub const GREEN: Style = Style::PLAIN.fg(Colour::Green);
    /// Yellow (`33`).
    pub const YELLOW: Style = Style::PLAIN.fg(Colour::Yellow);
    /// Blue (`34`).
    pub const BLUE: Style = Style::PLAIN.fg(Colour::Blue);
    /// Magenta (`35`).
    pub const MAGENTA: Style = Style::PLAIN.fg(Colour::Magenta);
    /// Cyan (`36`).
    pub const CYAN: Style = Style::PLAIN.fg(Colour::Cyan);

    /// This style, made bright (replacing dim).
    pub const fn bright(self) -> Style {
        Style {
            intensity: Some(Intensity::Bright),
            ..self
        }
    }

    /// This style, made dim (replacing bright).
    pub const fn dim(self) -> Style {
        Style {
            intensity: Some(Intensity::Dim),
            ..self
        }
    }

    /// This style, underscored.
    pub const fn underscore(self) -> Style {
        Style {
            underscore: true,
            ..self
        }
    }

    /// This style with the foreground colour `colour`.
    pub const fn fg(self, colour: Colour) -> Style {
        Style {
            colour: Some(colour),
            ..self
        }
    }

    /// The SGR parameters as a string, for the tests.
    #[cfg(test)]
    pub fn codes(self) -> String {
        let mut codes = String::new();
        self.write_codes(&mut codes);
        codes
    }

    /// Appends the SGR parameters, such as `2;32`, to `out`; nothing for
    /// [`Style::PLAIN`].
    fn write_codes(self, out: &mut String) {
        let start = out.len();
        let mut code = |c: &str| {
            if out.len() > start {
                out.push(';');
            }
            out.push_str(c);
        };
        if self.underscore {
            code("4");
        }
        match self.intensity {
            Some(Intensity::Bright) => code("1"),
            Some(Intensity::Dim) => code("2"),
            None => {}
        }
        if let Some(colour) = self.colour {
            code(colour.code());
        }
    }

    fn is_plain(self) -> bool {
        self == Style::PLAIN
    }
}

/// Wraps `text` in the escapes for `style` when `enabled`, else returns it as
/// it is.
///
/// Each fragment is wrapped on its own and ends with a full reset
/// (`\e[0m`), as the Python tools do, so fragments can be concatenated in
/// any order without one's attributes leaking into the next.
pub fn paint(text: &str, style: Style, enabled: bool) -> String {
    let mut out = String::with_capacity(text.len() + 12);
    paint_into(&mut out, text, style, enabled);
    out
}

/// [`paint`], appending to `out`: the table and map renderers paint
/// thousands of fragments and should not allocate for each.
pub fn paint_into(out: &mut String, text: &str, style: Style, enabled: bool) {
    if !enabled || style.is_plain() {
        out.push_str(text);
        return;
    }
    out.push_str("\x1b[");
    style.write_codes(out);
    out.push('m');
    out.push_str(text);
    out.push_str("\x1b[0m");
}

/// Appends `n` spaces.
fn push_spaces(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

/// The colour of a job in the machine view, chosen by `job_id mod 15`.
///
/// 0–4 are green, blue, magenta, yellow and cyan; 5–9 the same five dim;
/// 10–14 the same five bright. Keying on the id rather than on the position
/// in the list keeps a job's colour steady while other jobs come and go.
pub fn job_colour(job_id: u64) -> Style {
    const HUES: [Style; 5] = [
        Style::GREEN,
        Style::BLUE,
        Style::MAGENTA,
        Style::YELLOW,
        Style::CYAN,
    ];
    let index = (job_id % 15) as usize;
    let base = HUES[index % 5];
    match index / 5 {
        0 => base,
        1 => base.dim(),
        _ => base.bright(),
    }
}

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
fn py_rstrip(s: &str) -> &str {
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

/// A board's logical coordinates `(x, y, z)`.
pub type Board = (u32, u32, u32);

/// A dead link: the board's `(x, y, z)` and the link number, 0 (E) to 5 (S).
pub type DeadLink = (u32, u32, u32, u32);

/// Boards drawn alike in a [`render_board_map`]: one label and two edge
/// styles.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapGroup {
    /// The boards of the group.
    pub boards: Vec<Board>,
    /// The text in the middle of each hexagon; three characters wide to keep
    /// the grid aligned, such as `" . "` or a centred job key.
    pub label: String,
    /// The style of the label.
    pub label_style: Style,
    /// The style of an edge between two boards of this group.
    pub inner: Style,
    /// The style of an edge between a board of this group and anything
    /// else.
    pub outer: Style,
}

/// The three edge slots of a map cell. Seen from the hexagon in cell
/// `(c, r)`, its upper-left side is the `/` of its own cell, and its
/// lower-left side and bottom are the `\` and `___` of cell `(c, r − 1)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Slot {
    /// `___`, slot 0.
    Bottom,
    /// `\`, slot 1.
    Back,
    /// `/`, slot 2.
    Forward,
}

impl Slot {
    fn edge(self) -> &'static str {
        match self {
            Slot::Bottom => "___",
            Slot::Back => "\\",
            Slot::Forward => "/",
        }
    }

    /// How a dead link is drawn without colour, where red would be lost
    /// (§13.11).
    fn dead(self) -> &'static str {
        match self {
            Slot::Bottom => "XXX",
            Slot::Back | Slot::Forward => "X",
        }
    }
}

/// Where a board's link is drawn, relative to the board's own cell.
struct LinkEdge {
    /// The offset of the neighbouring board's cell.
    neighbour: (i64, i64),
    /// The offset of the cell that owns the edge.
    cell: (i64, i64),
    /// Which of that cell's slots the edge occupies.
    slot: Slot,
}

/// The geometry of link 0 (E) to 5 (S); `None` for any other number.
///
/// Each edge is owned by exactly one cell, so two neighbours drawing their
/// shared edge write the same slot, and a later group simply overwrites an
/// earlier one.
fn link_edge(link: u32) -> Option<LinkEdge> {
    let (neighbour, cell, slot) = match link {
        0 => ((1, -1), (1, -1), Slot::Forward), // E
        1 => ((1, 1), (1, 0), Slot::Back),      // NE
        2 => ((0, 2), (0, 1), Slot::Bottom),    // N
        3 => ((-1, 1), (0, 0), Slot::Forward),  // W
        4 => ((-1, -1), (0, -1), Slot::Back),   // SW
        5 => ((0, -2), (0, -1), Slot::Bottom),  // S
        _ => return None,
    };
    Some(LinkEdge {
        neighbour,
        cell,
        slot,
    })
}

/// The map cell `(c, r)` of a board: three boards of a triad share a column
/// pair and are stacked one cell apart, and each triad row shifts half a
/// hexagon to the left.
fn board_cell((x, y, z): Board) -> (i64, i64) {
    let (x, y, z) = (i64::from(x), i64::from(y), i64::from(z));
    (2 * x - y + i64::from(z == 1), 3 * y + z)
}

/// Renders the hexagon map of a set of boards (CLI_REFERENCE §4.5).
///
/// The groups are drawn in order, each overwriting the labels and edges of
/// the ones before; then the dead links are drawn over them, in red when
/// `colour` is on and as `XXX`/`X` when it is off. Boards that belong to no
/// group, such as dead boards, come out blank.
///
/// The lines are joined with `\n` and, unlike the other renderers here,
/// there is no newline after the last one: the map is printed on its own
/// with `writeln!` by the machine view, but is also the multi-line value of
/// the `Allocation` entry of a definition list. Nothing to draw gives `""`.
pub fn render_board_map(groups: &[MapGroup], dead_links: &[DeadLink], colour: bool) -> String {
    let views: Vec<GroupView<'_>> = groups.iter().map(MapGroup::view).collect();
    render_views(&views, dead_links, colour)
}

/// A [`MapGroup`] that borrows its boards and label, so that the map of a
/// machine with a thousand jobs need not copy each job's boards first.
#[derive(Clone, Copy, Debug)]
struct GroupView<'a> {
    boards: &'a [Board],
    label: &'a str,
    label_style: Style,
    inner: Style,
    outer: Style,
}

impl MapGroup {
    fn view(&self) -> GroupView<'_> {
        GroupView {
            boards: &self.boards,
            label: &self.label,
            label_style: self.label_style,
            inner: self.inner,
            outer: self.outer,
        }
    }
}

/// [`render_board_map`] of borrowed groups.
fn render_views(groups: &[GroupView<'_>], dead_links: &[DeadLink], colour: bool) -> String {
    let Some(area) = MapBox::around(groups, dead_links) else {
        return String::new();
    };
    let boards: usize = groups.iter().map(|g| g.boards.len()).sum();
    if area.width.saturating_mul(area.height) <= 28 * boards + 4096 {
        // A machine's map fills most of the box around it.
        render_dense(groups, dead_links, colour, &area)
    } else {
        // A few boards far apart: time and memory must follow the output,
        // not the area between them.
        render_sparse(groups, dead_links, colour)
    }
}

/// The box of map cells that a map draws in.
#[derive(Debug)]
struct MapBox {
    r_max: i64,
    c_min: i64,
    width: usize,
    height: usize,
}

impl MapBox {
    /// Exactly the box of the cells [`draw`] marks: each board marks its
    /// own cell, the column to its right and the rows above and below.
    fn around(groups: &[GroupView<'_>], dead_links: &[DeadLink]) -> Option<MapBox> {
        let boards = groups
            .iter()
            .flat_map(|g| g.boards.iter())
            .map(|&b| board_cell(b))
            .flat_map(|(c, r)| [(c, r - 1), (c + 1, r + 1)]);
        let links = dead_links.iter().filter_map(|&(x, y, z, link)| {
            let (c, r) = board_cell((x, y, z));
            link_edge(link).map(|l| (c + l.cell.0, r + l.cell.1))
        });
        let (mut r_min, mut r_max, mut c_min, mut c_max) = (i64::MAX, i64::MIN, i64::MAX, i64::MIN);
        for (c, r) in boards.chain(links) {
            (r_min, r_max) = (r_min.min(r), r_max.max(r));
            (c_min, c_max) = (c_min.min(c), c_max.max(c));
        }
        Some(MapBox {
            r_max,
            c_min,
            width: usize::try_from(c_max.checked_sub(c_min)?.checked_add(1)?).ok()?,
            height: usize::try_from(r_max.checked_sub(r_min)?.checked_add(1)?).ok()?,
        })
    }
}

/// No text in this part of the cell.
const NONE: u32 = u32::MAX;

/// [`render_views`] on a grid covering the map's box, where a later mark
/// simply overwrites an earlier one, and each row is then written out
/// cell by cell.
fn render_dense(
    groups: &[GroupView<'_>],
    dead_links: &[DeadLink],
    colour: bool,
    area: &MapBox,
) -> String {
    let mut texts = Texts::default();
    let mut grid: Vec<[u32; 4]> = vec![[NONE; 4]; area.width * area.height];
    draw(groups, dead_links, colour, &mut texts, &mut |m| {
        // Within the box by its construction, so neither is negative.
        let (row, col) = ((area.r_max - m.r) as usize, (m.c - area.c_min) as usize);
        // A text index past `u32` would need billions of groups.
        grid[row * area.width + col][m.part.index()] = u32::try_from(m.text).unwrap_or(NONE);
    });
    let part = |t: u32| (t != NONE).then_some(t as usize);

    let mut out = String::new();
    for (row, cells) in grid.chunks(area.width).enumerate() {
        let r = area.r_max - row as i64;
        let row_start = out.len();
        if !out.is_empty() {
            out.push('\n');
        }
        let line_start = out.len();
        for (col, parts) in cells.iter().enumerate() {
            let c = area.c_min + col as i64;
            push_cell(&mut out, &texts, c, r, parts.map(part));
        }
        end_map_line(&mut out, row_start, line_start);
    }
    out
}

/// [`render_views`] by sorting the marks; their index keeps the drawing
/// order within a slot. Cells with nothing in them are skipped, their
/// columns left as spaces.
fn render_sparse(groups: &[GroupView<'_>], dead_links: &[DeadLink], colour: bool) -> String {
    let mut texts = Texts::default();
    let mut marks = Vec::new();
    draw(groups, dead_links, colour, &mut texts, &mut |m| {
        marks.push(m)
    });
    let mut order: Vec<(Reverse<i64>, i64, usize)> = marks
        .iter()
        .enumerate()
        .map(|(i, m)| (Reverse(m.r), m.c, i))
        .collect();
    order.sort_unstable();
    let Some(c_min) = marks.iter().map(|m| m.c).min() else {
        return String::new();
    };

    let mut out = String::new();
    let mut i = 0;
    while let Some(&(Reverse(r), ..)) = order.get(i) {
        let row_start = out.len();
        if !out.is_empty() {
            out.push('\n');
        }
        let line_start = out.len();
        let mut next_c = c_min;
        while let Some(&(Reverse(row), c, _)) = order.get(i).filter(|o| o.0.0 == r) {
            // The last mark of each part of this cell wins.
            let mut parts = [None; 4];
            while let Some(&(_, _, m)) = order.get(i).filter(|o| o.0.0 == row && o.1 == c) {
                parts[marks[m].part.index()] = Some(marks[m].text);
                i += 1;
            }
            let gap = usize::try_from(c - next_c).unwrap_or(0);
            push_spaces(&mut out, 4 * gap);
            next_c = c + 1;
            push_cell(&mut out, &texts, c, r, parts);
        }
        end_map_line(&mut out, row_start, line_start);
    }
    out
}

/// Writes map cell `(c, r)`, four characters wide: a hexagon's label sits
/// in a cell whose column and row have the same parity, preceded by its
/// upper-left `/`; the cells in between hold the `\` and `___` where
/// hexagons meet.
fn push_cell(out: &mut String, texts: &Texts, c: i64, r: i64, parts: [Option<usize>; 4]) {
    let (first, second) = if (c - r).rem_euclid(2) == 0 {
        (
            parts[Part::Edge(Slot::Forward).index()],
            parts[Part::Label.index()],
        )
    } else {
        (
            parts[Part::Edge(Slot::Back).index()],
            parts[Part::Edge(Slot::Bottom).index()],
        )
    };
    out.push_str(first.map_or(" ", |t| texts.get(t)));
    out.push_str(second.map_or("   ", |t| texts.get(t)));
}

/// Right-trims the map line started at `line_start`, and drops it with
/// the newline before it (which starts at `row_start`) if nothing is left.
fn end_map_line(out: &mut String, row_start: usize, line_start: usize) {
    let kept = py_rstrip(&out[line_start..]).len();
    if kept == 0 {
        out.truncate(row_start);
    } else {
        out.truncate(line_start + kept);
    }
}

/// Marks every label and edge of a board map, in drawing order, keeping
/// each distinct text once in `texts`.
fn draw(
    groups: &[GroupView<'_>],
    dead_links: &[DeadLink],
    colour: bool,
    texts: &mut Texts,
    mark: &mut impl FnMut(Mark),
) {
    let mut cells: Vec<(i64, i64)> = Vec::new();
    let mut members = CellSet::default();
    for group in groups {
        cells.clear();
        cells.extend(group.boards.iter().map(|&b| board_cell(b)));
        cells.sort_unstable();
        cells.dedup();
        members.fill(&cells);
        let label = texts.paint(group.label, group.label_style, colour);
        // The text of each slot's edge, inside and on the outline.
        let mut edge = |slot: Slot| {
            [group.inner, group.outer].map(|style| texts.paint(slot.edge(), style, colour))
        };
        let bottom = edge(Slot::Bottom);
        let back = edge(Slot::Back);
        let forward = edge(Slot::Forward);
        for &(c, r) in &cells {
            mark(Mark::new(c, r, Part::Label, label));
            for link in (0..6).filter_map(link_edge) {
                let (dc, dr) = link.neighbour;
                let (ec, er) = link.cell;
                let inside = members.contains(&cells, (c + dc, r + dr));
                let [inner, outer] = match link.slot {
                    Slot::Bottom => bottom,
                    Slot::Back => back,
                    Slot::Forward => forward,
                };
                let text = if inside { inner } else { outer };
                mark(Mark::new(c + ec, r + er, Part::Edge(link.slot), text));
            }
        }
    }

    for &(x, y, z, link) in dead_links {
        // A link number outside 0–5 names no edge; there is nothing to mark.
        let Some(link) = link_edge(link) else {
            continue;
        };
        let (c, r) = board_cell((x, y, z));
        let (ec, er) = link.cell;
        let text = if colour {
            texts.paint(link.slot.edge(), Style::RED, true)
        } else {
            texts.paint(link.slot.dead(), Style::PLAIN, false)
        };
        mark(Mark::new(c + ec, r + er, Part::Edge(link.slot), text));
    }
}

/// Which cells belong to one group, for the neighbour test of every edge:
/// a bitmap over the group's box when the group fills enough of it (a
/// whole machine's boards are thousands of tests), else a binary search of
/// the sorted cells.
#[derive(Debug, Default)]
struct CellSet {
    c0: i64,
    r0: i64,
    width: usize,
    height: usize,
    bits: Vec<u64>,
    /// Whether `bits` describes the current group.
    mapped: bool,
}

impl CellSet {
    /// Describes the group whose sorted, distinct cells are `cells`.
    fn fill(&mut self, cells: &[(i64, i64)]) {
        self.mapped = false;
        if cells.len() < 32 {
            return;
        }
        let (Some(&(c0, _)), Some(&(c1, _))) = (cells.first(), cells.last()) else {
            return;
        };
        let r0 = cells.iter().map(|&(_, r)| r).min().unwrap_or(0);
        let r1 = cells.iter().map(|&(_, r)| r).max().unwrap_or(0);
        let (Ok(width), Ok(height)) = (usize::try_from(c1 - c0 + 1), usize::try_from(r1 - r0 + 1))
        else {
            return;
        };
        let area = width.saturating_mul(height);
        if area > 64 * cells.len() {
            return;
        }
        self.bits.clear();
        self.bits.resize(area.div_ceil(64), 0);
        for &(c, r) in cells {
            // Within the box just measured.
            let i = (c - c0) as usize * height + (r - r0) as usize;
            self.bits[i / 64] |= 1 << (i % 64);
        }
        (self.c0, self.r0, self.width, self.height, self.mapped) = (c0, r0, width, height, true);
    }

    fn contains(&self, cells: &[(i64, i64)], (c, r): (i64, i64)) -> bool {
        if !self.mapped {
            return cells.binary_search(&(c, r)).is_ok();
        }
        match (usize::try_from(c - self.c0), usize::try_from(r - self.r0)) {
            (Ok(dc), Ok(dr)) if dc < self.width && dr < self.height => {
                let i = dc * self.height + dr;
                self.bits[i / 64] & (1 << (i % 64)) != 0
            }
            _ => false,
        }
    }
}

/// What a [`Mark`] draws in its cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Part {
    Label,
    Edge(Slot),
}

impl Part {
    fn index(self) -> usize {
        match self {
            Part::Label => 0,
            Part::Edge(Slot::Bottom) => 1,
            Part::Edge(Slot::Back) => 2,
            Part::Edge(Slot::Forward) => 3,
        }
    }
}

/// One label or edge drawn in map cell `(c, r)`, with its text's index in
/// [`Texts`].
#[derive(Clone, Copy, Debug)]
struct Mark {
    r: i64,
    c: i64,
    part: Part,
    text: usize,
}

impl Mark {
    fn new(c: i64, r: i64, part: Part, text: usize) -> Mark {
        Mark { r, c, part, text }
    }
}

/// Painted fragments stored end to end in one string, named by index.
#[derive(Default)]
struct Texts {
    all: String,
    ends: Vec<usize>,
}

impl Texts {
    fn paint(&mut self, text: &str, style: Style, colour: bool) -> usize {
        paint_into(&mut self.all, text, style, colour);
        self.ends.push(self.all.len());
        self.ends.len() - 1
    }

    fn get(&self, index: usize) -> &str {
        let start = index.checked_sub(1).map_or(0, |i| self.ends[i]);
        &self.all[start..self.ends[index]]
    }
}

/// One job drawn on a [`machine_map`]: its key, its id (which picks its
/// colour) and its boards.
pub type MapJob<'a> = (&'a str, u64, &'a [Board]);

/// The map of a whole machine, as `spalloc machine NAME` draws it.
///
/// Every live board is drawn dim with a ` . ` label; then each job, in list
/// order, with its key centred in the job's colour, the edges between its
/// own boards in that colour and its outline bright. Dead links are drawn
/// last. See [`render_board_map`] for the layout.
pub fn machine_map(
    live_boards: &[Board],
    jobs: &[MapJob<'_>],
    dead_links: &[DeadLink],
    colour: bool,
) -> String {
    // The jobs' centred keys, end to end in one string.
    let mut labels = String::new();
    let mut ends = Vec::with_capacity(jobs.len());
    for &(key, _, _) in jobs {
        push_centred(&mut labels, key, 3);
        ends.push(labels.len());
    }
    let mut groups = Vec::with_capacity(jobs.len() + 1);
    groups.push(GroupView {
        boards: live_boards,
        label: " . ",
        label_style: Style::DIM,
        inner: Style::DIM,
        outer: Style::DIM,
    });
    let mut start = 0;
    for (&(_, job_id, boards), &end) in jobs.iter().zip(&ends) {
        let style = job_colour(job_id);
        groups.push(GroupView {
            boards,
            label: &labels[start..end],
            label_style: style,
            inner: style,
            outer: Style::BRIGHT,
        });
        start = end;
    }
    render_views(&groups, dead_links, colour)
}

/// The map of one job's boards, as the `Allocation` entry of `spalloc job`
/// draws it: ` . ` labels and inner edges dim, the outline bright, and no
/// dead links.
pub fn job_map(boards: &[Board], colour: bool) -> String {
    let group = MapGroup {
        boards: boards.to_vec(),
        label: " . ".to_owned(),
        label_style: Style::DIM,
        inner: Style::DIM,
        outer: Style::BRIGHT,
    };
    render_board_map(&[group], &[], colour)
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

/// The whole second that Python shows for a Unix time.
///
/// Python's `datetime.fromtimestamp` first rounds the fraction to whole
/// microseconds, half to even, and then drops it; so `1.9999996` is shown
/// as second 2, not 1. We round the same way so both tools agree on every
/// second. `None` for NaN, infinities and times too far away to matter.
fn whole_seconds(unix_secs: f64) -> Option<i64> {
    // Comfortably past year 9999 either way, and far inside i64.
    const LIMIT: f64 = 1e13;
    if !unix_secs.is_finite() || unix_secs.abs() > LIMIT {
        return None;
    }
    let int = unix_secs.trunc();
    let micros = ((unix_secs - int) * 1e6).round_ties_even();
    let secs = if micros >= 1e6 {
        int + 1.0
    } else if micros < 0.0 {
        int - 1.0
    } else {
        int
    };
    // In range and integral, so the conversion is exact.
    Some(secs as i64)
}

/// The proleptic Gregorian date of a day counted from 1970-01-01:
/// (year, month 1–12, day 1–31).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    // Count from 0000-03-01 so that the leap day falls at the end of each
    // year, then split into 400-year eras of 146097 days, in which the
    // calendar repeats exactly.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // day of the era, 0..=146096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // 0..=399
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // 0..=365, from March 1st
    let mp = (5 * doy + 2) / 153; // 0..=11, March = 0
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Formats a Unix time as an ISO-8601 UTC timestamp in whole seconds, such
/// as `2026-11-23T20:21:56Z`, for the JSON output (§12).
///
/// The fraction is dropped the same way as in [`format_local_time`], so the
/// two never disagree about the second. `None` when the time is not finite
/// or falls outside the years 0000–9999 that the format can spell.
pub fn iso8601_utc(unix_secs: f64) -> Option<String> {
    let secs = whole_seconds(unix_secs)?;
    let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
    if !(0..=9999).contains(&year) {
        return None;
    }
    let in_day = secs.rem_euclid(86_400);
    Some(format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        in_day / 3600,
        in_day / 60 % 60,
        in_day % 60
    ))
}

/// Formats a Unix time in local time as `%d/%m/%Y %H:%M:%S`, such as
/// `23/11/2026 20:21:56`, the way the Python tools print `start_time`.
///
/// The time zone comes from the C library, which honours `TZ` exactly as
/// Python's `time.localtime` does. The year is not zero-padded, as glibc
/// prints it for Python. `None` when the time is not finite or lies outside
/// the years 1–9999, where Python's `datetime` gives up too.
///
/// On platforms other than Unix the time is shown in UTC.
pub fn format_local_time(unix_secs: f64) -> Option<String> {
    let secs = whole_seconds(unix_secs)?;
    let t = local_time(secs)?;
    if !(1..=9999).contains(&t.year) {
        return None;
    }
    // By hand rather than with `format!`: `spalloc ps` formats one time per
    // job, and the formatting machinery cost more than the conversion.
    let mut out = String::with_capacity(19);
    let two = |out: &mut String, n: i64| {
        let n = u8::try_from(n.clamp(0, 99)).unwrap_or(0);
        out.push(char::from(b'0' + n / 10));
        out.push(char::from(b'0' + n % 10));
    };
    two(&mut out, t.day);
    out.push('/');
    two(&mut out, t.month);
    out.push('/');
    let _ = write!(out, "{}", t.year);
    out.push(' ');
    two(&mut out, t.hour);
    out.push(':');
    two(&mut out, t.minute);
    out.push(':');
    two(&mut out, t.second);
    Some(out)
}

/// A broken-down local time.
#[derive(Debug)]
struct LocalTime {
    year: i64,
    month: i64,
    day: i64,
    hour: i64,
    minute: i64,
    second: i64,
}

#[cfg(unix)]
fn local_time(secs: i64) -> Option<LocalTime> {
    // POSIX does not promise that `localtime_r` reads `TZ`, only that
    // `tzset` does, so portable callers run `tzset` first. The `libc` crate
    // does not declare it for Unix, but every POSIX C library has it.
    unsafe extern "C" {
        fn tzset();
    }
    static TZSET: std::sync::Once = std::sync::Once::new();
    let t = libc::time_t::try_from(secs).ok()?;
    // SAFETY: `tzset` takes no arguments and only reads the environment and
    // the zone files; the binary never changes `TZ`, so no other thread
    // writes the environment while it reads. `localtime_r` writes only into
    // `tm`, a zero-initialised `libc::tm` we own (all zeros, including a
    // null `tm_zone`, is a valid `tm`), and we use `tm` only after a
    // non-null return reports success.
    let tm = unsafe {
        TZSET.call_once(|| tzset());
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&t, &mut tm).is_null() {
            return None;
        }
        tm
    };
    Some(LocalTime {
        year: i64::from(tm.tm_year) + 1900,
        month: i64::from(tm.tm_mon) + 1,
        day: i64::from(tm.tm_mday),
        hour: i64::from(tm.tm_hour),
        minute: i64::from(tm.tm_min),
        second: i64::from(tm.tm_sec),
    })
}

#[cfg(not(unix))]
fn local_time(secs: i64) -> Option<LocalTime> {
    let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
    let in_day = secs.rem_euclid(86_400);
    Some(LocalTime {
        year,
        month: i64::from(month),
        day: i64::from(day),
        hour: in_day / 3600,
        minute: in_day / 60 % 60,
        second: in_day % 60,
    })
}

/// The `--color` setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ColorChoice {
    /// Colour a stream only when it is a terminal that wants colour.
    #[default]
    Auto,
    /// Always colour, even a file or a pipe, and even with `NO_COLOR` set.
    Always,
    /// Never colour.
    Never,
}

impl FromStr for ColorChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<ColorChoice, String> {
        match s {
            "auto" => Ok(ColorChoice::Auto),
            "always" => Ok(ColorChoice::Always),
            "never" => Ok(ColorChoice::Never),
            _ => Err(format!(
                "invalid choice: '{s}' (choose from 'auto', 'always', 'never')"
            )),
        }
    }
}

/// Whether to colour one output stream (CLI_REFERENCE §4.3, §13.4).
///
/// `always` and `never` are obeyed. Under `auto` the stream is coloured when
/// it is a terminal, `NO_COLOR` is unset or empty, and `TERM` is not `dumb`.
/// The caller passes the stream's TTY status and the two variables, so the
/// decision is made per stream and can be tested without a terminal.
pub fn colour_enabled(
    choice: ColorChoice,
    is_tty: bool,
    no_color: Option<&str>,
    term: Option<&str>,
) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => is_tty && no_color.is_none_or(str::is_empty) && term != Some("dumb"),
    }
}

/// Whether cursor control (clearing the screen in `--watch`, rewriting the
/// alloc status line) is used on a stream: when it is a terminal that is not
/// `TERM=dumb`, whatever the colour setting, since `NO_COLOR` is about
/// colour and a cleared screen is still wanted without it.
pub fn cursor_control(is_tty: bool, term: Option<&str>) -> bool {
    is_tty && term != Some("dumb")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pyfmt::tests::eqnice;

    // ---- styles and colour -------------------------------------------------

    #[test]
    fn style_codes() {
        eqnice!("", Style::PLAIN.codes());
        eqnice!("1", Style::BRIGHT.codes());
        eqnice!("2", Style::DIM.codes());
        eqnice!("4;1", Style::HEADER.codes());
        eqnice!("31", Style::RED.codes());
        eqnice!("32", Style::GREEN.codes());
        eqnice!("33", Style::YELLOW.codes());
        eqnice!("34", Style::BLUE.codes());
        eqnice!("35", Style::MAGENTA.codes());
        eqnice!("36", Style::CYAN.codes());
        eqnice!("2;32", Style::GREEN.dim().codes());
        eqnice!("1;36", Style::CYAN.bright().codes());
        eqnice!("1;36", Style::BRIGHT.fg(Colour::Cyan).codes());
        eqnice!("2", Style::BRIGHT.dim().codes());
    }

    #[test]
    fn paint_wraps_each_fragment() {
        eqnice!("\x1b[32mready\x1b[0m", paint("ready", Style::GREEN, true));
        eqnice!("\x1b[4;1mID\x1b[0m", paint("ID", Style::HEADER, true));
        eqnice!("ready", paint("ready", Style::GREEN, false));
        eqnice!("text", paint("text", Style::PLAIN, true));
        eqnice!("\x1b[2J\x1b[;H", CLEAR_SCREEN);
        eqnice!("\x1b[1F\x1b[K", REWRITE_PREVIOUS_LINE);
    }

    #[test]
    fn job_colours_cycle_every_fifteen() {
        let codes: Vec<String> = (0..16).map(|id| job_colour(id).codes()).collect();
        let expected = [
            "32", "34", "35", "33", "36", "2;32", "2;34", "2;35", "2;33", "2;36", "1;32", "1;34",
            "1;35", "1;33", "1;36", "32",
        ];
        assert_eq!(codes, expected);
        eqnice!("32", job_colour(u64::MAX).codes()); // u64::MAX % 15 == 0
    }

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

    #[test]
    fn colour_decision() {
        use ColorChoice::*;
        assert!(colour_enabled(Auto, true, None, Some("xterm")));
        assert!(colour_enabled(Auto, true, None, None));
        assert!(colour_enabled(Auto, true, Some(""), Some("xterm")));
        assert!(!colour_enabled(Auto, false, None, Some("xterm")));
        assert!(!colour_enabled(Auto, true, Some("1"), Some("xterm")));
        assert!(!colour_enabled(Auto, true, None, Some("dumb")));
        assert!(colour_enabled(Always, false, Some("1"), Some("dumb")));
        assert!(!colour_enabled(Never, true, None, Some("xterm")));

        assert!(cursor_control(true, Some("xterm")));
        assert!(cursor_control(true, None));
        assert!(!cursor_control(true, Some("dumb")));
        assert!(!cursor_control(false, Some("xterm")));
    }

    #[test]
    fn colour_choice_parses_the_three_words() {
        assert_eq!(Ok(ColorChoice::Auto), "auto".parse());
        assert_eq!(Ok(ColorChoice::Always), "always".parse());
        assert_eq!(Ok(ColorChoice::Never), "never".parse());
        assert_eq!(
            Err("invalid choice: 'yes' (choose from 'auto', 'always', 'never')".to_owned()),
            "yes".parse::<ColorChoice>()
        );
        assert_eq!(ColorChoice::Auto, ColorChoice::default());
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

    // ---- board maps --------------------------------------------------------

    /// Every board of a `width` × `height` triad machine, except `dead`.
    fn boards_of(width: u32, height: u32, dead: &[Board]) -> Vec<Board> {
        let mut boards = Vec::new();
        for x in 0..width {
            for y in 0..height {
                for z in 0..3 {
                    if !dead.contains(&(x, y, z)) {
                        boards.push((x, y, z));
                    }
                }
            }
        }
        boards
    }

    #[test]
    fn map_of_m_labelled_by_coordinates() {
        // One group per board, so each can carry its own label.
        let groups: Vec<MapGroup> = boards_of(2, 2, &[])
            .into_iter()
            .map(|(x, y, z)| MapGroup {
                boards: vec![(x, y, z)],
                label: format!("{x}{y}{z}"),
                label_style: Style::DIM,
                inner: Style::DIM,
                outer: Style::BRIGHT,
            })
            .collect();
        eqnice!(
            " ___     ___\n\
             /012\\___/112\\___\n\
             \\___/011\\___/111\\\n\
             /010\\___/110\\___/\n\
             \\___/002\\___/102\\___\n\
             \x20   \\___/001\\___/101\\\n\
             \x20   /000\\___/100\\___/\n\
             \x20   \\___/   \\___/",
            render_board_map(&groups, &[], false)
        );
    }

    /// The boards of job 15 on `big`: the 2×2 triads at x 1–2, y 1–2.
    fn job_15_boards() -> Vec<Board> {
        let mut boards = Vec::new();
        for x in 1..3 {
            for y in 1..3 {
                for z in 0..3 {
                    boards.push((x, y, z));
                }
            }
        }
        boards
    }

    const JOB_15_MAP: &str = " ___     ___\n\
        / . \\___/ . \\___\n\
        \\___/ . \\___/ . \\\n\
        / . \\___/ . \\___/\n\
        \\___/ . \\___/ . \\___\n\
        \x20   \\___/ . \\___/ . \\\n\
        \x20   / . \\___/ . \\___/\n\
        \x20   \\___/   \\___/";

    #[test]
    fn job_map_of_twelve_boards() {
        eqnice!(JOB_15_MAP, job_map(&job_15_boards(), false));
    }

    #[test]
    fn job_map_inside_a_deflist() {
        let items = [
            ("Num boards", "12".to_owned()),
            ("Allocation", job_map(&job_15_boards(), false)),
        ];
        eqnice!(
            "Num boards: 12\n\
             Allocation:  ___     ___\n\
             \x20           / . \\___/ . \\___\n\
             \x20           \\___/ . \\___/ . \\\n\
             \x20           / . \\___/ . \\___/\n\
             \x20           \\___/ . \\___/ . \\___\n\
             \x20               \\___/ . \\___/ . \\\n\
             \x20               / . \\___/ . \\___/\n\
             \x20               \\___/   \\___/\n",
            render_deflist(&items)
        );
    }

    const BIG_MAP: &str = " ___     ___     ___\n\
        / . \\___/ A \\___/ A \\___     ___\n\
        \\___/ . \\___/ A \\___/ A \\___/ . \\\n\
        / . \\___/ A \\___/ A \\___/ . \\___/\n\
        \\___/ . \\___/ A \\___/ A \\___/ . \\___\n\
        \x20   \\___/ . \\XXX/ A \\___/ A \\___/ . \\\n\
        \x20   / . \\___/ A \\___/ A \\___/ . \\___/\n\
        \x20   \\___/ . \\___/ . \\___/ . \\___/ . \\___\n\
        \x20       \\___/ . \\___/ . \\___/   \\___/ . \\\n\
        \x20       / . \\___/ . \\___/ . \\   / . \\___/\n\
        \x20       \\___/   \\___/   \\___/   \\___/";

    #[test]
    fn machine_map_of_big_with_a_job_and_a_dead_link() {
        // `big` is 4×3 triads (11 lines = 3 × 3 + 2; 34 = 36 − 2) with the
        // boards (3, 2, 2) and (2, 0, 1) dead, and job 15 holding 12 boards.
        let live = boards_of(4, 3, &[(3, 2, 2), (2, 0, 1)]);
        assert_eq!(34, live.len());
        let job = job_15_boards();
        let jobs: [MapJob<'_>; 1] = [("A", 15, &job)];
        eqnice!(BIG_MAP, machine_map(&live, &jobs, &[(1, 1, 0, 2)], false));
    }

    #[test]
    fn machine_map_of_one_board() {
        eqnice!(
            " ___\n/ . \\\n\\___/",
            machine_map(&[(0, 0, 0)], &[], &[], false)
        );
    }

    #[test]
    fn map_of_nothing_is_empty() {
        eqnice!("", machine_map(&[], &[], &[], false));
        eqnice!("", job_map(&[], true));
    }

    #[test]
    fn map_in_colour_one_board() {
        eqnice!(
            " \x1b[1m___\x1b[0m\n\
             \x1b[1m/\x1b[0m\x1b[2m . \x1b[0m\x1b[1m\\\x1b[0m\n\
             \x1b[1m\\\x1b[0m\x1b[1m___\x1b[0m\x1b[1m/\x1b[0m",
            job_map(&[(0, 0, 0)], true)
        );
        eqnice!(
            " \x1b[2m___\x1b[0m\n\
             \x1b[2m/\x1b[0m\x1b[2m . \x1b[0m\x1b[2m\\\x1b[0m\n\
             \x1b[2m\\\x1b[0m\x1b[2m___\x1b[0m\x1b[2m/\x1b[0m",
            machine_map(&[(0, 0, 0)], &[], &[], true)
        );
    }

    #[test]
    fn map_in_colour_job_key_and_dead_link() {
        let job = [(0, 0, 0)];
        let jobs: [MapJob<'_>; 1] = [("A", 15, &job)];
        eqnice!(
            " \x1b[31m___\x1b[0m\n\
             \x1b[1m/\x1b[0m\x1b[32m A \x1b[0m\x1b[1m\\\x1b[0m\n\
             \x1b[1m\\\x1b[0m\x1b[1m___\x1b[0m\x1b[1m/\x1b[0m",
            machine_map(&[(0, 0, 0)], &jobs, &[(0, 0, 0, 2)], true)
        );
        // Inner edges take the job's colour; a two-letter key is centred
        // Python's way.
        let job = [(0, 0, 0), (0, 0, 1)];
        let jobs: [MapJob<'_>; 1] = [("AB", 6, &job)];
        eqnice!(
            "     \x1b[1m___\x1b[0m\n \x1b[1m___\x1b[0m\x1b[1m/\x1b[0m\x1b[2;34m AB\x1b[0m\x1b[1m\\\x1b[0m\n\
             \x1b[1m/\x1b[0m\x1b[2;34m AB\x1b[0m\x1b[2;34m\\\x1b[0m\x1b[1m___\x1b[0m\x1b[1m/\x1b[0m\n\
             \x1b[1m\\\x1b[0m\x1b[1m___\x1b[0m\x1b[1m/\x1b[0m",
            machine_map(&job, &jobs, &[], true)
        );
    }

    #[test]
    fn map_dead_links_without_colour_in_every_slot() {
        // A lone board with all six links dead: the two `___`, two `\` and
        // two `/` all become crosses.
        let dead: Vec<DeadLink> = (0..6).map(|l| (0, 0, 0, l)).collect();
        eqnice!(
            " XXX\nX . X\nXXXXX",
            machine_map(&[(0, 0, 0)], &[], &dead, false)
        );
        // A link number that names no edge is ignored.
        eqnice!(
            " ___\n/ . \\\n\\___/",
            machine_map(&[(0, 0, 0)], &[], &[(0, 0, 0, 6)], false)
        );
    }

    #[test]
    fn map_dead_link_on_a_missing_board_still_shows() {
        // The Python tool draws a dead link even where no board is drawn,
        // and the link's edge widens the map; we do the same.
        eqnice!(
            " ___\n/ . \\\n\\___/           X",
            machine_map(&[(0, 0, 0)], &[], &[(2, 0, 0, 4)], false)
        );
    }

    #[test]
    fn map_later_groups_overwrite_earlier_ones() {
        let groups = [
            MapGroup {
                boards: vec![(0, 0, 0), (0, 0, 1)],
                label: " . ".to_owned(),
                label_style: Style::PLAIN,
                inner: Style::PLAIN,
                outer: Style::PLAIN,
            },
            MapGroup {
                boards: vec![(0, 0, 1)],
                label: " B ".to_owned(),
                label_style: Style::PLAIN,
                inner: Style::PLAIN,
                outer: Style::PLAIN,
            },
        ];
        eqnice!(
            "     ___\n ___/ B \\\n/ . \\___/\n\\___/",
            render_board_map(&groups, &[], false)
        );
    }

    #[test]
    fn map_with_far_apart_boards_stays_sparse() {
        // Two boards a thousand rows apart: the empty rows between them are
        // dropped, and the work done is proportional to the output.
        let got = job_map(&[(0, 0, 0), (0, 1000, 0)], false);
        assert_eq!(6, got.lines().count(), "{got}");
        let last = got.lines().last().unwrap_or("");
        eqnice!(format!("{}\\___/", "    ".repeat(1000)), last);
    }

    #[test]
    fn map_grid_and_sorted_rendering_agree() {
        // Whichever way a map is drawn, it comes out the same: a whole
        // machine with a job drawn over it and dead links (one on a board
        // that is not drawn), and a group of two boards far apart.
        let live = boards_of(4, 3, &[(3, 2, 2), (2, 0, 1)]);
        let job = job_15_boards();
        let groups = [
            GroupView {
                boards: &live,
                label: " . ",
                label_style: Style::DIM,
                inner: Style::DIM,
                outer: Style::DIM,
            },
            GroupView {
                boards: &job,
                label: " A ",
                label_style: Style::GREEN,
                inner: Style::GREEN,
                outer: Style::BRIGHT,
            },
            GroupView {
                boards: &[(0, 0, 0), (30, 40, 2)],
                label: " B ",
                label_style: Style::BLUE,
                inner: Style::BLUE,
                outer: Style::BRIGHT,
            },
        ];
        let dead = [(1, 1, 0, 2), (0, 0, 0, 5), (9, 0, 0, 0)];
        for colour in [false, true] {
            for n in 1..=groups.len() {
                let Some(area) = MapBox::around(&groups[..n], &dead) else {
                    panic!("nothing to draw");
                };
                let dense = render_dense(&groups[..n], &dead, colour, &area);
                eqnice!(dense, render_sparse(&groups[..n], &dead, colour));
                assert!(dense.lines().count() > 10);
            }
        }
        eqnice!(BIG_MAP, {
            let live = boards_of(4, 3, &[(3, 2, 2), (2, 0, 1)]);
            let job = job_15_boards();
            let jobs: [MapJob<'_>; 1] = [("A", 15, &job)];
            render_sparse(
                &[
                    GroupView {
                        boards: &live,
                        label: " . ",
                        label_style: Style::DIM,
                        inner: Style::DIM,
                        outer: Style::DIM,
                    },
                    GroupView {
                        boards: jobs[0].2,
                        label: " A ",
                        label_style: job_colour(15),
                        inner: job_colour(15),
                        outer: Style::BRIGHT,
                    },
                ],
                &[(1, 1, 0, 2)],
                false,
            )
        });
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

    // ---- times -------------------------------------------------------------

    #[test]
    fn iso8601_in_utc() {
        let cases: &[(f64, &str)] = &[
            (0.0, "1970-01-01T00:00:00Z"),
            (1_795_458_116.0, "2026-11-23T18:21:56Z"),
            (1_795_458_116.75, "2026-11-23T18:21:56Z"),
            (951_782_400.0, "2000-02-29T00:00:00Z"),
            (951_868_799.0, "2000-02-29T23:59:59Z"),
            (951_868_800.0, "2000-03-01T00:00:00Z"),
            (4_107_542_400.0, "2100-03-01T00:00:00Z"),
            (1_709_164_800.0, "2024-02-29T00:00:00Z"),
            (-1.0, "1969-12-31T23:59:59Z"),
            (-0.5, "1969-12-31T23:59:59Z"),
            (-86_400.0, "1969-12-31T00:00:00Z"),
            (-2_208_988_800.25, "1899-12-31T23:59:59Z"),
            (-11_670_912_000.0, "1600-03-01T00:00:00Z"),
            (-11_670_912_001.0, "1600-02-29T23:59:59Z"),
            (1.999_999_6, "1970-01-01T00:00:02Z"),
            (1.999_999_4, "1970-01-01T00:00:01Z"),
            (253_402_300_799.0, "9999-12-31T23:59:59Z"),
            (-62_167_219_200.0, "0000-01-01T00:00:00Z"),
        ];
        for &(t, want) in cases {
            assert_eq!(Some(want.to_owned()), iso8601_utc(t), "time {t}");
        }
        assert_eq!(None, iso8601_utc(253_402_300_800.0));
        assert_eq!(None, iso8601_utc(-62_167_219_201.0));
        assert_eq!(None, iso8601_utc(f64::NAN));
        assert_eq!(None, iso8601_utc(f64::INFINITY));
        assert_eq!(None, iso8601_utc(-1e300));
    }

    #[test]
    fn civil_dates_round_trip_every_day_for_centuries() {
        // Walk day by day from 1600 to 2400 and check the calendar advances
        // exactly as the Gregorian rules say.
        let is_leap = |y: i64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        let month_len = |y: i64, m: u32| match m {
            2 if is_leap(y) => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        let start = -135_140; // 1600-01-01
        let (mut y, mut m, mut d) = (1600i64, 1u32, 1u32);
        for days in start..start + 800 * 366 {
            assert_eq!((y, m, d), civil_from_days(days), "day {days}");
            d += 1;
            if d > month_len(y, m) {
                d = 1;
                m += 1;
                if m > 12 {
                    m = 1;
                    y += 1;
                }
            }
        }
    }

    /// Which zone a time is shown in depends on `TZ`, which a process reads
    /// once; `tests/cli_views/ps.rs` checks that end to end, running the
    /// binary under several zones. What does not depend on the zone is
    /// checked here.
    #[test]
    fn local_time_of_unshowable_times_is_none() {
        assert_eq!(None, format_local_time(f64::NAN));
        assert_eq!(None, format_local_time(f64::INFINITY));
        assert_eq!(None, format_local_time(f64::NEG_INFINITY));
        assert_eq!(None, format_local_time(1e18));
        assert_eq!(None, format_local_time(-1e18));
    }
}
