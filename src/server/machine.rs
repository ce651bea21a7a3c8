//! Describing a machine: [`Machine`] (the public builder) and its resolved,
//! validated form used by the running server.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::Ipv4Addr;

use super::geometry::{Board, Link};
use super::layout::{IpScheme, Physical, linear_layout, spinner_layout};

/// The largest width or height, in triads, that a machine may have. Real
/// machines are far smaller; the bound keeps all coordinate arithmetic well
/// inside `i32`.
pub const MAX_TRIADS: u32 = 256;

/// How a machine's boards get their cabinet, frame and board numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Layout {
    /// SpiNNer's default wiring plan for the machine's size; for the sizes
    /// SpiNNer cannot split into whole frames, the [`Layout::Linear`] layout.
    #[default]
    Spinner,
    /// Boards in `(x, y, z)` order, 24 to a frame and five frames to a cabinet.
    Linear,
    /// Only the boards given with [`Machine::boards`].
    Explicit,
}

/// The physical position (and optionally the IP address) of one board, for
/// machines with hand-made layouts; see [`Machine::boards`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BoardLocation {
    /// Logical triad column.
    pub x: u32,
    /// Logical triad row.
    pub y: u32,
    /// Board within the triad (0, 1 or 2).
    pub z: u32,
    /// Cabinet number.
    pub cabinet: u32,
    /// Frame number within the cabinet.
    pub frame: u32,
    /// Board number within the frame.
    pub board: u32,
    /// The board's Ethernet address; `None` derives it from the machine's
    /// standard IP parameters.
    pub ip: Option<String>,
}

impl BoardLocation {
    /// Board `(x, y, z)` sits in cabinet `cabinet`, frame `frame`, slot `board`.
    pub fn new(x: u32, y: u32, z: u32, cabinet: u32, frame: u32, board: u32) -> BoardLocation {
        BoardLocation {
            x,
            y,
            z,
            cabinet,
            frame,
            board,
            ip: None,
        }
    }

    /// Gives the board an explicit IP address (or host name).
    pub fn ip(mut self, ip: impl Into<String>) -> BoardLocation {
        self.ip = Some(ip.into());
        self
    }
}

/// One machine served by the virtual server.
///
/// Built with [`Machine::new`] (a `width` x `height` grid of triads, three
/// boards each) or [`Machine::single_board`], then refined with the chaining
/// setters. By default a machine has the tag `default`, no dead boards or
/// links, SpiNNer's board numbering and the standard IP addresses of the
/// Python server (`192.168.0.0` plus 1280 per cabinet, 256 per frame and 8
/// per board, plus 1).
///
/// ```
/// use spalloc::server::{Link, Machine};
/// let m = Machine::new("spin5", 2, 2)
///     .tags(["default", "big"])
///     .dead_boards([(0, 0, 1)])
///     .dead_links([(1, 1, 1, Link::North)]);
/// assert_eq!(m.name(), "spin5");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Machine {
    name: String,
    tags: Vec<String>,
    width: u32,
    height: u32,
    dead_boards: Vec<(u32, u32, u32)>,
    dead_links: Vec<(u32, u32, u32, Link)>,
    layout: Layout,
    ips: IpScheme,
    boards: Vec<BoardLocation>,
}

impl Machine {
    /// A machine `width` triads wide and `height` triads high.
    pub fn new(name: impl Into<String>, width: u32, height: u32) -> Machine {
        Machine {
            name: name.into(),
            tags: vec!["default".to_owned()],
            width,
            height,
            dead_boards: Vec::new(),
            dead_links: Vec::new(),
            layout: Layout::Spinner,
            ips: IpScheme::default(),
            boards: Vec::new(),
        }
    }

    /// A machine of one board, as the Python server's `Machine.single_board`:
    /// a single triad whose boards 1 and 2 are dead, with board (0,0,0) in
    /// cabinet 0, frame 0, slot 0 at address `spinnaker_ip`.
    pub fn single_board(name: impl Into<String>, spinnaker_ip: impl Into<String>) -> Machine {
        Machine::new(name, 1, 1)
            .dead_boards([(0, 0, 1), (0, 0, 2)])
            .layout(Layout::Explicit)
            .boards([BoardLocation::new(0, 0, 0, 0, 0, 0).ip(spinnaker_ip)])
    }

