//! Which server versions this client talks to.
//!
//! The Python server reports PEP 440 versions with an epoch (`1!7.1.0`), which
//! the Python client cannot parse; the Java compatibility service reports
//! `5.0.0`. We strip the epoch, read the leading numeric release and accept
//! `0.1.0 <= v < 8.0.0`.

use crate::error::{Error, Result};

/// The lowest accepted version (inclusive).
pub const MIN_VERSION: [u64; 3] = [0, 1, 0];
/// The lowest rejected version above the accepted range.
pub const MAX_VERSION_EXCLUSIVE: [u64; 3] = [8, 0, 0];

/// Parses the numeric release of a version string: an optional PEP 440 epoch
/// (`N!`) is dropped, then dot-separated integers are read until the first
/// component that is not purely numeric (whose leading digits still count, so
/// `7.1.0rc1` is `[7, 1, 0]`). Missing components count as zero. Returns
/// `None` if there is no leading number at all.
pub fn parse_version(raw: &str) -> Option<[u64; 3]> {
    let s = raw.trim().trim_matches('"');
    let s = match s.split_once('!') {
        Some((epoch, rest)) if !epoch.is_empty() && epoch.bytes().all(|b| b.is_ascii_digit()) => {
            rest
        }
        Some(_) => return None,
        None => s,
    };
    let mut out = [0u64; 3];
    let mut count = 0;
    for part in s.split('.') {
        let digits = part.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            break;
        }
        let n: u64 = part[..digits].parse().ok()?;
        if count < 3 {
            out[count] = n;
        }
        count += 1;
        if digits < part.len() {
            break;
        }
    }
    (count > 0).then_some(out)
}

/// Checks a server's version string against the supported range.
///
/// # Errors
/// [`Error::IncompatibleVersion`] with the string as received, if it cannot be
/// parsed or is out of range.
pub fn check_version(raw: &str) -> Result<()> {
    match parse_version(raw) {
        Some(v) if v >= MIN_VERSION && v < MAX_VERSION_EXCLUSIVE => Ok(()),
        _ => Err(Error::IncompatibleVersion(raw.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_real_versions() {
        assert_eq!(parse_version("1!7.0.0"), Some([7, 0, 0]));
        assert_eq!(parse_version("1!7.1.0"), Some([7, 1, 0]));
        assert_eq!(parse_version("5.0.0"), Some([5, 0, 0]));
        assert_eq!(parse_version("7.1.0rc1"), Some([7, 1, 0]));
        assert_eq!(parse_version("5.0.0.dev1"), Some([5, 0, 0]));
        assert_eq!(parse_version("1.2+local"), Some([1, 2, 0]));
        assert_eq!(parse_version("2"), Some([2, 0, 0]));
        assert_eq!(parse_version("\"0.4.0\""), Some([0, 4, 0]));
        assert_eq!(parse_version(" 1.1.0\n"), Some([1, 1, 0]));
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "garbage",
            "!7.0.0",
            "x!7.0.0",
            "v1.0.0",
            ".1",
            "99999999999999999999999.0",
        ] {
            assert_eq!(parse_version(bad), None, "{bad:?}");
            assert!(matches!(check_version(bad), Err(Error::IncompatibleVersion(s)) if s == bad));
        }
    }

    #[test]
    fn range_is_half_open() {
        for ok in [
            "0.1.0", "1!7.0.0", "1!7.1.0", "5.0.0", "7.99.99", "1.1.0", "7.1.0rc1",
        ] {
            assert!(check_version(ok).is_ok(), "{ok}");
        }
        for bad in ["0.0.9", "0.0.1", "8.0.0", "1!8.0.0", "10.0.0"] {
            assert!(check_version(bad).is_err(), "{bad}");
        }
    }
}
