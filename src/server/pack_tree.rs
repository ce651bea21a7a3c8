//! The pack tree that places rectangles of triads, and `area_to_rect`.
//!
//! The Python server places every multi-board job by splitting the machine's
//! triad grid into a binary tree of rectangles. Which triads a job gets, and
//! so every answer a client sees afterwards, depends on the exact order in
//! which that tree tries its leaves and corners, so this module follows the
//! original algorithm step by step rather than any "better" packing.
//!
//! Nodes live in an arena (`Vec<Node>`) so that the tree can be written to the
//! state file as a flat list, whatever its depth.

use serde::{Deserialize, Serialize};

/// The most square `(w, h)` rectangle of `area` cells that fits in
/// `bw` x `bh`, obeying `min_ratio` (shortest side / longest side), or `None`.
///
/// A `min_ratio` above 1 is taken as its inverse. A negative `min_ratio` is
/// rejected by the caller before this is reached.
pub(crate) fn area_to_rect(area: i64, bw: i64, bh: i64, min_ratio: f64) -> Option<(i64, i64)> {
    if area <= 0 || area > bw.saturating_mul(bh) {
        return None;
    }
    let min_ratio = if min_ratio > 1.0 {
        1.0 / min_ratio
    } else {
        min_ratio
    };

    // The squarest factorisation, with h the smaller side.
    let mut h = isqrt(area);
    while area % h != 0 {
        h -= 1;
    }
    let mut w = area / h;

    #[allow(clippy::cast_precision_loss)] // areas are at most a few thousand triads
    let af = area as f64;
    #[allow(clippy::cast_precision_loss)]
    if (h as f64) / (w as f64) < min_ratio {
        let wf = (af / min_ratio).sqrt();
        h = ceil_i64(af / wf);
        #[allow(clippy::cast_precision_loss)]
        let hf = h as f64;
        w = ceil_i64(af / hf).max(h);
    }
    if bw > bh && w > h {
        std::mem::swap(&mut w, &mut h);
    }
    if w <= bw && h <= bh {
        return Some((w, h));
    }
    if w > bw {
        w = bw;
        h = div_ceil(area, w);
    } else {
        h = bh;
        w = div_ceil(area, h);
    }
    #[allow(clippy::cast_precision_loss)]
    let ratio = (w.min(h) as f64) / (w.max(h) as f64);
    (ratio >= min_ratio).then_some((w, h))
}

fn isqrt(n: i64) -> i64 {
    let mut r = 0i64;
    while (r + 1).saturating_mul(r + 1) <= n {
        r += 1;
    }
    r.max(1)
}

fn div_ceil(a: i64, b: i64) -> i64 {
    if b <= 0 { a } else { (a + b - 1) / b }
}

#[allow(clippy::cast_possible_truncation)] // the values are small positive reals
fn ceil_i64(v: f64) -> i64 {
    if v.is_finite() {
        v.ceil() as i64
    } else {
        i64::MAX
    }
}

/// One rectangle of the tree: a leaf (free or allocated) or a split node.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Node {
    x: i32,
    y: i32,
    w: i32,
    h: i32,
    allocated: bool,
    /// Child 0 (left or bottom) and child 1 (right or top).
    children: Option<(usize, usize)>,
}

/// The free and allocated rectangles of one machine's triad grid.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct PackTree {
    nodes: Vec<Node>,
    /// Arena slots of merged-away nodes, reused by later splits.
    spare: Vec<usize>,
}

/// Decides whether a candidate rectangle `(x, y, w, h)` may be allocated.
pub(crate) type Filter<'a> = dyn FnMut(i32, i32, i32, i32) -> bool + 'a;

const ROOT: usize = 0;

impl PackTree {
    pub fn new(w: i32, h: i32) -> PackTree {
        PackTree {
            nodes: vec![Node {
                x: 0,
                y: 0,
                w,
                h,
                allocated: false,
                children: None,
            }],
            spare: Vec::new(),
        }
    }

