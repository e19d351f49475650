//! The rule registry and what a rule sees.
//!
//! A rule is one file: a [`Rule`] constant with its id, category, default severity and document
//! (`rules/<id>.md`), and a `check` function that looks at one statement in its context and reports
//! [`Diagnostic`]s. Adding a rule means adding that file, its document, and one line in [`ALL`].

mod batch;
mod columns;
pub mod context;
pub mod fix;
pub mod suppress;
mod syntax;
mod types;

mod add_check_without_not_valid;
mod add_column_inline_constraint;
mod add_column_not_null_without_default;
mod add_column_rewrites_table;
mod add_exclusion_constraint;
mod add_foreign_key_without_not_valid;
mod add_primary_key;
mod add_unique_constraint;
mod alter_domain_add_constraint;
mod apply_failed;
mod attach_partition_scan;
mod ban_char_type;
mod column_type_change_rewrites;
mod concurrently_in_transaction;
mod detach_partition_not_concurrent;
mod disable_autovacuum;
mod dml_in_ddl_transaction;
mod drop_and_recreate_table;
mod drop_column;
mod drop_database;
mod drop_index_not_concurrent;
mod drop_schema;
mod drop_sequence;
mod drop_table;
mod enum_value_in_transaction;
mod foreign_key_without_index;
mod history_modified;
mod identifier_too_long;
mod index_not_concurrent;
mod index_on_partitioned_table;
mod missing_lock_timeout;
mod missing_statement_timeout;
mod narrowing_type_change;
mod nested_transaction;
mod observed_blocking_lock;
mod observed_rewrite;
mod prefer_bigint;
mod prefer_identity;
mod prefer_jsonb;
mod prefer_text;
mod prefer_timestamptz;
mod refresh_matview_not_concurrent;
mod reindex_not_concurrent;
mod rename_column;
mod rename_enum_value;
mod rename_schema;
mod rename_table;
mod replica_identity_change;
mod set_not_null;
mod statements_after_exclusive_lock;
mod table_rewrite_command;
mod trigger_on_existing_table;
mod truncate_table;
mod unbatched_backfill;
mod uncommitted_transaction;
mod unparsed_statement;
mod validate_in_same_transaction;

#[cfg(test)]
pub(crate) mod testing;

use std::fmt;

use serde::Serialize;

use crate::sql::ObjectName;

pub use context::{FileIndex, RuleSettings, StatementContext, TxState};

/// Every rule migagent knows, in the order `migagent rules` lists them (the catalog's order).
pub const ALL: &[&Rule] = &[
    &index_not_concurrent::RULE,
    &drop_index_not_concurrent::RULE,
    &reindex_not_concurrent::RULE,
    &concurrently_in_transaction::RULE,
    &index_on_partitioned_table::RULE,
    &add_unique_constraint::RULE,
    &add_primary_key::RULE,
    &add_exclusion_constraint::RULE,
    &add_check_without_not_valid::RULE,
    &add_foreign_key_without_not_valid::RULE,
    &validate_in_same_transaction::RULE,
    &set_not_null::RULE,
    &add_column_rewrites_table::RULE,
    &add_column_not_null_without_default::RULE,
    &add_column_inline_constraint::RULE,
    &column_type_change_rewrites::RULE,
    &table_rewrite_command::RULE,
    &refresh_matview_not_concurrent::RULE,
    &trigger_on_existing_table::RULE,
    &replica_identity_change::RULE,
    &attach_partition_scan::RULE,
    &detach_partition_not_concurrent::RULE,
    &alter_domain_add_constraint::RULE,
    &missing_lock_timeout::RULE,
    &missing_statement_timeout::RULE,
    &statements_after_exclusive_lock::RULE,
    &disable_autovacuum::RULE,
    &drop_table::RULE,
    &drop_column::RULE,
    &drop_schema::RULE,
    &drop_database::RULE,
    &truncate_table::RULE,
    &drop_sequence::RULE,
    &drop_and_recreate_table::RULE,
    &narrowing_type_change::RULE,
    &rename_column::RULE,
    &rename_table::RULE,
    &rename_schema::RULE,
    &rename_enum_value::RULE,
    &unbatched_backfill::RULE,
    &dml_in_ddl_transaction::RULE,
    &nested_transaction::RULE,
    &uncommitted_transaction::RULE,
    &enum_value_in_transaction::RULE,
    &prefer_bigint::RULE,
    &prefer_identity::RULE,
    &prefer_timestamptz::RULE,
    &prefer_text::RULE,
    &prefer_jsonb::RULE,
    &ban_char_type::RULE,
    &identifier_too_long::RULE,
    &foreign_key_without_index::RULE,
    shadow::APPLY_FAILED,
    shadow::OBSERVED_REWRITE,
    shadow::OBSERVED_BLOCKING_LOCK,
    HISTORY_MODIFIED,
    &unparsed_statement::RULE,
];

