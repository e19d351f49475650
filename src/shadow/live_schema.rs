//! The schema snapshot the trace keeps up to date statement by statement: read whole once, then
//! after each statement only what the statement can have changed, so the cost of a statement does
//! not grow with the schema or with the number of migrations applied before it.
//!
//! What a statement can have changed is told by PostgreSQL itself:
//! - the catalogs it wrote to (`pg_stat_get_xact_tuples_*` of each system catalog in its
//!   transaction): none of the snapshot's, nothing to read;
//! - the relations its transaction holds locks on: DDL locks every relation it creates, alters,
//!   renames or drops (a drop cascading to others locks them too), so their parts are read again;
//! - what `pg_depend` says depends on those of them held in ACCESS EXCLUSIVE mode: views, foreign
//!   keys, defaults, policies and owned sequences of other relations print their names, so their
//!   parts are read again as well. Only that mode changes what dependents print (a rename, a
//!   column renamed or retyped, a drop; an index is renamed under a weaker lock, but no dependent
//!   prints an index's name): a weaker lock changes the relation's own parts at most. A table or
//!   composite type whose qualified name and columns' names and types are still those the
//!   snapshot holds, in order, prints the same in its dependents (relations, functions, domains)
//!   whatever else changed under that lock (a column added after them, a default, a foreign key
//!   dropped): they are not read again then;
//! - enums, domains, functions and schemas, which are not locked, are read again as a whole when
//!   their catalogs were written to; one that disappeared (dropped or renamed) may be printed in
//!   any definition, and so may a renamed schema, enum label, collation or role: the whole
//!   snapshot is read again then, as it is after a statement run on another connection.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Error, Row, Statement};

use super::snapshot::{
    constraints_sql, diff, first_column, functions_sql, read_all, read_functions, read_types,
    schemas_sql, types_sql, CatalogSettings, ObjectKind, Owners, RelationParts, SchemaChange,
    SchemaSnapshot, Scope, SCOPE_SETTING,
};

/// What one statement may have changed in the schema (see the module's documentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    /// It wrote to none of the catalogs a snapshot reads.
    Nothing,
    /// The relations its transaction holds locks on, and which groups of unlocked objects it wrote
    /// to.
    Scoped {
        locked: Vec<u32>,
        /// Those of `locked` held in ACCESS EXCLUSIVE mode, whose dependents are read again.
        exclusive: Vec<u32>,
        /// Which of `locked` it can have changed, when it deleted no catalog row (see [`Written`]);
        /// `None`: every one of them.
        written: Option<Written>,
        /// It wrote to `pg_type` or `pg_enum`: enums and domains are read again.
        types: bool,
        /// It wrote to `pg_constraint`: domain constraints are read again when there are domains.
        constraints: bool,
        functions: bool,
        schemas: bool,
    },
    /// Anything: read the whole snapshot again.
    Everything,
}

/// Catalogs whose rows make up a snapshot: a statement that wrote to none of them changed nothing
/// a snapshot shows.
pub const SNAPSHOT_CATALOGS: [&str; 17] = [
    "pg_class",
    "pg_attribute",
    "pg_attrdef",
    "pg_index",
    "pg_constraint",
    "pg_sequence",
    "pg_trigger",
    "pg_policy",
    "pg_inherits",
    "pg_rewrite",
    "pg_depend",
    "pg_partitioned_table",
    "pg_type",
    "pg_enum",
    "pg_proc",
    "pg_namespace",
    "pg_extension",
];

/// Catalogs of objects whose names definitions print but that a snapshot does not hold
/// (collations, roles in policies, operators and operator classes in index definitions, …): a
/// change to one of them may change any definition.
pub const PRINTED_CATALOGS: [&str; 12] = [
    "pg_collation",
    "pg_authid",
    "pg_operator",
    "pg_opclass",
    "pg_opfamily",
    "pg_am",
    "pg_language",
    "pg_cast",
    "pg_conversion",
    "pg_ts_config",
    "pg_ts_dict",
    "pg_foreign_server",
];

/// Rows a statement inserted, updated and deleted in each catalog it wrote to.
pub type CatalogWrites = BTreeMap<String, (i64, i64, i64)>;

/// Of the relations a transaction holds, those one of its statements can have changed when it
/// deleted no catalog row: the relations it locked first, and those of the catalog rows it
/// inserted or updated, which carry the transaction's `xmin` and a command id (`cmin`) no earlier
/// statement used. A deleted row is no longer visible to tell whose it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub first_locked: Vec<u32>,
    /// The catalogs of [`OWNER_COLUMNS`] it inserted or updated rows in, to look for them.
    pub catalogs: Vec<String>,
}

