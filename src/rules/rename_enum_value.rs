//! `ALTER TYPE … RENAME VALUE` relabels an enum value in every stored row at once (rows store the
//! value's OID, not its label): the application version still running keeps writing the old label,
//! which PostgreSQL now rejects, and reads a label it does not know. The rename itself is instant.
//!
//! The finding names the columns the model knows use the type. An enum created earlier in the same
//! migration is skipped.

use sqlparser::ast::{AlterTypeOperation, Statement as Ast};

use super::syntax::sql_name;
use super::{kinds, Category, Diagnostic, Kinds, Rule, Severity, StatementContext};
use crate::schema::user_type_name;
use crate::sql::{Kind, ObjectName, TokenKind};

pub const RULE: Rule = Rule {
    id: "rename-enum-value",
    category: Category::Compatibility,
    default_severity: Severity::Warning,
    size_graded: false,
    summary: "ALTER TYPE RENAME VALUE breaks the application version still running",
    doc: include_str!("../../rules/rename-enum-value.md"),
    check,
    kinds: Kinds::Only(&[kinds::ALTER]),
};

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    let Some((type_name, from, to)) = renamed_value(cx) else {
        return;
    };
    if cx.catalog.is_new_type(&type_name) {
        return;
    }
    let resolved = cx.catalog.resolve(&type_name);
    let users = cx.catalog.columns_where(|column| {
        column
            .data_type
            .as_ref()
            .and_then(user_type_name)
            .is_some_and(|name| cx.catalog.resolve(&name) == resolved)
    });
    let used_by = if users.is_empty() {
        String::new()
    } else {
        format!(" (used by {})", users.join(", "))
    };
    let (from_sql, to_sql) = (quote(&from), quote(&to));
    out.push(cx.diagnostic(
        cx.offset_of(&["rename", "value"]),
        None,
        format!(
            "renaming value {from_sql} of enum {resolved} to {to_sql} relabels it in every stored row \
             at once{used_by}: the application version still running keeps writing {from_sql}, which \
             now fails (invalid input value for enum {resolved}: \"{from}\"), and reads {to_sql}, \
             which it does not know"
        ),
        format!(
            "expand and contract instead: `ALTER TYPE {} ADD VALUE {to_sql};`, deploy code that \
             reads both labels and writes {to_sql}, move the rows in batches (`UPDATE … SET … = \
             {to_sql} WHERE … = {from_sql}`), and leave {from_sql} unused (an enum value cannot be \
             dropped without recreating the type)",
            sql_name(&resolved)
        ),
    ));
}

/// A string as an SQL literal.
fn quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// The type and the old and new labels of `ALTER TYPE name RENAME VALUE 'from' TO 'to'`.
fn renamed_value(cx: &StatementContext) -> Option<(ObjectName, String, String)> {
    let statement = cx.statement;
    match statement.ast() {
        Some(Ast::AlterType(alter)) => match &alter.operation {
            AlterTypeOperation::RenameValue(rename) => Some((
                ObjectName::from_ast(&alter.name)?,
                rename.from.value.clone(),
                rename.to.value.clone(),
            )),
            _ => None,
        },
        None if statement.class.kind == Kind::AlterType => {
            let at = statement.find_keywords(cx.text, &["rename", "value"])?;
            let mut labels = statement
                .tokens
                .iter()
                .filter(|t| t.range().start > at && t.kind == TokenKind::String)
                .filter_map(|t| {
                    let quoted = cx.text.get(t.range())?;
                    Some(
                        quoted
                            .strip_prefix('\'')?
                            .strip_suffix('\'')?
                            .replace("''", "'"),
                    )
                });
            let (from, to) = (labels.next()?, labels.next()?);
            Some((statement.class.target.clone()?, from, to))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::check_rule;

    const RULE: &str = "rename-enum-value";
    const MOOD: &str = "CREATE TYPE mood AS ENUM ('sad', 'ok');\n\
                        CREATE TABLE people (id bigint PRIMARY KEY, mood mood, past_moods mood[]);";

    #[test]
    fn fires_on_an_existing_enum() {
        assert_eq!(
            check_rule(RULE, &[MOOD], "ALTER TYPE mood RENAME VALUE 'ok' TO 'fine';"),
            "\
warning[rename-enum-value]: renaming value 'ok' of enum public.mood to 'fine' relabels it in every stored row at once (used by public.people.mood, public.people.past_moods): the application version still running keeps writing 'ok', which now fails (invalid input value for enum public.mood: \"ok\"), and reads 'fine', which it does not know
 --> migration.sql:1:17
  |
1 | ALTER TYPE mood RENAME VALUE 'ok' TO 'fine';
  |                 ^^^^^^^^^^^^^^^^^^^^^^^^^^^
  |
  = help: expand and contract instead: `ALTER TYPE public.mood ADD VALUE 'fine';`, deploy code that reads both labels and writes 'fine', move the rows in batches (`UPDATE … SET … = 'fine' WHERE … = 'ok'`), and leave 'ok' unused (an enum value cannot be dropped without recreating the type)

"
        );
    }

    #[test]
    fn fires_on_an_unknown_type() {
        let report = check_rule(
            RULE,
            &[],
            "ALTER TYPE \"Status\" RENAME VALUE 'it''s' TO 'done';",
        );
        assert!(
            report.contains("renaming value 'it''s' of enum public.Status to 'done' relabels it in every stored row at once: "),
            "{report}"
        );
        assert!(
            report.contains("`ALTER TYPE public.\"Status\" ADD VALUE 'done';`"),
            "{report}"
        );
    }

    #[test]
    fn silent_on_new_types_and_other_changes() {
        for sql in [
            "CREATE TYPE color AS ENUM ('red');\nALTER TYPE color RENAME VALUE 'red' TO 'crimson';",
            "ALTER TYPE mood ADD VALUE 'happy';",
            "ALTER TYPE mood RENAME TO feeling;",
        ] {
            assert_eq!(check_rule(RULE, &[MOOD], sql), "", "{sql}");
        }
    }
}
