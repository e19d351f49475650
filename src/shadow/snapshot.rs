//! A snapshot of a database's user schema read from `pg_catalog`, and the differences between two
//! snapshots: what proves that a rewritten migration reaches the same schema as the original, that
//! a down migration restores the schema it started from, and what the trace shows each statement
//! created, dropped or changed.
//!
//! Objects are keyed by their qualified name (quoted as PostgreSQL quotes identifiers), never by
//! OID, so two databases built from the same DDL give equal snapshots. Every definition is read
//! with an empty `search_path`, so names in it are schema-qualified whatever the session's path
//! is: a migration's `SET search_path` does not make every object look changed.
//!
//! Objects that belong to an extension (its functions, types, tables) are left out: the extension
//! stands for them.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;
use std::future::Future;

use serde::Serialize;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Error, Row, SimpleQueryMessage, Statement, ToStatement};

use crate::sql::name::split_quoted;

/// A database's user schema: every schema but `pg_catalog`, `information_schema` and PostgreSQL's
/// internal `pg_toast*` and `pg_temp*` ones.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SchemaSnapshot {
    pub schemas: BTreeSet<String>,
    /// Extension names (their versions are left out: an upgrade is not a schema change).
    pub extensions: BTreeSet<String>,
    /// Tables, partitioned tables and foreign tables, by `schema.table`.
    pub tables: BTreeMap<String, Table>,
    /// Composite types (`CREATE TYPE … AS (…)`) and their attributes in order.
    pub composite_types: BTreeMap<String, Vec<Column>>,
    pub views: BTreeMap<String, View>,
    pub materialized_views: BTreeMap<String, MaterializedView>,
    pub sequences: BTreeMap<String, Sequence>,
    /// Enum types and their labels in sort order.
    pub enums: BTreeMap<String, Vec<String>>,
    pub domains: BTreeMap<String, Domain>,
    /// Table and domain constraints, by `schema.table.constraint` (`schema.domain.constraint`).
    pub constraints: BTreeMap<String, Constraint>,
    /// Indexes (those backing constraints too), by `schema.index`.
    pub indexes: BTreeMap<String, Index>,
    /// Functions, procedures and aggregates, by `schema.name(argument types)`.
    pub functions: BTreeMap<String, Function>,
    /// Triggers, by `schema.table.trigger`.
    pub triggers: BTreeMap<String, Trigger>,
    /// Row-level security policies, by `schema.table.policy`.
    pub policies: BTreeMap<String, Policy>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TableKind {
    Table,
    PartitionedTable,
    ForeignTable,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Table {
    pub kind: TableKind,
    pub unlogged: bool,
    /// In table order, dropped columns left out.
    pub columns: Vec<Column>,
    /// The partitioned table this one is a partition of, and its bound (`FOR VALUES …`).
    pub partition_of: Option<String>,
    pub partition_bound: Option<String>,
    /// The partition key of a partitioned table (`RANGE (logdate)`).
    pub partition_key: Option<String>,
    /// The parents of a (non-partition) inheritance child, in order.
    pub inherits: Vec<String>,
    /// Storage parameters (`fillfactor=70`, `autovacuum_enabled=false`).
    pub options: Vec<String>,
    pub row_level_security: bool,
    pub force_row_level_security: bool,
}

#[cfg(test)]
impl Table {
    /// An ordinary logged table of `columns` with nothing else set, for tests.
    pub(crate) fn plain(columns: Vec<Column>) -> Table {
        Table {
            kind: TableKind::Table,
            unlogged: false,
            columns,
            partition_of: None,
            partition_bound: None,
            partition_key: None,
            inherits: Vec::new(),
            options: Vec::new(),
            row_level_security: false,
            force_row_level_security: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Column {
    /// Quoted where PostgreSQL would quote it.
    pub name: String,
    /// As `format_type` prints it (`character varying(10)`, `public.status`).
    pub data_type: String,
    pub default: Option<String>,
    pub not_null: bool,
    pub identity: Option<Identity>,
    /// The expression of a `GENERATED ALWAYS AS (…) STORED` column.
    pub generated: Option<String>,
    /// The collation, when it is not the type's default.
    pub collation: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Identity {
    Always,
    ByDefault,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct View {
    /// As `pg_get_viewdef` prints it.
    pub definition: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MaterializedView {
    pub definition: String,
    /// False after `WITH NO DATA`, until the first `REFRESH`.
    pub populated: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Sequence {
    pub data_type: String,
    pub start: i64,
    pub increment: i64,
    pub min: i64,
    pub max: i64,
    pub cache: i64,
    pub cycle: bool,
    /// `schema.table.column` of a serial or identity column, or of `OWNED BY`.
    pub owned_by: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Domain {
    pub base_type: String,
    pub not_null: bool,
    pub default: Option<String>,
    /// The collation, when it is not the base type's default.
    pub collation: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Constraint {
    /// As `pg_get_constraintdef` prints it (`FOREIGN KEY (user_id) REFERENCES public.users(id)`).
    pub definition: String,
    /// False while the constraint is NOT VALID.
    pub validated: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Index {
    /// As `pg_get_indexdef` prints it.
    pub definition: String,
    /// False for an index a failed `CREATE INDEX CONCURRENTLY` left behind: it is maintained on
    /// every write but never used.
    pub valid: bool,
    /// The partitioned index this one is attached to.
    pub partition_of: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Function {
    /// `function`, `procedure`, `aggregate` or `window`.
    pub kind: String,
    /// The result type (none for a procedure).
    pub result: Option<String>,
    /// MD5 of the full definition (`pg_get_functiondef`; the source of an aggregate): enough to
    /// tell that a body changed without keeping it.
    pub definition_md5: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Trigger {
    /// As `pg_get_triggerdef` prints it.
    pub definition: String,
    /// `origin` (the default), `disabled`, `replica` or `always`.
    pub enabled: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Policy {
    /// `ALL`, `SELECT`, `INSERT`, `UPDATE` or `DELETE`.
    pub command: String,
    pub permissive: bool,
    pub roles: Vec<String>,
    pub using: Option<String>,
    pub with_check: Option<String>,
}

/// Reads the snapshot of the database `client` is connected to, in a handful of queries sent
/// together (the trace takes one after every statement).
///
/// Runs inside the session's transaction, if one is open, so it sees the session's uncommitted
/// DDL. `pg_get_viewdef` takes an `AccessShareLock` on each view and on the relations its query
/// reads, held until that transaction ends: read the session's locks before taking a snapshot.
pub async fn snapshot(client: &Client) -> Result<SchemaSnapshot, Error> {
    with_catalog_settings(client, "", || read_snapshot(client)).await
}

/// Runs `read` with the session's `search_path` set to `path` (what `pg_get_*` functions and
/// `format_type` print depends on it) and JIT compilation off (the planner's row estimates for
/// catalog subqueries are wild enough to make it compile for longer than the query runs) and
/// prepared queries run with their generic plans (the trace's scoped reads are prepared once per
/// session; the planner would plan some of them again on every run, which costs more than running
/// them), then puts the settings back: one round trip before the read and one after it (see
/// [`CatalogSettings`]).
pub(crate) async fn with_catalog_settings<T, F, Fut>(
    client: &Client,
    path: &str,
    read: F,
) -> Result<T, Error>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    let settings = CatalogSettings::set(client, path).await?;
    let result = read().await;
    let restored = settings.restore(client).await;
    let value = result?;
    restored?;
    Ok(value)
}

/// The settings catalog reads need (see [`with_catalog_settings`]), as the session had them
/// before: set and put back with one simple query each, so that a caller can send them in the same
/// round trip as its reads (tokio-postgres pipelines the requests of one connection in the order
/// they are first polled). They are changed with `set_config(…, false)`, a plain `SET`: inside a
/// transaction that later rolls back, the change and its undoing roll back together.
///
/// Inside the migration's transaction block, a read that fails would abort the migration's
/// transaction: there the settings and the read are in a savepoint, which is rolled back after the
/// read, whether it failed or not. That puts the settings back, and also lets go of the locks the
/// read took (`pg_get_viewdef` locks each view it prints until the transaction ends), so that the
/// transaction holds what it held before the read and the trace need not look again. Outside one,
/// a read can run in a transaction block of its own, rolled back after it, to the same effect.
pub(crate) struct CatalogSettings {
    /// Each setting the server has, with its value before (outside a savepoint only).
    previous: Vec<(String, String)>,
    in_savepoint: bool,
    /// The read opened the transaction block its savepoint is in (see
    /// [`CatalogSettings::in_savepoint`]).
    began: bool,
}

impl CatalogSettings {
    const NAMES: [&'static str; 3] = ["search_path", "jit", "plan_cache_mode"];

    /// The settings of a read in a savepoint, in the session's transaction block, or, when
    /// `begin`, in one opened for the read: nothing to keep, [`CatalogSettings::enter`] and
    /// [`CatalogSettings::restore`] can be sent in one round trip with the reads between them.
    pub(crate) fn in_savepoint(begin: bool) -> CatalogSettings {
        CatalogSettings {
            previous: Vec::new(),
            in_savepoint: true,
            began: begin,
        }
    }

    /// Opens the savepoint of [`CatalogSettings::in_savepoint`] (after `BEGIN` when it begins) and
    /// sets the settings in it, as [`CatalogSettings::set`] does.
    pub(crate) async fn enter(&self, client: &Client, path: &str) -> Result<(), Error> {
        let begin = match self.began {
            true => "BEGIN; ",
            false => "",
        };
        client
            .batch_execute(&format!(
                "{begin}SAVEPOINT {READ_SAVEPOINT}; {}",
                Self::set_sql(path)
            ))
            .await
    }

    /// Sets `search_path` to `path`, `jit` off and `plan_cache_mode` to generic plans, and keeps
    /// what they were. A server without one of them (JIT before PostgreSQL 11, `plan_cache_mode`
    /// before 12) has no such setting: it is left alone.
    pub(crate) async fn set(client: &Client, path: &str) -> Result<CatalogSettings, Error> {
        let names = Self::NAMES.map(|name| format!("('{name}')")).join(", ");
        let query = format!(
            "SELECT name, pg_catalog.current_setting(name, true) FROM (VALUES {names}) AS s(name); {}",
            Self::set_sql(path)
        );
        let messages = client.simple_query(&query).await?;
        let previous = messages
            .iter()
            .filter_map(|message| match message {
                SimpleQueryMessage::Row(row) => Some(row),
                _ => None,
            })
            // The rows of the first query: the second's have one column.
            .filter_map(|row| {
                let value = row.try_get(1).ok()??;
                Some((row.try_get(0).ok()??.to_owned(), value.to_owned()))
            })
            .collect();
        Ok(CatalogSettings {
            previous,
            in_savepoint: false,
            began: false,
        })
    }

    fn set_sql(path: &str) -> String {
        set_config_sql(&[
            ("search_path", path),
            ("jit", "off"),
            ("plan_cache_mode", "force_generic_plan"),
        ])
    }

    /// Puts the settings back as they were before [`CatalogSettings::set`]; in a savepoint, rolls
    /// it back (see [`CatalogSettings`]), which also ends a failed read's aborted state, and the
    /// transaction block with it when the read opened that.
    pub(crate) async fn restore(&self, client: &Client) -> Result<(), Error> {
        if self.began {
            return client.batch_execute("ROLLBACK").await;
        }
        if self.in_savepoint {
            return client
                .batch_execute(&format!(
                    "ROLLBACK TO SAVEPOINT {READ_SAVEPOINT}; RELEASE SAVEPOINT {READ_SAVEPOINT}"
                ))
                .await;
        }
        if self.previous.is_empty() {
            return Ok(());
        }
        let previous: Vec<(&str, &str)> = self
            .previous
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        client.batch_execute(&set_config_sql(&previous)).await
    }
}

/// The savepoint a catalog read inside the migration's transaction runs in.
const READ_SAVEPOINT: &str = "migagent_catalog_read";

/// One query that sets each setting of `settings` (name, value) the server has.
fn set_config_sql(settings: &[(&str, &str)]) -> String {
    let values: Vec<String> = settings
        .iter()
        .map(|(name, value)| format!("({}, {})", string_literal(name), string_literal(value)))
        .collect();
    format!(
        "SELECT pg_catalog.set_config(name, value, false) FROM (VALUES {}) AS s(name, value) \
         WHERE pg_catalog.current_setting(name, true) IS NOT NULL",
        values.join(", ")
    )
}

/// `text` as an escape string constant, which reads the same whatever
/// `standard_conforming_strings` says.
fn string_literal(text: &str) -> String {
    format!("E'{}'", text.replace('\\', "\\\\").replace('\'', "''"))
}

/// The SQL condition that keeps the objects of user schemas, for a query where `namespace` is the
/// `pg_namespace` row of the object's schema. Names starting with `pg_` are reserved to the
/// system (`pg_catalog`, `pg_toast`, `pg_temp_3`, `pg_toast_temp_3`, …).
pub(crate) fn user_schema(namespace: &str) -> String {
    format!("{namespace}.nspname <> 'information_schema' AND {namespace}.nspname !~ '^pg_'")
}

/// The SQL condition that leaves out the members of extensions, for an object of the system
/// catalog `catalog` (`pg_class`, `pg_proc`, `pg_type`) whose OID is the expression `oid`.
fn not_extension_member(catalog: &str, oid: &str) -> String {
    format!(
        "NOT EXISTS (SELECT FROM pg_depend e WHERE e.classid = '{catalog}'::regclass \
         AND e.objid = {oid} AND e.deptype = 'e')"
    )
}

async fn read_snapshot(client: &Client) -> Result<SchemaSnapshot, Error> {
    Ok(read_all(client).await?.0)
}

/// Every part of the snapshot, and which relation owns each object that belongs to one.
pub(super) async fn read_all(client: &Client) -> Result<(SchemaSnapshot, Owners), Error> {
    let (relation_sql, schemas, functions) = (
        RelationParts::sql(Scope::All),
        schemas_sql(),
        functions_sql(),
    );
    let (types, domain_constraints) = (types_sql(), constraints_sql(Scope::Domains));
    // Sent together: tokio-postgres pipelines the queries of one connection.
    let (relations, schemas, extensions, types, domain_constraints, functions) = tokio::try_join!(
        relation_sql.query(client),
        client.query(schemas.as_str(), &[]),
        client.query(EXTENSIONS, &[]),
        client.query(types.as_str(), &[]),
        client.query(domain_constraints.as_str(), &[]),
        client.query(functions.as_str(), &[]),
    )?;
    let mut snapshot = SchemaSnapshot {
        schemas: first_column(&schemas)?,
        extensions: first_column(&extensions)?,
        ..SchemaSnapshot::default()
    };
    let mut owners = Owners::new();
    relations.read(&mut snapshot, &mut owners)?;
    read_types(&types, &domain_constraints, &mut snapshot, &mut owners)?;
    read_functions(&functions, &mut snapshot)?;
    Ok((snapshot, owners))
}

/// Which relation (by OID) owns each object of a snapshot that belongs to one: a table's or
/// view's own entry, its indexes, constraints, triggers and policies, an owned sequence's entry.
/// Domain constraints are filed under OID 0.
pub(super) type Owners = Vec<(u32, ObjectKind, String)>;

/// The setting (a placeholder of the session, local to the transaction or savepoint that sets it)
/// that names the relations of [`Scope::Relations`].
pub(super) const SCOPE_SETTING: &str = "migagent.scope";

/// The relations of [`Scope::Relations`], as SQL.
fn scoped_oids() -> String {
    format!("pg_catalog.current_setting('{SCOPE_SETTING}')::pg_catalog.oid[]")
}

/// Which rows a snapshot query reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scope {
    /// Every user object.
    All,
    /// Only what belongs to the relations whose OIDs the setting [`SCOPE_SETTING`] holds (an
    /// `oid[]` as text), which the query before it in the same transaction set: the relations are
    /// found and read in one round trip.
    Relations,
    /// Domain constraints only.
    Domains,
}

impl Scope {
    /// The condition that keeps the rows of this scope, for a query where `owner` is the OID of the
    /// relation a row belongs to.
    fn condition(self, owner: &str) -> String {
        match self {
            Scope::All => String::new(),
            // Driven from the OIDs: `= ANY` of a generic plan scans the whole catalog, which
            // every statement's row versions make longer on the shadow (no vacuum runs there).
            Scope::Relations => {
                format!(" AND {owner} IN (SELECT unnest({}))", scoped_oids())
            }
            Scope::Domains => " AND co.contypid <> 0".to_owned(),
        }
    }

    /// The catalog `catalog` as `alias` in a query's FROM, where `owner` is the column naming the
    /// relation a row belongs to: for [`Scope::Relations`], joined to the scope's OIDs, so that a
    /// generic plan probes the catalog's index on `owner` for each of them. The condition of
    /// [`Scope::condition`] still made the planner hash a scan of the whole catalog for
    /// `pg_attribute` (every column of every relation, 10-30 ms a call on documenso).
    fn driving(self, catalog: &str, alias: &str, owner: &str) -> String {
        match self {
            Scope::Relations => format!(
                "(SELECT DISTINCT unnest({}) AS oid) scope \
                 JOIN {catalog} {alias} ON {alias}.{owner} = scope.oid",
                scoped_oids()
            ),
            Scope::All | Scope::Domains => format!("{catalog} {alias}"),
        }
    }
}

/// The queries of the parts of a snapshot that belong to relations, all with the OID of the owning
/// relation as their last column.
pub(super) struct RelationParts<Q> {
    relations: Q,
    columns: Q,
    indexes: Q,
    constraints: Q,
    sequences: Q,
    triggers: Q,
    policies: Q,
}

impl RelationParts<String> {
    pub(super) fn sql(scope: Scope) -> RelationParts<String> {
        RelationParts {
            relations: relations_sql(scope),
            columns: columns_sql(scope),
            indexes: indexes_sql(scope),
            constraints: constraints_sql(scope),
            sequences: sequences_sql(scope),
            triggers: triggers_sql(scope),
            policies: policies_sql(scope),
        }
    }

    /// Prepared on `client`, to be run again and again with [`RelationParts::query`].
    pub(super) async fn prepare(&self, client: &Client) -> Result<RelationParts<Statement>, Error> {
        let (relations, columns, indexes, constraints, sequences, triggers, policies) = tokio::try_join!(
            client.prepare(&self.relations),
            client.prepare(&self.columns),
            client.prepare(&self.indexes),
            client.prepare(&self.constraints),
            client.prepare(&self.sequences),
            client.prepare(&self.triggers),
            client.prepare(&self.policies),
        )?;
        Ok(RelationParts {
            relations,
            columns,
            indexes,
            constraints,
            sequences,
            triggers,
            policies,
        })
    }
}

impl<Q: ToStatement + Sync> RelationParts<Q> {
    /// The rows of every part, for the relations of the queries' scope (see [`Scope`]).
    pub(super) async fn query(&self, client: &Client) -> Result<RelationParts<Vec<Row>>, Error> {
        let params: &[&(dyn ToSql + Sync)] = &[];
        let (relations, columns, indexes, constraints, sequences, triggers, policies) = tokio::try_join!(
            client.query(&self.relations, params),
            client.query(&self.columns, params),
            client.query(&self.indexes, params),
            client.query(&self.constraints, params),
            client.query(&self.sequences, params),
            client.query(&self.triggers, params),
            client.query(&self.policies, params),
        )?;
        Ok(RelationParts {
            relations,
            columns,
            indexes,
            constraints,
            sequences,
            triggers,
            policies,
        })
    }
}

/// The OID of the relation a row belongs to: the last column of every relation part.
fn owner(row: &Row) -> Result<u32, Error> {
    row.try_get(row.len() - 1)
}

impl RelationParts<Vec<Row>> {
    /// Files every row into `snapshot`, and who owns it into `owners`.
    pub(super) fn read(
        &self,
        snapshot: &mut SchemaSnapshot,
        owners: &mut Owners,
    ) -> Result<(), Error> {
        let mut columns_of = columns_by_relation(&self.columns)?;
        for row in &self.relations {
            let (kind, name) = read_relation(row, &mut columns_of, snapshot)?;
            owners.push((owner(row)?, kind, name));
        }
        for row in &self.indexes {
            let name: String = row.try_get(0)?;
            snapshot.indexes.insert(
                name.clone(),
                Index {
                    definition: row.try_get(1)?,
                    valid: row.try_get(2)?,
                    partition_of: row.try_get(3)?,
                },
            );
            owners.push((owner(row)?, ObjectKind::Index, name));
        }
        read_constraints(&self.constraints, snapshot, owners)?;
        for row in &self.sequences {
            let name: String = row.try_get(0)?;
            snapshot.sequences.insert(
                name.clone(),
                Sequence {
                    data_type: row.try_get(1)?,
                    start: row.try_get(2)?,
                    increment: row.try_get(3)?,
                    min: row.try_get(4)?,
                    max: row.try_get(5)?,
                    cache: row.try_get(6)?,
                    cycle: row.try_get(7)?,
                    owned_by: row.try_get(8)?,
                },
            );
            owners.push((owner(row)?, ObjectKind::Sequence, name));
        }
        for row in &self.triggers {
            let name: String = row.try_get(0)?;
            let enabled: String = row.try_get(2)?;
            let enabled = match enabled.as_str() {
                "D" => "disabled",
                "R" => "replica",
                "A" => "always",
                _ => "origin",
            };
            snapshot.triggers.insert(
                name.clone(),
                Trigger {
                    definition: row.try_get(1)?,
                    enabled: enabled.to_owned(),
                },
            );
            owners.push((owner(row)?, ObjectKind::Trigger, name));
        }
        for row in &self.policies {
            let name: String = row.try_get(0)?;
            let command: String = row.try_get(1)?;
            let command = match command.as_str() {
                "r" => "SELECT",
                "a" => "INSERT",
                "w" => "UPDATE",
                "d" => "DELETE",
                _ => "ALL",
            };
            snapshot.policies.insert(
                name.clone(),
                Policy {
                    command: command.to_owned(),
                    permissive: row.try_get(2)?,
                    roles: row.try_get(3)?,
                    using: row.try_get(4)?,
                    with_check: row.try_get(5)?,
                },
            );
            owners.push((owner(row)?, ObjectKind::Policy, name));
        }
        Ok(())
    }
}

fn read_constraints(
    rows: &[Row],
    snapshot: &mut SchemaSnapshot,
    owners: &mut Owners,
) -> Result<(), Error> {
    for row in rows {
        let name: String = row.try_get(0)?;
        snapshot.constraints.insert(
            name.clone(),
            Constraint {
                definition: row.try_get(1)?,
                validated: row.try_get(2)?,
            },
        );
        owners.push((owner(row)?, ObjectKind::Constraint, name));
    }
    Ok(())
}

/// Enums and domains from the rows of [`types_sql`], and the constraints of domains.
pub(super) fn read_types(
    types: &[Row],
    domain_constraints: &[Row],
    snapshot: &mut SchemaSnapshot,
    owners: &mut Owners,
) -> Result<(), Error> {
    for row in types {
        let name: String = row.try_get(0)?;
        let kind: String = row.try_get(1)?;
        if kind == "e" {
            snapshot.enums.insert(name, row.try_get(2)?);
        } else {
            snapshot.domains.insert(
                name,
                Domain {
                    base_type: row.try_get(3)?,
                    not_null: row.try_get(4)?,
                    default: row.try_get(5)?,
                    collation: row.try_get(6)?,
                },
            );
        }
    }
    read_constraints(domain_constraints, snapshot, owners)
}

pub(super) fn read_functions(rows: &[Row], snapshot: &mut SchemaSnapshot) -> Result<(), Error> {
    for row in rows {
        let kind: String = row.try_get(1)?;
        let kind = match kind.as_str() {
            "p" => "procedure",
            "a" => "aggregate",
            "w" => "window",
            _ => "function",
        };
        snapshot.functions.insert(
            row.try_get(0)?,
            Function {
                kind: kind.to_owned(),
                result: row.try_get(2)?,
                definition_md5: row.try_get(3)?,
            },
        );
    }
    Ok(())
}

const EXTENSIONS: &str = "SELECT quote_ident(extname) FROM pg_extension";

pub(super) fn schemas_sql() -> String {
    format!(
        "SELECT quote_ident(n.nspname) FROM pg_namespace n WHERE {}",
        user_schema("n")
    )
}

pub(super) fn first_column(rows: &[Row]) -> Result<BTreeSet<String>, Error> {
    rows.iter().map(|row| row.try_get(0)).collect()
}

/// The columns of each relation (by qualified name), in table order.
fn columns_by_relation(rows: &[Row]) -> Result<BTreeMap<String, Vec<Column>>, Error> {
    let mut columns: BTreeMap<String, Vec<Column>> = BTreeMap::new();
    for row in rows {
        let identity: String = row.try_get(5)?;
        let identity = match identity.as_str() {
            "a" => Some(Identity::Always),
            "d" => Some(Identity::ByDefault),
            _ => None,
        };
        columns.entry(row.try_get(0)?).or_default().push(Column {
            name: row.try_get(1)?,
            data_type: row.try_get(2)?,
            default: row.try_get(3)?,
            not_null: row.try_get(4)?,
            identity,
            generated: row.try_get(6)?,
            collation: row.try_get(7)?,
        });
    }
    Ok(columns)
}

/// Files one row of the relations query under tables, composite types or views.
fn read_relation(
    row: &Row,
    columns_of: &mut BTreeMap<String, Vec<Column>>,
    snapshot: &mut SchemaSnapshot,
) -> Result<(ObjectKind, String), Error> {
    let name: String = row.try_get(0)?;
    let kind: String = row.try_get(1)?;
    let columns = columns_of.remove(&name).unwrap_or_default();
    let kind = match kind.as_str() {
        "v" => {
            let definition = row.try_get(10)?;
            snapshot.views.insert(name.clone(), View { definition });
            return Ok((ObjectKind::View, name));
        }
        "m" => {
            let view = MaterializedView {
                definition: row.try_get(10)?,
                populated: row.try_get(11)?,
            };
            snapshot.materialized_views.insert(name.clone(), view);
            return Ok((ObjectKind::MaterializedView, name));
        }
        "c" => {
            snapshot.composite_types.insert(name.clone(), columns);
            return Ok((ObjectKind::CompositeType, name));
        }
        "p" => TableKind::PartitionedTable,
        "f" => TableKind::ForeignTable,
        _ => TableKind::Table,
    };
    let table = Table {
        kind,
        unlogged: row.try_get(2)?,
        columns,
        options: row.try_get(3)?,
        row_level_security: row.try_get(4)?,
        force_row_level_security: row.try_get(5)?,
        partition_of: row.try_get(6)?,
        partition_bound: row.try_get(7)?,
        partition_key: row.try_get(8)?,
        inherits: row.try_get(9)?,
    };
    snapshot.tables.insert(name.clone(), table);
    Ok((ObjectKind::Table, name))
}

/// Tables, views and composite types, read by `read_relation`.
fn relations_sql(scope: Scope) -> String {
    format!(
        "SELECT format('%I.%I', n.nspname, c.relname), c.relkind::text,
                c.relpersistence = 'u', coalesce(c.reloptions, '{{}}'),
                c.relrowsecurity, c.relforcerowsecurity,
                (SELECT format('%I.%I', pn.nspname, p.relname)
                   FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent
                   JOIN pg_namespace pn ON pn.oid = p.relnamespace
                  WHERE i.inhrelid = c.oid AND c.relispartition),
                pg_get_expr(c.relpartbound, c.oid),
                CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END,
                ARRAY(SELECT format('%I.%I', pn.nspname, p.relname)
                        FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent
                        JOIN pg_namespace pn ON pn.oid = p.relnamespace
                       WHERE i.inhrelid = c.oid AND NOT c.relispartition
                       ORDER BY i.inhseqno),
                CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid) END,
                c.relispopulated, c.oid
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relkind IN ('r', 'p', 'f', 'v', 'm', 'c') AND {} AND {}{}",
        user_schema("n"),
        not_extension_member("pg_class", "c.oid"),
        scope.condition("c.oid")
    )
}

fn columns_sql(scope: Scope) -> String {
    format!(
        "SELECT format('%I.%I', n.nspname, c.relname), quote_ident(a.attname),
                format_type(a.atttypid, a.atttypmod),
                CASE WHEN a.attgenerated = '' THEN pg_get_expr(d.adbin, d.adrelid) END,
                a.attnotnull, a.attidentity::text,
                CASE WHEN a.attgenerated <> '' THEN pg_get_expr(d.adbin, d.adrelid) END,
                CASE WHEN a.attcollation <> t.typcollation
                     THEN format('%I.%I', cn.nspname, co.collname) END, a.attrelid
           FROM {}
           JOIN pg_class c ON c.oid = a.attrelid
           JOIN pg_namespace n ON n.oid = c.relnamespace
           JOIN pg_type t ON t.oid = a.atttypid
           LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
           LEFT JOIN pg_collation co ON co.oid = a.attcollation
           LEFT JOIN pg_namespace cn ON cn.oid = co.collnamespace
          WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'f', 'c')
            AND {} AND {}
          ORDER BY a.attrelid, a.attnum",
        scope.driving("pg_attribute", "a", "attrelid"),
        user_schema("n"),
        not_extension_member("pg_class", "c.oid"),
    )
}

fn indexes_sql(scope: Scope) -> String {
    format!(
        "SELECT format('%I.%I', n.nspname, ic.relname), pg_get_indexdef(i.indexrelid),
                i.indisvalid,
                (SELECT format('%I.%I', pn.nspname, p.relname)
                   FROM pg_inherits h JOIN pg_class p ON p.oid = h.inhparent
                   JOIN pg_namespace pn ON pn.oid = p.relnamespace
                  WHERE h.inhrelid = i.indexrelid),
                i.indrelid
           FROM pg_index i
           JOIN pg_class ic ON ic.oid = i.indexrelid
           JOIN pg_namespace n ON n.oid = ic.relnamespace
          WHERE {} AND {}{}",
        user_schema("n"),
        not_extension_member("pg_class", "i.indrelid"),
        scope.condition("i.indrelid")
    )
}

pub(super) fn constraints_sql(scope: Scope) -> String {
    format!(
        "SELECT format('%I.%I.%I', n.nspname, coalesce(c.relname, t.typname), co.conname),
                pg_get_constraintdef(co.oid), co.convalidated, co.conrelid
           FROM pg_constraint co
           JOIN pg_namespace n ON n.oid = co.connamespace
           LEFT JOIN pg_class c ON c.oid = co.conrelid
           LEFT JOIN pg_type t ON t.oid = co.contypid
          WHERE (c.oid IS NOT NULL OR t.oid IS NOT NULL) AND {}
            AND {} AND {}{}",
        user_schema("n"),
        not_extension_member("pg_class", "co.conrelid"),
        not_extension_member("pg_type", "co.contypid"),
        // Domain constraints are read with the domains, on their own.
        match scope {
            Scope::All => " AND co.conrelid <> 0".to_owned(),
            scope => scope.condition("co.conrelid"),
        }
    )
}

fn sequences_sql(scope: Scope) -> String {
    format!(
        "SELECT format('%I.%I', n.nspname, c.relname), format_type(s.seqtypid, NULL),
                s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcache, s.seqcycle,
                (SELECT format('%I.%I.%I', tn.nspname, t.relname, a.attname)
                   FROM pg_depend d
                   JOIN pg_class t ON t.oid = d.refobjid
                   JOIN pg_namespace tn ON tn.oid = t.relnamespace
                   JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
                  WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                    AND d.refclassid = 'pg_class'::regclass AND d.refobjsubid > 0
                    AND d.deptype IN ('a', 'i')),
                c.oid
           FROM pg_sequence s
           JOIN pg_class c ON c.oid = s.seqrelid
           JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE {} AND {}{}",
        user_schema("n"),
        not_extension_member("pg_class", "c.oid"),
        scope.condition("c.oid")
    )
}

/// Enums and domains.
pub(super) fn types_sql() -> String {
    format!(
        "SELECT format('%I.%I', n.nspname, t.typname), t.typtype::text,
                ARRAY(SELECT e.enumlabel::text FROM pg_enum e WHERE e.enumtypid = t.oid
                       ORDER BY e.enumsortorder),
                format_type(t.typbasetype, t.typtypmod), t.typnotnull, t.typdefault,
                CASE WHEN t.typcollation <> b.typcollation
                     THEN format('%I.%I', cn.nspname, co.collname) END
           FROM pg_type t
           JOIN pg_namespace n ON n.oid = t.typnamespace
           LEFT JOIN pg_type b ON b.oid = t.typbasetype
           LEFT JOIN pg_collation co ON co.oid = t.typcollation
           LEFT JOIN pg_namespace cn ON cn.oid = co.collnamespace
          WHERE t.typtype IN ('e', 'd') AND {} AND {}",
        user_schema("n"),
        not_extension_member("pg_type", "t.oid")
    )
}

pub(super) fn functions_sql() -> String {
    format!(
        "SELECT format('%I.%I(%s)', n.nspname, p.proname, oidvectortypes(p.proargtypes)),
                p.prokind::text,
                CASE WHEN p.prokind <> 'p' THEN pg_get_function_result(p.oid) END,
                md5(CASE WHEN p.prokind = 'a' THEN p.prosrc ELSE pg_get_functiondef(p.oid) END)
           FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
          WHERE {} AND {}",
        user_schema("n"),
        not_extension_member("pg_proc", "p.oid")
    )
}

fn triggers_sql(scope: Scope) -> String {
    format!(
        "SELECT format('%I.%I.%I', n.nspname, c.relname, tg.tgname), pg_get_triggerdef(tg.oid),
                tg.tgenabled::text, tg.tgrelid
           FROM pg_trigger tg
           JOIN pg_class c ON c.oid = tg.tgrelid
           JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE NOT tg.tgisinternal AND {} AND {}{}",
        user_schema("n"),
        not_extension_member("pg_class", "c.oid"),
        scope.condition("tg.tgrelid")
    )
}

fn policies_sql(scope: Scope) -> String {
    format!(
        "SELECT format('%I.%I.%I', n.nspname, c.relname, pol.polname), pol.polcmd::text,
                pol.polpermissive,
                ARRAY(SELECT CASE WHEN r = 0 THEN 'public' ELSE quote_ident(pg_get_userbyid(r)) END
                        FROM unnest(pol.polroles) r ORDER BY 1),
                pg_get_expr(pol.polqual, pol.polrelid, true),
                pg_get_expr(pol.polwithcheck, pol.polrelid, true), pol.polrelid
           FROM pg_policy pol
           JOIN pg_class c ON c.oid = pol.polrelid
           JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE {}{}",
        user_schema("n"),
        scope.condition("pol.polrelid")
    )
}

/// Whether an object appeared, disappeared or changed between two snapshots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    Added,
    Removed,
    Changed,
}

/// The kinds of objects a snapshot holds, in the order a diff lists them: what others depend on
/// first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectKind {
    Schema,
    Extension,
    Enum,
    Domain,
    CompositeType,
    Sequence,
    Table,
    Column,
    Constraint,
    Index,
    View,
    MaterializedView,
    Function,
    Trigger,
    Policy,
}

impl ObjectKind {
    pub fn noun(self) -> &'static str {
        match self {
            ObjectKind::Schema => "schema",
            ObjectKind::Extension => "extension",
            ObjectKind::Enum => "enum",
            ObjectKind::Domain => "domain",
            ObjectKind::CompositeType => "composite type",
            ObjectKind::Sequence => "sequence",
            ObjectKind::Table => "table",
            ObjectKind::Column => "column",
            ObjectKind::Constraint => "constraint",
            ObjectKind::Index => "index",
            ObjectKind::View => "view",
            ObjectKind::MaterializedView => "materialized view",
            ObjectKind::Function => "function",
            ObjectKind::Trigger => "trigger",
            ObjectKind::Policy => "policy",
        }
    }
}

/// One difference between two snapshots. Serialized with its name as the rest of the report shows
/// names (see [`ChangeName`]), not as the snapshot's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaChange {
    pub change: Change,
    pub object: ObjectKind,
    /// The snapshot's key, qualified and quoted as PostgreSQL quotes identifiers:
    /// `public."User"` for a table, `public."User".email` for a column.
    pub name: String,
    /// What the object is (added or removed), or what changed and how (`type text → bigint`).
    pub detail: Option<String>,
}

/// A changed object's name in exact, unquoted parts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChangeName {
    /// The schema it lives in; none for a schema or an extension.
    pub schema: Option<String>,
    /// The table, view, composite type or domain a column, constraint, trigger or policy belongs to.
    pub parent: Option<String>,
    /// The object's own name.
    pub object_name: String,
    /// A function's argument types, as `format_type` prints them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arguments: Option<String>,
}

impl ChangeName {
    /// `schema.parent.name(arguments)`, unquoted, as messages and locks show names.
    pub fn display(&self) -> String {
        let mut shown = String::new();
        for part in [&self.schema, &self.parent].into_iter().flatten() {
            shown.push_str(part);
            shown.push('.');
        }
        shown.push_str(&self.object_name);
        if let Some(arguments) = &self.arguments {
            shown.push_str(&format!("({arguments})"));
        }
        shown
    }
}

impl SchemaChange {
    /// The key's parts: `schema.name` for objects in a schema, `schema.parent.name` for the parts
    /// of one, a lone name for a schema or an extension.
    pub fn parts(&self) -> ChangeName {
        let (mut parts, rest) = split_quoted(&self.name);
        let arguments = rest
            .strip_prefix('(')
            .and_then(|inner| inner.strip_suffix(')'))
            .map(str::to_owned);
        let object_name = parts.pop().unwrap_or_default();
        let parent = (parts.len() > 1).then(|| parts.pop()).flatten();
        let schema = parts.pop();
        ChangeName {
            schema,
            parent,
            object_name,
            arguments,
        }
    }
}

impl Serialize for SchemaChange {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let parts = self.parts();
        let mut out = serializer.serialize_struct("SchemaChange", 8)?;
        out.serialize_field("change", &self.change)?;
        out.serialize_field("object", &self.object)?;
        out.serialize_field("name", &parts.display())?;
        out.serialize_field("schema", &parts.schema)?;
        out.serialize_field("parent", &parts.parent)?;
        out.serialize_field("object_name", &parts.object_name)?;
        if let Some(arguments) = &parts.arguments {
            out.serialize_field("arguments", arguments)?;
        }
        out.serialize_field("detail", &self.detail)?;
        out.end()
    }
}

impl fmt::Display for SchemaChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let change = match self.change {
            Change::Added => "added",
            Change::Removed => "removed",
            Change::Changed => "changed",
        };
        let name = self.parts().display();
        write!(f, "{change} {} {name}", self.object.noun())?;
        match &self.detail {
            Some(detail) => write!(f, ": {detail}"),
            None => Ok(()),
        }
    }
}

/// What changed from `before` to `after`: by kind of object (in [`ObjectKind`] order), then by
/// name; a table's columns in table order.
pub fn diff(before: &SchemaSnapshot, after: &SchemaSnapshot) -> Vec<SchemaChange> {
    let mut changes = Vec::new();
    let mut out = Changes(&mut changes);
    out.names(ObjectKind::Schema, &before.schemas, &after.schemas);
    out.names(ObjectKind::Extension, &before.extensions, &after.extensions);
    out.objects(ObjectKind::Enum, &before.enums, &after.enums);
    out.objects(ObjectKind::Domain, &before.domains, &after.domains);
    out.objects(
        ObjectKind::CompositeType,
        &before.composite_types,
        &after.composite_types,
    );
    out.objects(ObjectKind::Sequence, &before.sequences, &after.sequences);
    out.objects(ObjectKind::Table, &before.tables, &after.tables);
    out.objects(
        ObjectKind::Constraint,
        &before.constraints,
        &after.constraints,
    );
    out.objects(ObjectKind::Index, &before.indexes, &after.indexes);
    out.objects(ObjectKind::View, &before.views, &after.views);
    out.objects(
        ObjectKind::MaterializedView,
        &before.materialized_views,
        &after.materialized_views,
    );
    out.objects(ObjectKind::Function, &before.functions, &after.functions);
    out.objects(ObjectKind::Trigger, &before.triggers, &after.triggers);
    out.objects(ObjectKind::Policy, &before.policies, &after.policies);
    // Columns are found with their tables; stable, so they stay in table order.
    changes.sort_by_key(|change| change.object);
    changes
}

/// The changes found so far.
struct Changes<'a>(&'a mut Vec<SchemaChange>);

impl Changes<'_> {
    fn push(&mut self, change: Change, object: ObjectKind, name: &str, detail: Option<String>) {
        self.0.push(SchemaChange {
            change,
            object,
            name: name.to_owned(),
            detail,
        });
    }

    /// Objects known by name only.
    fn names(&mut self, object: ObjectKind, before: &BTreeSet<String>, after: &BTreeSet<String>) {
        for name in before.difference(after) {
            self.push(Change::Removed, object, name, None);
        }
        for name in after.difference(before) {
            self.push(Change::Added, object, name, None);
        }
    }

    fn objects<T: SnapshotObject>(
        &mut self,
        object: ObjectKind,
        before: &BTreeMap<String, T>,
        after: &BTreeMap<String, T>,
    ) {
        let names: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
        for name in names {
            match (before.get(name), after.get(name)) {
                (Some(old), None) => self.push(Change::Removed, object, name, old.summary()),
                (None, Some(new)) => self.push(Change::Added, object, name, new.summary()),
                (Some(old), Some(new)) if old != new => {
                    let mut details = Vec::new();
                    old.compare(new, &mut details);
                    if !details.is_empty() {
                        self.push(Change::Changed, object, name, Some(details.join("; ")));
                    }
                    old.compare_parts(new, name, self);
                }
                _ => {}
            }
        }
    }

    /// The columns of a table or composite type: removed ones in their old order, then added and
    /// changed ones in their new order. A column that kept its name but not its place among the
    /// columns both versions have (dropped and added again) changed position; one that only moved
    /// up because an earlier column was dropped did not.
    fn columns(&mut self, owner: &str, before: &[Column], after: &[Column]) {
        let qualified = |column: &Column| format!("{owner}.{}", column.name);
        let position = |columns: &[Column], name: &str| columns.iter().position(|c| c.name == name);
        for old in before {
            if position(after, &old.name).is_none() {
                self.push(
                    Change::Removed,
                    ObjectKind::Column,
                    &qualified(old),
                    old.summary(),
                );
            }
        }
        let moved = moved_columns(before, after);
        for (new_position, new) in after.iter().enumerate() {
            let Some(old_position) = position(before, &new.name) else {
                self.push(
                    Change::Added,
                    ObjectKind::Column,
                    &qualified(new),
                    new.summary(),
                );
                continue;
            };
            let mut details = Vec::new();
            before[old_position].compare(new, &mut details);
            if moved.contains(new.name.as_str()) {
                details.push(format!(
                    "position {} → {}",
                    old_position + 1,
                    new_position + 1
                ));
            }
            if !details.is_empty() {
                self.push(
                    Change::Changed,
                    ObjectKind::Column,
                    &qualified(new),
                    Some(details.join("; ")),
                );
            }
        }
    }
}

/// The columns of both versions that are out of order: those outside a longest common
/// subsequence of the two orders. Where several exist, the later columns of `after` count as
/// moved (a dropped and re-added column goes last).
fn moved_columns<'a>(before: &[Column], after: &'a [Column]) -> HashSet<&'a str> {
    let in_after: HashSet<&str> = after.iter().map(|c| c.name.as_str()).collect();
    let in_before: HashSet<&str> = before.iter().map(|c| c.name.as_str()).collect();
    let old: Vec<&str> = before
        .iter()
        .map(|c| c.name.as_str())
        .filter(|name| in_after.contains(name))
        .collect();
    let new: Vec<&'a str> = after
        .iter()
        .map(|c| c.name.as_str())
        .filter(|name| in_before.contains(name))
        .collect();
    if old == new {
        return HashSet::new();
    }
    // lengths[i][j]: the longest common subsequence of old[..i] and new[..j].
    let width = new.len() + 1;
    let mut lengths = vec![0u32; (old.len() + 1) * width];
    for i in 1..=old.len() {
        for j in 1..=new.len() {
            lengths[i * width + j] = if old[i - 1] == new[j - 1] {
                lengths[(i - 1) * width + j - 1] + 1
            } else {
                lengths[(i - 1) * width + j].max(lengths[i * width + j - 1])
            };
        }
    }
    let mut moved: HashSet<&'a str> = new.iter().copied().collect();
    let (mut i, mut j) = (old.len(), new.len());
    while i > 0 && j > 0 {
        if old[i - 1] == new[j - 1] {
            moved.remove(new[j - 1]);
            i -= 1;
            j -= 1;
        } else if lengths[i * width + j - 1] >= lengths[(i - 1) * width + j] {
            j -= 1;
        } else {
            i -= 1;
        }
    }
    moved
}