    /// Checks the structure after loading it from a state file, so that a
    /// damaged file cannot make later operations index out of bounds or loop.
    pub fn is_consistent(&self, w: i32, h: i32) -> bool {
        let Some(root) = self.nodes.get(ROOT) else {
            return false;
        };
        if (root.x, root.y, root.w, root.h) != (0, 0, w, h) {
            return false;
        }
        let mut visited = vec![false; self.nodes.len()];
        let mut stack = vec![ROOT];
        while let Some(i) = stack.pop() {
            let Some(node) = self.nodes.get(i) else {
                return false;
            };
            if std::mem::replace(&mut visited[i], true) || node.w <= 0 || node.h <= 0 {
                return false;
            }
            if let Some((a, b)) = node.children {
                let (Some(ca), Some(cb)) = (self.nodes.get(a), self.nodes.get(b)) else {
                    return false;
                };
                let vertical = ca.y == node.y
                    && cb.y == node.y
                    && ca.h == node.h
                    && cb.h == node.h
                    && ca.x == node.x
                    && cb.x == ca.x + ca.w
                    && ca.w + cb.w == node.w;
                let horizontal = ca.x == node.x
                    && cb.x == node.x
                    && ca.w == node.w
                    && cb.w == node.w
                    && ca.y == node.y
                    && cb.y == ca.y + ca.h
                    && ca.h + cb.h == node.h;
                if node.allocated || !(vertical || horizontal) {
                    return false;
                }
                stack.push(a);
                stack.push(b);
            }
        }
        self.spare
            .iter()
            .all(|&s| s < self.nodes.len() && !visited[s])
    }

    fn add(&mut self, x: i32, y: i32, w: i32, h: i32) -> usize {
        let node = Node {
            x,
            y,
            w,
            h,
            allocated: false,
            children: None,
        };
        if let Some(i) = self.spare.pop() {
            self.nodes[i] = node;
            i
        } else {
            self.nodes.push(node);
            self.nodes.len() - 1
        }
    }

    /// Splits leaf `n` at column `xs` into left `[x, xs)` and right `[xs, x+w)`.
    fn vsplit(&mut self, n: usize, xs: i32) -> (usize, usize) {
        let Node { x, y, w, h, .. } = self.nodes[n];
        let a = self.add(x, y, xs - x, h);
        let b = self.add(xs, y, x + w - xs, h);
        self.nodes[n].children = Some((a, b));
        (a, b)
    }

    /// Splits leaf `n` at row `ys` into bottom `[y, ys)` and top `[ys, y+h)`.
    fn hsplit(&mut self, n: usize, ys: i32) -> (usize, usize) {
        let Node { x, y, w, h, .. } = self.nodes[n];
        let a = self.add(x, y, w, ys - y);
        let b = self.add(x, ys, w, y + h - ys);
        self.nodes[n].children = Some((a, b));
        (a, b)
    }

    /// Children ordered by area, smaller first, child 0 first on a tie.
    fn ordered_children(&self, n: usize) -> Option<[usize; 2]> {
        let (a, b) = self.nodes[n].children?;
        let area = |i: usize| i64::from(self.nodes[i].w) * i64::from(self.nodes[i].h);
        Some(if area(b) < area(a) { [b, a] } else { [a, b] })
    }

    /// Allocates a `w` x `h` rectangle, returning its origin.
    pub fn alloc(&mut self, w: i32, h: i32, filter: &mut Filter<'_>) -> Option<(i32, i32)> {
        if w <= 0 || h <= 0 {
            return None;
        }
        self.alloc_at(ROOT, w, h, filter)
    }

