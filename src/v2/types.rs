//! The v2 service's JSON documents as typed values (PROTOCOL_V2.md §3),
//! read field by field so that a wrong document is reported naming the
//! endpoint and the field, and times read as Unix seconds.

use serde_json::{Map, Value};

use crate::error::{Error, ProtocolError, Result};
use crate::types::{Board, BoardPosition, Chip, Connection, JobState};

/// The service root (`GET {srv}`), without its CSRF token.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServiceInfo {
    /// The server's version, `major.minor.revision`.
    pub version: String,
    /// The jobs collection, if the user may read it.
    pub jobs_ref: Option<String>,
    /// The machines collection, if the user may read it.
    pub machines_ref: Option<String>,
}

/// A board as machine descriptions list it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BoardCoords {
    /// Logical coordinate.
    pub logical: Board,
    /// Physical position, when the board exists.
    pub physical: Option<BoardPosition>,
    /// IP address, when the board exists.
    pub address: Option<String>,
}

/// A link direction, by the Java server's names (`N`, `E`, `SE`, `S`, `W`,
/// `NW`), numbered 0–5 in that order as the Java compatibility service
/// numbers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Direction(pub u32);

impl Direction {
    const NAMES: [&'static str; 6] = ["N", "E", "SE", "S", "W", "NW"];

    /// The direction's name.
    pub fn name(self) -> &'static str {
        Direction::NAMES
            .get(self.0 as usize)
            .copied()
            .unwrap_or("?")
    }
}

/// A link that is down: both its ends.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DownLink {
    /// One end: the board and the direction the link leaves it in.
    pub from: (BoardCoords, Direction),
    /// The other end.
    pub to: (BoardCoords, Direction),
}

/// A machine (`GET machines` or `GET machines/{name}`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Machine {
    /// Its name.
    pub name: String,
    /// Its tags (in no particular order).
    pub tags: Vec<String>,
    /// Width in triads.
    pub width: u32,
    /// Height in triads.
    pub height: u32,
    /// Boards out of service.
    pub dead_boards: Vec<BoardCoords>,
    /// Links out of service.
    pub dead_links: Vec<DownLink>,
}

/// A where-is answer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BoardLocation {
    /// The machine.
    pub machine: String,
    /// The chip asked about, or the board's Ethernet chip for the board
    /// forms (machine coordinates; job-relative for the job form).
    pub chip: Chip,
    /// The board's Ethernet chip (machine coordinates; job-relative for the
    /// job form).
    pub board_chip: Chip,
    /// The board's logical coordinate.
    pub logical: Board,
    /// The board's physical position (its board number may be unknown).
    pub physical: (u32, u32, Option<u32>),
    /// The job holding the board, if any.
    pub job_id: Option<u64>,
    /// The chip relative to that job, as the server computes it.
    pub job_chip: Option<Chip>,
}

/// A job, as `GET jobs/{id}` describes it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct JobInfo {
    /// The job's id.
    pub id: u64,
    /// Its state.
    pub state: JobState,
    /// Who owns it.
    pub owner: Option<String>,
    /// When it was created (Unix seconds).
    pub start_time: Option<f64>,
    /// When it was destroyed (Unix seconds).
    pub finish_time: Option<f64>,
    /// Why it was destroyed (`""` if no reason was given).
    pub reason: Option<String>,
    /// The address that last kept it alive.
    pub keepalive_host: Option<String>,
    /// When it was last kept alive (Unix seconds).
    pub keepalive_time: Option<f64>,
    /// The proxy websocket's URL, while the job has boards.
    pub proxy_ref: Option<String>,
    /// The request it was created with, as the server stored it.
    pub original_request: Option<Value>,
}

impl JobInfo {
    /// The keepalive interval of the original request, in seconds.
    pub fn keepalive_interval(&self) -> Option<f64> {
        match self.original_request.as_ref()?.get("keepalive-interval")? {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => parse_duration_secs(s),
            _ => None,
        }
    }
}

/// Where a job's boards are (`GET jobs/{id}/machine`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct JobAllocation {
    /// Width in triads.
    pub width: u32,
    /// Height in triads.
    pub height: u32,
    /// 1 for a single board, 3 for whole triads.
    pub depth: u32,
    /// The machine.
    pub machine_name: String,
    /// Each board's Ethernet chip, relative to the job, and address;
    /// sorted by chip.
    pub connections: Vec<Connection>,
    /// The boards, sorted.
    pub boards: Vec<Board>,
}