/// What a diff needs to know about one kind of object.
trait SnapshotObject: PartialEq {
    /// What the object is, shown when it is added or removed.
    fn summary(&self) -> Option<String>;
    /// The differences of this object's own attributes, one phrase each.
    fn compare(&self, after: &Self, details: &mut Vec<String>);
    /// Reports changes to the parts diffed on their own (a table's columns).
    fn compare_parts(&self, _after: &Self, _name: &str, _out: &mut Changes) {}
}

/// A value as a change's detail shows it.
trait Phrase {
    fn phrase(&self) -> String;
}

impl Phrase for String {
    fn phrase(&self) -> String {
        self.clone()
    }
}

impl Phrase for Option<String> {
    fn phrase(&self) -> String {
        self.clone().unwrap_or_else(|| "none".to_owned())
    }
}

impl Phrase for bool {
    fn phrase(&self) -> String {
        if *self { "yes" } else { "no" }.to_owned()
    }
}

impl Phrase for i64 {
    fn phrase(&self) -> String {
        self.to_string()
    }
}

impl Phrase for Vec<String> {
    fn phrase(&self) -> String {
        if self.is_empty() {
            "none".to_owned()
        } else {
            self.join(", ")
        }
    }
}

impl Phrase for Option<Identity> {
    fn phrase(&self) -> String {
        self.map_or("none", Identity::sql).to_owned()
    }
}

