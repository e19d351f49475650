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

use crate::sql::{Kind, ObjectName};

pub use context::{FileIndex, NamesReader, RuleSettings, StatementContext, TxState};

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
    /// The statements `check` can report on, by kind: the review calls it on no other.
    pub kinds: Kinds,
}

/// The statement kinds a rule looks at. The review calls a rule only on statements of those kinds
/// and on every statement the classification could not name (`Kind::Other`), whose syntax tree may
/// be anything. A rule that reads a syntax tree lists every kind whose leading keywords can start
/// it: all `ALTER …` kinds for an `ALTER TABLE` tree, say (see [`kinds`]).
#[derive(Debug, Clone, Copy)]
pub enum Kinds {
    All,
    /// The kinds of these lists (the families of [`kinds`], or kinds named one by one).
    Only(&'static [&'static [Kind]]),
}

impl Rule {
    /// Whether the rule looks at statements of `kind`.
    pub fn looks_at(&self, kind: Kind) -> bool {
        self.kinds_looked_at().any(|looked_at| looked_at == kind)
    }

    /// The kinds of statement the rule looks at, a kind possibly more than once: every kind, or
    /// those of its lists and `Kind::Other` (a statement classified as no more precise kind).
    fn kinds_looked_at(&self) -> impl Iterator<Item = Kind> {
        let (always, lists): (&'static [Kind], &'static [&'static [Kind]]) = match self.kinds {
            Kinds::All => (&Kind::ALL, &[]),
            Kinds::Only(lists) => (&[Kind::Other], lists),
        };
        always
            .iter()
            .chain(lists.iter().copied().flatten())
            .copied()
    }
}

/// The kinds of statement that start with the same keyword: a syntax tree of one of them can only
/// come from a statement classified as one of them (or as `Kind::Other`).
pub mod kinds {
    use crate::sql::Kind;

    pub const ALTER: &[Kind] = &[
        Kind::AlterTable,
        Kind::AlterIndex,
        Kind::AlterSequence,
        Kind::AlterType,
        Kind::AlterSchema,
    ];
    pub const CREATE: &[Kind] = &[
        Kind::CreateTable,
        Kind::CreateIndex,
        Kind::CreateSequence,
        Kind::CreateType,
        Kind::CreateView,
        Kind::CreateMaterializedView,
        Kind::CreateFunction,
        Kind::CreateTrigger,
        Kind::CreateSchema,
        Kind::CreateExtension,
    ];
    pub const DROP: &[Kind] = &[
        Kind::DropTable,
        Kind::DropIndex,
        Kind::DropSequence,
        Kind::DropType,
        Kind::DropView,
        Kind::DropTrigger,
        Kind::DropSchema,
    ];
    /// Data changes and queries, `WITH …` whichever statement follows its CTEs.
    pub const DML: &[Kind] = &[Kind::Insert, Kind::Update, Kind::Delete, Kind::Select];
}

/// Items of rules (a rule with its severity, say) grouped by the statement kinds each rule looks
/// at, in the registry's order: built once per migration, so that each statement meets only the
/// rules that can report on it.
pub struct ByKind<T> {
    groups: Vec<Vec<T>>,
}

impl<T: Copy> ByKind<T> {
    pub fn new(items: &[T], rule: impl Fn(&T) -> &Rule) -> Self {
        // Each item goes to the groups its rule's lists name, in one pass over the items: asking
        // every rule about every kind cost more than the review of a short migration's statements.
        let mut groups: Vec<Vec<T>> = vec![Vec::new(); Kind::ALL.len()];
        let mut member = vec![false; Kind::ALL.len()];
        for item in items {
            member.fill(false);
            for kind in rule(item).kinds_looked_at() {
                member[kind as usize] = true;
            }
            for (group, _) in groups.iter_mut().zip(&member).filter(|(_, &m)| m) {
                group.push(*item);
            }
        }
        ByKind { groups }
    }

    /// The items whose rule looks at statements of `kind`.
    pub fn of(&self, kind: Kind) -> &[T] {
        &self.groups[kind as usize]
    }
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

#[cfg(test)]
mod tests {
    use std::cell::OnceCell;

