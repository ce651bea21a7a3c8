//! Lengths of time given in seconds, and deadlines that cannot overflow.
//!
//! One rule covers every number of seconds the crate and the `spalloc`
//! tool accept, whether it comes from a command-line flag, a configuration
//! file or a caller:
//!
//! * NaN is always an error.
//! * A negative number is the Python tools' spelling of "none": no limit
//!   for a [`limit`] (`timeout`, `keepalive`), no pause for a [`pause`]
//!   (`reconnect_delay`). A [`span`] (the virtual server's timings) has no
//!   such spelling, so there it is an error.
//! * Infinity, or anything over [`MAX_SECONDS`], means "no limit" for a
//!   limit and is an error for a pause or a span, where it would mean
//!   "never".
//!
//! Arguments that are already [`Duration`]s are taken as they are, however
//! large: a deadline beyond what [`Instant`] can represent is simply no
//! deadline. No code in the crate adds a duration to an `Instant` other
//! than with `checked_add`, so no duration can make it panic.

use std::fmt;
use std::time::{Duration, Instant};

/// The longest finite length of time accepted, in seconds: 10⁹ s, about
/// 32 years, far beyond any real use.
pub const MAX_SECONDS: f64 = 1.0e9;

/// A number of seconds that the rule in the [module documentation](self)
/// turns down. Its `Display` says why, without naming the setting, so that
/// the caller can prefix the flag or the file and key.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SecondsError {
    value: f64,
    kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    NotANumber,
    Negative,
    TooLarge,
}

impl SecondsError {
    /// The value that was turned down.
    pub fn value(&self) -> f64 {
        self.value
    }
}

impl fmt::Display for SecondsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            Kind::NotANumber => f.write_str("expected a number of seconds, got NaN"),
            Kind::Negative => write!(
                f,
                "expected a number of seconds that is not negative, got {}",
                self.value
            ),
            Kind::TooLarge => write!(
                f,
                "expected at most {MAX_SECONDS:e} seconds (about 32 years), got {}",
                self.value
            ),
        }
    }
}

impl std::error::Error for SecondsError {}

fn error(value: f64, kind: Kind) -> SecondsError {
    SecondsError { value, kind }
}

/// A limit such as a timeout or a keepalive interval: `None` means no
/// limit, which a negative number, infinity or anything over
/// [`MAX_SECONDS`] asks for.
///
/// # Errors
/// [`SecondsError`] for NaN.
///
/// # Example
/// ```
/// use std::time::Duration;
/// use spalloc::seconds;
/// assert_eq!(seconds::limit(2.5), Ok(Some(Duration::from_millis(2500))));
/// assert_eq!(seconds::limit(-1.0), Ok(None));
/// assert_eq!(seconds::limit(f64::INFINITY), Ok(None));
/// assert!(seconds::limit(f64::NAN).is_err());
/// ```
pub fn limit(secs: f64) -> Result<Option<Duration>, SecondsError> {
    if secs.is_nan() {
        return Err(error(secs, Kind::NotANumber));
    }
    if !(0.0..=MAX_SECONDS).contains(&secs) {
        return Ok(None);
    }
    Ok(Some(Duration::from_secs_f64(secs)))
}

/// A pause such as the delay between reconnection attempts: a negative
/// number means no pause.
///
/// # Errors
/// [`SecondsError`] for NaN, infinity or anything over [`MAX_SECONDS`].
pub fn pause(secs: f64) -> Result<Duration, SecondsError> {
    if secs.is_nan() {
        return Err(error(secs, Kind::NotANumber));
    }
    if secs < 0.0 {
        return Ok(Duration::ZERO);
    }
    span(secs)
}

/// A length of time with no "none" spelling, such as the virtual server's
/// power delay.
///
/// # Errors
/// [`SecondsError`] for NaN, a negative number, infinity or anything over
/// [`MAX_SECONDS`].
pub fn span(secs: f64) -> Result<Duration, SecondsError> {
    if secs.is_nan() {
        return Err(error(secs, Kind::NotANumber));
    }
    if secs < 0.0 {
        return Err(error(secs, Kind::Negative));
    }
    if secs > MAX_SECONDS {
        return Err(error(secs, Kind::TooLarge));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// `d` from now, or `None` (no deadline) if that is further away than an
/// [`Instant`] can represent.
pub(crate) fn deadline_after(d: Duration) -> Option<Instant> {
    Instant::now().checked_add(d)
}

/// The deadline for a wait of at most `timeout` (`None`: no deadline).
pub(crate) fn deadline(timeout: Option<Duration>) -> Option<Instant> {
    timeout.and_then(deadline_after)
}

/// Time left before `deadline`, `None` if there is none.
pub(crate) fn time_left(deadline: Option<Instant>) -> Option<Duration> {
    deadline.map(|d| d.saturating_duration_since(Instant::now()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits() {
        assert_eq!(limit(0.0), Ok(Some(Duration::ZERO)));
        assert_eq!(limit(-0.0), Ok(Some(Duration::ZERO)));
        assert_eq!(limit(10.0), Ok(Some(Duration::from_secs(10))));
        assert_eq!(limit(-1.0), Ok(None));
        assert_eq!(limit(f64::NEG_INFINITY), Ok(None));
        assert_eq!(limit(f64::INFINITY), Ok(None));
        assert_eq!(limit(1e19), Ok(None));
        assert_eq!(
            limit(MAX_SECONDS),
            Ok(Some(Duration::from_secs(1_000_000_000)))
        );
        assert_eq!(
            limit(f64::NAN).map_err(|e| e.to_string()),
            Err("expected a number of seconds, got NaN".to_owned())
        );
    }

    #[test]
    fn pauses_and_spans() {
        assert_eq!(pause(-5.0), Ok(Duration::ZERO));
        assert_eq!(pause(0.25), Ok(Duration::from_millis(250)));
        assert!(pause(f64::NAN).is_err());
        assert_eq!(
            pause(f64::INFINITY).map_err(|e| e.to_string()),
            Err("expected at most 1e9 seconds (about 32 years), got inf".to_owned())
        );
        assert_eq!(
            span(-1.0).map_err(|e| e.to_string()),
            Err("expected a number of seconds that is not negative, got -1".to_owned())
        );
        assert_eq!(span(2.0), Ok(Duration::from_secs(2)));
        assert!(span(1e10).is_err());
    }

    #[test]
    fn far_deadlines_are_none() {
        assert_eq!(deadline_after(Duration::MAX), None);
        assert_eq!(deadline(Some(Duration::MAX)), None);
        assert_eq!(deadline(None), None);
        assert!(deadline(Some(Duration::from_secs(1))).is_some());
        assert_eq!(time_left(None), None);
    }
}
