//! The tricky parts of the replay: generated names and their collisions, what a drop or rename
//! takes along, the statements only the fallback reads.

use crate::schema::{Catalog, ConstraintKind, Origin, RelationKind, TypeKind};
use crate::sql::ObjectName;

fn replay(catalog: &mut Catalog, sql: &str) {
    let parsed = crate::sql::parse_text(sql);
    for statement in &parsed.statements {
        catalog.apply(sql, statement);
    }
}

fn catalog(sql: &str) -> Catalog {
    let mut catalog = Catalog::default();
    catalog.begin_migration();
    replay(&mut catalog, sql);
    catalog
}

fn name(text: &str) -> ObjectName {
    match text.split_once('.') {
        Some((schema, name)) => ObjectName::new(Some(schema), name),
        None => ObjectName::new(None, text),
    }
}

fn constraint_names(catalog: &Catalog, table: &str) -> Vec<String> {
    let mut names: Vec<String> = catalog
        .constraints_of(&name(table))
        .iter()
        .map(|c| c.name.clone())
        .collect();
    names.sort();
    names
}

fn index_names(catalog: &Catalog, table: &str) -> Vec<String> {
    let mut names: Vec<String> = catalog
        .indexes_on(&name(table))
        .map(|i| i.name.to_string())
        .collect();
    names.sort();
    names
}

#[test]
fn generated_names_follow_postgresql() {
    let c = catalog(
        "CREATE TABLE t (id serial PRIMARY KEY, email text UNIQUE, n int CHECK (n > 0), \
         m int, p int REFERENCES t, CHECK (m > n), CHECK (m > 0), UNIQUE (m, n));\
         CREATE INDEX ON t (email); CREATE INDEX ON t (lower(email)); CREATE INDEX ON t (email);",
    );
    assert_eq!(
        constraint_names(&c, "t"),
        [
            "t_check",
            "t_email_key",
            "t_m_check",
            "t_m_n_key",
            "t_n_check",
            "t_p_fkey",
            "t_pkey"
        ]
    );
    assert_eq!(
        index_names(&c, "t"),
        [
            "public.t_email_idx",
            "public.t_email_idx1",
            "public.t_email_key",
            "public.t_lower_idx",
            "public.t_m_n_key",
            "public.t_pkey"
        ]
    );
    assert!(c.sequence(&name("t_id_seq")).is_some());
    let id = c.column(&name("t"), "id").unwrap();
    assert!(id.not_null);
    assert_eq!(id.default.as_deref(), Some("nextval('t_id_seq'::regclass)"));
    assert_eq!(id.data_type.as_ref().unwrap().to_string(), "INTEGER");
    // REFERENCES without columns means the primary key.
    let fk = c.constraint(&name("t"), "t_p_fkey").unwrap();
    assert!(
        matches!(&fk.kind, ConstraintKind::ForeignKey { referenced_columns, .. }
        if referenced_columns == &["id"])
    );
}

#[test]
fn redundant_index_constraints_build_one_index() {
    let c = catalog(
        "CREATE TABLE k (id text UNIQUE PRIMARY KEY NOT NULL, a int UNIQUE, b int, \
         CONSTRAINT b_once UNIQUE (b), UNIQUE (b), CONSTRAINT a_named UNIQUE (a))",
    );
    assert_eq!(constraint_names(&c, "k"), ["a_named", "b_once", "k_pkey"]);
    assert_eq!(
        index_names(&c, "k"),
        ["public.a_named", "public.b_once", "public.k_pkey"]
    );
}

#[test]
fn null_defaults_are_no_defaults() {
    let mut c =
        catalog("CREATE TABLE t (a int DEFAULT NULL, b text DEFAULT NULL::text, c int DEFAULT 1)");
    assert_eq!(c.column(&name("t"), "a").unwrap().default, None);
    assert_eq!(c.column(&name("t"), "b").unwrap().default, None);
    replay(&mut c, "ALTER TABLE t ALTER COLUMN c SET DEFAULT NULL");
    assert_eq!(c.column(&name("t"), "c").unwrap().default, None);
}

