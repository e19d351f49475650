//! The catalog model introspected from a real database against the one static replay builds from
//! the same history: histories exercising every feature of the model, and every history under
//! `fixtures/`, applied to a real database and compared through a normalized dump. Where static
//! replay is legitimately weaker (a type it cannot know, an expression PostgreSQL normalizes), the
//! test names the object and asserts the exact introspected value.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Instant;

mod common;

use migagent::migration::{self, DiscoverOptions};
use migagent::review::DEFAULT_MAX_FILE_SIZE;
use migagent::schema::{self, Catalog, ConstraintKind, Identity, TypeKind};
use migagent::shadow::cluster::EphemeralCluster;
use migagent::sql::{self, ObjectName};
use sqlparser::ast::DataType;
use tokio_postgres::Client;

/// One migration of a history: its text and the parts of it its tool executes going up.
struct MigrationText {
    text: String,
    sections: Vec<Range<usize>>,
}

/// A history: its migrations, in order.
type History = Vec<MigrationText>;

/// A history of whole files of SQL.
fn history(migrations: &[&str]) -> History {
    migrations
        .iter()
        .map(|text| MigrationText {
            text: (*text).to_owned(),
            sections: std::iter::once(0..text.len()).collect(),
        })
        .collect()
}

/// Replays the history statically, each file as the next migration, as a review does.
fn replay(history: &History) -> Catalog {
    let mut catalog = Catalog::default();
    for migration in history {
        catalog.begin_migration();
        for statement in &sql::parse(&migration.text, &migration.sections).statements {
            catalog.apply(&migration.text, statement);
        }
    }
    catalog
}

/// Applies the history to a real database one statement at a time, as autocommit statements
/// (`CREATE INDEX CONCURRENTLY` cannot run in a multi-statement batch).
async fn apply(client: &Client, history: &History) {
    for migration in history {
        for statement in &sql::parse(&migration.text, &migration.sections).statements {
            let sql = &migration.text[statement.range.clone()];
            client
                .batch_execute(sql)
                .await
                .unwrap_or_else(|err| panic!("{sql}: {err}"));
        }
    }
}

/// The catalog as `key → description` lines, with column and domain types in PostgreSQL's
/// canonical spelling (`types`, from [`canonical_types`]) and no origins: two catalogs with equal
/// dumps answer every question of the rules alike.
type Dump = BTreeMap<String, String>;

fn dump(catalog: &Catalog, types: &HashMap<String, String>) -> Dump {
    let type_name = |data_type: &Option<DataType>| match data_type {
        Some(data_type) => types[&data_type.to_string()].clone(),
        None => "unknown".to_owned(),
    };
    let mut lines = Dump::new();
    for relation in catalog.relations() {
        let columns: Vec<&str> = relation.columns.iter().map(|c| c.name.as_str()).collect();
        let partition_of = relation
            .partition_of
            .as_ref()
            .map_or(String::new(), |parent| format!(" partition of {parent}"));
        let key = relation
            .partition_key
            .as_ref()
            .map_or(String::new(), |key| {
                format!(" by {} ({})", key.strategy, key.expressions.join(", "))
            });
        lines.insert(
            format!("relation {}", relation.name),
            format!(
                "{:?}{partition_of}{key} ({})",
                relation.kind,
                columns.join(", ")
            ),
        );
        for column in &relation.columns {
            lines.insert(
                format!("column {}.{}", relation.name, column.name),
                format!(
                    "{}{}{}{}{}",
                    type_name(&column.data_type),
                    if column.not_null { " not null" } else { "" },
                    column
                        .default
                        .as_ref()
                        .map_or(String::new(), |d| format!(" default {d}")),
                    column
                        .identity
                        .map_or(String::new(), |identity| format!(" {}", identity.sql())),
                    if column.generated { " generated" } else { "" },
                ),
            );
        }
        for constraint in &relation.constraints {
            let kind = match &constraint.kind {
                ConstraintKind::PrimaryKey { columns } => {
                    format!("primary key ({})", columns.join(", "))
                }
                ConstraintKind::Unique { columns } => format!("unique ({})", columns.join(", ")),
                ConstraintKind::Check { expression } => format!("check ({expression})"),
                ConstraintKind::ForeignKey {
                    columns,
                    references,
                    referenced_columns,
                    actions,
                } => format!(
                    "foreign key ({}) references {references} ({}){actions}",
                    columns.join(", "),
                    referenced_columns.join(", ")
                ),
                ConstraintKind::Exclude => "exclude".to_owned(),
            };
            let validity = if constraint.validated {
                ""
            } else {
                " not valid"
            };
            lines.insert(
                format!("constraint {}.{}", relation.name, constraint.name),
                format!("{kind}{validity}"),
            );
        }
    }
    for index in catalog.indexes() {
        lines.insert(
            format!("index {}", index.name),
            format!(
                "{}on {} ({}){}",
                if index.unique { "unique " } else { "" },
                index.table,
                index.columns.join(", "),
                index
                    .predicate
                    .as_ref()
                    .map_or(String::new(), |p| format!(" where {p}"))
            ),
        );
    }
    for user_type in catalog.user_types() {
        let kind = match &user_type.kind {
            TypeKind::Enum { values } => format!("enum ({})", values.join(", ")),
            TypeKind::Domain { base, has_check } => format!(
                "domain of {}{}",
                type_name(base),
                if *has_check { " with check" } else { "" }
            ),
            // Attribute types are spelled differently by the two models: their names must agree.
            TypeKind::Composite { attributes } => {
                let names: Vec<&str> = attributes.iter().map(|(name, _)| name.as_str()).collect();
                format!("composite ({})", names.join(", "))
            }
            TypeKind::Other => "other".to_owned(),
        };
        lines.insert(format!("type {}", user_type.name), kind);
    }
    for sequence in catalog.sequences() {
        let owner = sequence
            .owned_by
            .as_ref()
            .map_or(String::new(), |(table, column)| {
                format!("owned by {table}.{column}")
            });
        lines.insert(format!("sequence {}", sequence.name), owner);
    }
    lines
}

