//! What a rule sees: one statement, the file around it, the schema just before it, and the
//! transaction it runs in.

use std::cell::OnceCell;

use crate::migration::{Section, Transaction};
use crate::schema::Catalog;
use crate::sql::{Kind, ObjectName, Statement, TokenKind};

use super::locks::PredictedLock;
use super::syntax::AlterTable;
use super::Diagnostic;

/// Settings that change what rules conclude.
#[derive(Debug, Clone)]
pub struct RuleSettings {
    /// The PostgreSQL major version the migration will run on.
    pub pg_version: u32,
    /// Its minor version, when known (`Some(2)` for 14.2).
    pub pg_minor: Option<u32>,
}

impl Default for RuleSettings {
    fn default() -> Self {
        RuleSettings {
            pg_version: 15,
            pg_minor: None,
        }
    }
}

/// The major release whose first minors build corrupt indexes concurrently, and the minor that fixed it.
const CONCURRENT_BUILD_BUG_MAJOR: u32 = 14;
const CONCURRENT_BUILD_BUG_FIXED_IN: u32 = 4;

impl RuleSettings {
    /// What the help of a rule recommending `CREATE INDEX CONCURRENTLY` or `REINDEX CONCURRENTLY`
    /// must add on PostgreSQL 14.0–14.3: there an optimization made concurrent builds miss rows
    /// updated during the build, leaving an index that silently lacks them (fixed in 14.4, which asks
    /// to rebuild such indexes). Plain when the minor is known, conditional when only 14 is; `None`
    /// on every other version.
    pub fn concurrent_build_caveat(&self) -> Option<String> {
        if self.pg_version != CONCURRENT_BUILD_BUG_MAJOR {
            return None;
        }
        let fixed = format!("{CONCURRENT_BUILD_BUG_MAJOR}.{CONCURRENT_BUILD_BUG_FIXED_IN}");
        match self.pg_minor {
            Some(minor) if minor >= CONCURRENT_BUILD_BUG_FIXED_IN => None,
            Some(minor) => Some(format!(
                "; but PostgreSQL {CONCURRENT_BUILD_BUG_MAJOR}.{minor} has the bug that makes CREATE \
                 INDEX CONCURRENTLY and REINDEX CONCURRENTLY miss rows updated during the build, \
                 leaving a corrupt index (fixed in {fixed}): upgrade to {fixed} or later first, or \
                 build without CONCURRENTLY in a maintenance window; after upgrading, REINDEX every \
                 index built concurrently on this version"
            )),
            None => Some(format!(
                "; but PostgreSQL {CONCURRENT_BUILD_BUG_MAJOR}.0 to {CONCURRENT_BUILD_BUG_MAJOR}.3 \
                 have a bug that makes CREATE INDEX CONCURRENTLY and REINDEX CONCURRENTLY miss rows \
                 updated during the build, leaving a corrupt index (fixed in {fixed}): check the \
                 server's minor version (`SHOW server_version`; `--pg-version 14.N` or `pg-version = \
                 \"14.N\"` makes this note exact), upgrade to {fixed} or later before building concurrently, and REINDEX the \
                 indexes built concurrently on an earlier 14.x"
            )),
        }
    }
}

/// The transaction a statement runs in, and the timeouts in effect when it runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TxState {
    /// It runs inside a transaction block: the file's own BEGIN or the tool's.
    pub in_transaction: bool,
    /// That transaction is the migration tool's, not a BEGIN written in the file.
    pub tool_transaction: bool,
    /// The tool's transaction is the implicit one PostgreSQL gives a multi-statement query
    /// (Prisma, golang-migrate), not a BEGIN … COMMIT the tool sends: a BEGIN … COMMIT written in
    /// the file is legitimate there.
    pub implicit: bool,
    /// Which transaction block of the migration it runs in (numbered from 1), if any: statements
    /// with the same number share locks, which are held until the block ends.
    pub transaction: Option<u32>,
    /// A non-zero `lock_timeout` is in effect.
    pub lock_timeout: bool,
    /// A non-zero `statement_timeout` is in effect.
    pub statement_timeout: bool,
}

