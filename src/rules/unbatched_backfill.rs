//! `UPDATE`/`DELETE` over an existing table without a bounded batch changes every matching row in one
//! transaction: each changed row stays locked until it commits, every change leaves a dead row
//! version behind (bloat, WAL, replication lag), and a failure near the end throws all the work away.
//!
//! Bounded means the WHERE clause (one of its AND-ed terms) limits the rows to a batch: a key range
//! on any column (`id BETWEEN a AND b`, `id >= a AND id < b`), a LIMITed subquery
//! (`id IN (SELECT … LIMIT n)`, `id = ANY(ARRAY(SELECT … LIMIT n))`), or equality with literals on a
//! column the model knows is unique (`WHERE id = 42`: a data fix, not a backfill). No WHERE is
//! unbounded. Statements sqlparser cannot parse are reported only when they have no WHERE at all.
//!
//! Also home of [`Dml`], how the data-migration rules read a data change.

use sqlparser::ast::{
    BinaryOperator, Expr, FromTable, FunctionArguments, InTarget, LimitClause, Query, SetExpr,
    Statement as Ast, TableFactor, TableObject, TableWithJoins,
};

use super::batch::BatchKey;
use super::syntax::sql_name;
use super::{kinds, Category, Diagnostic, Kinds, Rule, Severity, StatementContext};
use crate::schema::{Catalog, ConstraintKind};
use crate::sql::name::fold_ident;
use crate::sql::{Kind, ObjectName, TokenKind};

pub const RULE: Rule = Rule {
    id: "unbatched-backfill",
    category: Category::DataMigration,
    default_severity: Severity::Warning,
    size_graded: true,
    summary: "UPDATE/DELETE over an existing table without a bounded batch",
    doc: include_str!("../../rules/unbatched-backfill.md"),
    check,
    kinds: Kinds::Only(&[kinds::DML]),
};

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    let Some(dml) = Dml::of(cx) else {
        return;
    };
    let Some(table) = &dml.table else {
        return;
    };
    let scope = match dml.filter {
        Filter::Insert { .. } => return,
        Filter::Where(Some(selection)) if is_bounded(cx.catalog, table, selection) => return,
        Filter::Where(Some(_)) => {
            "whose WHERE is not a bounded batch (no key range such as id >= … AND id < …, no \
             LIMITed subquery)"
        }
        Filter::Where(None) => "without a WHERE clause",
        Filter::Unread { has_where: true } => return,
        Filter::Unread { has_where: false } => "without a WHERE clause",
    };
    let name = cx.qualified(table);
    let table_sql = sql_name(&cx.catalog.resolve(table));
    let key = BatchKey::primary_key_of(cx.catalog, table).unwrap_or(BatchKey {
        column_sql: "<key>".to_owned(),
        integer: true,
    });
    let (batch, next) = (key.first_batch(&table_sql), key.next_batches());
    let (what, example) = match dml.verb {
        Verb::Update => (
            "rewrites every matching row",
            format!("UPDATE {table_sql} SET … WHERE {batch}"),
        ),
        _ => (
            "deletes every matching row",
            format!("DELETE FROM {table_sql} WHERE {batch}"),
        ),
    };
    out.push(cx.diagnostic(
        cx.statement.range.start,
        Some(table),
        format!(
            "{} on existing table {name} {scope}: it {what} in one transaction, holding a row lock on \
             each until it commits (concurrent writes to those rows wait) and leaving a dead row \
             version behind for each (table bloat, WAL volume and replication lag grow with the \
             table)",
            dml.verb.sql()
        ),
        format!(
            "batch it by key, one transaction per batch (`{example}`, {next}), \
             driven by a script outside the migration or by a procedure that COMMITs after each \
             batch; keep only the schema change in the migration"
        ),
    ));
}

/// What a data change does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verb {
    Insert,
    Update,
    Delete,
}

impl Verb {
    pub(super) fn sql(self) -> &'static str {
        match self {
            Verb::Insert => "INSERT",
            Verb::Update => "UPDATE",
            Verb::Delete => "DELETE",
        }
    }
}

/// Which rows a data change touches, as far as the statement says.
#[derive(Debug, Clone, Copy)]
pub(super) enum Filter<'a> {
    /// UPDATE/DELETE: the WHERE clause, if any.
    Where(Option<&'a Expr>),
    /// INSERT: `values_only` when it inserts literal rows (`VALUES (…), (…)`), not a query's rows.
    Insert { values_only: bool },
    /// Not parsed: only whether a WHERE (UPDATE/DELETE) or a SELECT (INSERT) appears in it.
    Unread { has_where: bool },
}

