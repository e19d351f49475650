//! Applying a migration to the shadow database the way its tool runs it.
//!
//! A [`Script`] is a migration's statements in the sections its tool executes, with the transaction
//! shape of every statement worked out once: which sections the tool runs in one transaction (it
//! wraps them in BEGIN … COMMIT, or sends them as one multi-statement query, which PostgreSQL runs as
//! one implicit transaction), and where the file's own BEGIN, COMMIT and ROLLBACK open and close
//! transactions. [`apply`] replays a history fast, one round trip per statement so a failure names
//! its statement; the traced apply (`shadow::trace`) runs the same shape and observes each statement.
//!
//! migagent never wraps a statement the tool would not wrap: a CONCURRENTLY statement inside a
//! transaction fails on the shadow exactly as it fails in production (SQLSTATE 25001).

use std::fmt;
use std::time::{Duration, Instant};

use tokio_postgres::error::ErrorPosition;
use tokio_postgres::Client;

use super::privilege;
use crate::migration::Section;
use crate::pg::subtransactions;
use crate::pg::transactions::transaction_states;
use crate::sql::{Kind, LineIndex, ParsedFile, Position, Statement};

/// SQLSTATE `connection_failure`: what an [`ApplyError`] carries when the shadow connection itself
/// failed and the server sent no error of its own.
const CONNECTION_FAILURE: &str = "08006";

/// A migration ready to apply: its statements grouped in the sections the tool executes, each with
/// the transaction it runs in.
#[derive(Debug, Clone)]
pub struct Script<'a> {
    text: &'a str,
    lines: &'a LineIndex,
    pub sections: Vec<ScriptSection<'a>>,
    /// The superuser connection that runs the statements delegated to it (see [`Script::delegate`]).
    privileged: Option<&'a Client>,
}

/// A part of the migration the tool executes as a unit.
#[derive(Debug, Clone)]
pub struct ScriptSection<'a> {
    /// The tool runs the section in one transaction: it wraps it in BEGIN … COMMIT, or sends it as
    /// one multi-statement query (an implicit transaction).
    pub wrapped: bool,
    pub statements: Vec<ScriptStatement<'a>>,
    /// What closes the transaction still open when the section's statements have run.
    pub end: SectionEnd,
}

/// How a section's last open transaction ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SectionEnd {
    /// No transaction is open.
    Nothing,
    /// The tool commits its transaction (with any BEGIN the file left open inside it).
    Commit,
    /// The file's own BEGIN (the statement at this index) was never committed: the session ends with
    /// the file and the server rolls the transaction back, as it does under psql.
    RollBack { begin: usize },
}

/// One statement of a [`Script`].
#[derive(Debug, Clone)]
pub struct ScriptStatement<'a> {
    /// Its index among the parsed file's statements (the report's `statement`).
    pub index: usize,
    /// 1-based line of its first token.
    pub line: usize,
    /// Byte offset of its first token in the file.
    pub offset: usize,
    pub sql: &'a str,
    pub statement: &'a Statement,
    /// The tool opens its transaction just before this statement: at the start of a wrapped
    /// section, or again after a COMMIT or ROLLBACK written in the file ended it.
    pub begin_before: bool,
    /// It runs inside a transaction block: the tool's, or one the file opened with BEGIN.
    pub in_transaction: bool,
    /// What runs on the privileged connection instead of the statement as written (empty: nothing).
    pub delegated: Option<String>,
}

impl ScriptStatement<'_> {
    pub fn kind(&self) -> Kind {
        self.statement.class.kind
    }

    /// A psql backslash command: psql runs it itself and the server never sees it.
    pub fn is_psql_meta(&self) -> bool {
        self.kind() == Kind::PsqlMeta
    }

    /// BEGIN, COMMIT, ROLLBACK and savepoints: sent as written, they shape the transaction.
    pub fn is_transaction_control(&self) -> bool {
        matches!(
            self.kind(),
            Kind::Begin | Kind::Commit | Kind::Rollback | Kind::Savepoint
        )
    }
}

