//! Per-machine board allocation, following the Python server's allocator.
//!
//! Each machine has a pack tree for rectangles of triads, an insertion-ordered
//! map of triads shared by single-board jobs, and a queue of allocations
//! waiting to be released. The candidate filter decides which boards of a
//! rectangle a job really gets (dead and unreachable boards are left out) and
//! whether the rectangle wraps around the machine.

use std::collections::{BTreeSet, HashSet, VecDeque};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::freezset::FreeZSet;
use super::geometry::{Board, Link, Wrap, neighbour};
use super::machine::MachineDef;
use super::pack_tree::{PackTree, area_to_rect};

/// What a job asks for, after its arguments were checked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum Shape {
    /// Any single board.
    AnyBoard,
    /// One specific board.
    Board(i64, i64, i64),
    /// At least this many boards, as a rectangle of whole triads.
    Boards(i64),
    /// A rectangle of triads.
    Triads(i64, i64),
    /// A `w` x `h` rectangle of triads whose lower-left triad is `(x, y)`
    /// (the v2 service's `dimensions` with a `board`).
    TriadsAt { x: i64, y: i64, w: i64, h: i64 },
}

/// A request with the options that shape it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Request {
    pub shape: Shape,
    pub min_ratio: f64,
    pub max_dead_boards: Option<i64>,
    pub max_dead_links: Option<i64>,
    pub require_torus: bool,
}

/// How an allocation was made, which decides how it is released.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) enum Kind {
    /// A rectangle of the pack tree with origin triad `(x, y)`.
    Triads(i32, i32),
    /// One board of a shared triad.
    Board(i32, i32, i32),
}

/// The result of a successful allocation.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Allocation {
    pub kind: Kind,
    /// Sorted.
    pub boards: Vec<Board>,
    pub torus: Wrap,
}

/// Candidate-filter parameters for one rectangle test.
struct FilterParams {
    max_dead_boards: Option<i64>,
    max_dead_links: Option<i64>,
    require_torus: bool,
    expected: i64,
}

/// The mutable allocation state of one machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Allocator {
    tree: PackTree,
    /// Triads with single-board jobs and at least one free live board, in
    /// insertion order.
    shared: Vec<((i32, i32), FreeZSet)>,
    /// Triads with single-board jobs and no free board left.
    full: BTreeSet<(i32, i32)>,
    /// Released allocations waiting for their delay to pass (not saved: a
    /// restored server releases them at once).
    #[serde(skip)]
    to_free: VecDeque<(Instant, Kind)>,
}

impl Allocator {
    pub fn new(m: &MachineDef) -> Allocator {
        Allocator {
            tree: PackTree::new(m.width, m.height),
            shared: Vec::new(),
            full: BTreeSet::new(),
            to_free: VecDeque::new(),
        }
    }

    /// Checks a loaded allocator against its machine.
    pub fn is_consistent(&self, m: &MachineDef) -> bool {
        let in_machine =
            |&(x, y): &(i32, i32)| (0..m.width).contains(&x) && (0..m.height).contains(&y);
        let mut seen = HashSet::new();
        self.tree.is_consistent(m.width, m.height)
            && self
                .shared
                .iter()
                .all(|(t, s)| in_machine(t) && s.is_consistent() && seen.insert(*t))
            && self.full.iter().all(|t| in_machine(t) && seen.insert(*t))
    }

