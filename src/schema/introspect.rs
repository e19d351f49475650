//! The catalog model read from a real database: with a shadow database, the schema the rules ask
//! about is the one PostgreSQL holds after applying the history, exact where static replay is best
//! effort (column types of `LIKE` and `AS SELECT`, generated names, what a `DO` block created).
//!
//! Everything read is [`Origin::BASELINE`]: it existed before the migration under review. Names are
//! stored as the catalog holds them, which is how the model stores them (unquoted identifiers
//! folded to lower case, quoted ones as written). Expressions are read with the search path the
//! model assumes (`public`), pretty-printed, so that they read like the SQL static replay keeps:
//! `email IS NOT NULL` for a check, `lower(email)` for an index key.

use sqlparser::ast::DataType;
use sqlparser::tokenizer::Token;
use tokio_postgres::{Client, Error, Row};

use super::{
    default_search_path, Catalog, Column, Constraint, ConstraintKind, Identity, Index, Origin,
    PartitionKey, Relation, RelationKind, Sequence, TypeKind, UserType,
};
use crate::shadow::snapshot::{user_schema, with_catalog_settings};
use crate::sql;
use crate::sql::ObjectName;

/// Reads the schema of the database `client` is connected to into a [`Catalog`], every object from
/// before the first migration ([`Origin::BASELINE`]).
pub async fn introspect(client: &Client) -> Result<Catalog, Error> {
    let path = default_search_path().join(", ");
    with_catalog_settings(client, &path, || read_catalog(client)).await
}

async fn read_catalog(client: &Client) -> Result<Catalog, Error> {
    let relations = relations_sql();
    let columns = columns_sql();
    let constraints = constraints_sql();
    let indexes = indexes_sql();
    let types = types_sql();
    let sequences = sequences_sql();
    // Sent together: tokio-postgres pipelines the queries of one connection.
    let (relations, columns, constraints, indexes, types, sequences) = tokio::try_join!(
        client.query(relations.as_str(), &[]),
        client.query(columns.as_str(), &[]),
        client.query(constraints.as_str(), &[]),
        client.query(indexes.as_str(), &[]),
        client.query(types.as_str(), &[]),
        client.query(sequences.as_str(), &[]),
    )?;

    let mut catalog = Catalog::default();
    for row in &relations {
        let name = object_name(row, 0)?;
        let kind: String = row.try_get(2)?;
        let kind = match kind.as_str() {
            "p" => RelationKind::PartitionedTable,
            "v" => RelationKind::View,
            "m" => RelationKind::MaterializedView,
            "f" => RelationKind::ForeignTable,
            _ => RelationKind::Table,
        };
        let partition_of = optional_object_name(row, 3)?;
        let query: Option<String> = row.try_get(5)?;
        let partition_key: Option<String> = row.try_get(6)?;
        catalog.relations.insert(
            name.clone(),
            Relation {
                name,
                kind,
                columns: Vec::new(),
                constraints: Vec::new(),
                partition_of,
                partition_key: partition_key.as_deref().and_then(PartitionKey::parse),
                definition: query.map(|q| format!("AS {}", q.trim().trim_end_matches(';'))),
                origin: Origin::BASELINE,
            },
        );
    }
    for row in &columns {
        let data_type: String = row.try_get(3)?;
        let column = Column {
            name: row.try_get(2)?,
            data_type: parse_data_type(&data_type),
            default: row.try_get(4)?,
            not_null: row.try_get(5)?,
            identity: match row.try_get::<_, String>(6)?.as_str() {
                "a" => Some(Identity::Always),
                "d" => Some(Identity::ByDefault),
                _ => None,
            },
            generated: row.try_get(7)?,
            origin: Origin::BASELINE,
        };
        if let Some(mut columns) = catalog.relations.columns_mut(&object_name(row, 0)?) {
            columns.push(column);
        }
    }
    for row in &constraints {
        let Some(constraint) = read_constraint(row)? else {
            continue;
        };
        if let Some(mut relation) = catalog.relations.get_mut(&object_name(row, 0)?) {
            relation.constraints.push(constraint);
        }
    }
    for row in &indexes {
        let name = object_name(row, 0)?;
        catalog.indexes.insert(
            name.clone(),
            Index {
                name,
                table: object_name(row, 2)?,
                columns: row.try_get(4)?,
                unique: row.try_get(5)?,
                predicate: row.try_get(6)?,
                origin: Origin::BASELINE,
            },
        );
    }
    for row in &types {
        let name = object_name(row, 0)?;
        let kind: String = row.try_get(2)?;
        let kind = match kind.as_str() {
            "e" => TypeKind::Enum {
                values: row.try_get(3)?,
            },
            "d" => {
                let base: Option<String> = row.try_get(4)?;
                TypeKind::Domain {
                    base: base.as_deref().and_then(parse_data_type),
                    has_check: row.try_get(5)?,
                }
            }
            "c" => {
                let names: Vec<String> = row.try_get(6)?;
                let types: Vec<String> = row.try_get(7)?;
                TypeKind::Composite {
                    attributes: names.into_iter().zip(types).collect(),
                }
            }
            _ => TypeKind::Other,
        };
        catalog.types.insert(
            name.clone(),
            UserType {
                name,
                kind,
                origin: Origin::BASELINE,
            },
        );
    }
    for row in &sequences {
        let name = object_name(row, 0)?;
        let owner = optional_object_name(row, 2)?;
        let column: Option<String> = row.try_get(4)?;
        catalog.sequences.insert(
            name.clone(),
            Sequence {
                name,
                owned_by: owner.zip(column),
                options: row.try_get(5)?,
                origin: Origin::BASELINE,
            },
        );
    }
    Ok(catalog)
}

