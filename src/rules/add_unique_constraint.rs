//! `ALTER TABLE … ADD UNIQUE (…)` builds the constraint's unique index inside the ALTER TABLE, which
//! holds ACCESS EXCLUSIVE on the table for the whole build: no reads, no writes. Building the index
//! first with `CREATE UNIQUE INDEX CONCURRENTLY` and attaching it with `ADD CONSTRAINT … UNIQUE USING
//! INDEX` makes the ALTER TABLE instant.
//!
//! Also home of [`index_constraints`], the reading of `ADD {UNIQUE | PRIMARY KEY | EXCLUDE}` clauses
//! shared with `add-primary-key` and `add-exclusion-constraint`.

use sqlparser::ast::{
    AlterTableOperation, ConstraintCharacteristics, IndexColumn, NullsDistinctOption,
    TableConstraint,
};

use super::fix::{Fix, Step};
use super::syntax::{sql_ident, sql_name, AlterTable};
use super::{kinds, Category, Diagnostic, Kinds, Rule, Severity, StatementContext};
use crate::pg::locks::Words;
use crate::sql::name::fold_ident;
use crate::sql::{Kind, ObjectName};

pub const RULE: Rule = Rule {
    id: "add-unique-constraint",
    category: Category::Locking,
    default_severity: Severity::Error,
    size_graded: true,
    summary: "ADD UNIQUE without USING INDEX builds the index under ACCESS EXCLUSIVE",
    doc: include_str!("../../rules/add-unique-constraint.md"),
    check,
    kinds: Kinds::Only(&[kinds::ALTER]),
};

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    let Some((table, constraints)) = index_constraints(cx, IndexConstraintKind::Unique) else {
        return;
    };
    if constraints.is_empty() || !cx.keeps_finding_on(&table) {
        return;
    }
    let name = cx.qualified(&table);
    let table_sql = sql_name(&cx.catalog.resolve(&table));
    for constraint in constraints {
        if constraint.using_index.is_some() {
            continue;
        }
        let constraint_name = constraint.name_or_default(&table);
        let what = match &constraint.name {
            Some(given) => format!("ADD CONSTRAINT {given} UNIQUE"),
            None => "ADD UNIQUE".to_owned(),
        };
        let fix = index_then_constraint(&table_sql, &constraint, &constraint_name, "UNIQUE");
        let help = match &fix {
            Some(fix) => format!(
                "build the index first without blocking writes: `{}` (outside a transaction block), \
                 then `{}`, which only attaches the index{}",
                fix.steps[0].sql,
                fix.steps[1].sql,
                cx.settings.concurrent_build_caveat().unwrap_or_default(),
            ),
            None => format!(
                "build the index first without blocking writes: `CREATE UNIQUE INDEX CONCURRENTLY \
                 <name> ON {table_sql} (…);` (outside a transaction block), then `ALTER TABLE \
                 {table_sql} ADD CONSTRAINT <name> UNIQUE USING INDEX <name>;`, which only attaches \
                 the index{}",
                cx.settings.concurrent_build_caveat().unwrap_or_default(),
            ),
        };
        out.push(
            cx.diagnostic(
                constraint.offset,
                Some(&table),
                format!(
                    "{what} on existing table {name} builds its unique index inside the ALTER TABLE, \
                     which holds ACCESS EXCLUSIVE for the whole build: reads and writes on {name} are \
                     blocked while the table is scanned and sorted"
                ),
                help,
            )
            .with_fix(fix.filter(|_| cx.fixable())),
        );
    }
}

/// An index-backed constraint without the long lock: its unique index built CONCURRENTLY under the
/// constraint's name, then `ADD CONSTRAINT name {UNIQUE | PRIMARY KEY} USING INDEX name`, which
/// only attaches it. `None` when the key list is not known.
pub(super) fn index_then_constraint(
    table_sql: &str,
    constraint: &IndexConstraint,
    constraint_name: &str,
    keyword: &str,
) -> Option<Fix> {
    let named = sql_ident(constraint_name);
    let columns = constraint.columns_sql.as_deref()?;
    Some(Fix::replace(vec![
        Step::outside_transaction(
            format!(
                "CREATE UNIQUE INDEX CONCURRENTLY {named} ON {table_sql} {columns}{};",
                constraint.index_suffix
            ),
            "builds the unique index without blocking writes; CONCURRENTLY cannot run in a \
             transaction block",
        ),
        Step::transactional(
            format!(
                "ALTER TABLE {table_sql} ADD CONSTRAINT {named} {keyword} USING INDEX {named}{};",
                constraint.characteristics
            ),
            "attaches the built index as the constraint: instant",
        ),
    ]))
}