/// The catalogs whose rows belong to a relation, with the columns naming it (a row of `pg_depend`
/// belongs to the relation that depends: an owned sequence's owner is read from there; a row type
/// to its relation). Written rows in other snapshot catalogs belong to no relation.
const OWNER_COLUMNS: [(&str, &str); 13] = [
    ("pg_class", "x.oid"),
    ("pg_attribute", "x.attrelid"),
    ("pg_attrdef", "x.adrelid"),
    ("pg_index", "x.indrelid"),
    ("pg_constraint", "x.conrelid"),
    ("pg_sequence", "x.seqrelid"),
    ("pg_trigger", "x.tgrelid"),
    ("pg_policy", "x.polrelid"),
    ("pg_inherits", "x.inhrelid"),
    ("pg_rewrite", "x.ev_class"),
    ("pg_partitioned_table", "x.partrelid"),
    ("pg_depend", "x.objid"),
    ("pg_type", "x.typrelid"),
];

/// The condition that finds, through one of `catalog`'s indexes, its rows owned (`owner`, of
/// [`OWNER_COLUMNS`]) by the relations the transaction holds (`$1` of [`reached_sql`]).
fn owned_by_held(catalog: &str, owner: &str) -> String {
    const HELD: &str = "$1::pg_catalog.oid[]";
    match catalog {
        "pg_depend" => format!(
            "x.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND {owner} = ANY({HELD})"
        ),
        // No index of `pg_type` leads from `typrelid`: a relation's row type is its `reltype`,
        // looked up per relation held (a generic plan made for a small `pg_class` scans it whole
        // for `= ANY`).
        "pg_type" => "x.oid = ANY(ARRAY(SELECT c.reltype FROM held h, LATERAL ( \
              SELECT c.reltype FROM pg_catalog.pg_class c WHERE c.oid = h.oid OFFSET 0) c))"
            .to_owned(),
        _ => format!("{owner} = ANY({HELD})"),
    }
}

impl Reach {
    /// What a statement run in the traced session may have changed, from what its transaction
    /// wrote to each catalog (`writes`, the difference around the statement), the relations
    /// it holds locks on, and those it holds in ACCESS EXCLUSIVE mode.
    /// `first_locked`: those of `locked` it locked first.
    pub fn of(writes: &CatalogWrites, [locked, exclusive, first_locked]: [Vec<u32>; 3]) -> Reach {
        let wrote = |catalog: &str| writes.get(catalog).copied().unwrap_or((0, 0, 0));
        let changed = |catalog: &str| wrote(catalog) != (0, 0, 0);
        let updated_or_deleted = |catalog: &str| wrote(catalog).1 != 0 || wrote(catalog).2 != 0;
        if PRINTED_CATALOGS.iter().any(|c| changed(c))
            || changed("pg_extension")
            || updated_or_deleted("pg_namespace")
            || updated_or_deleted("pg_enum")
        {
            return Reach::Everything;
        }
        if !SNAPSHOT_CATALOGS.iter().any(|c| changed(c)) {
            return Reach::Nothing;
        }
        let deleted = SNAPSHOT_CATALOGS.iter().any(|c| wrote(c).2 != 0);
        let written = (!deleted).then(|| Written {
            // Every relation it holds it locked first: nothing to look for.
            catalogs: match first_locked.len() == locked.len() {
                true => Vec::new(),
                false => OWNER_COLUMNS
                    .iter()
                    .filter(|(catalog, _)| {
                        let (inserted, updated, _) = wrote(catalog);
                        inserted != 0 || updated != 0
                    })
                    .map(|(catalog, _)| (*catalog).to_owned())
                    .collect(),
            },
            first_locked,
        });
        Reach::Scoped {
            locked,
            exclusive,
            written,
            types: changed("pg_type") || changed("pg_enum"),
            constraints: changed("pg_constraint"),
            functions: changed("pg_proc"),
            schemas: changed("pg_namespace"),
        }
    }
}

/// The command id a statement's catalog rows start from in [`reached_sql`]: `$5` while `$6` is still
/// the transaction's XID, else 0 (another transaction's commands start from 0 again).
const SINCE: &str = "CASE WHEN pg_catalog.txid_current_if_assigned()::text = $6::text \
  THEN $5::int8 ELSE 0 END";

