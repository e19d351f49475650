//! Table sizes for severity grading: the JSON `migagent stats --url` writes and `review --stats` reads
//! (`{"tables": {"public.users": {"rows": 12000000, "total_bytes": 5368709120}}}`).
//!
//! Only sizes leave the database: `pg_class.reltuples` (the planner's estimate, `-1` when the table was
//! never analysed) and `pg_total_relation_size`. The connection is read-only twice over, so a wrong URL
//! can never make migagent change production.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::postgres::{connect, db_error, redact};

/// Default `small-table-rows`: tables with fewer rows are small enough that a rewrite or scan under
/// a strong lock takes milliseconds.
pub const DEFAULT_SMALL_TABLE_ROWS: u64 = 10_000;

/// Sizes by `schema.table`, with exact unquoted names (`public.User`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stats {
    pub tables: BTreeMap<String, TableSize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableSize {
    /// Estimated rows; negative when PostgreSQL has never analysed the table (size unknown).
    pub rows: i64,
    /// Table, indexes and TOAST, in bytes.
    pub total_bytes: i64,
}

/// User tables, partitioned parents and materialized views, with their sizes.
const SIZES_QUERY: &str = "SELECT n.nspname, c.relname, c.reltuples::bigint, \
     pg_total_relation_size(c.oid) \
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE c.relkind IN ('r', 'p', 'm') \
     AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
     AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%' \
     ORDER BY 1, 2";

impl Stats {
    /// Reads a stats file; the error names the file and what is wrong with it.
    pub fn load(path: &Path) -> Result<Stats, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("--stats {}: cannot read it: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| {
            format!(
                "--stats {}: not a migagent stats file ({e}); write one with `migagent stats --url URL --output FILE`",
                path.display()
            )
        })
    }

    /// The size of a table, by its `schema.table` name.
    pub fn table(&self, name: &str) -> Option<TableSize> {
        self.tables.get(name).copied()
    }

    /// Connects read-only to the database `url` names and reads every user table's size.
    pub fn fetch(url: &str) -> Result<Stats, String> {
        let config = read_only_config(url)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the async runtime: {e}"))?;
        runtime.block_on(fetch_with(config))
    }

    /// Pretty JSON, ending with a newline.
    pub fn to_json(&self) -> String {
        let mut json = serde_json::to_string_pretty(self)
            .expect("a map of names to integers always serializes");
        json.push('\n');
        json
    }
}

/// Parses the URL and makes every transaction of the session read-only from its first statement on.
pub fn read_only_config(url: &str) -> Result<tokio_postgres::Config, String> {
    let mut config: tokio_postgres::Config = url.parse().map_err(|e| {
        format!(
            "{} is not a valid PostgreSQL URL ({e}); use postgres://user@host:port/database",
            redact(url)
        )
    })?;
    let options = match config.get_options() {
        Some(existing) if !existing.is_empty() => {
            format!("{existing} -c default_transaction_read_only=on")
        }
        _ => "-c default_transaction_read_only=on".to_owned(),
    };
    config.options(&options);
    Ok(config)
}

/// Connects with `config` (already read-only) and reads the sizes.
async fn fetch_with(config: tokio_postgres::Config) -> Result<Stats, String> {
    let client = connect_read_only(&config).await?;
    let rows = client
        .query(SIZES_QUERY, &[])
        .await
        .map_err(|e| format!("cannot read table sizes: {}", db_error(&e)))?;
    let mut stats = Stats::default();
    for row in rows {
        let (schema, table): (String, String) = (row.get(0), row.get(1));
        stats.tables.insert(
            format!("{schema}.{table}"),
            TableSize {
                rows: row.get(2),
                total_bytes: row.get(3),
            },
        );
    }
    Ok(stats)
}

/// Connects and, as a second guard besides the startup option (which a pooler may drop), makes the
/// session read-only.
pub async fn connect_read_only(
    config: &tokio_postgres::Config,
) -> Result<tokio_postgres::Client, String> {
    let (client, _) = connect(config, "").await?;
    client
        .batch_execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
        .await
        .map_err(|e| format!("cannot make the session read-only: {}", db_error(&e)))?;
    Ok(client)
}