    /// Whether `req` could ever be met on this machine when it is idle.
    pub fn possible(&self, m: &MachineDef, req: &Request) -> bool {
        let (w, h) = (i64::from(m.width), i64::from(m.height));
        match req.shape {
            Shape::AnyBoard => m.dead_boards.len() < m.board_count(),
            Shape::Board(x, y, z) => match board_i32(x, y, z) {
                Some(b) => m.in_range(b) && !m.is_dead(b),
                None => false,
            },
            Shape::Triads(tw, th) => {
                if !(0 < tw && tw <= w && 0 < th && th <= h) {
                    return false;
                }
                if req.require_torus && (tw != w || th != h) {
                    return false;
                }
                let params = FilterParams {
                    max_dead_boards: req.max_dead_boards,
                    max_dead_links: req.max_dead_links,
                    require_torus: req.require_torus,
                    expected: 3 * tw * th,
                };
                corners_accept(m, tw, th, &params)
            }
            Shape::TriadsAt { x, y, w: tw, h: th } => {
                let Some((x, y, tw, th)) = rect_i32(m, x, y, tw, th) else {
                    return false;
                };
                let params = FilterParams {
                    max_dead_boards: req.max_dead_boards,
                    max_dead_links: req.max_dead_links,
                    require_torus: req.require_torus,
                    expected: 3 * i64::from(tw) * i64::from(th),
                };
                candidate(m, x, y, tw, th, &params).is_some()
            }
            Shape::Boards(n) => {
                let t = triads_for(n);
                if t <= 0 || (req.require_torus && t != w * h) {
                    return false;
                }
                let Some((tw, th)) = area_to_rect(t, w, h, req.min_ratio) else {
                    return false;
                };
                let params = FilterParams {
                    max_dead_boards: req.max_dead_boards,
                    max_dead_links: req.max_dead_links,
                    require_torus: req.require_torus,
                    expected: n,
                };
                corners_accept(m, tw, th, &params)
            }
        }
    }

    /// Tries to allocate `req` now, first releasing whatever has matured.
    pub fn allocate(&mut self, m: &MachineDef, req: &Request, now: Instant) -> Option<Allocation> {
        self.release_matured(m, now);
        match req.shape {
            Shape::AnyBoard => self.alloc_board(m, None),
            Shape::Board(x, y, z) => {
                let b = board_i32(x, y, z)?;
                if !m.in_range(b) || m.is_dead(b) {
                    return None;
                }
                self.alloc_board(m, Some(b))
            }
            Shape::Triads(tw, th) => {
                if req.require_torus && (tw != i64::from(m.width) || th != i64::from(m.height)) {
                    return None;
                }
                let (tw, th) = (i32::try_from(tw).ok()?, i32::try_from(th).ok()?);
                let params = FilterParams {
                    max_dead_boards: req.max_dead_boards,
                    max_dead_links: req.max_dead_links,
                    require_torus: req.require_torus,
                    expected: 3 * i64::from(tw) * i64::from(th),
                };
                let mut found = None;
                let (x, y) = self.tree.alloc(tw, th, &mut |x, y, w, h| {
                    found = candidate(m, x, y, w, h, &params);
                    found.is_some()
                })?;
                let (boards, torus) = found?;
                Some(Allocation {
                    kind: Kind::Triads(x, y),
                    boards,
                    torus,
                })
            }
            Shape::TriadsAt { x, y, w, h } => {
                let (x, y, w, h) = rect_i32(m, x, y, w, h)?;
                let params = FilterParams {
                    max_dead_boards: req.max_dead_boards,
                    max_dead_links: req.max_dead_links,
                    require_torus: req.require_torus,
                    expected: 3 * i64::from(w) * i64::from(h),
                };
                // Check before carving the tree, which cannot be undone.
                let (boards, torus) = candidate(m, x, y, w, h, &params)?;
                if !self.tree.request_rect(x, y, w, h) {
                    return None;
                }
                Some(Allocation {
                    kind: Kind::Triads(x, y),
                    boards,
                    torus,
                })
            }
            Shape::Boards(n) => {
                let t = triads_for(n);
                if t <= 0 || (req.require_torus && t != i64::from(m.width) * i64::from(m.height)) {
                    return None;
                }
                let params = FilterParams {
                    max_dead_boards: req.max_dead_boards,
                    max_dead_links: req.max_dead_links,
                    require_torus: req.require_torus,
                    expected: n,
                };
                let mut found = None;
                let (x, y, _, _) = self.tree.alloc_area(t, req.min_ratio, &mut |x, y, w, h| {
                    found = candidate(m, x, y, w, h, &params);
                    found.is_some()
                })?;
                let (boards, torus) = found?;
                Some(Allocation {
                    kind: Kind::Triads(x, y),
                    boards,
                    torus,
                })
            }
        }
    }

