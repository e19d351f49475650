//! Schema snapshots of real databases and their diffs: what a snapshot holds for every kind of
//! object, that each kind of DDL shows up as exactly the expected changes, that equivalent DDL
//! reached two ways gives equal snapshots, and that nothing in a snapshot depends on OIDs or on the
//! session's search path.

use std::time::Instant;

mod common;

use migagent::shadow::cluster::EphemeralCluster;
use migagent::shadow::snapshot::{diff, snapshot, Identity, SchemaSnapshot, TableKind};
use tokio_postgres::Client;

/// A new, empty database on the cluster and a connection to it.
async fn fresh_database(cluster: &EphemeralCluster, name: &str) -> Client {
    common::connect(cluster, "postgres")
        .await
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap_or_else(|err| panic!("create database {name}: {err}"));
    common::connect(cluster, name).await
}

async fn run(client: &Client, sql: &str) {
    client
        .batch_execute(sql)
        .await
        .unwrap_or_else(|err| panic!("{sql}: {err}"));
}

async fn take(client: &Client) -> SchemaSnapshot {
    snapshot(client)
        .await
        .unwrap_or_else(|err| panic!("snapshot: {err}"))
}

/// One object of every kind the snapshot reads, and a few it must leave out.
const EVERY_KIND: &str = r#"
CREATE EXTENSION citext;
CREATE SCHEMA app;
CREATE TYPE status AS ENUM ('a', 'b');
CREATE DOMAIN positive AS integer NOT NULL DEFAULT 1 CHECK (VALUE > 0);
CREATE TYPE pair AS (x int, y text);
CREATE TABLE users (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email text COLLATE "C" NOT NULL,
    name citext,
    st status DEFAULT 'a',
    n positive,
    total int GENERATED ALWAYS AS (n * 2) STORED
);
CREATE TABLE app.orders (
    id serial PRIMARY KEY,
    user_id bigint REFERENCES users (id),
    amount numeric(10, 2) CHECK (amount > 0)
) WITH (fillfactor = 70);
CREATE INDEX orders_user_idx ON app.orders (user_id) WHERE amount > 10;
CREATE UNLOGGED TABLE scratch (a int);
CREATE TABLE child (extra int) INHERITS (scratch);
CREATE TABLE m (city int, logdate date NOT NULL) PARTITION BY RANGE (logdate);
CREATE TABLE m_2023 PARTITION OF m FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');
CREATE INDEX ON m (logdate);
CREATE SEQUENCE counter AS integer START 10 INCREMENT 5 CYCLE;
CREATE VIEW user_emails AS SELECT id, email FROM users;
CREATE MATERIALIZED VIEW order_totals AS
    SELECT user_id, sum(amount) FROM app.orders GROUP BY user_id WITH NO DATA;
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE PROCEDURE noop(a int) LANGUAGE sql AS $$ SELECT 1 $$;
CREATE TRIGGER users_touch BEFORE UPDATE ON users FOR EACH ROW EXECUTE FUNCTION touch();
ALTER TABLE users ENABLE ROW LEVEL SECURITY;
CREATE POLICY own ON users FOR SELECT TO postgres USING (id > 0);
CREATE TEMP TABLE session_scratch (a int);
"#;

fn keys<T>(map: &std::collections::BTreeMap<String, T>) -> Vec<&str> {
    map.keys().map(String::as_str).collect()
}