impl<'a> Script<'a> {
    /// The script of a parsed migration: `parsed` must come from `crate::sql::parse(text, ranges)`
    /// with the ranges of `sections`, and `lines` from `LineIndex::new(text)`. The transaction shape
    /// follows the static rules' model (`pg::transactions::transaction_states`).
    pub fn new(
        text: &'a str,
        parsed: &'a ParsedFile,
        sections: &[Section],
        lines: &'a LineIndex,
    ) -> Script<'a> {
        let states = transaction_states(text, &parsed.statements, sections);
        let mut script_sections: Vec<ScriptSection> = Vec::new();
        let mut current_section = None;
        for (index, (statement, state)) in parsed.statements.iter().zip(&states).enumerate() {
            if current_section != Some(statement.section) {
                current_section = Some(statement.section);
                // The first statement of a section is in the tool's transaction exactly when the
                // tool wraps the section.
                script_sections.push(ScriptSection {
                    wrapped: state.tool_transaction,
                    statements: Vec::new(),
                    end: SectionEnd::Nothing,
                });
            }
            let Some(section) = script_sections.last_mut() else {
                continue;
            };
            section.statements.push(ScriptStatement {
                index,
                line: lines.position(text, statement.range.start).line,
                offset: statement.range.start,
                sql: statement.sql(text),
                statement,
                begin_before: false,
                in_transaction: false,
                delegated: None,
            });
        }
        for section in &mut script_sections {
            section.plan_transactions();
        }
        Script {
            text,
            lines,
            sections: script_sections,
            privileged: None,
        }
    }

    /// Hands the statements a least-privileged role may not run (see [`privilege::delegation`]) to
    /// `privileged`, a superuser connection to the same database. Returns, for each statement that
    /// lost part of itself on the way, its offset in the file and what it lost.
    pub fn delegate(
        &mut self,
        privileged: &'a Client,
        allowed: privilege::Allowed,
    ) -> Vec<(usize, privilege::Delegation)> {
        self.privileged = Some(privileged);
        let mut sanitized = Vec::new();
        for statement in self.sections.iter_mut().flat_map(|s| &mut s.statements) {
            let Some(delegation) = privilege::delegation(self.text, statement.statement, allowed)
            else {
                continue;
            };
            statement.delegated = Some(delegation.sql.clone());
            if !delegation.dropped.is_empty() {
                sanitized.push((statement.offset, delegation));
            }
        }
        sanitized
    }

    /// Runs `statement` on `client` as written, or its delegated form on the privileged connection.
    pub(crate) async fn run(
        &self,
        client: &Client,
        statement: &ScriptStatement<'_>,
    ) -> Result<(), tokio_postgres::Error> {
        match (&statement.delegated, self.privileged) {
            (Some(sql), Some(_)) if sql.is_empty() => Ok(()),
            (Some(sql), Some(privileged)) => privileged.batch_execute(sql).await,
            _ => client.batch_execute(statement.sql).await,
        }
    }

    /// Every statement, in order.
    pub fn statements(&self) -> impl Iterator<Item = &ScriptStatement<'a>> {
        self.sections.iter().flat_map(|s| &s.statements)
    }

    /// Whether `keyword` is one of the statement's words (outside strings and comments).
    pub fn has_keyword(&self, statement: &ScriptStatement, keyword: &str) -> bool {
        statement
            .statement
            .find_keywords(self.text, &[keyword])
            .is_some()
    }

    /// Whether the statement can roll back a subtransaction by itself (see
    /// [`subtransactions::statement_can_roll_back`]).
    pub fn rolls_back_by_itself(&self, statement: &ScriptStatement) -> bool {
        subtransactions::statement_can_roll_back(self.text, statement.statement)
    }

    /// The file position of the server's error cursor, a 1-based character position in `statement`.
    fn cursor_position(&self, statement: &ScriptStatement, cursor: u32) -> Position {
        let chars_before = (cursor as usize).saturating_sub(1);
        let byte = statement
            .sql
            .char_indices()
            .nth(chars_before)
            .map_or(statement.sql.len(), |(at, _)| at);
        self.lines.position(self.text, statement.offset + byte)
    }
}