/// One statement in its context, as rules see it.
pub struct StatementContext<'a> {
    /// The whole migration file.
    pub text: &'a str,
    /// All statements of the migration, for rules that look around.
    pub statements: &'a [Statement],
    pub index: usize,
    pub statement: &'a Statement,
    /// The schema just before this statement.
    pub catalog: &'a Catalog,
    pub tx: TxState,
    /// Locks the statement's transaction already holds from its earlier statements (as the lock
    /// model predicts them): the statement does not queue for these again.
    pub held_locks: &'a [PredictedLock],
    pub settings: &'a RuleSettings,
    /// The schema the whole migration leaves behind, computed on first use (see
    /// [`StatementContext::catalog_after_migration`]).
    pub after_migration: &'a OnceCell<Catalog>,
    /// The statement read as an `ALTER TABLE`, once (see [`AlterTable::of`]).
    pub(crate) alter_table: OnceCell<Option<AlterTable<'a>>>,
}

impl<'a> StatementContext<'a> {
    /// The statement's text.
    pub fn sql(&self) -> &str {
        self.statement.sql(self.text)
    }

    /// Offset of the keyword sequence in the statement, or of the statement itself.
    pub fn offset_of(&self, keywords: &[&str]) -> usize {
        self.statement
            .find_keywords(self.text, keywords)
            .unwrap_or(self.statement.range.start)
    }

    /// The statements that run after this one, in order: the rest of the DO block it sits in, then
    /// each later statement of the migration followed by the statements inside it (DO blocks).
    pub fn later_statements(&self) -> impl Iterator<Item = &'a Statement> + 'a {
        let current = self.statement.range.clone();
        let rest_of_block = self.statements[self.index]
            .nested
            .iter()
            .skip_while(move |nested| nested.range != current)
            .skip(1);
        let rest = self.statements[self.index + 1..]
            .iter()
            .flat_map(|s| std::iter::once(s).chain(&s.nested));
        rest_of_block.chain(rest)
    }

    /// The schema as the whole migration leaves it: this statement and every later one replayed on a
    /// copy of the model. Computed once per migration, for rules that judge the end state (an index
    /// created later in the migration still covers a foreign key).
    pub fn catalog_after_migration(&self) -> &'a Catalog {
        self.after_migration.get_or_init(|| {
            let mut catalog = self.catalog.clone();
            let current = self.statement.range.clone();
            let block = &self.statements[self.index];
            // Inside a DO block: this statement and the rest of the block; else the statement.
            let first: Vec<&Statement> = if std::ptr::eq(block, self.statement) {
                vec![block]
            } else {
                block
                    .nested
                    .iter()
                    .skip_while(|nested| nested.range != current)
                    .collect()
            };
            for statement in first.into_iter().chain(&self.statements[self.index + 1..]) {
                catalog.apply(self.text, statement);
            }
            catalog
        })
    }

    /// The 1-based line of a file offset, for messages that point at another statement.
    pub fn line_of(&self, offset: usize) -> usize {
        self.text
            .get(..offset)
            .map_or(0, |before| before.matches('\n').count())
            + 1
    }

    /// Whether locks on this relation matter: it existed before the migration (or the model has never
    /// heard of it), so other sessions may use it and it may hold rows.
    pub fn is_existing(&self, relation: &ObjectName) -> bool {
        !self.catalog.is_new_relation(relation)
    }

    /// The relation's schema-qualified name for messages.
    pub fn qualified(&self, relation: &ObjectName) -> String {
        self.catalog.resolve(relation).to_string()
    }

    /// A diagnostic about `table` at the given offset.
    pub fn diagnostic(
        &self,
        offset: usize,
        table: Option<&ObjectName>,
        message: String,
        help: String,
    ) -> Diagnostic {
        Diagnostic {
            offset,
            message,
            help,
            table: table.map(|t| self.catalog.resolve(t)),
            once_per_migration: false,
        }
    }
}