    fn alloc_board(&mut self, m: &MachineDef, want: Option<Board>) -> Option<Allocation> {
        // At most two rounds: take from a shared triad, or bring a fresh
        // triad into the shared map and take from it.
        for _ in 0..2 {
            let slot = match want {
                None => (!self.shared.is_empty()).then_some(0),
                Some((x, y, z)) => self.shared.iter().position(|(t, s)| {
                    *t == (x, y) && u8::try_from(z).is_ok_and(|z| s.contains(z))
                }),
            };
            if let Some(i) = slot {
                let ((x, y), set) = &mut self.shared[i];
                let (x, y) = (*x, *y);
                let z = match want {
                    None => set.pop()?,
                    Some((_, _, z)) => {
                        let z = u8::try_from(z).ok()?;
                        set.remove(z);
                        z
                    }
                };
                if set.is_empty() {
                    self.shared.remove(i);
                    self.full.insert((x, y));
                }
                let z = i32::from(z);
                return Some(Allocation {
                    kind: Kind::Board(x, y, z),
                    boards: vec![(x, y, z)],
                    torus: Wrap::default(),
                });
            }
            let (tx, ty) = match want {
                Some((x, y, _)) => {
                    if !self.tree.request(x, y) {
                        return None;
                    }
                    (x, y)
                }
                None => self.tree.alloc(1, 1, &mut |x, y, _, _| {
                    (0..3).any(|z| !m.is_dead((x, y, z)))
                })?,
            };
            let live = live_zs(m, tx, ty);
            self.shared.push(((tx, ty), FreeZSet::with(live)));
        }
        None
    }

    /// Queues an allocation for release once `ready_at` has passed.
    pub fn schedule_release(&mut self, kind: Kind, ready_at: Instant) {
        self.to_free.push_back((ready_at, kind));
    }

    /// The time the next queued release matures, if any.
    pub fn next_release(&self) -> Option<Instant> {
        self.to_free.front().map(|(t, _)| *t)
    }

    /// Releases, in order, every queued allocation whose time has come.
    /// Returns whether anything was released.
    pub fn release_matured(&mut self, m: &MachineDef, now: Instant) -> bool {
        let mut any = false;
        while let Some(&(t, kind)) = self.to_free.front() {
            if t > now {
                break;
            }
            self.to_free.pop_front();
            self.release(m, kind);
            any = true;
        }
        any
    }

    /// Releases everything still queued, whatever its time (used when a
    /// state file is written: a restored server starts with them free).
    pub fn pending_releases(&self) -> Vec<Kind> {
        self.to_free.iter().map(|(_, k)| *k).collect()
    }

    pub fn release(&mut self, m: &MachineDef, kind: Kind) {
        match kind {
            Kind::Triads(x, y) => {
                self.tree.free(x, y);
            }
            Kind::Board(x, y, z) => {
                let Ok(z8) = u8::try_from(z) else {
                    return;
                };
                if self.full.remove(&(x, y)) {
                    self.shared.push(((x, y), FreeZSet::empty()));
                }
                let Some(i) = self.shared.iter().position(|(t, _)| *t == (x, y)) else {
                    return;
                };
                self.shared[i].1.add(z8);
                let mut members = self.shared[i].1.members();
                members.sort_unstable();
                if members == live_zs(m, x, y) {
                    self.shared.remove(i);
                    self.tree.free(x, y);
                }
            }
        }
    }
}

fn board_i32(x: i64, y: i64, z: i64) -> Option<Board> {
    Some((
        i32::try_from(x).ok()?,
        i32::try_from(y).ok()?,
        i32::try_from(z).ok()?,
    ))
}

/// A rectangle as `i32`s, if it lies wholly inside machine `m`.
fn rect_i32(m: &MachineDef, x: i64, y: i64, w: i64, h: i64) -> Option<(i32, i32, i32, i32)> {
    let (x, y) = (i32::try_from(x).ok()?, i32::try_from(y).ok()?);
    let (w, h) = (i32::try_from(w).ok()?, i32::try_from(h).ok()?);
    let inside = x >= 0
        && y >= 0
        && w > 0
        && h > 0
        && x.checked_add(w).is_some_and(|r| r <= m.width)
        && y.checked_add(h).is_some_and(|t| t <= m.height);
    inside.then_some((x, y, w, h))
}

/// Triads needed for `n` boards (`ceil(n / 3)`, as Python's `-(-n // 3)`).
fn triads_for(n: i64) -> i64 {
    n.div_euclid(3) + i64::from(n.rem_euclid(3) != 0)
}