#[test]
fn long_generated_names_are_truncated_like_postgresql() {
    let table = "a_rather_long_table_name_for_testing_truncation";
    let c = catalog(&format!(
        "CREATE TABLE {table} (some_rather_long_column_name int UNIQUE)"
    ));
    let names = constraint_names(&c, table);
    assert_eq!(
        names,
        ["a_rather_long_table_name_for_t_some_rather_long_column_name_key"]
    );
    assert_eq!(names[0].len(), 63);
}

#[test]
fn unique_constraints_avoid_existing_relation_names() {
    let c = catalog("CREATE TABLE t_a_key (x int); CREATE TABLE t (a int UNIQUE)");
    assert_eq!(constraint_names(&c, "t"), ["t_a_key1"]);
}

#[test]
fn using_index_renames_the_index_to_the_constraint() {
    let mut c = catalog("CREATE TABLE t (id int, code text)");
    c.begin_migration();
    replay(
        &mut c,
        "CREATE UNIQUE INDEX CONCURRENTLY t_code_idx ON t (code);\
         ALTER TABLE t ADD CONSTRAINT t_code_unique UNIQUE USING INDEX t_code_idx;\
         CREATE UNIQUE INDEX CONCURRENTLY t_id_idx ON t (id);\
         ALTER TABLE t ADD PRIMARY KEY USING INDEX t_id_idx;",
    );
    assert_eq!(
        index_names(&c, "t"),
        ["public.t_code_unique", "public.t_id_idx"]
    );
    assert!(matches!(
        &c.constraint(&name("t"), "t_code_unique").unwrap().kind,
        ConstraintKind::Unique { columns } if columns == &["code"]
    ));
    assert!(c.constraint(&name("t"), "t_id_idx").is_some());
    assert!(c.column(&name("t"), "id").unwrap().not_null);
    // Dropping the constraint drops its index.
    replay(&mut c, "ALTER TABLE t DROP CONSTRAINT t_code_unique");
    assert!(c.index(&name("t_code_unique")).is_none());
}

#[test]
fn dropping_a_column_drops_what_depends_on_it() {
    let mut c = catalog(
        "CREATE TABLE a (id bigserial PRIMARY KEY, x int, y int, z int, CHECK (x > y));\
         CREATE TABLE b (a_id bigint REFERENCES a (id));\
         CREATE INDEX a_x_y ON a (x, y); CREATE INDEX a_expr ON a ((x + 1));\
         CREATE INDEX a_partial ON a (z) WHERE y > 0;",
    );
    replay(&mut c, "ALTER TABLE a DROP COLUMN x");
    assert_eq!(index_names(&c, "a"), ["public.a_partial", "public.a_pkey"]);
    assert_eq!(constraint_names(&c, "a"), ["a_pkey"]);
    replay(
        &mut c,
        "ALTER TABLE a DROP COLUMN id CASCADE, DROP COLUMN y",
    );
    assert!(c.indexes_on(&name("a")).next().is_none());
    assert!(c.constraints_of(&name("a")).is_empty());
    assert!(c.constraints_of(&name("b")).is_empty());
    assert!(c.sequence(&name("a_id_seq")).is_none());
    let columns: Vec<&str> = c
        .relation(&name("a"))
        .unwrap()
        .columns
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(columns, ["z"]);
}

#[test]
fn dropping_a_table_drops_its_indexes_sequences_and_foreign_keys() {
    let mut c = catalog(
        "CREATE TABLE a (id serial PRIMARY KEY); CREATE TABLE b (a_id int REFERENCES a);\
         CREATE INDEX ON b (a_id);",
    );
    replay(&mut c, "DROP TABLE a CASCADE");
    assert!(c.relation(&name("a")).is_none());
    assert!(c.index(&name("a_pkey")).is_none());
    assert!(c.sequence(&name("a_id_seq")).is_none());
    assert!(c.constraints_of(&name("b")).is_empty());
    assert_eq!(index_names(&c, "b"), ["public.b_a_id_idx"]);
    // Re-creating it generates the same names again.
    replay(&mut c, "CREATE TABLE a (id serial PRIMARY KEY)");
    assert!(c.sequence(&name("a_id_seq")).is_some());
}