    fn alloc_at(
        &mut self,
        n: usize,
        w: i32,
        h: i32,
        filter: &mut Filter<'_>,
    ) -> Option<(i32, i32)> {
        let node = self.nodes[n].clone();
        if node.allocated || w > node.w || h > node.h {
            return None;
        }
        if let Some(order) = self.ordered_children(n) {
            return order
                .into_iter()
                .find_map(|c| self.alloc_at(c, w, h, filter));
        }

        let (x0, y0) = (node.x, node.y);
        let corners = [
            (x0, y0),
            (x0, y0 + node.h - h),
            (x0 + node.w - w, y0),
            (x0 + node.w - w, y0 + node.h - h),
        ];
        let mut chosen = None;
        for (i, &(cx, cy)) in corners.iter().enumerate() {
            if corners[..i].contains(&(cx, cy)) {
                continue;
            }
            if filter(cx, cy, w, h) {
                chosen = Some((cx, cy));
                break;
            }
        }
        let (cx, cy) = chosen?;

        if (w, h) == (node.w, node.h) {
            self.nodes[n].allocated = true;
            return Some((cx, cy));
        }
        let (dw, dh) = (node.w - w, node.h - h);
        let child = if dh > dw {
            let (bottom, top) = self.hsplit(n, if cy != y0 { cy } else { y0 + h });
            if cy == y0 { bottom } else { top }
        } else {
            let (left, right) = self.vsplit(n, if cx != x0 { cx } else { x0 + w });
            if cx == x0 { left } else { right }
        };
        let c = self.nodes[child].clone();
        let target = if c.w != w {
            let (left, right) = self.vsplit(child, if cx != c.x { cx } else { c.x + w });
            if cx == c.x { left } else { right }
        } else if c.h != h {
            let (bottom, top) = self.hsplit(child, if cy != c.y { cy } else { c.y + h });
            if cy == c.y { bottom } else { top }
        } else {
            child
        };
        self.nodes[target].allocated = true;
        Some((cx, cy))
    }

    /// Allocates a rectangle of `area` triads shaped by `area_to_rect` for
    /// whichever free leaf accepts it, returning `(x, y, w, h)`.
    pub fn alloc_area(
        &mut self,
        area: i64,
        min_ratio: f64,
        filter: &mut Filter<'_>,
    ) -> Option<(i32, i32, i32, i32)> {
        self.alloc_area_at(ROOT, area, min_ratio, filter)
    }

    fn alloc_area_at(
        &mut self,
        n: usize,
        area: i64,
        min_ratio: f64,
        filter: &mut Filter<'_>,
    ) -> Option<(i32, i32, i32, i32)> {
        let node = self.nodes[n].clone();
        if node.allocated || area > i64::from(node.w) * i64::from(node.h) {
            return None;
        }
        if let Some(order) = self.ordered_children(n) {
            return order
                .into_iter()
                .find_map(|c| self.alloc_area_at(c, area, min_ratio, filter));
        }
        let (w, h) = area_to_rect(area, i64::from(node.w), i64::from(node.h), min_ratio)?;
        let (w, h) = (i32::try_from(w).ok()?, i32::try_from(h).ok()?);
        let (x, y) = self.alloc_at(n, w, h, filter)?;
        Some((x, y, w, h))
    }

    /// Allocates the single triad `(x, y)` if it is free.
    pub fn request(&mut self, x: i32, y: i32) -> bool {
        self.request_at(ROOT, x, y)
    }

    fn request_at(&mut self, n: usize, x: i32, y: i32) -> bool {
        // Each round either allocates, fails, or splits the leaf so that the
        // recursion goes one level down: the loop stands in for the original's
        // tail call on the node itself.
        loop {
            let node = self.nodes[n].clone();
            let inside = node.x <= x && x < node.x + node.w && node.y <= y && y < node.y + node.h;
            if !inside {
                return false;
            }
            if let Some((a, b)) = node.children {
                return self.request_at(a, x, y) || self.request_at(b, x, y);
            }
            if node.allocated {
                return false;
            }
            if node.w == 1 && node.h == 1 {
                self.nodes[n].allocated = true;
                return true;
            }
            let l = x - node.x;
            let r = node.x + node.w - 1 - x;
            let a = node.y + node.h - 1 - y;
            let b = y - node.y;
            let m = l.max(r).max(a).max(b);
            if l == m {
                self.vsplit(n, x);
            } else if r == m {
                self.vsplit(n, x + 1);
            } else if a == m {
                self.hsplit(n, y + 1);
            } else {
                self.hsplit(n, y);
            }
        }
    }