    /// The machine's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Width in triads.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in triads.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// Replaces the tags (default: `["default"]`). A job without tags goes
    /// only to machines tagged `default`.
    pub fn tags<S: Into<String>>(mut self, tags: impl IntoIterator<Item = S>) -> Machine {
        self.tags = tags.into_iter().map(Into::into).collect();
        self
    }

    /// Replaces the dead boards, as `(x, y, z)`.
    pub fn dead_boards(mut self, boards: impl IntoIterator<Item = (u32, u32, u32)>) -> Machine {
        self.dead_boards = boards.into_iter().collect();
        self
    }

    /// Replaces the dead links, as `(x, y, z, link)`: the link leaving board
    /// `(x, y, z)` in that direction is broken. The way back is not implied.
    pub fn dead_links(mut self, links: impl IntoIterator<Item = (u32, u32, u32, Link)>) -> Machine {
        self.dead_links = links.into_iter().collect();
        self
    }

    /// Chooses how boards are numbered physically (default [`Layout::Spinner`]).
    pub fn layout(mut self, layout: Layout) -> Machine {
        self.layout = layout;
        self
    }

    /// Adds explicit board positions (and addresses). With
    /// [`Layout::Explicit`] these are the only located boards; otherwise they
    /// override the computed layout board by board.
    pub fn boards(mut self, boards: impl IntoIterator<Item = BoardLocation>) -> Machine {
        self.boards.extend(boards);
        self
    }

    /// Base address of the standard IPs (default `192.168.0.0`).
    pub fn base_ip(mut self, ip: Ipv4Addr) -> Machine {
        self.ips.base_ip = ip;
        self
    }

    /// Address step per cabinet (default `0.0.5.0`).
    pub fn cabinet_stride(mut self, stride: Ipv4Addr) -> Machine {
        self.ips.cabinet_stride = stride;
        self
    }

    /// Address step per frame (default `0.0.1.0`).
    pub fn frame_stride(mut self, stride: Ipv4Addr) -> Machine {
        self.ips.frame_stride = stride;
        self
    }

    /// Address step per board (default `0.0.0.8`).
    pub fn board_stride(mut self, stride: Ipv4Addr) -> Machine {
        self.ips.board_stride = stride;
        self
    }

    /// Offset of a frame's BMP address (default `0.0.0.0`).
    pub fn bmp_offset(mut self, offset: Ipv4Addr) -> Machine {
        self.ips.bmp_offset = offset;
        self
    }

    /// Offset of a board's SpiNNaker address (default `0.0.0.1`).
    pub fn spinnaker_offset(mut self, offset: Ipv4Addr) -> Machine {
        self.ips.spinnaker_offset = offset;
        self
    }

