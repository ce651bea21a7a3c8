//! The v2 JSON documents, times and durations (PROTOCOL_V2.md §1.5, §3),
//! with no sockets and no engine: request bodies in, response bodies out.
//!
//! Field names are kebab-case and fields are written in the Java server's
//! order. Which absent fields are left out and which are written as `null`
//! follows each Java class (noted per type). Request bodies reject unknown
//! fields with a 400 that names them, rather than the Java server's
//! unspecified answer.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

// ----- times and durations -----

/// An ISO-8601 UTC instant with whole seconds, as the Java server writes job
/// times: `2025-03-01T10:00:05Z`. Seconds before 1970 or beyond year 9999
/// are clamped.
pub(crate) fn instant(unix_secs: f64) -> String {
    // Clamped to 0000-01-01..9999-12-31 so the year stays four digits.
    let secs = if unix_secs.is_finite() {
        unix_secs.floor().clamp(0.0, 253_402_300_799.0)
    } else {
        0.0
    };
    #[allow(clippy::cast_possible_truncation)] // clamped just above
    let secs = secs as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The same with fractional seconds (nanoseconds, trailing zeros dropped),
/// as `Instant.toString` writes the login-failure timestamp.
pub(crate) fn instant_precise(unix_secs: f64) -> String {
    let whole = instant(unix_secs);
    let frac = unix_secs - unix_secs.floor();
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // 0..1e9
    let nanos = (frac * 1e9).round().clamp(0.0, 999_999_999.0) as u32;
    if nanos == 0 {
        return whole;
    }
    let digits = format!("{nanos:09}");
    format!(
        "{}.{}Z",
        whole.trim_end_matches('Z'),
        digits.trim_end_matches('0')
    )
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian
/// calendar (Howard Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    // Both are small positive numbers by construction.
    (
        y,
        u32::try_from(m).unwrap_or(1),
        u32::try_from(d).unwrap_or(1),
    )
}

/// The form `Date` headers take: `Sun, 06 Nov 1994 08:49:37 GMT`.
pub(crate) fn http_date(unix_secs: f64) -> String {
    let iso = instant(unix_secs);
    let secs = unix_secs.max(0.0).floor();
    #[allow(clippy::cast_possible_truncation)]
    let days = (secs / 86_400.0) as i64;
    // 1970-01-01 was a Thursday.
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"]
        [usize::try_from(days.rem_euclid(7)).unwrap_or(0)];
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let m: usize = iso[5..7].parse().unwrap_or(1);
    format!(
        "{weekday}, {} {} {} {} GMT",
        &iso[8..10],
        month[m.clamp(1, 12) - 1],
        &iso[..4],
        &iso[11..19]
    )
}

/// A signed duration in nanoseconds from an ISO-8601 duration as Java's
/// `Duration.parse` reads it: `PT30S`, `PT2M`, `P1DT1H`, `PT1.5S`, `-PT5S`
/// (letters in either case), or `None`.
pub(crate) fn parse_duration(text: &str) -> Option<i128> {
    let s = text.trim().to_ascii_uppercase();
    let (negative, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest.to_owned()),
        None => (false, s.strip_prefix('+').unwrap_or(&s).to_owned()),
    };
    let s = s.strip_prefix('P')?;
    let (date, time) = match s.split_once('T') {
        Some((d, t)) => {
            if t.is_empty() {
                return None;
            }
            (d, Some(t))
        }
        None => (s, None),
    };
    let mut total: i128 = 0;
    let mut any = false;
    if !date.is_empty() {
        let days = date.strip_suffix('D')?;
        total += signed_int(days)?.checked_mul(86_400 * 1_000_000_000)?;
        any = true;
    }
    if let Some(mut t) = time {
        for (unit, nanos) in [('H', 3_600_000_000_000i128), ('M', 60_000_000_000)] {
            if let Some(i) = t.find(unit) {
                total += signed_int(&t[..i])?.checked_mul(nanos)?;
                t = &t[i + 1..];
                any = true;
            }
        }
        if !t.is_empty() {
            let secs = t.strip_suffix('S')?;
            let (whole, frac) = match secs.split_once(['.', ',']) {
                Some((w, f)) => (w, f),
                None => (secs, ""),
            };
            if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let w = signed_int(whole)?;
            let f: i128 = if frac.is_empty() {
                0
            } else {
                format!("{frac:0<9}").parse().ok()?
            };
            let f = if whole.starts_with('-') { -f } else { f };
            total += w.checked_mul(1_000_000_000)? + f;
            any = true;
        }
    }
    if !any {
        return None;
    }
    Some(if negative { -total } else { total })
}

