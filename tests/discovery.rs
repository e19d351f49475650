//! Discovery and loading of every supported migration layout, against the trees in
//! `fixtures/discovery/`. Paths are relative: cargo runs integration tests from the crate root, and
//! discovery must keep paths as the user spelled them.

use std::fs;
use std::path::{Path, PathBuf};

use migagent::migration::{
    discover, load, DiscoverOptions, Discovery, DownLocation, LoadError, Migration, MigrationRef,
    MigrationSet, Tool, Transaction,
};

mod common;

use common::scratch::Scratch;
use Transaction::{ImplicitMultiStatement as Implicit, None as NoTx, Wrapped};

const ROOT: &str = "fixtures/discovery";
const MAX_BYTES: u64 = 1 << 20;

fn fixture(rel: &str) -> PathBuf {
    Path::new(ROOT).join(rel)
}

/// Discovers paths that must all succeed and make exactly one set.
fn discover_set(paths: &[&str], options: &DiscoverOptions) -> MigrationSet {
    let paths: Vec<PathBuf> = paths.iter().map(|path| fixture(path)).collect();
    let Discovery {
        mut sets,
        errors,
        skipped,
    } = discover(&paths, options);
    assert!(errors.is_empty(), "unexpected errors: {errors:?}");
    assert!(
        skipped.is_empty(),
        "unexpected skipped entries: {skipped:?}"
    );
    assert_eq!(sets.len(), 1, "expected one set: {sets:?}");
    sets.remove(0)
}

fn discover_dir(dir: &str) -> MigrationSet {
    discover_set(&[dir], &DiscoverOptions::default())
}

/// The migrations' paths relative to the set's directory.
fn names(set: &MigrationSet) -> Vec<String> {
    set.migrations
        .iter()
        .map(|m| relative(set, &m.path))
        .collect()
}

fn relative(set: &MigrationSet, path: &Path) -> String {
    let rel = path
        .strip_prefix(&set.dir)
        .expect("paths start with the set's directory");
    rel.to_string_lossy().replace('\\', "/")
}

fn target_names(set: &MigrationSet) -> Vec<String> {
    set.targets
        .iter()
        .map(|&index| relative(set, &set.migrations[index].path))
        .collect()
}

fn versions(set: &MigrationSet) -> Vec<&str> {
    set.migrations.iter().map(|m| m.version.as_str()).collect()
}

/// Each migration's down, relative to the set's directory (`in file` for an in-file down).
fn downs(set: &MigrationSet) -> Vec<Option<String>> {
    set.migrations
        .iter()
        .map(|m| match &m.down {
            Some(DownLocation::File(path)) => Some(relative(set, path)),
            Some(DownLocation::InFile) => Some("in file".to_owned()),
            None => None,
        })
        .collect()
}

fn load_all(set: &MigrationSet, options: &DiscoverOptions) -> Vec<Migration> {
    set.migrations
        .iter()
        .map(|m| load(m, set.tool, options, MAX_BYTES).expect("fixture loads"))
        .collect()
}

/// Each migration's sections' transaction modes.
fn transactions(set: &MigrationSet) -> Vec<Vec<Transaction>> {
    transactions_with(set, &DiscoverOptions::default())
}

fn transactions_with(set: &MigrationSet, options: &DiscoverOptions) -> Vec<Vec<Transaction>> {
    load_all(set, options)
        .iter()
        .map(|migration| migration.sections.iter().map(|s| s.transaction).collect())
        .collect()
}

fn section_texts(migration: &Migration) -> Vec<&str> {
    migration
        .sections
        .iter()
        .map(|section| &migration.text[section.range.clone()])
        .collect()
}

#[test]
fn plain_sql_in_natural_order() {
    let set = discover_dir("plain");
    assert_eq!(set.tool, Tool::Plain);
    assert_eq!(set.dir, fixture("plain"));
    // .scratch.sql is hidden and notes.txt is not SQL.
    assert_eq!(
        names(&set),
        [
            "1_create_users.sql",
            "2_add_created_at.sql",
            "10_index_email.sql"
        ]
    );
    assert_eq!(
        set.migrations[0].path,
        Path::new("fixtures/discovery/plain/1_create_users.sql")
    );
    assert_eq!(versions(&set), ["1", "2", "10"]);
    assert_eq!(set.targets, [0, 1, 2]);
    assert_eq!(
        downs(&set),
        [None, Some("2_add_created_at.down.sql".to_owned()), None]
    );
    assert_eq!(transactions(&set), [[NoTx], [NoTx], [NoTx]]);
    let per_file = DiscoverOptions {
        plain_per_file_transaction: true,
        ..DiscoverOptions::default()
    };
    assert_eq!(
        transactions_with(&set, &per_file),
        [[Wrapped], [Wrapped], [Wrapped]]
    );
}