/// Computes the transaction state of every statement: what the tool wraps, the file's own
/// BEGIN/COMMIT, and `lock_timeout`/`statement_timeout` set by `SET` (session-wide) or `SET LOCAL`
/// (until the end of the current transaction).
pub fn transaction_states(
    text: &str,
    statements: &[Statement],
    sections: &[Section],
) -> Vec<TxState> {
    let mut states = Vec::with_capacity(statements.len());
    let mut session = Timeouts::default();
    let mut local: Option<Timeouts> = None;
    let mut explicit = false;
    let mut current_section = usize::MAX;
    let mut tool_wraps = false;
    let mut implicit = false;
    let mut blocks = 0;
    let mut block = None;
    for statement in statements {
        if statement.section != current_section {
            // A tool transaction ends with its section; SET LOCAL dies with it.
            current_section = statement.section;
            let section = sections.get(statement.section);
            tool_wraps = section.is_some_and(|section| wraps(section, statements));
            implicit = tool_wraps
                && section.is_some_and(|s| s.transaction == Transaction::ImplicitMultiStatement);
            explicit = false;
            local = tool_wraps.then(Timeouts::default);
            block = tool_wraps.then(|| {
                blocks += 1;
                blocks
            });
        }
        let in_transaction = explicit || tool_wraps;
        let effective = local.map_or(session, |l| l.or(session));
        // Outside a transaction block, a DO block's statements share the DO's own transaction.
        let transaction = match block {
            None if !statement.nested.is_empty() => {
                blocks += 1;
                Some(blocks)
            }
            block => block,
        };
        states.push(TxState {
            in_transaction,
            tool_transaction: tool_wraps && !explicit,
            implicit,
            transaction,
            lock_timeout: effective.lock,
            statement_timeout: effective.statement,
        });
        match statement.class.kind {
            Kind::Begin if !explicit => {
                explicit = true;
                if !tool_wraps {
                    local = Some(Timeouts::default());
                    blocks += 1;
                    block = Some(blocks);
                }
            }
            Kind::Commit | Kind::Rollback => {
                explicit = false;
                if !tool_wraps {
                    local = None;
                    block = None;
                }
            }
            Kind::Set | Kind::Select => {
                if let Some(setting) = timeout_setting(text, statement) {
                    let target = match (setting.local, local.as_mut()) {
                        (true, Some(local)) => local,
                        // SET LOCAL outside a transaction block has no effect.
                        (true, None) => continue,
                        (false, _) => &mut session,
                    };
                    target.set(setting.name, setting.enabled);
                    if !setting.local {
                        // A session SET inside a transaction also applies to the rest of it.
                        if let Some(local) = local.as_mut() {
                            local.set(setting.name, setting.enabled);
                        }
                    }
                }
            }
            _ => {}
        }
    }
    states
}

fn wraps(section: &Section, statements: &[Statement]) -> bool {
    match section.transaction {
        Transaction::None => false,
        Transaction::Wrapped => true,
        Transaction::ImplicitMultiStatement => {
            statements
                .iter()
                .filter(|s| section.range.contains(&s.range.start))
                .count()
                > 1
        }
    }
}

/// Timeouts set in one scope; `None` means "not set here".
#[derive(Debug, Clone, Copy, Default)]
struct Timeouts {
    lock: bool,
    statement: bool,
    lock_set: bool,
    statement_set: bool,
}

impl Timeouts {
    fn set(&mut self, name: TimeoutName, enabled: bool) {
        match name {
            TimeoutName::Lock => {
                self.lock = enabled;
                self.lock_set = true;
            }
            TimeoutName::Statement => {
                self.statement = enabled;
                self.statement_set = true;
            }
        }
    }