#[test]
fn renames_move_every_reference() {
    let mut c = catalog(
        "CREATE TABLE users (id int PRIMARY KEY, email text);\
         CREATE TABLE posts (author int REFERENCES users (id));\
         CREATE INDEX users_email ON users (email) WHERE email IS NOT NULL;\
         ALTER TABLE users ADD CONSTRAINT email_present CHECK (email IS NOT NULL);",
    );
    replay(
        &mut c,
        "ALTER TABLE users RENAME COLUMN email TO mail;\
         ALTER TABLE users RENAME COLUMN id TO user_id;\
         ALTER TABLE users RENAME TO accounts;",
    );
    let index = c.index(&name("users_email")).unwrap();
    assert_eq!(index.table, name("public.accounts"));
    assert_eq!(index.columns, ["mail"]);
    assert_eq!(index.predicate.as_deref(), Some("mail IS NOT NULL"));
    assert!(c.has_validated_not_null_check(&name("accounts"), "mail"));
    let fk = &c.constraints_of(&name("posts"))[0];
    assert!(
        matches!(&fk.kind, ConstraintKind::ForeignKey { references, referenced_columns, .. }
        if references == &name("public.accounts") && referenced_columns == &["user_id"])
    );
    // The primary key's index keeps its name and follows the table.
    assert_eq!(
        c.index(&name("users_pkey")).unwrap().table,
        name("public.accounts")
    );
}

#[test]
fn set_schema_moves_indexes_and_owned_sequences() {
    let mut c = catalog("CREATE TABLE t (id serial PRIMARY KEY); CREATE INDEX t_i ON t (id);");
    replay(&mut c, "ALTER TABLE IF EXISTS public.t SET SCHEMA private");
    assert!(c.relation(&name("t")).is_none());
    assert!(c.relation(&name("private.t")).is_some());
    assert_eq!(
        index_names(&c, "private.t"),
        ["private.t_i", "private.t_pkey"]
    );
    assert!(c.sequence(&name("private.t_id_seq")).is_some());
}

#[test]
fn constraint_and_index_renames_go_together() {
    let mut c = catalog("CREATE TABLE t (a int UNIQUE, b int PRIMARY KEY)");
    replay(
        &mut c,
        "ALTER TABLE t RENAME CONSTRAINT t_a_key TO t_a_unique;\
         ALTER INDEX t_pkey RENAME TO t_primary;",
    );
    assert_eq!(constraint_names(&c, "t"), ["t_a_unique", "t_primary"]);
    assert_eq!(
        index_names(&c, "t"),
        ["public.t_a_unique", "public.t_primary"]
    );
}