/// Every column and domain type of the catalogs in PostgreSQL's own spelling: the two models spell
/// one type differently (`VARCHAR(10)` as written, `CHARACTER VARYING(10)` from `format_type`), so
/// the server that knows both says what each one is. Types are resolved with every user schema on
/// the search path (static replay keeps them as written, relative to the path they were written
/// under).
async fn canonical_types(client: &Client, catalogs: &[&Catalog]) -> HashMap<String, String> {
    let mut written: Vec<String> = catalogs
        .iter()
        .flat_map(|catalog| {
            let columns = catalog
                .relations()
                .flat_map(|r| r.columns.iter().filter_map(|c| c.data_type.clone()));
            let domains = catalog.user_types().filter_map(|t| match &t.kind {
                TypeKind::Domain { base, .. } => base.clone(),
                _ => None,
            });
            columns.chain(domains).collect::<Vec<_>>()
        })
        .map(|data_type| data_type.to_string())
        .collect();
    written.sort();
    written.dedup();
    let schemas: Vec<String> = client
        .query(
            "SELECT quote_ident(nspname) FROM pg_namespace \
             WHERE nspname !~ '^pg_' AND nspname <> 'information_schema' ORDER BY nspname",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    let columns: Vec<String> = written
        .iter()
        .enumerate()
        .map(|(i, data_type)| format!("c{i} {data_type}"))
        .collect();
    let probe = format!(
        "SET search_path TO {}; CREATE TEMP TABLE type_probe ({})",
        schemas.join(", "),
        columns.join(", ")
    );
    client
        .batch_execute(&probe)
        .await
        .unwrap_or_else(|err| panic!("{probe}: {err}"));
    let rows = client
        .query(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute \
             WHERE attrelid = 'type_probe'::regclass AND attnum > 0 ORDER BY attnum",
            &[],
        )
        .await
        .unwrap();
    client
        .batch_execute("DROP TABLE type_probe; RESET search_path")
        .await
        .unwrap();
    written
        .into_iter()
        .zip(rows.iter().map(|row| row.get::<_, String>(0)))
        .collect()
}

/// Where the introspected model must differ from the replayed one: the dump key and the exact
/// introspected line.
type Expected<'a> = &'a [(&'a str, &'a str)];

/// Applies `history` to a fresh database, introspects it and compares the dumps: equal but for
/// `better`, where the replayed line must differ and the introspected one must be exactly as
/// given.
async fn compare(
    cluster: &EphemeralCluster,
    database: &str,
    history: &History,
    better: Expected<'_>,
) {
    common::connect(cluster, "postgres")
        .await
        .batch_execute(&format!("CREATE DATABASE {database}"))
        .await
        .unwrap();
    let client = common::connect(cluster, database).await;
    apply(&client, history).await;
    let introspected = schema::introspect(&client)
        .await
        .unwrap_or_else(|err| panic!("introspect {database}: {err}"));
    let replayed = replay(history);
    let types = canonical_types(&client, &[&introspected, &replayed]).await;
    let (actual, mut expected) = (dump(&introspected, &types), dump(&replayed, &types));
    for (key, line) in better {
        assert_ne!(
            expected.get(*key).map(String::as_str),
            Some(*line),
            "{database}: static replay already gets {key} right; drop it from the list"
        );
        expected.insert((*key).to_owned(), (*line).to_owned());
    }
    let differences: Vec<String> = actual
        .keys()
        .chain(expected.keys())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .filter(|key| actual.get(*key) != expected.get(*key))
        .map(|key| {
            format!(
                "{key}\n    introspected: {:?}\n    expected:     {:?}",
                actual.get(key),
                expected.get(key)
            )
        })
        .collect();
    assert!(
        differences.is_empty(),
        "{database}: the introspected model differs:\n{}",
        differences.join("\n")
    );
}

/// Quoted camelCase identifiers, an enum with a value added in between, serials, a unique index,
/// foreign keys added afterwards, column type and default changes (a Prisma history).
const PRISMA: &[&str] = &[
    r#"
CREATE TYPE "Role" AS ENUM ('USER', 'ADMIN');
CREATE TABLE "User" (
    "id" SERIAL NOT NULL,
    "email" TEXT NOT NULL,
    "name" TEXT,
    "role" "Role" NOT NULL DEFAULT 'USER',
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "User_pkey" PRIMARY KEY ("id")
);
CREATE TABLE "Post" (
    "id" SERIAL NOT NULL,
    "title" VARCHAR(255) NOT NULL,
    "authorId" INTEGER NOT NULL,
    CONSTRAINT "Post_pkey" PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX "User_email_key" ON "User"("email");
ALTER TABLE "Post" ADD CONSTRAINT "Post_authorId_fkey" FOREIGN KEY ("authorId")
    REFERENCES "User"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
"#,
    r#"
ALTER TYPE "Role" ADD VALUE 'MODERATOR' BEFORE 'ADMIN';
ALTER TABLE "Post" ADD COLUMN "published" BOOLEAN NOT NULL DEFAULT false,
ALTER COLUMN "title" SET DATA TYPE TEXT;
CREATE TABLE "Comment" ("id" TEXT NOT NULL, "postId" INTEGER NOT NULL,
    CONSTRAINT "Comment_pkey" PRIMARY KEY ("id"));
CREATE INDEX "Comment_postId_idx" ON "Comment"("postId");
ALTER TABLE "Comment" ADD CONSTRAINT "Comment_postId_fkey" FOREIGN KEY ("postId")
    REFERENCES "Post"("id") ON DELETE CASCADE ON UPDATE CASCADE;
"#,
];

/// Constraints through their life: NOT VALID then validated, the CHECK-then-SET NOT NULL pattern,
/// a dropped constraint, unique, exclusion and generated names, inline and table constraints.
const CONSTRAINTS: &[&str] = &[
    "CREATE TABLE users (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, email text,
         age int CHECK (age >= 0), UNIQUE (email));
     CREATE TABLE rooms (id int PRIMARY KEY, during tstzrange,
         EXCLUDE USING gist (during WITH &&));",
    "ALTER TABLE users ADD CONSTRAINT users_email_not_null CHECK (email IS NOT NULL) NOT VALID;
     ALTER TABLE users ADD COLUMN room_id int;
     ALTER TABLE users ADD CONSTRAINT users_room_fk FOREIGN KEY (room_id) REFERENCES rooms NOT VALID;
     ALTER TABLE users ADD CHECK (age < 200);",
    "ALTER TABLE users VALIDATE CONSTRAINT users_email_not_null;
     ALTER TABLE users ALTER COLUMN email SET NOT NULL;
     ALTER TABLE users DROP CONSTRAINT users_email_not_null;
     ALTER TABLE users VALIDATE CONSTRAINT users_room_fk;
     CREATE TABLE bookings (room_id int REFERENCES rooms (id), user_id bigint,
         FOREIGN KEY (user_id) REFERENCES users, CONSTRAINT one_per_user UNIQUE (user_id, room_id));",
];

/// Partitioned tables (their keys too): partitions created and attached, an index on the parent
/// only, indexes the partitions get from their parent, a detached partition.
const PARTITIONS: &[&str] = &[
    "CREATE TABLE measurements (city_id int NOT NULL, logdate date NOT NULL, peak int)
         PARTITION BY RANGE (logdate);
     CREATE TABLE measurements_2023 PARTITION OF measurements
         FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');
     CREATE INDEX measurements_city_idx ON measurements (city_id);",
    "CREATE INDEX measurements_logdate_idx ON ONLY measurements (logdate);
     CREATE TABLE measurements_2024 (LIKE measurements INCLUDING DEFAULTS);
     ALTER TABLE measurements_2024 ADD CONSTRAINT y2024
         CHECK (logdate >= DATE '2024-01-01' AND logdate < DATE '2025-01-01');
     ALTER TABLE measurements ATTACH PARTITION measurements_2024
         FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
     CREATE TABLE measurements_2022 PARTITION OF measurements
         FOR VALUES FROM ('2022-01-01') TO ('2023-01-01');
     ALTER TABLE measurements DETACH PARTITION measurements_2022;
     CREATE TABLE readings (sensor text, at date, value int) PARTITION BY LIST (lower(sensor));
     CREATE TABLE buckets (id bigint, \"Kind\" text) PARTITION BY HASH (id, \"Kind\");",
];

/// Enums, domains with and without checks, composite and range types; renamed types and values.
const TYPES: &[&str] = &[
    "CREATE TYPE mood AS ENUM ('sad', 'ok');
     CREATE DOMAIN positive AS integer CHECK (VALUE > 0);
     CREATE DOMAIN label AS varchar(20) NOT NULL;
     CREATE TYPE point3 AS (x float8, y float8, z float8);
     CREATE TYPE floatrange AS RANGE (subtype = float8);
     CREATE TABLE readings (id int, mood mood, amount positive, tag label, at point3,
         span floatrange, moods mood[]);",
    "ALTER TYPE mood ADD VALUE 'happy';
     ALTER TYPE mood ADD VALUE IF NOT EXISTS 'ok';
     ALTER TYPE mood RENAME VALUE 'sad' TO 'blue';
     ALTER TYPE point3 RENAME TO vector3;
     ALTER DOMAIN label ADD CONSTRAINT label_short CHECK (length(VALUE) < 10);",
];

/// Sequences: serial, identity, a sequence owned by a column then by nothing, identity dropped.
const SEQUENCES: &[&str] = &[
    "CREATE TABLE counters (id serial PRIMARY KEY, big bigserial,
         ident int GENERATED BY DEFAULT AS IDENTITY, n int);
     CREATE SEQUENCE counters_n_seq OWNED BY counters.n;
     CREATE SEQUENCE free_seq;
     CREATE SEQUENCE loose_seq OWNED BY counters.n;",
    "ALTER SEQUENCE loose_seq OWNED BY NONE;
     ALTER TABLE counters ALTER COLUMN ident DROP IDENTITY;
     ALTER TABLE counters ALTER COLUMN n SET NOT NULL,
         ALTER COLUMN n ADD GENERATED ALWAYS AS IDENTITY;",
];

/// Views, materialized views, tables copied with LIKE or built AS SELECT (whose column types
/// static replay cannot know), generated columns.
const DERIVED: &[&str] = &[
    "CREATE TABLE items (id int PRIMARY KEY, price numeric(10, 2) NOT NULL DEFAULT 0,
         qty int, total numeric GENERATED ALWAYS AS (price * qty) STORED);
     CREATE VIEW item_prices AS SELECT id, price AS amount FROM items;
     CREATE MATERIALIZED VIEW item_count AS SELECT count(*) AS n FROM items;
     CREATE UNIQUE INDEX item_count_n ON item_count (n);
     CREATE TABLE items_copy (LIKE items INCLUDING ALL);
     CREATE TABLE cheap AS SELECT id, price FROM items WHERE price < 10;",
];

