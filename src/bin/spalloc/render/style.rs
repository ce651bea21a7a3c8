//! Colour and cursor control: ANSI styles, when a stream gets them, and the
//! colour of each job.
//!
//! The escapes are the Python tools' (CLI_REFERENCE §4.3), wrapped around
//! each fragment on its own, so that fragments can be put together in any
//! order. Whether a stream is coloured is decided once per stream from the
//! `--color` setting, its terminal status and the environment, by
//! [`colour_enabled`], which is pure so that it can be tested.

use std::str::FromStr;

/// Clears the screen and moves the cursor to the top-left corner; written
/// before each frame of `--watch` on a terminal.
pub const CLEAR_SCREEN: &str = "\x1b[2J\x1b[;H";

/// Moves the cursor to the start of the previous line and clears that line,
/// so that an alloc status line replaces the one before it (§5.3).
///
/// Moving up relative to the cursor, rather than saving and restoring its
/// position as the Python tool did, keeps working after the terminal has
/// scrolled.
pub const REWRITE_PREVIOUS_LINE: &str = "\x1b[1F\x1b[K";

/// One of the six foreground colours the tools use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Colour {
    /// SGR 31.
    Red,
    /// SGR 32.
    Green,
    /// SGR 33.
    Yellow,
    /// SGR 34.
    Blue,
    /// SGR 35.
    Magenta,
    /// SGR 36.
    Cyan,
}

impl Colour {
    fn code(self) -> &'static str {
        match self {
            Colour::Red => "31",
            Colour::Green => "32",
            Colour::Yellow => "33",
            Colour::Blue => "34",
            Colour::Magenta => "35",
            Colour::Cyan => "36",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Intensity {
    Bright,
    Dim,
}

/// A set of ANSI display attributes (an SGR sequence such as `\e[2;32m`).
///
/// The codes are always emitted in the order underscore, intensity, colour,
/// which is the order of every combination the Python tools use: header
/// `4;1`, dim green `2;32`, bright cyan `1;36`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Style {
    underscore: bool,
    intensity: Option<Intensity>,
    colour: Option<Colour>,
}

impl Style {
    /// No attributes: painting with it leaves the text as it is.
    pub const PLAIN: Style = Style {
        underscore: false,
        intensity: None,
        colour: None,
    };
    /// Bright (`1`).
    pub const BRIGHT: Style = Style::PLAIN.bright();
    /// Dim (`2`).
    pub const DIM: Style = Style::PLAIN.dim();
    /// Table headers: underscore and bright (`4;1`).
    pub const HEADER: Style = Style::PLAIN.underscore().bright();
    /// Red (`31`).
    pub const RED: Style = Style::PLAIN.fg(Colour::Red);
    /// Green (`32`).
    pub const GREEN: Style = Style::PLAIN.fg(Colour::Green);
    /// Yellow (`33`).
    pub const YELLOW: Style = Style::PLAIN.fg(Colour::Yellow);
    /// Blue (`34`).
    pub const BLUE: Style = Style::PLAIN.fg(Colour::Blue);
    /// Magenta (`35`).
    pub const MAGENTA: Style = Style::PLAIN.fg(Colour::Magenta);
    /// Cyan (`36`).
    pub const CYAN: Style = Style::PLAIN.fg(Colour::Cyan);

    /// This style, made bright (replacing dim).
    pub const fn bright(self) -> Style {
        Style {
            intensity: Some(Intensity::Bright),
            ..self
        }
    }

    /// This style, made dim (replacing bright).
    pub const fn dim(self) -> Style {
        Style {
            intensity: Some(Intensity::Dim),
            ..self
        }
    }

    /// This style, underscored.
    pub const fn underscore(self) -> Style {
        Style {
            underscore: true,
            ..self
        }
    }

    /// This style with the foreground colour `colour`.
    pub const fn fg(self, colour: Colour) -> Style {
        Style {
            colour: Some(colour),
            ..self
        }
    }