/// Which index-backed constraint an `ADD` clause adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum IndexConstraintKind {
    Unique,
    PrimaryKey,
    Exclude,
}

/// An `ADD [CONSTRAINT name] {UNIQUE | PRIMARY KEY | EXCLUDE} …` clause of an `ALTER TABLE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct IndexConstraint {
    /// Where the clause starts in the file.
    pub offset: usize,
    pub kind: IndexConstraintKind,
    /// The constraint's name, when the clause gives one.
    pub name: Option<String>,
    /// `USING INDEX index`: an existing index becomes the constraint's.
    pub using_index: Option<ObjectName>,
    /// The key columns (case-folded; expressions as written), when known.
    pub columns: Vec<String>,
    /// The key list as written, `(a, b)`, when known.
    pub columns_sql: Option<String>,
    /// What `CREATE UNIQUE INDEX` needs after the key list to build the same index
    /// (` NULLS NOT DISTINCT`), or "".
    pub index_suffix: String,
    /// ` DEFERRABLE …` as written, or "".
    pub characteristics: String,
}

impl IndexConstraint {
    /// The given name, else the one PostgreSQL generates (`users_email_key`, `users_pkey`).
    pub fn name_or_default(&self, table: &ObjectName) -> String {
        self.name.clone().unwrap_or_else(|| match self.kind {
            IndexConstraintKind::PrimaryKey => format!("{}_pkey", table.name),
            IndexConstraintKind::Unique => format!("{}_{}_key", table.name, self.columns.join("_")),
            IndexConstraintKind::Exclude => {
                format!("{}_{}_excl", table.name, self.columns.join("_"))
            }
        })
    }
}

/// The table of an `ALTER TABLE` and the index-backed constraints of kind `wanted` it adds, from the
/// syntax tree or, when sqlparser could not read the statement, from its tokens. Each of the three
/// rules asks for its own kind: the others' key lists are not written for it.
pub(super) fn index_constraints(
    cx: &StatementContext,
    wanted: IndexConstraintKind,
) -> Option<(ObjectName, Vec<IndexConstraint>)> {
    if let Some(alter) = AlterTable::of(cx) {
        let constraints = alter
            .operations
            .iter()
            .enumerate()
            .filter_map(|(i, operation)| from_ast(operation, wanted, alter.offset(cx, i)))
            .collect();
        return Some((alter.table.clone(), constraints));
    }
    let statement = cx.statement;
    if statement.ast().is_some() || statement.class.kind != Kind::AlterTable {
        return None;
    }
    let table = statement.class.target.clone()?;
    let words = Words::of(cx.text, statement);
    let constraints = words
        .alter_table_clauses()
        .into_iter()
        .filter_map(|clause| from_tokens(&words, clause))
        .filter(|constraint| constraint.kind == wanted)
        .collect();
    Some((table, constraints))
}