#[test]
fn latest_targets_the_last_migrations_of_a_directory() {
    let latest = |n| DiscoverOptions {
        latest: Some(n),
        ..DiscoverOptions::default()
    };
    assert_eq!(discover_set(&["plain"], &latest(1)).targets, [2]);
    assert_eq!(discover_set(&["plain"], &latest(2)).targets, [1, 2]);
    assert_eq!(discover_set(&["plain"], &latest(10)).targets, [0, 1, 2]);
}

#[test]
fn a_file_targets_itself_with_everything_before_it_as_history() {
    let set = discover_set(&["plain/2_add_created_at.sql"], &DiscoverOptions::default());
    assert_eq!(set.dir, fixture("plain"));
    assert_eq!(set.migrations.len(), 3);
    assert_eq!(target_names(&set), ["2_add_created_at.sql"]);
}

#[test]
fn paths_into_the_same_directory_merge_into_one_set() {
    let set = discover_set(
        &[
            "plain/10_index_email.sql",
            "plain/1_create_users.sql",
            "plain/10_index_email.sql",
        ],
        &DiscoverOptions::default(),
    );
    assert_eq!(set.targets, [0, 2]);

    // Another spelling of the directory joins the set named first.
    let other_spelling = PathBuf::from("./fixtures/discovery/plain/2_add_created_at.sql");
    let Discovery { sets, errors, .. } = discover(
        &[fixture("plain/1_create_users.sql"), other_spelling],
        &DiscoverOptions::default(),
    );
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(sets.len(), 1);
    assert_eq!(sets[0].dir, fixture("plain"));
    assert_eq!(sets[0].targets, [0, 1]);

    let latest = DiscoverOptions {
        latest: Some(1),
        ..DiscoverOptions::default()
    };
    let set = discover_set(&["plain", "plain/1_create_users.sql"], &latest);
    assert_eq!(set.targets, [0, 2]);
}

#[test]
fn prisma_folders() {
    let set = discover_dir("prisma");
    assert_eq!(set.tool, Tool::Prisma);
    assert_eq!(
        names(&set),
        [
            "20240101120000_init/migration.sql",
            "20240215093000_add_posts/migration.sql"
        ]
    );
    assert_eq!(versions(&set), ["20240101120000", "20240215093000"]);
    assert_eq!(downs(&set), [None, None]);
    assert_eq!(transactions(&set), [[Implicit], [Implicit]]);

    // A migration.sql belongs to the directory above its folder.
    let set = discover_set(
        &["prisma/20240101120000_init/migration.sql"],
        &DiscoverOptions::default(),
    );
    assert_eq!(set.dir, fixture("prisma"));
    assert_eq!(set.targets, [0]);
}

#[test]
fn drizzle_follows_the_journal() {
    let set = discover_dir("drizzle");
    assert_eq!(set.tool, Tool::Drizzle);
    // The journal lists idx 1 before idx 0, and omits 0002_unapplied_draft.sql.
    assert_eq!(names(&set), ["0000_init.sql", "0001_add_projects.sql"]);
    assert_eq!(versions(&set), ["0000", "0001"]);
    assert_eq!(transactions(&set), [[Wrapped], [Wrapped]]);

    let paths = [fixture("drizzle/0002_unapplied_draft.sql")];
    let Discovery { sets, errors, .. } = discover(&paths, &DiscoverOptions::default());
    assert!(sets.is_empty());
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].message.contains("not a drizzle migration"),
        "{}",
        errors[0]
    );
}

#[test]
fn atlas_follows_atlas_sum_and_txmode() {
    let set = discover_dir("atlas");
    assert_eq!(set.tool, Tool::Atlas);
    // The last file is not hashed into atlas.sum yet: it still comes, after the listed ones.
    assert_eq!(
        names(&set),
        [
            "20240301000000_create_orders.sql",
            "20240302000000_index_orders.sql",
            "20240303000000_add_status.sql"
        ]
    );
    assert_eq!(transactions(&set), [[Wrapped], [NoTx], [Wrapped]]);
}

