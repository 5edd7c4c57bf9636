//! Text from outside (a client's model name, an upstream's message) on its way into a log line
//! or an error message: one line, and bounded, so that nobody can forge log lines or make one
//! request write megabytes.

use std::borrow::Cow;
use std::fmt;

/// What a client's name may take in a log line or an error message.
pub const MAX_NAME: usize = 200;

/// `s` with control characters escaped (`\n` as the two characters `\` `n`) and cut to `max`
/// characters, `…` marking a cut. Borrowed when there is nothing to change.
pub fn clip(s: &str, max: usize) -> Cow<'_, str> {
    let clean = s.chars().all(|c| !c.is_control());
    if clean && s.chars().nth(max).is_none() {
        return Cow::Borrowed(s);
    }
    Cow::Owned(Clip(s, max).to_string())
}

/// [`clip`] as it is written out, with no copy.
pub struct Clip<'a>(pub &'a str, pub usize);

impl fmt::Display for Clip<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use fmt::Write;
        // Runs of plain characters go out whole: the writer formats several names per request.
        let mut run = 0;
        for (i, (at, c)) in self.0.char_indices().enumerate() {
            if i == self.1 {
                f.write_str(&self.0[run..at])?;
                return f.write_char('…');
            }
            if c.is_control() {
                f.write_str(&self.0[run..at])?;
                for e in c.escape_default() {
                    f.write_char(e)?;
                }
                run = at + c.len_utf8();
            }
        }
        f.write_str(&self.0[run..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_and_bounded() {
        assert!(matches!(clip("gpt-4o", 10), Cow::Borrowed("gpt-4o")));
        assert_eq!(
            clip("x\n2026-01-01T00:00:00Z access forged", 100),
            "x\\n2026-01-01T00:00:00Z access forged"
        );
        assert_eq!(clip(&"a".repeat(4 << 20), 5), "aaaaa…");
        assert_eq!(clip("héllo\r", 3), "hél…");
        assert_eq!(Clip("a\tb", 10).to_string(), "a\\tb");
        assert_eq!(Clip("é\nü", 2).to_string(), "é\\n…");
        assert_eq!(Clip("ab\n", 10).to_string(), "ab\\n");
        assert_eq!(Clip("\u{7}ün", 10).to_string(), "\\u{7}ün");
    }
}