/// Renames of every kind, and drops that take dependent objects with them.
const RENAMES: &[&str] = &[
    "CREATE SCHEMA app;
     CREATE TABLE app.orders (id bigserial PRIMARY KEY, customer_id bigint, note text,
         placed_at timestamptz, CHECK (note <> ''));
     CREATE INDEX orders_customer_idx ON app.orders (customer_id);
     CREATE INDEX orders_lower_note ON app.orders (lower(note)) WHERE placed_at IS NOT NULL;
     CREATE TABLE legacy (id int PRIMARY KEY, dropped int, kept int);
     CREATE INDEX legacy_dropped_idx ON legacy (dropped);",
    "ALTER INDEX app.orders_customer_idx RENAME TO orders_by_customer;
     ALTER TABLE app.orders RENAME TO purchases;
     ALTER TABLE app.purchases RENAME COLUMN note TO remark;
     ALTER SCHEMA app RENAME TO shop;
     ALTER TABLE legacy DROP COLUMN dropped;
     ALTER TABLE legacy SET SCHEMA shop;
     ALTER TABLE shop.legacy RENAME CONSTRAINT legacy_pkey TO legacy_key;",
];

/// Schemas and the search path: objects created under another path, and types named relative to
/// it.
const SEARCH_PATH: &[&str] = &[
    "CREATE SCHEMA billing; SET search_path TO billing, public;
     CREATE TYPE state AS ENUM ('open', 'paid');
     CREATE TABLE invoices (id int PRIMARY KEY, state state NOT NULL DEFAULT 'open');
     CREATE TABLE public.customers (id int PRIMARY KEY);",
    "ALTER TABLE billing.invoices ADD COLUMN customer_id int REFERENCES customers (id);
     CREATE INDEX ON billing.invoices (customer_id);",
];

