//! Printing JSON values the way Python's `str()` and `repr()` print them.
//!
//! A few lines of the Python tools show server values exactly as the Python
//! interpreter would print the decoded JSON: the ps `Keepalive` column, and
//! the job `Keepalive` and `Request` lines (CLI_REFERENCE §4.4). Users and
//! their scripts read those lines, so we reproduce Python's spelling byte for
//! byte (`None`, `60.0`, `'big'`, `['default']`) instead of printing JSON.
//! This module is kept apart from the layout modules because it is about
//! values, not layout, and because getting Python's float and string rules
//! right needs tests of its own.

use serde_json::{Map, Number, Value};
use std::fmt::Write as _;

/// Formats a float as Python's `repr(float)` does.
///
/// The digits are the shortest ones that read back as the same `f64`. They
/// are written positionally, with at least one decimal, when the decimal
/// exponent is from −4 to 15 (`60.0`, `0.333`, `0.0001`,
/// `1000000000000000.0`); otherwise in exponent form with a sign and at least
/// two exponent digits (`1e-05`, `1.5e+16`). The special values are `inf`,
/// `-inf` and `nan`; negative zero is `-0.0`.
pub fn py_float(x: f64) -> String {
    if x.is_nan() {
        // Python never shows the sign of a NaN.
        return "nan".to_owned();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.to_owned();
    }

    let (digits, exp) = shortest_digits(x.abs());
    let sign = if x.is_sign_negative() { "-" } else { "" };

    let mut out = String::from(sign);
    if (-4..=15).contains(&exp) {
        if exp >= 0 {
            // Python pads the integer part with zeros up to the decimal
            // point, and always shows a fraction, if only `.0`.
            let int_len = exp as usize + 1;
            if digits.len() <= int_len {
                out.push_str(&digits);
                out.extend(std::iter::repeat_n('0', int_len - digits.len()));
                out.push_str(".0");
            } else {
                out.push_str(&digits[..int_len]);
                out.push('.');
                out.push_str(&digits[int_len..]);
            }
        } else {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-exp - 1) as usize));
            out.push_str(&digits);
        }
    } else {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let exp_sign = if exp < 0 { '-' } else { '+' };
        let _ = write!(out, "e{exp_sign}{:02}", exp.unsigned_abs());
    }
    out
}

/// The shortest decimal digits that read back as `x` (finite, not
/// negative), and the decimal exponent of the first digit: `1.5e16` →
/// (`"15"`, 16).
fn shortest_digits(x: f64) -> (String, i32) {
    let (digits, exp) = split_sci(&format!("{x:e}"));
    // Rust's `{:e}` gives the shortest digits that round-trip, as Python
    // does, but the two break ties differently. When x lies exactly halfway
    // between two shortest candidates that both read back as x, Rust rounds
    // up (…254.25 → …254.3) while Python's dtoa rounds to the even digit
    // (…254.2). Ties are detected from x's exact decimal expansion, which
    // never has more than 767 significant digits.
    let n = digits.len();
    let (exact, exact_exp) = split_sci(&format!("{x:.800e}"));
    if exact_exp != exp || exact.len() <= n {
        return (digits, exp);
    }
    let (head, tail) = exact.split_at(n);
    let is_tie = tail.starts_with('5') && tail[1..].bytes().all(|b| b == b'0');
    if !is_tie {
        return (digits, exp);
    }
    let even = if head.ends_with(['0', '2', '4', '6', '8']) {
        Some(head.to_owned())
    } else {
        increment_digits(head)
    };
    match even {
        Some(even) if even != digits && reads_back_as(&even, exp, x) => (even, exp),
        _ => (digits, exp),
    }
}

/// Splits Rust's `{:e}` output for a finite, non-negative float into its
/// digits without the point, and its exponent.
fn split_sci(sci: &str) -> (String, i32) {
    let (mantissa, exp) = match sci.split_once('e') {
        Some((m, e)) => (m, e.parse::<i32>().unwrap_or(0)),
        None => (sci, 0),
    };
    (mantissa.chars().filter(|c| *c != '.').collect(), exp)
}

/// Adds one to the last place of a digit string, or `None` if that carries
/// into a new leading digit (the exponent would change).
fn increment_digits(digits: &str) -> Option<String> {
    let mut bytes = digits.as_bytes().to_vec();
    for b in bytes.iter_mut().rev() {
        if *b == b'9' {
            *b = b'0';
        } else {
            *b += 1;
            return String::from_utf8(bytes).ok();
        }
    }
    None
}

