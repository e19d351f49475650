//! Text from the repository under review, made safe to print.
//!
//! File names, identifiers and SQL come from pull requests. Printed raw, a newline in a file name forges
//! a report line (or a CI workflow command), an ESC starts a terminal control sequence, and a
//! right-to-left override makes text read differently from what it is. Every report format and every
//! message escapes such text through here: control characters (C0, DEL, C1), the invisible characters
//! that reorder text (bidi controls) and the line and paragraph separators. Backslashes are left as they
//! are, so escaping twice changes nothing and SQL such as `E'\n'` reads as written.

use std::borrow::Cow;
use std::ffi::OsStr;
use std::fmt::Write;
use std::fs::File;
use std::io::Write as _;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::OnceLock;

/// `text` with every character that is not safe to print written as an escape: `\n`, `\r`, `\t`,
/// `\x1b` for the other ASCII controls, `\u{202e}` for the rest.
pub fn text(text: &str) -> Cow<'_, str> {
    escape_chars(text, |_| true)
}

/// As [`text`], but line breaks (`\n`) and tabs are kept: for multi-line text such as a finding's
/// help (neither can forge anything on a line of its own).
pub fn lines(text: &str) -> Cow<'_, str> {
    escape_chars(text, |c| c != '\n' && c != '\t')
}

/// A path for people to read: escaped as [`text`], and each byte that is not UTF-8 written as `\xNN`,
/// so that two different names never print the same.
pub fn path(path: &Path) -> String {
    let mut out = String::new();
    for chunk in path.as_os_str().as_bytes().utf8_chunks() {
        out.push_str(&text(chunk.valid()));
        push_bytes(&mut out, chunk.invalid());
    }
    out
}

/// A file name as text that keeps every name apart: UTF-8 is kept as it is (controls too: this is a
/// name to match and sort, not to print) and each byte that is not UTF-8 becomes `\xNN`.
pub fn os_name(name: &OsStr) -> Cow<'_, str> {
    if let Some(utf8) = name.to_str() {
        return Cow::Borrowed(utf8);
    }
    let mut out = String::new();
    for chunk in name.as_bytes().utf8_chunks() {
        out.push_str(chunk.valid());
        push_bytes(&mut out, chunk.invalid());
    }
    Cow::Owned(out)
}

/// Whether a character must not reach a terminal, a log or a rendered page as it is.
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            // Arabic letter mark, zero-width characters, left-to-right and right-to-left marks,
            // embeddings and overrides, isolates, the line and paragraph separators some renderers
            // break lines at, and the byte order mark.
            '\u{061c}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
                | '\u{2028}' | '\u{2029}' | '\u{feff}'
        )
}

fn escape_chars(text: &str, escaped: impl Fn(char) -> bool) -> Cow<'_, str> {
    let needs = |c: char| is_unsafe(c) && escaped(c);
    // Printable ASCII is never escaped: most text is cleared a byte at a time, without decoding
    // characters (findings' helps and messages are escaped one by one).
    let printable = |b: u8| (b' '..=b'~').contains(&b) || (b.is_ascii() && !needs(char::from(b)));
    if text.bytes().all(printable) || !text.chars().any(needs) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if !needs(c) {
            out.push(c);
            continue;
        }
        let _ = match c {
            '\n' => write!(out, "\\n"),
            '\r' => write!(out, "\\r"),
            '\t' => write!(out, "\\t"),
            c if c.is_ascii() => write!(out, "\\x{:02x}", u32::from(c)),
            c => write!(out, "\\u{{{:x}}}", u32::from(c)),
        };
    }
    Cow::Owned(out)
}

/// Whether what goes to `stream` lands in a GitHub Actions job's log, where the runner reads
/// workflow commands: inside GitHub Actions (`GITHUB_ACTIONS=true`), unless redirected to a file (a
/// report written for a comment or an artifact is not the log).
pub fn goes_to_actions_log(stream: impl AsFd) -> bool {
    let to_file = || {
        let file = File::from(stream.as_fd().try_clone_to_owned().ok()?);
        file.metadata().ok().map(|m| m.is_file())
    };
    std::env::var("GITHUB_ACTIONS").as_deref() == Ok("true") && to_file() != Some(true)
}

/// `text` between `::stop-commands::TOKEN` and `::TOKEN::`, for a log on GitHub Actions. The runner
/// reads two syntaxes of workflow command, `::command::` at a line's start and the legacy
/// `##[command]` anywhere in a line, and while stopped it runs neither, only the token's resume: so a
/// name, comment or model text that looks like a command stays text, whichever syntax it tries.
/// `token` must be unguessable, or the data could resume processing itself.
pub fn commands_stopped(text: &str, token: &str) -> String {
    let newline = if text.ends_with('\n') { "" } else { "\n" };
    format!("::stop-commands::{token}\n{text}{newline}::{token}::\n")
}

/// Writes one of migagent's messages (`warning: …`, `error: …`) to stderr. Messages quote file names,
/// SQL and server errors: escaped as [`lines`], and in a GitHub Actions log between stopped
/// commands (with one unguessable token per run), so nothing they quote runs as a workflow command.
pub fn eprint(message: &str) {
    static TOKEN: OnceLock<String> = OnceLock::new();
    let mut text = lines(message).into_owned();
    text.push('\n');
    let stderr = std::io::stderr();
    if goes_to_actions_log(&stderr) {
        text = commands_stopped(&text, TOKEN.get_or_init(crate::nonce::nonce));
    }
    let _ = stderr.lock().write_all(text.as_bytes());
}

fn push_bytes(out: &mut String, bytes: &[u8]) {
    for byte in bytes {
        let _ = write!(out, "\\x{byte:02x}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;
    use std::os::unix::ffi::OsStringExt;

    #[test]
    fn controls_and_bidi_overrides_are_escaped() {
        assert_eq!(
            text("a\nb\r\tc\x1b[31md\u{7f}"),
            "a\\nb\\r\\tc\\x1b[31md\\x7f"
        );
        assert_eq!(text("\u{9b}x\u{202e}gpj.sql"), "\\u{9b}x\\u{202e}gpj.sql");
        assert_eq!(text("\u{2028}"), "\\u{2028}");
    }

    #[test]
    fn printable_text_is_borrowed_unchanged() {
        for plain in ["0002_ünï.sql", "E'\\n' — «x»", "a b", ""] {
            assert!(
                matches!(text(plain), Cow::Borrowed(t) if t == plain),
                "{plain}"
            );
        }
    }

    #[test]
    fn escaping_twice_changes_nothing() {
        let once = text("x\x1by\nz\u{202e}");
        assert_eq!(text(&once), once);
    }

    #[test]
    fn stopped_commands_end_with_the_token_on_its_own_line() {
        assert_eq!(
            commands_stopped("a\nb", "t0k"),
            "::stop-commands::t0k\na\nb\n::t0k::\n"
        );
        assert_eq!(
            commands_stopped("a\n", "t0k"),
            "::stop-commands::t0k\na\n::t0k::\n"
        );
    }

    #[test]
    fn lines_keep_newlines_only() {
        assert_eq!(lines("a\nb\x1b\r"), "a\nb\\x1b\\r");
    }

    #[test]
    fn paths_show_bytes_that_are_not_utf8() {
        let name = OsString::from_vec(b"db/0002_caf\xe9\n.sql".to_vec());
        assert_eq!(path(Path::new(&name)), "db/0002_caf\\xe9\\n.sql");
        assert_eq!(os_name(&name), "db/0002_caf\\xe9\n.sql");
        assert_eq!(os_name(OsStr::new("ünï")), "ünï");
    }
}