/// The rules whose findings come from the shadow database's trace.
pub mod shadow {
    use super::Rule;

    pub const APPLY_FAILED: &Rule = &super::apply_failed::RULE;
    pub const OBSERVED_REWRITE: &Rule = &super::observed_rewrite::RULE;
    pub const OBSERVED_BLOCKING_LOCK: &Rule = &super::observed_blocking_lock::RULE;
}

/// The down migrations of the rules about drops, which their help quotes: what undoes the drop, from
/// the schema model before it.
pub mod downs {
    pub use super::drop_sequence::down as drop_sequence;
    pub use super::drop_table::down as drop_table;
}

/// The rule about statements sqlparser could not parse, and how its findings say that the shadow did
/// not trace a statement after all.
pub mod unparsed {
    pub const RULE: &super::Rule = &super::unparsed_statement::RULE;
    pub use super::unparsed_statement::not_applied;
}

/// The rule whose findings come from comparing the migrations with git's merge base (`--base`).
pub const HISTORY_MODIFIED: &Rule = &history_modified::RULE;

/// The static check of a rule whose findings come from the shadow database's trace (the `shadow`
/// category): the SQL alone says nothing, the review's shadow stage reports them.
fn trace_only(_: &StatementContext, _: &mut Vec<Diagnostic>) {}

/// Looks a rule up by id.
pub fn find(id: &str) -> Option<&'static Rule> {
    ALL.iter().copied().find(|rule| rule.id == id)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }

    pub fn from_name(name: &str) -> Option<Severity> {
        [Severity::Info, Severity::Warning, Severity::Error]
            .into_iter()
            .find(|s| s.name() == name)
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Category {
    /// Takes a lock that blocks traffic for long, or rewrites/scans a table under it.
    Locking,
    /// Destroys data.
    DataLoss,
    /// Breaks the application version still running during a deploy.
    Compatibility,
    /// Changes rows in bulk.
    DataMigration,
    /// Transaction shape.
    Transactions,
    /// Schema design habits.
    Hygiene,
    /// Seen on the shadow database.
    Shadow,
    /// An already-applied migration changed (`--base`).
    History,
    /// About migagent's own understanding of the SQL.
    Parser,
}

impl Category {
    pub fn name(self) -> &'static str {
        match self {
            Category::Locking => "locking",
            Category::DataLoss => "data-loss",
            Category::Compatibility => "compatibility",
            Category::DataMigration => "data-migration",
            Category::Transactions => "transactions",
            Category::Hygiene => "hygiene",
            Category::Shadow => "shadow",
            Category::History => "history",
            Category::Parser => "parser",
        }
    }
}

impl Category {
    /// Categories whose findings only matter on relations that existed before the migration.
    pub fn needs_existing_relation(self) -> bool {
        matches!(
            self,
            Category::Locking
                | Category::DataLoss
                | Category::Compatibility
                | Category::DataMigration
        )
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A rule: its identity and its check.
pub struct Rule {
    /// Stable kebab-case id.
    pub id: &'static str,
    pub category: Category,
    pub default_severity: Severity,
    /// Whether `--stats` size grading applies: true for findings about how long a lock is held, a
    /// rewrite or a scan (they scale with the table), false for failure, data loss, compatibility,
    /// lock queueing (`missing-lock-timeout`) and hygiene, which hurt whatever the size.
    pub size_graded: bool,
    /// One line for `migagent rules`.
    pub summary: &'static str,
    /// The full document, `rules/<id>.md`.
    pub doc: &'static str,
    /// Looks at one statement and reports what is wrong with it.
    pub check: fn(&StatementContext, &mut Vec<Diagnostic>),
}

impl fmt::Debug for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id)
    }
}

/// What a rule reports; the engine adds the rule's identity, severity and position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Byte offset in the file the finding points at (usually a keyword of the statement).
    pub offset: usize,
    /// What is wrong, where, and why it matters on PostgreSQL.
    pub message: String,
    /// What to do instead.
    pub help: String,
    /// The relation it is about, schema-qualified. Findings of the locking, data-loss,
    /// compatibility and data-migration categories on a relation created earlier in the same
    /// migration are dropped by the engine: nothing else can hold it or depend on it yet.
    pub table: Option<ObjectName>,
    /// Report only the first such finding of a migration and list where the others are: for
    /// problems one fix at the top of the file solves (a missing `lock_timeout`).
    pub once_per_migration: bool,
    /// The rule's built-in fixer's answer, when it has one for this statement: what the rewrite
    /// draft puts in the statement's place, and what the help text quotes.
    pub fix: Option<fix::Fix>,
}

impl Diagnostic {
    /// The diagnostic with its fixer's answer attached.
    pub fn with_fix(mut self, fix: Option<fix::Fix>) -> Diagnostic {
        self.fix = fix;
        self
    }
}
