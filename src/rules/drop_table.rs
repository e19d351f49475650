//! `DROP TABLE` of a table that existed before the migration deletes it and every row in it, and
//! breaks the application version still running. Each name of a multi-name `DROP TABLE` is reported
//! on its own; tables created earlier in the same migration are left to the engine's filter.

use sqlparser::ast::ObjectType;

use super::fix::{known, Undo};
use super::syntax::{dropped, sql_ident, sql_name, Dropped};
use super::{kinds, Category, Diagnostic, Kinds, Rule, Severity, StatementContext};
use crate::schema::ddl::{
    add_constraint, backs_a_constraint, constraint_definition, create_index, create_sequence,
    foreign_keys_to, identity_options,
};
use crate::schema::{Catalog, ConstraintKind, Relation, RelationKind, Sequence};
use crate::sql::{Kind, ObjectName};

pub const RULE: Rule = Rule {
    id: "drop-table",
    category: Category::DataLoss,
    default_severity: Severity::Error,
    size_graded: false,
    summary: "DROP TABLE of an existing table destroys its data",
    doc: include_str!("../../rules/drop-table.md"),
    check,
    kinds: Kinds::Only(&[kinds::DROP]),
};

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    for Dropped {
        name: table,
        offset,
        cascade,
    } in dropped(cx, ObjectType::Table, Kind::DropTable)
    {
        let name = cx.qualified(&table);
        let mut message = format!(
            "DROP TABLE deletes {name} and every row in it for good; the application version still \
             running fails on every query that uses it (relation \"{}\" does not exist)",
            table.name
        );
        if cascade {
            message.push_str(
                "; CASCADE also drops every view that depends on it and every foreign key of other \
                 tables that references it",
            );
        }
        let mut help = format!(
            "first remove every use of {name} from the application and deploy that; keep the data \
             until nobody misses it: take a backup (pg_dump --table={name}) or rename it \
             (ALTER TABLE {name} RENAME TO {}_deprecated) and drop it in a later release",
            table.name
        );
        if let Ok(undo) = down(cx.catalog, std::slice::from_ref(&table), cascade) {
            help.push_str(&format!(
                "; the down migration rebuilds it empty, the rows are gone: `{}`",
                one_line(&undo.sql.join(" "))
            ));
        }
        out.push(cx.diagnostic(offset, Some(&table), message, help));
    }
}

/// The down's SQL on one line, for the help: the column list of a `CREATE TABLE` is not indented.
fn one_line(sql: &str) -> String {
    sql.replace("(\n    ", "(")
        .replace(",\n    ", ", ")
        .replace("\n)", ")")
}

/// The down of `DROP TABLE names [CASCADE]`: `CREATE TABLE` again for each dropped table, from the
/// schema before the drop: its columns (types, defaults, nullability, identity), constraints,
/// indexes and owned sequences; with CASCADE, the other tables' foreign keys to it. The rows are
/// gone: `data_loss`.
pub fn down(catalog: &Catalog, names: &[ObjectName], cascade: bool) -> Result<Undo, String> {
    let mut undo = Undo {
        data_loss: true,
        ..Undo::default()
    };
    let mut dropped = Vec::new();
    for name in names {
        let name = catalog.resolve(name);
        let relation = known(catalog.relation(&name), "table", &name)?;
        if relation.kind != RelationKind::Table || relation.partition_of.is_some() {
            return Err(format!(
                "{name} is not a plain table, and the model does not keep how it is partitioned"
            ));
        }
        dropped.push(relation);
    }
    let names: Vec<&ObjectName> = dropped.iter().map(|r| &r.name).collect();
    // Every table first, then the foreign keys between them, so that the order does not matter.
    let mut between = Vec::new();
    for relation in &dropped {
        let (create, later) = recreate_table(catalog, relation, &names)?;
        undo.sql.extend(create);
        between.extend(later);
    }
    undo.sql.extend(between);
    for name in &names {
        if cascade {
            for (other, constraint) in foreign_keys_to(catalog, name) {
                if !names.contains(&other) {
                    undo.sql.extend(add_constraint(other, constraint)?);
                }
            }
        }
        let sequences = catalog
            .sequences()
            .any(|s| s.owned_by.as_ref().is_some_and(|(owner, _)| owner == *name));
        undo.notes.push(format!(
            "Table {name} comes back empty: its rows are gone{}. Grants, triggers, comments and \
             policies on it are not in the schema model and are not restored{}.",
            if sequences {
                ", and its sequences start again from their first value"
            } else {
                ""
            },
            if cascade {
                ", nor views that CASCADE dropped with it"
            } else {
                ""
            }
        ));
    }
    Ok(undo)
}