impl Phrase for TableKind {
    fn phrase(&self) -> String {
        match self {
            TableKind::Table => "table",
            TableKind::PartitionedTable => "partitioned table",
            TableKind::ForeignTable => "foreign table",
        }
        .to_owned()
    }
}

/// Adds "`label` before → after" when the two differ.
fn field<T: Phrase + PartialEq>(details: &mut Vec<String>, label: &str, before: &T, after: &T) {
    field_with(details, label, before, after, T::phrase);
}

/// [`field`] with the values shown by `show`; without a label: "before → after".
fn field_with<T: PartialEq>(
    details: &mut Vec<String>,
    label: &str,
    before: &T,
    after: &T,
    show: impl Fn(&T) -> String,
) {
    if before != after {
        let change = format!("{} → {}", show(before), show(after));
        details.push(match label {
            "" => change,
            label => format!("{label} {change}"),
        });
    }
}

fn nullability(not_null: &bool) -> String {
    if *not_null { "NOT NULL" } else { "nullable" }.to_owned()
}

fn collation(collation: &Option<String>) -> String {
    collation.clone().unwrap_or_else(|| "default".to_owned())
}

/// A definition on one line (view queries span several).
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The `type [COLLATE c] [NOT NULL] [DEFAULT d]` of a column or domain.
fn type_clause(
    data_type: &str,
    collation: &Option<String>,
    not_null: bool,
    default: &Option<String>,
) -> String {
    let mut text = data_type.to_owned();
    if let Some(collation) = collation {
        text.push_str(&format!(" COLLATE {collation}"));
    }
    if not_null {
        text.push_str(" NOT NULL");
    }
    if let Some(default) = default {
        text.push_str(&format!(" DEFAULT {default}"));
    }
    text
}

