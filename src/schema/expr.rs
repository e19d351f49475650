//! What the model needs to know about the SQL text of CHECK constraints, index expressions and
//! partial-index predicates: which columns they mention, how a column rename rewrites them, and
//! whether a CHECK proves a column NOT NULL.
//!
//! The model keeps expressions as text (that is what a report shows); these helpers read them with
//! the project's lexer, or with sqlparser where the structure matters.

use sqlparser::ast::{BinaryOperator, Expr};

use super::naming::{quote_ident, truncate_identifier};
use crate::sql;
use crate::sql::lex::{tokenize, Token, TokenKind};

/// The identifiers of `text` that can name a column, as (token, folded name): words and quoted
/// identifiers that are neither a function name (followed by `(`) nor a type name (after `::`).
fn column_refs(text: &str) -> Vec<(Token, String)> {
    let tokens: Vec<Token> = tokenize(text, 0..text.len())
        .into_iter()
        .filter(|t| !t.kind.is_trivia())
        .collect();
    let mut refs = Vec::new();
    for (i, token) in tokens.iter().enumerate() {
        let raw = &text[token.range()];
        let name = match token.kind {
            TokenKind::Word => raw.to_lowercase(),
            TokenKind::QuotedIdent if !token.unterminated && raw.starts_with('"') => {
                raw[1..raw.len() - 1].replace("\"\"", "\"")
            }
            _ => continue,
        };
        let next_is_call = tokens
            .get(i + 1)
            .is_some_and(|t| t.kind == TokenKind::LParen);
        let after_cast = i > 0 && &text[tokens[i - 1].range()] == ":";
        if !next_is_call && !after_cast {
            refs.push((token.clone(), truncate_identifier(&name)));
        }
    }
    refs
}

/// True when `text` mentions the column `column`.
pub fn mentions(text: &str, column: &str) -> bool {
    column_refs(text).iter().any(|(_, name)| name == column)
}

/// The columns among `columns` that `text` mentions, each once, in the order of `columns`.
pub fn mentioned_columns<'a>(
    text: &str,
    columns: impl IntoIterator<Item = &'a str>,
) -> Vec<String> {
    let refs = column_refs(text);
    columns
        .into_iter()
        .filter(|column| refs.iter().any(|(_, name)| name == column))
        .map(str::to_owned)
        .collect()
}

/// The identifiers `text` uses as column names, each once, in order of appearance, when the columns
/// of the table are not known: every identifier except SQL's reserved words (`IS`, `NOT`, `NULL`,
/// `AND`, …) and the type of a `CAST(… AS type)`.
pub fn referenced_identifiers(text: &str) -> Vec<String> {
    const RESERVED: &[&str] = &[
        "all",
        "and",
        "any",
        "array",
        "as",
        "asymmetric",
        "between",
        "both",
        "case",
        "cast",
        "collate",
        "current_date",
        "current_time",
        "current_timestamp",
        "current_user",
        "default",
        "distinct",
        "else",
        "end",
        "escape",
        "exists",
        "false",
        "from",
        "ilike",
        "in",
        "interval",
        "is",
        "isnull",
        "leading",
        "like",
        "localtime",
        "localtimestamp",
        "not",
        "notnull",
        "null",
        "or",
        "overlaps",
        "session_user",
        "similar",
        "some",
        "symmetric",
        "then",
        "to",
        "trailing",
        "true",
        "unknown",
        "user",
        "value",
        "when",
        "zone",
        "time",
        "at",
    ];
    let refs = column_refs(text);
    let mut names: Vec<String> = Vec::new();
    for (i, (token, name)) in refs.iter().enumerate() {
        let unquoted = !text[token.range()].starts_with('"');
        let after_as = i > 0
            && refs[i - 1].1 == "as"
            && text[refs[i - 1].0.range().end..token.range().start]
                .trim()
                .is_empty();
        let reserved = unquoted && RESERVED.contains(&name.as_str());
        if !reserved && !after_as && !names.contains(name) {
            names.push(name.clone());
        }
    }
    names
}

/// `text` with every mention of the column `old` replaced by `new`, as PostgreSQL shows a stored
/// expression after `RENAME COLUMN`.
pub fn rename_column(text: &str, old: &str, new: &str) -> String {
    let mut renamed = String::with_capacity(text.len());
    let mut last = 0;
    for (token, name) in column_refs(text) {
        if name == old {
            renamed.push_str(&text[last..token.range().start]);
            renamed.push_str(&quote_ident(new));
            last = token.range().end;
        }
    }
    renamed.push_str(&text[last..]);
    renamed
}

/// True when the boolean expression `text` can only hold for rows where `column` is not null: it is
/// `column IS NOT NULL`, or a conjunction with that term (what PostgreSQL 12+ accepts as proof to
/// skip the scan of `SET NOT NULL`).
pub fn implies_not_null(text: &str, column: &str) -> bool {
    let Some(expr) = sql::parser(text)
        .ok()
        .and_then(|mut parser| parser.parse_expr().ok())
    else {
        return false;
    };
    expr_implies_not_null(&expr, column)
}

fn expr_implies_not_null(expr: &Expr, column: &str) -> bool {
    match expr {
        Expr::Nested(inner) => expr_implies_not_null(inner, column),
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => expr_implies_not_null(left, column) || expr_implies_not_null(right, column),
        Expr::IsNotNull(inner) => is_column(inner, column),
        _ => false,
    }
}

fn is_column(expr: &Expr, column: &str) -> bool {
    match expr {
        Expr::Nested(inner) => is_column(inner, column),
        Expr::Identifier(ident) => super::naming::ident(ident) == column,
        Expr::CompoundIdentifier(parts) => parts
            .last()
            .is_some_and(|ident| super::naming::ident(ident) == column),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_skip_functions_and_types() {
        assert!(mentions("length(name) > 0", "name"));
        assert!(!mentions("length(name) > 0", "length"));
        assert!(!mentions("(x)::text <> ''", "text"));
        assert!(mentions("\"firstName\" IS NOT NULL", "firstName"));
        assert!(!mentions("\"firstName\" IS NOT NULL", "firstname"));
        assert_eq!(
            mentioned_columns("a > b AND a < 10", ["a", "b", "c"]),
            ["a", "b"]
        );
    }

    #[test]
    fn identifiers_without_a_column_list() {
        assert_eq!(referenced_identifiers("email IS NOT NULL"), ["email"]);
        assert_eq!(
            referenced_identifiers("CAST(price AS numeric) > 0 AND \"Status\" IN ('a')"),
            ["price", "Status"]
        );
    }

    #[test]
    fn renames_rewrite_only_the_column() {
        assert_eq!(
            rename_column("price > 0 AND lower(price_unit) = 'eur'", "price", "Amount"),
            "\"Amount\" > 0 AND lower(price_unit) = 'eur'"
        );
    }

    #[test]
    fn not_null_proofs() {
        assert!(implies_not_null("email IS NOT NULL", "email"));
        assert!(implies_not_null("((\"Email\" IS NOT NULL))", "Email"));
        assert!(implies_not_null(
            "a > 0 AND users.email IS NOT NULL",
            "email"
        ));
        assert!(!implies_not_null("a > 0 OR email IS NOT NULL", "email"));
        assert!(!implies_not_null("email IS NULL", "email"));
        assert!(!implies_not_null("other IS NOT NULL", "email"));
        assert!(!implies_not_null("not sql at all (", "email"));
    }
}