    /// Allocates exactly the rectangle `w` x `h` at `(x, y)` if it lies in
    /// one free leaf, splitting that leaf around it (the way `request`
    /// carves out one triad). A free area that straddles an existing split
    /// is not found; it becomes available once the split merges away.
    pub fn request_rect(&mut self, x: i32, y: i32, w: i32, h: i32) -> bool {
        if w <= 0 || h <= 0 {
            return false;
        }
        self.request_rect_at(ROOT, x, y, w, h)
    }

    fn request_rect_at(&mut self, n: usize, x: i32, y: i32, w: i32, h: i32) -> bool {
        loop {
            let node = self.nodes[n].clone();
            let contains =
                node.x <= x && node.y <= y && x + w <= node.x + node.w && y + h <= node.y + node.h;
            if !contains {
                return false;
            }
            if let Some((a, b)) = node.children {
                return self.request_rect_at(a, x, y, w, h) || self.request_rect_at(b, x, y, w, h);
            }
            if node.allocated {
                return false;
            }
            if (node.x, node.y, node.w, node.h) == (x, y, w, h) {
                self.nodes[n].allocated = true;
                return true;
            }
            // Cut off the widest free margin first, as `request` does.
            let l = x - node.x;
            let r = node.x + node.w - (x + w);
            let a = node.y + node.h - (y + h);
            let b = y - node.y;
            let m = l.max(r).max(a).max(b);
            if l == m {
                self.vsplit(n, x);
            } else if r == m {
                self.vsplit(n, x + w);
            } else if a == m {
                self.hsplit(n, y + h);
            } else {
                self.hsplit(n, y);
            }
        }
    }

    /// Frees the allocated rectangle whose origin is `(x, y)`, merging
    /// neighbouring free leaves back together. Returns whether it was found.
    pub fn free(&mut self, x: i32, y: i32) -> bool {
        self.free_at(ROOT, x, y)
    }

    fn free_at(&mut self, n: usize, x: i32, y: i32) -> bool {
        let node = self.nodes[n].clone();
        let Some((a, b)) = node.children else {
            if (node.x, node.y) == (x, y) && node.allocated {
                self.nodes[n].allocated = false;
                return true;
            }
            return false;
        };
        let contains = |c: &Node| c.x <= x && x < c.x + c.w && c.y <= y && y < c.y + c.h;
        let child = if contains(&self.nodes[a]) { a } else { b };
        let freed = self.free_at(child, x, y);
        let (ca, cb) = (&self.nodes[a], &self.nodes[b]);
        if ca.children.is_none() && cb.children.is_none() && !ca.allocated && !cb.allocated {
            self.nodes[n].children = None;
            self.spare.push(a);
            self.spare.push(b);
        }
        freed
    }

    /// Whether any part of the machine is allocated (used by tests).
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        let root = &self.nodes[ROOT];
        root.children.is_none() && !root.allocated
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn area_to_rect_examples() {
        assert_eq!(area_to_rect(1, 2, 2, 0.0), Some((1, 1)));
        assert_eq!(area_to_rect(2, 2, 2, 0.0), Some((2, 1)));
        assert_eq!(area_to_rect(2, 4, 2, 0.0), Some((1, 2)));
        assert_eq!(area_to_rect(3, 2, 2, 0.0), Some((2, 2)));
        assert_eq!(area_to_rect(3, 4, 2, 1.0), Some((2, 2)));
        assert_eq!(area_to_rect(3, 4, 2, 0.333), Some((2, 2)));
        assert_eq!(area_to_rect(2, 3, 1, 0.6), None);
        assert_eq!(area_to_rect(5, 10, 10, 0.5), Some((3, 2)));
        // Too big, or nothing to place.
        assert_eq!(area_to_rect(5, 2, 2, 0.0), None);
        assert_eq!(area_to_rect(0, 2, 2, 0.0), None);
        // A ratio above one is inverted.
        assert_eq!(area_to_rect(3, 4, 2, 3.0), area_to_rect(3, 4, 2, 1.0 / 3.0));
    }

