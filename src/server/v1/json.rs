//! The two servers' ways of writing JSON.
//!
//! The Python server writes `json.dumps` output: a space after `:` and `,`,
//! non-ASCII characters escaped as `\uXXXX`, floats as Python's `repr`, and
//! `\n` after each line. The Java service writes Jackson's output: compact,
//! UTF-8 as it is, floats as Java's `Double.toString` (exponent form from
//! 10^7 up), and `\r\n` after each line.

use std::io;

use serde::Serialize;
use serde_json::ser::{CharEscape, Formatter};
use serde_json::{Map, Value};

/// A line the way Python's `json.dumps` writes it, with its `\n`.
pub(crate) fn python_line<T: Serialize + ?Sized>(v: &T) -> String {
    let mut text = python(v);
    text.push('\n');
    text
}

/// JSON the way Python's `json.dumps` writes it.
pub(crate) fn python<T: Serialize + ?Sized>(v: &T) -> String {
    let mut out = Vec::with_capacity(128);
    python_value(&mut out, v);
    // The formatter only ever writes ASCII.
    String::from_utf8(out).unwrap_or_default()
}

/// Any value as [`python`] writes it, appended to `out`.
pub(crate) fn python_value<T: Serialize + ?Sized>(out: &mut Vec<u8>, v: &T) {
    let mut ser = serde_json::Serializer::with_formatter(out, PythonStyle);
    // Serialising plain data into memory cannot fail.
    let _ = v.serialize(&mut ser);
}

/// A line the way the Java service's Jackson writes it, with its `\r\n`.
pub(crate) fn java_line<T: Serialize + ?Sized>(v: &T) -> String {
    let mut out = Vec::with_capacity(128);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, JavaStyle);
    // Serialising plain data into memory cannot fail.
    let _ = v.serialize(&mut ser);
    out.extend_from_slice(b"\r\n");
    // serde_json writes valid UTF-8.
    String::from_utf8(out).unwrap_or_default()
}

/// `json.dumps` spacing and escaping.
pub(crate) struct PythonStyle;

impl Formatter for PythonStyle {
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }

    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }

    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }

    fn write_f64<W: ?Sized + io::Write>(&mut self, w: &mut W, value: f64) -> io::Result<()> {
        let text = match value {
            v if v.is_nan() => "NaN".to_owned(),
            v if v.is_infinite() => if v > 0.0 { "Infinity" } else { "-Infinity" }.to_owned(),
            v => python_float(v),
        };
        w.write_all(text.as_bytes())
    }

    fn write_f32<W: ?Sized + io::Write>(&mut self, w: &mut W, value: f32) -> io::Result<()> {
        self.write_f64(w, f64::from(value))
    }

    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        if fragment.is_ascii() {
            return w.write_all(fragment.as_bytes());
        }
        for c in fragment.chars() {
            if c.is_ascii() {
                w.write_all(&[c as u8])?;
            } else {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    write!(w, "\\u{unit:04x}")?;
                }
            }
        }
        Ok(())
    }
}

/// Jackson's compact style, with Java's float formatting.
pub(crate) struct JavaStyle;

impl Formatter for JavaStyle {
    fn write_f64<W: ?Sized + io::Write>(&mut self, w: &mut W, value: f64) -> io::Result<()> {
        w.write_all(java_double(value).as_bytes())
    }

    fn write_f32<W: ?Sized + io::Write>(&mut self, w: &mut W, value: f32) -> io::Result<()> {
        self.write_f64(w, f64::from(value))
    }

    fn write_char_escape<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        escape: CharEscape,
    ) -> io::Result<()> {
        match escape {
            // Jackson writes upper-case hex digits.
            CharEscape::AsciiControl(b) => write!(w, "\\u{:04X}", b),
            other => serde_json::ser::CompactFormatter.write_char_escape(w, other),
        }
    }
}

/// A double as Java's `Double.toString` writes it: plain decimals from
/// 10^-3 up to 10^7 (always with a fraction, `60.0`), the shortest digits
/// in exponent form otherwise (`1.795470705E9`, `1.0E-4`).
pub(crate) fn java_double(v: f64) -> String {
    if v.is_nan() {
        return "NaN".to_owned();
    }
    if v.is_infinite() {
        return if v > 0.0 { "Infinity" } else { "-Infinity" }.to_owned();
    }
    let magnitude = v.abs();
    if magnitude == 0.0 || (1e-3..1e7).contains(&magnitude) {
        let mut s = format!("{v}");
        if !s.contains('.') {
            s.push_str(".0");
        }
        return s;
    }
    let s = format!("{v:e}");
    let (mantissa, exponent) = s.split_once('e').unwrap_or((&s, "0"));
    if mantissa.contains('.') {
        format!("{mantissa}E{exponent}")
    } else {
        format!("{mantissa}.0E{exponent}")
    }
}

/// `value.toString()` in Java, for a value Jackson parsed from JSON (a
/// `String`, `Integer`, `Long`, `Double`, `Boolean`, `ArrayList` or
/// `LinkedHashMap`); `null` is `"null"`.
pub(crate) fn java_to_string(v: &Value) -> String {
    match v {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.to_string(),
            (None, Some(u), _) => u.to_string(),
            (_, _, Some(f)) => java_double(f),
            _ => n.to_string(),
        },
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(java_to_string).collect();
            format!("[{}]", parts.join(", "))
        }
        Value::Object(map) => {
            let parts: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{k}={}", java_to_string(v)))
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
    }
}