#[test]
fn snapshot_reads_every_kind_of_object() {
    let Some(cluster) = common::cluster_or_skip() else {
        return;
    };
    common::runtime().block_on(async {
        let client = fresh_database(&cluster, "kinds").await;
        run(&client, EVERY_KIND).await;
        let s = take(&client).await;

        assert_eq!(s.schemas.iter().collect::<Vec<_>>(), ["app", "public"]);
        assert_eq!(
            s.extensions.iter().collect::<Vec<_>>(),
            ["citext", "plpgsql"]
        );
        // The temporary table is the session's, not the schema's.
        assert_eq!(
            keys(&s.tables),
            [
                "app.orders",
                "public.child",
                "public.m",
                "public.m_2023",
                "public.scratch",
                "public.users"
            ]
        );
        let users = &s.tables["public.users"];
        assert_eq!(users.kind, TableKind::Table);
        assert!(users.row_level_security && !users.force_row_level_security);
        let columns: Vec<&str> = users.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(columns, ["id", "email", "name", "st", "n", "total"]);
        let [id, email, name, st, n, total] = &users.columns[..] else {
            unreachable!()
        };
        assert_eq!(id.data_type, "bigint");
        assert_eq!(id.identity, Some(Identity::Always));
        assert!(id.not_null && id.default.is_none());
        assert_eq!(email.collation.as_deref(), Some(r#"pg_catalog."C""#));
        // Names are schema-qualified whatever the search path: extension and user types too.
        assert_eq!(name.data_type, "public.citext");
        assert_eq!(st.default.as_deref(), Some("'a'::public.status"));
        assert_eq!(n.data_type, "public.positive");
        assert!(
            !n.not_null,
            "the domain's NOT NULL is the domain's, not the column's"
        );
        assert_eq!(total.generated.as_deref(), Some("((n)::integer * 2)"));
        assert_eq!(total.default, None);

        let orders = &s.tables["app.orders"];
        assert_eq!(orders.options, ["fillfactor=70"]);
        assert_eq!(
            orders.columns[0].default.as_deref(),
            Some("nextval('app.orders_id_seq'::regclass)")
        );
        assert!(s.tables["public.scratch"].unlogged);
        assert_eq!(s.tables["public.child"].inherits, ["public.scratch"]);
        assert_eq!(
            s.tables["public.child"]
                .columns
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>(),
            ["a", "extra"]
        );
        let m = &s.tables["public.m"];
        assert_eq!(m.kind, TableKind::PartitionedTable);
        assert_eq!(m.partition_key.as_deref(), Some("RANGE (logdate)"));
        let partition = &s.tables["public.m_2023"];
        assert_eq!(partition.partition_of.as_deref(), Some("public.m"));
        assert_eq!(
            partition.partition_bound.as_deref(),
            Some("FOR VALUES FROM ('2023-01-01') TO ('2024-01-01')")
        );

        assert_eq!(keys(&s.composite_types), ["public.pair"]);
        assert_eq!(s.composite_types["public.pair"][1].data_type, "text");
        assert_eq!(
            s.views["public.user_emails"].definition,
            " SELECT users.id,\n    users.email\n   FROM public.users;"
        );
        assert!(!s.materialized_views["public.order_totals"].populated);

        assert_eq!(
            keys(&s.sequences),
            ["app.orders_id_seq", "public.counter", "public.users_id_seq"]
        );
        let counter = &s.sequences["public.counter"];
        assert_eq!(
            (counter.data_type.as_str(), counter.start, counter.increment),
            ("integer", 10, 5)
        );
        assert!(counter.cycle && counter.owned_by.is_none());
        assert_eq!(
            s.sequences["public.users_id_seq"].owned_by.as_deref(),
            Some("public.users.id")
        );
        assert_eq!(
            s.sequences["app.orders_id_seq"].owned_by.as_deref(),
            Some("app.orders.id")
        );

        assert_eq!(s.enums["public.status"], ["a", "b"]);
        let positive = &s.domains["public.positive"];
        assert_eq!(positive.base_type, "integer");
        assert!(positive.not_null);
        assert_eq!(positive.default.as_deref(), Some("1"));

        assert_eq!(
            keys(&s.constraints),
            [
                "app.orders.orders_amount_check",
                "app.orders.orders_pkey",
                "app.orders.orders_user_id_fkey",
                "public.positive.positive_check",
                "public.users.users_pkey"
            ]
        );
        assert_eq!(
            s.constraints["app.orders.orders_user_id_fkey"].definition,
            "FOREIGN KEY (user_id) REFERENCES public.users(id)"
        );
        assert_eq!(
            s.constraints["public.positive.positive_check"].definition,
            "CHECK ((VALUE > 0))"
        );

        assert_eq!(
            keys(&s.indexes),
            [
                "app.orders_pkey",
                "app.orders_user_idx",
                "public.m_2023_logdate_idx",
                "public.m_logdate_idx",
                "public.users_pkey"
            ]
        );
        assert_eq!(
            s.indexes["app.orders_user_idx"].definition,
            "CREATE INDEX orders_user_idx ON app.orders USING btree (user_id) \
             WHERE (amount > (10)::numeric)"
        );
        assert_eq!(
            s.indexes["public.m_2023_logdate_idx"]
                .partition_of
                .as_deref(),
            Some("public.m_logdate_idx")
        );
        assert!(s.indexes.values().all(|index| index.valid));

        // citext's own functions belong to the extension.
        assert_eq!(
            keys(&s.functions),
            ["public.noop(integer)", "public.touch()"]
        );
        assert_eq!(s.functions["public.noop(integer)"].kind, "procedure");
        assert_eq!(
            s.functions["public.touch()"].result.as_deref(),
            Some("trigger")
        );
        assert_eq!(
            s.triggers["public.users.users_touch"].definition,
            "CREATE TRIGGER users_touch BEFORE UPDATE ON public.users \
             FOR EACH ROW EXECUTE FUNCTION public.touch()"
        );
        let policy = &s.policies["public.users.own"];
        assert_eq!(
            (policy.command.as_str(), policy.roles.as_slice()),
            ("SELECT", &["postgres".to_owned()][..])
        );
        assert_eq!(policy.using.as_deref(), Some("id > 0"));
    });
}

/// A schema each diff case starts from.
const BASE: &str = r#"
CREATE TYPE status AS ENUM ('a', 'b');
CREATE DOMAIN positive AS integer CHECK (VALUE > 0);
CREATE TYPE pair AS (x int, y text);
CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL, name text, nick text);
CREATE TABLE orders (id int PRIMARY KEY, user_id bigint, amount numeric);
CREATE TABLE m (logdate date NOT NULL) PARTITION BY RANGE (logdate);
CREATE TABLE m_2023 PARTITION OF m FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');
CREATE SEQUENCE counter;
CREATE VIEW user_emails AS SELECT id, email FROM users;
CREATE MATERIALIZED VIEW order_count AS SELECT count(*) FROM orders WITH NO DATA;
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TRIGGER users_touch BEFORE UPDATE ON users FOR EACH ROW EXECUTE FUNCTION touch();
"#;

/// (what the case shows, DDL applied to [`BASE`], the changes the diff must list).
const DIFF_CASES: &[(&str, &str, &[&str])] = &[
    ("schema", "CREATE SCHEMA audit", &["added schema audit"]),
    (
        "extension without its members",
        "CREATE EXTENSION citext",
        &["added extension citext"],
    ),
    (
        "enum label",
        "ALTER TYPE status ADD VALUE 'c' BEFORE 'b'",
        &["changed enum public.status: labels a, b → a, c, b"],
    ),
    (
        "new enum",
        "CREATE TYPE mood AS ENUM ('ok')",
        &["added enum public.mood: labels ok"],
    ),
    (
        "domain",
        "ALTER DOMAIN positive SET NOT NULL; ALTER DOMAIN positive SET DEFAULT 1",
        &["changed domain public.positive: nullable → NOT NULL; default none → 1"],
    ),
    (
        "domain constraint",
        "ALTER DOMAIN positive ADD CONSTRAINT small CHECK (VALUE < 10) NOT VALID",
        &["added constraint public.positive.small: CHECK ((VALUE < 10)) NOT VALID"],
    ),
    (
        "composite type attribute",
        "ALTER TYPE pair ADD ATTRIBUTE z bigint",
        &["added column public.pair.z: bigint"],
    ),
    (
        "sequence",
        "ALTER SEQUENCE counter INCREMENT 10 CYCLE",
        &["changed sequence public.counter: increment 1 → 10; cycle no → yes"],
    ),
    (
        "table with its index, constraint and owned sequence",
        "CREATE TABLE tags (id serial PRIMARY KEY, label text)",
        &[
            "added sequence public.tags_id_seq: integer START 1 INCREMENT 1 MINVALUE 1 \
             MAXVALUE 2147483647 CACHE 1 OWNED BY public.tags.id",
            "added table public.tags: (id integer NOT NULL DEFAULT \
             nextval('public.tags_id_seq'::regclass), label text)",
            "added constraint public.tags.tags_pkey: PRIMARY KEY (id)",
            "added index public.tags_pkey: CREATE UNIQUE INDEX tags_pkey ON public.tags \
             USING btree (id)",
        ],
    ),
    (
        "table settings",
        "ALTER TABLE orders SET UNLOGGED, SET (fillfactor = 50), ENABLE ROW LEVEL SECURITY",
        &[
            "changed table public.orders: unlogged no → yes; options none → fillfactor=50; \
           row level security no → yes",
        ],
    ),
    (
        "dropped table and what goes with it",
        "DROP TABLE orders CASCADE",
        &[
            "removed table public.orders: (id integer NOT NULL, user_id bigint, amount numeric)",
            "removed constraint public.orders.orders_pkey: PRIMARY KEY (id)",
            "removed index public.orders_pkey: CREATE UNIQUE INDEX orders_pkey ON public.orders \
             USING btree (id)",
            "removed materialized view public.order_count: SELECT count(*) AS count FROM \
             public.orders; WITH NO DATA",
        ],
    ),
    (
        "column type",
        "ALTER TABLE users ALTER COLUMN nick TYPE varchar(10)",
        &["changed column public.users.nick: type text → character varying(10)"],
    ),
    (
        "column nullability and default",
        "ALTER TABLE users ALTER COLUMN name SET NOT NULL, ALTER COLUMN name SET DEFAULT ''",
        &["changed column public.users.name: nullable → NOT NULL; default none → ''::text"],
    ),
    (
        "column identity",
        "ALTER TABLE users ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY",
        &[
            "added sequence public.users_id_seq: bigint START 1 INCREMENT 1 MINVALUE 1 \
             MAXVALUE 9223372036854775807 CACHE 1 OWNED BY public.users.id",
            "changed column public.users.id: identity none → GENERATED BY DEFAULT AS IDENTITY",
        ],
    ),
    (
        "added and dropped columns (later columns do not count as moved)",
        "ALTER TABLE users DROP COLUMN name, ADD COLUMN age int",
        &[
            "removed column public.users.name: text",
            "added column public.users.age: integer",
        ],
    ),
    (
        "dropped and re-added column",
        "ALTER TABLE users DROP COLUMN email CASCADE;\
         ALTER TABLE users ADD COLUMN email text NOT NULL",
        &[
            "changed column public.users.email: position 2 → 4",
            // The view reading it has to go first.
            "removed view public.user_emails: SELECT users.id, users.email FROM public.users;",
        ],
    ),
    (
        "renamed column",
        "ALTER TABLE orders RENAME COLUMN amount TO total",
        &[
            "removed column public.orders.amount: numeric",
            "added column public.orders.total: numeric",
        ],
    ),
    (
        "constraint validated",
        "ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) \
         REFERENCES users (id) NOT VALID",
        &[
            "added constraint public.orders.orders_user_fk: FOREIGN KEY (user_id) \
           REFERENCES public.users(id) NOT VALID",
        ],
    ),
    (
        "index",
        "CREATE UNIQUE INDEX users_email_idx ON users (lower(email)) WHERE name IS NOT NULL",
        &[
            "added index public.users_email_idx: CREATE UNIQUE INDEX users_email_idx ON \
           public.users USING btree (lower(email)) WHERE (name IS NOT NULL)",
        ],
    ),
    (
        "partition detached",
        "ALTER TABLE m DETACH PARTITION m_2023",
        &[
            "changed table public.m_2023: partition of public.m → none; partition bound \
           FOR VALUES FROM ('2023-01-01') TO ('2024-01-01') → none",
        ],
    ),
    (
        "view",
        "CREATE OR REPLACE VIEW user_emails AS SELECT id, email, name FROM users",
        &[
            "changed view public.user_emails: definition SELECT users.id, users.email FROM \
           public.users; → SELECT users.id, users.email, users.name FROM public.users;",
        ],
    ),
    (
        "materialized view refreshed",
        "REFRESH MATERIALIZED VIEW order_count",
        &["changed materialized view public.order_count: populated no → yes"],
    ),
    (
        "function body",
        "CREATE OR REPLACE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql \
         AS $$ BEGIN RETURN OLD; END $$",
        &["changed function public.touch(): definition changed"],
    ),
    (
        "procedure",
        "CREATE PROCEDURE archive(days int) LANGUAGE sql AS $$ SELECT 1 $$",
        &["added function public.archive(integer): procedure"],
    ),
    (
        "trigger",
        "CREATE TRIGGER orders_touch AFTER INSERT ON orders \
         FOR EACH ROW EXECUTE FUNCTION touch()",
        &[
            "added trigger public.orders.orders_touch: CREATE TRIGGER orders_touch AFTER INSERT \
           ON public.orders FOR EACH ROW EXECUTE FUNCTION public.touch()",
        ],
    ),
    (
        "trigger disabled",
        "ALTER TABLE users DISABLE TRIGGER users_touch",
        &["changed trigger public.users.users_touch: enabled origin → disabled"],
    ),
    (
        "policy",
        "CREATE POLICY mine ON orders AS RESTRICTIVE FOR UPDATE USING (user_id > 0) \
         WITH CHECK (amount > 0)",
        &[
            "added policy public.orders.mine: RESTRICTIVE FOR UPDATE TO public USING \
           (user_id > 0) WITH CHECK (amount > 0::numeric)",
        ],
    ),
];

#[test]
fn each_kind_of_ddl_shows_as_exactly_its_changes() {
    let Some(cluster) = common::cluster_or_skip() else {
        return;
    };
    common::runtime().block_on(async {
        let mut failures = Vec::new();
        for (number, (what, ddl, expected)) in DIFF_CASES.iter().enumerate() {
            let client = fresh_database(&cluster, &format!("diff_case_{number}")).await;
            run(&client, BASE).await;
            let before = take(&client).await;
            run(&client, ddl).await;
            let after = take(&client).await;
            let changes: Vec<String> = diff(&before, &after)
                .iter()
                .map(ToString::to_string)
                .collect();
            if changes != *expected {
                failures.push(format!(
                    "{what} ({ddl}):\n  expected {expected:#?}\n  got {changes:#?}"
                ));
            }
            assert!(
                diff(&after, &after).is_empty(),
                "{what}: a snapshot differs from itself"
            );
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    });
}

/// Changes name their objects as the rest of the report does: unquoted for display, and in exact
/// parts in JSON, however odd the identifiers (a dot, a space, a quote, upper case).
#[test]
fn changes_name_objects_unquoted_with_their_parts() {
    let Some(cluster) = common::cluster_or_skip() else {
        return;
    };
    common::runtime().block_on(async {
        let client = fresh_database(&cluster, "odd_names").await;
        let before = take(&client).await;
        run(
            &client,
            r#"CREATE SCHEMA "My.Schema";
               CREATE TABLE "My.Schema"."User" ("Nick.Name" text CONSTRAINT "say ""hi""" CHECK (true));
               CREATE FUNCTION "My.Schema"."Do It"(a integer, b "My.Schema"."User") RETURNS integer
                   LANGUAGE sql AS 'SELECT 1';
               CREATE EXTENSION citext;"#,
        )
        .await;
        let changes = diff(&before, &take(&client).await);
        let shown: Vec<String> = changes.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "added schema My.Schema",
                "added extension citext",
                "added table My.Schema.User: (\"Nick.Name\" text)",
                "added constraint My.Schema.User.say \"hi\": CHECK (true)",
                "added function My.Schema.Do It(integer, \"My.Schema\".\"User\"): function returning integer",
            ]
        );
        let json: Vec<serde_json::Value> = changes
            .iter()
            .map(|change| serde_json::to_value(change).unwrap())
            .collect();
        let parts = |i: usize| {
            let change = &json[i];
            (
                change["name"].as_str().unwrap().to_owned(),
                change["schema"].as_str().map(str::to_owned),
                change["parent"].as_str().map(str::to_owned),
                change["object_name"].as_str().unwrap().to_owned(),
                change["arguments"].as_str().map(str::to_owned),
            )
        };
        let owned = |text: &str| Some(text.to_owned());
        assert_eq!(parts(0), ("My.Schema".into(), None, None, "My.Schema".into(), None));
        assert_eq!(parts(1), ("citext".into(), None, None, "citext".into(), None));
        assert_eq!(
            parts(2),
            ("My.Schema.User".into(), owned("My.Schema"), None, "User".into(), None)
        );
        assert_eq!(
            parts(3),
            (
                r#"My.Schema.User.say "hi""#.into(),
                owned("My.Schema"),
                owned("User"),
                r#"say "hi""#.into(),
                None
            )
        );
        assert_eq!(
            parts(4),
            (
                r#"My.Schema.Do It(integer, "My.Schema"."User")"#.into(),
                owned("My.Schema"),
                None,
                "Do It".into(),
                owned(r#"integer, "My.Schema"."User""#)
            )
        );
        assert!(json[0].get("arguments").is_none(), "{}", json[0]);
    });
}

/// Pairs of DDL that reach the same schema from [`BASE`] in different ways.
const EQUIVALENT_DDL: &[(&str, &str)] = &[
    (
        "ALTER TABLE orders ADD COLUMN x int; ALTER TABLE orders ALTER COLUMN x SET NOT NULL",
        "ALTER TABLE orders ADD COLUMN x int NOT NULL",
    ),
    (
        "CREATE TABLE t (id int); ALTER TABLE t ADD PRIMARY KEY (id)",
        "CREATE TABLE t (id int PRIMARY KEY)",
    ),
    (
        "ALTER TABLE orders ADD CONSTRAINT positive CHECK (amount > 0) NOT VALID;\
         ALTER TABLE orders VALIDATE CONSTRAINT positive",
        "ALTER TABLE orders ADD CONSTRAINT positive CHECK (amount > 0)",
    ),
    (
        "CREATE UNIQUE INDEX users_name_key ON users (name);\
         ALTER TABLE users ADD CONSTRAINT users_name_key UNIQUE USING INDEX users_name_key",
        "ALTER TABLE users ADD UNIQUE (name)",
    ),
    (
        "CREATE SCHEMA app; SET search_path TO app; CREATE TABLE t (id int); RESET search_path",
        "CREATE SCHEMA app; CREATE TABLE app.t (id int)",
    ),
    (
        "CREATE TABLE m_2024 (LIKE m); ALTER TABLE m ATTACH PARTITION m_2024 \
         FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')",
        "CREATE TABLE m_2024 PARTITION OF m FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')",
    ),
    (
        "ALTER TABLE orders ALTER COLUMN amount TYPE numeric(12, 2);\
         ALTER TABLE orders ALTER COLUMN amount TYPE numeric(10, 2)",
        "ALTER TABLE orders ALTER COLUMN amount TYPE numeric(10, 2)",
    ),
];

#[test]
fn equivalent_ddl_reached_two_ways_gives_an_empty_diff() {
    let Some(cluster) = common::cluster_or_skip() else {
        return;
    };
    common::runtime().block_on(async {
        for (number, (one_way, other_way)) in EQUIVALENT_DDL.iter().enumerate() {
            let one = fresh_database(&cluster, &format!("one_way_{number}")).await;
            let other = fresh_database(&cluster, &format!("other_way_{number}")).await;
            for (client, ddl) in [(&one, one_way), (&other, other_way)] {
                run(client, BASE).await;
                run(client, ddl).await;
            }
            let (one, other) = (take(&one).await, take(&other).await);
            let changes: Vec<String> = diff(&one, &other).iter().map(|c| c.to_string()).collect();
            assert!(
                changes.is_empty(),
                "{one_way}\nand\n{other_way}\ndiffer: {changes:#?}"
            );
            assert_eq!(one, other);
        }
    });
}

#[test]
fn snapshots_do_not_depend_on_oids_or_the_search_path() {
    let Some(cluster) = common::cluster_or_skip() else {
        return;
    };
    common::runtime().block_on(async {
        let first = fresh_database(&cluster, "first").await;
        run(&first, EVERY_KIND).await;
        // The same DDL after objects that took OIDs and went away.
        let second = fresh_database(&cluster, "second").await;
        run(
            &second,
            "CREATE TABLE filler (id serial PRIMARY KEY, note text);\
             CREATE TYPE filler_kind AS ENUM ('x'); DROP TABLE filler; DROP TYPE filler_kind;",
        )
        .await;
        run(&second, EVERY_KIND).await;
        let (one, two) = (take(&first).await, take(&second).await);
        assert_eq!(one, two);
        assert_eq!(
            serde_json::to_string(&one).unwrap(),
            serde_json::to_string(&two).unwrap()
        );

        // A session whose search path finds everything reads the same snapshot, and keeps its
        // settings.
        run(&second, "SET search_path TO app, public; SET jit = on").await;
        assert_eq!(take(&second).await, one);
        let settings = second
            .query_one(
                "SELECT current_setting('search_path'), current_setting('jit')",
                &[],
            )
            .await
            .unwrap();
        assert_eq!(
            (settings.get::<_, String>(0), settings.get::<_, String>(1)),
            ("app, public".to_owned(), "on".to_owned())
        );
    });
}

#[test]
fn inside_a_transaction_the_snapshot_sees_its_uncommitted_ddl() {
    let Some(cluster) = common::cluster_or_skip() else {
        return;
    };
    common::runtime().block_on(async {
        let client = fresh_database(&cluster, "in_transaction").await;
        run(&client, BASE).await;
        let before = take(&client).await;
        run(&client, "BEGIN; ALTER TABLE users ADD COLUMN age int").await;
        let during = take(&client).await;
        assert_eq!(
            diff(&before, &during)
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            ["added column public.users.age: integer"]
        );
        run(&client, "ROLLBACK").await;
        assert_eq!(take(&client).await, before);
        let path: String = client
            .query_one("SHOW search_path", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(path, "\"$user\", public");
    });
}

/// ~100 tables with the usual trimmings: what a snapshot after every traced statement costs.
#[test]
fn snapshot_of_a_hundred_tables_is_quick() {
    let Some(cluster) = common::cluster_or_skip() else {
        return;
    };
    common::runtime().block_on(async {
        let client = fresh_database(&cluster, "hundred").await;
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
        run(&client, &ddl).await;
        take(&client).await; // warm the catalog caches
        let runs = 10;
        let started = Instant::now();
        let mut last = SchemaSnapshot::default();
        for _ in 0..runs {
            last = take(&client).await;
        }
        let each = started.elapsed() / runs;
        eprintln!(
            "snapshot of {} tables, {} indexes, {} constraints, {} views: {each:?} each",
            last.tables.len(),
            last.indexes.len(),
            last.constraints.len(),
            last.views.len()
        );
        assert_eq!(last.tables.len(), 100);
        assert_eq!(last.indexes.len(), 200);
        assert_eq!(last.constraints.len(), 300);
    });
}