    use super::*;
    use crate::pg::held::HeldLocks;
    use crate::schema::Catalog;
    use crate::sql;

    /// The SQL of every fenced block of every rule document, and statements of the kinds those
    /// rarely show (parsed and not, in a DO block, behind a WITH).
    fn sample_sql() -> Vec<String> {
        let mut blocks = Vec::new();
        for rule in ALL {
            for block in rule.doc.split("```sql").skip(1) {
                let body = block.split_once('\n').map_or("", |(_, body)| body);
                blocks.push(body.split("```").next().unwrap_or("").to_owned());
            }
        }
        blocks.push(
            "CREATE TABLE t (id int PRIMARY KEY, v varchar(10), j json, at timestamp);
             CREATE INDEX i ON t (v); ALTER FOREIGN TABLE f DROP COLUMN c;
             WITH x AS (SELECT 1) UPDATE t SET v = 'a'; WITH y AS (SELECT 1) DELETE FROM t;
             DROP DATABASE d; VACUUM FULL t; CLUSTER t USING i; COMMENT ON TABLE t IS 'x';
             GRANT SELECT ON t TO r; COPY t FROM STDIN; SET lock_timeout = 0; TRUNCATE t;
             ALTER TABLE t ALTER COLUMN v SET NOT NULL, ADD CONSTRAINT c CHECK (id > 0);
             DO $$ BEGIN ALTER TABLE t ADD COLUMN n int NOT NULL; END $$;
             ALTER TABLE IF EXISTS ONLY t DETACH PARTITION p; REINDEX TABLE t; BEGIN; COMMIT;"
                .to_owned(),
        );
        blocks
    }

    /// Each kind's group holds exactly the rules that look at it, in the registry's order.
    #[test]
    fn rules_by_kind_are_the_rules_that_look_at_each_kind() {
        let by_kind = ByKind::new(ALL, |rule| *rule);
        for kind in Kind::ALL {
            let expected: Vec<&str> = ALL
                .iter()
                .filter(|rule| rule.looks_at(kind))
                .map(|rule| rule.id)
                .collect();
            let grouped: Vec<&str> = by_kind.of(kind).iter().map(|rule| rule.id).collect();
            assert_eq!(grouped, expected, "{kind:?}");
        }
    }

    /// A rule is skipped on the kinds it does not look at: on those it must have had nothing to say.
    #[test]
    fn rules_report_nothing_on_the_kinds_they_skip() {
        let settings = RuleSettings::default();
        let transactions = [
            TxState::default(),
            TxState {
                in_transaction: true,
                transaction: Some(1),
                ..TxState::default()
            },
        ];
        let mut checked = 0;
        for text in sample_sql() {
            let parsed = sql::parse_text(&text);
            let mut catalog = Catalog::default();
            catalog.begin_migration();
            let (after_migration, file, held_locks) =
                (OnceCell::new(), FileIndex::default(), HeldLocks::default());
            for (index, top) in parsed.statements.iter().enumerate() {
                for statement in std::iter::once(top).chain(&top.nested) {
                    let skipping = ALL.iter().filter(|r| !r.looks_at(statement.class.kind));
                    for (rule, tx) in skipping.flat_map(|r| transactions.map(|tx| (r, tx))) {
                        let context = StatementContext {
                            text: &text,
                            statements: &parsed.statements,
                            index,
                            statement,
                            catalog: &catalog,
                            tx,
                            held_locks: &held_locks,
                            settings: &settings,
                            traced: false,
                            after_migration: &after_migration,
                            file: &file,
                            readings: Default::default(),
                        };
                        let mut found = Vec::new();
                        (rule.check)(&context, &mut found);
                        assert!(
                            found.is_empty(),
                            "{} skips {:?} statements but reports on `{}`: {found:?}",
                            rule.id,
                            statement.class.kind,
                            statement.sql(&text)
                        );
                        checked += 1;
                    }
                }
                catalog.apply(&text, top);
            }
        }
        assert!(checked > 1000, "only {checked} checks");
    }
}