/// The schema-qualified name in the columns `at` (schema) and `at + 1` (name).
fn object_name(row: &Row, at: usize) -> Result<ObjectName, Error> {
    let schema: String = row.try_get(at)?;
    let name: String = row.try_get(at + 1)?;
    Ok(ObjectName::new(Some(&schema), &name))
}

/// [`object_name`] of columns that may be null (no partition parent, no owner).
fn optional_object_name(row: &Row, at: usize) -> Result<Option<ObjectName>, Error> {
    let schema: Option<String> = row.try_get(at)?;
    let name: Option<String> = row.try_get(at + 1)?;
    Ok(schema
        .zip(name)
        .map(|(schema, name)| ObjectName::new(Some(&schema), &name)))
}

/// A row of the constraints query; `None` for kinds the model does not keep (constraint
/// triggers).
fn read_constraint(row: &Row) -> Result<Option<Constraint>, Error> {
    let kind: String = row.try_get(3)?;
    let columns: Vec<String> = row.try_get(4)?;
    let kind = match kind.as_str() {
        "p" => ConstraintKind::PrimaryKey { columns },
        "u" => ConstraintKind::Unique { columns },
        "c" => ConstraintKind::Check {
            expression: row.try_get::<_, Option<String>>(8)?.unwrap_or_default(),
        },
        "f" => match optional_object_name(row, 5)? {
            Some(references) => ConstraintKind::ForeignKey {
                columns,
                references,
                referenced_columns: row.try_get(7)?,
                actions: foreign_key_actions(row)?,
            },
            None => return Ok(None),
        },
        "x" => ConstraintKind::Exclude,
        _ => return Ok(None),
    };
    Ok(Some(Constraint {
        name: row.try_get(2)?,
        kind,
        validated: row.try_get(9)?,
        origin: Origin::BASELINE,
    }))
}

/// A foreign key's MATCH, ON UPDATE, ON DELETE and DEFERRABLE clauses from its row of the
/// constraints query, as `pg_get_constraintdef` prints them (defaults left out).
fn foreign_key_actions(row: &Row) -> Result<String, Error> {
    let action = |code: &str| match code {
        "r" => Some("RESTRICT"),
        "c" => Some("CASCADE"),
        "n" => Some("SET NULL"),
        "d" => Some("SET DEFAULT"),
        _ => None,
    };
    let mut actions = String::new();
    if row.try_get::<_, String>(10)? == "f" {
        actions.push_str(" MATCH FULL");
    }
    for (at, event) in [(11, "UPDATE"), (12, "DELETE")] {
        if let Some(action) = action(&row.try_get::<_, String>(at)?) {
            actions.push_str(&format!(" ON {event} {action}"));
        }
    }
    if row.try_get(13)? {
        actions.push_str(" DEFERRABLE");
    }
    if row.try_get(14)? {
        actions.push_str(" INITIALLY DEFERRED");
    }
    Ok(actions)
}

