//! What a rule sees: one statement, the file around it, the schema just before it, and the
//! transaction it runs in.

use std::cell::OnceCell;
use std::hash::BuildHasher;
use std::ops::Range;

use foldhash::HashMap;

use crate::pg::held::{HeldLocks, Holder};
use crate::pg::locks::{statement_locks, LockMode, PredictedLock, Words};
pub use crate::pg::transactions::TxState;
use crate::schema::naming::{truncate_identifier, MAX_IDENTIFIER_BYTES};
use crate::schema::Catalog;
use crate::sql::{Kind, ObjectName, Statement, Token, TokenKind};

use super::columns::DeclaredColumn;
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
    pub held_locks: &'a HeldLocks,
    pub settings: &'a RuleSettings,
    /// The shadow database applies the migration and traces each statement.
    pub traced: bool,
    /// The schema the whole migration leaves behind, computed on first use (see
    /// [`StatementContext::catalog_after_migration`]).
    pub after_migration: &'a OnceCell<Catalog>,
    /// Indexes over the migration's statements, shared by every statement's context.
    pub file: &'a FileIndex,
    /// What several rules read from the statement, each read once (`Readings::default()`).
    pub(crate) readings: Readings<'a>,
}

/// Readings of one statement that several rules share, each made on first use: the statement and
/// the schema before it do not change while its rules run.
#[derive(Default)]
pub(crate) struct Readings<'a> {
    /// The statement read as an `ALTER TABLE` (see [`AlterTable::of`]).
    pub(crate) alter_table: OnceCell<Option<AlterTable<'a>>>,
    /// The column types it declares (see [`declared_columns`](super::columns::declared_columns)).
    pub(crate) declared_columns: OnceCell<Vec<DeclaredColumn<'a>>>,
    /// The locks the lock model predicts for it (see [`StatementContext::locks`]).
    locks: OnceCell<Vec<PredictedLock>>,
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

    /// A superset of the [later statements](Self::later_statements) that name `identifier` (in
    /// any case, quoted or not, or as a name longer than PostgreSQL keeps) or drop or alter an
    /// index, in the same order: for rules that then look at each of them closely. Found in the
    /// migration's index of names, not by reading every later statement again.
    pub fn later_statements_naming(
        &self,
        identifier: &str,
    ) -> impl Iterator<Item = &'a Statement> + 'a {
        let current = self.statement.range.clone();
        let rest_of_block = self.statements[self.index]
            .nested
            .iter()
            .skip_while(move |nested| nested.range != current)
            .skip(1);
        let statements = self.statements;
        let later: Vec<usize> = if statements.len() <= UNINDEXED_STATEMENTS {
            (self.index + 1..statements.len()).collect()
        } else {
            let names = self
                .file
                .names
                .get_or_init(|| Names::of(self.text, statements));
            let mut later = names.after(&identifier.to_ascii_lowercase(), self.index);
            later.sort_unstable();
            later.dedup();
            later
        };
        let rest = later
            .into_iter()
            .flat_map(move |i| std::iter::once(&statements[i]).chain(&statements[i].nested));
        rest_of_block.chain(rest)
    }

    /// The indexes of the statements before this one that are `SET` commands, in order.
    pub fn earlier_set_commands(&self) -> &'a [usize] {
        let sets = self
            .file
            .sets
            .get_or_init(|| indexes_of(self.statements, &[Kind::Set]));
        &sets[..sets.partition_point(|&i| i < self.index)]
    }

    /// The indexes of the statements before this one that are BEGIN, COMMIT or ROLLBACK, in order.
    pub fn earlier_transaction_controls(&self) -> &'a [usize] {
        let controls = self
            .file
            .controls
            .get_or_init(|| indexes_of(self.statements, &Kind::TRANSACTION_CONTROL));
        &controls[..controls.partition_point(|&i| i < self.index)]
    }

    /// The indexes of the statements (with the statements of their DO blocks) that hold a string
    /// literal token written exactly `literal`, quotes included, in order: a rule looking for a
    /// later use of a literal reads only those, not every later statement's tokens.
    pub fn statements_with_literal(&self, literal: &str) -> &'a [usize] {
        let statements = self.statements;
        let literals = self.file.literals.get_or_init(|| {
            let mut literals: HashMap<String, Vec<usize>> = HashMap::default();
            for (index, statement) in statements.iter().enumerate() {
                let units = std::iter::once(statement).chain(&statement.nested);
                for token in units.flat_map(|s| &s.tokens) {
                    if token.kind != TokenKind::String {
                        continue;
                    }
                    let at = literals
                        .entry(self.text[token.range()].to_owned())
                        .or_default();
                    if at.last() != Some(&index) {
                        at.push(index);
                    }
                }
            }
            literals
        });
        literals.get(literal).map_or(&[], Vec::as_slice)
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

    /// The locks the statement takes as the lock model predicts them on the schema before it
    /// ([`statement_locks`]), computed once for all its rules.
    pub fn locks(&self) -> &[PredictedLock] {
        self.readings
            .locks
            .get_or_init(|| statement_locks(self.text, self.statement, self.catalog))
    }

    /// The [locks](Self::locks), moved out for the review to hold once the rules are done.
    pub fn into_locks(mut self) -> Vec<PredictedLock> {
        self.readings
            .locks
            .take()
            .unwrap_or_else(|| statement_locks(self.text, self.statement, self.catalog))
    }

    /// Whether a fixer's steps can take this statement's place: it is a statement of the migration,
    /// not one inside a DO block (whose steps cannot leave the block's transaction), and, for an
    /// `ALTER TABLE`, it has no other operation the fix would drop.
    pub fn fixable(&self) -> bool {
        self.is_top_level() && AlterTable::of(self).is_none_or(|alter| alter.operations.len() == 1)
    }

    /// The statement (or statement of a DO block) that took a held lock.
    pub fn unit(&self, holder: Holder) -> &'a Statement {
        let statement = &self.statements[holder.index];
        holder.nested.map_or(statement, |i| &statement.nested[i])
    }

    /// Whether this is a statement of the migration, not one inside a DO block.
    pub fn is_top_level(&self) -> bool {
        std::ptr::eq(self.statement, &self.statements[self.index])
    }

    /// The 1-based line of a file offset, for messages that point at another statement.
    pub fn line_of(&self, offset: usize) -> usize {
        self.text.get(..offset).map_or(0, |before| {
            memchr::memchr_iter(b'\n', before.as_bytes()).count()
        }) + 1
    }

    /// Whether locks on this relation matter: it existed before the migration (or the model has never
    /// heard of it), so other sessions may use it and it may hold rows.
    pub fn is_existing(&self, relation: &ObjectName) -> bool {
        !self.catalog.is_new_relation(relation)
    }

    /// Whether the review keeps a finding on `relation` of a rule whose category concerns only
    /// relations that existed before the migration ([`Category::needs_existing_relation`]): not on
    /// one the migration created, unless the shadow traces the statement (its findings then explain
    /// the trace). Such rules ask before building messages and fixes the review would drop: every
    /// table of a schema dump is new.
    ///
    /// [`Category::needs_existing_relation`]: super::Category::needs_existing_relation
    pub fn keeps_finding_on(&self, relation: &ObjectName) -> bool {
        self.traced
            || !self
                .catalog
                .is_new_relation(&self.catalog.resolve(relation))
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
            fix: None,
        }
    }
}