    /// The SGR parameters as a string, for the tests.
    #[cfg(test)]
    pub fn codes(self) -> String {
        let mut codes = String::new();
        self.write_codes(&mut codes);
        codes
    }

    /// Appends the SGR parameters, such as `2;32`, to `out`; nothing for
    /// [`Style::PLAIN`].
    fn write_codes(self, out: &mut String) {
        let start = out.len();
        let mut code = |c: &str| {
            if out.len() > start {
                out.push(';');
            }
            out.push_str(c);
        };
        if self.underscore {
            code("4");
        }
        match self.intensity {
            Some(Intensity::Bright) => code("1"),
            Some(Intensity::Dim) => code("2"),
            None => {}
        }
        if let Some(colour) = self.colour {
            code(colour.code());
        }
    }

    fn is_plain(self) -> bool {
        self == Style::PLAIN
    }
}

/// Wraps `text` in the escapes for `style` when `enabled`, else returns it as
/// it is.
///
/// Each fragment is wrapped on its own and ends with a full reset
/// (`\e[0m`), as the Python tools do, so fragments can be concatenated in
/// any order without one's attributes leaking into the next.
pub fn paint(text: &str, style: Style, enabled: bool) -> String {
    let mut out = String::with_capacity(text.len() + 12);
    paint_into(&mut out, text, style, enabled);
    out
}

/// [`paint`], appending to `out`: the table and map renderers paint
/// thousands of fragments and should not allocate for each.
pub fn paint_into(out: &mut String, text: &str, style: Style, enabled: bool) {
    if !enabled || style.is_plain() {
        out.push_str(text);
        return;
    }
    out.push_str("\x1b[");
    style.write_codes(out);
    out.push('m');
    out.push_str(text);
    out.push_str("\x1b[0m");
}

/// Appends `n` spaces.
pub(super) fn push_spaces(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

/// The colour of a job in the machine view, chosen by `job_id mod 15`.
///
/// 0–4 are green, blue, magenta, yellow and cyan; 5–9 the same five dim;
/// 10–14 the same five bright. Keying on the id rather than on the position
/// in the list keeps a job's colour steady while other jobs come and go.
pub fn job_colour(job_id: u64) -> Style {
    const HUES: [Style; 5] = [
        Style::GREEN,
        Style::BLUE,
        Style::MAGENTA,
        Style::YELLOW,
        Style::CYAN,
    ];
    let index = (job_id % 15) as usize;
    let base = HUES[index % 5];
    match index / 5 {
        0 => base,
        1 => base.dim(),
        _ => base.bright(),
    }
}

/// The `--color` setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ColorChoice {
    /// Colour a stream only when it is a terminal that wants colour.
    #[default]
    Auto,
    /// Always colour, even a file or a pipe, and even with `NO_COLOR` set.
    Always,
    /// Never colour.
    Never,
}

impl FromStr for ColorChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<ColorChoice, String> {
        match s {
            "auto" => Ok(ColorChoice::Auto),
            "always" => Ok(ColorChoice::Always),
            "never" => Ok(ColorChoice::Never),
            _ => Err(format!(
                "invalid choice: '{s}' (choose from 'auto', 'always', 'never')"
            )),
        }
    }
}

/// Whether to colour one output stream (CLI_REFERENCE §4.3, §13.4).
///
/// `always` and `never` are obeyed. Under `auto` the stream is coloured when
/// it is a terminal, `NO_COLOR` is unset or empty, and `TERM` is not `dumb`.
/// The caller passes the stream's TTY status and the two variables, so the
/// decision is made per stream and can be tested without a terminal.
pub fn colour_enabled(
    choice: ColorChoice,
    is_tty: bool,
    no_color: Option<&str>,
    term: Option<&str>,
) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => is_tty && no_color.is_none_or(str::is_empty) && term != Some("dumb"),
    }
}

