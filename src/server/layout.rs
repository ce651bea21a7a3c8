//! Physical layout of a machine: cabinet/frame/board numbers and IP addresses.
//!
//! Real installations take these from SpiNNer's wiring plan. The virtual
//! server synthesises the same numbering SpiNNer would choose by default for a
//! machine of the given size, and derives IP addresses the way the Python
//! server's `Machine.with_standard_ips` does, so that answers look like those
//! of a real site.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

/// A board's physical position `(cabinet, frame, board)`.
pub(crate) type Physical = (i32, i32, i32);

/// The `(cabinet, frame, board)` of every board of a `w` x `h` triad machine
/// as SpiNNer lays it out by default, or `None` for the sizes that SpiNNer
/// cannot divide into whole cabinets and frames.
pub(crate) fn spinner_layout(w: i32, h: i32) -> Option<BTreeMap<(i32, i32, i32), Physical>> {
    let boards: Vec<(i32, i32, i32)> = (0..w)
        .flat_map(|x| (0..h).flat_map(move |y| (0..3).map(move |z| (x, y, z))))
        .collect();
    // SpiNNer numbers the two upper boards of a triad the other way round.
    let k = |z: i32| [0, 2, 1][usize::try_from(z).unwrap_or(0).min(2)];

    let raw: Vec<(i64, i64)> = if h == 2 * w {
        let hex: Vec<(i64, i64)> = boards
            .iter()
            .map(|&(x, y, z)| {
                let kz = k(z);
                let hx = i64::from(2 * x - y + i32::from(kz >= 2));
                let hy = i64::from(x + y + i32::from(kz >= 1));
                (hx, (2 * hy - hx).div_euclid(2))
            })
            .collect();
        let mx = hex.iter().map(|p| p.0).max().unwrap_or(0) + 1;
        let my = hex.iter().map(|p| p.1).max().unwrap_or(0) + 1;
        hex.into_iter()
            .map(|(a, b)| (a.rem_euclid(mx), b.rem_euclid(my)))
            .collect()
    } else {
        boards
            .iter()
            .map(|&(x, y, z)| (i64::from(3 * x + k(z)), i64::from(y)))
            .collect()
    };

    let fold = |values: Vec<i64>| -> Vec<i64> {
        let len = values.iter().copied().max().unwrap_or(0) + 1;
        let fw = (len + 1) / 2;
        values
            .into_iter()
            .map(|v| {
                let (mut n, f) = (v % fw, v / fw);
                if f % 2 == 1 {
                    n = (len - fw) - n - 1;
                }
                2 * n + f
            })
            .collect()
    };
    let mut xs = fold(raw.iter().map(|p| p.0).collect());
    let mut ys = fold(raw.iter().map(|p| p.1).collect());

    let n = i64::try_from(boards.len()).ok()?;
    let nc = (n + 119) / 120;
    let nf = if nc > 1 { 5 } else { (n + 23) / 24 };
    let mut wc = xs.iter().copied().max().unwrap_or(0) + 1;
    let mut hc = ys.iter().copied().max().unwrap_or(0) + 1;
    if wc % nc != 0 || hc % nf != 0 {
        std::mem::swap(&mut xs, &mut ys);
        std::mem::swap(&mut wc, &mut hc);
        if wc % nc != 0 || hc % nf != 0 {
            return None;
        }
    }
    let (cpc, rpf) = (wc / nc, hc / nf);

    let mut frames: BTreeMap<(i64, i64), Vec<(i64, (i32, i32, i32))>> = BTreeMap::new();
    for ((&b, &x), &y) in boards.iter().zip(&xs).zip(&ys) {
        let (c, f) = (x / cpc, y / rpf);
        let num = y % rpf + rpf * (x % cpc);
        frames.entry((c, f)).or_default().push((num, b));
    }
    let mut out = BTreeMap::new();
    for ((c, f), mut members) in frames {
        members.sort_unstable();
        for (i, (_, b)) in members.into_iter().enumerate() {
            out.insert(
                b,
                (
                    i32::try_from(c).ok()?,
                    i32::try_from(f).ok()?,
                    i32::try_from(i).ok()?,
                ),
            );
        }
    }
    Some(out)
}

