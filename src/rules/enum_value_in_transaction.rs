//! `ALTER TYPE … ADD VALUE` inside a transaction block (the file's BEGIN, the tool's transaction, a
//! DO block) fails before PostgreSQL 12. From 12 on it runs, but the new value cannot be used until
//! the transaction commits: a later statement of the same transaction that uses it fails with
//! `unsafe use of new value`. Both make the migration fail, so both are reported; on 12+ only when a
//! later statement of the transaction uses the new value as a string literal.
//!
//! A type created earlier in the same migration is skipped: PostgreSQL allows both when the type
//! was created in the same transaction, and migagent assumes it was.

use sqlparser::ast::{AlterTypeOperation, Statement as Ast};

use super::nested_transaction::{later_in_transaction, transaction_opener, Opener, OPT_OUT};
use super::{kinds, Category, Diagnostic, Kinds, Rule, Severity, StatementContext};
use crate::sql::{Kind, ObjectName, TokenKind};

pub const RULE: Rule = Rule {
    id: "enum-value-in-transaction",
    category: Category::Transactions,
    default_severity: Severity::Error,
    size_graded: false,
    summary: "ALTER TYPE ADD VALUE in a transaction fails before PG 12; unusable until COMMIT",
    doc: include_str!("../../rules/enum-value-in-transaction.md"),
    check,
    kinds: Kinds::Only(&[kinds::ALTER]),
};

/// The first version that runs `ALTER TYPE … ADD VALUE` inside a transaction block.
const IN_TRANSACTION_SINCE: u32 = 12;

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    let Some((type_name, value)) = added_value(cx) else {
        return;
    };
    let in_do_block = cx.statement.range != cx.statements[cx.index].range;
    let place = match transaction_opener(cx) {
        _ if in_do_block => "a DO block",
        Opener::Tool => "the transaction the migration tool runs this file in",
        Opener::Begin(_) => "the transaction opened by BEGIN",
        Opener::Nobody => return,
    };
    if cx.catalog.is_new_type(&type_name) {
        return;
    }
    let name = cx.qualified(&type_name);
    let version = cx.settings.pg_version;
    let (message, help) = if version < IN_TRANSACTION_SINCE {
        let error = if in_do_block {
            "cannot be executed from a function"
        } else {
            "cannot run inside a transaction block"
        };
        (
            format!(
                "ALTER TYPE {name} ADD VALUE runs inside {place}: PostgreSQL {version} refuses that \
                 (SQLSTATE 25001: ALTER TYPE ... ADD {error}; allowed since PostgreSQL 12), so the \
                 migration fails"
            ),
            format!(
                "run it outside any transaction block: in a migration of its own that turns the \
                 tool's transaction off ({OPT_OUT}), or before the BEGIN; `ADD VALUE IF NOT EXISTS` \
                 makes it safe to re-run"
            ),
        )
    } else {
        let literal = format!("'{}'", value.replace('\'', "''"));
        // Only a later statement holding the literal can use it (this one holds it too; so may
        // the rest of the DO block it sits in): most added values are not used in the migration.
        let holders = cx.statements_with_literal(&literal);
        let later_holder = holders.last().is_some_and(|&last| last > cx.index)
            || (in_do_block && holders.contains(&cx.index));
        if !later_holder {
            return;
        }
        // Labels written in another type's definition (`ADD VALUE 'x'`, `AS ENUM ('x')`) are not
        // uses.
        let Some(user) = later_in_transaction(cx).find(|s| {
            !matches!(s.class.kind, Kind::AlterType | Kind::CreateType)
                && s.tokens.iter().any(|t| {
                    t.kind == TokenKind::String && cx.text.get(t.range()) == Some(&literal)
                })
        }) else {
            return;
        };
        (
            format!(
                "ALTER TYPE {name} ADD VALUE {literal} runs inside {place}, and the statement on line \
                 {} uses {literal} before that transaction commits: PostgreSQL refuses it (unsafe use \
                 of new value, SQLSTATE 55P04: new enum values must be committed before they can be \
                 used), so the migration fails",
                cx.line_of(user.range.start)
            ),
            "commit the new value before using it: add it in its own transaction (before the BEGIN, \
             or in an earlier migration), then run the statements that use it"
                .to_owned(),
        )
    };
    out.push(cx.diagnostic(cx.offset_of(&["add", "value"]), None, message, help));
}