fn signed_int(s: &str) -> Option<i128> {
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    if digits.is_empty() || digits.len() > 18 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// A duration in seconds the way Jackson writes a `Duration` by default:
/// seconds with nine decimals, `120.000000000`.
pub(crate) fn jackson_seconds(secs: f64) -> Box<RawValue> {
    let text = if secs.is_finite() {
        format!("{secs:.9}")
    } else {
        "null".to_owned()
    };
    // A JSON number or `null` is always valid raw JSON; the default is
    // `null`.
    RawValue::from_string(text).unwrap_or_default()
}

// ----- responses -----

/// `GET {srv}`: the service description. Absent fields are left out.
#[derive(Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) struct ServiceDescription {
    pub version: VersionInfo,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jobs_ref: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub machines_ref: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csrf_header: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csrf_token: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) struct VersionInfo {
    pub major_version: u32,
    pub minor_version: u32,
    pub revision: u32,
}

/// A board as machine descriptions list it; nulls are written.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub(crate) struct BoardCoords {
    pub x: i32,
    pub y: i32,
    pub z: i32,
    pub cabinet: Option<i32>,
    pub frame: Option<i32>,
    pub board: Option<i32>,
    pub address: Option<String>,
}

/// One end of a down link: `{"board": …, "direction": "N"}`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub(crate) struct LinkEnd {
    pub board: BoardCoords,
    pub direction: &'static str,
}

/// `GET machines`: one machine. Nulls are written.
#[derive(Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) struct BriefMachine {
    pub name: String,
    pub tags: Vec<String>,
    pub uri: String,
    pub width: i32,
    pub height: i32,
    pub dead_boards: Vec<BoardCoords>,
    pub dead_links: Vec<(LinkEnd, LinkEnd)>,
}

#[derive(Debug, Serialize)]
pub(crate) struct MachinesResponse {
    pub machines: Vec<BriefMachine>,
}

/// `GET machines/{name}`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) struct MachineResponse {
    pub name: String,
    pub tags: Vec<String>,
    pub width: i32,
    pub height: i32,
    pub down_boards: Vec<BoardCoords>,
    pub down_links: Vec<(LinkEnd, LinkEnd)>,
    pub lookup_by_physical_board: String,
    pub lookup_by_logical_board: String,
    pub lookup_by_chip: String,
    pub lookup_by_address: String,
}

/// A where-is answer; absent fields are left out.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) struct WhereIsResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_ref: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_chip: Option<(i64, i64)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chip: Option<(i64, i64)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logical_board_coordinates: Option<(i32, i32, i32)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub machine: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub machine_ref: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub board_chip: Option<(i64, i64)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub physical_board_coordinates: Option<(i32, i32, Option<i32>)>,
}

/// `GET jobs`: one page; absent links are left out.
#[derive(Debug, Serialize)]
pub(crate) struct ListJobsResponse {
    pub jobs: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prev: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// `POST jobs` (201).
#[derive(Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) struct CreateJobResponse {
    pub job_id: u64,
    pub job_ref: String,
}

/// `GET jobs/{id}`: absent fields are left out.
#[derive(Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) struct JobStateResponse {
    pub state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    pub start_time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finish_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keepalive_host: Option<String>,
    pub keepalive_ref: String,
    pub machine_ref: String,
    pub power_ref: String,
    pub chip_ref: String,
    /// Only in states `POWER` and `READY`, with the proxy running.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_ref: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub original_request: Option<Box<RawValue>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_alive_time: Option<String>,
}

/// `GET jobs/{id}/machine`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) struct SubMachineResponse {
    pub width: i64,
    pub height: i64,
    pub depth: i64,
    pub machine_name: String,
    pub connections: Vec<((i64, i64), String)>,
    pub boards: Vec<(i32, i32, i32)>,
    pub power: String,
    pub machine_ref: String,
}

/// `GET jobs/{id}/machine/power`, and the body of a `POST` to it.
#[derive(Debug, Serialize)]
pub(crate) struct PowerResponse {
    pub power: &'static str,
}

/// `POST jobs/{id}/report-issue`.
#[derive(Debug, Serialize)]
pub(crate) struct IssueReportResponse {
    pub action: String,
}

/// The body of a failed form login (401).
#[derive(Debug, Serialize)]
pub(crate) struct AuthFailure {
    pub message: &'static str,
    pub timestamp: String,
}

/// Serialises a response document (plain data, so this cannot fail; an
/// empty object stands in if it somehow did).
pub(crate) fn to_json<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_else(|_| b"{}".to_vec())
}

// ----- requests -----