/// The fallback layout: boards in `(x, y, z)` order, 24 to a frame and five
/// frames to a cabinet.
pub(crate) fn linear_layout(w: i32, h: i32) -> BTreeMap<(i32, i32, i32), Physical> {
    let mut out = BTreeMap::new();
    let mut i = 0;
    for x in 0..w {
        for y in 0..h {
            for z in 0..3 {
                out.insert((x, y, z), (i / 120, (i / 24) % 5, i % 24));
                i += 1;
            }
        }
    }
    out
}

/// The parameters of `Machine.with_standard_ips`: each address is the base
/// plus the cabinet, frame and board numbers times their strides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IpScheme {
    pub base_ip: Ipv4Addr,
    pub cabinet_stride: Ipv4Addr,
    pub frame_stride: Ipv4Addr,
    pub board_stride: Ipv4Addr,
    pub bmp_offset: Ipv4Addr,
    pub spinnaker_offset: Ipv4Addr,
}

impl Default for IpScheme {
    fn default() -> IpScheme {
        IpScheme {
            base_ip: Ipv4Addr::new(192, 168, 0, 0),
            cabinet_stride: Ipv4Addr::new(0, 0, 5, 0),
            frame_stride: Ipv4Addr::new(0, 0, 1, 0),
            board_stride: Ipv4Addr::new(0, 0, 0, 8),
            bmp_offset: Ipv4Addr::new(0, 0, 0, 0),
            spinnaker_offset: Ipv4Addr::new(0, 0, 0, 1),
        }
    }
}

impl IpScheme {
    fn frame_base(&self, c: i32, f: i32) -> Option<u64> {
        let c = u64::try_from(c).ok()?;
        let f = u64::try_from(f).ok()?;
        u64::from(u32::from(self.base_ip))
            .checked_add(c.checked_mul(u64::from(u32::from(self.cabinet_stride)))?)?
            .checked_add(f.checked_mul(u64::from(u32::from(self.frame_stride)))?)
    }

    fn to_ip(v: u64) -> Option<Ipv4Addr> {
        u32::try_from(v).ok().map(Ipv4Addr::from)
    }

    /// The SpiNNaker (Ethernet chip) address of board `(c, f, b)`, or `None`
    /// if it would not fit in 32 bits.
    pub fn spinnaker_ip(&self, (c, f, b): Physical) -> Option<Ipv4Addr> {
        let b = u64::try_from(b).ok()?;
        let v = self
            .frame_base(c, f)?
            .checked_add(b.checked_mul(u64::from(u32::from(self.board_stride)))?)?
            .checked_add(u64::from(u32::from(self.spinnaker_offset)))?;
        IpScheme::to_ip(v)
    }