/// Up to this many statements, a file's later statements are all handed to a rule that asks for
/// those naming an identifier (a superset, as [`StatementContext::later_statements_naming`] allows):
/// reading them costs less than indexing every name of the file, which most short files need
/// for one question or two.
const UNINDEXED_STATEMENTS: usize = 64;

/// Indexes over one migration's statements, each built on first use: rules that look around a
/// statement ask them instead of walking the whole file again for each statement, which made the
/// review of a long file quadratic.
#[derive(Debug, Default)]
pub struct FileIndex {
    names: OnceCell<Names>,
    sets: OnceCell<Vec<usize>>,
    controls: OnceCell<Vec<usize>>,
    literals: OnceCell<HashMap<String, Vec<usize>>>,
}

/// The indexes of the statements of one of these kinds, in order.
fn indexes_of(statements: &[Statement], kinds: &[Kind]) -> Vec<usize> {
    statements
        .iter()
        .enumerate()
        .filter(|(_, s)| kinds.contains(&s.class.kind))
        .map(|(i, _)| i)
        .collect()
}

/// A file's index of names read statement by statement, as the file is parsed (see
/// [`sql::parse_each`](crate::sql::parse_each)): for a long file, where that work overlaps the
/// split instead of waiting for the first rule that asks.
#[derive(Debug)]
pub struct NamesReader {
    names: Names,
    /// One buffer for every token's key, hashed and never stored: reading allocates only lists.
    key: String,
}

impl NamesReader {
    /// For about `statements` statements.
    pub fn with_capacity(statements: usize) -> NamesReader {
        NamesReader {
            names: Names {
                by_identifier: HashMap::with_capacity_and_hasher(statements, Default::default()),
                index_changes: Vec::new(),
            },
            key: String::new(),
        }
    }

    /// Adds the statement at `index`, which follows every statement read so far.
    pub fn read(&mut self, text: &str, index: usize, statement: &Statement) {
        let names = &mut self.names;
        let units = || std::iter::once(statement).chain(&statement.nested);
        if units().any(|s| matches!(s.class.kind, Kind::DropIndex | Kind::AlterIndex)) {
            names.index_changes.push(index);
        }
        let at = statement_number(index);
        for unit in units() {
            for token in &unit.tokens {
                if !identifier_key(text, token, &mut self.key) {
                    continue;
                }
                let list = names.by_identifier.entry(name_hash(&self.key)).or_default();
                if list.last() != Some(&at) {
                    list.push(at);
                }
            }
        }
    }

    /// The file's index, with these names.
    pub fn finish(self) -> FileIndex {
        FileIndex {
            names: OnceCell::from(self.names),
            ..FileIndex::default()
        }
    }
}