impl Identity {
    fn sql(self) -> &'static str {
        match self {
            Identity::Always => "GENERATED ALWAYS AS IDENTITY",
            Identity::ByDefault => "GENERATED BY DEFAULT AS IDENTITY",
        }
    }
}

impl SnapshotObject for Column {
    fn summary(&self) -> Option<String> {
        let mut text = type_clause(
            &self.data_type,
            &self.collation,
            self.not_null,
            &self.default,
        );
        if let Some(identity) = self.identity {
            text.push_str(&format!(" {}", identity.sql()));
        }
        if let Some(expression) = &self.generated {
            text.push_str(&format!(" GENERATED ALWAYS AS ({expression}) STORED"));
        }
        Some(text)
    }

    fn compare(&self, after: &Self, details: &mut Vec<String>) {
        field(details, "type", &self.data_type, &after.data_type);
        field_with(
            details,
            "collation",
            &self.collation,
            &after.collation,
            collation,
        );
        field_with(details, "", &self.not_null, &after.not_null, nullability);
        field(details, "default", &self.default, &after.default);
        field(details, "identity", &self.identity, &after.identity);
        field(details, "generated", &self.generated, &after.generated);
    }
}

/// `(name type, …)`, the columns of a table or the attributes of a composite type.
fn column_list(columns: &[Column]) -> String {
    let columns: Vec<String> = columns
        .iter()
        .map(|column| format!("{} {}", column.name, column.summary().unwrap_or_default()))
        .collect();
    format!("({})", columns.join(", "))
}