fn live_zs(m: &MachineDef, x: i32, y: i32) -> Vec<u8> {
    (0..3u8)
        .filter(|&z| !m.is_dead((x, y, i32::from(z))))
        .collect()
}

fn corners_accept(m: &MachineDef, tw: i64, th: i64, params: &FilterParams) -> bool {
    let (Ok(tw), Ok(th)) = (i32::try_from(tw), i32::try_from(th)) else {
        return false;
    };
    let (w, h) = (m.width, m.height);
    [(0, 0), (w - tw, 0), (0, h - th), (w - tw, h - th)]
        .into_iter()
        .any(|(x, y)| candidate(m, x, y, tw, th, params).is_some())
}

/// The candidate filter: the boards of rectangle `(x, y, w, h)` reachable
/// from its origin board, and its wrap-around, or `None` if the rectangle
/// breaks the request's limits.
fn candidate(
    m: &MachineDef,
    x: i32,
    y: i32,
    w: i32,
    h: i32,
    p: &FilterParams,
) -> Option<(Vec<Board>, Wrap)> {
    let (mw, mh) = (m.width, m.height);
    let inside = |(bx, by, _): Board| x <= bx && bx < x + w && y <= by && by < y + h;

    let mut found: HashSet<Board> = HashSet::new();
    let mut order: Vec<Board> = Vec::new();
    let mut queue = VecDeque::from([(x, y, 0)]);
    while let Some(b) = queue.pop_front() {
        if m.is_dead(b) || found.contains(&b) {
            continue;
        }
        found.insert(b);
        order.push(b);
        for link in Link::ALL {
            if m.dead_links.contains(&(b, link)) {
                continue;
            }
            let (n, _) = neighbour(b, link, mw, mh);
            if inside(n) {
                queue.push_back(n);
            }
        }
    }

    let count = i64::try_from(found.len()).unwrap_or(i64::MAX);
    if count == 0 {
        return None;
    }
    if let Some(max) = p.max_dead_boards
        && p.expected - count > max
    {
        return None;
    }

    let mut torus = Wrap::default();
    let (mut dead, mut dead_wrap) = (0i64, 0i64);
    for &b in &order {
        for link in Link::ALL {
            let (n, wrap) = neighbour(b, link, mw, mh);
            if !found.contains(&n) {
                continue;
            }
            torus = torus.union(wrap);
            if m.dead_links.contains(&(b, link)) {
                if wrap.any() {
                    dead_wrap += 1;
                } else {
                    dead += 1;
                }
            }
        }
    }
    if p.require_torus && !torus.any() {
        return None;
    }
    if let Some(max) = p.max_dead_links {
        let d = dead + if p.require_torus { dead_wrap } else { 0 };
        if d > max {
            return None;
        }
    }
    order.sort_unstable();
    Some((order, torus))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::machine::Machine;

    fn def(m: Machine) -> MachineDef {
        match m.resolve() {
            Ok(d) => d,
            Err(e) => panic!("{e}"),
        }
    }

    fn req(shape: Shape) -> Request {
        Request {
            shape,
            min_ratio: 0.0,
            max_dead_boards: None,
            max_dead_links: None,
            require_torus: false,
        }
    }

    #[test]
    fn triads_for_rounds_up() {
        assert_eq!(triads_for(1), 1);
        assert_eq!(triads_for(3), 1);
        assert_eq!(triads_for(4), 2);
        assert_eq!(triads_for(0), 0);
        assert_eq!(triads_for(-5), -1);
    }

    #[test]
    fn whole_machine_is_a_torus() {
        let m = def(Machine::new("m", 2, 2));
        let mut a = Allocator::new(&m);
        let got = a.allocate(&m, &req(Shape::Boards(7)), Instant::now());
        let Some(got) = got else {
            panic!("no allocation");
        };
        assert_eq!(got.boards.len(), 12);
        assert_eq!(got.torus, Wrap { x: true, y: true });
    }

    #[test]
    fn single_boards_fill_a_triad_then_take_a_new_one() {
        let m = def(Machine::new("m", 2, 2));
        let mut a = Allocator::new(&m);
        let now = Instant::now();
        let mut got = Vec::new();
        for shape in [
            Shape::Board(1, 1, 2),
            Shape::AnyBoard,
            Shape::AnyBoard,
            Shape::AnyBoard,
        ] {
            got.push(a.allocate(&m, &req(shape), now).map(|x| x.boards));
        }
        assert_eq!(
            got,
            vec![
                Some(vec![(1, 1, 2)]),
                Some(vec![(1, 1, 0)]),
                Some(vec![(1, 1, 1)]),
                Some(vec![(0, 0, 0)])
            ]
        );
        // Releasing the whole shared triad returns it to the pack tree.
        for z in 0..3 {
            a.release(&m, Kind::Board(1, 1, z));
        }
        assert!(a.allocate(&m, &req(Shape::Board(1, 1, 1)), now).is_some());
        assert!(a.is_consistent(&m));
    }

    #[test]
    fn dead_origin_board_rejects_every_rectangle() {
        let m = def(Machine::new("m", 2, 2).dead_boards([(0, 0, 0)]));
        let a = Allocator::new(&m);
        let mut r = req(Shape::Triads(2, 2));
        r.max_dead_boards = Some(1);
        assert!(!a.possible(&m, &r));
    }

    #[test]
    fn dead_links_count_against_the_limit() {
        let m = def(Machine::new("m", 2, 2)
            .dead_links([(0, 0, 0, Link::NorthEast), (0, 0, 1, Link::SouthWest)]));
        let mut a = Allocator::new(&m);
        let mut r = req(Shape::Triads(1, 1));
        r.max_dead_links = Some(0);
        let got = a.allocate(&m, &r, Instant::now()).map(|x| x.boards);
        assert_eq!(got, Some(vec![(0, 1, 0), (0, 1, 1), (0, 1, 2)]));
        let mut a = Allocator::new(&m);
        r.max_dead_links = Some(2);
        let got = a.allocate(&m, &r, Instant::now()).map(|x| x.boards);
        assert_eq!(got, Some(vec![(0, 0, 0), (0, 0, 1), (0, 0, 2)]));
    }

    #[test]
    fn rooted_rectangles_take_exactly_their_triads() {
        let m = def(Machine::new("m", 4, 3));
        let mut a = Allocator::new(&m);
        let now = Instant::now();
        let at = |x, y, w, h| req(Shape::TriadsAt { x, y, w, h });
        assert!(a.possible(&m, &at(1, 1, 2, 2)));
        assert!(!a.possible(&m, &at(3, 1, 2, 2)), "off the machine");
        assert!(!a.possible(&m, &at(-1, 0, 1, 1)));
        let got = a.allocate(&m, &at(1, 1, 2, 2), now);
        let Some(got) = got else {
            panic!("no allocation");
        };
        assert_eq!(got.kind, Kind::Triads(1, 1));
        assert_eq!(got.boards.len(), 12);
        assert_eq!(got.boards.first(), Some(&(1, 1, 0)));
        assert_eq!(got.boards.last(), Some(&(2, 2, 2)));
        // Overlapping rectangles wait; a disjoint one fits beside it.
        assert!(a.allocate(&m, &at(2, 2, 1, 1), now).is_none());
        assert!(a.allocate(&m, &at(0, 0, 1, 3), now).is_some());
        assert!(a.allocate(&m, &req(Shape::Board(3, 0, 2)), now).is_some());
        a.release(&m, Kind::Triads(1, 1));
        assert!(a.allocate(&m, &at(2, 2, 1, 1), now).is_some());
        assert!(a.is_consistent(&m));
    }

    #[test]
    fn releases_wait_for_their_time() {
        let m = def(Machine::new("m", 1, 1));
        let mut a = Allocator::new(&m);
        let now = Instant::now();
        let r = req(Shape::Triads(1, 1));
        let Some(got) = a.allocate(&m, &r, now) else {
            panic!("no allocation");
        };
        let later = now + std::time::Duration::from_secs(10);
        a.schedule_release(got.kind, later);
        assert_eq!(a.next_release(), Some(later));
        assert!(a.allocate(&m, &r, now).is_none());
        assert!(a.allocate(&m, &r, later).is_some());
        assert_eq!(a.next_release(), None);
    }
}
