//! What a built-in fixer drafts for one statement: the steps that replace it, each saying whether it
//! may run inside a transaction block. A rule's fixer sits in the rule's own file, next to the check
//! it answers, and the finding's help text shows the fixer's SQL, so what the user pastes is what the
//! validator proved. The advice stage composes a migration's fixes into one rewrite draft.

use serde::Serialize;

use crate::schema::naming::quote_ident as sql_ident;

/// One step of a rewrite: SQL to run as a unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    /// One or more statements, each ending with `;`.
    pub sql: String,
    /// `true`: may run inside a transaction block (its own, or the tool's); `false`: must run outside
    /// any (CREATE INDEX CONCURRENTLY, a batched backfill that commits between batches).
    pub transactional: bool,
    /// Why this step, in one sentence.
    pub note: String,
}

impl Step {
    /// A step that may run inside a transaction block.
    pub fn transactional(sql: impl Into<String>, note: impl Into<String>) -> Step {
        Step {
            sql: sql.into(),
            transactional: true,
            note: note.into(),
        }
    }

    /// A step that must run outside any transaction block.
    pub fn outside_transaction(sql: impl Into<String>, note: impl Into<String>) -> Step {
        Step {
            sql: sql.into(),
            transactional: false,
            note: note.into(),
        }
    }
}

/// Where a fix's steps go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Placement {
    /// The steps replace the statement.
    Replace,
    /// The steps run before the statement, which stays as written (a `SET lock_timeout` preamble).
    Before,
}

/// A fixer's answer to one finding: the statement, replaced by (or preceded by) these steps in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fix {
    pub steps: Vec<Step>,
    pub placement: Placement,
}

impl Fix {
    /// Steps that replace the statement.
    pub fn replace(steps: Vec<Step>) -> Fix {
        Fix {
            steps,
            placement: Placement::Replace,
        }
    }

    /// Steps that run before the statement.
    pub fn before(steps: Vec<Step>) -> Fix {
        Fix {
            steps,
            placement: Placement::Before,
        }
    }
}

/// `sql` as one statement ending with `;` (a statement's text in the file has no `;`).
pub fn terminated(sql: &str) -> String {
    let sql = sql.trim_end();
    if sql.ends_with(';') {
        sql.to_owned()
    } else {
        format!("{sql};")
    }
}

/// An `ADD [CONSTRAINT name] FOREIGN KEY | CHECK …` operation as written, with `NOT VALID` and, when it had none, the name
/// PostgreSQL would give it (so that VALIDATE can name it). Every other clause (`ON DELETE`,
/// `ON UPDATE`, `MATCH`, `DEFERRABLE`) stays as written.
pub fn not_valid_operation(operation: &str, unnamed: bool, constraint: &str) -> String {
    let operation = match operation.get(..3) {
        Some(add) if unnamed && add.eq_ignore_ascii_case("add") => {
            format!(
                "ADD CONSTRAINT {}{}",
                sql_ident(constraint),
                &operation[3..]
            )
        }
        _ => operation.to_owned(),
    };
    format!("{operation} NOT VALID")
}

/// The two steps of adding a constraint without a long lock: `add` (the statement with NOT VALID),
/// then VALIDATE in a transaction of its own.
pub fn not_valid_then_validate(add: String, table_sql: &str, constraint: &str) -> Fix {
    Fix::replace(vec![
        Step::transactional(
            add,
            "adds the constraint as NOT VALID: checks only new rows, instant",
        ),
        validate_step(table_sql, constraint),
    ])
}

/// `VALIDATE CONSTRAINT`, in a transaction of its own.
pub fn validate_step(table_sql: &str, constraint: &str) -> Step {
    Step::transactional(
        format!(
            "ALTER TABLE {table_sql} VALIDATE CONSTRAINT {};",
            sql_ident(constraint)
        ),
        "validates existing rows in a transaction of its own, under SHARE UPDATE EXCLUSIVE: \
         reads and writes continue",
    )
}

/// SET NOT NULL without the scan under ACCESS EXCLUSIVE (PostgreSQL 12+): `CHECK (column IS NOT
/// NULL) NOT VALID`, VALIDATE in a transaction of its own, then `set_not_null` (which uses the
/// validated CHECK instead of scanning) and DROP of the CHECK, now redundant.
pub fn not_null_via_check(
    table_sql: &str,
    column_sql: &str,
    constraint: &str,
    set_not_null: &str,
) -> Vec<Step> {
    let constraint_sql = sql_ident(constraint);
    vec![
        Step::transactional(
            format!(
                "ALTER TABLE {table_sql} ADD CONSTRAINT {constraint_sql} CHECK ({column_sql} IS NOT \
                 NULL) NOT VALID;"
            ),
            "adds the CHECK as NOT VALID: checks only new rows, instant",
        ),
        validate_step(table_sql, constraint),
        Step::transactional(
            format!("{set_not_null} ALTER TABLE {table_sql} DROP CONSTRAINT {constraint_sql};"),
            "SET NOT NULL uses the validated CHECK instead of scanning; the CHECK is then redundant",
        ),
    ]
}

/// A fixer's down for one statement: what undoes it, from the schema model as it was before it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Undo {
    /// Statements in the order they must run, each ending with `;`.
    pub sql: Vec<String>,
    /// The statement destroys data the down cannot bring back.
    pub data_loss: bool,
    /// What the down does not restore, one sentence each.
    pub notes: Vec<String>,
}

/// What the schema model knows of an object a down must rebuild, or why there is no down.
pub fn known<T>(found: Option<T>, what: &str, name: &impl std::fmt::Display) -> Result<T, String> {
    found.ok_or_else(|| format!("the schema model does not know {what} {name}"))
}