impl SnapshotObject for Table {
    fn summary(&self) -> Option<String> {
        let mut text = column_list(&self.columns);
        if let Some(parent) = &self.partition_of {
            let bound = self.partition_bound.as_deref().unwrap_or_default();
            text.push_str(&format!(" partition of {parent} {bound}"));
        }
        if let Some(key) = &self.partition_key {
            text.push_str(&format!(" PARTITION BY {key}"));
        }
        if self.kind == TableKind::ForeignTable {
            text.insert_str(0, "foreign table ");
        }
        Some(text)
    }

    fn compare(&self, after: &Self, details: &mut Vec<String>) {
        field(details, "kind", &self.kind, &after.kind);
        field(details, "unlogged", &self.unlogged, &after.unlogged);
        field(
            details,
            "partition of",
            &self.partition_of,
            &after.partition_of,
        );
        field(
            details,
            "partition bound",
            &self.partition_bound,
            &after.partition_bound,
        );
        field(
            details,
            "partition key",
            &self.partition_key,
            &after.partition_key,
        );
        field(details, "inherits", &self.inherits, &after.inherits);
        field(details, "options", &self.options, &after.options);
        field(
            details,
            "row level security",
            &self.row_level_security,
            &after.row_level_security,
        );
        field(
            details,
            "forced row level security",
            &self.force_row_level_security,
            &after.force_row_level_security,
        );
    }