#[test]
fn partitions_get_the_parent_columns_and_indexes() {
    let mut c = catalog(
        "CREATE TABLE m (id bigint NOT NULL, at date NOT NULL, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);\
         CREATE TABLE m_2024 PARTITION OF m FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');\
         CREATE INDEX m_at ON m (at);",
    );
    assert_eq!(
        c.relation(&name("m")).unwrap().kind,
        RelationKind::PartitionedTable
    );
    assert_eq!(
        c.relation(&name("m")).unwrap().partition_key,
        Some(crate::schema::PartitionKey {
            strategy: "RANGE".into(),
            expressions: vec!["at".into()],
        })
    );
    let partition = c.relation(&name("m_2024")).unwrap();
    assert_eq!(partition.partition_key, None);
    let keyed = catalog(
        "CREATE TABLE b (id bigint, \"Kind\" text) PARTITION BY HASH (id, lower(\"Kind\"));",
    );
    assert_eq!(
        keyed.relation(&name("b")).unwrap().partition_key,
        Some(crate::schema::PartitionKey {
            strategy: "HASH".into(),
            expressions: vec!["id".into(), "lower(\"Kind\")".into()],
        })
    );
    assert_eq!(partition.partition_of, Some(name("public.m")));
    assert_eq!(partition.columns.len(), 2);
    assert_eq!(
        index_names(&c, "m_2024"),
        ["public.m_2024_at_idx", "public.m_2024_pkey"]
    );
    // ON ONLY builds nothing on the partitions; ADD COLUMN recurses.
    replay(
        &mut c,
        "CREATE INDEX m_id ON ONLY m (id); ALTER TABLE m ADD COLUMN note text;\
         CREATE TABLE m_old (id bigint NOT NULL, at date NOT NULL);\
         ALTER TABLE m ATTACH PARTITION m_old FOR VALUES FROM ('2000-01-01') TO ('2024-01-01');",
    );
    assert!(c.index(&name("m_id")).is_some());
    assert!(!c.indexes_on(&name("m_2024")).any(|i| i.columns == ["id"]));
    assert!(c.column(&name("m_2024"), "note").is_some());
    assert_eq!(c.partitions_of(&name("m")).count(), 2);
    assert!(c.indexes_on(&name("m_old")).any(|i| i.columns == ["id"]));
    replay(&mut c, "ALTER TABLE m DETACH PARTITION m_old");
    assert_eq!(c.partitions_of(&name("m")).count(), 1);
    // Dropping the parent drops its partitions.
    replay(&mut c, "DROP TABLE m");
    assert!(c.relation(&name("m_2024")).is_none());
    assert!(c.relation(&name("m_old")).is_some());
}

#[test]
fn tables_known_only_from_alter_are_existing_stubs() {
    let mut c = Catalog::default();
    c.begin_migration();
    replay(
        &mut c,
        "ALTER TABLE users ADD COLUMN age int;\
         ALTER TABLE users ADD CONSTRAINT age_nn CHECK (age IS NOT NULL) NOT VALID;\
         ALTER TABLE users VALIDATE CONSTRAINT age_nn;\
         ALTER TABLE users ADD CHECK (score IS NOT NULL) NOT VALID;\
         ALTER TABLE IF EXISTS ghosts ADD COLUMN x int;",
    );
    assert!(!c.is_new_relation(&name("users")));
    assert_eq!(c.relation(&name("users")).unwrap().origin, Origin::BASELINE);
    assert!(c.is_new_column(&name("users"), "age"));
    assert!(c.has_validated_not_null_check(&name("users"), "age"));
    // Named after the one identifier its expression uses, as PostgreSQL would.
    let check = c.constraint(&name("users"), "users_score_check").unwrap();
    assert!(!check.validated);
    assert!(c.relation(&name("ghosts")).is_none());
}

#[test]
fn unparsed_statements_are_read_from_their_tokens() {
    let mut c = catalog(
        "CREATE TABLE t (id int); CREATE INDEX t_id ON t (id);\
         CREATE SEQUENCE s; CREATE TYPE mood AS ENUM ('a');\
         CREATE TABLE comment (id int PRIMARY KEY);",
    );
    replay(
        &mut c,
        "ALTER INDEX IF EXISTS t_id RENAME TO t_id_renamed;\
         ALTER SEQUENCE s RENAME TO s2;\
         ALTER SEQUENCE s2 OWNED BY t.id;\
         ALTER TYPE mood SET SCHEMA app;\
         CREATE TABLE saved (comment_id int REFERENCES COMMENT ON UPDATE CASCADE ON DELETE CASCADE,\
             published timestamptz, CONSTRAINT saved_published_not_null NOT NULL published);\
         ALTER TABLE t ADD COLUMN n int, ADD CONSTRAINT t_n_not_null NOT NULL n;\
         CREATE TABLE copy (LIKE t INCLUDING ALL);",
    );
    assert!(c.index(&name("t_id_renamed")).is_some());
    let sequence = c.sequence(&name("s2")).unwrap();
    assert_eq!(sequence.owned_by, Some((name("public.t"), "id".to_owned())));
    assert!(c.user_type(&name("app.mood")).is_some());
    let fk = &c.constraints_of(&name("saved"))[0];
    assert!(
        matches!(&fk.kind, ConstraintKind::ForeignKey { references, referenced_columns, .. }
        if references == &name("public.comment") && referenced_columns == &["id"])
    );
    assert!(c.column(&name("saved"), "published").unwrap().not_null);
    assert!(c.column(&name("t"), "n").unwrap().not_null);
    assert_eq!(c.relation(&name("copy")).unwrap().columns.len(), 2);

    replay(
        &mut c,
        "DROP INDEX CONCURRENTLY IF EXISTS t_id_renamed, missing;\
         ALTER TABLE t ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (RESTART 5);",
    );
    assert!(c.index(&name("t_id_renamed")).is_none());
    assert!(c.column(&name("t"), "id").unwrap().identity.is_some());
    replay(
        &mut c,
        "ALTER TABLE t ALTER COLUMN id DROP IDENTITY IF EXISTS",
    );
    assert!(c.column(&name("t"), "id").unwrap().identity.is_none());
}