/// Which top-level statements name each identifier (ASCII-lowercased; in the statement or a
/// statement of its DO block), and which drop or alter an index.
///
/// An identifier is kept as a hash of its key, not the key itself, and each statement as a 32-bit
/// number: a schema dump names hundreds of thousands of identifiers, and the keys and their lists
/// were a tenth of what a long file holds. Two identifiers of one hash share a list, which only adds
/// statements to a superset its callers narrow anyway.
#[derive(Debug, Default)]
struct Names {
    by_identifier: HashMap<u64, Vec<u32>>,
    index_changes: Vec<usize>,
}

/// The hash an identifier's key is indexed by, the same for every file and run.
fn name_hash(key: &str) -> u64 {
    foldhash::fast::FixedState::default().hash_one(key)
}

/// A statement's index as the index of names keeps it: a file has fewer statements than bytes,
/// and the lexer reads at most 4 GiB of a file.
fn statement_number(index: usize) -> u32 {
    u32::try_from(index)
        .expect("a file holds fewer than 2^32 statements: its tokens have 32-bit offsets")
}

impl Names {
    fn of(text: &str, statements: &[Statement]) -> Names {
        // A schema dump names a few new identifiers per statement: sized for that, the map of a
        // long file is not copied to twice its size again and again as it grows.
        let mut reader = NamesReader::with_capacity(statements.len());
        for (index, statement) in statements.iter().enumerate() {
            reader.read(text, index, statement);
        }
        reader.names
    }

    /// The statements after `index` that name `identifier` or change an index, unordered.
    fn after(&self, identifier: &str, index: usize) -> Vec<usize> {
        let mut later =
            self.index_changes[self.index_changes.partition_point(|&i| i <= index)..].to_vec();
        if let Some(list) = self.by_identifier.get(&name_hash(identifier)) {
            let at = statement_number(index);
            let rest = &list[list.partition_point(|&i| i <= at)..];
            later.extend(rest.iter().map(|&i| i as usize));
        }
        later
    }
}

/// The identifier a token names, ASCII-lowercased, written to `key`: a word as written, a quoted
/// identifier without its quotes, a name longer than PostgreSQL keeps as it keeps it. `false` for a
/// token that names nothing.
fn identifier_key(text: &str, token: &Token, key: &mut String) -> bool {
    // Punctuation, numbers and strings name nothing: skipped before their text is sliced.
    if !matches!(token.kind, TokenKind::Word | TokenKind::QuotedIdent) {
        return false;
    }
    let raw = &text[token.range()];
    key.clear();
    if raw.len() > MAX_IDENTIFIER_BYTES + 2 {
        let Some(name) = ObjectName::from_tokens(text, std::slice::from_ref(token)) else {
            return false;
        };
        key.push_str(&truncate_identifier(&name.name));
    } else {
        match token.kind {
            TokenKind::Word => key.push_str(raw),
            TokenKind::QuotedIdent => {
                let Some(inner) = raw.strip_prefix('"').and_then(|r| r.strip_suffix('"')) else {
                    return false;
                };
                if inner.contains("\"\"") {
                    key.push_str(&inner.replace("\"\"", "\""));
                } else {
                    key.push_str(inner);
                }
            }
            _ => return false,
        }
    }
    key.make_ascii_lowercase();
    true
}

/// The strongest lock of at least `at_least` that the statement takes on a relation that existed
/// before the migration (the first on ties). With `skip_held`, locks its transaction already holds
/// at least as strongly are left out: the statement does not queue for them again.
///
/// What `missing-lock-timeout` (with `skip_held`) and `missing-statement-timeout` (without) report.
pub(crate) fn strongest_lock_on_existing(
    cx: &StatementContext,
    at_least: LockMode,
    skip_held: bool,
) -> Option<PredictedLock> {
    let held = |lock: &PredictedLock| {
        cx.held_locks
            .on(&lock.relation, cx.catalog)
            .is_some_and(|held| held.mode >= lock.mode)
    };
    cx.locks()
        .iter()
        .filter(|lock| lock.mode >= at_least && cx.is_existing(&lock.relation))
        .filter(|lock| !(skip_held && held(lock)))
        .reduce(|strongest, lock| {
            if lock.mode > strongest.mode {
                lock
            } else {
                strongest
            }
        })
        .cloned()
}

/// For an `ALTER TABLE` sqlparser could not parse: the table it names, its tokens, and its top-level
/// clauses that start with `keywords` (e.g. `ATTACH PARTITION`).
pub(crate) fn unparsed_alter_clauses<'a>(
    cx: &StatementContext<'a>,
    keywords: &[&str],
) -> Option<(ObjectName, Words<'a>, Vec<Range<usize>>)> {
    let statement = cx.statement;
    if statement.ast().is_some() || statement.class.kind != Kind::AlterTable {
        return None;
    }
    let table = statement.class.target.clone()?;
    let words = Words::of(cx.text, statement);
    let clauses = words
        .alter_table_clauses()
        .into_iter()
        .filter(|clause| words.seq_at(clause.start, keywords))
        .collect();
    Some((table, words, clauses))
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
