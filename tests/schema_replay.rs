//! Static replay of realistic migration histories: the questions rules ask of the model after each
//! migration, and a smoke test over the shared corpus of real histories.

use std::path::{Path, PathBuf};

use migagent::schema::{Catalog, ConstraintKind, RelationKind, TypeKind};
use migagent::sql::{self, ObjectName};

mod common;

/// Replays one migration file as the next migration of the history.
fn migrate(catalog: &mut Catalog, text: &str) {
    catalog.begin_migration();
    let parsed = sql::parse_text(text);
    for statement in &parsed.statements {
        catalog.apply(text, statement);
    }
}

fn history(migrations: &[&str]) -> Catalog {
    let mut catalog = Catalog::default();
    for migration in migrations {
        migrate(&mut catalog, migration);
    }
    catalog
}

/// `name` or `schema.name`, as written after case folding.
fn name(text: &str) -> ObjectName {
    match text.split_once('.') {
        Some((schema, name)) => ObjectName::new(Some(schema), name),
        None => ObjectName::new(None, text),
    }
}

fn type_of(catalog: &Catalog, table: &str, column: &str) -> String {
    catalog
        .column(&name(table), column)
        .and_then(|c| c.data_type.as_ref())
        .map(ToString::to_string)
        .unwrap_or_default()
}

/// A Prisma history: quoted camelCase identifiers, enums, foreign keys added afterwards.
const PRISMA_INIT: &str = r#"
-- CreateEnum
CREATE TYPE "Role" AS ENUM ('USER', 'ADMIN');

