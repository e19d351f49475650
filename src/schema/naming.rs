//! The names PostgreSQL generates for objects a statement does not name: `<table>_pkey`,
//! `<table>_<col>_key`, `<table>_<col>_fkey`, `<table>_<col>_check`, `<table>_<col>_idx`,
//! `<table>_<col>_seq`, with the same truncation and collision rules, so that a later
//! `DROP CONSTRAINT users_email_key` or `ALTER INDEX users_pkey RENAME …` finds the object.
//!
//! Mirrors `makeObjectName`, `ChooseRelationName`, `ChooseConstraintName`,
//! `ChooseIndexNameAddition` and `FigureIndexColname` of PostgreSQL's backend.

use sqlparser::ast::{Expr, Ident};

use crate::sql::name::fold_ident;
use crate::sql::ObjectName;

/// Identifiers longer than this many bytes are silently truncated by PostgreSQL
/// (`NAMEDATALEN - 1`).
pub const MAX_IDENTIFIER_BYTES: usize = 63;

/// The identifier as PostgreSQL stores it: at most 63 bytes, cut at a character boundary.
pub fn truncate_identifier(name: &str) -> String {
    clip(name, MAX_IDENTIFIER_BYTES).to_owned()
}

/// A folded and truncated identifier from the syntax tree: truncated where it was folded, not
/// copied again.
pub fn ident(ident: &Ident) -> String {
    let mut folded = fold_ident(ident);
    folded.truncate(clip(&folded, MAX_IDENTIFIER_BYTES).len());
    folded
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary
/// (`pg_mbcliplen`).
fn clip(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// `name1[_name2][_label]`, shortening the longer of `name1` and `name2` until the whole fits in
/// 63 bytes (`makeObjectName`).
pub fn make_object_name(name1: &str, name2: Option<&str>, label: &str) -> String {
    let mut overhead = 0;
    let mut name1_len = name1.len();
    let mut name2_len = 0;
    if let Some(name2) = name2 {
        name2_len = name2.len();
        overhead += 1;
    }
    if !label.is_empty() {
        overhead += label.len() + 1;
    }
    let available = MAX_IDENTIFIER_BYTES.saturating_sub(overhead);
    while name1_len + name2_len > available {
        if name1_len > name2_len {
            name1_len -= 1;
        } else {
            name2_len -= 1;
        }
    }
    let mut name = clip(name1, name1_len).to_owned();
    if let Some(name2) = name2 {
        name.push('_');
        name.push_str(clip(name2, name2_len));
    }
    if !label.is_empty() {
        name.push('_');
        name.push_str(label);
    }
    name
}

/// The first of `name1_name2_label`, `name1_name2_label1`, `name1_name2_label2`, … that `taken`
/// does not reject (`ChooseRelationName`, `ChooseConstraintName`).
pub fn choose_name(
    name1: &str,
    name2: Option<&str>,
    label: &str,
    taken: impl Fn(&str) -> bool,
) -> String {
    let mut candidate = make_object_name(name1, name2, label);
    let mut pass = 0u32;
    while taken(&candidate) {
        pass += 1;
        candidate = make_object_name(name1, name2, &format!("{label}{pass}"));
    }
    candidate
}

/// Column names joined with `_` for a generated index or constraint name, stopping once the result
/// is as long as an identifier can be (`ChooseIndexNameAddition`); `None` for no columns.
pub fn columns_addition(columns: &[String]) -> Option<String> {
    let mut addition = String::new();
    for column in columns {
        if !addition.is_empty() {
            addition.push('_');
        }
        addition.push_str(clip(column, MAX_IDENTIFIER_BYTES));
        if addition.len() > MAX_IDENTIFIER_BYTES {
            break;
        }
    }
    (!addition.is_empty()).then_some(addition)
}

/// The name an index key contributes to a generated index name: the column for a column, the
/// function name for a function call, `expr` for other expressions (`FigureIndexColname`).
pub fn index_key_name(expr: &Expr) -> String {
    figure_name(expr).unwrap_or_else(|| "expr".to_owned())
}

/// The name PostgreSQL gives the value of an expression (`FigureColname`): a column's name, a
/// function's name, `case`; `None` when it has none of its own.
pub fn figure_name(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Identifier(name) => Some(ident(name)),
        Expr::CompoundIdentifier(parts) => parts.last().map(ident),
        Expr::Function(function) => function
            .name
            .0
            .last()
            .and_then(|part| part.as_ident())
            .map(ident),
        Expr::Nested(inner) | Expr::Collate { expr: inner, .. } => figure_name(inner),
        Expr::Cast {
            expr, data_type, ..
        } => figure_name(expr).or_else(|| {
            // A cast of a constant is named after the type's last name.
            let text = data_type.to_string();
            let last = text.split(['(', ' ', '[']).next().unwrap_or(&text);
            let last = last.rsplit('.').next().unwrap_or(last);
            Some(last.trim_matches('"').to_lowercase())
        }),
        Expr::Case { .. } => Some("case".to_owned()),
        _ => None,
    }
}

/// `name` as SQL text: bare when PostgreSQL would print it bare, double-quoted otherwise.
pub fn quote_ident(name: &str) -> String {
    let bare = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '$');
    if bare {
        name.to_owned()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// A (qualified) name as SQL text, each part quoted as [`quote_ident`] does.
pub fn quote_name(name: &ObjectName) -> String {
    match &name.schema {
        Some(schema) => format!("{}.{}", quote_ident(schema), quote_ident(&name.name)),
        None => quote_ident(&name.name),
    }
}

/// A string literal as SQL must write it: `'it''s'`.
pub fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_are_joined() {
        assert_eq!(make_object_name("users", None, "pkey"), "users_pkey");
        assert_eq!(
            make_object_name("users", Some("email"), "key"),
            "users_email_key"
        );
        assert_eq!(
            columns_addition(&["a".into(), "b".into()]).as_deref(),
            Some("a_b")
        );
    }

    #[test]
    fn long_names_shorten_the_longer_part_first() {
        let table = "t".repeat(40);
        let column = "c".repeat(40);
        let name = make_object_name(&table, Some(&column), "fkey");
        assert_eq!(name.len(), 63);
        // 63 - len("_") - len("_fkey") = 57 characters shared as evenly as possible.
        assert_eq!(name, format!("{}_{}_fkey", "t".repeat(29), "c".repeat(28)));
        let name = make_object_name(&"x".repeat(70), None, "pkey");
        assert_eq!(name, format!("{}_pkey", "x".repeat(58)));
    }

    #[test]
    fn truncation_keeps_characters_whole() {
        let name = "é".repeat(40);
        let truncated = truncate_identifier(&name);
        assert_eq!(truncated.len(), 62);
        assert!(truncated.chars().all(|c| c == 'é'));
    }

    #[test]
    fn collisions_get_a_number() {
        let taken = ["t_a_idx".to_owned(), "t_a_idx1".to_owned()];
        assert_eq!(
            choose_name("t", Some("a"), "idx", |n| taken.iter().any(|t| t == n)),
            "t_a_idx2"
        );
    }

    #[test]
    fn quoting() {
        assert_eq!(quote_ident("users_id_seq"), "users_id_seq");
        assert_eq!(quote_ident("User_id_seq"), "\"User_id_seq\"");
    }
}