/// The relations whose parts a statement can have changed: those locked (`$1`) that it wrote to
/// (all of them when `$3` is NULL, else those locked first, `$4`, and those of rows in the catalogs
/// `$3` that carry the transaction's `xmin`, its subtransactions' included, and a command id from
/// `$5` on, when `$6` is still the transaction's XID), the tables of those that are indexes, and
/// the relations of the objects that depend on those of them held in ACCESS EXCLUSIVE mode (`$2`;
/// one level: a dependent prints their names, and its own name changes only under a lock of its
/// own) but for those whose names are still as known (`$7`, and `$8` the JSON array of each one's
/// qualified name and columns' names and types, see [`LiveSchema::printed_names`]; columns added
/// after those are printed in no dependent yet). A relation's row type and its array type count as
/// the relation. Also says whether functions (SQL-standard bodies) or domains depend on them, and
/// the command id the next statement's rows start from (`since`, with the transaction's XID).
/// Sets, local to the transaction, what the reads sent after it in the same round trip read:
/// [`SCOPE_SETTING`] to the relations, [`TYPES_SETTING`] to whether enums and domains are read
/// again (`$9`, or a domain depends on them), [`FUNCTIONS_SETTING`] to whether functions are
/// (`$10`, or one depends on them).
/// Every catalog is reached through its indexes (`OFFSET 0` keeps the planner from joining the
/// whole of `pg_depend`, or of `pg_constraint`, `pg_trigger`, `pg_index`, … for the rows the
/// dependencies name: the generic plan, made once for the catalogs' sizes then, hashed a scan of
/// each), the written rows too: they are looked for among the rows of the relations held (one
/// index scan per catalog, for all of them), not by a scan of each catalog written to, whose cost
/// grew with the schema. Rows the statement wrote for relations not held are not seen then, so
/// `since` may stay below their command ids: a later statement that locks such a relation reads it
/// again, which changes nothing. Each written-row branch compares with [`SINCE`] itself rather
/// than joining a one-row `since`: a join and a scan fewer per branch for the executor to start at
/// each run, whether the branch runs or not.
fn reached_sql() -> String {
    let written: Vec<String> = OWNER_COLUMNS
        .iter()
        .map(|(catalog, owner)| {
            format!(
                "SELECT {owner} AS oid, x.cmin::text::int8 AS cid FROM pg_catalog.{catalog} x \
                  WHERE '{catalog}' = ANY($3::text[]) AND {} \
                    AND pg_catalog.age(x.xmin) <= 0 AND x.cmin::text::int8 >= {SINCE}",
                owned_by_held(catalog, owner)
            )
        })
        .collect();
    format!(
        "WITH held AS (SELECT DISTINCT unnest($1::pg_catalog.oid[]) AS oid), \
since AS (SELECT {SINCE} AS cid), \
written AS ({}), \
locked AS ( \
  SELECT oid FROM held WHERE $3::text[] IS NULL OR oid = ANY($4::pg_catalog.oid[]) \
  UNION SELECT h.oid FROM held h JOIN written w ON w.oid = h.oid \
), \
exclusive AS (SELECT DISTINCT e.oid FROM unnest($2::pg_catalog.oid[]) e (oid) \
  JOIN locked l ON l.oid = e.oid), \
{REACHED}{} \
{REACHED_TAIL} \
UNION ALL SELECT 'scope', 0, pg_catalog.concat( \
  pg_catalog.set_config('{SCOPE_SETTING}', \
    (SELECT COALESCE(pg_catalog.array_agg(oid), '{{}}') FROM relations)::text, true), \
  pg_catalog.set_config('{TYPES_SETTING}', ($9::pg_catalog.bool OR types)::text, true), \
  pg_catalog.set_config('{FUNCTIONS_SETTING}', ($10::pg_catalog.bool OR functions)::text, true)) \
  FROM depending",
        written.join(" UNION ALL "),
        dependents_owners(),
    )
}

/// The catalogs whose rows `pg_depend` can name as depending on a relation or its row type, and
/// which belong to a relation that must be read again when its dependency changed names.
const DEPENDENT_CATALOGS: [&str; 6] = [
    "pg_rewrite",
    "pg_constraint",
    "pg_attrdef",
    "pg_trigger",
    "pg_policy",
    "pg_type",
];