#[test]
fn diesel_folders_with_down_and_metadata() {
    let set = discover_dir("diesel");
    assert_eq!(set.tool, Tool::Diesel);
    assert_eq!(
        names(&set),
        [
            "00000000000000_diesel_initial_setup/up.sql",
            "2024-01-10-120000_create_posts/up.sql",
            "2024-02-01-080000_index_posts_title/up.sql"
        ]
    );
    assert_eq!(
        versions(&set),
        ["00000000000000", "2024-01-10-120000", "2024-02-01-080000"]
    );
    assert_eq!(
        downs(&set),
        [
            Some("00000000000000_diesel_initial_setup/down.sql".to_owned()),
            Some("2024-01-10-120000_create_posts/down.sql".to_owned()),
            Some("2024-02-01-080000_index_posts_title/down.sql".to_owned()),
        ]
    );
    // metadata.toml says run_in_transaction = false for the index migration.
    assert_eq!(transactions(&set), [[Wrapped], [Wrapped], [NoTx]]);

    let set = discover_set(
        &["diesel/2024-01-10-120000_create_posts/up.sql"],
        &DiscoverOptions::default(),
    );
    assert_eq!(set.dir, fixture("diesel"));
    assert_eq!(set.targets, [1]);
}

#[test]
fn flyway_versions_repeatables_and_undo() {
    let set = discover_dir("flyway");
    assert_eq!(set.tool, Tool::Flyway);
    assert_eq!(
        names(&set),
        [
            "V1__create_accounts.sql",
            "V1.9__add_balance.sql",
            "V1.10__index_accounts_name.sql",
            "V2__create_transfers.sql",
            "V2.1__backfill_balance.sql",
            "R__account_summary.sql"
        ]
    );
    assert_eq!(
        versions(&set),
        ["1", "1.9", "1.10", "2", "2.1", "account_summary"]
    );
    assert_eq!(
        downs(&set),
        [
            None,
            None,
            None,
            Some("U2__create_transfers.sql".to_owned()),
            None,
            None
        ]
    );
    // V1.10 holds CREATE INDEX CONCURRENTLY; V2.1 has executeInTransaction=false in its .conf.
    assert_eq!(
        transactions(&set),
        [[Wrapped], [Wrapped], [NoTx], [Wrapped], [NoTx], [Wrapped]]
    );
}

#[test]
fn supabase_timestamps() {
    let set = discover_dir("supabase/migrations");
    assert_eq!(set.tool, Tool::Supabase);
    // seed.sql has no timestamp: the CLI does not run it as a migration.
    assert_eq!(
        names(&set),
        [
            "20240105093000_create_profiles.sql",
            "20240220151500_add_avatar.sql"
        ]
    );
    assert_eq!(versions(&set), ["20240105093000", "20240220151500"]);
    assert_eq!(transactions(&set), [[Wrapped], [Wrapped]]);
}

#[test]
fn dbmate_up_sections() {
    let set = discover_dir("dbmate");
    assert_eq!(set.tool, Tool::Dbmate);
    assert_eq!(
        names(&set),
        [
            "20240110080000_create_invoices.sql",
            "20240112090000_index_invoices_total.sql",
            "20240201100000_add_due_date.sql"
        ]
    );
    assert_eq!(downs(&set), vec![Some("in file".to_owned()); 3]);
    assert_eq!(transactions(&set), [[Wrapped], [NoTx], [Wrapped]]);

    let migrations = load_all(&set, &DiscoverOptions::default());
    assert_eq!(
        section_texts(&migrations[1]),
        ["CREATE INDEX CONCURRENTLY invoices_total_idx ON invoices (total_cents);\n\n"]
    );
}