    fn accept_all() -> impl FnMut(i32, i32, i32, i32) -> bool {
        |_, _, _, _| true
    }

    #[test]
    fn first_single_triad_splits_as_in_the_worked_example() {
        let mut t = PackTree::new(2, 2);
        assert_eq!(t.alloc(1, 1, &mut accept_all()), Some((0, 0)));
        // A 1x1 area next lands in the left column, top cell.
        assert_eq!(t.alloc_area(1, 0.0, &mut accept_all()), Some((0, 1, 1, 1)));
        // Then the right column's bottom corner.
        assert_eq!(t.alloc(1, 1, &mut accept_all()), Some((1, 0)));
        assert!(!t.request(0, 1));
        assert!(t.request(1, 1));
        assert_eq!(t.alloc(1, 1, &mut accept_all()), None);
        for (x, y) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
            assert!(t.free(x, y));
        }
        assert!(t.is_empty());
        assert!(t.is_consistent(2, 2));
    }

    #[test]
    fn request_splits_towards_the_triad() {
        let mut t = PackTree::new(2, 2);
        assert!(t.request(1, 1));
        assert!(!t.request(1, 1));
        assert_eq!(t.alloc(1, 2, &mut accept_all()), Some((0, 0)));
        assert_eq!(t.alloc(1, 1, &mut accept_all()), Some((1, 0)));
        assert!(t.is_consistent(2, 2));
    }

    #[test]
    fn filter_sees_corners_in_order() {
        let mut t = PackTree::new(4, 2);
        let mut seen = Vec::new();
        let r = t.alloc(1, 1, &mut |x, y, _, _| {
            seen.push((x, y));
            false
        });
        assert_eq!(r, None);
        assert_eq!(seen, vec![(0, 0), (0, 1), (3, 0), (3, 1)]);
        // A whole-machine request offers its single corner once.
        let mut count = 0;
        t.alloc(4, 2, &mut |_, _, _, _| {
            count += 1;
            false
        });
        assert_eq!(count, 1);
    }

    #[test]
    fn four_board_columns_then_rows_on_a_4x2_machine() {
        let mut t = PackTree::new(4, 2);
        let got: Vec<_> = (0..5)
            .map(|_| t.alloc_area(2, 0.0, &mut accept_all()))
            .collect();
        assert_eq!(
            got,
            vec![
                Some((0, 0, 1, 2)),
                Some((1, 0, 1, 2)),
                Some((2, 0, 2, 1)),
                Some((2, 1, 2, 1)),
                None
            ]
        );
    }

    #[test]
    fn freed_space_is_merged_and_reused() {
        let mut t = PackTree::new(3, 3);
        let a = t.alloc(2, 2, &mut accept_all());
        assert_eq!(a, Some((0, 0)));
        assert_eq!(t.alloc(3, 3, &mut accept_all()), None);
        assert!(t.free(0, 0));
        assert!(!t.free(0, 0));
        assert!(t.is_empty());
        assert_eq!(t.alloc(3, 3, &mut accept_all()), Some((0, 0)));
    }

    #[test]
    fn consistency_check_rejects_damage() {
        let mut t = PackTree::new(2, 2);
        t.alloc(1, 1, &mut accept_all());
        assert!(t.is_consistent(2, 2));
        assert!(!t.is_consistent(3, 2));
        let mut bad = t.clone();
        bad.nodes[0].children = Some((0, 1));
        assert!(!bad.is_consistent(2, 2));
        let mut bad = t.clone();
        bad.nodes[0].children = Some((1, 99));
        assert!(!bad.is_consistent(2, 2));
    }
}
