//! Untrusted text made safe for a terminal.
//!
//! Every string that came from a server or a configuration file passes
//! through [`visible`] before it is printed as text (tables, maps, info
//! blocks, status lines, error messages), so that escape sequences in a job
//! owner, a machine name or a server's error message cannot retitle the
//! terminal, change its colours or move its cursor. `--json` output does not
//! need this: JSON escapes control characters itself.
//!
//! Ordinary printable text, which is all that well-behaved servers send, is
//! returned unchanged (borrowed), so output stays byte-for-byte that of the
//! Python tools.

use std::borrow::Cow;
use std::fmt::Write;

/// `text` with every control character replaced by a visible escape:
/// `\e` for ESC, `\t`, `\n` and `\r` for those, `\xNN` for the other C0
/// characters and DEL, and `\u{NNNN}` for the C1 controls and the Unicode
/// direction overrides and isolates (which can make text read differently
/// from what it is).
pub fn visible(text: &str) -> Cow<'_, str> {
    // Most text is plain ASCII: a quick scan settles it.
    if text.bytes().all(|b| (0x20..0x7f).contains(&b)) || !text.chars().any(hidden) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\x1b' => out.push_str("\\e"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c.is_ascii_control() => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c if hidden(c) => {
                let _ = write!(out, "\\u{{{:04x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// [`visible`], owned: for values of definition lists.
pub fn shown(text: &str) -> String {
    visible(text).into_owned()
}

/// [`visible`], keeping line breaks: for messages of several lines whose
/// every line is already a message of its own.
pub fn visible_lines(text: &str) -> String {
    text.split('\n').map(visible).collect::<Vec<_>>().join("\n")
}

/// Whether a character must not reach a terminal as it is.
fn hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_text_is_untouched() {
        for text in ["", "me@example.org", "Zoë's board (5)", "日本語", "a\\eb"] {
            assert!(matches!(visible(text), Cow::Borrowed(t) if t == text));
        }
    }

    #[test]
    fn control_characters_become_visible() {
        assert_eq!(
            visible("evil\x1b]0;pwned\x07\x1b[31m"),
            "evil\\e]0;pwned\\x07\\e[31m"
        );
        assert_eq!(visible("a\tb\nc\rd\x00\x7f"), "a\\tb\\nc\\rd\\x00\\x7f");
        assert_eq!(visible("\u{9b}31m"), "\\u{009b}31m");
        assert_eq!(visible("abc\u{202e}fed"), "abc\\u{202e}fed");
        assert_eq!(visible_lines("one\x1b\ntwo"), "one\\e\ntwo");
    }
}