    fn compare_parts(&self, after: &Self, name: &str, out: &mut Changes) {
        out.columns(name, &self.columns, &after.columns);
    }
}

/// A composite type's attributes, diffed as a table's columns.
impl SnapshotObject for Vec<Column> {
    fn summary(&self) -> Option<String> {
        Some(column_list(self))
    }

    fn compare(&self, _after: &Self, _details: &mut Vec<String>) {}

    fn compare_parts(&self, after: &Self, name: &str, out: &mut Changes) {
        out.columns(name, self, after);
    }
}

/// An enum's labels.
impl SnapshotObject for Vec<String> {
    fn summary(&self) -> Option<String> {
        Some(format!("labels {}", self.phrase()))
    }

    fn compare(&self, after: &Self, details: &mut Vec<String>) {
        field(details, "labels", self, after);
    }
}

impl SnapshotObject for Domain {
    fn summary(&self) -> Option<String> {
        Some(type_clause(
            &self.base_type,
            &self.collation,
            self.not_null,
            &self.default,
        ))
    }

    fn compare(&self, after: &Self, details: &mut Vec<String>) {
        field(details, "base type", &self.base_type, &after.base_type);
        field_with(details, "", &self.not_null, &after.not_null, nullability);
        field(details, "default", &self.default, &after.default);
        field_with(
            details,
            "collation",
            &self.collation,
            &after.collation,
            collation,
        );
    }
}