/// A data change (INSERT, UPDATE, DELETE, also after `WITH …`) as the data-migration rules read it.
pub(super) struct Dml<'a> {
    pub verb: Verb,
    /// The table written to; `None` when the statement names none the rules can read.
    pub table: Option<ObjectName>,
    pub filter: Filter<'a>,
}

impl<'a> Dml<'a> {
    pub(super) fn of(cx: &StatementContext<'a>) -> Option<Dml<'a>> {
        match cx.statement.ast() {
            Some(ast) => Self::of_ast(ast),
            None => Self::of_tokens(cx),
        }
    }

    fn of_ast(ast: &'a Ast) -> Option<Dml<'a>> {
        match ast {
            Ast::Update(update) => Some(Dml {
                verb: Verb::Update,
                table: table_of(&update.table),
                filter: Filter::Where(update.selection.as_ref()),
            }),
            Ast::Delete(delete) => {
                let (FromTable::WithFromKeyword(from) | FromTable::WithoutKeyword(from)) =
                    &delete.from;
                Some(Dml {
                    verb: Verb::Delete,
                    table: from.first().and_then(table_of),
                    filter: Filter::Where(delete.selection.as_ref()),
                })
            }
            Ast::Insert(insert) => Some(Dml {
                verb: Verb::Insert,
                table: match &insert.table {
                    TableObject::TableName(name) => ObjectName::from_ast(name),
                    _ => None,
                },
                filter: Filter::Insert {
                    values_only: insert
                        .source
                        .as_ref()
                        .is_none_or(|source| matches!(source.body.as_ref(), SetExpr::Values(_))),
                },
            }),
            // WITH … UPDATE / DELETE / INSERT
            Ast::Query(query) => match query.body.as_ref() {
                SetExpr::Update(inner) | SetExpr::Delete(inner) | SetExpr::Insert(inner) => {
                    Self::of_ast(inner)
                }
                _ => None,
            },
            _ => None,
        }
    }

    /// A data change sqlparser could not parse, from its tokens: `UPDATE [ONLY] name`,
    /// `DELETE FROM [ONLY] name`, `INSERT INTO name`.
    fn of_tokens(cx: &StatementContext) -> Option<Dml<'a>> {
        let statement = cx.statement;
        let (verb, keywords): (Verb, &[&str]) = match statement.class.kind {
            Kind::Update => (Verb::Update, &["update"]),
            Kind::Delete => (Verb::Delete, &["delete", "from"]),
            Kind::Insert => (Verb::Insert, &["insert", "into"]),
            _ => return None,
        };
        let has = |keyword: &str| statement.find_keywords(cx.text, &[keyword]).is_some();
        let start = statement.find_keywords(cx.text, keywords)?;
        let mut rest = statement
            .tokens
            .iter()
            .skip_while(|t| t.range().start < start)
            .skip(keywords.len())
            .peekable();
        if rest.peek().is_some_and(|t| {
            t.kind == TokenKind::Word && cx.text[t.range()].eq_ignore_ascii_case("only")
        }) {
            rest.next();
        }
        let rest: Vec<_> = rest.cloned().collect();
        let filter = match verb {
            Verb::Insert => Filter::Insert {
                values_only: !has("select"),
            },
            _ => Filter::Unread {
                has_where: has("where"),
            },
        };
        Some(Dml {
            verb,
            table: ObjectName::from_tokens(cx.text, &rest),
            filter,
        })
    }
}

fn table_of(table: &TableWithJoins) -> Option<ObjectName> {
    match &table.relation {
        TableFactor::Table { name, .. } => ObjectName::from_ast(name),
        _ => None,
    }
}

/// The single-column primary key of a table, if the model knows one.
/// Whether the column alone is unique in the table: a one-column primary key, unique constraint or
/// unique index (not partial).
fn is_unique(catalog: &Catalog, table: &ObjectName, column: &str) -> bool {
    let one = |columns: &[String]| columns.len() == 1 && columns[0] == column;
    catalog.constraints_of(table).iter().any(|c| match &c.kind {
        ConstraintKind::PrimaryKey { columns } | ConstraintKind::Unique { columns } => one(columns),
        _ => false,
    }) || catalog
        .indexes_on(table)
        .any(|index| index.unique && index.predicate.is_none() && one(&index.columns))
}

/// Whether a WHERE clause limits the change to a batch (see the module documentation).
fn is_bounded(catalog: &Catalog, table: &ObjectName, selection: &Expr) -> bool {
    let mut terms = Vec::new();
    conjuncts(selection, &mut terms);
    terms
        .iter()
        .any(|term| bounded_term(term, &|column| is_unique(catalog, table, column)))
        || has_range(&terms)
}

/// The AND-ed terms of an expression.
fn conjuncts<'e>(expr: &'e Expr, terms: &mut Vec<&'e Expr>) {
    match expr {
        Expr::Nested(inner) => conjuncts(inner, terms),
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            conjuncts(left, terms);
            conjuncts(right, terms);
        }
        other => terms.push(other),
    }
}

