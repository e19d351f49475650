//! What an up migration destroys that no down migration can bring back: the rows of a dropped table,
//! the values of a dropped column or of one converted to a narrower type, the rows a TRUNCATE or
//! DELETE removes. A down can at best restore the schema.

use std::collections::HashMap;

use tokio_postgres::Client;

use super::compare::column_shown;
use crate::shadow::snapshot::SchemaSnapshot;
use crate::sql::name::unquoted;
use crate::sql::{Kind, ParsedFile};

/// The columns of the user tables, by their table's OID and their number (which a rename keeps):
/// the table as snapshots name it (`public.users`) and the column's name.
pub(super) type ColumnIds = HashMap<String, (String, String)>;

/// The columns of every user table of the database `client` is connected to.
pub(super) async fn column_ids(client: &Client) -> Result<ColumnIds, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT a.attrelid::text || '.' || a.attnum, format('%I.%I', n.nspname, c.relname),
                    quote_ident(a.attname)
             FROM pg_attribute a
             JOIN pg_class c ON c.oid = a.attrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p')
               AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| (row.get(0), (row.get(1), row.get(2))))
        .collect())
}

/// The columns of `before` that are gone in `after` (dropped, alone or with their table); a
/// renamed column is still there under its number.
pub(super) fn dropped_columns(before: &ColumnIds, after: &ColumnIds) -> Vec<(String, String)> {
    let mut dropped: Vec<(String, String)> = before
        .iter()
        .filter(|(id, _)| !after.contains_key(*id))
        .map(|(_, column)| column.clone())
        .collect();
    dropped.sort();
    dropped
}

/// The data the up destroys, one phrase each ("the rows of table public.orders"), from the schema before
/// and after it, the columns it dropped and its statements.
pub(super) fn destroyed(
    before: &SchemaSnapshot,
    after: &SchemaSnapshot,
    dropped: &[(String, String)],
    up: &ParsedFile,
) -> Vec<String> {
    let mut lost = Vec::new();
    for (name, table) in &before.tables {
        let Some(after_table) = after.tables.get(name) else {
            lost.push(format!("the rows of table {}", unquoted(name)));
            continue;
        };
        for column in &table.columns {
            let now = after_table.columns.iter().find(|c| c.name == column.name);
            if dropped.contains(&(name.clone(), column.name.clone())) {
                lost.push(format!(
                    "the values of column {}",
                    column_shown(name, &column.name)
                ));
            } else if let Some(now) =
                now.filter(|now| !keeps_values(&column.data_type, &now.data_type))
            {
                lost.push(format!(
                    "the values of column {} as {} (converted to {})",
                    column_shown(name, &column.name),
                    column.data_type,
                    now.data_type
                ));
            }
        }
    }
    for statement in &up.statements {
        let what = match statement.class.kind {
            Kind::Truncate => "the rows TRUNCATE removes from",
            Kind::Delete => "the rows DELETE removes from",
            _ => continue,
        };
        let table = statement.class.target.as_ref().map_or_else(
            || "its table".to_owned(),
            |t| t.qualified("public").to_string(),
        );
        let phrase = format!("{what} {table}");
        if !lost.contains(&phrase) {
            lost.push(phrase);
        }
    }
    lost
}

/// The schema a down can at best restore after the up, as it stands after `restored`: the
/// baseline, except that a NOT NULL column the up dropped may come back nullable (its rows have no
/// value of their own, and a default in every row is not always possible: a unique column), with a
/// note saying so.
pub(super) fn restorable(
    baseline: &SchemaSnapshot,
    dropped: &[(String, String)],
    restored: &SchemaSnapshot,
) -> (SchemaSnapshot, Vec<String>) {
    let mut expected = baseline.clone();
    let mut notes = Vec::new();
    for (name, table) in &mut expected.tables {
        let Some(restored_table) = restored.tables.get(name) else {
            continue;
        };
        for column in &mut table.columns {
            let dropped = dropped.contains(&(name.clone(), column.name.clone()));
            let back_nullable = restored_table
                .columns
                .iter()
                .any(|c| c.name == column.name && !c.not_null);
            if dropped && back_nullable && column.not_null {
                column.not_null = false;
                notes.push(format!(
                    "column {} comes back nullable (before the up it was NOT NULL): the up \
                     destroyed its values, and NOT NULL cannot hold on rows that have none; restore \
                     or backfill them, then SET NOT NULL",
                    column_shown(name, &column.name)
                ));
            }
        }
    }
    (expected, notes)
}

/// Whether converting a column from `from` to `to` (as `format_type` prints them) keeps every value,
/// so converting back restores it: widening an integer, lengthening a string, anything to text.
fn keeps_values(from: &str, to: &str) -> bool {
    if from == to || to == "text" || to == "character varying" {
        return true;
    }
    let integer_rank = |t: &str| match t {
        "smallint" => Some(1),
        "integer" => Some(2),
        "bigint" => Some(3),
        _ => None,
    };
    if let Some(from_rank) = integer_rank(from) {
        return integer_rank(to).is_some_and(|to_rank| to_rank >= from_rank) || to == "numeric";
    }
    if from == "timestamp without time zone" && to == "timestamp with time zone" {
        return true;
    }
    let length = |t: &str, base: &str| -> Option<u32> {
        t.strip_prefix(base)?
            .strip_prefix('(')?
            .strip_suffix(')')?
            .parse()
            .ok()
    };
    for base in ["character varying", "character"] {
        if let (Some(from_len), Some(to_len)) =
            (length(from, base), length(to, "character varying"))
        {
            return to_len >= from_len;
        }
    }
    let precision = |t: &str| -> Option<(u32, u32)> {
        let inner = t.strip_prefix("numeric(")?.strip_suffix(')')?;
        let (p, s) = inner.split_once(',')?;
        Some((p.trim().parse().ok()?, s.trim().parse().ok()?))
    };
    match (precision(from), precision(to)) {
        (Some(_), None) => to == "numeric",
        (Some((p1, s1)), Some((p2, s2))) => s2 == s1 && p2 >= p1,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widening_keeps_values_narrowing_does_not() {
        assert!(keeps_values("integer", "bigint"));
        assert!(keeps_values("integer", "numeric"));
        assert!(keeps_values(
            "character varying(20)",
            "character varying(40)"
        ));
        assert!(keeps_values("character varying(20)", "text"));
        assert!(keeps_values("numeric(10,2)", "numeric(12,2)"));
        assert!(keeps_values("bigint", "text"));
        assert!(!keeps_values("bigint", "integer"));
        assert!(!keeps_values("text", "character varying(320)"));
        assert!(!keeps_values("numeric(10,2)", "numeric(10,0)"));
        assert!(!keeps_values("timestamp with time zone", "date"));
    }
}
