//! The hexagon map of boards (CLI_REFERENCE §4.5): a machine with its jobs
//! keyed A, B, C…, or one job's allocation.
//!
//! Each board is drawn as a hexagon in a grid of text cells, labelled with
//! its coordinates or the key of the job holding it; dead links are drawn
//! as breaks in the edges. Small maps are drawn on a dense grid, large
//! sparse ones by sorting the cells, and both give the same text.

use std::cmp::Reverse;

use super::style::{Style, job_colour, paint_into, push_spaces};
use super::table::{push_centred, py_rstrip};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::pyfmt::tests::eqnice;
    use crate::render::render_deflist;

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
}