#[test]
fn golang_migrate_orders_by_integer_version() {
    let set = discover_dir("golang-migrate");
    assert_eq!(set.tool, Tool::GolangMigrate);
    assert_eq!(
        names(&set),
        [
            "1_create_users.up.sql",
            "2_add_name.up.sql",
            "9_index_name.up.sql",
            "10_soft_delete.up.sql"
        ]
    );
    assert_eq!(versions(&set), ["1", "2", "9", "10"]);
    assert_eq!(
        downs(&set),
        [
            Some("1_create_users.down.sql".to_owned()),
            Some("2_add_name.down.sql".to_owned()),
            Some("9_index_name.down.sql".to_owned()),
            Some("10_soft_delete.down.sql".to_owned()),
        ]
    );
    assert_eq!(transactions(&set), vec![vec![Implicit]; 4]);
}

#[test]
fn sqlx_no_transaction_and_simple_files() {
    let set = discover_dir("sqlx");
    assert_eq!(set.tool, Tool::Sqlx);
    assert_eq!(
        names(&set),
        [
            "20240301000000_create_sessions.up.sql",
            "20240302000000_index_sessions.up.sql",
            "20240303000000_purge_expired.sql"
        ]
    );
    assert_eq!(
        downs(&set),
        [
            Some("20240301000000_create_sessions.down.sql".to_owned()),
            Some("20240302000000_index_sessions.down.sql".to_owned()),
            None
        ]
    );
    assert_eq!(transactions(&set), [[Wrapped], [NoTx], [Wrapped]]);
}

#[test]
fn liquibase_changesets() {
    let set = discover_dir("liquibase");
    assert_eq!(set.tool, Tool::Liquibase);
    // README.sql has no `--liquibase formatted sql` header.
    assert_eq!(names(&set), ["001_customers.sql", "002_customer_names.sql"]);
    assert_eq!(downs(&set), vec![Some("in file".to_owned()); 2]);
    assert_eq!(transactions(&set), [vec![Wrapped, NoTx], vec![Wrapped]]);

    let migrations = load_all(&set, &DiscoverOptions::default());
    let texts = section_texts(&migrations[0]);
    assert!(texts[0].starts_with("CREATE TABLE customers ("));
    assert!(texts[0].contains("--rollback DROP TABLE customers;"));
    assert!(texts[1].starts_with("CREATE INDEX CONCURRENTLY customers_email_idx"));
}

#[test]
fn a_forced_tool_overrides_detection() {
    let sqlx = DiscoverOptions {
        tool: Some(Tool::Sqlx),
        ..DiscoverOptions::default()
    };
    let set = discover_set(&["golang-migrate"], &sqlx);
    assert_eq!(set.tool, Tool::Sqlx);
    assert_eq!(set.migrations.len(), 4);
    assert_eq!(transactions(&set), vec![vec![Wrapped]; 4]);

    let plain = DiscoverOptions {
        tool: Some(Tool::Plain),
        ..DiscoverOptions::default()
    };
    let set = discover_set(&["supabase/migrations"], &plain);
    assert_eq!(set.tool, Tool::Plain);
    assert_eq!(
        names(&set),
        [
            "20240105093000_create_profiles.sql",
            "20240220151500_add_avatar.sql",
            "seed.sql"
        ]
    );
}

#[test]
fn errors_name_their_path_and_other_paths_go_on() {
    let paths = [
        fixture("does-not-exist"),
        fixture("empty"),
        fixture("plain/notes.txt"),
        fixture("plain/2_add_created_at.down.sql"),
        fixture("prisma"),
    ];
    let Discovery { sets, errors, .. } = discover(&paths, &DiscoverOptions::default());
    assert_eq!(sets.len(), 1);
    assert_eq!(sets[0].tool, Tool::Prisma);
    assert_eq!(errors.len(), 4, "{errors:?}");
    for (error, path) in errors.iter().zip(&paths) {
        assert_eq!(&error.path, path);
    }

    assert_eq!(errors[0].message, "no such file or directory");

    let looked_for = &errors[1].message;
    assert!(looked_for.starts_with("no migrations found; looked for "));
    for tool in Tool::ALL {
        assert!(looked_for.contains(tool.name()), "{looked_for}");
    }

    assert!(
        errors[2].message.contains("not a plain migration"),
        "{}",
        errors[2]
    );
    assert!(
        errors[3]
            .message
            .contains("down migration of fixtures/discovery/plain/2_add_created_at.sql"),
        "{}",
        errors[3]
    );
}

/// Writes `name` in the scratch and refers to it as a migration without a version or down.
fn scratch_migration(scratch: &Scratch, name: &str, bytes: &[u8]) -> MigrationRef {
    MigrationRef {
        path: scratch.write(name, bytes).path(name),
        version: String::new(),
        down: None,
    }
}