-- CreateTable
CREATE TABLE "User" (
    "id" SERIAL NOT NULL,
    "email" TEXT NOT NULL,
    "name" TEXT,
    "role" "Role" NOT NULL DEFAULT 'USER',
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "User_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Post" (
    "id" SERIAL NOT NULL,
    "title" VARCHAR(255) NOT NULL,
    "authorId" INTEGER NOT NULL,

    CONSTRAINT "Post_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "User_email_key" ON "User"("email");

-- AddForeignKey
ALTER TABLE "Post" ADD CONSTRAINT "Post_authorId_fkey" FOREIGN KEY ("authorId") REFERENCES "User"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
"#;

const PRISMA_SECOND: &str = r#"
-- AlterEnum
ALTER TYPE "Role" ADD VALUE 'MODERATOR' BEFORE 'ADMIN';

-- AlterTable
ALTER TABLE "Post" ADD COLUMN "published" BOOLEAN NOT NULL DEFAULT false,
ALTER COLUMN "title" SET DATA TYPE TEXT;

-- CreateTable
CREATE TABLE "Comment" ("id" TEXT NOT NULL, "postId" INTEGER NOT NULL, CONSTRAINT "Comment_pkey" PRIMARY KEY ("id"));

-- CreateIndex
CREATE INDEX "Comment_postId_idx" ON "Comment"("postId");

-- AddForeignKey
ALTER TABLE "Comment" ADD CONSTRAINT "Comment_postId_fkey" FOREIGN KEY ("postId") REFERENCES "Post"("id") ON DELETE CASCADE ON UPDATE CASCADE;
"#;

#[test]
fn prisma_history_with_quoted_identifiers() {
    let catalog = history(&[PRISMA_INIT, PRISMA_SECOND]);

    // "User" and user are different tables.
    assert!(catalog.relation(&name("User")).is_some());
    assert!(catalog.relation(&name("user")).is_none());
    assert!(catalog.column(&name("User"), "createdAt").is_some());
    assert!(catalog.column(&name("User"), "createdat").is_none());

    // Created in the first migration: existing in the second.
    assert!(!catalog.is_new_relation(&name("User")));
    assert!(catalog.is_new_relation(&name("Comment")));
    assert!(catalog.is_new_index(&name("Comment_postId_idx")));
    assert!(catalog.is_new_column(&name("Post"), "published"));
    assert!(!catalog.is_new_column(&name("Post"), "title"));

    let id = catalog.column(&name("User"), "id").unwrap();
    assert!(id.not_null);
    assert_eq!(
        id.default.as_deref(),
        Some(r#"nextval('"User_id_seq"'::regclass)"#)
    );
    assert!(catalog.sequence(&name("User_id_seq")).is_some());
    assert_eq!(type_of(&catalog, "Post", "title"), "TEXT");
    let published = catalog.column(&name("Post"), "published").unwrap();
    assert!(published.not_null);
    assert_eq!(published.default.as_deref(), Some("false"));
    assert_eq!(type_of(&catalog, "User", "role"), "\"Role\"");

    let TypeKind::Enum { values } = &catalog.user_type(&name("Role")).unwrap().kind else {
        panic!("Role is an enum");
    };
    assert_eq!(values, &["USER", "MODERATOR", "ADMIN"]);

    let fk = catalog
        .constraint(&name("Post"), "Post_authorId_fkey")
        .unwrap();
    assert!(fk.validated);
    assert!(
        matches!(&fk.kind, ConstraintKind::ForeignKey { columns, references, referenced_columns, .. }
        if columns == &["authorId"] && references == &name("public.User") && referenced_columns == &["id"])
    );
    let email_index = catalog.index(&name("User_email_key")).unwrap();
    assert!(email_index.unique);
    assert_eq!(email_index.table, name("public.User"));
}

#[test]
fn safe_not_null_pattern_across_migrations() {
    let mut catalog = history(&[
        "CREATE TABLE users (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, email text);",
        "ALTER TABLE users ADD CONSTRAINT users_email_not_null CHECK (email IS NOT NULL) NOT VALID;",
    ]);
    let check = catalog
        .constraint(&name("users"), "users_email_not_null")
        .unwrap();
    assert!(!check.validated);
    assert!(!catalog.has_validated_not_null_check(&name("users"), "email"));
    assert!(catalog.is_new_constraint(&name("users"), "users_email_not_null"));

    migrate(
        &mut catalog,
        "ALTER TABLE users VALIDATE CONSTRAINT users_email_not_null;",
    );
    assert!(catalog.has_validated_not_null_check(&name("users"), "email"));
    assert!(!catalog.is_new_constraint(&name("users"), "users_email_not_null"));
    assert!(!catalog.column(&name("users"), "email").unwrap().not_null);

    migrate(
        &mut catalog,
        "ALTER TABLE users ALTER COLUMN email SET NOT NULL;\
         ALTER TABLE users DROP CONSTRAINT users_email_not_null;",
    );
    assert!(catalog.column(&name("users"), "email").unwrap().not_null);
    assert!(catalog.constraints_of(&name("users")).len() == 1);
    let id = catalog.column(&name("users"), "id").unwrap();
    assert!(id.identity == Some(migagent::schema::Identity::Always) && id.not_null);
}

#[test]
fn column_changes_across_migrations() {
    let catalog = history(&[
        "CREATE TABLE accounts (id serial PRIMARY KEY, name varchar(50) NOT NULL, \
         balance numeric(10, 2) DEFAULT 0, legacy text);",
        "ALTER TABLE accounts ALTER COLUMN name TYPE varchar(100), \
             ALTER COLUMN name DROP NOT NULL, \
             ALTER COLUMN balance SET DEFAULT 100, \
             ADD COLUMN IF NOT EXISTS name text;\
         ALTER TABLE accounts ALTER COLUMN balance SET NOT NULL;\
         ALTER TABLE accounts DROP COLUMN legacy;\
         ALTER TABLE accounts RENAME COLUMN balance TO amount;",
        "ALTER TABLE accounts ALTER COLUMN amount DROP DEFAULT;",
    ]);
    let name_column = catalog.column(&name("accounts"), "name").unwrap();
    assert_eq!(type_of(&catalog, "accounts", "name"), "VARCHAR(100)");
    assert!(!name_column.not_null);
    assert!(catalog.column(&name("accounts"), "legacy").is_none());
    assert!(catalog.column(&name("accounts"), "balance").is_none());
    let amount = catalog.column(&name("accounts"), "amount").unwrap();
    assert_eq!(type_of(&catalog, "accounts", "amount"), "NUMERIC(10,2)");
    assert!(amount.not_null);
    assert_eq!(amount.default, None);
}

#[test]
fn index_renames_and_table_renames() {
    let mut catalog = history(&[
        "CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id bigint, placed_at timestamptz);\
         CREATE INDEX CONCURRENTLY orders_customer_idx ON orders (customer_id);",
        "ALTER INDEX orders_customer_idx RENAME TO orders_by_customer;\
         ALTER TABLE orders RENAME TO purchases;",
    ]);
    assert!(catalog.relation(&name("orders")).is_none());
    assert!(!catalog.is_new_relation(&name("purchases")));
    let index = catalog.index(&name("orders_by_customer")).unwrap();
    assert_eq!(index.table, name("public.purchases"));
    assert_eq!(index.columns, ["customer_id"]);
    assert!(catalog.index(&name("orders_customer_idx")).is_none());
    let mut indexes: Vec<String> = catalog
        .indexes_on(&name("purchases"))
        .map(|i| i.name.name.clone())
        .collect();
    indexes.sort();
    assert_eq!(indexes, ["orders_by_customer", "orders_pkey"]);

    migrate(
        &mut catalog,
        "DROP INDEX CONCURRENTLY IF EXISTS orders_by_customer;\
         CREATE INDEX ON purchases (placed_at DESC) WHERE placed_at IS NOT NULL;",
    );
    assert!(catalog.index(&name("orders_by_customer")).is_none());
    let index = catalog.index(&name("purchases_placed_at_idx")).unwrap();
    assert_eq!(index.predicate.as_deref(), Some("placed_at IS NOT NULL"));
    assert!(catalog.is_new_index(&name("purchases_placed_at_idx")));
}

#[test]
fn drop_and_recreate_is_new_again() {
    let catalog = history(&[
        "CREATE TABLE events (id int);",
        "DROP TABLE events; CREATE TABLE events (id bigint, payload jsonb);",
    ]);
    assert!(catalog.is_new_relation(&name("events")));
    assert_eq!(type_of(&catalog, "events", "id"), "BIGINT");
    assert!(catalog.is_new_column(&name("events"), "payload"));
}

#[test]
fn create_if_not_exists_keeps_the_existing_objects() {
    let catalog = history(&[
        "CREATE TABLE IF NOT EXISTS t (a int); CREATE INDEX IF NOT EXISTS t_a ON t (a);",
        "CREATE TABLE IF NOT EXISTS t (b int); CREATE UNIQUE INDEX IF NOT EXISTS t_a ON t (a);",
    ]);
    assert!(!catalog.is_new_relation(&name("t")));
    assert!(catalog.column(&name("t"), "a").is_some());
    assert!(catalog.column(&name("t"), "b").is_none());
    assert!(!catalog.index(&name("t_a")).unwrap().unique);
}

#[test]
fn partitioned_tables() {
    let catalog = history(&[
        "CREATE TABLE measurements (city_id int NOT NULL, logdate date NOT NULL, peak int) \
         PARTITION BY RANGE (logdate);\
         CREATE TABLE measurements_2023 PARTITION OF measurements \
         FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');",
        "CREATE INDEX measurements_logdate_idx ON ONLY measurements (logdate);\
         CREATE TABLE measurements_2024 (LIKE measurements INCLUDING DEFAULTS);\
         ALTER TABLE measurements_2024 ADD CONSTRAINT y2024 \
         CHECK (logdate >= DATE '2024-01-01' AND logdate < DATE '2025-01-01');\
         ALTER TABLE measurements ATTACH PARTITION measurements_2024 \
         FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');",
    ]);
    let parent = catalog.relation(&name("measurements")).unwrap();
    assert_eq!(parent.kind, RelationKind::PartitionedTable);
    assert!(!catalog.is_new_relation(&name("measurements")));
    let partition = catalog.relation(&name("measurements_2023")).unwrap();
    assert_eq!(partition.partition_of, Some(name("public.measurements")));
    assert_eq!(partition.columns.len(), 3);
    assert!(catalog
        .index(&name("measurements_logdate_idx"))
        .is_some_and(|i| i.table == name("public.measurements")));
    // ON ONLY builds nothing on the existing partition.
    assert!(catalog
        .indexes_on(&name("measurements_2023"))
        .next()
        .is_none());
    let attached = catalog.relation(&name("measurements_2024")).unwrap();
    assert_eq!(attached.partition_of, Some(name("public.measurements")));
    assert!(catalog.is_new_relation(&name("measurements_2024")));
    assert_eq!(catalog.partitions_of(&name("measurements")).count(), 2);
    // Attaching gives the partition the parent's indexes.
    assert!(catalog
        .indexes_on(&name("measurements_2024"))
        .any(|i| i.columns == ["logdate"]));
}

#[test]
fn search_path_and_schemas() {
    let catalog = history(&[
        "CREATE SCHEMA app; SET search_path TO app, public;\
         CREATE TABLE widgets (id int PRIMARY KEY);\
         CREATE TABLE public.gadgets (id int);",
        // A new migration: back to the default search path.
        "CREATE TABLE widgets (id int);\
         ALTER SCHEMA app RENAME TO application;",
        "SET search_path = application; ALTER TABLE widgets ADD COLUMN size int;",
    ]);
    assert!(catalog.relation(&name("application.widgets")).is_some());
    assert!(catalog.relation(&name("app.widgets")).is_none());
    assert!(catalog
        .column(&name("application.widgets"), "size")
        .is_some());
    assert!(catalog.column(&name("public.widgets"), "size").is_none());
    assert_eq!(
        catalog
            .index(&name("application.widgets_pkey"))
            .unwrap()
            .table,
        name("application.widgets")
    );
    assert!(catalog.relation(&name("public.gadgets")).is_some());
}

#[test]
fn pg_dump_preamble_keeps_public() {
    let catalog = history(&[r#"
SET statement_timeout = 0;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
CREATE TYPE public.status AS ENUM ('on', 'off');
CREATE TABLE public.devices (id integer NOT NULL, status public.status DEFAULT 'on'::public.status);
CREATE SEQUENCE public.devices_id_seq AS integer START WITH 1 INCREMENT BY 1;
ALTER SEQUENCE public.devices_id_seq OWNED BY public.devices.id;
ALTER TABLE ONLY public.devices ALTER COLUMN id SET DEFAULT nextval('public.devices_id_seq'::regclass);
ALTER TABLE ONLY public.devices ADD CONSTRAINT devices_pkey PRIMARY KEY (id);
CREATE INDEX devices_status_idx ON public.devices USING btree (status);
ALTER TABLE public.devices_id_seq OWNER TO postgres;
"#]);
    assert_eq!(catalog.default_schema(), "public");
    // `ALTER TABLE` names a sequence: no table of that name appears.
    assert!(catalog.relation(&name("devices_id_seq")).is_none());
    let devices = name("devices");
    assert!(catalog.relation(&devices).is_some());
    assert!(catalog.column(&devices, "id").unwrap().not_null);
    assert!(catalog.constraint(&devices, "devices_pkey").is_some());
    assert_eq!(catalog.indexes_on(&devices).count(), 2);
    assert_eq!(
        catalog.sequence(&name("devices_id_seq")).unwrap().owned_by,
        Some((name("public.devices"), "id".to_owned()))
    );
}

#[test]
fn views_domains_and_drops() {
    let mut catalog = history(&["CREATE DOMAIN positive AS integer CHECK (VALUE > 0);\
         CREATE TABLE items (id int, qty positive);\
         CREATE VIEW item_ids AS SELECT id, qty AS quantity FROM items;\
         CREATE MATERIALIZED VIEW item_totals AS SELECT count(*) AS n FROM items;"]);
    let TypeKind::Domain { base, has_check } = &catalog.user_type(&name("positive")).unwrap().kind
    else {
        panic!("positive is a domain");
    };
    assert!(*has_check);
    assert_eq!(base.as_ref().unwrap().to_string(), "INTEGER");
    let view = catalog.relation(&name("item_ids")).unwrap();
    assert_eq!(view.kind, RelationKind::View);
    let columns: Vec<&str> = view.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(columns, ["id", "quantity"]);
    assert_eq!(
        catalog.relation(&name("item_totals")).unwrap().kind,
        RelationKind::MaterializedView
    );

    migrate(
        &mut catalog,
        "DROP MATERIALIZED VIEW item_totals; DROP VIEW IF EXISTS item_ids, missing;\
         DROP DOMAIN positive CASCADE; DROP TABLE items;",
    );
    assert!(catalog.relations().next().is_none());
    assert!(catalog.user_types().next().is_none());
}

#[test]
fn drop_schema_cascade_drops_its_objects() {
    let mut catalog = history(&[
        "CREATE SCHEMA audit; CREATE TABLE audit.log (id bigserial PRIMARY KEY);\
         CREATE TYPE audit.kind AS ENUM ('a'); CREATE TABLE keep (id int);",
    ]);
    migrate(&mut catalog, "DROP SCHEMA audit CASCADE;");
    assert!(catalog.relation(&name("audit.log")).is_none());
    assert!(catalog.index(&name("audit.log_pkey")).is_none());
    assert!(catalog.sequence(&name("audit.log_id_seq")).is_none());
    assert!(catalog.user_type(&name("audit.kind")).is_none());
    assert!(catalog.relation(&name("keep")).is_some());
}

#[test]
fn unknown_tables_are_treated_as_existing() {
    // A migration reviewed without its history.
    let catalog = history(&["ALTER TABLE users ADD COLUMN nickname text;\
         CREATE INDEX users_nickname_idx ON users (nickname);"]);
    assert!(!catalog.is_new_relation(&name("users")));
    assert!(catalog.is_new_column(&name("users"), "nickname"));
    assert!(catalog.is_new_index(&name("users_nickname_idx")));
    assert!(!catalog.is_new_relation(&name("never_mentioned")));
}

/// Every `.sql` file under `dir`, in sorted path order.
fn sql_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "sql") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

#[test]
fn replays_the_shared_corpus_without_panicking() {
    let Some(corpus) = common::corpus_or_skip("replays_the_shared_corpus_without_panicking") else {
        return;
    };
    let mut projects: Vec<PathBuf> = std::fs::read_dir(&corpus)
        .expect("readable corpus")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    projects.sort();
    let mut panics = Vec::new();
    for project in projects {
        let mut catalog = Catalog::default();
        let mut statements = 0;
        for file in sql_files(&project) {
            let Ok(bytes) = std::fs::read(&file) else {
                continue;
            };
            let text = String::from_utf8_lossy(&bytes);
            let replayed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                migrate(&mut catalog, &text);
                sql::parse_text(&text).statements.len()
            }));
            match replayed {
                Ok(count) => statements += count,
                Err(_) => panics.push(file.display().to_string()),
            }
        }
        println!(
            "{}: {statements} statements, {} relations, {} indexes",
            project.display(),
            catalog.relations().count(),
            catalog.indexes().count()
        );
    }
    assert!(panics.is_empty(), "replay panicked on: {panics:#?}");
}
