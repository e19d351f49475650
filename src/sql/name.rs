//! Object names as PostgreSQL resolves them: unquoted identifiers fold to lower case, quoted ones keep
//! their case.

use std::fmt;

use sqlparser::ast;

use super::lex::{Token, TokenKind};

/// A possibly schema-qualified name, already case-folded.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectName {
    pub schema: Option<String>,
    pub name: String,
}

/// Folds one identifier as PostgreSQL does.
pub fn fold_ident(ident: &ast::Ident) -> String {
    if ident.quote_style.is_some() {
        ident.value.clone()
    } else {
        lowercase(&ident.value)
    }
}

/// `str::to_lowercase`, without decoding characters when the text is ASCII (almost every name).
fn lowercase(text: &str) -> String {
    if text.is_ascii() {
        text.to_ascii_lowercase()
    } else {
        text.to_lowercase()
    }
}

/// The schema and the name of a dotted name's parts: the last two, so that a three-part
/// `db.schema.name` keeps `schema.name`; `None` for no part.
fn last_two<T>(parts: impl IntoIterator<Item = T>) -> Option<(Option<T>, T)> {
    let (mut schema, mut name) = (None, None);
    for part in parts {
        schema = name.replace(part);
    }
    Some((schema, name?))
}

impl ObjectName {
    pub fn new(schema: Option<&str>, name: &str) -> Self {
        ObjectName {
            schema: schema.map(str::to_owned),
            name: name.to_owned(),
        }
    }

    /// From a sqlparser name; a three-part `db.schema.name` keeps the last two parts.
    pub fn from_ast(name: &ast::ObjectName) -> Option<Self> {
        // Only the last two parts are kept, so only they are folded.
        let (schema, name) = last_two(name.0.iter().filter_map(|part| part.as_ident()))?;
        Some(ObjectName {
            schema: schema.map(fold_ident),
            name: fold_ident(name),
        })
    }

    /// From a dotted name at the start of `tokens` (words, quoted identifiers and `.`).
    pub fn from_tokens(text: &str, tokens: &[Token]) -> Option<Self> {
        let mut parts = Vec::new();
        for (i, token) in tokens.iter().enumerate() {
            let expect_part = i % 2 == 0;
            let raw = &text[token.range()];
            match token.kind {
                TokenKind::Word if expect_part => parts.push(lowercase(raw)),
                TokenKind::QuotedIdent if expect_part && !token.unterminated => {
                    let inner = raw
                        .trim_start_matches("U&")
                        .trim_start_matches("u&")
                        .strip_prefix('"')
                        .and_then(|r| r.strip_suffix('"'))
                        .unwrap_or(raw);
                    parts.push(inner.replace("\"\"", "\""));
                }
                TokenKind::Punct if !expect_part && raw == "." => {}
                _ => break,
            }
        }
        let (schema, name) = last_two(parts)?;
        Some(ObjectName { schema, name })
    }

    /// This name with its schema filled in from the search path when it has none.
    pub fn qualified(&self, default_schema: &str) -> ObjectName {
        ObjectName {
            schema: Some(
                self.schema
                    .clone()
                    .unwrap_or_else(|| default_schema.to_owned()),
            ),
            name: self.name.clone(),
        }
    }
}

impl fmt::Display for ObjectName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.schema {
            Some(schema) => write!(f, "{schema}.{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// Splits a name as PostgreSQL's `quote_ident` and `format('%I.%I', …)` print it
/// (`public."User".email`) into its exact identifiers, and returns what follows them (a function's
/// `(argument types)`) apart. Unquoted parts are taken as written: `quote_ident` leaves only
/// lower-case ones unquoted.
pub fn split_quoted(text: &str) -> (Vec<String>, &str) {
    let mut parts = Vec::new();
    let mut rest = text;
    loop {
        let (part, after) = match rest.strip_prefix('"') {
            Some(quoted) => quoted_part(quoted),
            None => {
                let end = rest.find(['.', '(']).unwrap_or(rest.len());
                (rest[..end].to_owned(), &rest[end..])
            }
        };
        parts.push(part);
        match after.strip_prefix('.') {
            Some(next) => rest = next,
            None => return (parts, after),
        }
    }
}

/// A name as `quote_ident` and `format('%I.%I', …)` print it (`public."User".email`) as messages,
/// traces and the JSON report show names: its exact parts joined by dots (`public.User.email`),
/// with a function's `(argument types)` kept as they are.
pub fn unquoted(text: &str) -> String {
    let (parts, rest) = split_quoted(text);
    let mut shown = parts.join(".");
    shown.push_str(rest);
    shown
}

/// The identifier of a quoted part (after its opening quote), `""` standing for `"`, and the text
/// after its closing quote.
fn quoted_part(text: &str) -> (String, &str) {
    let mut part = String::new();
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c != '"' {
            part.push(c);
        } else if chars.peek().is_some_and(|&(_, next)| next == '"') {
            part.push('"');
            chars.next();
        } else {
            return (part, &text[i + 1..]);
        }
    }
    (part, "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_names_split_into_exact_identifiers() {
        let split = |text| {
            let (parts, rest) = split_quoted(text);
            (parts.join("|"), rest.to_owned())
        };
        assert_eq!(split("public.users"), ("public|users".into(), "".into()));
        assert_eq!(
            split(r#"public."User"."Nick.Name""#),
            ("public|User|Nick.Name".into(), "".into())
        );
        assert_eq!(split(r#""a""b".t"#), (r#"a"b|t"#.into(), "".into()));
        assert_eq!(
            split(r#"public."Do It"(integer, "My Type")"#),
            ("public|Do It".into(), r#"(integer, "My Type")"#.into())
        );
        assert_eq!(split("vector"), ("vector".into(), "".into()));
        // An unterminated quote (never printed by PostgreSQL) keeps what there is.
        assert_eq!(split(r#"public."open"#), ("public|open".into(), "".into()));
    }
}