fn load_plain(migration: &MigrationRef, max_bytes: u64) -> Result<Migration, LoadError> {
    load(
        migration,
        Tool::Plain,
        &DiscoverOptions::default(),
        max_bytes,
    )
}

#[test]
fn load_rejects_binary_files() {
    let scratch = Scratch::new("binary");
    let migration = scratch_migration(&scratch, "1_blob.sql", b"SELECT 1;\n\0\x01\x02");
    assert_eq!(
        load_plain(&migration, MAX_BYTES).unwrap_err(),
        LoadError::Binary
    );
}

#[test]
fn load_reports_where_utf8_breaks() {
    let scratch = Scratch::new("utf8");
    // Line 2 is `-- café na` (10 characters) and then a Latin-1 `ï`.
    let migration = scratch_migration(
        &scratch,
        "1_latin1.sql",
        b"SELECT 1;\n-- caf\xc3\xa9 na\xefve\n",
    );
    assert_eq!(
        load_plain(&migration, MAX_BYTES).unwrap_err(),
        LoadError::InvalidUtf8 {
            line: 2,
            column: 11
        }
    );
}

#[test]
fn load_refuses_files_over_the_limit() {
    let set = discover_dir("plain");
    let migration = &set.migrations[0];
    let size = fs::metadata(&migration.path).expect("fixture exists").len();
    assert_eq!(
        load_plain(migration, 10).unwrap_err(),
        LoadError::TooLarge {
            bytes: size,
            limit: 10
        }
    );
    assert!(load_plain(migration, size).is_ok());
}

#[test]
fn load_reports_io_errors() {
    let missing = MigrationRef {
        path: fixture("plain/99_missing.sql"),
        version: "99".to_owned(),
        down: None,
    };
    assert!(matches!(
        load_plain(&missing, MAX_BYTES),
        Err(LoadError::Io(_))
    ));
}

#[test]
fn load_keeps_a_bom_out_of_sections_and_accepts_empty_files() {
    let scratch = Scratch::new("bom");
    let migration = scratch_migration(&scratch, "1_bom.sql", "\u{feff}SELECT 1;\n".as_bytes());
    let loaded = load_plain(&migration, MAX_BYTES).expect("loads");
    assert!(loaded.text.starts_with('\u{feff}'));
    assert_eq!(section_texts(&loaded), ["SELECT 1;\n"]);

    let dbmate = scratch_migration(
        &scratch,
        "2_bom.sql",
        "\u{feff}-- migrate:up\nSELECT 2;\n-- migrate:down\n".as_bytes(),
    );
    let loaded = load(
        &dbmate,
        Tool::Dbmate,
        &DiscoverOptions::default(),
        MAX_BYTES,
    )
    .expect("loads");
    assert_eq!(section_texts(&loaded), ["SELECT 2;\n"]);

    let empty = scratch_migration(&scratch, "3_empty.sql", b"");
    let loaded = load_plain(&empty, MAX_BYTES).expect("loads");
    assert_eq!(loaded.text, "");
    assert!(section_texts(&loaded).iter().all(|text| text.is_empty()));
}

/// The skipped entries of one discovery, as (name relative to the scratch dir, would be a migration).
fn skipped_names(discovery: &Discovery, root: &Path) -> Vec<(String, bool)> {
    let mut names: Vec<(String, bool)> = discovery
        .skipped
        .iter()
        .map(|skipped| {
            let rel = skipped.path.strip_prefix(root).unwrap_or(&skipped.path);
            (
                rel.to_string_lossy().into_owned(),
                skipped.would_be_migration,
            )
        })
        .collect();
    names.sort();
    names
}

