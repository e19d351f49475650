//! Some commands exist only to rewrite a table: `ALTER TABLE … SET LOGGED | SET UNLOGGED | SET ACCESS
//! METHOD` write a new copy of the table and its indexes, `SET TABLESPACE` copies the table's files,
//! `CLUSTER` and `VACUUM FULL` rewrite it and rebuild every index. All of them hold ACCESS EXCLUSIVE
//! for the whole copy: on a large table, minutes to hours without reads or writes, and a full copy's
//! worth of free disk space.

use super::{Category, Diagnostic, Kinds, Rule, Severity, StatementContext};
use crate::pg::locks::Words;
use crate::schema::RelationKind;
use crate::sql::{Kind, ObjectName};

pub const RULE: Rule = Rule {
    id: "table-rewrite-command",
    category: Category::Locking,
    default_severity: Severity::Error,
    size_graded: true,
    summary: "a command that rewrites the whole table under ACCESS EXCLUSIVE",
    doc: include_str!("../../rules/table-rewrite-command.md"),
    check,
    kinds: Kinds::All,
};

/// The rewriting commands, as the message names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Command {
    SetLogged,
    SetUnlogged,
    SetTablespace,
    SetAccessMethod,
    Cluster,
    VacuumFull,
}

/// One rewrite the statement does.
struct Rewrite {
    command: Command,
    offset: usize,
    /// `None`: every table concerned (`CLUSTER;`, `VACUUM FULL;`).
    table: Option<ObjectName>,
}

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    for rewrite in rewrites(cx) {
        let (message, help) = describe(cx, &rewrite);
        out.push(cx.diagnostic(rewrite.offset, rewrite.table.as_ref(), message, help));
    }
}

fn rewrites(cx: &StatementContext) -> Vec<Rewrite> {
    let statement = cx.statement;
    let words = Words::of(cx.text, statement);
    let start = statement.range.start;
    match statement.class.kind {
        Kind::AlterTable => {
            let Some(table) = &statement.class.target else {
                return Vec::new();
            };
            // On a partitioned table these only set what future partitions get: nothing is copied.
            let partitioned = cx
                .catalog
                .relation(table)
                .is_some_and(|r| r.kind == RelationKind::PartitionedTable);
            if partitioned {
                return Vec::new();
            }
            words
                .alter_table_clauses()
                .into_iter()
                .filter_map(|clause| {
                    let at = clause.start;
                    let command = if words.seq_at(at, &["set", "logged"]) {
                        Command::SetLogged
                    } else if words.seq_at(at, &["set", "unlogged"]) {
                        Command::SetUnlogged
                    } else if words.seq_at(at, &["set", "tablespace"]) {
                        Command::SetTablespace
                    } else if words.seq_at(at, &["set", "access", "method"]) {
                        Command::SetAccessMethod
                    } else {
                        return None;
                    };
                    Some(Rewrite {
                        command,
                        offset: words.offset(at)?,
                        table: Some(table.clone()),
                    })
                })
                .collect()
        }
        Kind::Cluster => vec![Rewrite {
            command: Command::Cluster,
            offset: start,
            table: words.cluster_table(),
        }],
        Kind::Vacuum => match words.vacuum() {
            (false, _) => Vec::new(),
            (true, tables) if tables.is_empty() => vec![Rewrite {
                command: Command::VacuumFull,
                offset: start,
                table: None,
            }],
            (true, tables) => tables
                .into_iter()
                .map(|table| Rewrite {
                    command: Command::VacuumFull,
                    offset: start,
                    table: Some(table),
                })
                .collect(),
        },
        _ => Vec::new(),
    }
}