/// DDL static replay reads inside a DO block, and DDL it cannot see (built with EXECUTE).
const DO_BLOCKS: &[&str] = &[
    "CREATE TABLE accounts (id int PRIMARY KEY, email text);
     DO $$ BEGIN
         ALTER TABLE accounts ADD CONSTRAINT accounts_email_key UNIQUE (email);
     EXCEPTION WHEN duplicate_object THEN null;
     END $$;",
    "DO $$ BEGIN
         EXECUTE 'CREATE TABLE audit_' || '2024 (id int)';
     END $$;",
];

/// The history of every migrations directory under `fixtures/`: a directory where discovery
/// finds migrations, or else its subdirectories (`supabase/migrations`).
fn fixture_histories() -> Vec<(PathBuf, History)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut histories = Vec::new();
    let mut pending = vec![root];
    while let Some(dir) = pending.pop() {
        let options = DiscoverOptions::default();
        let sets = migration::discover(std::slice::from_ref(&dir), &options).sets;
        if sets.is_empty() {
            let mut subdirs: Vec<PathBuf> = std::fs::read_dir(&dir)
                .unwrap()
                .map(|entry| entry.unwrap().path())
                .filter(|path| path.is_dir())
                .collect();
            subdirs.sort();
            pending.extend(subdirs.into_iter().rev());
        }
        for set in sets {
            let history = set
                .migrations
                .iter()
                .map(|reference| {
                    let loaded =
                        migration::load(reference, set.tool, &options, DEFAULT_MAX_FILE_SIZE)
                            .unwrap_or_else(|err| panic!("{}: {err}", reference.path.display()));
                    MigrationText {
                        sections: loaded.sections.iter().map(|s| s.range.clone()).collect(),
                        text: loaded.text,
                    }
                })
                .collect();
            histories.push((set.dir, history));
        }
    }
    histories
}