#[test]
fn links_out_of_the_directory_fifos_and_broken_links_are_skipped_and_named() {
    let scratch = Scratch::new("unread");
    let outside = scratch.path("outside");
    fs::create_dir_all(outside.join("folder")).unwrap();
    fs::write(outside.join("secret"), "SELECT 'secret';").unwrap();
    let dir = scratch.path("migrations");
    fs::create_dir_all(dir.join("0007_dir.sql")).unwrap();
    fs::write(dir.join("0001_a.sql"), "SELECT 1;").unwrap();
    std::os::unix::fs::symlink(outside.join("secret"), dir.join("0002_b.sql")).unwrap();
    let fifo = std::process::Command::new("mkfifo")
        .arg(dir.join("0003_c.sql"))
        .status()
        .unwrap();
    assert!(fifo.success());
    std::os::unix::fs::symlink("0004_loop.sql", dir.join("0004_loop.sql")).unwrap();
    std::os::unix::fs::symlink("missing.sql", dir.join("0005_dangling.sql")).unwrap();
    std::os::unix::fs::symlink("0001_a.sql", dir.join("0006_inside.sql")).unwrap();
    std::os::unix::fs::symlink(outside.join("secret"), dir.join("notes.txt")).unwrap();
    std::os::unix::fs::symlink(outside.join("secret"), dir.join("0001_a.down.sql")).unwrap();
    std::os::unix::fs::symlink(&outside, dir.join("subdir")).unwrap();

    let discovery = discover(std::slice::from_ref(&dir), &DiscoverOptions::default());
    assert!(discovery.errors.is_empty(), "{:?}", discovery.errors);
    let set = &discovery.sets[0];
    // A link inside the directory is reviewed; a down file that is skipped is no one's down.
    assert_eq!(names(set), ["0001_a.sql", "0006_inside.sql"]);
    assert_eq!(downs(set), [None, None]);
    assert_eq!(
        skipped_names(&discovery, &dir),
        [
            ("0001_a.down.sql".to_owned(), false),
            ("0002_b.sql".to_owned(), true),
            ("0003_c.sql".to_owned(), true),
            ("0004_loop.sql".to_owned(), true),
            ("0005_dangling.sql".to_owned(), true),
            ("0007_dir.sql".to_owned(), true),
            ("notes.txt".to_owned(), false),
            ("subdir".to_owned(), false),
        ]
    );
    let message = |name: &str| {
        let skipped = discovery
            .skipped
            .iter()
            .find(|skipped| skipped.path.ends_with(name))
            .unwrap();
        skipped.to_string()
    };
    assert!(
        message("0002_b.sql").starts_with(&format!(
            "a symbolic link to {}, outside the directory under review: not followed",
            outside.join("secret").display()
        )),
        "{}",
        message("0002_b.sql")
    );
    assert!(message("0002_b.sql").contains("a migration went unreviewed"));
    assert!(message("0003_c.sql").contains("named pipe (FIFO)"));
    assert!(message("0004_loop.sql").contains("cannot be resolved"));
    assert!(message("0005_dangling.sql").contains("to missing.sql, which does not exist"));
    assert!(message("0007_dir.sql").contains("a directory, not a file"));
    assert!(message("notes.txt").contains("skipped (it would not be a plain migration)"));

    // Named directly, the link is refused with the same reason.
    let discovery = discover(&[dir.join("0002_b.sql")], &DiscoverOptions::default());
    assert_eq!(discovery.errors.len(), 1);
    assert!(discovery.errors[0]
        .message
        .contains("outside the directory under review"));
}

#[test]
fn a_directory_of_only_unreadable_entries_still_names_them() {
    let scratch = Scratch::new("only-links");
    std::os::unix::fs::symlink("/etc/hostname", scratch.path("0001_a.sql")).unwrap();
    let discovery = discover(&[scratch.dir().to_path_buf()], &DiscoverOptions::default());
    assert!(discovery.sets.is_empty());
    assert!(discovery.errors[0]
        .message
        .starts_with("no migrations found"));
    assert_eq!(
        skipped_names(&discovery, scratch.dir()),
        [("0001_a.sql".to_owned(), true)]
    );
}

