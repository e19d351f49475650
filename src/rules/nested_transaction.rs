//! A `BEGIN` written inside a transaction that is already open does not nest: PostgreSQL ignores it
//! with `WARNING: there is already a transaction in progress`. In a file the migration tool runs in
//! its own transaction, that makes the file's `COMMIT` commit the tool's transaction early: what
//! follows runs outside any transaction, so a failure there leaves the migration half-applied and
//! not recorded as run. A second `BEGIN` inside the file's own transaction is reported too.
//!
//! One finding per problem: on the BEGIN (naming the COMMIT that ends the tool's transaction), or on
//! a COMMIT/ROLLBACK that no BEGIN of the file precedes.
//!
//! Also home of the transaction-shape helpers `uncommitted-transaction` and
//! `enum-value-in-transaction` share ([`session_in_transaction`], [`transaction_end`],
//! [`transaction_opener`], [`later_in_transaction`]).

use super::{Category, Diagnostic, Kinds, Rule, Severity, StatementContext};
use crate::sql::{Kind, Statement};

pub const RULE: Rule = Rule {
    id: "nested-transaction",
    category: Category::Transactions,
    default_severity: Severity::Warning,
    size_graded: false,
    summary:
        "BEGIN/COMMIT inside a transaction that is already open (the tool's or the file's own)",
    doc: include_str!("../../rules/nested-transaction.md"),
    check,
    kinds: Kinds::Only(&[&Kind::TRANSACTION_CONTROL]),
};

/// How to run a file that manages its own transactions, per tool.
pub(super) const OPT_OUT: &str =
    "sqlx `-- no-transaction`, dbmate `-- migrate:up transaction:false`, Atlas \
                       `-- atlas:txmode none`";

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    let statement = cx.statement;
    let kind = statement.class.kind;
    // Only transaction control is judged; looking for the opener walks back through the file.
    if !Kind::TRANSACTION_CONTROL.contains(&kind) {
        return;
    }
    let label = label_of(statement);
    let opener = transaction_opener(cx);
    let (message, help) = match (kind, opener) {
        (Kind::Begin, Opener::Tool) => {
            let consequence = match transaction_end(cx) {
                Some(end) => format!(
                    "and the {} on line {} commits the tool's transaction early: what follows it runs \
                     outside any transaction, so a failure there leaves the migration half-applied and \
                     not recorded as run",
                    label_of(end),
                    cx.line_of(end.range.start)
                ),
                None => "and if the file ever runs without the tool's transaction, nothing commits \
                         it"
                .to_owned(),
            };
            (
                format!(
                    "{label} inside the transaction the migration tool already runs this file in: \
                     PostgreSQL ignores it (WARNING: there is already a transaction in progress), \
                     {consequence}"
                ),
                format!(
                    "remove the file's BEGIN and COMMIT: the tool already runs the whole file in one \
                     transaction; if the file must manage its own transactions, turn the tool's off \
                     for it ({OPT_OUT})"
                ),
            )
        }
        (Kind::Begin, Opener::Begin(open)) => {
            let line = cx.line_of(open.range.start);
            (
                format!(
                    "{label} while the transaction opened on line {line} is still open: PostgreSQL \
                     ignores it (WARNING: there is already a transaction in progress); transactions \
                     do not nest, and the first COMMIT ends everything since line {line}"
                ),
                "remove it; to undo part of a transaction, use `SAVEPOINT name;` and `ROLLBACK TO \
                 SAVEPOINT name;`"
                    .to_owned(),
            )
        }
        (Kind::Commit | Kind::Rollback, Opener::Tool) => {
            let effect = if kind == Kind::Commit {
                "commits the tool's transaction early"
            } else {
                "rolls back the tool's transaction, undoing everything before it"
            };
            (
                format!(
                    "{label} inside the transaction the migration tool runs this file in {effect}: \
                     what follows runs outside any transaction, so a failure there leaves the \
                     migration half-applied and not recorded as run, and the tool's own COMMIT then \
                     warns: there is no transaction in progress"
                ),
                format!(
                    "remove it: the tool commits the whole file at the end; if the file must manage \
                     its own transactions, turn the tool's off for it ({OPT_OUT})"
                ),
            )
        }
        _ => return,
    };
    out.push(cx.diagnostic(statement.range.start, None, message, help));
}

