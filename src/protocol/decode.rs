//! One decoder for each kind of reply: untrusted JSON into the typed data
//! of [`crate::types`], with errors that name the command, the field, what
//! was expected and what came.
//!
//! The two server dialects disagree on representation (`null` vs `false`
//! vs `""` for "none", integers vs floats, `NaN` tokens), so each decoder
//! is lenient where they differ and strict everywhere else. A reply
//! object's fields are read into fixed slots as they stream past ([`Slots`]),
//! rather than into a map, and then checked one by one; lists of jobs and
//! machines are converted item by item, so the raw form of a whole list never
//! exists at once.
//!
//! The same decoder reads a reply straight from the line and from a
//! [`Value`] that was already parsed, which is what the fuzzing hooks use.

use std::fmt;

use serde::Deserialize;
use serde::de::{
    self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor,
    value::{MapAccessDeserializer, SeqAccessDeserializer},
};
use serde_json::{Map, Value};

use crate::error::ProtocolError;
use crate::types::{
    Board, BoardPosition, Chip, Connection, DeadLink, JobDescription, JobMachineInfo, JobState,
    JobStateInfo, MachineDescription, Number, WhereIs,
};

type Checked<T> = Result<T, ProtocolError>;

/// What the value of `{"return": …}` is decoded into, for one command.
pub(crate) trait Reply: Sized {
    /// Reads the value from `d`. A value of the wrong shape is an
    /// `Ok(Err(…))` naming `command`; only malformed JSON is a `D::Error`.
    fn decode<'de, D: Deserializer<'de>>(d: D, command: &str) -> Result<Checked<Self>, D::Error>;
}

/// A reply whose value is not used (`job_keepalive`, `destroy_job`, …).
#[derive(Debug)]
pub(crate) struct Ignored;

impl Reply for Ignored {
    fn decode<'de, D: Deserializer<'de>>(d: D, _: &str) -> Result<Checked<Self>, D::Error> {
        IgnoredAny::deserialize(d).map(|_| Ok(Ignored))
    }
}

impl Reply for Value {
    fn decode<'de, D: Deserializer<'de>>(d: D, _: &str) -> Result<Checked<Self>, D::Error> {
        Value::deserialize(d).map(Ok)
    }
}

/// Replies small enough that reading them into a [`Value`] first costs
/// nothing worth saving: decoded from that value by `$from`.
macro_rules! via_value {
    ($($t:ty => $from:path,)*) => {$(
        impl Reply for $t {
            fn decode<'de, D: Deserializer<'de>>(
                d: D,
                command: &str,
            ) -> Result<Checked<Self>, D::Error> {
                Value::deserialize(d).map(|v| $from(&v, command))
            }
        }
    )*};
}

via_value! {
    String => version,
    u64 => job_id,
    JobStateInfo => job_state,
    Option<JobMachineInfo> => machine_info,
    Option<WhereIs> => where_is,
    Option<Board> => board_reply,
    Option<BoardPosition> => position_reply,
}

// ---- values ---------------------------------------------------------------

/// The JSON type name of a value, for error messages.
pub(crate) fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// A value's JSON, cut short if long.
fn shown(v: &Value) -> String {
    let mut s = v.to_string();
    if s.len() > 60 {
        let mut cut = 57;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str("...");
    }
    s
}

/// "a string \"x\"", "a number 5", "null", "a boolean true".
fn described(v: &Value) -> String {
    match v {
        Value::Null => "null".to_owned(),
        other => format!("{} {}", kind_of(other), shown(other)),
    }
}

fn wrong(command: &str, field: &str, expected: &str, got: &Value) -> ProtocolError {
    ProtocolError {
        command: Some(command.to_owned()),
        field: Some(field.to_owned()),
        expected: expected.to_owned(),
        got: Some(described(got)),
    }
}

/// The reply as a whole is not what `command` answers with.
fn wrong_reply(command: &str, expected: &str, got: String) -> ProtocolError {
    ProtocolError {
        command: Some(command.to_owned()),
        field: None,
        expected: expected.to_owned(),
        got: Some(got),
    }
}

/// A non-negative integer; integral floats such as `3.0` are accepted.
pub(crate) fn as_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64().or_else(|| {
            let f = n.as_f64()?;
            (f >= 0.0 && f.fract() == 0.0 && f < 1.8e19).then_some(f as u64)
        }),
        _ => None,
    }
}

fn as_u32(v: &Value) -> Option<u32> {
    as_u64(v).and_then(|n| u32::try_from(n).ok())
}

