//! Changing the rows of an existing table a batch at a time, committing after each batch, so that no
//! transaction holds many row locks or leaves much to undo. Batches follow the table's key: ranges of
//! values for an integer key; for any other key (uuid, text, …) the next rows in key order after the
//! last batch, a LIMITed number at a time, since a uuid has no `+ 10000`.
//!
//! The help of `unbatched-backfill` and the fixers that backfill a column both write their SQL here.

use sqlparser::ast::DataType;

use super::syntax::sql_ident;
use super::types::PgType;
use crate::schema::{Catalog, ConstraintKind};
use crate::sql::ObjectName;

/// Rows per batch.
pub(crate) const BATCH_ROWS: u32 = 10_000;

/// The key batches follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BatchKey {
    /// The key column, quoted as SQL needs it.
    pub column_sql: String,
    /// An integer type (`smallint`, `integer`, `bigint`, serials): batches are ranges of values.
    pub integer: bool,
}

impl BatchKey {
    /// The single-column primary key of `table`, with its type from the schema model; `None` when
    /// the model knows no such key (the caller names a placeholder instead).
    pub fn primary_key_of(catalog: &Catalog, table: &ObjectName) -> Option<BatchKey> {
        let relation = catalog.relation(table)?;
        let column = relation.constraints.iter().find_map(|c| match &c.kind {
            ConstraintKind::PrimaryKey { columns } if columns.len() == 1 => Some(&columns[0]),
            _ => None,
        })?;
        let data_type = catalog.column(table, column)?.data_type.as_ref();
        Some(BatchKey {
            column_sql: sql_ident(column),
            integer: data_type.is_some_and(is_integer),
        })
    }

    /// The condition that selects the first batch, for a help text's example: a key range for an
    /// integer key, the first rows in key order otherwise.
    pub fn first_batch(&self, table_sql: &str) -> String {
        let key = &self.column_sql;
        if self.integer {
            format!("{key} >= 1 AND {key} < {}", BATCH_ROWS + 1)
        } else {
            format!("{key} IN (SELECT {key} FROM {table_sql} ORDER BY {key} LIMIT {BATCH_ROWS})")
        }
    }

    /// How the batches after the first follow on, for the same help text: the next range, or the
    /// rows after the last key of the batch before (the first batch's subquery again would pick the
    /// rows it already changed).
    pub fn next_batches(&self) -> String {
        let key = &self.column_sql;
        if self.integer {
            format!(
                "then `{key} >= {} AND {key} < {}` and so on",
                BATCH_ROWS + 1,
                2 * BATCH_ROWS + 1
            )
        } else {
            format!(
                "then the same with `WHERE {key} > ` the last {key} of the batch before in the \
                 subquery, until it selects no rows"
            )
        }
    }
}

fn is_integer(data_type: &DataType) -> bool {
    let pg = PgType::of(data_type);
    !pg.array && matches!(pg.name.as_str(), "int2" | "int4" | "int8")
}

/// A DO block that runs `UPDATE <table_sql> SET <set> [WHERE <condition>]` one batch of the key at
/// a time and COMMITs after each batch: it must run outside a transaction block (PostgreSQL 11+).
pub(crate) fn batched_update(
    table_sql: &str,
    key: &BatchKey,
    set: &str,
    condition: Option<&str>,
) -> String {
    let k = &key.column_sql;
    let and_condition = condition.map_or(String::new(), |c| format!(" AND ({c})"));
    if key.integer {
        format!(
            "DO $batch$\n\
             DECLARE\n  batch_start bigint;\n  last_key bigint;\n\
             BEGIN\n  \
             SELECT min({k}), max({k}) INTO batch_start, last_key FROM {table_sql};\n  \
             WHILE batch_start <= last_key LOOP\n    \
             UPDATE {table_sql} SET {set} WHERE {k} >= batch_start AND {k} < batch_start + {BATCH_ROWS}{and_condition};\n    \
             COMMIT;\n    \
             batch_start := batch_start + {BATCH_ROWS};\n  \
             END LOOP;\n\
             END $batch$;"
        )
    } else {
        format!(
            "DO $batch$\n\
             DECLARE\n  batch_after {table_sql}.{k}%TYPE;\n  batch_end {table_sql}.{k}%TYPE;\n\
             BEGIN\n  \
             LOOP\n    \
             SELECT {k} INTO batch_end FROM (SELECT {k} FROM {table_sql} WHERE batch_after IS NULL OR {k} > batch_after ORDER BY {k} LIMIT {BATCH_ROWS}) AS batch ORDER BY {k} DESC LIMIT 1;\n    \
             EXIT WHEN batch_end IS NULL;\n    \
             UPDATE {table_sql} SET {set} WHERE (batch_after IS NULL OR {k} > batch_after) AND {k} <= batch_end{and_condition};\n    \
             COMMIT;\n    \
             batch_after := batch_end;\n  \
             END LOOP;\n\
             END $batch$;"
        )
    }
}