/// The message and the help for one rewrite.
fn describe(cx: &StatementContext, rewrite: &Rewrite) -> (String, String) {
    let name = rewrite.table.as_ref().map(|t| cx.qualified(t));
    let on = |what: &str| match &name {
        Some(name) => format!("{what} existing table {name}"),
        None => format!("{what} every table concerned"),
    };
    let blocked = |until: &str| match &name {
        Some(name) => format!("reads and writes on {name} are blocked until {until}"),
        None => "reads and writes on each table are blocked while it is rewritten".to_owned(),
    };
    let repack = "use pg_repack (or pg_squeeze), which rebuilds the table online and holds ACCESS \
                  EXCLUSIVE only for a moment at the start and the end";
    let no_online_form = "there is no online form: run it in a maintenance window with a short \
                          `SET lock_timeout`, or build a new table the way you want it, copy the rows in \
                          batches, and switch over with a rename in one short transaction";
    match rewrite.command {
        Command::SetLogged | Command::SetUnlogged => {
            let (clause, during, after) = if rewrite.command == Command::SetLogged {
                ("SET LOGGED", ", writing all of it to the WAL", "")
            } else {
                (
                    "SET UNLOGGED",
                    "",
                    "; afterwards the table is emptied after a crash and not replicated to standbys",
                )
            };
            (
                format!(
                    "ALTER TABLE … {clause} {} and all its indexes under ACCESS EXCLUSIVE{during}: {}{after}",
                    on("rewrites"),
                    blocked("the copy is done")
                ),
                no_online_form.to_owned(),
            )
        }
        Command::SetAccessMethod => (
            format!(
                "ALTER TABLE … SET ACCESS METHOD {} and all its indexes under ACCESS EXCLUSIVE: {}",
                on("rewrites"),
                blocked("the copy is done")
            ),
            no_online_form.to_owned(),
        ),
        Command::SetTablespace => (
            format!(
                "ALTER TABLE … SET TABLESPACE {} to the new tablespace under ACCESS EXCLUSIVE: {} (its \
                 indexes stay where they are)",
                on("copies every block of"),
                blocked("the copy is done")
            ),
            format!("{repack} (`pg_repack --table=… --tablespace=…`), or do it in a maintenance window"),
        ),
        Command::Cluster => (
            match &name {
                Some(_) => format!(
                    "CLUSTER {} in index order and rebuilds all its indexes under ACCESS EXCLUSIVE: {}, \
                     and it needs free disk space for a full copy",
                    on("rewrites"),
                    blocked("it is done")
                ),
                None => "CLUSTER without a table rewrites every table clustered before, one after the other, \
                         each under ACCESS EXCLUSIVE: reads and writes on each are blocked while it is \
                         rewritten"
                    .to_owned(),
            },
            format!("{repack} (`pg_repack --order-by=…` keeps rows in index order)"),
        ),
        Command::VacuumFull => (
            format!(
                "VACUUM FULL {} into a new file and rebuilds its indexes under ACCESS EXCLUSIVE: {}, and \
                 it needs free disk space for a full copy",
                on("rewrites"),
                blocked("it is done")
            ),
            format!(
                "plain VACUUM (no FULL) makes dead space reusable without blocking reads or writes; to give \
                 the space back to the operating system, {repack}"
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::check_rule;

    const RULE: &str = "table-rewrite-command";
    const SCHEMA: &str = "CREATE TABLE events (id bigint PRIMARY KEY, payload jsonb);\n\
                          CREATE TABLE logs (at date) PARTITION BY RANGE (at);";

    #[test]
    fn fires_on_vacuum_full() {
        assert_eq!(
            check_rule(RULE, &[SCHEMA], "VACUUM FULL events;"),
            "\
error[table-rewrite-command]: VACUUM FULL rewrites existing table public.events into a new file and rebuilds its indexes under ACCESS EXCLUSIVE: reads and writes on public.events are blocked until it is done, and it needs free disk space for a full copy
 --> migration.sql:1:1
  |
1 | VACUUM FULL events;
  | ^^^^^^^^^^^^^^^^^^
  |
  = help: plain VACUUM (no FULL) makes dead space reusable without blocking reads or writes; to give the space back to the operating system, use pg_repack (or pg_squeeze), which rebuilds the table online and holds ACCESS EXCLUSIVE only for a moment at the start and the end

"
        );
    }

    #[test]
    fn fires_on_alter_table_rewrites_at_their_clause() {
        let report = check_rule(
            RULE,
            &[SCHEMA],
            "ALTER TABLE events SET UNLOGGED;\nALTER TABLE events SET LOGGED, SET TABLESPACE fast_ssd;\n\
             ALTER TABLE events SET ACCESS METHOD heap2;",
        );
        assert_eq!(report.matches("error[").count(), 4, "{report}");
        assert!(
            report.contains(
                "afterwards the table is emptied after a crash and not replicated to standbys"
            ),
            "{report}"
        );
        assert!(report.contains("--> migration.sql:2:32"), "{report}");
        assert!(
            report.contains("SET TABLESPACE copies every block of existing table public.events"),
            "{report}"
        );
        assert!(
            report.contains("SET ACCESS METHOD rewrites existing table public.events"),
            "{report}"
        );
    }

    #[test]
    fn fires_on_cluster_and_whole_database_forms() {
        let report = check_rule(RULE, &[SCHEMA], "CLUSTER events USING events_pkey;");
        assert!(
            report.contains("CLUSTER rewrites existing table public.events in index order"),
            "{report}"
        );
        let report = check_rule(RULE, &[SCHEMA], "CLUSTER events_pkey ON events;");
        assert!(report.contains("existing table public.events"), "{report}");
        let report = check_rule(RULE, &[SCHEMA], "CLUSTER;");
        assert!(
            report.contains("CLUSTER without a table rewrites every table clustered before"),
            "{report}"
        );
        let report = check_rule(RULE, &[SCHEMA], "VACUUM (FULL, ANALYZE);");
        assert!(
            report.contains("VACUUM FULL rewrites every table concerned"),
            "{report}"
        );
    }

    #[test]
    fn silent_on_new_tables_partitioned_parents_and_harmless_forms() {
        for sql in [
            "VACUUM events;",
            "VACUUM (ANALYZE, FULL false) events;",
            "ALTER TABLE events SET (fillfactor = 70);",
            "ALTER TABLE logs SET TABLESPACE fast_ssd;",
            "CREATE TABLE t (id bigint);\nALTER TABLE t SET UNLOGGED;\nVACUUM FULL t;",
        ] {
            assert_eq!(check_rule(RULE, &[SCHEMA], sql), "", "{sql}");
        }
    }
}