/// A float, including the `"NaN"`/`"Infinity"` stand-ins that
/// [`decode_line`](super::decode_line) puts in place of the Python server's
/// bare tokens.
pub(crate) fn as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => match s.as_str() {
            "NaN" => Some(f64::NAN),
            "Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            _ => None,
        },
        _ => None,
    }
}

/// A number, kept as the integer or float it was sent as.
pub(crate) fn as_number(v: &Value) -> Option<Number> {
    match v {
        Value::Number(n) if !n.is_f64() => n
            .as_i64()
            .map(Number::Int)
            .or_else(|| n.as_f64().map(Number::Float)),
        other => as_f64(other).map(Number::Float),
    }
}

fn triple(v: &Value) -> Option<[u32; 3]> {
    match v.as_array()?.as_slice() {
        [a, b, c] => Some([as_u32(a)?, as_u32(b)?, as_u32(c)?]),
        _ => None,
    }
}

/// `[x, y, z]`.
pub(crate) fn board(v: &Value) -> Option<Board> {
    triple(v).map(|[x, y, z]| Board { x, y, z })
}

/// `[cabinet, frame, board]`.
pub(crate) fn position(v: &Value) -> Option<BoardPosition> {
    triple(v).map(|[cabinet, frame, board]| BoardPosition {
        cabinet,
        frame,
        board,
    })
}

/// `[x, y]`.
pub(crate) fn chip(v: &Value) -> Option<Chip> {
    match v.as_array()?.as_slice() {
        [x, y] => Some(Chip {
            x: as_u32(x)?,
            y: as_u32(y)?,
        }),
        _ => None,
    }
}

/// `[x, y, z, link]`.
fn dead_link(v: &Value) -> Option<DeadLink> {
    match v.as_array()?.as_slice() {
        [x, y, z, link] => Some(DeadLink {
            board: Board {
                x: as_u32(x)?,
                y: as_u32(y)?,
                z: as_u32(z)?,
            },
            link: as_u32(link)?,
        }),
        _ => None,
    }
}

/// A notification's list of job ids.
pub(crate) fn id_list(v: &Value, kind: &str) -> Checked<Vec<u64>> {
    let items = v
        .as_array()
        .ok_or_else(|| wrong(kind, kind, "a list of job ids", v))?;
    items
        .iter()
        .map(|i| as_u64(i).ok_or_else(|| wrong(kind, kind, "a list of job ids", i)))
        .collect()
}

/// A notification's list of machine names.
pub(crate) fn string_list(v: &Value, kind: &str) -> Checked<Vec<String>> {
    let items = v
        .as_array()
        .ok_or_else(|| wrong(kind, kind, "a list of strings", v))?;
    items
        .iter()
        .map(|i| match i {
            Value::String(s) => Ok(s.clone()),
            other => Err(wrong(kind, kind, "a list of strings", other)),
        })
        .collect()
}

// ---- reply objects ----------------------------------------------------------

/// The fields of one reply object that a decoder reads, each as the JSON it
/// came as, in the order of the decoder's field names; `null` counts as
/// missing, other fields are skipped unread, and of a repeated field the
/// last one counts.
pub(crate) struct Slots<const N: usize> {
    values: [Option<Value>; N],
}

/// Reads a [`Slots`] (`Ok`), or the whole value if it is not an object
/// (`Err`, for the error message).
struct SlotsSeed<const N: usize> {
    names: &'static [&'static str; N],
}

impl<'de, const N: usize> DeserializeSeed<'de> for SlotsSeed<N> {
    type Value = Result<Slots<N>, Value>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

/// A key's slot, if the decoder reads that field.
struct KeySeed<const N: usize> {
    names: &'static [&'static str; N],
}

impl<'de, const N: usize> DeserializeSeed<'de> for KeySeed<N> {
    type Value = Option<usize>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<usize>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<const N: usize> Visitor<'_> for KeySeed<N> {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Option<usize>, E> {
        Ok(self.names.iter().position(|n| *n == key))
    }
}

impl<'de, const N: usize> Visitor<'de> for SlotsSeed<N> {
    type Value = Result<Slots<N>, Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut values: [Option<Value>; N] = std::array::from_fn(|_| None);
        while let Some(slot) = map.next_key_seed(KeySeed { names: self.names })? {
            match slot {
                Some(i) => values[i] = Some(map.next_value::<Value>()?).filter(|v| !v.is_null()),
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Ok(Slots { values }))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        Value::deserialize(SeqAccessDeserializer::new(seq)).map(|v| self.other(v))
    }

    visit_other_values!();
}

impl<const N: usize> SlotsSeed<N> {
    /// Not an object: the value itself, for the error to show.
    fn other(&self, v: Value) -> Result<Slots<N>, Value> {
        Err(v)
    }
}