/// The Java class Jackson gives a JSON value when it parses it as an
/// `Object` (`None` for `null`).
pub(crate) fn java_class(v: &Value) -> Option<&'static str> {
    Some(match v {
        Value::Null => return None,
        Value::Bool(_) => "java.lang.Boolean",
        Value::Number(n) => {
            if n.as_i64().is_some_and(|i| i32::try_from(i).is_ok()) {
                "java.lang.Integer"
            } else if n.as_i64().is_some() {
                "java.lang.Long"
            } else if n.as_u64().is_some() {
                "java.math.BigInteger"
            } else {
                "java.lang.Double"
            }
        }
        Value::String(_) => "java.lang.String",
        Value::Array(_) => "java.util.ArrayList",
        Value::Object(_) => "java.util.LinkedHashMap",
    })
}

/// Python's `repr` of a value parsed by `json.loads`, as used in its
/// error messages (`'x'`, `1.5`, `None`, `True`, `[1, 'a']`).
pub(crate) fn python_repr(v: &Value) -> String {
    match v {
        Value::Null => "None".to_owned(),
        Value::Bool(true) => "True".to_owned(),
        Value::Bool(false) => "False".to_owned(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if !n.is_i64() && !n.is_u64() => python_float(f),
            _ => n.to_string(),
        },
        Value::String(s) => python_str_repr(s),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(python_repr).collect();
            format!("[{}]", parts.join(", "))
        }
        Value::Object(map) => {
            let parts: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{}: {}", python_str_repr(k), python_repr(v)))
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
    }
}

/// Python's `str` of a parsed value: a string as it is, anything else as
/// its `repr`.
pub(crate) fn python_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => python_repr(other),
    }
}

/// Python's `repr` of a float (`60.0`, `1e+16`, `inf`).
pub(crate) fn python_float(f: f64) -> String {
    if f.is_nan() {
        return "nan".to_owned();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.to_owned();
    }
    let magnitude = f.abs();
    if magnitude == 0.0 || (1e-4..1e16).contains(&magnitude) {
        let mut s = format!("{f}");
        if !s.contains('.') {
            s.push_str(".0");
        }
        return s;
    }
    let s = format!("{f:e}");
    let (mantissa, exponent) = s.split_once('e').unwrap_or((&s, "0"));
    let (sign, digits) = match exponent.strip_prefix('-') {
        Some(d) => ('-', d),
        None => ('+', exponent),
    };
    format!("{mantissa}e{sign}{digits:0>2}")
}

/// Python's `repr` of a string: single quotes unless the string holds a
/// single quote and no double quote.
fn python_str_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// An object's entries without the given keys, in their order.
pub(crate) fn without(map: &Map<String, Value>, keys: &[&str]) -> Map<String, Value> {
    map.iter()
        .filter(|(k, _)| !keys.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn java_doubles() {
        assert_eq!(java_double(60.0), "60.0");
        assert_eq!(java_double(0.333), "0.333");
        assert_eq!(java_double(1_795_470_705.0), "1.795470705E9");
        assert_eq!(java_double(1_690_000_000.123), "1.690000000123E9");
        assert_eq!(java_double(1e7), "1.0E7");
        assert_eq!(java_double(9_999_999.5), "9999999.5");
        assert_eq!(java_double(0.001), "0.001");
        assert_eq!(java_double(0.0001), "1.0E-4");
        assert_eq!(java_double(-2.5e-5), "-2.5E-5");
        assert_eq!(java_double(0.0), "0.0");
        assert_eq!(java_double(-0.0), "-0.0");
        assert_eq!(java_double(1e300), "1.0E300");
    }

    #[test]
    fn java_lines() {
        let v = json!({"return": {"a": [1, 2.5, null, 1.7e9], "b": "x\u{e9}\u{1}"}});
        assert_eq!(
            java_line(&v),
            "{\"return\":{\"a\":[1,2.5,null,1.7E9],\"b\":\"x\u{e9}\\u0001\"}}\r\n"
        );
    }

    #[test]
    fn python_lines() {
        let v = json!({"return": {"a": [1, 2.5, null], "b": "x\u{e9}\u{1F600}"}});
        assert_eq!(
            python_line(&v),
            "{\"return\": {\"a\": [1, 2.5, null], \"b\": \"x\\u00e9\\ud83d\\ude00\"}}\n"
        );
        assert_eq!(
            python_line(&json!({"return": 60.0})),
            "{\"return\": 60.0}\n"
        );
    }

    #[test]
    fn java_strings_of_values() {
        assert_eq!(java_to_string(&json!("me")), "me");
        assert_eq!(java_to_string(&json!(5)), "5");
        assert_eq!(java_to_string(&json!(5.0)), "5.0");
        assert_eq!(java_to_string(&json!([1, "a", null])), "[1, a, null]");
        assert_eq!(java_to_string(&json!({"k": true})), "{k=true}");
        assert_eq!(java_class(&json!(1)), Some("java.lang.Integer"));
        assert_eq!(java_class(&json!(1i64 << 40)), Some("java.lang.Long"));
        assert_eq!(java_class(&json!(u64::MAX)), Some("java.math.BigInteger"));
        assert_eq!(java_class(&json!(1.5)), Some("java.lang.Double"));
        assert_eq!(java_class(&json!(null)), None);
    }

    #[test]
    fn python_reprs() {
        assert_eq!(python_repr(&json!("x")), "'x'");
        assert_eq!(python_repr(&json!("it's")), "\"it's\"");
        assert_eq!(
            python_repr(&json!([1, "a", null, true, 2.5])),
            "[1, 'a', None, True, 2.5]"
        );
        assert_eq!(python_repr(&json!({"k": 1.0})), "{'k': 1.0}");
        assert_eq!(python_str(&json!("plain")), "plain");
        assert_eq!(python_str(&json!(5)), "5");
        assert_eq!(python_float(1e16), "1e+16");
        assert_eq!(python_float(1.5e-5), "1.5e-05");
        assert_eq!(python_float(123.0), "123.0");
    }
}