#[test]
fn enum_values_keep_their_order() {
    let mut c = catalog("CREATE TYPE status AS ENUM ('new', 'done')");
    replay(
        &mut c,
        "ALTER TYPE status ADD VALUE 'started' BEFORE 'done';\
         ALTER TYPE status ADD VALUE IF NOT EXISTS 'new';\
         ALTER TYPE status ADD VALUE 'archived' AFTER 'done';\
         ALTER TYPE status ADD VALUE 'Last';\
         ALTER TYPE status RENAME VALUE 'new' TO 'created';",
    );
    let TypeKind::Enum { values } = &c.user_type(&name("status")).unwrap().kind else {
        panic!("not an enum");
    };
    assert_eq!(values, &["created", "started", "done", "archived", "Last"]);
}

#[test]
fn renaming_a_type_retypes_its_columns() {
    let mut c = catalog("CREATE TYPE mood AS ENUM ('a'); CREATE TABLE t (m mood, ms mood[])");
    replay(&mut c, "ALTER TYPE mood RENAME TO feeling");
    let column = c.column(&name("t"), "m").unwrap();
    assert_eq!(
        column.data_type.as_ref().unwrap().to_string(),
        "public.feeling"
    );
    let column = c.column(&name("t"), "ms").unwrap();
    assert_eq!(
        column.data_type.as_ref().unwrap().to_string(),
        "public.feeling[]"
    );
}

#[test]
fn search_path_decides_where_names_go() {
    let mut c = catalog(
        "CREATE TABLE shared (id int);\
         SET search_path TO app, public;\
         CREATE TABLE local (id int);\
         ALTER TABLE shared ADD COLUMN x int;",
    );
    assert!(c.relation(&name("app.local")).is_some());
    assert!(c.column(&name("public.shared"), "x").is_some());
    assert_eq!(c.resolve(&name("local")), name("app.local"));
    assert_eq!(c.resolve(&name("shared")), name("public.shared"));
    // The next migration runs in a new session.
    c.begin_migration();
    assert_eq!(c.default_schema(), "public");
    replay(
        &mut c,
        "SET search_path = \"$user\", extensions; CREATE TABLE e (id int);\
         SELECT pg_catalog.set_config('search_path', '', false); CREATE TABLE p (id int);",
    );
    assert!(c.relation(&name("extensions.e")).is_some());
    assert!(c.relation(&name("public.p")).is_some());
}

#[test]
fn temporary_tables_shadow_and_vanish() {
    let mut c = catalog("CREATE TABLE t (id int); CREATE TEMP TABLE t (tmp int);");
    assert!(c.column(&name("t"), "tmp").is_some());
    assert!(c.column(&name("public.t"), "id").is_some());
    c.begin_migration();
    assert!(c.column(&name("t"), "id").is_some());
}

#[test]
fn nothing_is_new_before_the_first_migration() {
    let mut c = Catalog::default();
    replay(&mut c, "CREATE TABLE t (id int)");
    assert!(!c.is_new_relation(&name("t")));
    c.begin_migration();
    replay(&mut c, "CREATE INDEX ON t (id)");
    assert!(c.is_new_index(&name("t_id_idx")));
    assert!(!c.is_new_relation(&name("t")));
}
