//! Board and chip geometry of a SpiNNaker machine built from triads.
//!
//! Everything here is pure arithmetic on coordinates: which board lies down
//! which link, where a board's Ethernet chip sits, which board owns a chip,
//! and how big an allocation is in chips. The allocator, `where_is` and the
//! machine-info replies all build on these functions, so they are kept free
//! of any server state and unit-tested against the tables of the spec.

use serde::{Deserialize, Serialize};

/// A board's logical coordinate `(x, y, z)`: triad column, triad row and the
/// board within the triad (0, 1 or 2).
pub(crate) type Board = (i32, i32, i32);

/// One of the six links between neighbouring boards (or chips).
///
/// The numbering is the one the Python server uses on the wire, for example
/// in the `dead_links` of `list_machines`: 0 = east, 1 = north-east,
/// 2 = north, 3 = west, 4 = south-west, 5 = south.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Link {
    /// Link 0.
    East,
    /// Link 1.
    NorthEast,
    /// Link 2.
    North,
    /// Link 3.
    West,
    /// Link 4.
    SouthWest,
    /// Link 5.
    South,
}

impl Link {
    /// All six links in wire-number order.
    pub const ALL: [Link; 6] = [
        Link::East,
        Link::NorthEast,
        Link::North,
        Link::West,
        Link::SouthWest,
        Link::South,
    ];

    /// The wire number of this link (0 to 5).
    pub fn index(self) -> u8 {
        match self {
            Link::East => 0,
            Link::NorthEast => 1,
            Link::North => 2,
            Link::West => 3,
            Link::SouthWest => 4,
            Link::South => 5,
        }
    }

    /// The link with wire number `index`, or `None` outside 0 to 5.
    pub fn from_index(index: i64) -> Option<Link> {
        usize::try_from(index)
            .ok()
            .and_then(|i| Link::ALL.get(i))
            .copied()
    }

    /// The link called `name`: `east`, `north_east`, `north`, `west`,
    /// `south_west` or `south` (case-insensitive; `-` may stand for `_`).
    pub fn from_name(name: &str) -> Option<Link> {
        let name = name.trim().to_ascii_lowercase().replace('-', "_");
        Link::ALL.into_iter().find(|l| l.name() == name)
    }

    /// The lower-case name of this link, as accepted by [`Link::from_name`].
    pub fn name(self) -> &'static str {
        match self {
            Link::East => "east",
            Link::NorthEast => "north_east",
            Link::North => "north",
            Link::West => "west",
            Link::SouthWest => "south_west",
            Link::South => "south",
        }
    }

    /// The link pointing the other way.
    pub fn opposite(self) -> Link {
        Link::ALL[usize::from((self.index() + 3) % 6)]
    }
}

/// `(dx, dy, dz)` to the neighbour down each link, indexed by `[z][link]`.
const NEIGHBOUR_DELTAS: [[(i32, i32, i32); 6]; 3] = [
    [
        (0, -1, 2),
        (0, 0, 1),
        (0, 0, 2),
        (-1, 0, 1),
        (-1, -1, 2),
        (-1, -1, 1),
    ],
    [
        (1, 0, -1),
        (1, 0, 1),
        (1, 1, -1),
        (0, 0, 1),
        (0, 0, -1),
        (0, -1, 1),
    ],
    [
        (0, 0, -1),
        (1, 1, -2),
        (0, 1, -1),
        (0, 1, -2),
        (-1, 0, -1),
        (0, 0, -2),
    ],
];

/// Which dimensions a board-to-board step crossed the machine's edge in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub(crate) struct Wrap {
    pub x: bool,
    pub y: bool,
}

impl Wrap {
    pub fn any(self) -> bool {
        self.x || self.y
    }

    pub fn union(self, other: Wrap) -> Wrap {
        Wrap {
            x: self.x || other.x,
            y: self.y || other.y,
        }
    }
}

/// The board down `link` from `board` on a `w` x `h` triad machine, always
/// wrapping around (the server treats every machine as a torus), with the
/// dimensions in which the step wrapped. `board.2` must be 0, 1 or 2.
pub(crate) fn neighbour(board: Board, link: Link, w: i32, h: i32) -> (Board, Wrap) {
    let (x, y, z) = board;
    let row = usize::try_from(z).unwrap_or(0).min(2);
    let (dx, dy, dz) = NEIGHBOUR_DELTAS[row][usize::from(link.index())];
    let (nx, ny) = (x + dx, y + dy);
    let wrap = Wrap {
        x: nx < 0 || nx >= w,
        y: ny < 0 || ny >= h,
    };
    ((nx.rem_euclid(w), ny.rem_euclid(h), z + dz), wrap)
}

/// Offset of board `z`'s Ethernet chip inside its triad's 12 x 12 tile.
/// Any `z` other than 1 or 2 is treated as 0, as the Python server does.
pub(crate) fn z_offset(z: i64) -> (i64, i64) {
    match z {
        1 => (8, 4),
        2 => (4, 8),
        _ => (0, 0),
    }
}