/// Each history, and where the introspected model is better than the replayed one (the dump key
/// and the exact introspected line).
const HISTORIES: &[(&str, &[&str], Expected)] = &[
    (
        "prisma",
        PRISMA,
        // PostgreSQL stores a default coerced to the column's type.
        &[(
            "column public.User.role",
            r#""Role" not null default 'USER'::"Role""#,
        )],
    ),
    ("constraints", CONSTRAINTS, &[]),
    (
        "partitions",
        PARTITIONS,
        // PostgreSQL stores a typed literal as a cast.
        &[(
            "constraint public.measurements_2024.y2024",
            "check (logdate >= '2024-01-01'::date AND logdate < '2025-01-01'::date)",
        )],
    ),
    (
        "types",
        TYPES,
        // sqlparser cannot read `CREATE DOMAIN … NOT NULL`: replay falls back to the name only.
        &[(
            "type public.label",
            "domain of character varying(20) with check",
        )],
    ),
    ("sequences", SEQUENCES, &[]),
    (
        "derived",
        DERIVED,
        &[
            // The column types of views and of CREATE TABLE AS come from the query.
            ("column public.item_prices.id", "integer"),
            ("column public.item_prices.amount", "numeric(10,2)"),
            ("column public.item_count.n", "bigint"),
            ("column public.cheap.id", "integer"),
            ("column public.cheap.price", "numeric(10,2)"),
            // A gap of replay: it does not model what `LIKE … INCLUDING ALL` copies besides
            // defaults (generated columns, the primary key and its index).
            ("column public.items_copy.total", "numeric generated"),
            (
                "constraint public.items_copy.items_copy_pkey",
                "primary key (id)",
            ),
            (
                "index public.items_copy_pkey",
                "unique on public.items_copy (id)",
            ),
        ],
    ),
    (
        "renames",
        RENAMES,
        &[
            // A gap of replay: it renames the schema but not the sequence a default names in
            // its text.
            (
                "column shop.purchases.id",
                "bigint not null default nextval('shop.orders_id_seq'::regclass)",
            ),
            // PostgreSQL stores the literal cast to the column's type.
            (
                "constraint shop.purchases.orders_note_check",
                "check (remark <> ''::text)",
            ),
        ],
    ),
    (
        "search_path",
        SEARCH_PATH,
        // The default's cast names the type as seen from the search path `public`.
        &[(
            "column billing.invoices.state",
            "state not null default 'open'::billing.state",
        )],
    ),
    (
        "do_blocks",
        DO_BLOCKS,
        // SQL built at run time is invisible to replay.
        &[
            ("relation public.audit_2024", "Table (id)"),
            ("column public.audit_2024.id", "integer"),
        ],
    ),
];