#[test]
fn per_migration_folders_are_not_followed_out_of_the_directory() {
    let scratch = Scratch::new("prisma-links");
    let outside = scratch.path("outside");
    fs::create_dir_all(outside.join("20240301_evil")).unwrap();
    fs::write(outside.join("20240301_evil/migration.sql"), "SELECT 1;").unwrap();
    let dir = scratch.path("migrations");
    fs::create_dir_all(dir.join("20240101_init")).unwrap();
    fs::create_dir_all(dir.join("20240201_linked")).unwrap();
    fs::write(dir.join("migration_lock.toml"), "provider = \"postgresql\"").unwrap();
    fs::write(dir.join("20240101_init/migration.sql"), "SELECT 1;").unwrap();
    std::os::unix::fs::symlink(
        outside.join("20240301_evil/migration.sql"),
        dir.join("20240201_linked/migration.sql"),
    )
    .unwrap();
    std::os::unix::fs::symlink(outside.join("20240301_evil"), dir.join("20240301_evil")).unwrap();

    let discovery = discover(std::slice::from_ref(&dir), &DiscoverOptions::default());
    let set = &discovery.sets[0];
    assert_eq!(set.tool, Tool::Prisma);
    assert_eq!(names(set), ["20240101_init/migration.sql"]);
    assert_eq!(
        skipped_names(&discovery, &dir),
        [
            ("20240201_linked/migration.sql".to_owned(), true),
            ("20240301_evil".to_owned(), true),
        ]
    );
}

#[test]
fn side_files_are_not_read_through_links_out_of_the_directory() {
    let scratch = Scratch::new("flyway-conf");
    let outside = scratch.path("outside.conf");
    fs::write(&outside, "executeInTransaction=false\n").unwrap();
    let dir = scratch.path("db");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("V1__a.sql"), "SELECT 1;").unwrap();
    fs::write(dir.join("V2__b.sql"), "SELECT 1;").unwrap();
    fs::write(dir.join("V2__b.sql.conf"), "executeInTransaction=false\n").unwrap();
    std::os::unix::fs::symlink(&outside, dir.join("V1__a.sql.conf")).unwrap();
    let discovery = discover(std::slice::from_ref(&dir), &DiscoverOptions::default());
    let set = &discovery.sets[0];
    assert_eq!(set.tool, Tool::Flyway);
    assert_eq!(transactions(set), [[Wrapped], [NoTx]]);
    assert_eq!(
        skipped_names(&discovery, &dir),
        [("V1__a.sql.conf".to_owned(), false)]
    );
}

#[test]
fn names_that_are_not_utf8_are_reviewed_under_their_own_bytes() {
    use std::os::unix::ffi::OsStrExt;
    let scratch = Scratch::new("latin1-names");
    let name = std::ffi::OsStr::from_bytes(b"0002_caf\xe9.sql");
    fs::write(scratch.path("0001_a.sql"), "SELECT 1;").unwrap();
    fs::write(scratch.path(name), "SELECT 2;").unwrap();
    fs::write(
        scratch.path(std::ffi::OsStr::from_bytes(b"0002_caf\xe9.down.sql")),
        "",
    )
    .unwrap();
    let discovery = discover(&[scratch.dir().to_path_buf()], &DiscoverOptions::default());
    assert!(discovery.skipped.is_empty(), "{:?}", discovery.skipped);
    let set = &discovery.sets[0];
    assert_eq!(set.migrations.len(), 2);
    assert_eq!(set.migrations[1].path, scratch.path(name));
    assert_eq!(set.migrations[1].version, "0002");
    assert!(matches!(
        &set.migrations[1].down,
        Some(DownLocation::File(down)) if down.as_os_str().as_bytes().ends_with(b"caf\xe9.down.sql")
    ));
    let loaded = load(
        &set.migrations[1],
        set.tool,
        &DiscoverOptions::default(),
        MAX_BYTES,
    )
    .expect("loads");
    assert_eq!(loaded.text, "SELECT 2;");
}

#[test]
fn names_that_would_print_alike_are_both_reported() {
    use std::os::unix::ffi::OsStrExt;
    let scratch = Scratch::new("ambiguous-names");
    fs::write(scratch.path("0001_a.sql"), "SELECT 1;").unwrap();
    fs::write(
        scratch.path(std::ffi::OsStr::from_bytes(b"0002_\xe9.sql")),
        "SELECT 2;",
    )
    .unwrap();
    fs::write(scratch.path("0002_\\xe9.sql"), "SELECT 3;").unwrap();
    let discovery = discover(&[scratch.dir().to_path_buf()], &DiscoverOptions::default());
    assert_eq!(names(&discovery.sets[0]), ["0001_a.sql"]);
    assert_eq!(discovery.skipped.len(), 2, "{:?}", discovery.skipped);
    for skipped in &discovery.skipped {
        assert!(skipped.would_be_migration, "{skipped:?}");
        assert!(skipped
            .to_string()
            .contains("prints like another file's name"));
    }
}
