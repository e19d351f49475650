//! The leading keywords of each statement, for the few discovery decisions that depend on what kind
//! of statement a file holds (Flyway's own choice to run a file outside a transaction).
//!
//! This is a lexer, not the `sql` module's splitter: it only needs to skip comments, quoted strings and
//! identifiers, and dollar-quoted bodies correctly, so that a keyword inside one of them never counts.

/// How many words of each statement are kept: enough for `REINDEX (VERBOSE) TABLE CONCURRENTLY`.
const HEAD_WORDS: usize = 6;

/// The first words of each top-level statement of `sql`, upper-cased. Works on bytes so that no
/// input, whatever its characters, can split a UTF-8 sequence.
pub(super) fn statement_heads(sql: &str) -> Vec<Vec<String>> {
    let bytes = sql.as_bytes();
    let mut heads = vec![Vec::new()];
    let mut pos = 0;
    while let Some(&byte) = bytes.get(pos) {
        let rest = &bytes[pos..];
        pos += match byte {
            b'-' if rest.starts_with(b"--") => {
                rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len())
            }
            b'/' if rest.starts_with(b"/*") => block_comment_len(rest),
            b'\'' | b'"' => quoted_len(rest, byte, false),
            b'$' => dollar_quoted_len(rest).unwrap_or(1),
            b';' => {
                heads.push(Vec::new());
                1
            }
            _ if is_word_byte(byte) => {
                let len = rest
                    .iter()
                    .position(|&b| !is_word_byte(b))
                    .unwrap_or(rest.len());
                if len == 1 && byte.eq_ignore_ascii_case(&b'e') && rest.get(1) == Some(&b'\'') {
                    // An E'' string, where a backslash escapes the quote.
                    1 + quoted_len(&rest[1..], b'\'', true)
                } else {
                    if let Some(head) = heads.last_mut().filter(|head| head.len() < HEAD_WORDS) {
                        head.push(
                            rest[..len]
                                .iter()
                                .map(|b| char::from(b.to_ascii_uppercase()))
                                .collect(),
                        );
                    }
                    len
                }
            }
            _ => 1,
        };
    }
    heads.retain(|head| !head.is_empty());
    heads
}

fn is_word_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_'
}

/// Length of a `/* … */` comment at the start of `rest`; PostgreSQL lets them nest.
fn block_comment_len(rest: &[u8]) -> usize {
    let mut depth = 0usize;
    let mut pos = 0;
    while pos < rest.len() {
        if rest[pos..].starts_with(b"/*") {
            depth += 1;
            pos += 2;
        } else if rest[pos..].starts_with(b"*/") {
            depth -= 1;
            pos += 2;
            if depth == 0 {
                return pos;
            }
        } else {
            pos += 1;
        }
    }
    rest.len()
}

/// Length of a quoted string or identifier at the start of `rest` (which starts with `quote`); a
/// doubled quote is an escaped one, as is a backslashed one in an `E''` string.
fn quoted_len(rest: &[u8], quote: u8, backslash_escapes: bool) -> usize {
    let mut pos = 1;
    while let Some(&byte) = rest.get(pos) {
        let escaped = (byte == b'\\' && backslash_escapes)
            || (byte == quote && rest.get(pos + 1) == Some(&quote));
        if escaped {
            pos += 2;
        } else if byte == quote {
            return pos + 1;
        } else {
            pos += 1;
        }
    }
    rest.len()
}

/// Length of a `$tag$ … $tag$` body at the start of `rest`, or `None` when the `$` opens no tag (a
/// positional parameter such as `$1`).
fn dollar_quoted_len(rest: &[u8]) -> Option<usize> {
    let tag_end = 1 + rest[1..].iter().position(|&b| !is_word_byte(b))?;
    let starts_with_digit = rest.get(1).is_some_and(u8::is_ascii_digit);
    if rest[tag_end] != b'$' || starts_with_digit {
        return None;
    }
    let tag = &rest[..=tag_end];
    let body = &rest[tag.len()..];
    Some(
        body.windows(tag.len())
            .position(|window| window == tag)
            .map_or(rest.len(), |end| 2 * tag.len() + end),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heads(sql: &str) -> Vec<String> {
        statement_heads(sql)
            .into_iter()
            .map(|words| words.join(" "))
            .collect()
    }

    #[test]
    fn keeps_the_first_words_of_each_statement() {
        assert_eq!(
            heads("create index concurrently users_email ON users (email);\nvacuum analyze users;"),
            [
                "CREATE INDEX CONCURRENTLY USERS_EMAIL ON USERS",
                "VACUUM ANALYZE USERS"
            ]
        );
    }

    #[test]
    fn skips_comments_strings_and_dollar_bodies() {
        let sql = "-- VACUUM\n/* outer /* VACUUM; */ still */ COMMENT ON TABLE t IS 'VACUUM; it''s';\n\
                   CREATE FUNCTION f() RETURNS void AS $body$ BEGIN; VACUUM; END $body$ LANGUAGE sql;\n\
                   SELECT E'\\'; VACUUM', \"a;b\", $1;";
        assert_eq!(
            heads(sql),
            [
                "COMMENT ON TABLE T IS",
                "CREATE FUNCTION F RETURNS VOID AS",
                "SELECT 1"
            ]
        );
    }

    #[test]
    fn survives_unterminated_input_and_non_ascii_text() {
        assert_eq!(heads("SELECT 'unterminated"), ["SELECT"]);
        assert_eq!(heads("SELECT $$ body"), ["SELECT"]);
        assert_eq!(heads("/* open"), Vec::<String>::new());
        assert_eq!(heads("SELECT 'é'; DROP TABLE é;"), ["SELECT", "DROP TABLE"]);
    }
}