/// One term that bounds the rows by itself.
fn bounded_term(term: &Expr, unique: &dyn Fn(&str) -> bool) -> bool {
    match term {
        Expr::Between {
            expr,
            negated: false,
            ..
        } => column_of(expr).is_some(),
        Expr::In {
            expr,
            target,
            negated: false,
            ..
        } => match target {
            InTarget::Subquery(query) => is_limited(query),
            InTarget::List(values) => {
                column_of(expr).is_some_and(|c| unique(&c)) && values.iter().all(is_literal)
            }
            _ => false,
        },
        Expr::AnyOp {
            compare_op: BinaryOperator::Eq,
            right,
            ..
        } => limited_array(right),
        Expr::BinaryOp {
            left,
            op: BinaryOperator::Eq,
            right,
        } => [(left, right), (right, left)]
            .iter()
            .any(|(column, value)| {
                column_of(column).is_some_and(|c| unique(&c)) && is_literal(value)
            }),
        _ => false,
    }
}

/// `ARRAY(SELECT … LIMIT n)` or `(SELECT … LIMIT n)`, the operand of `= ANY(…)`.
fn limited_array(expr: &Expr) -> bool {
    match expr {
        Expr::Nested(inner) => limited_array(inner),
        Expr::Subquery(query) => is_limited(query),
        Expr::Function(function) => {
            function.name.to_string().eq_ignore_ascii_case("array")
                && matches!(&function.args, FunctionArguments::Subquery(query) if is_limited(query))
        }
        _ => false,
    }
}

fn is_limited(query: &Query) -> bool {
    let limit = match &query.limit_clause {
        Some(LimitClause::LimitOffset { limit, .. }) => limit.is_some(),
        Some(LimitClause::OffsetCommaLimit { .. }) => true,
        None => false,
    };
    limit
        || query.fetch.is_some()
        || matches!(query.body.as_ref(), SetExpr::Query(inner) if is_limited(inner))
}

/// A lower and an upper bound on the same column among the terms (`id >= a AND id < b`).
fn has_range(terms: &[&Expr]) -> bool {
    let bounds: Vec<(String, bool)> = terms.iter().filter_map(|term| bound(term)).collect();
    bounds.iter().any(|(column, lower)| {
        bounds
            .iter()
            .any(|(other, other_lower)| other == column && other_lower != lower)
    })
}

/// `(column, is_lower)` for `column > x`, `column <= x`, `x < column`, ….
fn bound(term: &Expr) -> Option<(String, bool)> {
    let Expr::BinaryOp { left, op, right } = term else {
        return None;
    };
    let lower_when_column_left = match op {
        BinaryOperator::Gt | BinaryOperator::GtEq => true,
        BinaryOperator::Lt | BinaryOperator::LtEq => false,
        _ => return None,
    };
    match (column_of(left), column_of(right)) {
        (Some(column), None) => Some((column, lower_when_column_left)),
        (None, Some(column)) => Some((column, !lower_when_column_left)),
        _ => None,
    }
}

/// The (case-folded) column an expression names, ignoring a table qualifier.
fn column_of(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Nested(inner) => column_of(inner),
        Expr::Identifier(ident) => Some(fold_ident(ident)),
        Expr::CompoundIdentifier(parts) => parts.last().map(fold_ident),
        _ => None,
    }
}