/// `POST jobs`. Every field is optional to the parser; the rules are
/// applied afterwards so that each failure gets the Java server's message.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub(crate) struct CreateJobRequest {
    pub owner: Option<String>,
    pub group: Option<String>,
    pub nmpi_collab: Option<String>,
    pub nmpi_job_id: Option<i64>,
    /// An ISO-8601 duration or a number of seconds; checked later.
    pub keepalive_interval: Option<Value>,
    pub num_boards: Option<i64>,
    pub dimensions: Option<Dimensions>,
    pub board: Option<SpecificBoard>,
    pub machine_name: Option<String>,
    pub tags: Option<Vec<String>>,
    pub max_dead_boards: Option<i64>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub(crate) struct Dimensions {
    pub width: i64,
    pub height: i64,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub(crate) struct SpecificBoard {
    pub x: Option<i64>,
    pub y: Option<i64>,
    pub z: Option<i64>,
    pub cabinet: Option<i64>,
    pub frame: Option<i64>,
    pub board: Option<i64>,
    pub address: Option<String>,
}

/// `POST jobs/{id}/machine/power`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PowerRequest {
    pub power: Option<String>,
}

/// `POST jobs/{id}/report-issue`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct IssueReportRequest {
    pub issue: Option<String>,
    pub boards: Option<Vec<ReportedBoard>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReportedBoard {
    /// Accepted, as the Java server does, but the job's own machine is
    /// the one meant.
    #[allow(dead_code)]
    pub machine: Option<String>,
    pub chip: Option<(i64, i64)>,
    pub x: Option<i64>,
    pub y: Option<i64>,
    pub z: Option<i64>,
    pub cabinet: Option<i64>,
    pub frame: Option<i64>,
    pub board: Option<i64>,
    pub address: Option<String>,
}

/// Parses a JSON request body, with an error message for the client.
pub(crate) fn parse_body<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| format!("bad JSON in the request body: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants() {
        assert_eq!(instant(0.0), "1970-01-01T00:00:00Z");
        assert_eq!(instant(1_633_954_394.9), "2021-10-11T12:13:14Z");
        assert_eq!(instant(951_782_400.0), "2000-02-29T00:00:00Z");
        assert_eq!(instant(-5.0), "1970-01-01T00:00:00Z");
        assert_eq!(instant(f64::NAN), "1970-01-01T00:00:00Z");
        assert_eq!(instant(1e300), "9999-12-31T23:59:59Z");
        assert_eq!(instant_precise(1_633_954_394.5), "2021-10-11T12:13:14.5Z");
        assert_eq!(instant_precise(1_633_954_394.0), "2021-10-11T12:13:14Z");
        assert_eq!(http_date(784_111_777.0), "Sun, 06 Nov 1994 08:49:37 GMT");
    }

    #[test]
    fn durations_in_and_out() {
        let s = |n: i128| n * 1_000_000_000;
        assert_eq!(parse_duration("PT30S"), Some(s(30)));
        assert_eq!(parse_duration("pt2m"), Some(s(120)));
        assert_eq!(parse_duration("PT1M30S"), Some(s(90)));
        assert_eq!(parse_duration("P1DT1H"), Some(s(90_000)));
        assert_eq!(parse_duration("PT1.5S"), Some(1_500_000_000));
        assert_eq!(parse_duration("-PT5S"), Some(s(-5)));
        assert_eq!(parse_duration("PT-5S"), Some(s(-5)));
        for bad in [
            "",
            "P",
            "PT",
            "30",
            "PT30",
            "PTS",
            "PT1.1234567891S",
            "P1H",
            "PT1S2M",
            "PT99999999999999999999H",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
        assert_eq!(jackson_seconds(120.0).get(), "120.000000000");
    }

    #[test]
    fn documents_have_the_java_field_names() {
        let w = WhereIsResponse {
            job_id: Some(1234),
            chip: Some((44, 52)),
            physical_board_coordinates: Some((0, 3, None)),
            ..WhereIsResponse::default()
        };
        assert_eq!(
            String::from_utf8(to_json(&w)).unwrap_or_default(),
            r#"{"job-id":1234,"chip":[44,52],"physical-board-coordinates":[0,3,null]}"#
        );
        let r: Result<CreateJobRequest, _> = parse_body(
            br#"{"num-boards": 3, "tags": ["default"], "keepalive-interval": "PT120S"}"#,
        );
        assert!(r.is_ok_and(|r| r.num_boards == Some(3)));
        let r: Result<CreateJobRequest, _> = parse_body(br#"{"min-ratio": 0.5}"#);
        assert!(r.is_err_and(|e| e.contains("unknown field `min-ratio`")));
        let end = LinkEnd {
            board: BoardCoords {
                x: 0,
                y: 1,
                z: 2,
                cabinet: Some(0),
                frame: Some(1),
                board: None,
                address: None,
            },
            direction: "N",
        };
        assert_eq!(
            String::from_utf8(to_json(&(end.clone(), end))).unwrap_or_default(),
            r#"[{"board":{"x":0,"y":1,"z":2,"cabinet":0,"frame":1,"board":null,"address":null},"direction":"N"},{"board":{"x":0,"y":1,"z":2,"cabinet":0,"frame":1,"board":null,"address":null},"direction":"N"}]"#
        );
    }
}