    /// The BMP address of frame `(c, f)`.
    pub fn bmp_ip(&self, c: i32, f: i32) -> Option<Ipv4Addr> {
        let v = self
            .frame_base(c, f)?
            .checked_add(u64::from(u32::from(self.bmp_offset)))?;
        IpScheme::to_ip(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spinner_layout_of_the_worked_example() {
        let l = spinner_layout(2, 2).unwrap_or_default();
        let expect = [
            ((0, 0, 0), 0),
            ((0, 0, 1), 8),
            ((0, 0, 2), 4),
            ((0, 1, 0), 1),
            ((0, 1, 1), 9),
            ((0, 1, 2), 5),
            ((1, 0, 0), 10),
            ((1, 0, 1), 2),
            ((1, 0, 2), 6),
            ((1, 1, 0), 11),
            ((1, 1, 1), 3),
            ((1, 1, 2), 7),
        ];
        assert_eq!(l.len(), 12);
        for (board, b) in expect {
            assert_eq!(l.get(&board), Some(&(0, 0, b)), "{board:?}");
        }
    }

    #[test]
    fn spinner_layout_of_one_triad() {
        let l = spinner_layout(1, 1).unwrap_or_default();
        assert_eq!(l.get(&(0, 0, 0)), Some(&(0, 0, 0)));
        assert_eq!(l.get(&(0, 0, 1)), Some(&(0, 0, 1)));
        assert_eq!(l.get(&(0, 0, 2)), Some(&(0, 0, 2)));
    }

    #[test]
    fn spinner_layout_fails_where_spinner_does() {
        assert!(spinner_layout(3, 3).is_none());
    }

    #[test]
    fn spinner_layouts_are_unique_and_fit_frames() {
        for w in 1..=12 {
            for h in 1..=12 {
                let Some(l) = spinner_layout(w, h) else {
                    continue;
                };
                assert_eq!(l.len(), usize::try_from(3 * w * h).unwrap_or(0));
                let mut seen = std::collections::HashSet::new();
                for &(c, f, b) in l.values() {
                    assert!(seen.insert((c, f, b)), "{w}x{h} duplicate");
                    assert!((0..24).contains(&b) && (0..5).contains(&f) && c >= 0);
                }
            }
        }
        // The large scale-test machine works and needs ten cabinets.
        let big = spinner_layout(20, 20).unwrap_or_default();
        assert_eq!(big.len(), 1200);
        assert_eq!(big.values().map(|p| p.0).max(), Some(9));
    }

    #[test]
    fn slice_shaped_machines_use_the_hexagonal_layout() {
        // H == 2W takes the other branch; it must still give unique positions.
        let l = spinner_layout(1, 2).unwrap_or_default();
        assert_eq!(l.len(), 6);
        let unique: std::collections::HashSet<_> = l.values().collect();
        assert_eq!(unique.len(), 6);
    }

    #[test]
    fn linear_layout_numbers_frames_and_cabinets() {
        let l = linear_layout(3, 3);
        assert_eq!(l.get(&(0, 0, 0)), Some(&(0, 0, 0)));
        assert_eq!(l.get(&(0, 0, 2)), Some(&(0, 0, 2)));
        assert_eq!(l.get(&(2, 2, 2)), Some(&(0, 1, 2)));
        let l = linear_layout(20, 2);
        assert_eq!(l.get(&(19, 1, 2)), Some(&(0, 4, 23)));
        let l = linear_layout(20, 3);
        assert_eq!(l.get(&(19, 2, 2)), Some(&(1, 2, 11)));
    }

    #[test]
    fn standard_ips() {
        let s = IpScheme::default();
        assert_eq!(
            s.spinnaker_ip((0, 0, 0)),
            Some(Ipv4Addr::new(192, 168, 0, 1))
        );
        assert_eq!(
            s.spinnaker_ip((0, 0, 1)),
            Some(Ipv4Addr::new(192, 168, 0, 9))
        );
        assert_eq!(
            s.spinnaker_ip((0, 0, 5)),
            Some(Ipv4Addr::new(192, 168, 0, 41))
        );
        assert_eq!(
            s.spinnaker_ip((0, 1, 0)),
            Some(Ipv4Addr::new(192, 168, 1, 1))
        );
        assert_eq!(
            s.spinnaker_ip((1, 0, 0)),
            Some(Ipv4Addr::new(192, 168, 5, 1))
        );
        assert_eq!(s.bmp_ip(0, 0), Some(Ipv4Addr::new(192, 168, 0, 0)));
        assert_eq!(s.bmp_ip(1, 2), Some(Ipv4Addr::new(192, 168, 7, 0)));
        let top = IpScheme {
            base_ip: Ipv4Addr::new(255, 255, 255, 255),
            ..IpScheme::default()
        };
        assert_eq!(top.spinnaker_ip((0, 0, 0)), None);
    }
}