/// One page of the jobs list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JobPage {
    /// The ids, newest first.
    pub ids: Vec<u64>,
    /// The next page, if the server says there may be one.
    pub next: Option<String>,
}

/// A board named in an issue report (`POST jobs/{id}/report-issue`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IssueBoard {
    /// The board holding this job-relative chip.
    Chip(Chip),
    /// A board by logical coordinate.
    Logical(Board),
    /// A board by physical position.
    Physical(BoardPosition),
    /// A board by IP address.
    Address(String),
}

/// Reads the fields of one JSON object, naming the endpoint in errors.
pub(crate) struct Doc<'a> {
    what: &'a str,
    map: &'a Map<String, Value>,
}

fn wrong(what: &str, field: Option<&str>, expected: &str, got: Option<&Value>) -> Error {
    ProtocolError {
        command: Some(what.to_owned()),
        field: field.map(str::to_owned),
        expected: expected.to_owned(),
        got: got.map(describe),
    }
    .into()
}

/// A short description of a JSON value for an error message.
fn describe(v: &Value) -> String {
    let text = v.to_string();
    match text.char_indices().nth(60) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text,
    }
}

impl<'a> Doc<'a> {
    /// The object `v`, or an error.
    pub fn new(what: &'a str, v: &'a Value) -> Result<Doc<'a>> {
        match v {
            Value::Object(map) => Ok(Doc { what, map }),
            other => Err(wrong(what, None, "a JSON object", Some(other))),
        }
    }

    fn get(&self, field: &str) -> Option<&'a Value> {
        self.map.get(field).filter(|v| !v.is_null())
    }

    fn missing(&self, field: &str) -> Error {
        wrong(self.what, Some(field), "a value", None)
    }

    pub fn str(&self, field: &str) -> Result<String> {
        self.opt_str(field)?.ok_or_else(|| self.missing(field))
    }

    pub fn opt_str(&self, field: &str) -> Result<Option<String>> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(wrong(self.what, Some(field), "a string", Some(other))),
        }
    }

    pub fn u64(&self, field: &str) -> Result<u64> {
        self.opt_u64(field)?.ok_or_else(|| self.missing(field))
    }

    pub fn opt_u64(&self, field: &str) -> Result<Option<u64>> {
        match self.get(field) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .map(Some)
                .ok_or_else(|| wrong(self.what, Some(field), "a non-negative integer", Some(v))),
        }
    }

    pub fn u32(&self, field: &str) -> Result<u32> {
        let n = self.u64(field)?;
        u32::try_from(n).map_err(|_| {
            wrong(
                self.what,
                Some(field),
                "a small non-negative integer",
                self.get(field),
            )
        })
    }

    pub fn array(&self, field: &str) -> Result<&'a [Value]> {
        match self.get(field) {
            None => Ok(&[]),
            Some(Value::Array(a)) => Ok(a),
            Some(other) => Err(wrong(self.what, Some(field), "an array", Some(other))),
        }
    }

    pub fn strings(&self, field: &str) -> Result<Vec<String>> {
        self.array(field)?
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                other => Err(wrong(self.what, Some(field), "strings", Some(other))),
            })
            .collect()
    }

    pub fn time(&self, field: &str) -> Result<Option<f64>> {
        match self.opt_str(field)? {
            None => Ok(None),
            Some(s) => parse_instant(&s)
                .map(Some)
                .ok_or_else(|| wrong(self.what, Some(field), "an ISO-8601 time", self.get(field))),
        }
    }

    /// `[a, b, …]` of `N` non-negative integers (`None` where null is
    /// allowed and found).
    pub fn coords<const N: usize>(&self, field: &str) -> Result<Option<[Option<u32>; N]>> {
        let Some(v) = self.get(field) else {
            return Ok(None);
        };
        let bad = || {
            wrong(
                self.what,
                Some(field),
                &format!("an array of {N} integers"),
                Some(v),
            )
        };
        let Value::Array(items) = v else {
            return Err(bad());
        };
        if items.len() != N {
            return Err(bad());
        }
        let mut out = [None; N];
        for (slot, item) in out.iter_mut().zip(items) {
            *slot = match item {
                Value::Null => None,
                n => Some(
                    n.as_u64()
                        .and_then(|n| u32::try_from(n).ok())
                        .ok_or_else(bad)?,
                ),
            };
        }
        Ok(Some(out))
    }

    pub fn chip(&self, field: &str) -> Result<Option<Chip>> {
        match self.coords::<2>(field)? {
            None => Ok(None),
            Some([Some(x), Some(y)]) => Ok(Some(Chip { x, y })),
            Some(_) => Err(wrong(self.what, Some(field), "[x, y]", self.get(field))),
        }
    }
}