/// Whether cursor control (clearing the screen in `--watch`, rewriting the
/// alloc status line) is used on a stream: when it is a terminal that is not
/// `TERM=dumb`, whatever the colour setting, since `NO_COLOR` is about
/// colour and a cleared screen is still wanted without it.
pub fn cursor_control(is_tty: bool, term: Option<&str>) -> bool {
    is_tty && term != Some("dumb")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::pyfmt::tests::eqnice;

    // ---- styles and colour -------------------------------------------------

    #[test]
    fn style_codes() {
        eqnice!("", Style::PLAIN.codes());
        eqnice!("1", Style::BRIGHT.codes());
        eqnice!("2", Style::DIM.codes());
        eqnice!("4;1", Style::HEADER.codes());
        eqnice!("31", Style::RED.codes());
        eqnice!("32", Style::GREEN.codes());
        eqnice!("33", Style::YELLOW.codes());
        eqnice!("34", Style::BLUE.codes());
        eqnice!("35", Style::MAGENTA.codes());
        eqnice!("36", Style::CYAN.codes());
        eqnice!("2;32", Style::GREEN.dim().codes());
        eqnice!("1;36", Style::CYAN.bright().codes());
        eqnice!("1;36", Style::BRIGHT.fg(Colour::Cyan).codes());
        eqnice!("2", Style::BRIGHT.dim().codes());
    }

    #[test]
    fn paint_wraps_each_fragment() {
        eqnice!("\x1b[32mready\x1b[0m", paint("ready", Style::GREEN, true));
        eqnice!("\x1b[4;1mID\x1b[0m", paint("ID", Style::HEADER, true));
        eqnice!("ready", paint("ready", Style::GREEN, false));
        eqnice!("text", paint("text", Style::PLAIN, true));
        eqnice!("\x1b[2J\x1b[;H", CLEAR_SCREEN);
        eqnice!("\x1b[1F\x1b[K", REWRITE_PREVIOUS_LINE);
    }

    #[test]
    fn job_colours_cycle_every_fifteen() {
        let codes: Vec<String> = (0..16).map(|id| job_colour(id).codes()).collect();
        let expected = [
            "32", "34", "35", "33", "36", "2;32", "2;34", "2;35", "2;33", "2;36", "1;32", "1;34",
            "1;35", "1;33", "1;36", "32",
        ];
        assert_eq!(codes, expected);
        eqnice!("32", job_colour(u64::MAX).codes()); // u64::MAX % 15 == 0
    }

    #[test]
    fn colour_decision() {
        use ColorChoice::*;
        assert!(colour_enabled(Auto, true, None, Some("xterm")));
        assert!(colour_enabled(Auto, true, None, None));
        assert!(colour_enabled(Auto, true, Some(""), Some("xterm")));
        assert!(!colour_enabled(Auto, false, None, Some("xterm")));
        assert!(!colour_enabled(Auto, true, Some("1"), Some("xterm")));
        assert!(!colour_enabled(Auto, true, None, Some("dumb")));
        assert!(colour_enabled(Always, false, Some("1"), Some("dumb")));
        assert!(!colour_enabled(Never, true, None, Some("xterm")));

        assert!(cursor_control(true, Some("xterm")));
        assert!(cursor_control(true, None));
        assert!(!cursor_control(true, Some("dumb")));
        assert!(!cursor_control(false, Some("xterm")));
    }

    #[test]
    fn colour_choice_parses_the_three_words() {
        assert_eq!(Ok(ColorChoice::Auto), "auto".parse());
        assert_eq!(Ok(ColorChoice::Always), "always".parse());
        assert_eq!(Ok(ColorChoice::Never), "never".parse());
        assert_eq!(
            Err("invalid choice: 'yes' (choose from 'auto', 'always', 'never')".to_owned()),
            "yes".parse::<ColorChoice>()
        );
        assert_eq!(ColorChoice::Auto, ColorChoice::default());
    }
}