impl SnapshotObject for Sequence {
    fn summary(&self) -> Option<String> {
        let mut text = format!(
            "{} START {} INCREMENT {} MINVALUE {} MAXVALUE {} CACHE {}",
            self.data_type, self.start, self.increment, self.min, self.max, self.cache
        );
        if self.cycle {
            text.push_str(" CYCLE");
        }
        if let Some(owner) = &self.owned_by {
            text.push_str(&format!(" OWNED BY {owner}"));
        }
        Some(text)
    }

    fn compare(&self, after: &Self, details: &mut Vec<String>) {
        field(details, "type", &self.data_type, &after.data_type);
        field(details, "start", &self.start, &after.start);
        field(details, "increment", &self.increment, &after.increment);
        field(details, "minvalue", &self.min, &after.min);
        field(details, "maxvalue", &self.max, &after.max);
        field(details, "cache", &self.cache, &after.cache);
        field(details, "cycle", &self.cycle, &after.cycle);
        field(details, "owned by", &self.owned_by, &after.owned_by);
    }
}

impl SnapshotObject for Constraint {
    fn summary(&self) -> Option<String> {
        Some(self.definition.clone())
    }

    fn compare(&self, after: &Self, details: &mut Vec<String>) {
        field(details, "validated", &self.validated, &after.validated);
        // A NOT VALID constraint's definition says so: validating it changes nothing else.
        let unmarked = |definition: &String| definition.trim_end_matches(" NOT VALID").to_owned();
        field_with(
            details,
            "definition",
            &unmarked(&self.definition),
            &unmarked(&after.definition),
            String::clone,
        );
    }
}