/// The fields of a reply object, with the command's name for errors. Each
/// field is taken out as it is read, so that strings, lists and objects
/// move into the typed reply rather than being copied.
pub(crate) struct Fields<'c, const N: usize> {
    values: [Option<Value>; N],
    names: &'static [&'static str; N],
    command: &'c str,
}

impl<'c, const N: usize> Fields<'c, N> {
    /// The fields of `slots`, or the error for a reply that was no object.
    fn of(
        slots: Result<Slots<N>, Value>,
        names: &'static [&'static str; N],
        command: &'c str,
    ) -> Checked<Fields<'c, N>> {
        match slots {
            Ok(Slots { values }) => Ok(Fields {
                values,
                names,
                command,
            }),
            Err(other) => Err(wrong_reply(command, "an object", described(&other))),
        }
    }

    fn slot(&mut self, field: &str) -> Option<&mut Option<Value>> {
        let i = self.names.iter().position(|n| *n == field)?;
        self.values.get_mut(i)
    }

    /// Whether a field is there (and not `null`).
    fn has(&mut self, field: &str) -> bool {
        self.slot(field).is_some_and(|v| v.is_some())
    }

    /// A field's value, taken out; `None` if it is missing or `null`.
    fn take(&mut self, field: &str) -> Option<Value> {
        self.slot(field).and_then(Option::take)
    }

    fn missing(&self, field: &str) -> ProtocolError {
        ProtocolError {
            command: Some(self.command.to_owned()),
            field: Some(field.to_owned()),
            expected: "a value".into(),
            got: None,
        }
    }

    fn wrong(&self, field: &str, expected: &str, got: &Value) -> ProtocolError {
        wrong(self.command, field, expected, got)
    }

    fn required(&mut self, field: &str) -> Checked<Value> {
        self.take(field).ok_or_else(|| self.missing(field))
    }

    /// A field, if there, read by `read`, which must accept it as
    /// `expected`.
    fn opt<T>(
        &mut self,
        field: &str,
        expected: &str,
        read: impl FnOnce(&Value) -> Option<T>,
    ) -> Checked<Option<T>> {
        self.take(field)
            .map(|v| read(&v).ok_or_else(|| self.wrong(field, expected, &v)))
            .transpose()
    }

    /// A field that must be there, read by `read`.
    fn req<T>(
        &mut self,
        field: &str,
        expected: &str,
        read: impl FnOnce(&Value) -> Option<T>,
    ) -> Checked<T> {
        self.opt(field, expected, read)?
            .ok_or_else(|| self.missing(field))
    }

    fn u64(&mut self, field: &str) -> Checked<u64> {
        self.req(field, "a non-negative integer", as_u64)
    }

    fn u32(&mut self, field: &str) -> Checked<u32> {
        self.req(field, "a non-negative integer", as_u32)
    }

    fn opt_u64(&mut self, field: &str) -> Checked<Option<u64>> {
        self.opt(field, "a non-negative integer", as_u64)
    }

    fn opt_f64(&mut self, field: &str) -> Checked<Option<f64>> {
        self.opt(field, "a number", as_f64)
    }

    fn opt_number(&mut self, field: &str) -> Checked<Option<Number>> {
        self.opt(field, "a number", as_number)
    }

    fn opt_bool(&mut self, field: &str) -> Checked<Option<bool>> {
        self.opt(field, "a boolean", Value::as_bool)
    }

    /// A string; `null`, `false` and `""` all mean "none" (the servers
    /// disagree on which to send).
    fn opt_string(&mut self, field: &str) -> Checked<Option<String>> {
        match self.take(field) {
            None | Some(Value::Bool(false)) => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(v) => Err(self.wrong(field, "a string", &v)),
        }
    }

    fn string(&mut self, field: &str) -> Checked<String> {
        match self.required(field)? {
            Value::String(s) => Ok(s),
            v => Err(self.wrong(field, "a string", &v)),
        }
    }

    fn opt_list(&mut self, field: &str) -> Checked<Option<Vec<Value>>> {
        match self.take(field) {
            None => Ok(None),
            Some(Value::Array(items)) => Ok(Some(items)),
            Some(v) => Err(self.wrong(field, "a list", &v)),
        }
    }

    fn list(&mut self, field: &str) -> Checked<Vec<Value>> {
        self.opt_list(field)?.ok_or_else(|| self.missing(field))
    }

    fn opt_object(&mut self, field: &str) -> Checked<Option<Map<String, Value>>> {
        match self.take(field) {
            None => Ok(None),
            Some(Value::Object(m)) => Ok(Some(m)),
            Some(v) => Err(self.wrong(field, "an object", &v)),
        }
    }

    /// A list of items read by `item`, each of which must be `expected`.
    fn items<T>(
        &mut self,
        field: &str,
        expected: &str,
        item: fn(&Value) -> Option<T>,
    ) -> Checked<Vec<T>> {
        self.opt_list(field)?
            .map(|items| {
                items
                    .iter()
                    .map(|v| item(v).ok_or_else(|| self.wrong(field, expected, v)))
                    .collect()
            })
            .transpose()
            .map(Option::unwrap_or_default)
    }

    /// A list of boards, sorted.
    fn boards(&mut self, field: &str) -> Checked<Vec<Board>> {
        let mut boards = self.items(field, "a list of [x, y, z]", board)?;
        boards.sort_unstable();
        Ok(boards)
    }

    fn board(&mut self, field: &str) -> Checked<Board> {
        self.req(field, "[x, y, z]", board)
    }

    fn chip(&mut self, field: &str) -> Checked<Chip> {
        self.req(field, "[x, y]", chip)
    }

    fn opt_chip(&mut self, field: &str) -> Checked<Option<Chip>> {
        self.opt(field, "[x, y]", chip)
    }
}