/// The statements that rebuild one table as the model knows it, and those to run once every table
/// in `dropped` is back (its NOT VALID constraints and foreign keys to the others).
fn recreate_table(
    catalog: &Catalog,
    relation: &Relation,
    dropped: &[&ObjectName],
) -> Result<(Vec<String>, Vec<String>), String> {
    let table = &relation.name;
    let table_sql = sql_name(table);
    let mut sql = Vec::new();
    // The sequences the table owns (serial columns, `OWNED BY`), by name: each identity column's
    // own is declared with it, every other is created before the table and owned again after it.
    let mut owned: Vec<&Sequence> = catalog
        .sequences()
        .filter(|s| s.owned_by.as_ref().is_some_and(|(owner, _)| owner == table))
        .collect();
    owned.sort_by_key(|s| s.name.to_string());
    let mut lines = Vec::new();
    for column in &relation.columns {
        let name = &column.name;
        if column.generated {
            return Err(format!(
                "the schema model does not know how column {name} of {table} is generated"
            ));
        }
        let data_type = column.data_type.as_ref().ok_or_else(|| {
            format!("the schema model does not know the type of column {name} of {table}")
        })?;
        let mut line = format!("{} {data_type}", sql_ident(name));
        if let Some(identity) = column.identity {
            line.push(' ');
            line.push_str(identity.sql());
            let own = owned
                .iter()
                .position(|s| s.owned_by.as_ref().is_some_and(|(_, c)| c == name));
            if let Some(own) = own {
                line.push_str(&format!(" {}", identity_options(owned.remove(own))));
            }
        }
        if let Some(default) = &column.default {
            line.push_str(&format!(" DEFAULT {default}"));
        }
        if column.not_null {
            line.push_str(" NOT NULL");
        }
        lines.push(line);
    }
    for sequence in &owned {
        // A serial column's type is its sequence's (`AS` is not written for one).
        let data_type = sequence
            .owned_by
            .as_ref()
            .and_then(|(_, column)| catalog.column(table, column))
            .filter(|c| c.default.as_ref().is_some_and(|d| d.contains("nextval(")))
            .and_then(|column| column.data_type.as_ref())
            .map(ToString::to_string);
        sql.push(create_sequence(sequence, data_type.as_deref()));
    }
    let mut later = Vec::new();
    for constraint in &relation.constraints {
        let to_another_dropped = matches!(&constraint.kind,
            ConstraintKind::ForeignKey { references, .. }
                if references != table && dropped.contains(&references));
        if constraint.validated && !to_another_dropped {
            lines.push(format!(
                "CONSTRAINT {} {}",
                sql_ident(&constraint.name),
                constraint_definition(constraint)?
            ));
        } else {
            later.extend(add_constraint(table, constraint)?);
        }
    }
    sql.push(format!(
        "CREATE TABLE {table_sql} (\n    {}\n);",
        lines.join(",\n    ")
    ));
    for index in catalog.indexes_on(table) {
        if !backs_a_constraint(catalog, index) {
            sql.push(create_index(catalog, index));
        }
    }
    for sequence in owned {
        if let Some((_, column)) = &sequence.owned_by {
            sql.push(format!(
                "ALTER SEQUENCE {} OWNED BY {table_sql}.{};",
                sql_name(&sequence.name),
                sql_ident(column)
            ));
        }
    }
    Ok((sql, later))
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::check_rule;

    const HISTORY: &str = "CREATE TABLE users (id bigint PRIMARY KEY, email text);\n\
                           CREATE TABLE sessions (id bigint PRIMARY KEY, user_id bigint);";

    #[test]
    fn fires_on_an_existing_table() {
        assert_eq!(
            check_rule("drop-table", &[HISTORY], "DROP TABLE sessions;"),
            "\
error[drop-table]: DROP TABLE deletes public.sessions and every row in it for good; the application version still running fails on every query that uses it (relation \"sessions\" does not exist)
 --> migration.sql:1:12
  |
1 | DROP TABLE sessions;
  |            ^^^^^^^^
  |
  = help: first remove every use of public.sessions from the application and deploy that; keep the data until nobody misses it: take a backup (pg_dump --table=public.sessions) or rename it (ALTER TABLE public.sessions RENAME TO sessions_deprecated) and drop it in a later release; the down migration rebuilds it empty, the rows are gone: `CREATE TABLE public.sessions (id BIGINT NOT NULL, user_id BIGINT, CONSTRAINT sessions_pkey PRIMARY KEY (id));`

"
        );
    }

    #[test]
    fn reports_each_name_of_a_multi_name_drop_at_its_name() {
        let report = check_rule(
            "drop-table",
            &[HISTORY],
            "DROP TABLE IF EXISTS users, \"Audit\".\"Log\" CASCADE;",
        );
        assert_eq!(report.matches("error[drop-table]").count(), 2, "{report}");
        assert!(report.contains("deletes public.users"), "{report}");
        assert!(report.contains("deletes Audit.Log"), "{report}");
        assert!(report.contains("--> migration.sql:1:22"), "{report}");
        assert!(report.contains("--> migration.sql:1:29"), "{report}");
        assert!(report.contains("CASCADE also drops every view"), "{report}");
    }

    #[test]
    fn fires_on_a_table_the_model_does_not_know() {
        let report = check_rule("drop-table", &[], "DROP TABLE legacy.orders;");
        assert!(report.contains("deletes legacy.orders"), "{report}");
        assert!(!report.contains("CASCADE"), "{report}");
        assert!(!report.contains("the down migration"), "{report}");
    }

    #[test]
    fn the_help_quotes_the_down_with_identity_and_serial_columns() {
        let history = "CREATE TABLE events (id bigint GENERATED BY DEFAULT AS IDENTITY \
                       (START WITH 100 INCREMENT BY 5), n serial, at timestamptz DEFAULT now());";
        let report = check_rule("drop-table", &[history], "DROP TABLE events;");
        assert!(
            report.contains(
                "`CREATE SEQUENCE public.events_n_seq AS INTEGER; CREATE TABLE public.events (id \
                 BIGINT GENERATED BY DEFAULT AS IDENTITY (SEQUENCE NAME public.events_id_seq START \
                 WITH 100 INCREMENT BY 5) NOT NULL, n INTEGER DEFAULT \
                 nextval('events_n_seq'::regclass) NOT NULL, at TIMESTAMPTZ DEFAULT now()); \
                 ALTER SEQUENCE public.events_n_seq OWNED BY public.events.n;`"
            ),
            "{report}"
        );
    }

    #[test]
    fn only_the_existing_tables_of_a_multi_name_drop_are_reported() {
        let report = check_rule(
            "drop-table",
            &[HISTORY],
            "CREATE TABLE scratch (id bigint);\nDROP TABLE scratch, sessions;",
        );
        assert_eq!(report.matches("error[drop-table]").count(), 1, "{report}");
        assert!(report.contains("deletes public.sessions"), "{report}");
    }

    #[test]
    fn silent_on_a_table_created_in_the_same_migration() {
        let sql = "CREATE TABLE scratch (id bigint);\nDROP TABLE scratch;";
        assert_eq!(check_rule("drop-table", &[HISTORY], sql), "");
    }

    #[test]
    fn silent_on_other_objects() {
        for sql in [
            "DROP VIEW active_users;",
            "DROP INDEX users_email_idx;",
            "ALTER TABLE users DROP COLUMN email;",
        ] {
            assert_eq!(check_rule("drop-table", &[HISTORY], sql), "", "{sql}");
        }
    }
}