fn from_ast(
    operation: &AlterTableOperation,
    wanted: IndexConstraintKind,
    offset: usize,
) -> Option<IndexConstraint> {
    let AlterTableOperation::AddConstraint { constraint, .. } = operation else {
        return None;
    };
    let (kind, name, columns, using_index, characteristics, index_suffix) = match constraint {
        TableConstraint::Unique(unique) => (
            IndexConstraintKind::Unique,
            &unique.name,
            Some(&unique.columns),
            None,
            &unique.characteristics,
            match unique.nulls_distinct {
                NullsDistinctOption::NotDistinct => " NULLS NOT DISTINCT",
                _ => "",
            },
        ),
        TableConstraint::PrimaryKey(pk) => (
            IndexConstraintKind::PrimaryKey,
            &pk.name,
            Some(&pk.columns),
            None,
            &pk.characteristics,
            "",
        ),
        TableConstraint::UniqueUsingIndex(using) | TableConstraint::PrimaryKeyUsingIndex(using) => {
            (
                if matches!(constraint, TableConstraint::UniqueUsingIndex(_)) {
                    IndexConstraintKind::Unique
                } else {
                    IndexConstraintKind::PrimaryKey
                },
                &using.name,
                None,
                Some(ObjectName::new(None, &fold_ident(&using.index_name))),
                &using.characteristics,
                "",
            )
        }
        TableConstraint::Exclude(exclude) => (
            IndexConstraintKind::Exclude,
            &exclude.name,
            None,
            None,
            &exclude.characteristics,
            "",
        ),
        _ => return None,
    };
    if kind != wanted {
        return None;
    }
    let key = columns.map(|columns| key_columns(columns));
    Some(IndexConstraint {
        offset,
        kind,
        name: name.as_ref().map(fold_ident),
        using_index,
        columns: key
            .as_ref()
            .map(|(names, _)| names.clone())
            .unwrap_or_default(),
        columns_sql: key.map(|(_, sql)| sql),
        index_suffix: index_suffix.to_owned(),
        characteristics: characteristics_sql(characteristics.as_ref()),
    })
}

/// The folded names of an index key (expressions as written) and the key list as SQL.
fn key_columns(columns: &[IndexColumn]) -> (Vec<String>, String) {
    let names = columns
        .iter()
        .map(|column| match &column.column.expr {
            sqlparser::ast::Expr::Identifier(ident) => fold_ident(ident),
            other => other.to_string(),
        })
        .collect();
    let sql = columns
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    (names, format!("({sql})"))
}

fn characteristics_sql(characteristics: Option<&ConstraintCharacteristics>) -> String {
    characteristics.map_or(String::new(), |c| format!(" {c}"))
}

