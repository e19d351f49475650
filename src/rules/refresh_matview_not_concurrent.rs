//! `REFRESH MATERIALIZED VIEW` without `CONCURRENTLY` re-runs the view's query and swaps in the
//! result under ACCESS EXCLUSIVE: every read of the view waits for the whole refresh. `CONCURRENTLY`
//! takes only EXCLUSIVE, which lets reads continue, but needs a unique index on plain columns of the
//! view covering all rows.

use sqlparser::ast::Statement as Ast;

use super::fix::{Fix, Step};
use super::syntax::sql_name;
use super::{Category, Diagnostic, Kinds, Rule, Severity, StatementContext};
use crate::schema::RelationKind;
use crate::sql::{Kind, ObjectName};

pub const RULE: Rule = Rule {
    id: "refresh-matview-not-concurrent",
    category: Category::Locking,
    default_severity: Severity::Warning,
    size_graded: true,
    summary: "REFRESH MATERIALIZED VIEW without CONCURRENTLY blocks reads of the view",
    doc: include_str!("../../rules/refresh-matview-not-concurrent.md"),
    check,
    kinds: Kinds::Only(&[&[Kind::RefreshMaterializedView]]),
};

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    let statement = cx.statement;
    let view = match statement.ast() {
        // WITH NO DATA empties the view; CONCURRENTLY cannot do that, so there is nothing to suggest.
        Some(Ast::RefreshMaterializedView(refresh))
            if !refresh.concurrently && refresh.with_data != Some(false) =>
        {
            ObjectName::from_ast(&refresh.name)
        }
        None if statement.class.kind == Kind::RefreshMaterializedView
            && !statement.class.concurrently
            && statement.find_keywords(cx.text, &["no", "data"]).is_none() =>
        {
            statement.class.target.clone()
        }
        _ => None,
    };
    let Some(view) = view else {
        return;
    };
    let name = cx.qualified(&view);
    let view_sql = sql_name(&cx.catalog.resolve(&view));
    let unique_index = match cx.catalog.relation(&view) {
        Some(relation) if relation.kind == RelationKind::MaterializedView => {
            Some(has_usable_unique_index(cx, &view))
        }
        // Unknown to the model: it cannot tell whether a unique index exists.
        _ => None,
    };
    let prerequisite = match unique_index {
        Some(true) => String::new(),
        Some(false) => format!(
            "; {name} has no unique index on plain columns, which CONCURRENTLY needs: create one first, \
             e.g. `CREATE UNIQUE INDEX CONCURRENTLY ON {view_sql} (id);` with the view's key columns"
        ),
        None => format!(
            " (it needs a unique index on plain columns of {name} covering all rows, e.g. `CREATE UNIQUE \
             INDEX CONCURRENTLY ON {view_sql} (id);`)"
        ),
    };
    let concurrent = format!("REFRESH MATERIALIZED VIEW CONCURRENTLY {view_sql};");
    // Only with the unique index CONCURRENTLY needs: otherwise the refresh would fail.
    let fix = (unique_index == Some(true) && cx.fixable()).then(|| {
        Fix::replace(vec![Step::transactional(
            concurrent.clone(),
            "refreshes under EXCLUSIVE: reads of the view continue",
        )])
    });
    out.push(cx.diagnostic(
        statement.range.start,
        Some(&view),
        format!(
            "REFRESH MATERIALIZED VIEW {name} re-runs the view's query and swaps in the result under ACCESS \
             EXCLUSIVE: every query that reads {name} waits until the refresh is done"
        ),
        format!(
            "use `{concurrent}`: it takes only EXCLUSIVE, so reads continue while it computes and \
             applies the difference{prerequisite}"
        ),
    ).with_fix(fix));
}

/// Whether the view has a unique, non-partial index on plain columns: what CONCURRENTLY requires.
fn has_usable_unique_index(cx: &StatementContext, view: &ObjectName) -> bool {
    let columns: Vec<&str> = cx
        .catalog
        .relation(view)
        .map(|r| r.columns.iter().map(|c| c.name.as_str()).collect())
        .unwrap_or_default();
    cx.catalog.indexes_on(view).any(|index| {
        index.unique
            && index.predicate.is_none()
            && index.columns.iter().all(|column| {
                // The model may not know the view's columns (SELECT *): then any plain name counts.
                columns.contains(&column.as_str())
                    || (columns.is_empty()
                        && column.chars().all(|c| c.is_alphanumeric() || c == '_'))
            })
    })
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::check_rule;

    const RULE: &str = "refresh-matview-not-concurrent";
    const SCHEMA: &str = "CREATE TABLE orders (id bigint PRIMARY KEY, user_id bigint, total numeric);\n\
                          CREATE MATERIALIZED VIEW user_totals AS SELECT user_id, sum(total) AS total FROM orders GROUP BY user_id;";
    const UNIQUE: &str = "CREATE UNIQUE INDEX user_totals_user_id ON user_totals (user_id);";

    #[test]
    fn fires_on_an_existing_view_with_a_unique_index() {
        assert_eq!(
            check_rule(RULE, &[SCHEMA, UNIQUE], "REFRESH MATERIALIZED VIEW user_totals;"),
            "\
warning[refresh-matview-not-concurrent]: REFRESH MATERIALIZED VIEW public.user_totals re-runs the view's query and swaps in the result under ACCESS EXCLUSIVE: every query that reads public.user_totals waits until the refresh is done
 --> migration.sql:1:1
  |
1 | REFRESH MATERIALIZED VIEW user_totals;
  | ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  |
  = help: use `REFRESH MATERIALIZED VIEW CONCURRENTLY public.user_totals;`: it takes only EXCLUSIVE, so reads continue while it computes and applies the difference

"
        );
    }

    #[test]
    fn says_when_the_unique_index_is_missing_or_unknown() {
        let report = check_rule(RULE, &[SCHEMA], "REFRESH MATERIALIZED VIEW user_totals;");
        assert!(
            report.contains("; public.user_totals has no unique index on plain columns, which CONCURRENTLY needs"),
            "{report}"
        );
        let report = check_rule(RULE, &[], "REFRESH MATERIALIZED VIEW stats.daily;");
        assert!(
            report.contains(" (it needs a unique index on plain columns of stats.daily"),
            "{report}"
        );
    }

    #[test]
    fn silent_when_concurrent_with_no_data_or_on_a_new_view() {
        for sql in [
            "REFRESH MATERIALIZED VIEW CONCURRENTLY user_totals;",
            "REFRESH MATERIALIZED VIEW user_totals WITH NO DATA;",
            "CREATE MATERIALIZED VIEW big AS SELECT * FROM orders WITH NO DATA;\nREFRESH MATERIALIZED VIEW big;",
        ] {
            assert_eq!(check_rule(RULE, &[SCHEMA, UNIQUE], sql), "", "{sql}");
        }
    }
}