/// The statement's leading keywords, with START spelt out as START TRANSACTION.
fn label_of(statement: &Statement) -> &str {
    match statement.class.label.as_str() {
        "START" => "START TRANSACTION",
        label => label,
    }
}

fn ends_transaction(statement: &Statement) -> bool {
    matches!(statement.class.kind, Kind::Commit | Kind::Rollback)
}

/// The last BEGIN, COMMIT or ROLLBACK of this statement's section before it.
fn last_control<'a>(cx: &StatementContext<'a>) -> Option<&'a Statement> {
    let &last = cx.earlier_transaction_controls().last()?;
    let control = &cx.statements[last];
    // A section's statements come one after the other: the last control before this statement is
    // in its section exactly when every statement between them is too.
    (control.section == cx.statement.section).then_some(control)
}

/// The statements of this statement's section after it, in order.
fn section_after<'a>(cx: &StatementContext<'a>) -> impl Iterator<Item = &'a Statement> + 'a {
    let section = cx.statement.section;
    cx.statements[cx.index + 1..]
        .iter()
        .take_while(move |s| s.section == section)
}

/// Who opened the transaction block a statement starts in.
#[derive(Debug, Clone, Copy)]
pub(super) enum Opener<'a> {
    /// None: the statement runs on its own.
    Nobody,
    /// The migration tool, around the whole section.
    Tool,
    /// This BEGIN of the file.
    Begin(&'a Statement),
}

/// Who opened the transaction block this statement starts in. Unlike `TxState`, it knows that a
/// COMMIT written in a tool-wrapped file ends the tool's transaction, and that a BEGIN inside a
/// transaction opens nothing. A statement inside a DO block also runs in the DO's own transaction.
pub(super) fn transaction_opener<'a>(cx: &StatementContext<'a>) -> Opener<'a> {
    match last_control(cx) {
        Some(control) if control.class.kind == Kind::Begin => Opener::Begin(control),
        Some(_) => Opener::Nobody,
        // The implicit transaction of a multi-statement query gives way to a BEGIN in the file.
        None if cx.tx.tool_transaction && !cx.tx.implicit => Opener::Tool,
        None => Opener::Nobody,
    }
}

/// Whether the session is inside a transaction block when this statement starts.
pub(super) fn session_in_transaction(cx: &StatementContext) -> bool {
    !matches!(transaction_opener(cx), Opener::Nobody)
}

/// The COMMIT or ROLLBACK after this statement that ends the transaction it runs in, if its section
/// has one.
pub(super) fn transaction_end<'a>(cx: &StatementContext<'a>) -> Option<&'a Statement> {
    section_after(cx).find(|s| ends_transaction(s))
}

/// The statements that run after this one in the same transaction: the rest of a DO block it sits
/// in, then the section's statements up to the COMMIT or ROLLBACK. Empty when it runs on its own.
pub(super) fn later_in_transaction<'a>(
    cx: &StatementContext<'a>,
) -> impl Iterator<Item = &'a Statement> + 'a {
    let section = cx.statement.section;
    let in_block = cx.tx.transaction.is_some();
    let in_do_block = !std::ptr::eq(cx.statement, &cx.statements[cx.index]);
    let current_block_end = cx.statements[cx.index].range.end;
    cx.later_statements()
        .take_while(move |s| s.section == section && !ends_transaction(s))
        // Outside a transaction block only the rest of the DO block shares the transaction.
        .take_while(move |s| in_block || (in_do_block && s.range.end <= current_block_end))
}

#[cfg(test)]
mod tests {
    use crate::migration::Transaction;
    use crate::rules::testing::{check_rule, render_rule, review_in};