/// Whether `0.DIGITS × 10^(exp + 1)` parses back to exactly `x`.
fn reads_back_as(digits: &str, exp: i32, x: f64) -> bool {
    format!("0.{digits}e{}", exp + 1).parse::<f64>() == Ok(x)
}

/// Formats a JSON value as Python's `repr()` of the decoded value.
///
/// `null`, `true` and `false` become `None`, `True` and `False`. Numbers keep
/// the int/float distinction of the JSON text (`5` vs `5.0`), floats go
/// through [`py_float`], strings are quoted and escaped as Python does, and
/// arrays and objects print as `[a, b]` and `{'k': v}`.
///
/// Object members print in the order the [`Map`] iterates them. That is the
/// server's order, as in Python, only when serde_json's `preserve_order`
/// feature is enabled; by default serde_json sorts keys as it parses. The
/// tools only meet objects nested inside `Request` keyword values, which
/// the spalloc servers never send.
///
/// Integers too large for 64 bits were already turned into floats by
/// `serde_json`, so they print as floats, where Python would keep every
/// digit; no spalloc server sends such numbers.
pub fn py_repr(value: &Value) -> String {
    let mut out = String::new();
    write_repr(&mut out, value);
    out
}

/// Formats a JSON value as Python's `str()` of the decoded value.
///
/// This differs from [`py_repr`] only for strings, which are printed as they
/// are, without quotes or escapes. The items inside a list or an object are
/// still printed in repr form, as Python's `str(list)` does.
pub fn py_str(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => py_repr(other),
    }
}

/// Formats the `Request` line of `spalloc job`: how the job was created.
///
/// The result is `Job(` + the positional arguments printed with `str()` and
/// joined with `, ` + (`,\n    ` when there are both positional and keyword
/// arguments) + the keyword arguments sorted by name as `name=repr(value)`
/// and joined with `,\n    ` + `)`. For example `Job()`, `Job(1)`,
/// `Job(machine='big')` or `Job(2, 2,\n    machine='big')`.
///
/// The positional arguments use `str()` because the Python tool formats them
/// that way; for the integers the server normally holds there, `str()` and
/// `repr()` agree.
pub fn request_repr(args: &[Value], kwargs: &Map<String, Value>) -> String {
    let mut out = String::from("Job(");
    for (i, arg) in args.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&py_str(arg));
    }
    if !args.is_empty() && !kwargs.is_empty() {
        out.push_str(",\n    ");
    }
    // Python sorts the names by code point; the byte order of UTF-8 strings,
    // which `str::cmp` uses, is the same order.
    let mut sorted: Vec<(&String, &Value)> = kwargs.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    for (i, (name, value)) in sorted.into_iter().enumerate() {
        if i > 0 {
            out.push_str(",\n    ");
        }
        out.push_str(name);
        out.push('=');
        write_repr(&mut out, value);
    }
    out.push(')');
    out
}

fn write_repr(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("None"),
        Value::Bool(true) => out.push_str("True"),
        Value::Bool(false) => out.push_str("False"),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_str_repr(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_repr(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_str_repr(out, key);
                out.push_str(": ");
                write_repr(out, item);
            }
            out.push('}');
        }
    }
}

fn write_number(out: &mut String, n: &Number) {
    if n.is_f64() {
        // `as_f64` cannot fail for a number that is stored as a float.
        out.push_str(&py_float(n.as_f64().unwrap_or(f64::NAN)));
    } else {
        // Integers print in full, whatever their sign or size.
        let _ = write!(out, "{n}");
    }
}

/// Writes a string the way Python's `repr(str)` does.
fn write_str_repr(out: &mut String, s: &str) {
    // Python prefers single quotes, and switches to double quotes only when
    // that avoids escaping: the text has a `'` and no `"`.
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
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
            c if is_printable(c) => out.push(c),
            c => {
                let code = u32::from(c);
                let _ = if code <= 0xff {
                    write!(out, "\\x{code:02x}")
                } else if code <= 0xffff {
                    write!(out, "\\u{code:04x}")
                } else {
                    write!(out, "\\U{code:08x}")
                };
            }
        }
    }
    out.push(quote);
}