    /// Checks the description and computes every board's position and
    /// address. Errors name the offending setting.
    pub(crate) fn resolve(&self) -> Result<MachineDef, String> {
        if self.name.is_empty() {
            return Err("name: must not be empty".to_owned());
        }
        for (what, v) in [("width", self.width), ("height", self.height)] {
            if v == 0 || v > MAX_TRIADS {
                return Err(format!(
                    "{what}: must be between 1 and {MAX_TRIADS} triads, not {v}"
                ));
            }
        }
        // Both are at most MAX_TRIADS, so they fit.
        let w = i32::try_from(self.width).unwrap_or(1);
        let h = i32::try_from(self.height).unwrap_or(1);
        let board = |x: u32, y: u32, z: u32| -> Option<Board> {
            (x < self.width && y < self.height && z < 3)
                .then(|| {
                    (
                        i32::try_from(x).ok(),
                        i32::try_from(y).ok(),
                        i32::try_from(z).ok(),
                    )
                })
                .and_then(|(x, y, z)| Some((x?, y?, z?)))
        };

        let mut dead_boards = BTreeSet::new();
        for (i, &(x, y, z)) in self.dead_boards.iter().enumerate() {
            let b = board(x, y, z).ok_or_else(|| {
                format!("dead_boards[{i}]: board ({x}, {y}, {z}) is not on a {w}x{h} machine")
            })?;
            dead_boards.insert(b);
        }
        let mut dead_links = BTreeSet::new();
        for (i, &(x, y, z, link)) in self.dead_links.iter().enumerate() {
            let b = board(x, y, z).ok_or_else(|| {
                format!("dead_links[{i}]: board ({x}, {y}, {z}) is not on a {w}x{h} machine")
            })?;
            dead_links.insert((b, link));
        }

        let mut locations: BTreeMap<Board, Physical> = BTreeMap::new();
        let mut ips: BTreeMap<Board, String> = BTreeMap::new();
        match self.layout {
            Layout::Spinner => {
                locations = spinner_layout(w, h).unwrap_or_else(|| linear_layout(w, h))
            }
            Layout::Linear => locations = linear_layout(w, h),
            Layout::Explicit => {}
        }
        for (i, loc) in self.boards.iter().enumerate() {
            let b = board(loc.x, loc.y, loc.z).ok_or_else(|| {
                format!(
                    "boards[{i}]: board ({}, {}, {}) is not on a {w}x{h} machine",
                    loc.x, loc.y, loc.z
                )
            })?;
            let to_i32 = |v: u32, what: &str| {
                i32::try_from(v).map_err(|_| format!("boards[{i}]: {what} {v} is too large"))
            };
            let p = (
                to_i32(loc.cabinet, "cabinet")?,
                to_i32(loc.frame, "frame")?,
                to_i32(loc.board, "board")?,
            );
            locations.insert(b, p);
            if let Some(ip) = &loc.ip {
                if ip.trim().is_empty() {
                    return Err(format!("boards[{i}]: ip must not be empty"));
                }
                ips.insert(b, ip.clone());
            }
        }

        let mut by_position: HashMap<Physical, Board> = HashMap::new();
        for (&b, &p) in &locations {
            if let Some(other) = by_position.insert(p, b) {
                return Err(format!(
                    "boards: boards {other:?} and {b:?} are both at cabinet {}, frame {}, board {}",
                    p.0, p.1, p.2
                ));
            }
        }
        for (&b, &p) in &locations {
            if ips.contains_key(&b) {
                continue;
            }
            let ip = self.ips.spinnaker_ip(p).ok_or_else(|| {
                format!("base_ip: the standard address of board {b:?} does not fit in IPv4")
            })?;
            ips.insert(b, ip.to_string());
        }
        let mut seen_ips = HashSet::new();
        for (b, ip) in &ips {
            if !seen_ips.insert(ip.as_str()) {
                return Err(format!(
                    "boards: address {ip} is used twice (again for board {b:?})"
                ));
            }
        }
        for x in 0..w {
            for y in 0..h {
                for z in 0..3 {
                    let b = (x, y, z);
                    if !dead_boards.contains(&b) && !locations.contains_key(&b) {
                        return Err(format!(
                            "boards: live board {b:?} has no physical location (list it or mark it dead)"
                        ));
                    }
                }
            }
        }
        let mut bmps = BTreeMap::new();
        for &(c, f, _) in locations.values() {
            if let Some(ip) = self.ips.bmp_ip(c, f) {
                bmps.insert((c, f), ip.to_string());
            }
        }

        let mut tags: Vec<String> = self.tags.clone();
        tags.sort();
        tags.dedup();
        let board_at = by_position;
        Ok(MachineDef {
            name: self.name.clone(),
            tags,
            width: w,
            height: h,
            dead_boards,
            dead_links,
            locations,
            board_at,
            ips,
            bmps,
        })
    }
}