/// A type as `format_type` prints it (`character varying(10)`, `timestamp(3) with time zone`,
/// `"Role"[]`, `app.status`) read with the PostgreSQL dialect; `None` when sqlparser cannot read
/// all of it.
fn parse_data_type(text: &str) -> Option<DataType> {
    let mut parser = sql::parser(text).ok()?;
    let data_type = parser.parse_data_type().ok()?;
    (parser.peek_token().token == Token::EOF).then_some(data_type)
}

/// Relations the model knows, with the partitioned table of a partition, the query of a view and the
/// key of a partitioned table.
fn relations_sql() -> String {
    format!(
        "SELECT n.nspname, c.relname, c.relkind::text, pn.nspname, p.relname,
                CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid, true) END,
                CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END
           FROM pg_class c
           JOIN pg_namespace n ON n.oid = c.relnamespace
           LEFT JOIN pg_inherits i ON i.inhrelid = c.oid AND c.relispartition
           LEFT JOIN pg_class p ON p.oid = i.inhparent
           LEFT JOIN pg_namespace pn ON pn.oid = p.relnamespace
          WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND {}",
        user_schema("n")
    )
}

/// Columns in table order; a generated column's expression is not a default.
fn columns_sql() -> String {
    format!(
        "SELECT n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod),
                CASE WHEN a.attgenerated = '' THEN pg_get_expr(d.adbin, d.adrelid, true) END,
                a.attnotnull, a.attidentity::text, a.attgenerated <> ''
           FROM pg_attribute a
           JOIN pg_class c ON c.oid = a.attrelid
           JOIN pg_namespace n ON n.oid = c.relnamespace
           LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
          WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
            AND {}
          ORDER BY a.attrelid, a.attnum",
        user_schema("n")
    )
}

/// Table constraints in the order they were created, with their columns by name.
fn constraints_sql() -> String {
    let column_names = |columns: &str, table: &str| {
        format!(
            "ARRAY(SELECT a.attname::text
                     FROM unnest(co.{columns}) WITH ORDINALITY k(attnum, position)
                     JOIN pg_attribute a ON a.attrelid = co.{table} AND a.attnum = k.attnum
                    ORDER BY k.position)"
        )
    };
    format!(
        "SELECT n.nspname, c.relname, co.conname, co.contype::text, {}, fn.nspname, f.relname,
                {}, pg_get_expr(co.conbin, co.conrelid, true), co.convalidated,
                co.confmatchtype::text, co.confupdtype::text, co.confdeltype::text,
                co.condeferrable, co.condeferred
           FROM pg_constraint co
           JOIN pg_class c ON c.oid = co.conrelid
           JOIN pg_namespace n ON n.oid = c.relnamespace
           LEFT JOIN pg_class f ON f.oid = co.confrelid
           LEFT JOIN pg_namespace fn ON fn.oid = f.relnamespace
          WHERE {}
          ORDER BY co.oid",
        column_names("conkey", "conrelid"),
        column_names("confkey", "confrelid"),
        user_schema("n")
    )
}

/// Indexes with their key columns: a column by name, an expression as SQL text.
fn indexes_sql() -> String {
    format!(
        "SELECT n.nspname, ic.relname, tn.nspname, t.relname,
                ARRAY(SELECT CASE WHEN i.indkey[k - 1] = 0
                                  THEN pg_get_indexdef(i.indexrelid, k, true)
                                  ELSE (SELECT a.attname::text FROM pg_attribute a
                                         WHERE a.attrelid = i.indrelid
                                           AND a.attnum = i.indkey[k - 1]) END
                        FROM generate_series(1, i.indnkeyatts) k ORDER BY k),
                i.indisunique, pg_get_expr(i.indpred, i.indrelid, true)
           FROM pg_index i
           JOIN pg_class ic ON ic.oid = i.indexrelid
           JOIN pg_namespace n ON n.oid = ic.relnamespace
           JOIN pg_class t ON t.oid = i.indrelid
           JOIN pg_namespace tn ON tn.oid = t.relnamespace
          WHERE {}",
        user_schema("n")
    )
}