/// The Ethernet chip of board `(x, y, z)` in whole-machine chip coordinates.
pub(crate) fn board_to_chip(x: i64, y: i64, z: i64) -> (i64, i64) {
    let (ox, oy) = z_offset(z);
    (12 * x + ox, 12 * y + oy)
}

/// Whether `(lx, ly)`, relative to a board's Ethernet chip, is one of the 48
/// chips of that board.
pub(crate) fn in_board(lx: i64, ly: i64) -> bool {
    (0..=7).contains(&lx) && (0..=7).contains(&ly) && lx - ly <= 4 && ly - lx <= 3
}

/// For a chip at `(cx, cy)` (any integers), the board `z` within the triad
/// tile that owns it and the chip's coordinate within that board.
pub(crate) fn chip_in_triad(cx: i64, cy: i64) -> (i32, (i64, i64)) {
    let (tx, ty) = (cx.rem_euclid(12), cy.rem_euclid(12));
    for z in 0..3 {
        let (rx, ry) = z_offset(i64::from(z));
        let (lx, ly) = ((tx - rx).rem_euclid(12), (ty - ry).rem_euclid(12));
        if in_board(lx, ly) {
            return (z, (lx, ly));
        }
    }
    // The three board shapes tile the 12 x 12 triad exactly (checked by a
    // unit test over all 144 cells), so this point is never reached.
    (0, (0, 0))
}

/// The board owning chip `(cx, cy)` of a `w` x `h` triad machine and the
/// chip's coordinate within that board. The chip coordinate is reduced
/// modulo the machine's chip size first.
pub(crate) fn chip_to_board(cx: i64, cy: i64, w: i32, h: i32) -> (Board, (i64, i64)) {
    let (cw, ch) = (12 * i64::from(w), 12 * i64::from(h));
    let (cx, cy) = (cx.rem_euclid(cw), cy.rem_euclid(ch));
    let (_, (lx, ly)) = chip_in_triad(cx, cy);
    let (ex, ey) = ((cx - lx).rem_euclid(cw), (cy - ly).rem_euclid(ch));
    let z = match (ex % 12, ey % 12) {
        (8, 4) => 1,
        (4, 8) => 2,
        _ => 0,
    };
    // Both quotients are below w and h, which fit in i32.
    let bx = i32::try_from(ex / 12).unwrap_or(0);
    let by = i32::try_from(ey / 12).unwrap_or(0);
    ((bx, by, z), (lx, ly))
}