impl ScriptSection<'_> {
    /// Works out where the tool opens its transaction, which statements run inside a transaction
    /// block, and how the section ends, from the tool's wrapping and the file's own BEGIN, COMMIT
    /// and ROLLBACK. A COMMIT written inside a wrapped section ends the tool's transaction; the tool
    /// (or PostgreSQL's implicit transaction) runs the rest in a new one, as the static model says.
    fn plan_transactions(&mut self) {
        let mut open = false;
        let mut opened_by_file = None;
        for statement in &mut self.statements {
            if statement.is_psql_meta() {
                statement.in_transaction = open;
                continue;
            }
            let kind = statement.kind();
            statement.begin_before =
                self.wrapped && !open && !matches!(kind, Kind::Commit | Kind::Rollback);
            open |= statement.begin_before;
            statement.in_transaction = open;
            match kind {
                Kind::Begin if !open => {
                    open = true;
                    opened_by_file = Some(statement.index);
                }
                Kind::Commit | Kind::Rollback => {
                    open = false;
                    opened_by_file = None;
                }
                _ => {}
            }
        }
        self.end = match (open, opened_by_file) {
            (false, _) => SectionEnd::Nothing,
            (true, Some(begin)) if !self.wrapped => SectionEnd::RollBack { begin },
            (true, _) => SectionEnd::Commit,
        };
    }

    /// The last statement the server runs in this section.
    pub fn last_sql_statement(&self) -> Option<&ScriptStatement<'_>> {
        self.statements.iter().rev().find(|s| !s.is_psql_meta())
    }
}

/// What [`apply`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplySummary {
    /// Statements the server ran.
    pub applied: usize,
    /// Indices of psql meta-commands, skipped: psql runs them itself and the server never sees them.
    pub skipped_psql_meta: Vec<usize>,
    /// Indices of BEGIN statements whose transaction the file never committed; it was rolled back
    /// when the section ended, as the server does when psql's session ends with the file.
    pub rolled_back_uncommitted: Vec<usize>,
    pub elapsed: Duration,
}

/// A statement the server rejected, or a shadow connection that failed while it ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyError {
    /// The statement's index among the parsed file's statements.
    pub statement: usize,
    /// 1-based line of the statement's first token.
    pub line: usize,
    /// The server's SQLSTATE, or `08006` (connection_failure) when the connection itself failed.
    pub sqlstate: String,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
    /// The server's error cursor, mapped to the file.
    pub position: Option<Position>,
}

impl ApplyError {
    /// The error `error` reported while running `statement`; `sent_as_written` says the failing query
    /// was the statement's own text, so the server's error cursor points into it.
    pub(crate) fn new(
        script: &Script,
        statement: &ScriptStatement,
        error: &tokio_postgres::Error,
        sent_as_written: bool,
    ) -> ApplyError {
        let mut apply_error = ApplyError {
            statement: statement.index,
            line: statement.line,
            sqlstate: CONNECTION_FAILURE.to_owned(),
            message: format!("the connection to the shadow database failed: {error}"),
            detail: None,
            hint: None,
            position: None,
        };
        if let Some(db) = error.as_db_error() {
            apply_error.sqlstate = db.code().code().to_owned();
            apply_error.message = db.message().to_owned();
            apply_error.detail = db.detail().map(str::to_owned);
            apply_error.hint = db.hint().map(str::to_owned);
            apply_error.position = match db.position() {
                Some(ErrorPosition::Original(cursor)) if sent_as_written => {
                    Some(script.cursor_position(statement, *cursor))
                }
                _ => None,
            };
            if let Some(why) = privilege::explain(db.code().code(), db.message(), db.hint()) {
                apply_error.message.push_str(&why);
            }
        }
        apply_error
    }

    /// "ERROR 25001: CREATE INDEX CONCURRENTLY cannot run inside a transaction block (detail)": the
    /// server's error on one line, as findings and verdicts quote it.
    pub fn server_error(&self) -> String {
        let mut text = format!("ERROR {}: {}", self.sqlstate, self.message);
        if let Some(detail) = &self.detail {
            text.push_str(&format!(" ({detail})"));
        }
        text
    }
}