fn is_literal(expr: &Expr) -> bool {
    match expr {
        Expr::Nested(inner) => is_literal(inner),
        Expr::Value(_) => true,
        Expr::Cast { expr, .. } => is_literal(expr),
        Expr::UnaryOp { expr, .. } => is_literal(expr),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::check_rule;

    const RULE: &str = "unbatched-backfill";
    const USERS: &str =
        "CREATE TABLE users (id bigint PRIMARY KEY, email text UNIQUE, status text, name text);";

    #[test]
    fn batches_a_uuid_key_in_key_order_not_by_arithmetic() {
        let report = check_rule(
            RULE,
            &["CREATE TABLE jobs (uuid uuid PRIMARY KEY, current_run_uuid uuid);"],
            "UPDATE jobs SET current_run_uuid = gen_random_uuid();",
        );
        assert!(
            report.contains(
                "`UPDATE public.jobs SET … WHERE uuid IN (SELECT uuid FROM public.jobs ORDER BY \
                 uuid LIMIT 10000)`, then the same with `WHERE uuid > ` the last uuid of the \
                 batch before in the subquery, until it selects no rows)"
            ),
            "{report}"
        );
        assert!(!report.contains(">= 1"), "{report}");
    }

    #[test]
    fn fires_on_an_update_without_where() {
        assert_eq!(
            check_rule(RULE, &[USERS], "UPDATE users SET status = 'active';"),
            "\
warning[unbatched-backfill]: UPDATE on existing table public.users without a WHERE clause: it rewrites every matching row in one transaction, holding a row lock on each until it commits (concurrent writes to those rows wait) and leaving a dead row version behind for each (table bloat, WAL volume and replication lag grow with the table)
 --> migration.sql:1:1
  |
1 | UPDATE users SET status = 'active';
  | ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  |
  = help: batch it by key, one transaction per batch (`UPDATE public.users SET … WHERE id >= 1 AND id < 10001`, then `id >= 10001 AND id < 20001` and so on), driven by a script outside the migration or by a procedure that COMMITs after each batch; keep only the schema change in the migration

"
        );
    }

    #[test]
    fn fires_on_unbounded_where_clauses() {
        for sql in [
            "UPDATE users SET status = 'active' WHERE status IS NULL;",
            "DELETE FROM users WHERE status = 'banned';",
            "UPDATE users SET status = 'x' WHERE id >= 100;",
            "UPDATE users SET status = 'x' WHERE id > 1 OR id < 5;",
            "UPDATE users SET status = 'x' WHERE id IN (SELECT id FROM users WHERE status IS NULL);",
            "WITH stale AS (SELECT id FROM users) DELETE FROM users USING stale WHERE users.id = stale.id;",
            "UPDATE users SET status = 'x' WHERE name = 'bob';",
        ] {
            let report = check_rule(RULE, &[USERS], sql);
            assert!(report.contains("on existing table public.users"), "{sql}\n{report}");
        }
        let report = check_rule(RULE, &[USERS], "DELETE FROM users WHERE status = 'banned';");
        assert!(
            report.contains("DELETE on existing table public.users whose WHERE is not a bounded batch (no key range such as id >= … AND id < …, no LIMITed subquery): it deletes every matching row"),
            "{report}"
        );
        assert!(
            report.contains("`DELETE FROM public.users WHERE id >= 1 AND id < 10001`"),
            "{report}"
        );
    }

    #[test]
    fn silent_on_bounded_batches() {
        for sql in [
            "UPDATE users SET status = 'active' WHERE id BETWEEN 1 AND 10000;",
            "UPDATE users SET status = 'active' WHERE status IS NULL AND id >= 1 AND id < 10001;",
            "UPDATE users SET status = 'active' WHERE 10001 > users.id AND 1 <= users.id;",
            "DELETE FROM users WHERE id IN (SELECT id FROM users WHERE status = 'banned' LIMIT 1000);",
            "UPDATE users SET status = 'x' WHERE id = ANY(ARRAY(SELECT id FROM users WHERE status IS NULL LIMIT 500));",
            "UPDATE users SET status = 'x' WHERE ctid = ANY(ARRAY(SELECT ctid FROM users FETCH FIRST 500 ROWS ONLY));",
            "UPDATE users SET status = 'admin' WHERE id = 42;",
            "UPDATE users SET status = 'admin' WHERE email IN ('a@example.com', 'b@example.com');",
        ] {
            assert_eq!(check_rule(RULE, &[USERS], sql), "", "{sql}");
        }
    }

    #[test]
    fn silent_on_new_tables_inserts_and_unparsed_statements_with_where() {
        for sql in [
            "CREATE TABLE events (id bigint, kind text);\nUPDATE events SET kind = 'x';",
            "INSERT INTO users (id, email) SELECT id, email FROM users;",
            "UPDATE ONLY users SET tags[1] = 'x' WHERE status IS NULL;",
        ] {
            assert_eq!(check_rule(RULE, &[USERS], sql), "", "{sql}");
        }
    }

    #[test]
    fn fires_on_tables_the_model_does_not_know_and_unparsed_statements_without_where() {
        let report = check_rule(RULE, &[], "DELETE FROM \"AuditLog\";");
        assert!(
            report.contains("DELETE on existing table public.AuditLog without a WHERE clause"),
            "{report}"
        );
        assert!(
            report.contains("WHERE <key> >= 1 AND <key> < 10001"),
            "{report}"
        );
        let report = check_rule(RULE, &[USERS], "UPDATE ONLY users SET tags[1] = 'x';");
        assert!(
            report.contains("UPDATE on existing table public.users without a WHERE clause"),
            "{report}"
        );
    }
}