/// Where the introspected model of a fixture history is better, by directory (relative to
/// `fixtures/`).
const FIXTURES: &[(&str, Expected)] = &[
    (
        "discovery/atlas",
        // PostgreSQL stores a default coerced to the column's type.
        &[(
            "column public.orders.status",
            "text not null default 'new'::text",
        )],
    ),
    (
        "discovery/flyway",
        // A view's column types come from its query.
        &[
            ("column public.account_summary.id", "bigint"),
            ("column public.account_summary.name", "text"),
            ("column public.account_summary.balance", "numeric(12,2)"),
        ],
    ),
];

#[test]
fn introspection_matches_replay_where_replay_can_know() {
    let Some(cluster) = common::cluster_or_skip() else {
        return;
    };
    common::runtime().block_on(async {
        for (name, migrations, better) in HISTORIES {
            compare(&cluster, name, &history(migrations), better).await;
        }
    });
}

#[test]
fn introspection_matches_replay_on_every_fixture_history() {
    let Some(cluster) = common::cluster_or_skip() else {
        return;
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let histories = fixture_histories();
    let compared: Vec<String> = histories
        .iter()
        .map(|(dir, _)| dir.strip_prefix(&root).unwrap().display().to_string())
        .collect();
    // Every fixture directory with migrations (not the empty one).
    assert_eq!(
        compared,
        [
            "discovery/atlas",
            "discovery/dbmate",
            "discovery/diesel",
            "discovery/drizzle",
            "discovery/flyway",
            "discovery/golang-migrate",
            "discovery/liquibase",
            "discovery/plain",
            "discovery/prisma",
            "discovery/sqlx",
            "discovery/supabase/migrations",
            "example/migrations"
        ]
    );
    common::runtime().block_on(async {
        for (number, ((_, history), dir)) in histories.iter().zip(&compared).enumerate() {
            let better = FIXTURES
                .iter()
                .find(|(fixture, _)| fixture == dir)
                .map_or(&[][..], |(_, better)| *better);
            compare(&cluster, &format!("fixture_{number}"), history, better).await;
        }
    });
}

/// The introspected model answers the rules' questions: a validated NOT NULL check, owned
/// sequences, and what is new once the reviewed migration is replayed on top of it.
#[test]
fn introspected_baseline_answers_the_rules_questions() {
    let Some(cluster) = common::cluster_or_skip() else {
        return;
    };
    common::runtime().block_on(async {
        let client = common::connect(&cluster, "postgres").await;
        client
            .batch_execute(
                "CREATE TABLE users (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                     email text, nick text);
                 ALTER TABLE users ADD CONSTRAINT email_present CHECK (email IS NOT NULL);
                 ALTER TABLE users ADD CONSTRAINT nick_present CHECK (nick IS NOT NULL) NOT VALID;
                 SET search_path TO pg_catalog;",
            )
            .await
            .unwrap();
        let mut catalog = schema::introspect(&client).await.unwrap();
        // The session's own search path is left as it was.
        let path: String = client
            .query_one("SHOW search_path", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(path, "pg_catalog");

        let users = ObjectName::new(None, "users");
        assert!(catalog.has_validated_not_null_check(&users, "email"));
        assert!(!catalog.has_validated_not_null_check(&users, "nick"));
        let id = catalog.column(&users, "id").unwrap();
        assert!(id.identity == Some(Identity::Always) && id.not_null);
        assert_eq!(id.data_type, Some(DataType::BigInt(None)));
        let sequence = catalog
            .sequence(&ObjectName::new(None, "users_id_seq"))
            .unwrap();
        assert_eq!(
            sequence.owned_by,
            Some((ObjectName::new(Some("public"), "users"), "id".to_owned()))
        );
        // Every option, as CREATE SEQUENCE takes it: what a down migration re-creates it with.
        assert_eq!(
            sequence.options,
            [
                "AS bigint",
                "INCREMENT BY 1",
                "MINVALUE 1",
                "MAXVALUE 9223372036854775807",
                "START WITH 1",
                "CACHE 1",
                "NO CYCLE"
            ]
        );

        catalog.begin_migration();
        let migration = "CREATE TABLE sessions (id uuid PRIMARY KEY);\
                         ALTER TABLE users ADD COLUMN age int;";
        for statement in &sql::parse_text(migration).statements {
            catalog.apply(migration, statement);
        }
        assert!(!catalog.is_new_relation(&users));
        assert!(!catalog.is_new_column(&users, "email"));
        assert!(catalog.is_new_column(&users, "age"));
        assert!(catalog.is_new_relation(&ObjectName::new(None, "sessions")));
    });
}

#[test]
fn introspection_of_a_hundred_tables_is_quick() {
    let Some(cluster) = common::cluster_or_skip() else {
        return;
    };
    common::runtime().block_on(async {
        let client = common::connect(&cluster, "postgres").await;
        let mut ddl = String::from("CREATE TYPE state AS ENUM ('new', 'done');");
        for table in 0..100u32 {
            ddl.push_str(&format!(
                "CREATE TABLE t{table} (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, \
                 parent_id bigint REFERENCES t{parent} (id), name text NOT NULL, \
                 state state DEFAULT 'new', amount numeric(10, 2) CHECK (amount >= 0), \
                 created_at timestamptz NOT NULL DEFAULT now(), note varchar(200));\
                 CREATE INDEX t{table}_parent_idx ON t{table} (parent_id);\
                 CREATE VIEW v{table} AS SELECT id, name FROM t{table};",
                parent = table.saturating_sub(1)
            ));
        }
        client.batch_execute(&ddl).await.unwrap();
        schema::introspect(&client).await.unwrap(); // warm the catalog caches
        let runs = 10;
        let started = Instant::now();
        let mut catalog = Catalog::default();
        for _ in 0..runs {
            catalog = schema::introspect(&client).await.unwrap();
        }
        let each = started.elapsed() / runs;
        eprintln!(
            "introspection of {} relations, {} indexes, {} sequences: {each:?} each",
            catalog.relations().count(),
            catalog.indexes().count(),
            catalog.sequences().count()
        );
        assert_eq!(catalog.relations().count(), 200);
        assert_eq!(catalog.indexes().count(), 200);
        assert_eq!(catalog.sequences().count(), 100);
    });
}