/// The size in chips of a `w` x `h` triad rectangle with the given wrap-around.
pub(crate) fn triads_to_chips(w: i64, h: i64, torus: Wrap) -> (i64, i64) {
    (
        12 * w + if torus.x { 0 } else { 4 },
        12 * h + if torus.y { 0 } else { 4 },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_round_trip_by_name_and_index() {
        for link in Link::ALL {
            assert_eq!(Link::from_name(link.name()), Some(link));
            assert_eq!(Link::from_index(i64::from(link.index())), Some(link));
            assert_eq!(link.opposite().opposite(), link);
        }
        assert_eq!(Link::from_name("North-East"), Some(Link::NorthEast));
        assert_eq!(Link::from_name("up"), None);
        assert_eq!(Link::from_index(6), None);
        assert_eq!(Link::from_index(-1), None);
        assert_eq!(Link::East.opposite(), Link::West);
        assert_eq!(Link::NorthEast.opposite(), Link::SouthWest);
    }

    #[test]
    fn going_out_and_back_returns_home() {
        for (w, h) in [(1, 1), (2, 2), (3, 5), (4, 2)] {
            for x in 0..w {
                for y in 0..h {
                    for z in 0..3 {
                        for link in Link::ALL {
                            let (n, _) = neighbour((x, y, z), link, w, h);
                            assert!((0..3).contains(&n.2));
                            let (back, _) = neighbour(n, link.opposite(), w, h);
                            assert_eq!(back, (x, y, z), "{link:?} from {:?}", (x, y, z));
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn neighbour_ethernet_displacements_match_directions() {
        // On a big machine, away from the edges, the Ethernet chip moves by
        // the displacement documented for each direction.
        let expected = [(4, -4), (8, 4), (4, 8), (-4, 4), (-8, -4), (-4, -8)];
        for z in 0..3 {
            let from = (5, 5, z);
            let (fx, fy) = board_to_chip(5, 5, i64::from(z));
            for (link, (dx, dy)) in Link::ALL.into_iter().zip(expected) {
                let ((x, y, nz), wrap) = neighbour(from, link, 10, 10);
                assert!(!wrap.any());
                let (tx, ty) = board_to_chip(i64::from(x), i64::from(y), i64::from(nz));
                assert_eq!((tx - fx, ty - fy), (dx, dy), "z={z} {link:?}");
            }
        }
    }

    #[test]
    fn wrap_flags() {
        // Board (0,0,0) going west on a 2x2 machine wraps in x only.
        let (n, wrap) = neighbour((0, 0, 0), Link::West, 2, 2);
        assert_eq!(n, (1, 0, 1));
        assert_eq!(wrap, Wrap { x: true, y: false });
        // South-west wraps in both.
        let (n, wrap) = neighbour((0, 0, 0), Link::SouthWest, 2, 2);
        assert_eq!(n, (1, 1, 2));
        assert_eq!(wrap, Wrap { x: true, y: true });
        // On a one-triad-wide machine, (0,y,1) east lands on (0,y,0).
        let (n, wrap) = neighbour((0, 0, 1), Link::East, 1, 2);
        assert_eq!(n, (0, 0, 0));
        assert!(wrap.x && !wrap.y);
    }

    #[test]
    fn board_shape_rows() {
        let rows: [(i64, i64); 8] = [
            (0, 4),
            (0, 5),
            (0, 6),
            (0, 7),
            (1, 7),
            (2, 7),
            (3, 7),
            (4, 7),
        ];
        let mut count = 0;
        for ly in 0..12 {
            for lx in 0..12 {
                let inside = usize::try_from(ly)
                    .ok()
                    .and_then(|i| rows.get(i))
                    .is_some_and(|&(lo, hi)| lo <= lx && lx <= hi);
                assert_eq!(in_board(lx, ly), inside, "({lx},{ly})");
                count += usize::from(inside);
            }
        }
        assert_eq!(count, 48);
    }

    #[test]
    fn ownership_map_of_a_triad() {
        // Row ty = 11 first, column tx = 0..11, as drawn in the spec.
        let map = [
            "111122222222",
            "111122222221",
            "111122222211",
            "111122222111",
            "111100001111",
            "111000001111",
            "110000001111",
            "100000001111",
            "000000002222",
            "000000022222",
            "000000222222",
            "000002222222",
        ];
        for (row, line) in map.iter().enumerate() {
            let ty = 11 - i64::try_from(row).unwrap_or(0);
            for (tx, c) in (0..).zip(line.chars()) {
                let (z, (lx, ly)) = chip_in_triad(tx, ty);
                assert_eq!(Some(z), c.to_digit(10).and_then(|d| i32::try_from(d).ok()));
                assert!(in_board(lx, ly));
                let (ox, oy) = z_offset(i64::from(z));
                assert_eq!(((ox + lx) % 12, (oy + ly) % 12), (tx, ty));
            }
        }
    }

    #[test]
    fn chip_to_board_over_all_cells_of_a_triad() {
        // Every chip of every board of a 3x2 machine maps back to that board
        // and to its own board-chip coordinate, including chips that sit in
        // a neighbouring triad's tile or across the wrap-around edge.
        let (w, h) = (3, 2);
        let mut seen = std::collections::HashSet::new();
        for x in 0..w {
            for y in 0..h {
                for z in 0..3 {
                    let (ex, ey) = board_to_chip(i64::from(x), i64::from(y), i64::from(z));
                    for ly in 0..8 {
                        for lx in 0..8 {
                            if !in_board(lx, ly) {
                                continue;
                            }
                            let (b, bc) = chip_to_board(ex + lx, ey + ly, w, h);
                            assert_eq!(b, (x, y, z));
                            assert_eq!(bc, (lx, ly));
                            let cw = 12 * i64::from(w);
                            let ch = 12 * i64::from(h);
                            seen.insert(((ex + lx) % cw, (ey + ly) % ch));
                        }
                    }
                }
            }
        }
        // The boards cover every chip exactly once.
        assert_eq!(seen.len(), 36 * 24);
        // And every one of the 144 cells of a triad tile has a single owner.
        for ty in 0..12 {
            for tx in 0..12 {
                let owners = (0..3)
                    .filter(|&z| {
                        let (rx, ry) = z_offset(z);
                        in_board((tx - rx).rem_euclid(12), (ty - ry).rem_euclid(12))
                    })
                    .count();
                assert_eq!(owners, 1, "({tx},{ty})");
            }
        }
    }

    #[test]
    fn chip_to_board_quirks_of_the_worked_example() {
        assert_eq!(chip_to_board(11, 11, 2, 2), ((0, 0, 2), (7, 3)));
        assert_eq!(chip_to_board(23, 0, 2, 2), ((1, 1, 2), (7, 4)));
        assert_eq!(chip_to_board(-1, -1, 2, 2), ((1, 1, 2), (7, 3)));
        assert_eq!(chip_to_board(3, 11, 2, 2), ((1, 0, 1), (7, 7)));
        assert_eq!(chip_to_board(20, 8, 2, 2), ((1, 0, 2), (4, 0)));
    }

    #[test]
    fn board_to_chip_treats_unknown_z_as_zero() {
        assert_eq!(board_to_chip(1, 1, 1), (20, 16));
        assert_eq!(board_to_chip(0, 1, 2), (4, 20));
        assert_eq!(board_to_chip(5, 5, 5), (60, 60));
        assert_eq!(board_to_chip(1, 0, -1), (12, 0));
    }

    #[test]
    fn chip_sizes() {
        let none = Wrap::default();
        let both = Wrap { x: true, y: true };
        assert_eq!(triads_to_chips(1, 1, none), (16, 16));
        assert_eq!(triads_to_chips(2, 2, both), (24, 24));
        assert_eq!(triads_to_chips(2, 1, Wrap { x: true, y: false }), (24, 16));
    }
}