/// Reads a reply object's fields from `v`.
fn slots_of<const N: usize>(
    v: &Value,
    names: &'static [&'static str; N],
) -> Result<Slots<N>, Value> {
    // Reading from a `Value` cannot fail: there is no syntax to get wrong.
    SlotsSeed { names }
        .deserialize(v)
        .unwrap_or_else(|_| Err(v.clone()))
}

// ---- the replies ------------------------------------------------------------

fn version(v: &Value, command: &str) -> Checked<String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        other => Err(wrong_reply(command, "a string", other.to_string())),
    }
}

fn job_id(v: &Value, command: &str) -> Checked<u64> {
    as_u64(v).ok_or_else(|| wrong_reply(command, "a job id", v.to_string()))
}

fn board_reply(v: &Value, command: &str) -> Checked<Option<Board>> {
    match v {
        Value::Null => Ok(None),
        v => board(v)
            .map(Some)
            .ok_or_else(|| wrong_reply(command, "[x, y, z]", v.to_string())),
    }
}

fn position_reply(v: &Value, command: &str) -> Checked<Option<BoardPosition>> {
    match v {
        Value::Null => Ok(None),
        v => position(v)
            .map(Some)
            .ok_or_else(|| wrong_reply(command, "[cabinet, frame, board]", v.to_string())),
    }
}

const JOB_STATE: [&str; 6] = [
    "state",
    "power",
    "keepalive",
    "reason",
    "start_time",
    "keepalivehost",
];

/// `get_job_state`.
pub(crate) fn job_state(v: &Value, command: &str) -> Checked<JobStateInfo> {
    let mut f = Fields::of(slots_of(v, &JOB_STATE), &JOB_STATE, command)?;
    let state = JobState::from_code(f.u64("state")?);
    // The Java service reports `power: false` for jobs without boards;
    // normalise to the Python server's "no boards, no power state".
    let power = match state {
        JobState::Power | JobState::Ready => f.opt_bool("power")?,
        _ => None,
    };
    Ok(JobStateInfo {
        state,
        power,
        keepalive: f.opt_f64("keepalive")?,
        reason: f.opt_string("reason")?,
        start_time: f.opt_f64("start_time")?,
        keepalive_host: f.opt_string("keepalivehost")?,
    })
}

const MACHINE_INFO: [&str; 5] = ["width", "height", "connections", "machine_name", "boards"];

/// `get_job_machine_info`: `None` for a job without boards.
pub(crate) fn machine_info(v: &Value, command: &str) -> Checked<Option<JobMachineInfo>> {
    let mut f = Fields::of(slots_of(v, &MACHINE_INFO), &MACHINE_INFO, command)?;
    // The Python server answers all-null for a job without boards.
    if !f.has("machine_name") && !f.has("boards") {
        return Ok(None);
    }
    let mut connections = f
        .list("connections")?
        .into_iter()
        .map(|c| {
            match c {
                Value::Array(pair) => match <[Value; 2]>::try_from(pair) {
                    Ok([xy, Value::String(hostname)]) => match chip(&xy) {
                        Some(chip) => Ok(Connection { chip, hostname }),
                        None => Err(Value::Array(vec![xy, Value::String(hostname)])),
                    },
                    Ok(pair) => Err(Value::Array(pair.into())),
                    Err(items) => Err(Value::Array(items)),
                },
                other => Err(other),
            }
            .map_err(|c| f.wrong("connections", "a list of [[x, y], hostname]", &c))
        })
        .collect::<Checked<Vec<_>>>()?;
    connections.sort_unstable();
    Ok(Some(JobMachineInfo {
        width: f.u32("width")?,
        height: f.u32("height")?,
        connections,
        machine_name: f.string("machine_name")?,
        boards: f.boards("boards")?,
    }))
}