/// "48 M rows, 21 GB", "1,200 rows, 96 kB": a size as a reviewer reads it.
pub fn describe_size(size: TableSize) -> String {
    format!(
        "{}, {}",
        format_rows(size.rows),
        format_bytes(size.total_bytes)
    )
}

/// Exact with thousands separators below a million, then rounded to M or G rows.
fn format_rows(rows: i64) -> String {
    let unit = if rows == 1 { "row" } else { "rows" };
    if rows >= 1_000_000_000 {
        format!("{} G {unit}", rows / 1_000_000_000)
    } else if rows >= 1_000_000 {
        format!("{} M {unit}", rows / 1_000_000)
    } else {
        format!("{} {unit}", thousands(rows))
    }
}

/// `1,200`: digits grouped by thousands.
pub fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    if n < 0 {
        out.insert(0, '-');
    }
    out
}

/// Bytes in powers of 1024 with PostgreSQL's unit names (`pg_size_pretty`): bytes, kB, MB, GB, TB.
fn format_bytes(bytes: i64) -> String {
    const UNITS: [&str; 4] = ["kB", "MB", "GB", "TB"];
    if bytes < 1024 {
        return format!("{bytes} bytes");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{} {}", value.round(), UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn size(rows: i64, total_bytes: i64) -> TableSize {
        TableSize { rows, total_bytes }
    }

    #[test]
    fn sizes_read_like_a_reviewer_writes_them() {
        assert_eq!(
            describe_size(size(48_000_000, 21 * 1024 * 1024 * 1024)),
            "48 M rows, 21 GB"
        );
        assert_eq!(describe_size(size(1_200, 96 * 1024)), "1,200 rows, 96 kB");
        assert_eq!(describe_size(size(1, 8192)), "1 row, 8 kB");
        assert_eq!(describe_size(size(0, 0)), "0 rows, 0 bytes");
        assert_eq!(
            describe_size(size(999_999, 5 * 1024 * 1024)),
            "999,999 rows, 5 MB"
        );
    }

    #[test]
    fn loads_the_documented_format() {
        let stats: Stats = serde_json::from_str(
            r#"{"tables": {"public.users": {"rows": 12000000, "total_bytes": 5368709120}}}"#,
        )
        .unwrap();
        assert_eq!(
            stats.table("public.users"),
            Some(size(12_000_000, 5_368_709_120))
        );
        assert_eq!(
            serde_json::from_str::<Stats>(&stats.to_json()).unwrap(),
            stats
        );
    }

    #[test]
    fn load_errors_name_the_file() {
        let missing = Stats::load(Path::new("/nonexistent/stats.json")).unwrap_err();
        assert!(missing.contains("/nonexistent/stats.json"), "{missing}");
        let dir = std::env::temp_dir().join(format!("migagent-stats-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bad = dir.join("bad.json");
        std::fs::write(&bad, r#"{"tables": {"public.t": {"rows": "many"}}}"#).unwrap();
        let error = Stats::load(&bad).unwrap_err();
        assert!(
            error.contains("bad.json") && error.contains("migagent stats"),
            "{error}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            redact("postgres://app:s3cret@db.example:5432/prod?sslmode=require"),
            "postgres://app:***@db.example:5432/prod?sslmode=require"
        );
        assert_eq!(
            redact("postgresql://app@/prod?host=/tmp&password=s3cret"),
            "postgresql://app@/prod?host=/tmp&password=***"
        );
        assert_eq!(
            redact("postgres://ci:pa/ss@db/app"),
            "postgres://ci:***@db/app"
        );
        let error = read_only_config("postgres://app:s3cret@db:notaport/prod").unwrap_err();
        assert!(!error.contains("s3cret"), "{error}");
    }

    #[test]
    fn sessions_are_read_only_from_the_start() {
        let config = read_only_config("postgres://app@localhost/prod").unwrap();
        assert_eq!(
            config.get_options(),
            Some("-c default_transaction_read_only=on")
        );
        let config =
            read_only_config("postgres://app@localhost/prod?options=-c%20work_mem%3D4MB").unwrap();
        assert_eq!(
            config.get_options(),
            Some("-c work_mem=4MB -c default_transaction_read_only=on")
        );
    }
}