impl SnapshotObject for Index {
    fn summary(&self) -> Option<String> {
        let mut text = self.definition.clone();
        if !self.valid {
            text.push_str(" (INVALID)");
        }
        Some(text)
    }

    fn compare(&self, after: &Self, details: &mut Vec<String>) {
        field(details, "definition", &self.definition, &after.definition);
        field(details, "valid", &self.valid, &after.valid);
        field(
            details,
            "attached to",
            &self.partition_of,
            &after.partition_of,
        );
    }
}

impl SnapshotObject for View {
    fn summary(&self) -> Option<String> {
        Some(one_line(&self.definition))
    }

    fn compare(&self, after: &Self, details: &mut Vec<String>) {
        field_with(
            details,
            "definition",
            &self.definition,
            &after.definition,
            |d| one_line(d),
        );
    }
}

impl SnapshotObject for MaterializedView {
    fn summary(&self) -> Option<String> {
        let mut text = one_line(&self.definition);
        if !self.populated {
            text.push_str(" WITH NO DATA");
        }
        Some(text)
    }

    fn compare(&self, after: &Self, details: &mut Vec<String>) {
        field_with(
            details,
            "definition",
            &self.definition,
            &after.definition,
            |d| one_line(d),
        );
        field(details, "populated", &self.populated, &after.populated);
    }
}

impl SnapshotObject for Function {
    fn summary(&self) -> Option<String> {
        Some(match &self.result {
            Some(result) => format!("{} returning {result}", self.kind),
            None => self.kind.clone(),
        })
    }

    fn compare(&self, after: &Self, details: &mut Vec<String>) {
        field(details, "kind", &self.kind, &after.kind);
        field(details, "result", &self.result, &after.result);
        if self.definition_md5 != after.definition_md5 {
            details.push("definition changed".to_owned());
        }
    }
}

impl SnapshotObject for Trigger {
    fn summary(&self) -> Option<String> {
        Some(self.definition.clone())
    }

    fn compare(&self, after: &Self, details: &mut Vec<String>) {
        field(details, "definition", &self.definition, &after.definition);
        field(details, "enabled", &self.enabled, &after.enabled);
    }
}

impl SnapshotObject for Policy {
    fn summary(&self) -> Option<String> {
        let kind = if self.permissive {
            "PERMISSIVE"
        } else {
            "RESTRICTIVE"
        };
        let mut text = format!("{kind} FOR {} TO {}", self.command, self.roles.phrase());
        if let Some(using) = &self.using {
            text.push_str(&format!(" USING ({using})"));
        }
        if let Some(check) = &self.with_check {
            text.push_str(&format!(" WITH CHECK ({check})"));
        }
        Some(text)
    }

    fn compare(&self, after: &Self, details: &mut Vec<String>) {
        field(details, "command", &self.command, &after.command);
        field(details, "permissive", &self.permissive, &after.permissive);
        field(details, "roles", &self.roles, &after.roles);
        field(details, "using", &self.using, &after.using);
        field(details, "with check", &self.with_check, &after.with_check);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn columns(names: &[&str]) -> Vec<Column> {
        names
            .iter()
            .map(|name| Column {
                name: (*name).to_owned(),
                data_type: "integer".to_owned(),
                default: None,
                not_null: false,
                identity: None,
                generated: None,
                collation: None,
            })
            .collect()
    }

    fn moved(before: &[&str], after: &[&str]) -> Vec<String> {
        let (before, after) = (columns(before), columns(after));
        let mut moved: Vec<String> = moved_columns(&before, &after)
            .into_iter()
            .map(str::to_owned)
            .collect();
        moved.sort();
        moved
    }

    #[test]
    fn only_columns_out_of_order_have_moved() {
        assert!(moved(&["a", "b", "c"], &["a", "c"]).is_empty());
        assert!(moved(&["a", "b"], &["a", "b", "c"]).is_empty());
        // Dropped and re-added: it went last.
        assert_eq!(moved(&["a", "b", "c"], &["a", "c", "b"]), ["b"]);
        assert_eq!(moved(&["a", "b", "c", "d"], &["d", "a", "b", "c"]), ["d"]);
        assert_eq!(
            moved(&["a", "b", "c", "d"], &["b", "a", "d", "c"]),
            ["a", "c"]
        );
    }

    #[test]
    fn changes_read_as_sentences() {
        let mut before = SchemaSnapshot::default();
        before
            .tables
            .insert("public.t".to_owned(), Table::plain(columns(&["a", "b"])));
        before.constraints.insert(
            "public.t.t_a_check".to_owned(),
            Constraint {
                definition: "CHECK ((a > 0)) NOT VALID".to_owned(),
                validated: false,
            },
        );
        let mut after = before.clone();
        let mut wider = columns(&["b", "a"]);
        wider[1].data_type = "bigint".to_owned();
        wider[1].not_null = true;
        after
            .tables
            .insert("public.t".to_owned(), Table::plain(wider));
        after.constraints.insert(
            "public.t.t_a_check".to_owned(),
            Constraint {
                definition: "CHECK ((a > 0))".to_owned(),
                validated: true,
            },
        );
        after.schemas.insert("audit".to_owned());
        let changes: Vec<String> = diff(&before, &after)
            .iter()
            .map(|c| c.to_string())
            .collect();
        assert_eq!(
            changes,
            [
                "added schema audit",
                "changed column public.t.a: type integer → bigint; nullable → NOT NULL; position 1 → 2",
                "changed constraint public.t.t_a_check: validated no → yes",
            ]
        );
        assert!(diff(&after, &after).is_empty());
    }
}