/// Unix seconds from an ISO-8601 instant: `2025-03-01T10:00:05Z`, with an
/// optional fraction and a `Z` or `±hh:mm` offset.
pub(crate) fn parse_instant(text: &str) -> Option<f64> {
    let t = text.trim();
    let (date, time) = t.split_once(['T', 't', ' '])?;
    let mut d = date.splitn(3, '-');
    let year: i64 = d.next()?.parse().ok()?;
    let month: i64 = d.next()?.parse().ok()?;
    let day: i64 = d.next()?.parse().ok()?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let (clock, offset) = if let Some(c) = time.strip_suffix(['Z', 'z']) {
        (c, 0)
    } else {
        let at = time.rfind(['+', '-'])?;
        let (c, off) = time.split_at(at);
        let sign = if off.starts_with('-') { -1 } else { 1 };
        let (h, m) = off[1..].split_once(':').unwrap_or((&off[1..], "0"));
        (
            c,
            sign * (h.parse::<i64>().ok()? * 3600 + m.parse::<i64>().ok()? * 60),
        )
    };
    let mut c = clock.splitn(3, ':');
    let hour: i64 = c.next()?.parse().ok()?;
    let minute: i64 = c.next()?.parse().ok()?;
    let seconds: f64 = c.next().unwrap_or("0").parse().ok()?;
    if hour > 23 || minute > 59 || !(0.0..61.0).contains(&seconds) {
        return None;
    }
    // Days from civil (Howard Hinnant).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let whole = days * 86_400 + hour * 3600 + minute * 60 - offset;
    #[allow(clippy::cast_precision_loss)] // seconds since 1970 fit easily
    Some(whole as f64 + seconds)
}

/// Seconds from an ISO-8601 duration of the simple kinds a keepalive takes:
/// `PT60S`, `PT1M30S`, `PT1.5S`.
pub(crate) fn parse_duration_secs(text: &str) -> Option<f64> {
    let t = text.trim().to_ascii_uppercase();
    let mut rest = t.strip_prefix("PT")?;
    let mut total = 0.0;
    for (unit, scale) in [('H', 3600.0), ('M', 60.0), ('S', 1.0)] {
        if let Some(at) = rest.find(unit) {
            total += rest[..at].parse::<f64>().ok()? * scale;
            rest = &rest[at + 1..];
        }
    }
    rest.is_empty().then_some(total)
}

/// An ISO-8601 duration for `secs` seconds: `PT60S`, `PT0.5S`.
pub(crate) fn iso_duration(secs: f64) -> String {
    if secs.fract() == 0.0 && secs.abs() < 1e15 {
        format!("PT{secs:.0}S")
    } else {
        let text = format!("{secs:.9}");
        format!("PT{}S", text.trim_end_matches('0').trim_end_matches('.'))
    }
}

/// A job state by name.
pub(crate) fn job_state(name: &str) -> JobState {
    match name {
        "QUEUED" => JobState::Queued,
        "POWER" => JobState::Power,
        "READY" => JobState::Ready,
        "DESTROYED" => JobState::Destroyed,
        _ => JobState::Unknown,
    }
}

fn board_coords(what: &str, field: &str, v: &Value) -> Result<BoardCoords> {
    let d = Doc::new(what, v).map_err(|_| wrong(what, Some(field), "board objects", Some(v)))?;
    let logical = Board::new(d.u32("x")?, d.u32("y")?, d.u32("z")?);
    let physical = match (
        d.opt_u64("cabinet")?,
        d.opt_u64("frame")?,
        d.opt_u64("board")?,
    ) {
        (Some(c), Some(f), Some(b)) => Some(BoardPosition {
            cabinet: u32::try_from(c).unwrap_or(u32::MAX),
            frame: u32::try_from(f).unwrap_or(u32::MAX),
            board: u32::try_from(b).unwrap_or(u32::MAX),
        }),
        _ => None,
    };
    Ok(BoardCoords {
        logical,
        physical,
        address: d.opt_str("address")?,
    })
}

