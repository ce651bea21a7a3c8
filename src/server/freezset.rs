//! The set of free boards (`z` values) of a triad shared by single-board jobs.
//!
//! The Python server keeps these in a CPython `set` and hands out boards with
//! `set.pop()`, whose order depends on the hash table's slots and on a cursor
//! that survives removals. To give the same boards in the same order as the
//! real server, even after boards of a shared triad were released, this type
//! models that table: open addressing over a power-of-two slot array, with
//! tombstones, linear probe runs and CPython's resize rule.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Slot {
    Empty,
    Tomb,
    Val(u8),
}

/// How many further slots one probe run looks at after the first.
const LINEAR_PROBES: usize = 9;

/// A tiny set of board numbers with CPython's `set.pop()` order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FreeZSet {
    slots: Vec<Slot>,
    fill: usize,
    used: usize,
    finger: usize,
}

impl FreeZSet {
    /// An empty set with CPython's initial eight slots.
    pub fn empty() -> FreeZSet {
        FreeZSet {
            slots: vec![Slot::Empty; 8],
            fill: 0,
            used: 0,
            finger: 0,
        }
    }

    /// A set holding `zs`, added in the order given (ascending in practice).
    pub fn with(zs: impl IntoIterator<Item = u8>) -> FreeZSet {
        let mut set = FreeZSet::empty();
        for z in zs {
            set.add(z);
        }
        set
    }

    fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.used
    }

    pub fn is_empty(&self) -> bool {
        self.used == 0
    }

    pub fn contains(&self, z: u8) -> bool {
        self.slots.contains(&Slot::Val(z))
    }

    /// The members in slot order.
    pub fn members(&self) -> Vec<u8> {
        self.slots
            .iter()
            .filter_map(|s| match s {
                Slot::Val(v) => Some(*v),
                _ => None,
            })
            .collect()
    }

    pub fn add(&mut self, z: u8) {
        if self.contains(z) {
            return;
        }
        let mask = self.mask();
        let mut i = usize::from(z) & mask;
        let mut tomb = None;
        // The table always keeps an empty slot (the resize rule below fires
        // well before it fills up), so a probe sequence that visits every
        // slot ends; the bound only guards a corrupted table.
        for _ in 0..=self.slots.len() * 2 {
            let run = if i + LINEAR_PROBES <= mask {
                LINEAR_PROBES
            } else {
                0
            };
            for j in i..=i + run {
                match self.slots[j] {
                    Slot::Empty => {
                        self.place(z, tomb, j);
                        return;
                    }
                    Slot::Tomb => tomb = Some(j),
                    Slot::Val(_) => {}
                }
            }
            i = (5 * i + 1) & mask;
        }
        if let Some(t) = tomb {
            self.slots[t] = Slot::Val(z);
            self.used += 1;
        }
    }

    fn place(&mut self, z: u8, tomb: Option<usize>, empty: usize) {
        if let Some(t) = tomb {
            self.slots[t] = Slot::Val(z);
            self.used += 1;
            return;
        }
        self.slots[empty] = Slot::Val(z);
        self.fill += 1;
        self.used += 1;
        if self.fill * 5 >= self.mask() * 3 {
            self.rebuild(self.used * 4);
        }
    }

    fn rebuild(&mut self, minused: usize) {
        let mut size = 8;
        while size <= minused {
            size *= 2;
        }
        if size == 8 && self.slots.len() == 8 && self.fill == self.used {
            return;
        }
        let values = self.members();
        self.slots = vec![Slot::Empty; size];
        for v in values {
            let mut i = usize::from(v) & (size - 1);
            while self.slots[i] != Slot::Empty {
                i = (i + 1) & (size - 1);
            }
            self.slots[i] = Slot::Val(v);
        }
        self.fill = self.used;
    }

    /// Removes `z`, returning whether it was present.
    pub fn remove(&mut self, z: u8) -> bool {
        match self.slots.iter().position(|s| *s == Slot::Val(z)) {
            Some(i) => {
                self.slots[i] = Slot::Tomb;
                self.used -= 1;
                true
            }
            None => false,
        }
    }

    /// Takes the member CPython's `set.pop()` would return.
    pub fn pop(&mut self) -> Option<u8> {
        if self.used == 0 {
            return None;
        }
        let mask = self.mask();
        let mut j = self.finger & mask;
        for _ in 0..self.slots.len() {
            if let Slot::Val(v) = self.slots[j] {
                self.slots[j] = Slot::Tomb;
                self.used -= 1;
                self.finger = j + 1;
                return Some(v);
            }
            j = (j + 1) & mask;
        }
        None
    }

    /// Checks the invariants after loading from a state file.
    pub fn is_consistent(&self) -> bool {
        let n = self.slots.len();
        let vals = self.members();
        let tombs = self.slots.iter().filter(|s| **s == Slot::Tomb).count();
        n >= 8
            && n.is_power_of_two()
            && self.used == vals.len()
            && self.fill == vals.len() + tombs
            && self.slots.contains(&Slot::Empty)
            && vals.iter().all(|&v| v < 3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_set_pops_lowest_first() {
        let mut s = FreeZSet::with([0, 1, 2]);
        assert_eq!(s.len(), 3);
        assert_eq!(s.pop(), Some(0));
        assert_eq!(s.pop(), Some(1));
        assert_eq!(s.pop(), Some(2));
        assert_eq!(s.pop(), None);
        assert!(s.is_empty());
    }

    #[test]
    fn cursor_survives_a_release() {
        // z0 and z1 taken, z0 released: the next pop gives z2, then z0.
        let mut s = FreeZSet::with([0, 1, 2]);
        assert_eq!(s.pop(), Some(0));
        assert_eq!(s.pop(), Some(1));
        s.add(0);
        assert_eq!(s.pop(), Some(2));
        assert_eq!(s.pop(), Some(0));
        assert_eq!(s.pop(), None);
    }

    #[test]
    fn remove_and_add_keep_members() {
        let mut s = FreeZSet::with([0, 2]);
        assert!(s.contains(2));
        assert!(!s.contains(1));
        assert!(s.remove(2));
        assert!(!s.remove(2));
        s.add(1);
        s.add(1);
        let mut m = s.members();
        m.sort_unstable();
        assert_eq!(m, vec![0, 1]);
        assert!(s.is_consistent());
    }

    #[test]
    fn an_emptied_set_refilled_starts_after_the_cursor() {
        // A full triad re-enters the map with an empty set; boards come back
        // in release order, but pops still start from the old cursor (0 here,
        // since the set was new).
        let mut s = FreeZSet::empty();
        s.add(2);
        s.add(0);
        assert_eq!(s.pop(), Some(0));
        assert_eq!(s.pop(), Some(2));
    }

    #[test]
    fn many_operations_stay_consistent() {
        // A deterministic pseudo-random walk over add/remove/pop: the set
        // always agrees with a plain model of its members and never loses its
        // empty slot.
        let mut s = FreeZSet::with([0, 1, 2]);
        let mut model = std::collections::BTreeSet::from([0u8, 1, 2]);
        let mut seed: u32 = 12345;
        for _ in 0..10_000 {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let z = u8::try_from((seed >> 16) % 3).unwrap_or(0);
            match (seed >> 8) % 3 {
                0 => {
                    s.add(z);
                    model.insert(z);
                }
                1 => assert_eq!(s.remove(z), model.remove(&z)),
                _ => {
                    let p = s.pop();
                    if let Some(v) = p {
                        assert!(model.remove(&v));
                    } else {
                        assert!(model.is_empty());
                    }
                }
            }
            assert!(s.is_consistent());
            let mut m = s.members();
            m.sort_unstable();
            assert_eq!(m, model.iter().copied().collect::<Vec<_>>());
        }
    }
}