/// A validated machine with every board's position and address worked out.
#[derive(Debug, Clone)]
pub(crate) struct MachineDef {
    pub name: String,
    /// Sorted and without duplicates.
    pub tags: Vec<String>,
    pub width: i32,
    pub height: i32,
    pub dead_boards: BTreeSet<Board>,
    pub dead_links: BTreeSet<(Board, Link)>,
    pub locations: BTreeMap<Board, Physical>,
    pub board_at: HashMap<Physical, Board>,
    pub ips: BTreeMap<Board, String>,
    /// BMP address of each frame (informational only: nothing is powered).
    pub bmps: BTreeMap<(i32, i32), String>,
}

impl MachineDef {
    pub fn is_dead(&self, b: Board) -> bool {
        self.dead_boards.contains(&b)
    }

    pub fn in_range(&self, (x, y, z): Board) -> bool {
        (0..self.width).contains(&x) && (0..self.height).contains(&y) && (0..3).contains(&z)
    }

    pub fn board_count(&self) -> usize {
        usize::try_from(3 * self.width * self.height).unwrap_or(0)
    }

    /// The geometry that allocations depend on; a saved allocator state is
    /// reused only for a machine whose signature is unchanged.
    pub fn signature(&self) -> (i32, i32, Vec<Board>, Vec<(Board, u8)>) {
        (
            self.width,
            self.height,
            self.dead_boards.iter().copied().collect(),
            self.dead_links
                .iter()
                .map(|&(b, l)| (b, l.index()))
                .collect(),
        )
    }

    pub fn has_tags(&self, wanted: &[String]) -> bool {
        wanted.iter().all(|t| self.tags.binary_search(t).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worked_example_machine_resolves() {
        let m = Machine::new("m", 2, 2).resolve();
        let Ok(m) = m else {
            panic!("{m:?}");
        };
        assert_eq!(m.locations.get(&(1, 1, 2)), Some(&(0, 0, 7)));
        assert_eq!(m.board_at.get(&(0, 0, 7)), Some(&(1, 1, 2)));
        assert_eq!(
            m.ips.get(&(0, 0, 1)).map(String::as_str),
            Some("192.168.0.65")
        );
        assert_eq!(
            m.ips.get(&(1, 0, 0)).map(String::as_str),
            Some("192.168.0.81")
        );
        assert_eq!(m.bmps.get(&(0, 0)).map(String::as_str), Some("192.168.0.0"));
    }

    #[test]
    fn single_board_machine() {
        let m = Machine::single_board("one", "10.0.0.1").resolve();
        let Ok(m) = m else {
            panic!("{m:?}");
        };
        assert_eq!(m.locations.len(), 1);
        assert_eq!(m.ips.get(&(0, 0, 0)).map(String::as_str), Some("10.0.0.1"));
        assert!(m.is_dead((0, 0, 1)) && m.is_dead((0, 0, 2)));
    }

    #[test]
    fn errors_name_the_setting() {
        let e = |m: Machine| m.resolve().err().unwrap_or_default();
        assert!(e(Machine::new("m", 0, 2)).starts_with("width:"));
        assert!(e(Machine::new("m", 2, 999)).starts_with("height:"));
        assert!(e(Machine::new("", 2, 2)).starts_with("name:"));
        assert!(e(Machine::new("m", 2, 2).dead_boards([(2, 0, 0)])).starts_with("dead_boards[0]:"));
        assert!(
            e(Machine::new("m", 2, 2).dead_links([(0, 0, 0, Link::North), (0, 0, 3, Link::East)]))
                .starts_with("dead_links[1]:")
        );
        assert!(
            e(Machine::new("m", 1, 1).layout(Layout::Explicit)).contains("no physical location")
        );
        let clash = Machine::new("m", 1, 1).boards([BoardLocation::new(0, 0, 1, 0, 0, 0)]);
        assert!(e(clash).contains("both at"));
        let same_ip = Machine::new("m", 1, 1)
            .boards([BoardLocation::new(0, 0, 1, 0, 0, 1).ip("192.168.0.1")]);
        assert!(e(same_ip).contains("used twice"));
    }
}