    /// These settings where set, the outer scope's elsewhere.
    fn or(self, outer: Timeouts) -> Timeouts {
        Timeouts {
            lock: if self.lock_set { self.lock } else { outer.lock },
            statement: if self.statement_set {
                self.statement
            } else {
                outer.statement
            },
            lock_set: self.lock_set || outer.lock_set,
            statement_set: self.statement_set || outer.statement_set,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimeoutName {
    Lock,
    Statement,
}

struct TimeoutSetting {
    name: TimeoutName,
    local: bool,
    enabled: bool,
}

/// Reads `SET [LOCAL|SESSION] lock_timeout {TO|=} value` and
/// `SELECT set_config('lock_timeout', 'value', is_local)`.
fn timeout_setting(text: &str, statement: &Statement) -> Option<TimeoutSetting> {
    let words: Vec<(TokenKind, &str)> = statement
        .tokens
        .iter()
        .map(|t| (t.kind, &text[t.range.clone()]))
        .collect();
    let unquote = |s: &str| s.trim_matches('\'').to_ascii_lowercase();
    let name_of = |s: &str| match unquote(s).as_str() {
        "lock_timeout" => Some(TimeoutName::Lock),
        "statement_timeout" => Some(TimeoutName::Statement),
        _ => None,
    };
    let enabled = |value: &str| {
        let value = unquote(value);
        let digits: String = value.chars().take_while(char::is_ascii_digit).collect();
        !(value == "default" || digits.parse::<u64>().is_ok_and(|n| n == 0))
    };
    if statement.class.kind == Kind::Set {
        let mut at = 1;
        let local = words.get(1)?.1.eq_ignore_ascii_case("local");
        if local || words.get(1)?.1.eq_ignore_ascii_case("session") {
            at += 1;
        }
        let name = name_of(words.get(at)?.1)?;
        let value = words.get(at + 2)?.1;
        return Some(TimeoutSetting {
            name,
            local,
            enabled: enabled(value),
        });
    }
    // SELECT set_config('lock_timeout', '5s', false)
    let call = words
        .iter()
        .position(|(kind, w)| *kind == TokenKind::Word && w.eq_ignore_ascii_case("set_config"))?;
    let args: Vec<&str> = words[call + 1..]
        .iter()
        .filter(|(kind, _)| matches!(kind, TokenKind::String | TokenKind::Word))
        .map(|(_, w)| *w)
        .take(3)
        .collect();
    let [name, value, is_local] = args.as_slice() else {
        return None;
    };
    Some(TimeoutSetting {
        name: name_of(name)?,
        local: is_local.eq_ignore_ascii_case("true"),
        enabled: enabled(value),
    })
}

#[cfg(test)]
mod tests {
    use super::RuleSettings;
    use crate::rules::testing::check_rule_on;

    #[test]
    fn every_rule_recommending_a_concurrent_build_carries_the_14_0_to_14_3_caveat() {
        let users = "CREATE TABLE users (id bigint NOT NULL, email text);\n\
                     CREATE INDEX users_email_idx ON users (email);";
        let events = "CREATE TABLE events (id bigint, at timestamptz) PARTITION BY RANGE (at);\n\
                      CREATE TABLE events_2024 PARTITION OF events \
                      FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');";
        let posts = "CREATE TABLE posts (id bigint PRIMARY KEY, author_id bigint);";
        let cases = [
            (
                "index-not-concurrent",
                users,
                "CREATE INDEX users_id_idx ON users (id);",
            ),
            (
                "reindex-not-concurrent",
                users,
                "REINDEX INDEX users_email_idx;",
            ),
            (
                "add-unique-constraint",
                users,
                "ALTER TABLE users ADD UNIQUE (email);",
            ),
            (
                "add-primary-key",
                users,
                "ALTER TABLE users ADD PRIMARY KEY (id);",
            ),
            (
                "add-column-inline-constraint",
                users,
                "ALTER TABLE users ADD COLUMN code text UNIQUE;",
            ),
            (
                "index-on-partitioned-table",
                events,
                "CREATE INDEX events_at_idx ON events (at);",
            ),
            (
                "foreign-key-without-index",
                &format!("{users}\n{posts}"),
                "ALTER TABLE posts ADD CONSTRAINT posts_author_fk FOREIGN KEY (author_id) \
                 REFERENCES users (id) NOT VALID;",
            ),
        ];
        for (rule, history, sql) in cases {
            let on = |pg_version, pg_minor| {
                let settings = RuleSettings {
                    pg_version,
                    pg_minor,
                };
                check_rule_on(rule, settings, &[history], sql)
            };
            let known = on(14, Some(3));
            assert!(
                known.contains("but PostgreSQL 14.3 has the bug"),
                "{rule}: {known}"
            );
            let unknown = on(14, None);
            assert!(
                unknown.contains("but PostgreSQL 14.0 to 14.3 have a bug"),
                "{rule}: {unknown}"
            );
            for (major, minor) in [(14, Some(4)), (15, None)] {
                let report = on(major, minor);
                assert!(
                    report.contains("help:"),
                    "{rule}: no finding on {major}: {report}"
                );
                assert!(
                    !report.contains("corrupt"),
                    "{rule} on {major}.{minor:?}: {report}"
                );
            }
        }
    }
}