const WHERE_IS: [&str; 7] = [
    "machine",
    "logical",
    "physical",
    "chip",
    "board_chip",
    "job_id",
    "job_chip",
];

/// `where_is`: `None` when nothing is there.
pub(crate) fn where_is(v: &Value, command: &str) -> Checked<Option<WhereIs>> {
    if v.is_null() {
        return Ok(None);
    }
    let mut f = Fields::of(slots_of(v, &WHERE_IS), &WHERE_IS, command)?;
    let physical = f.required("physical")?;
    Ok(Some(WhereIs {
        machine: f.string("machine")?,
        logical: f.board("logical")?,
        physical: position(&physical)
            .ok_or_else(|| f.wrong("physical", "[cabinet, frame, board]", &physical))?,
        chip: f.chip("chip")?,
        board_chip: f.chip("board_chip")?,
        job_id: f.opt_u64("job_id")?,
        job_chip: f.opt_chip("job_chip")?,
    }))
}

const JOB: [&str; 12] = [
    "job_id",
    "owner",
    "start_time",
    "keepalive",
    "state",
    "power",
    "args",
    "kwargs",
    "allocated_machine_name",
    "boards",
    "keepalivehost",
    "reason",
];

/// One entry of `list_jobs`.
fn job_description(slots: Result<Slots<12>, Value>, command: &str) -> Checked<JobDescription> {
    let mut f = Fields::of(slots, &JOB, command)?;
    Ok(JobDescription {
        job_id: f.u64("job_id")?,
        owner: f.opt_string("owner")?,
        start_time: f.opt_f64("start_time")?,
        keepalive: f.opt_number("keepalive")?,
        state: JobState::from_code(f.u64("state")?),
        power: f.opt_bool("power")?,
        args: f.opt_list("args")?.unwrap_or_default(),
        kwargs: f.opt_object("kwargs")?.unwrap_or_default(),
        allocated_machine_name: f.opt_string("allocated_machine_name")?,
        boards: f.boards("boards")?,
        keepalive_host: f.opt_string("keepalivehost")?,
        reason: f.opt_string("reason")?,
        finish_time: None,
    })
}

const MACHINE: [&str; 6] = [
    "name",
    "tags",
    "width",
    "height",
    "dead_boards",
    "dead_links",
];

/// One entry of `list_machines`.
fn machine_description(
    slots: Result<Slots<6>, Value>,
    command: &str,
) -> Checked<MachineDescription> {
    let mut f = Fields::of(slots, &MACHINE, command)?;
    let tags = f.items("tags", "a list of strings", |t| {
        t.as_str().map(str::to_owned)
    })?;
    let mut dead_links = f.items("dead_links", "a list of [x, y, z, link]", dead_link)?;
    dead_links.sort_unstable();
    Ok(MachineDescription {
        name: f.string("name")?,
        tags,
        width: f.u32("width")?,
        height: f.u32("height")?,
        dead_boards: f.boards("dead_boards")?,
        dead_links,
    })
}

/// Every field a reply decoder reads, once each, in the decoders' order:
/// what the property tests break one at a time.
#[cfg(any(test, fuzzing))]
pub(crate) fn field_names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = Vec::new();
    for name in JOB_STATE
        .iter()
        .chain(&MACHINE_INFO)
        .chain(&JOB)
        .chain(&MACHINE)
        .chain(&WHERE_IS)
    {
        if !names.contains(name) {
            names.push(name);
        }
    }
    names
}

/// A list reply whose items are objects read through `names` and converted
/// by `item` as soon as each is read.
struct ListSeed<'c, T, const N: usize> {
    command: &'c str,
    names: &'static [&'static str; N],
    item: fn(Result<Slots<N>, Value>, &str) -> Checked<T>,
}

impl<'de, T, const N: usize> Visitor<'de> for ListSeed<'_, T, N> {
    type Value = Checked<Vec<T>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(slots) = seq.next_element_seed(SlotsSeed { names: self.names })? {
            match (self.item)(slots, self.command) {
                Ok(item) => items.push(item),
                Err(e) => {
                    // The line must still be read to its end.
                    while seq.next_element::<IgnoredAny>()?.is_some() {}
                    return Ok(Err(e));
                }
            }
        }
        Ok(Ok(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        Value::deserialize(MapAccessDeserializer::new(map)).map(|v| self.other(v))
    }

    visit_other_values!();
}