/// `UNION` branches of [`REACHED`]'s `reached`: the owning relation (of [`OWNER_COLUMNS`]) of each
/// dependent in [`DEPENDENT_CATALOGS`], each looked up by its OID index (`LATERAL … OFFSET 0`: a
/// join would be planned, for the small catalogs of a new database, as a scan of the whole catalog).
/// A domain's constraint and a type that is not a row type have no relation (0).
fn dependents_owners() -> String {
    DEPENDENT_CATALOGS
        .iter()
        .filter_map(|catalog| OWNER_COLUMNS.iter().find(|(name, _)| name == catalog))
        .map(|(catalog, owner)| {
            format!(
                " UNION SELECT {owner} FROM deps d, LATERAL ( \
                   SELECT {owner} FROM pg_catalog.{catalog} x \
                    WHERE x.oid = d.objid AND {owner} <> 0 OFFSET 0) x \
                  WHERE d.classid = 'pg_catalog.{catalog}'::pg_catalog.regclass"
            )
        })
        .collect()
}

/// The part of [`reached_sql`] after what the statement wrote, up to the dependents' owners.
const REACHED: &str = "\
known AS ( \
  SELECT k.oid, k.names::jsonb -> 0 AS name, k.names::jsonb -> 1 AS columns \
    FROM unnest($7::pg_catalog.oid[], $8::text[]) k (oid, names) \
), \
renamed AS ( \
  SELECT e.oid FROM exclusive e WHERE NOT EXISTS ( \
    SELECT FROM known k \
     WHERE k.oid = e.oid \
       AND k.name = ( \
         SELECT to_jsonb(format('%I.%I', n.nspname, c.relname)) \
           FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
          WHERE c.oid = e.oid) \
       AND k.columns = ( \
         SELECT coalesce(jsonb_agg(a.names ORDER BY a.attnum), '[]') FROM ( \
           SELECT a.attnum, \
                  jsonb_build_array(quote_ident(a.attname), format_type(a.atttypid, a.atttypmod)) \
                    AS names \
             FROM pg_catalog.pg_attribute a \
            WHERE a.attrelid = e.oid AND a.attnum > 0 AND NOT a.attisdropped \
            ORDER BY a.attnum LIMIT jsonb_array_length(k.columns)) a)) \
), \
row_types AS ( \
  SELECT r.reltype AS oid FROM renamed l, LATERAL ( \
    SELECT c.reltype FROM pg_catalog.pg_class c WHERE c.oid = l.oid AND c.reltype <> 0 OFFSET 0) r \
), \
refs AS ( \
  SELECT 'pg_catalog.pg_class'::pg_catalog.regclass::pg_catalog.oid AS classid, oid FROM renamed \
  UNION ALL SELECT 'pg_catalog.pg_type'::pg_catalog.regclass::pg_catalog.oid, oid FROM row_types \
  UNION ALL SELECT 'pg_catalog.pg_type'::pg_catalog.regclass::pg_catalog.oid, a.typarray \
    FROM row_types r, LATERAL ( \
      SELECT t.typarray FROM pg_catalog.pg_type t WHERE t.oid = r.oid AND t.typarray <> 0 OFFSET 0) a \
), \
deps AS ( \
  SELECT d.classid, d.objid FROM refs, LATERAL ( \
    SELECT d.classid, d.objid FROM pg_catalog.pg_depend d \
     WHERE d.refclassid = refs.classid AND d.refobjid = refs.oid OFFSET 0) d \
), \
reached AS ( \
  SELECT oid FROM locked \
  UNION SELECT d.objid FROM deps d WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass \
";

/// The part of [`reached_sql`] after the relations that own the dependents [`REACHED`] found.
const REACHED_TAIL: &str = "\
), \
relations AS ( \
  SELECT DISTINCT COALESCE( \
    (SELECT i.indrelid FROM pg_catalog.pg_index i WHERE i.indexrelid = r.oid), r.oid) AS oid \
    FROM reached r \
), \
depending AS ( \
  SELECT EXISTS ( \
           SELECT FROM deps d WHERE d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass) \
           AS functions, \
         EXISTS ( \
           SELECT FROM deps d JOIN pg_catalog.pg_type t ON t.oid = d.objid \
            WHERE d.classid = 'pg_catalog.pg_type'::pg_catalog.regclass AND t.typtype = 'd') \
           AS types \
) \
SELECT 'relation', oid, NULL::text FROM relations \
UNION ALL SELECT 'functions', 0, NULL FROM depending WHERE functions \
UNION ALL SELECT 'types', 0, NULL FROM depending WHERE types \
UNION ALL SELECT 'since', (SELECT COALESCE(max(w.cid) + 1, since.cid) FROM written w)::pg_catalog.oid, \
  pg_catalog.txid_current_if_assigned()::text FROM since";

/// Whether the enums, domains and domain constraints are read again after a statement (see
/// [`reached_sql`]).
const TYPES_SETTING: &str = "migagent.types";

/// Whether the functions are read again after a statement (see [`reached_sql`]).
const FUNCTIONS_SETTING: &str = "migagent.functions";

/// `sql`, run only when the setting `gate` says `true`: the plan checks it once, before reading
/// anything.
fn gated(sql: &str, gate: &str) -> String {
    format!("SELECT * FROM ({sql}) AS gated WHERE pg_catalog.current_setting('{gate}')::pg_catalog.bool")
}

/// The rows of the prepared `query` when `wanted`.
async fn query_if(
    client: &Client,
    wanted: bool,
    query: &Statement,
) -> Result<Option<Vec<Row>>, Error> {
    match wanted {
        true => client.query(query, &[]).await.map(Some),
        false => Ok(None),
    }
}

/// What a statement changed in the schema, and whether the session's transaction holds what it
/// held before the read (a read inside the migration's transaction block that was not scoped locks
/// the views it printed: what the transaction holds must be read again then).
pub type Updated = (Vec<SchemaChange>, bool);

/// A database's schema as of the last traced statement, kept up to date by [`LiveSchema::update`].
pub struct LiveSchema {
    schema: SchemaSnapshot,
    /// The objects each relation owns (see [`Owners`]); domain constraints under OID 0.
    owned: HashMap<u32, Vec<(ObjectKind, String)>>,
    /// The scoped queries, prepared once on the session; `None` on a new connection to the same
    /// database until the next scoped read prepares them.
    queries: Option<Queries>,
    /// Where the next statement's catalog rows start (see [`Since`]).
    since: Since,
}

/// The first command id no statement traced so far in the transaction with this XID has written
/// catalog rows with (as far as the scoped reads looked); a later statement's rows have it or a
/// later one. Another transaction's commands start from 0 again.
#[derive(Debug, Clone, Default)]
struct Since {
    command: i64,
    transaction: String,
}

struct Queries {
    /// The schema's relations when the queries were prepared (see [`Queries::outgrown`]).
    prepared_for: usize,
    reached: Statement,
    /// Of the relations [`reached_sql`] found (see [`Scope::Relations`]).
    parts: RelationParts<Statement>,
    /// These three run only when [`reached_sql`] says so (see [`gated`]).
    types: Statement,
    domain_constraints: Statement,
    functions: Statement,
    schemas: Statement,
}

impl Queries {
    async fn prepare(client: &Client, prepared_for: usize) -> Result<Queries, Error> {
        let parts = RelationParts::sql(Scope::Relations);
        let (reached, types, domain_constraints, functions, schemas) = (
            reached_sql(),
            gated(&types_sql(), TYPES_SETTING),
            gated(&constraints_sql(Scope::Domains), TYPES_SETTING),
            gated(&functions_sql(), FUNCTIONS_SETTING),
            schemas_sql(),
        );
        let (reached, parts, types, domain_constraints, functions, schemas) = tokio::try_join!(
            client.prepare(&reached),
            parts.prepare(client),
            client.prepare(&types),
            client.prepare(&domain_constraints),
            client.prepare(&functions),
            client.prepare(&schemas),
        )?;
        Ok(Queries {
            prepared_for,
            reached,
            parts,
            types,
            domain_constraints,
            functions,
            schemas,
        })
    }

    /// Whether the schema grew so much since the queries were prepared that their plans may no
    /// longer fit: a generic plan is made once, for the catalogs' sizes then, and PostgreSQL does
    /// not make it again as they grow. Made on an almost empty database, the plans scan `pg_class`,
    /// `pg_index`, `pg_trigger` and `pg_constraint` whole, which after 2,000 generated files cost
    /// 25 times what an index lookup does. Preparing again whenever the relations have doubled
    /// keeps the reads' cost per statement flat at the price of a few preparations.
    fn outgrown(&self, relations: usize) -> bool {
        relations > 2 * self.prepared_for + 32
    }
}

/// The relations a schema holds (tables, views, materialized views, sequences), the measure of
/// the catalogs' size the scoped reads' plans depend on.
fn relation_count(schema: &SchemaSnapshot) -> usize {
    schema.tables.len()
        + schema.views.len()
        + schema.materialized_views.len()
        + schema.sequences.len()
}

/// Which groups of unlocked objects a statement's reach reads again as a whole.
#[derive(Debug, Clone, Copy)]
struct Groups {
    types: bool,
    functions: bool,
    schemas: bool,
}

impl LiveSchema {
    /// Reads the whole schema of the database `client` is connected to.
    pub async fn read(client: &Client) -> Result<LiveSchema, Error> {
        super::snapshot::with_catalog_settings(client, "", || async {
            let (mut queries, (schema, owners)) =
                tokio::try_join!(Queries::prepare(client, 0), read_all(client))?;
            queries.prepared_for = relation_count(&schema);
            let mut live = LiveSchema {
                schema,
                owned: HashMap::new(),
                queries: Some(queries),
                since: Since::default(),
            };
            live.own(owners);
            Ok(live)
        })
        .await
    }

    /// Reads again what a statement that reached `reach` can have changed, and returns what
    /// changed, as a diff of whole snapshots around the statement would.
    ///
    /// `in_transaction`: the session is in the migration's transaction block, which a scoped read
    /// leaves as it was, locks included (see [`CatalogSettings`]).
    pub async fn update(
        &mut self,
        client: &Client,
        reach: Reach,
        in_transaction: bool,
    ) -> Result<Updated, Error> {
        let unscoped = |changes: Result<Vec<SchemaChange>, Error>| changes.map(|c| (c, false));
        match reach {
            Reach::Nothing => Ok((Vec::new(), true)),
            Reach::Everything => unscoped(self.read_everything(client).await),
            Reach::Scoped {
                locked,
                exclusive,
                written,
                types,
                constraints,
                functions,
                schemas,
            } => {
                let groups = Groups {
                    types: types || (constraints && !self.schema.domains.is_empty()),
                    functions,
                    schemas,
                };
                let relations = relation_count(&self.schema);
                if self.queries.as_ref().is_some_and(|q| q.outgrown(relations)) {
                    self.queries = None;
                }
                if self.queries.is_none() {
                    match Queries::prepare(client, relations).await {
                        Ok(queries) => self.queries = Some(queries),
                        Err(_) => return unscoped(self.read_again(client).await),
                    }
                }
                let scope = Held {
                    locked,
                    exclusive,
                    written,
                };
                match self
                    .read_scoped(client, scope, groups, in_transaction)
                    .await
                {
                    Ok(Some(part)) => {
                        self.since = part.since.clone();
                        Ok((self.replace(part), true))
                    }
                    Ok(None) => unscoped(self.read_everything(client).await),
                    // What failed may be the session's prepared queries (a migration's
                    // `DEALLOCATE ALL`): read whole with them prepared again, so that what the
                    // statement changed is not lost.
                    Err(_) => unscoped(self.read_again(client).await),
                }
            }
        }
    }

    /// Reads the whole schema again with the scoped queries prepared again, and returns what
    /// changed.
    async fn read_again(&mut self, client: &Client) -> Result<Vec<SchemaChange>, Error> {
        let fresh = LiveSchema::read(client).await?;
        let changes = diff(&self.schema, &fresh.schema);
        *self = fresh;
        Ok(changes)
    }

    async fn read_everything(&mut self, client: &Client) -> Result<Vec<SchemaChange>, Error> {
        let (schema, owners) =
            super::snapshot::with_catalog_settings(client, "", || read_all(client)).await?;
        let changes = diff(&self.schema, &schema);
        self.schema = schema;
        self.owned.clear();
        self.own(owners);
        Ok(changes)
    }

    /// The parts a statement can have changed, read again in one round trip: the catalog settings
    /// set in a savepoint (of a transaction block opened for the read outside the migration's), the
    /// relations reached, which the reads after it are scoped to (see [`reached_sql`]), every
    /// part, and the savepoint rolled back, which puts the settings back. `None` when an enum,
    /// domain, function or schema disappeared, which definitions anywhere may print.
    async fn read_scoped(
        &self,
        client: &Client,
        held: Held,
        groups: Groups,
        in_transaction: bool,
    ) -> Result<Option<Part>, Error> {
        let Some(queries) = &self.queries else {
            return Ok(None);
        };
        let (catalogs, first_locked) = match held.written {
            Some(written) => (Some(written.catalogs), written.first_locked),
            None => (None, Vec::new()),
        };
        let (known, names) = self.printed_names(&held.exclusive);
        let params: [&(dyn ToSql + Sync); 10] = [
            &held.locked,
            &held.exclusive,
            &catalogs,
            &first_locked,
            &self.since.command,
            &self.since.transaction,
            &known,
            &names,
            &groups.types,
            &groups.functions,
        ];
        let settings = CatalogSettings::in_savepoint(!in_transaction);
        // Polled in this order, the requests are sent in this order, in one round trip; the
        // savepoint's rollback also ends the aborted state a failed read leaves.
        let (entered, reached, parts, types, domain_constraints, functions, schemas, restored) = tokio::join!(
            settings.enter(client, ""),
            client.query(&queries.reached, &params),
            queries.parts.query(client),
            client.query(&queries.types, &[]),
            client.query(&queries.domain_constraints, &[]),
            client.query(&queries.functions, &[]),
            query_if(client, groups.schemas, &queries.schemas),
            settings.restore(client),
        );
        entered?;
        restored?;
        let read = Read {
            reached: reached?,
            parts: parts?,
            types: types?,
            domain_constraints: domain_constraints?,
            functions: functions?,
            schemas: schemas?,
        };
        let part = self.read_reached(read, groups)?;
        let disappeared = (part.types
            && (!keys_kept(&self.schema.enums, &part.snapshot.enums)
                || !keys_kept(&self.schema.domains, &part.snapshot.domains)))
            || (part.functions && !keys_kept(&self.schema.functions, &part.snapshot.functions))
            || (part.schemas && !self.schema.schemas.is_subset(&part.snapshot.schemas));
        Ok((!disappeared).then_some(part))
    }

    /// Of `relations`, the tables and composite types the schema holds, each with the names its
    /// dependents can print, as [`reached_sql`] reads them: its qualified name and its columns'
    /// names and types, in order.
    fn printed_names(&self, relations: &[u32]) -> (Vec<u32>, Vec<String>) {
        relations
            .iter()
            .filter_map(|oid| {
                let (kind, name) = self.owned.get(oid)?.iter().find(|(kind, _)| {
                    matches!(kind, ObjectKind::Table | ObjectKind::CompositeType)
                })?;
                let columns = match kind {
                    ObjectKind::Table => &self.schema.tables.get(name)?.columns,
                    _ => self.schema.composite_types.get(name)?,
                };
                let columns: Vec<[&str; 2]> = columns
                    .iter()
                    .map(|column| [column.name.as_str(), column.data_type.as_str()])
                    .collect();
                Some((*oid, serde_json::json!([name, columns]).to_string()))
            })
            .unzip()
    }

    /// The part `read` gives: the parts of the relations its `reached` rows name, and the groups
    /// of unlocked objects `groups` or those rows say were read.
    fn read_reached(&self, read: Read, groups: Groups) -> Result<Part, Error> {
        let mut relations = BTreeSet::new();
        let mut since = self.since.clone();
        let Groups {
            mut types,
            mut functions,
            schemas,
        } = groups;
        for row in read.reached {
            let what: &str = row.try_get(0)?;
            match what {
                "relation" => {
                    relations.insert(row.try_get::<_, u32>(1)?);
                }
                "functions" => functions = true,
                "types" => types = true,
                "since" => {
                    since = Since {
                        command: row.try_get::<_, u32>(1)?.into(),
                        transaction: row.try_get::<_, Option<String>>(2)?.unwrap_or_default(),
                    }
                }
                _ => {}
            }
        }
        let mut part = Part {
            relations: relations.into_iter().collect(),
            snapshot: SchemaSnapshot::default(),
            owners: Owners::new(),
            types,
            functions,
            schemas,
            since,
        };
        read.parts.read(&mut part.snapshot, &mut part.owners)?;
        if types {
            read_types(
                &read.types,
                &read.domain_constraints,
                &mut part.snapshot,
                &mut part.owners,
            )?;
        }
        if functions {
            read_functions(&read.functions, &mut part.snapshot)?;
        }
        if let Some(schemas) = &read.schemas {
            part.snapshot.schemas = first_column(schemas)?;
        }
        Ok(part)
    }

    /// Puts `part` in place of what it was read again for, and returns what changed.
    fn replace(&mut self, part: Part) -> Vec<SchemaChange> {
        let mut before = SchemaSnapshot::default();
        let mut owners_of_replaced: Vec<u32> = part.relations.clone();
        if part.types {
            before.enums = std::mem::take(&mut self.schema.enums);
            before.domains = std::mem::take(&mut self.schema.domains);
            owners_of_replaced.push(0);
        }
        if part.functions {
            before.functions = std::mem::take(&mut self.schema.functions);
        }
        if part.schemas {
            before.schemas = std::mem::take(&mut self.schema.schemas);
        }
        for oid in owners_of_replaced {
            for (kind, name) in self.owned.remove(&oid).unwrap_or_default() {
                move_object(&mut self.schema, &mut before, kind, &name);
            }
        }
        let changes = diff(&before, &part.snapshot);
        merge(&mut self.schema, part.snapshot);
        self.own(part.owners);
        changes
    }

    fn own(&mut self, owners: Owners) {
        for (oid, kind, name) in owners {
            self.owned.entry(oid).or_default().push((kind, name));
        }
    }

    /// The schema as kept so far.
    pub fn schema(&self) -> &SchemaSnapshot {
        &self.schema
    }
}

/// The rows of a scoped read's round trip (see [`LiveSchema::read_scoped`]): those of
/// [`reached_sql`], then of the reads it scoped; the groups' rows are empty when it did not ask
/// for them.
struct Read {
    reached: Vec<Row>,
    parts: RelationParts<Vec<Row>>,
    types: Vec<Row>,
    domain_constraints: Vec<Row>,
    functions: Vec<Row>,
    schemas: Option<Vec<Row>>,
}

/// What was read again after a statement.
struct Part {
    /// The relations whose parts were read (every object they own is in `snapshot`).
    relations: Vec<u32>,
    snapshot: SchemaSnapshot,
    owners: Owners,
    /// Enums, domains and domain constraints were read as a whole; so were functions, schemas.
    types: bool,
    functions: bool,
    schemas: bool,
    /// Where the next statement's rows start.
    since: Since,
}

/// The relations a statement's transaction holds, and those it can have written to (see
/// [`Reach::Scoped`]).
struct Held {
    locked: Vec<u32>,
    exclusive: Vec<u32>,
    written: Option<Written>,
}

/// Whether every key of `before` is still in `after`.
fn keys_kept<T>(before: &BTreeMap<String, T>, after: &BTreeMap<String, T>) -> bool {
    before.keys().all(|name| after.contains_key(name))
}

/// Moves the object `kind` `name` from `from` to `to`.
fn move_object(from: &mut SchemaSnapshot, to: &mut SchemaSnapshot, kind: ObjectKind, name: &str) {
    fn take<T>(from: &mut BTreeMap<String, T>, to: &mut BTreeMap<String, T>, name: &str) {
        if let Some(object) = from.remove(name) {
            to.insert(name.to_owned(), object);
        }
    }
    match kind {
        ObjectKind::Table => take(&mut from.tables, &mut to.tables, name),
        ObjectKind::View => take(&mut from.views, &mut to.views, name),
        ObjectKind::MaterializedView => take(
            &mut from.materialized_views,
            &mut to.materialized_views,
            name,
        ),
        ObjectKind::CompositeType => take(&mut from.composite_types, &mut to.composite_types, name),
        ObjectKind::Sequence => take(&mut from.sequences, &mut to.sequences, name),
        ObjectKind::Index => take(&mut from.indexes, &mut to.indexes, name),
        ObjectKind::Constraint => take(&mut from.constraints, &mut to.constraints, name),
        ObjectKind::Trigger => take(&mut from.triggers, &mut to.triggers, name),
        ObjectKind::Policy => take(&mut from.policies, &mut to.policies, name),
        ObjectKind::Enum => take(&mut from.enums, &mut to.enums, name),
        ObjectKind::Domain => take(&mut from.domains, &mut to.domains, name),
        ObjectKind::Function => take(&mut from.functions, &mut to.functions, name),
        ObjectKind::Schema | ObjectKind::Extension | ObjectKind::Column => {}
    }
}

/// Adds every object of `part` to `into`.
fn merge(into: &mut SchemaSnapshot, part: SchemaSnapshot) {
    into.schemas.extend(part.schemas);
    into.extensions.extend(part.extensions);
    into.tables.extend(part.tables);
    into.composite_types.extend(part.composite_types);
    into.views.extend(part.views);
    into.materialized_views.extend(part.materialized_views);
    into.sequences.extend(part.sequences);
    into.enums.extend(part.enums);
    into.domains.extend(part.domains);
    into.constraints.extend(part.constraints);
    into.indexes.extend(part.indexes);
    into.functions.extend(part.functions);
    into.triggers.extend(part.triggers);
    into.policies.extend(part.policies);
}