fn link_end(what: &str, field: &str, v: &Value) -> Result<(BoardCoords, Direction)> {
    let d = Doc::new(what, v).map_err(|_| wrong(what, Some(field), "link ends", Some(v)))?;
    let board = board_coords(
        what,
        field,
        d.get("board")
            .ok_or_else(|| wrong(what, Some(field), "a board", None))?,
    )?;
    let direction = match d.get("direction") {
        Some(Value::String(s)) => Direction::NAMES
            .iter()
            .position(|n| n == s)
            .map(|i| Direction(i as u32)),
        Some(n) => n.as_u64().filter(|n| *n < 6).map(|n| Direction(n as u32)),
        None => None,
    }
    .ok_or_else(|| {
        wrong(
            what,
            Some(field),
            "a direction (N, E, SE, S, W, NW)",
            d.get("direction"),
        )
    })?;
    Ok((board, direction))
}

/// A machine from `GET machines` (`dead-*`) or `GET machines/{name}`
/// (`down-*`).
pub(crate) fn machine(what: &str, v: &Value) -> Result<Machine> {
    let d = Doc::new(what, v)?;
    let (boards_field, links_field) = if d.map.contains_key("down-boards") {
        ("down-boards", "down-links")
    } else {
        ("dead-boards", "dead-links")
    };
    let dead_boards = d
        .array(boards_field)?
        .iter()
        .map(|b| board_coords(what, boards_field, b))
        .collect::<Result<Vec<_>>>()?;
    let dead_links = d
        .array(links_field)?
        .iter()
        .map(|l| match l {
            Value::Array(ends) if ends.len() == 2 => Ok(DownLink {
                from: link_end(what, links_field, &ends[0])?,
                to: link_end(what, links_field, &ends[1])?,
            }),
            other => Err(wrong(
                what,
                Some(links_field),
                "pairs of link ends",
                Some(other),
            )),
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Machine {
        name: d.str("name")?,
        tags: d.strings("tags")?,
        width: d.u32("width")?,
        height: d.u32("height")?,
        dead_boards,
        dead_links,
    })
}

pub(crate) fn location(what: &str, v: &Value) -> Result<BoardLocation> {
    let d = Doc::new(what, v)?;
    let need = |field: &str| wrong(what, Some(field), "a value", None);
    let logical = match d.coords::<3>("logical-board-coordinates")? {
        Some([Some(x), Some(y), Some(z)]) => Board::new(x, y, z),
        _ => return Err(need("logical-board-coordinates")),
    };
    let physical = match d.coords::<3>("physical-board-coordinates")? {
        Some([Some(c), Some(f), b]) => (c, f, b),
        _ => return Err(need("physical-board-coordinates")),
    };
    Ok(BoardLocation {
        machine: d.str("machine")?,
        chip: d.chip("chip")?.ok_or_else(|| need("chip"))?,
        board_chip: d.chip("board-chip")?.ok_or_else(|| need("board-chip"))?,
        logical,
        physical,
        job_id: d.opt_u64("job-id")?,
        job_chip: d.chip("job-chip")?,
    })
}

pub(crate) fn job_info(what: &str, id: u64, v: &Value) -> Result<JobInfo> {
    let d = Doc::new(what, v)?;
    let state = d.str("state")?;
    Ok(JobInfo {
        id,
        state: job_state(&state),
        owner: d.opt_str("owner")?,
        start_time: d.time("start-time")?,
        finish_time: d.time("finish-time")?,
        reason: d.opt_str("reason")?,
        keepalive_host: d.opt_str("keepalive-host")?,
        keepalive_time: d.time("keep-alive-time")?,
        proxy_ref: d.opt_str("proxy-ref")?,
        original_request: d.get("original-request").cloned(),
    })
}

pub(crate) fn allocation(what: &str, v: &Value) -> Result<JobAllocation> {
    let d = Doc::new(what, v)?;
    let mut connections = d
        .array("connections")?
        .iter()
        .map(|c| {
            let bad = || {
                wrong(
                    what,
                    Some("connections"),
                    "[[x, y], \"host\"] pairs",
                    Some(c),
                )
            };
            let Value::Array(pair) = c else {
                return Err(bad());
            };
            let [Value::Array(xy), Value::String(host)] = pair.as_slice() else {
                return Err(bad());
            };
            let xy: Vec<u32> = xy
                .iter()
                .map(|n| n.as_u64().and_then(|n| u32::try_from(n).ok()))
                .collect::<Option<_>>()
                .ok_or_else(bad)?;
            let [x, y] = xy.as_slice() else {
                return Err(bad());
            };
            Ok(Connection {
                chip: Chip { x: *x, y: *y },
                hostname: host.clone(),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    connections.sort();
    let mut boards = d
        .array("boards")?
        .iter()
        .map(|b| {
            let bad = || wrong(what, Some("boards"), "[x, y, z] triples", Some(b));
            let xyz: Vec<u32> = b
                .as_array()
                .ok_or_else(bad)?
                .iter()
                .map(|n| n.as_u64().and_then(|n| u32::try_from(n).ok()))
                .collect::<Option<_>>()
                .ok_or_else(bad)?;
            match xyz.as_slice() {
                [x, y, z] => Ok(Board::new(*x, *y, *z)),
                _ => Err(bad()),
            }
        })
        .collect::<Result<Vec<_>>>()?;
    boards.sort();
    Ok(JobAllocation {
        width: d.u32("width")?,
        height: d.u32("height")?,
        depth: d.u32("depth")?,
        machine_name: d.str("machine-name")?,
        connections,
        boards,
    })
}

/// The id at the end of a job URL (`…/jobs/1234` or `…/jobs/1234/`).
pub(crate) fn id_of_job_url(url: &str) -> Option<u64> {
    let path = url.split(['?', '#']).next()?;
    path.trim_end_matches('/').rsplit('/').next()?.parse().ok()
}

pub(crate) fn job_page(what: &str, v: &Value) -> Result<JobPage> {
    let d = Doc::new(what, v)?;
    let ids = d
        .array("jobs")?
        .iter()
        .map(|u| {
            u.as_str()
                .and_then(id_of_job_url)
                .ok_or_else(|| wrong(what, Some("jobs"), "job URLs", Some(u)))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(JobPage {
        ids,
        next: d.opt_str("next")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn times_and_durations() {
        assert_eq!(parse_instant("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(parse_instant("2021-10-11T12:13:14Z"), Some(1_633_954_394.0));
        assert_eq!(
            parse_instant("2021-10-11T13:13:14.5+01:00"),
            Some(1_633_954_394.5)
        );
        for bad in [
            "",
            "yesterday",
            "2021-13-01T00:00:00Z",
            "2021-10-11T25:00:00Z",
        ] {
            assert_eq!(parse_instant(bad), None, "{bad}");
        }
        assert_eq!(parse_duration_secs("PT60S"), Some(60.0));
        assert_eq!(parse_duration_secs("PT1M30.5S"), Some(90.5));
        assert_eq!(parse_duration_secs("P1D"), None);
        assert_eq!(iso_duration(60.0), "PT60S");
        assert_eq!(iso_duration(0.25), "PT0.25S");
    }

    #[test]
    fn documents_with_the_wrong_shape_name_the_field() {
        let e = job_info("GET jobs/3", 3, &json!({"state": 4})).unwrap_err();
        assert_eq!(
            e.to_string(),
            "unexpected reply from server: GET jobs/3: field 'state': expected a string, got 4"
        );
        let e = allocation("GET jobs/3/machine", &json!({"connections": [[1, "h"]]})).unwrap_err();
        assert!(e.to_string().contains("field 'connections'"), "{e}");
        assert!(job_page("GET jobs", &json!([])).is_err());
        assert_eq!(id_of_job_url("http://h/s/jobs/12/"), Some(12));
        let m = machine(
            "GET machines",
            &json!({"name": "m", "tags": ["a"], "width": 1, "height": 2,
                "dead-boards": [{"x": 0, "y": 0, "z": 1, "cabinet": null, "frame": null, "board": null, "address": null}],
                "dead-links": [[{"board": {"x": 0, "y": 0, "z": 0}, "direction": "NW"},
                                {"board": {"x": 0, "y": 1, "z": 0}, "direction": 3}]]}),
        )
        .expect("machine");
        assert_eq!(m.dead_boards[0].physical, None);
        assert_eq!(m.dead_links[0].from.1.name(), "NW");
        assert_eq!(m.dead_links[0].to.1, Direction(3));
    }
}