impl<T, const N: usize> ListSeed<'_, T, N> {
    /// Not a list: the error, showing what came instead.
    fn other(&self, v: Value) -> Checked<Vec<T>> {
        Err(wrong_reply(self.command, "a list", described(&v)))
    }
}

impl Reply for Vec<JobDescription> {
    fn decode<'de, D: Deserializer<'de>>(d: D, command: &str) -> Result<Checked<Self>, D::Error> {
        d.deserialize_any(ListSeed {
            command,
            names: &JOB,
            item: job_description,
        })
    }
}

impl Reply for Vec<MachineDescription> {
    fn decode<'de, D: Deserializer<'de>>(d: D, command: &str) -> Result<Checked<Self>, D::Error> {
        d.deserialize_any(ListSeed {
            command,
            names: &MACHINE,
            item: machine_description,
        })
    }
}

/// Decodes `v` as the reply to `command`, as the client would read it from
/// `{"return": v}`.
#[cfg(any(test, fuzzing))]
pub(crate) fn reply_from_value<R: Reply>(v: &Value, command: &str) -> Checked<R> {
    // Reading from a `Value` cannot fail for want of syntax; a `Value` that
    // serde cannot even walk is no reply either.
    R::decode(v, command).unwrap_or_else(|e| Err(wrong_reply(command, "a reply", e.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Incoming, decode_line};
    use serde_json::json;

    fn ret(line: &str) -> Value {
        match decode_line(line.as_bytes()) {
            Ok(Incoming::Return(v)) => v,
            other => panic!("not a return: {other:?}"),
        }
    }

    fn list_jobs(v: &Value) -> Checked<Vec<JobDescription>> {
        reply_from_value(v, "list_jobs")
    }

    fn list_machines(v: &Value) -> Checked<Vec<MachineDescription>> {
        reply_from_value(v, "list_machines")
    }

    #[test]
    fn job_state_python_dialect() -> Checked<()> {
        let v = ret(
            r#"{"return": {"state": 3, "power": true, "keepalive": 60.0, "reason": null, "start_time": 1700000000.5, "keepalivehost": "10.0.0.1"}}"#,
        );
        let s = job_state(&v, "get_job_state")?;
        assert_eq!(s.state, JobState::Ready);
        assert_eq!(s.power, Some(true));
        assert_eq!(s.keepalive, Some(60.0));
        assert_eq!(s.reason, None);
        assert_eq!(s.start_time, Some(1_700_000_000.5));
        assert_eq!(s.keepalive_host.as_deref(), Some("10.0.0.1"));
        Ok(())
    }

    #[test]
    fn job_state_java_dialect() -> Checked<()> {
        let v = ret(
            r#"{"return":{"state":1,"power":false,"keepalive":1.69E9,"reason":"","start_time":1.690000000123E9,"keepalivehost":""}}"#,
        );
        let s = job_state(&v, "get_job_state")?;
        assert_eq!(s.state, JobState::Queued);
        assert_eq!(s.power, None, "no boards, so no power state");
        assert_eq!(s.keepalive, Some(1.69e9));
        assert_eq!(s.reason, None);
        assert_eq!(s.keepalive_host, None);
        Ok(())
    }

    #[test]
    fn job_state_non_finite_and_integers() -> Checked<()> {
        let v = ret(
            r#"{"return": {"state": 2, "power": false, "keepalive": Infinity, "reason": null, "start_time": NaN, "keepalivehost": null}}"#,
        );
        let s = job_state(&v, "get_job_state")?;
        assert_eq!(s.keepalive, Some(f64::INFINITY));
        assert!(s.start_time.is_some_and(f64::is_nan));
        let v = ret(r#"{"return": {"state": 3.0, "keepalive": 60}}"#);
        let s = job_state(&v, "get_job_state")?;
        assert_eq!(s.state, JobState::Ready);
        assert_eq!(s.keepalive, Some(60.0));
        Ok(())
    }

    #[test]
    fn job_state_errors_name_the_field() {
        let err = job_state(&json!({"state": "ready"}), "get_job_state").unwrap_err();
        assert_eq!(
            (
                err.command.as_deref(),
                err.field.as_deref(),
                err.expected.as_str()
            ),
            (
                Some("get_job_state"),
                Some("state"),
                "a non-negative integer"
            )
        );
        assert_eq!(err.got.as_deref(), Some("a string \"ready\""));
        assert!(
            err.to_string().contains("get_job_state: field 'state'"),
            "{err}"
        );
        let err = job_state(&json!({}), "get_job_state").unwrap_err();
        assert_eq!(
            (err.field.as_deref(), err.got.as_deref()),
            (Some("state"), None)
        );
        assert!(err.to_string().contains("'state' is missing"), "{err}");
        let err = job_state(&json!({"state": 3, "power": "on"}), "get_job_state").unwrap_err();
        assert_eq!(err.field.as_deref(), Some("power"));
        assert!(err.to_string().contains("'power'"), "{err}");
        let err = job_state(&json!([1]), "get_job_state").unwrap_err();
        assert_eq!(
            (err.field.as_deref(), err.expected.as_str()),
            (None, "an object")
        );
        assert!(err.to_string().contains("expected an object"), "{err}");
    }

    #[test]
    fn unrecognised_state_survives() -> Checked<()> {
        let s = job_state(&json!({"state": 9}), "get_job_state")?;
        assert_eq!(s.state, JobState::Unrecognised(9));
        assert_eq!(s.state.to_string(), "9");
        Ok(())
    }

    #[test]
    fn machine_info_sorted_and_nullable() -> Checked<()> {
        let v = ret(
            r#"{"return": {"width": 16, "height": 16, "connections": [[[8, 4], "b"], [[0, 0], "a"], [[4, 8], "c"]], "machine_name": "m", "boards": [[0, 1, 2], [0, 1, 0], [0, 1, 1]]}}"#,
        );
        let info = machine_info(&v, "get_job_machine_info")?.expect("allocated");
        assert_eq!(info.hostname(), Some("a"));
        assert_eq!(info.connections[1].chip, Chip { x: 4, y: 8 });
        assert_eq!(
            info.boards,
            vec![
                Board::new(0, 1, 0),
                Board::new(0, 1, 1),
                Board::new(0, 1, 2)
            ]
        );
        let v = json!({"width": null, "height": null, "connections": null, "machine_name": null, "boards": null});
        assert_eq!(machine_info(&v, "get_job_machine_info")?, None);
        let err = machine_info(&json!({"width": 8, "height": 8, "connections": [[0, "a"]], "machine_name": "m", "boards": []}), "get_job_machine_info")
            .unwrap_err();
        assert_eq!(err.field.as_deref(), Some("connections"));
        assert!(err.to_string().contains("'connections'"), "{err}");
        Ok(())
    }

    #[test]
    fn list_jobs_both_dialects() -> Checked<()> {
        let py = ret(
            r#"{"return": [{"job_id": 1, "owner": "me", "start_time": 1.5, "keepalive": 5, "state": 1, "power": null, "args": [3], "kwargs": {"tags": ["default"]}, "allocated_machine_name": null, "boards": null, "keepalivehost": ""}]}"#,
        );
        let jobs = list_jobs(&py)?;
        assert_eq!(jobs[0].keepalive, Some(Number::Int(5)));
        assert!(jobs[0].boards.is_empty());
        assert_eq!(jobs[0].keepalive_host, None);
        assert_eq!(jobs[0].args, vec![json!(3)]);
        let java = ret(
            r#"{"return":[{"job_id":2,"owner":"<Hidden>","start_time":1.69E9,"keepalive":60.0,"state":3,"power":true,"args":[],"kwargs":{"owner":"x","keepalive":60.0},"allocated_machine_name":"m","boards":[[1,0,0]],"keepalivehost":"<Hidden>","reason":""}]}"#,
        );
        let jobs = list_jobs(&java)?;
        assert_eq!(jobs[0].keepalive, Some(Number::Float(60.0)));
        assert_eq!(jobs[0].boards, vec![Board::new(1, 0, 0)]);
        assert_eq!(jobs[0].reason, None);
        let err = list_jobs(&json!({})).unwrap_err();
        assert_eq!(
            (err.expected.as_str(), err.got.as_deref()),
            ("a list", Some("an object {}"))
        );
        Ok(())
    }

    #[test]
    fn list_machines_decodes() -> Checked<()> {
        let v = json!([{"name": "m", "tags": ["default"], "width": 2, "height": 2, "dead_boards": [[0, 0, 1]], "dead_links": [[1, 1, 1, 2]]}]);
        let ms = list_machines(&v)?;
        assert_eq!(ms[0].num_boards(), 11);
        assert_eq!(ms[0].dead_links[0].link, 2);
        let bad = json!([{"name": "m", "tags": ["default"], "width": 2, "height": 2, "dead_boards": [], "dead_links": [[1, 1]]}]);
        let err = list_machines(&bad).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("dead_links"));
        assert_eq!(err.expected, "a list of [x, y, z, link]");
        assert!(err.to_string().contains("'dead_links'"), "{err}");
        Ok(())
    }

    #[test]
    fn where_is_decodes() -> Checked<()> {
        let v = json!({"machine": "m", "logical": [1, 0, 1], "physical": [0, 0, 2], "chip": [3, 11], "board_chip": [7, 7], "job_id": 4, "job_chip": [15, 11]});
        let w = where_is(&v, "where_is")?.expect("found");
        assert_eq!(w.job_id, Some(4));
        assert_eq!(w.physical.board, 2);
        assert_eq!(where_is(&Value::Null, "where_is")?, None);
        Ok(())
    }

    /// A `list_jobs` reply as read, if the line was a reply.
    type Read = Option<Checked<Vec<JobDescription>>>;

    /// `list_jobs` read from the line, and from the line's value once parsed:
    /// the same decoder on two inputs.
    fn both_ways(line: &str) -> (Read, Read) {
        let streamed = match crate::protocol::decode_line_as::<Vec<JobDescription>>(
            line.as_bytes(),
            "list_jobs",
        ) {
            Ok(Incoming::Return(r)) => Some(r),
            _ => None,
        };
        let from_value = match decode_line(line.as_bytes()) {
            Ok(Incoming::Return(v)) => Some(list_jobs(&v)),
            _ => None,
        };
        (streamed, from_value)
    }

    #[test]
    fn job_lists_read_the_same_from_the_line_and_from_a_value() {
        let lines = [
            // The Python server's form.
            r#"{"return": [{"job_id": 1, "owner": "me", "start_time": 1795470705.6071072, "keepalive": 60.0, "state": 3, "power": true, "args": [2, 3], "kwargs": {"machine": "m", "tags": null, "min_ratio": 0.333}, "allocated_machine_name": "m", "boards": [[1, 0, 2], [0, 0, 0]], "keepalivehost": "10.0.0.1"}]}"#,
            // Queued, never expiring, an integer keepalive, fields left out.
            r#"{"return": [{"job_id": 2, "owner": "x", "start_time": 5, "keepalive": null, "state": 1, "power": null, "args": [], "kwargs": {}, "allocated_machine_name": null, "boards": null, "keepalivehost": null}, {"job_id": 3, "state": 2, "keepalive": 5}, {"job_id": 4, "state": 9, "keepalive": 18446744073709551615}]}"#,
            // The Java service's form: empty strings for "none".
            r#"{"return": [{"job_id": 7, "owner": "", "start_time": 1.7e9, "keepalive": 1700000000.5, "state": 3, "power": false, "args": [1], "kwargs": {"owner": "o"}, "allocated_machine_name": "", "boards": [], "keepalivehost": "", "reason": ""}]}"#,
            // Escapes and unknown fields.
            r#"{"return": [{"job_id": 8, "owner": "caf\u00e9 \"q\"", "state": 3, "extra": {"a": [1]}, "boards": [[4294967295, 0, 1]]}]}"#,
            r#"{"return": []}"#,
            // The lenient forms: integral floats, `false` for none, NaN,
            // a repeated field (the last counts).
            r#"{"return": [{"job_id": 1.0, "state": 3}]}"#,
            r#"{"return": [{"job_id": 1, "state": 3, "owner": false}]}"#,
            r#"{"return": [{"job_id": 1, "state": 3, "start_time": NaN}]}"#,
            r#"{"return": [{"job_id": 1, "state": 3, "boards": [[1.0, 2, 0]]}]}"#,
            r#"{"return": [{"job_id": 1, "state": 3, "owner": "a", "owner": "b"}]}"#,
            r#"{"return": [{"job_id": 1, "state": 3}], "extra": 1}"#,
            // Errors, named the same way both ways.
            r#"{"return": [[1, "me", 5.0, null, 3]]}"#,
            r#"{"return": [{"state": 3}]}"#,
            r#"{"return": [{"job_id": 1, "state": 3, "boards": [[1, 2]]}]}"#,
            r#"{"return": {"job_id": 1}}"#,
        ];
        for line in lines {
            let (streamed, from_value) = both_ways(line);
            assert!(streamed.is_some(), "not a reply: {line}");
            // Compared as text, so that NaN equals NaN.
            assert_eq!(format!("{streamed:?}"), format!("{from_value:?}"), "{line}");
        }
        let (jobs, _) = both_ways(lines[9]);
        assert_eq!(
            jobs.and_then(Result::ok).map(|j| j[0].owner.clone()),
            Some(Some("b".into()))
        );
        let (jobs, _) = both_ways(lines[12]);
        let err = jobs.and_then(Result::err).expect("an error");
        assert_eq!((err.field.as_deref(), err.got), (Some("job_id"), None));
        let (jobs, _) = both_ways(lines[13]);
        let err = jobs.and_then(Result::err).expect("an error");
        assert_eq!(err.got.as_deref(), Some("a list [1,2]"));
    }
}