/// Enums with their labels in order, domains with their base type and whether they have a check,
/// composite types (not a table's row type) with their attributes, and the other user-defined
/// types: range and base types,
/// not the array types PostgreSQL makes for each.
fn types_sql() -> String {
    format!(
        "SELECT n.nspname, t.typname, t.typtype::text,
                ARRAY(SELECT e.enumlabel::text FROM pg_enum e WHERE e.enumtypid = t.oid
                       ORDER BY e.enumsortorder),
                CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod) END,
                EXISTS (SELECT FROM pg_constraint co
                         WHERE co.contypid = t.oid AND co.contype = 'c'),
                ARRAY(SELECT a.attname::text FROM pg_attribute a
                       WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped
                       ORDER BY a.attnum),
                ARRAY(SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a
                       WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped
                       ORDER BY a.attnum)
           FROM pg_type t
           JOIN pg_namespace n ON n.oid = t.typnamespace
           LEFT JOIN pg_class c ON c.oid = t.typrelid
          WHERE (t.typtype IN ('e', 'd', 'r')
                 OR (t.typtype = 'c' AND c.relkind = 'c')
                 OR (t.typtype = 'b' AND NOT EXISTS (SELECT FROM pg_type e
                                                      WHERE e.typarray = t.oid)))
            AND {}",
        user_schema("n")
    )
}

/// Sequences with the column owning them (serial: `OWNED BY`, auto dependency; or identity) and
/// every option, as `CREATE SEQUENCE` takes it.
fn sequences_sql() -> String {
    format!(
        "SELECT n.nspname, c.relname, tn.nspname, t.relname, a.attname::text,
                ARRAY['AS ' || format_type(s.seqtypid, NULL), 'INCREMENT BY ' || s.seqincrement,
                      'MINVALUE ' || s.seqmin, 'MAXVALUE ' || s.seqmax, 'START WITH ' || s.seqstart,
                      'CACHE ' || s.seqcache, CASE WHEN s.seqcycle THEN 'CYCLE' ELSE 'NO CYCLE' END]
           FROM pg_class c
           JOIN pg_sequence s ON s.seqrelid = c.oid
           JOIN pg_namespace n ON n.oid = c.relnamespace
           LEFT JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid
                AND d.refclassid = 'pg_class'::regclass AND d.refobjsubid > 0
                AND d.deptype IN ('a', 'i')
           LEFT JOIN pg_class t ON t.oid = d.refobjid
           LEFT JOIN pg_namespace tn ON tn.oid = t.relnamespace
           LEFT JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
          WHERE c.relkind = 'S' AND {}",
        user_schema("n")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_type_output_reads_as_sqlparser_types() {
        let read = |text: &str| parse_data_type(text).map(|t| t.to_string());
        for (text, expected) in [
            ("integer", "INTEGER"),
            ("character varying(10)", "CHARACTER VARYING(10)"),
            ("character varying", "CHARACTER VARYING"),
            ("character(1)", "CHARACTER(1)"),
            ("numeric(10,2)", "NUMERIC(10,2)"),
            (
                "timestamp(3) without time zone",
                "TIMESTAMP(3) WITHOUT TIME ZONE",
            ),
            ("timestamp with time zone", "TIMESTAMP WITH TIME ZONE"),
            ("time without time zone", "TIME WITHOUT TIME ZONE"),
            ("double precision", "DOUBLE PRECISION"),
            ("bit varying(5)", "BIT VARYING(5)"),
            ("text[]", "TEXT[]"),
            ("\"Role\"", "\"Role\""),
            ("app.status[]", "app.status[]"),
            ("jsonb", "JSONB"),
            ("uuid", "UUID"),
            ("interval year to month", "INTERVAL YEAR TO MONTH"),
            ("\"char\"", "\"char\""),
        ] {
            assert_eq!(read(text).as_deref(), Some(expected), "{text}");
        }
        // What format_type prints for a type OID it does not know, and text left over.
        assert_eq!(read("???"), None);
        assert_eq!(read("integer integer"), None);
    }
}