impl fmt::Display for ApplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Some(Position { line, column }) => write!(f, "line {line}, column {column}")?,
            None => write!(f, "line {}", self.line)?,
        }
        write!(f, ": ERROR {}: {}", self.sqlstate, self.message)?;
        if let Some(detail) = &self.detail {
            write!(f, "\nDETAIL: {detail}")?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "\nHINT: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ApplyError {}

/// Run before each migration (and each step of a draft): migration tools give each one a fresh
/// session, so a setting one file makes (a `search_path` emptied by a pg_dump header) must not reach
/// the next. `DISCARD ALL` but for its `DEALLOCATE ALL` and `DISCARD PLANS`: the trace's prepared
/// catalog queries stay (plans of the migrations' own statements are invalidated by the DDL they
/// depend on anyway).
pub const NEW_SESSION: &str =
    "CLOSE ALL; SET SESSION AUTHORIZATION DEFAULT; RESET ALL; UNLISTEN *; \
    SELECT pg_catalog.pg_advisory_unlock_all(); DISCARD TEMP; DISCARD SEQUENCES";

/// Applies `script` on `client` in the transaction shape its tool uses, one statement per round trip,
/// and stops at the first statement that fails. After a failure the open transaction is rolled
/// back, so the connection stays usable.
pub async fn apply(client: &Client, script: &Script<'_>) -> Result<ApplySummary, ApplyError> {
    let started = Instant::now();
    let mut summary = ApplySummary::default();
    for section in &script.sections {
        for statement in &section.statements {
            if statement.is_psql_meta() {
                summary.skipped_psql_meta.push(statement.index);
                continue;
            }
            if statement.begin_before {
                execute(client, "BEGIN")
                    .await
                    .map_err(|error| ApplyError::new(script, statement, &error, false))?;
            }
            let outcome = script.run(client, statement).await;
            if outcome.is_err() {
                roll_back(client).await;
            }
            outcome.map_err(|error| ApplyError::new(script, statement, &error, true))?;
            summary.applied += 1;
        }
        let Some(last) = section.last_sql_statement() else {
            continue;
        };
        match section.end {
            SectionEnd::Nothing => {}
            // A deferred constraint or trigger fails at COMMIT: the section's last statement is
            // where the migration stops.
            SectionEnd::Commit => execute(client, "COMMIT")
                .await
                .map_err(|error| ApplyError::new(script, last, &error, false))?,
            SectionEnd::RollBack { begin } => {
                execute(client, "ROLLBACK")
                    .await
                    .map_err(|error| ApplyError::new(script, last, &error, false))?;
                summary.rolled_back_uncommitted.push(begin);
            }
        }
    }
    summary.elapsed = started.elapsed();
    Ok(summary)
}

/// Runs one query with the simple protocol (migrations are not parameterized); on failure, rolls
/// back whatever transaction is open so the connection stays usable.
async fn execute(client: &Client, sql: &str) -> Result<(), tokio_postgres::Error> {
    let result = client.batch_execute(sql).await;
    if result.is_err() {
        roll_back(client).await;
    }
    result
}

/// Ends the session's transaction, if any. Best effort: outside a transaction the server only
/// warns, and on a broken connection the error that got us here is the one worth reporting.
pub(crate) async fn roll_back(client: &Client) {
    let _ = client.batch_execute("ROLLBACK").await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migration::Transaction;
    use crate::sql::parse;

    struct Planned {
        wrapped: Vec<bool>,
        /// (begin_before, in_transaction) per statement.
        statements: Vec<(bool, bool)>,
        ends: Vec<SectionEnd>,
    }

    fn plan(text: &str, sections: &[(std::ops::Range<usize>, Transaction)]) -> Planned {
        let sections: Vec<Section> = sections
            .iter()
            .map(|(range, transaction)| Section {
                range: range.clone(),
                transaction: *transaction,
            })
            .collect();
        let ranges: Vec<_> = sections.iter().map(|s| s.range.clone()).collect();
        let parsed = parse(text, &ranges);
        let lines = LineIndex::new(text);
        let script = Script::new(text, &parsed, &sections, &lines);
        // The shape agrees with the static rules' model of the same file.
        let states = transaction_states(text, &parsed.statements, &sections);
        for (statement, state) in script.statements().zip(&states) {
            if !statement.is_psql_meta() {
                assert_eq!(
                    statement.in_transaction, state.in_transaction,
                    "{}",
                    statement.sql
                );
            }
        }
        Planned {
            wrapped: script.sections.iter().map(|s| s.wrapped).collect(),
            statements: script
                .statements()
                .map(|s| (s.begin_before, s.in_transaction))
                .collect(),
            ends: script.sections.iter().map(|s| s.end).collect(),
        }
    }

    fn whole(text: &str, transaction: Transaction) -> Planned {
        plan(text, &[(0..text.len(), transaction)])
    }

    #[test]
    fn wrapped_sections_open_once_and_commit() {
        let planned = whole(
            "CREATE TABLE a (x int);\nCREATE TABLE b (x int);",
            Transaction::Wrapped,
        );
        assert_eq!(planned.wrapped, [true]);
        assert_eq!(planned.statements, [(true, true), (false, true)]);
        assert_eq!(planned.ends, [SectionEnd::Commit]);
    }

    #[test]
    fn unwrapped_files_honour_their_own_begin_and_commit() {
        let planned = whole(
            "CREATE TABLE a (x int);\nBEGIN;\nALTER TABLE a ADD y int;\nCOMMIT;\nCREATE INDEX CONCURRENTLY i ON a (x);",
            Transaction::None,
        );
        assert_eq!(planned.wrapped, [false]);
        assert_eq!(
            planned.statements,
            [
                (false, false),
                (false, false),
                (false, true),
                (false, true),
                (false, false)
            ]
        );
        assert_eq!(planned.ends, [SectionEnd::Nothing]);
    }

    #[test]
    fn a_commit_inside_a_wrapped_section_reopens_the_tools_transaction() {
        let planned = whole(
            "CREATE TABLE a (x int);\nCOMMIT;\nCREATE INDEX CONCURRENTLY i ON a (x);",
            Transaction::Wrapped,
        );
        assert_eq!(
            planned.statements,
            [(true, true), (false, true), (true, true)]
        );
        assert_eq!(planned.ends, [SectionEnd::Commit]);
    }

    #[test]
    fn an_uncommitted_begin_is_rolled_back_when_the_section_ends() {
        let planned = whole(
            "SELECT 1;\nBEGIN;\nCREATE TABLE a (x int);",
            Transaction::None,
        );
        assert_eq!(planned.ends, [SectionEnd::RollBack { begin: 1 }]);
    }

    #[test]
    fn implicit_transactions_wrap_only_multi_statement_sections() {
        let single = whole(
            "CREATE INDEX CONCURRENTLY i ON a (x);",
            Transaction::ImplicitMultiStatement,
        );
        assert_eq!(single.wrapped, [false]);
        assert_eq!(single.statements, [(false, false)]);
        let text = "CREATE TABLE a (x int);\nCREATE INDEX i ON a (x);";
        let multi = whole(text, Transaction::ImplicitMultiStatement);
        assert_eq!(multi.wrapped, [true]);
        assert_eq!(multi.ends, [SectionEnd::Commit]);
    }

    #[test]
    fn each_section_has_its_own_shape() {
        let text = "CREATE TABLE a (x int);\nCREATE INDEX CONCURRENTLY i ON a (x);";
        let planned = plan(
            text,
            &[
                (0..23, Transaction::Wrapped),
                (23..text.len(), Transaction::None),
            ],
        );
        assert_eq!(planned.wrapped, [true, false]);
        assert_eq!(planned.statements, [(true, true), (false, false)]);
        assert_eq!(planned.ends, [SectionEnd::Commit, SectionEnd::Nothing]);
    }

    #[test]
    fn psql_meta_commands_do_not_change_the_shape() {
        let planned = whole(
            "\\set ON_ERROR_STOP on\nCREATE TABLE a (x int);",
            Transaction::Wrapped,
        );
        assert_eq!(planned.statements, [(false, false), (true, true)]);
    }

    #[test]
    fn error_display_names_the_line_and_sqlstate() {
        let error = ApplyError {
            statement: 3,
            line: 12,
            sqlstate: "42P07".into(),
            message: "relation \"users\" already exists".into(),
            detail: None,
            hint: None,
            position: None,
        };
        assert_eq!(
            error.to_string(),
            "line 12: ERROR 42P07: relation \"users\" already exists"
        );
        let with_cursor = ApplyError {
            position: Some(Position {
                line: 14,
                column: 8,
            }),
            hint: Some("Perhaps you meant \"name\".".into()),
            ..error
        };
        assert_eq!(
            with_cursor.to_string(),
            "line 14, column 8: ERROR 42P07: relation \"users\" already exists\nHINT: Perhaps you meant \"name\"."
        );
    }
}