    const RULE: &str = "nested-transaction";
    const USERS: &str = "CREATE TABLE users (id bigint PRIMARY KEY, email text);";

    fn wrapped(sql: &str) -> String {
        render_rule(RULE, &review_in(&[USERS], sql, Transaction::Wrapped))
    }

    #[test]
    fn silent_on_begin_in_a_multi_statement_query() {
        let review = review_in(
            &[USERS],
            "BEGIN;\nALTER TABLE users ADD COLUMN a text;\nCOMMIT;",
            Transaction::ImplicitMultiStatement,
        );
        assert_eq!(render_rule(RULE, &review), "");
    }

    #[test]
    fn fires_on_begin_in_a_tool_transaction() {
        assert_eq!(
            wrapped("BEGIN;\nALTER TABLE users ADD COLUMN name text;\nCOMMIT;\nUPDATE users SET name = email;"),
            "\
warning[nested-transaction]: BEGIN inside the transaction the migration tool already runs this file in: PostgreSQL ignores it (WARNING: there is already a transaction in progress), and the COMMIT on line 3 commits the tool's transaction early: what follows it runs outside any transaction, so a failure there leaves the migration half-applied and not recorded as run
 --> migration.sql:1:1
  |
1 | BEGIN;
  | ^^^^^
  |
  = help: remove the file's BEGIN and COMMIT: the tool already runs the whole file in one transaction; if the file must manage its own transactions, turn the tool's off for it (sqlx `-- no-transaction`, dbmate `-- migrate:up transaction:false`, Atlas `-- atlas:txmode none`)

"
        );
    }

    #[test]
    fn one_finding_per_pair_and_one_per_stray_commit() {
        let report = wrapped(
            "BEGIN;\nALTER TABLE users ADD COLUMN name text;\nCOMMIT;\nBEGIN;\nSELECT 1;\nCOMMIT;",
        );
        assert_eq!(
            report.matches("warning[nested-transaction]").count(),
            1,
            "{report}"
        );
        let report = wrapped("ALTER TABLE users ADD COLUMN name text;\nEND;\nSELECT 1;");
        assert!(
            report.contains("END inside the transaction the migration tool runs this file in commits the tool's transaction early"),
            "{report}"
        );
        assert!(report.contains("--> migration.sql:2:1"), "{report}");
        let report = wrapped("ALTER TABLE users ADD COLUMN name text;\nROLLBACK;");
        assert!(
            report.contains("rolls back the tool's transaction"),
            "{report}"
        );
    }

    #[test]
    fn a_lone_begin_in_a_tool_transaction_says_nothing_commits_it_without_the_tool() {
        let report = wrapped("BEGIN;\nALTER TABLE users ADD COLUMN name text;");
        assert!(
            report.contains(
                "if the file ever runs without the tool's transaction, nothing commits it"
            ),
            "{report}"
        );
    }

    #[test]
    fn fires_on_a_second_begin_in_a_plain_file() {
        let report = check_rule(
            RULE,
            &[USERS],
            "BEGIN;\nALTER TABLE users ADD COLUMN name text;\nSTART TRANSACTION;\nSELECT 1;\nCOMMIT;",
        );
        assert!(
            report
                .contains("START TRANSACTION while the transaction opened on line 1 is still open"),
            "{report}"
        );
        assert!(report.contains("--> migration.sql:3:1"), "{report}");
    }

    #[test]
    fn silent_on_transactions_a_plain_file_manages_itself() {
        for sql in [
            "BEGIN;\nALTER TABLE users ADD COLUMN name text;\nCOMMIT;",
            "BEGIN;\nSELECT 1;\nCOMMIT;\nBEGIN;\nSELECT 2;\nROLLBACK;",
            "BEGIN;\nSAVEPOINT a;\nROLLBACK TO SAVEPOINT a;\nCOMMIT;",
            "COMMIT;",
        ] {
            assert_eq!(check_rule(RULE, &[USERS], sql), "", "{sql}");
        }
    }
}