/// An approximation of Python's `str.isprintable` for one character.
///
/// Python treats as non-printable the Unicode categories Cc, Cf, Cs, Co, Cn,
/// Zl, Zp and Zs apart from the space. Reproducing Cn (unassigned) exactly
/// would need Python's Unicode tables, several hundred ranges that change
/// with each Unicode version. We list the control, format, separator and
/// private-use characters, the noncharacters and the large unassigned
/// planes, which covers every character a server is likely to send; a
/// character unassigned in the middle of an assigned block is kept as
/// printable, where Python would escape it. (Surrogates cannot occur: Rust
/// strings cannot hold them.)
fn is_printable(c: char) -> bool {
    let code = u32::from(c);
    let not_printable = matches!(code,
        // Cc: C0 controls, DEL and C1 controls.
        0x00..=0x1f | 0x7f..=0x9f
        // Zs other than the space, Zl and Zp.
        | 0xa0 | 0x1680 | 0x2000..=0x200a | 0x2028 | 0x2029 | 0x202f
        | 0x205f | 0x3000
        // Cf: soft hyphen, Arabic and Syriac marks, zero-width and
        // bidirectional controls, BOM, interlinear annotation, and the
        // supplementary-plane format characters and tags.
        | 0xad | 0x600..=0x605 | 0x61c | 0x6dd | 0x70f | 0x890..=0x891
        | 0x8e2 | 0x180e | 0x200b..=0x200f | 0x202a..=0x202e
        | 0x2060..=0x2064 | 0x2066..=0x206f | 0xfeff | 0xfff9..=0xfffb
        | 0x110bd | 0x110cd | 0x13430..=0x1343f | 0x1bca0..=0x1bca3
        | 0x1d173..=0x1d17a | 0xe0001 | 0xe0020..=0xe007f
        // Co: the private-use areas.
        | 0xe000..=0xf8ff | 0xf0000..=0x10ffff
        // Cn: noncharacters, the empty planes 4 to 13, and the unassigned
        // parts of plane 14.
        | 0xfdd0..=0xfdef | 0x40000..=0xdffff | 0xe0000 | 0xe0002..=0xe001f
        | 0xe0080..=0xe00ff | 0xe01f0..=0xeffff
    ) || code & 0xfffe == 0xfffe;
    !not_printable
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    /// Compares two strings and, on a mismatch, prints both in full, each
    /// between rulers, so whitespace and escapes can be seen.
    macro_rules! eqnice {
        ($expected:expr, $got:expr $(,)?) => {{
            let expected: &str = &$expected;
            let got: &str = &$got;
            if expected != got {
                panic!(
                    "\nexpected:\n{:-<60}\n{}\n{:-<60}\n{:?}\n\
                     got:\n{:-<60}\n{}\n{:-<60}\n{:?}\n",
                    "", expected, "", expected, "", got, "", got
                );
            }
        }};
    }
    pub(crate) use eqnice;

    fn repr_of(json_text: &str) -> String {
        match serde_json::from_str::<Value>(json_text) {
            Ok(v) => py_repr(&v),
            Err(e) => format!("<bad test JSON {json_text:?}: {e}>"),
        }
    }

    #[test]
    fn floats_in_positional_range() {
        let cases: &[(f64, &str)] = &[
            (60.0, "60.0"),
            (0.333, "0.333"),
            (5.0, "5.0"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1.5, "1.5"),
            (-2.25, "-2.25"),
            (0.1, "0.1"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1.0 / 3.0, "0.3333333333333333"),
            (2.0 / 3.0, "0.6666666666666666"),
            (0.0001, "0.0001"),
            (0.00012345, "0.00012345"),
            (123456789.0, "123456789.0"),
            (1e15, "1000000000000000.0"),
            (1234567890123456.7, "1234567890123456.8"),
            (9999999999999998.0, "9999999999999998.0"),
            (100.5, "100.5"),
            (10.0, "10.0"),
            (std::f64::consts::PI, "3.141592653589793"),
            (-1e-4, "-0.0001"),
        ];
        for &(x, want) in cases {
            eqnice!(want, py_float(x));
        }
    }

    #[test]
    fn floats_in_exponent_form() {
        let cases: &[(f64, &str)] = &[
            (1e-5, "1e-05"),
            (1.5e16, "1.5e+16"),
            (1e16, "1e+16"),
            (-1e16, "-1e+16"),
            (1.2345e-7, "1.2345e-07"),
            (1e100, "1e+100"),
            (1e-100, "1e-100"),
            (f64::MAX, "1.7976931348623157e+308"),
            (f64::MIN_POSITIVE, "2.2250738585072014e-308"),
            (5e-324, "5e-324"),
            (-5e-324, "-5e-324"),
            (1e22, "1e+22"),
            (1.7e-5, "1.7e-05"),
            (9.999e-5, "9.999e-05"),
            (12345678901234567890.0, "1.2345678901234567e+19"),
        ];
        for &(x, want) in cases {
            eqnice!(want, py_float(x));
        }
    }

    /// Bit patterns and the `repr` that Python 3.11 printed for them: a
    /// sample of random doubles, and values lying exactly halfway between
    /// two shortest candidates, where Python picks the even digit. (The
    /// implementation was also checked against Python on 400,000 doubles.)
    #[test]
    fn floats_match_python_bit_for_bit() {
        let cases: &[(u64, &str)] = &[
            (0xf2a74de452e6b438, "-1.989032661366619e+244"),
            (0x6513270e269e0d37, "7.761117632285041e+178"),
            (0x0c5c7fd0a6a3a450, "3.980498358697587e-249"),
            (0xd23f0824128b2f33, "-1.5432835417340557e+88"),
            (0x36f675cc81e74ef5, "6.294675241195386e-44"),
            (0x3d9c172411e20b8f, "6.387016158513563e-12"),
            (0x4a22599363a5f3da, "1.3409208270345395e+49"),
            (0x422fa85483246026, "67984048530.18779"),
            (0x42218a9d1e9380ea, "37669998409.751785"),
            (0x408ead5c28f5c28f, "981.67"),
            (0x4340000000000000, "9007199254740992.0"),
            (0x43e0000000000000, "9.223372036854776e+18"),
            (0x44b52d02c7e14af6, "1e+23"),
            (0x0000000000000003, "1.5e-323"),
            (0x3fc2492492492492, "0.14285714285714285"),
            (0x405edd2f1a9fbe77, "123.456"),
            (0x3f23a92a30553262, "0.00015000000000000001"),
            (0x3f18e757928e0c9e, "9.5e-05"),
            (0x4321c37937e08000, "2500000000000000.0"),
            (0x4011666666666666, "4.35"),
            (0x4040aaaaaaaaaaab, "33.333333333333336"),
            // Ties: Rust's own shortest formatting ends these in 3.
            (0x430e1c6d958d7b72, "1059438285926254.2"),
            (0xc31441f233f63165, "-1425502010969177.2"),
            (0x42b7fa57c450e950, "26363981746409.312"),
            (0xc2d8c0fe9119c088, "-108868734838530.12"),
            (0x430581d6b4d3a9fa, "756716708459839.2"),
        ];
        for &(bits, want) in cases {
            eqnice!(want, py_float(f64::from_bits(bits)));
        }
    }

    #[test]
    fn float_special_values() {
        eqnice!("inf", py_float(f64::INFINITY));
        eqnice!("-inf", py_float(f64::NEG_INFINITY));
        eqnice!("nan", py_float(f64::NAN));
        eqnice!("nan", py_float(-f64::NAN));
    }

    #[test]
    fn scalars_keep_the_int_float_distinction() {
        eqnice!("None", repr_of("null"));
        eqnice!("True", repr_of("true"));
        eqnice!("False", repr_of("false"));
        eqnice!("5", repr_of("5"));
        eqnice!("5.0", repr_of("5.0"));
        eqnice!("60.0", repr_of("60.0"));
        eqnice!("-3", repr_of("-3"));
        eqnice!("0.333", repr_of("0.333"));
        eqnice!("1e-05", repr_of("0.00001"));
        eqnice!("1e+16", repr_of("1e16"));
        eqnice!("18446744073709551615", repr_of("18446744073709551615"));
        eqnice!("-9223372036854775808", repr_of("-9223372036854775808"));
    }

    #[test]
    fn strings_choose_their_quote() {
        eqnice!("'big'", repr_of(r#""big""#));
        eqnice!("''", repr_of(r#""""#));
        eqnice!(r#""it's""#, repr_of(r#""it's""#));
        eqnice!(r#"'say "hi"'"#, repr_of(r#""say \"hi\"""#));
        eqnice!(r#"'it\'s "x"'"#, repr_of(r#""it's \"x\"""#));
    }

    #[test]
    fn strings_escape_like_python() {
        eqnice!(r"'a\\b'", repr_of(r#""a\\b""#));
        eqnice!(r"'a\nb\rc\td'", repr_of(r#""a\nb\rc\td""#));
        eqnice!(r"'\x00\x1b\x7f'", repr_of(r#""\u0000\u001b\u007f""#));
        eqnice!(r"'\x85\xa0\xad'", repr_of(r#""\u0085\u00a0\u00ad""#));
        eqnice!(r"'\u200b\u2028\ufeff'", repr_of(r#""\u200b\u2028\ufeff""#));
        eqnice!(r"'\ue000\uffff'", repr_of(r#""\ue000\uffff""#));
        eqnice!(
            r"'\U000e0001\U0010ffff'",
            repr_of(r#""\udb40\udc01\udbff\udfff""#)
        );
    }

    #[test]
    fn printable_non_ascii_is_kept() {
        eqnice!("'café'", repr_of(r#""café""#));
        eqnice!("'日本'", repr_of(r#""日本""#));
        eqnice!("'😀'", repr_of(r#""\ud83d\ude00""#));
        eqnice!("'é'", repr_of(r#""\u00e9""#));
    }

    #[test]
    fn containers_print_items_in_repr_and_keep_order() {
        eqnice!("[]", repr_of("[]"));
        eqnice!("{}", repr_of("{}"));
        eqnice!("['default']", repr_of(r#"["default"]"#));
        eqnice!("[1, 2.0, None, 'x']", repr_of(r#"[1, 2.0, null, "x"]"#));
        eqnice!("[[0, 1, 2], [1, 0, 0]]", repr_of("[[0,1,2],[1,0,0]]"));
        // Keys already in order, so the test holds whether or not
        // serde_json keeps the document's order (see `py_repr`).
        eqnice!(
            "{'a': [True, False], 'm': {'k': 'v'}, 'z': 1}",
            repr_of(r#"{"a": [true, false], "m": {"k": "v"}, "z": 1}"#),
        );
        eqnice!(r#"{"it's": 'x'}"#, repr_of(r#"{"it's": "x"}"#));
    }

    #[test]
    fn str_prints_top_level_strings_bare() {
        eqnice!("big", py_str(&json!("big")));
        eqnice!("it's", py_str(&json!("it's")));
        eqnice!("None", py_str(&json!(null)));
        eqnice!("60.0", py_str(&json!(60.0)));
        eqnice!("5", py_str(&json!(5)));
        eqnice!("['a', 'b']", py_str(&json!(["a", "b"])));
    }

    fn kwargs(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn request_with_nothing_or_one_kind_of_argument() {
        eqnice!("Job()", request_repr(&[], &Map::new()));
        eqnice!("Job(1)", request_repr(&[json!(1)], &Map::new()));
        eqnice!(
            "Job(2, 2)",
            request_repr(&[json!(2), json!(2)], &Map::new())
        );
        eqnice!(
            "Job(machine='big')",
            request_repr(&[], &kwargs(json!({"machine": "big"})))
        );
        eqnice!(
            "Job(machine=None,\n    tags=['default'])",
            request_repr(&[], &kwargs(json!({"tags": ["default"], "machine": null})))
        );
    }

    #[test]
    fn request_with_args_and_sorted_kwargs() {
        let kw = kwargs(json!({
            "tags": null,
            "require_torus": false,
            "min_ratio": 0.333,
            "max_dead_links": null,
            "max_dead_boards": 0,
            "machine": "big",
        }));
        eqnice!(
            "Job(2, 2,\n    machine='big',\n    max_dead_boards=0,\n    \
             max_dead_links=None,\n    min_ratio=0.333,\n    \
             require_torus=False,\n    tags=None)",
            request_repr(&[json!(2), json!(2)], &kw)
        );
        eqnice!(
            "Job(1,\n    machine='big')",
            request_repr(&[json!(1)], &kwargs(json!({"machine": "big"})))
        );
    }

    #[test]
    fn request_args_use_str_not_repr() {
        // Python runs `str()` over the positional arguments, so a string
        // argument loses its quotes while the items of a list keep theirs.
        eqnice!(
            "Job(big, 1.5, None, ['a'])",
            request_repr(
                &[json!("big"), json!(1.5), json!(null), json!(["a"])],
                &Map::new()
            )
        );
    }
}