/// The type and the value of `ALTER TYPE name ADD VALUE [IF NOT EXISTS] 'value'`.
fn added_value(cx: &StatementContext) -> Option<(ObjectName, String)> {
    let statement = cx.statement;
    match statement.ast() {
        Some(Ast::AlterType(alter)) => match &alter.operation {
            AlterTypeOperation::AddValue(add) => {
                Some((ObjectName::from_ast(&alter.name)?, add.value.value.clone()))
            }
            _ => None,
        },
        None if statement.class.kind == Kind::AlterType => {
            let add = statement.find_keywords(cx.text, &["add", "value"])?;
            let literal = statement
                .tokens
                .iter()
                .find(|t| t.range().start > add && t.kind == TokenKind::String)?;
            let quoted = cx.text.get(literal.range())?;
            let value = quoted.strip_prefix('\'')?.strip_suffix('\'')?;
            Some((statement.class.target.clone()?, value.replace("''", "'")))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use crate::migration::Transaction;
    use crate::review::{review_sql, ReviewOptions};
    use crate::rules::testing::{check_rule, render_rule, review_in};
    use crate::rules::RuleSettings;

    const RULE: &str = "enum-value-in-transaction";
    const MOOD: &str = "CREATE TYPE mood AS ENUM ('sad', 'ok');\n\
                        CREATE TABLE people (id bigint PRIMARY KEY, mood mood);";

    fn check_on(pg_version: u32, sql: &str, transaction: Transaction) -> String {
        let options = ReviewOptions {
            rule_settings: RuleSettings {
                pg_version,
                ..RuleSettings::default()
            },
            ..ReviewOptions::default()
        };
        render_rule(
            RULE,
            &review_sql("migration.sql", &[MOOD], sql, transaction, &options),
        )
    }

    #[test]
    fn fires_in_a_transaction_before_postgres_12() {
        assert_eq!(
            check_on(
                11,
                "BEGIN;\nALTER TYPE mood ADD VALUE 'happy';\nCOMMIT;",
                Transaction::None
            ),
            "\
error[enum-value-in-transaction]: ALTER TYPE public.mood ADD VALUE runs inside the transaction opened by BEGIN: PostgreSQL 11 refuses that (SQLSTATE 25001: ALTER TYPE ... ADD cannot run inside a transaction block; allowed since PostgreSQL 12), so the migration fails
 --> migration.sql:2:17
  |
2 | ALTER TYPE mood ADD VALUE 'happy';
  |                 ^^^^^^^^^^^^^^^^^
  |
  = help: run it outside any transaction block: in a migration of its own that turns the tool's transaction off (sqlx `-- no-transaction`, dbmate `-- migrate:up transaction:false`, Atlas `-- atlas:txmode none`), or before the BEGIN; `ADD VALUE IF NOT EXISTS` makes it safe to re-run

"
        );
    }

    #[test]
    fn names_the_tool_transaction_and_do_blocks_before_postgres_12() {
        let report = check_on(
            11,
            "ALTER TYPE mood ADD VALUE IF NOT EXISTS 'happy';",
            Transaction::Wrapped,
        );
        assert!(
            report.contains("runs inside the transaction the migration tool runs this file in: PostgreSQL 11 refuses that"),
            "{report}"
        );
        let report = check_on(
            10,
            "DO $$ BEGIN ALTER TYPE mood ADD VALUE 'happy'; EXCEPTION WHEN duplicate_object THEN null; END $$;",
            Transaction::None,
        );
        assert!(
            report.contains("runs inside a DO block: PostgreSQL 10 refuses that"),
            "{report}"
        );
    }

    #[test]
    fn labels_of_other_types_are_not_uses() {
        let sql =
            "BEGIN;\nALTER TYPE mood ADD VALUE 'happy';\nCREATE TYPE weather AS ENUM ('happy');\n\
                   ALTER TYPE weather ADD VALUE 'glad' BEFORE 'happy';\nCOMMIT;";
        assert_eq!(check_rule(RULE, &[MOOD], sql), "");
    }

    #[test]
    fn on_postgres_12_fires_only_when_the_transaction_uses_the_new_value() {
        let sql = "BEGIN;\nALTER TYPE mood ADD VALUE 'happy';\nUPDATE people SET mood = 'happy' WHERE mood = 'ok';\nCOMMIT;";
        let report = check_rule(RULE, &[MOOD], sql);
        assert!(
            report.contains("ALTER TYPE public.mood ADD VALUE 'happy' runs inside the transaction opened by BEGIN, and the statement on line 3 uses 'happy' before that transaction commits"),
            "{report}"
        );
        for silent in [
            "BEGIN;\nALTER TYPE mood ADD VALUE 'happy';\nCOMMIT;",
            "BEGIN;\nALTER TYPE mood ADD VALUE 'happy';\nCOMMIT;\nUPDATE people SET mood = 'happy';",
            "ALTER TYPE mood ADD VALUE 'happy';\nUPDATE people SET mood = 'happy';",
        ] {
            assert_eq!(check_rule(RULE, &[MOOD], silent), "", "{silent}");
        }
        let review = review_in(
            &[MOOD],
            "ALTER TYPE mood ADD VALUE 'happy';\nALTER TABLE people ALTER COLUMN mood SET DEFAULT 'happy';",
            Transaction::Wrapped,
        );
        assert!(
            render_rule(RULE, &review).contains("the statement on line 2 uses 'happy'"),
            "tool transaction"
        );
    }

    #[test]
    fn on_postgres_12_a_use_later_in_the_same_do_block_counts_and_a_use_before_does_not() {
        let report = check_rule(
            RULE,
            &[MOOD],
            "DO $$ BEGIN\nALTER TYPE mood ADD VALUE 'happy';\nUPDATE people SET mood = 'happy';\nEND $$;",
        );
        assert!(
            report.contains("runs inside a DO block, and the statement on line 3 uses 'happy'"),
            "{report}"
        );
        let before = "BEGIN;\nUPDATE people SET mood = 'happy';\nALTER TYPE mood ADD VALUE 'happy';\nCOMMIT;";
        assert_eq!(check_rule(RULE, &[MOOD], before), "");
    }

    #[test]
    fn silent_outside_transactions_and_for_types_created_in_the_migration() {
        for sql in [
            "ALTER TYPE mood ADD VALUE 'happy';",
            "CREATE TYPE color AS ENUM ('red');\nBEGIN;\nALTER TYPE color ADD VALUE 'blue';\nCOMMIT;",
            "BEGIN;\nALTER TYPE mood RENAME VALUE 'ok' TO 'fine';\nCOMMIT;",
        ] {
            assert_eq!(check_on(11, sql, Transaction::None), "", "{sql}");
        }
    }
}