/// `ADD [CONSTRAINT name] {UNIQUE [NULLS [NOT] DISTINCT] | PRIMARY KEY | EXCLUDE} [USING INDEX idx |
/// (…)] …` read from tokens.
fn from_tokens(words: &Words, clause: std::ops::Range<usize>) -> Option<IndexConstraint> {
    let mut at = clause.start;
    if !words.is(at, "add") {
        return None;
    }
    at += 1;
    let mut name = None;
    if words.is(at, "constraint") {
        name = words.name_at(at + 1).map(|n| n.name);
        at = words.after_name(at + 1);
    }
    let kind = if words.is(at, "unique") {
        at += 1;
        IndexConstraintKind::Unique
    } else if words.seq_at(at, &["primary", "key"]) {
        at += 2;
        IndexConstraintKind::PrimaryKey
    } else if words.is(at, "exclude") {
        IndexConstraintKind::Exclude
    } else {
        return None;
    };
    let mut index_suffix = String::new();
    if words.seq_at(at, &["nulls", "not", "distinct"]) {
        index_suffix = " NULLS NOT DISTINCT".to_owned();
        at += 3;
    } else if words.seq_at(at, &["nulls", "distinct"]) {
        at += 2;
    }
    let using_index = words
        .seq_at(at, &["using", "index"])
        .then(|| words.name_at(at + 2))
        .flatten()
        .filter(|_| !words.is(at + 2, "tablespace"));
    let (columns, columns_sql) = if kind != IndexConstraintKind::Exclude && words.is_lparen(at) {
        let close = words.skip_parens(at);
        let names = words
            .comma_separated(at + 1..close.saturating_sub(1))
            .into_iter()
            .filter_map(|key| words.name_at(key.start).map(|n| n.name))
            .collect();
        (names, Some(words.text_of(at..close).to_owned()))
    } else {
        (Vec::new(), None)
    };
    Some(IndexConstraint {
        offset: words.offset(clause.start)?,
        kind,
        name,
        using_index,
        columns,
        columns_sql,
        index_suffix,
        characteristics: String::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::{index_constraints, IndexConstraintKind};
    use crate::rules::testing::check_rule;

    const RULE: &str = "add-unique-constraint";
    const USERS: &str = "CREATE TABLE users (id bigint PRIMARY KEY, email text, tenant_id bigint);";

    #[test]
    fn fires_on_an_existing_table() {
        assert_eq!(
            check_rule(
                RULE,
                &[USERS],
                "ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email);"
            ),
            "\
error[add-unique-constraint]: ADD CONSTRAINT users_email_key UNIQUE on existing table public.users builds its unique index inside the ALTER TABLE, which holds ACCESS EXCLUSIVE for the whole build: reads and writes on public.users are blocked while the table is scanned and sorted
 --> migration.sql:1:19
  |
1 | ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email);
  |                   ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  |
  = help: build the index first without blocking writes: `CREATE UNIQUE INDEX CONCURRENTLY users_email_key ON public.users (email);` (outside a transaction block), then `ALTER TABLE public.users ADD CONSTRAINT users_email_key UNIQUE USING INDEX users_email_key;`, which only attaches the index

"
        );
    }

    #[test]
    fn names_the_constraint_as_postgres_would_and_keeps_its_options() {
        let report = check_rule(
            RULE,
            &[USERS],
            "ALTER TABLE users ADD UNIQUE NULLS NOT DISTINCT (tenant_id, email) DEFERRABLE;",
        );
        assert!(
            report.contains("`CREATE UNIQUE INDEX CONCURRENTLY users_tenant_id_email_key ON public.users (tenant_id, email) NULLS NOT DISTINCT;`"),
            "{report}"
        );
        assert!(
            report.contains("UNIQUE USING INDEX users_tenant_id_email_key DEFERRABLE;`"),
            "{report}"
        );
    }

    #[test]
    fn fires_when_sqlparser_cannot_parse_the_statement() {
        let report = check_rule(
            RULE,
            &[USERS],
            "ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email) INCLUDE (id) WITH (fillfactor = 90);",
        );
        assert!(
            report.contains("ADD CONSTRAINT users_email_key UNIQUE on existing table public.users"),
            "{report}"
        );
        assert!(report.contains("ON public.users (email);`"), "{report}");
    }

    #[test]
    fn silent_with_using_index_and_on_new_tables() {
        for sql in [
            "CREATE UNIQUE INDEX CONCURRENTLY users_email_key ON users (email);\n\
             ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE USING INDEX users_email_key;",
            "CREATE TABLE t (id bigint, code text);\nALTER TABLE t ADD CONSTRAINT t_code_key UNIQUE (code);",
            "ALTER TABLE users ADD CONSTRAINT users_pkey2 PRIMARY KEY (id);",
        ] {
            assert_eq!(check_rule(RULE, &[USERS], sql), "", "{sql}");
        }
    }

    #[test]
    fn reads_unparsed_clauses() {
        let sql = "ALTER TABLE ONLY users ADD CONSTRAINT users_pkey PRIMARY KEY (id) WITH (fillfactor = 90), \
                   ADD UNIQUE USING INDEX users_email_idx, ADD EXCLUDE USING gist (p WITH &&) WITH (fillfactor = 90)";
        let parsed = crate::sql::parse_text(sql);
        let statement = &parsed.statements[0];
        assert!(statement.ast().is_none());
        let catalog = crate::schema::Catalog::default();
        let settings = crate::rules::RuleSettings::default();
        let cx = crate::rules::StatementContext {
            text: sql,
            statements: &parsed.statements,
            index: 0,
            statement,
            catalog: &catalog,
            tx: Default::default(),
            held_locks: &Default::default(),
            settings: &settings,
            traced: false,
            after_migration: &Default::default(),
            file: &Default::default(),
            readings: Default::default(),
        };
        let of_kind = |kind| {
            let (table, constraints) = index_constraints(&cx, kind).unwrap();
            assert_eq!(table.name, "users");
            assert_eq!(constraints.len(), 1, "{kind:?}");
            assert!(constraints.iter().all(|c| c.kind == kind));
            constraints.into_iter().next().unwrap()
        };
        let primary_key = of_kind(IndexConstraintKind::PrimaryKey);
        assert_eq!(primary_key.columns, ["id"]);
        assert_eq!(primary_key.name.as_deref(), Some("users_pkey"));
        assert_eq!(
            of_kind(IndexConstraintKind::Unique)
                .using_index
                .map(|i| i.name),
            Some("users_email_idx".to_owned())
        );
        of_kind(IndexConstraintKind::Exclude);
    }
}
