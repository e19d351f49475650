//! Creating, enabling, disabling or dropping a trigger on an existing table locks it: SHARE ROW
//! EXCLUSIVE (no writes) for CREATE, ENABLE and DISABLE, ACCESS EXCLUSIVE (nothing) for DROP. The
//! statement is quick, but the lock queues behind every running query and everything queues behind
//! it. It also changes what every write to the table does from then on, while the application
//! version that did not expect it is still running.

use sqlparser::ast::{AlterTableOperation, Statement as Ast};

use super::syntax::AlterTable;
use super::{kinds, Category, Diagnostic, Kinds, Rule, Severity, StatementContext};
use crate::pg::locks::Words;
use crate::schema::RelationKind;
use crate::sql::name::fold_ident;
use crate::sql::{Kind, ObjectName};

pub const RULE: Rule = Rule {
    id: "trigger-on-existing-table",
    category: Category::Locking,
    default_severity: Severity::Warning,
    // A catalog change: the harm is the wait in the lock queue and what later writes do, not size.
    size_graded: false,
    summary: "CREATE/ENABLE/DISABLE/DROP TRIGGER on an existing table",
    doc: include_str!("../../rules/trigger-on-existing-table.md"),
    check,
    kinds: Kinds::Only(&[kinds::CREATE, kinds::ALTER, kinds::DROP]),
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Create,
    Enable,
    Disable,
    Drop,
}

/// One trigger change.
struct Change {
    action: Action,
    offset: usize,
    table: ObjectName,
    /// The trigger's name, or `ALL` / `USER` for ENABLE and DISABLE.
    trigger: Option<String>,
}

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    for change in changes(cx) {
        // INSTEAD OF triggers on views lock no table with rows.
        let is_view = cx
            .catalog
            .relation(&change.table)
            .is_some_and(|r| r.kind == RelationKind::View);
        if is_view {
            continue;
        }
        out.push(describe(cx, &change));
    }
}

fn describe(cx: &StatementContext, change: &Change) -> Diagnostic {
    let name = cx.qualified(&change.table);
    let trigger = change.trigger.as_deref().unwrap_or("");
    let all = matches!(trigger, "ALL" | "all");
    let (statement, lock, effect) = match change.action {
        Action::Create => (
            format!("CREATE TRIGGER {trigger}"),
            "SHARE ROW EXCLUSIVE",
            format!("from then on every matching write to {name} also runs the trigger function"),
        ),
        Action::Drop => (
            format!("DROP TRIGGER {trigger}"),
            "ACCESS EXCLUSIVE",
            "the application version still running may rely on what the trigger did".to_owned(),
        ),
        Action::Enable => (
            format!("ALTER TABLE … ENABLE TRIGGER {trigger}"),
            "SHARE ROW EXCLUSIVE",
            format!("from then on every matching write to {name} runs it"),
        ),
        Action::Disable if all => (
            format!("ALTER TABLE … DISABLE TRIGGER {trigger}"),
            "SHARE ROW EXCLUSIVE",
            "ALL includes the internal triggers that enforce foreign keys: until it is enabled again, \
             writes are not checked against them"
                .to_owned(),
        ),
        Action::Disable => (
            format!("ALTER TABLE … DISABLE TRIGGER {trigger}"),
            "SHARE ROW EXCLUSIVE",
            "until it is enabled again, every write skips what the trigger does, for every session".to_owned(),
        ),
    };
    let blocked = if lock == "ACCESS EXCLUSIVE" {
        "reads and writes"
    } else {
        "INSERT, UPDATE and DELETE"
    };
    let mut help =
        "run it with a short lock timeout and retry when it times out (`SET lock_timeout = \
                    '2s';`), at a quiet time"
            .to_owned();
    match change.action {
        Action::Create => help.push_str(
            "; keep the trigger function cheap, since it runs inside every write, and deploy application \
             code that expects it first",
        ),
        Action::Drop => help.push_str("; drop it only once no running application version depends on it"),
        Action::Disable => help.push_str(
            "; to skip triggers for a bulk change in one session only, `SET session_replication_role = \
             replica;` in that session avoids altering the table (it needs superuser)",
        ),
        Action::Enable => {}
    }
    cx.diagnostic(
        change.offset,
        Some(&change.table),
        format!(
            "{} on existing table {name} takes {lock}: {blocked} on {name} wait while it queues behind \
             running queries and until its transaction commits; {effect}",
            statement.trim_end()
        ),
        help,
    )
}

fn changes(cx: &StatementContext) -> Vec<Change> {
    let statement = cx.statement;
    let start = statement.range.start;
    match statement.ast() {
        Some(Ast::CreateTrigger(create)) => ObjectName::from_ast(&create.table_name)
            .map(|table| Change {
                action: Action::Create,
                offset: start,
                table,
                trigger: ObjectName::from_ast(&create.name).map(|n| n.name),
            })
            .into_iter()
            .collect(),
        Some(Ast::DropTrigger(drop)) => drop
            .table_name
            .as_ref()
            .and_then(ObjectName::from_ast)
            .map(|table| Change {
                action: Action::Drop,
                offset: start,
                table,
                trigger: ObjectName::from_ast(&drop.trigger_name).map(|n| n.name),
            })
            .into_iter()
            .collect(),
        Some(Ast::AlterTable(_)) => {
            let Some(alter) = AlterTable::of(cx) else {
                return Vec::new();
            };
            alter
                .operations
                .iter()
                .enumerate()
                .filter_map(|(i, operation)| {
                    let (action, name) = match operation {
                        AlterTableOperation::EnableTrigger { name }
                        | AlterTableOperation::EnableAlwaysTrigger { name }
                        | AlterTableOperation::EnableReplicaTrigger { name } => {
                            (Action::Enable, name)
                        }
                        AlterTableOperation::DisableTrigger { name } => (Action::Disable, name),
                        _ => return None,
                    };
                    Some(Change {
                        action,
                        offset: alter.offset(cx, i),
                        table: alter.table.clone(),
                        trigger: Some(trigger_name(&fold_ident(name))),
                    })
                })
                .collect()
        }
        Some(_) => Vec::new(),
        None => from_tokens(cx),
    }
}

/// `ALL` and `USER` are keywords, not trigger names: show them as such.
fn trigger_name(name: &str) -> String {
    match name {
        "all" | "user" => name.to_ascii_uppercase(),
        _ => name.to_owned(),
    }
}

/// The same, for statements sqlparser could not read.
fn from_tokens(cx: &StatementContext) -> Vec<Change> {
    let statement = cx.statement;
    let words = Words::of(cx.text, statement);
    let start = statement.range.start;
    match statement.class.kind {
        Kind::CreateTrigger | Kind::DropTrigger => {
            let action = if statement.class.kind == Kind::CreateTrigger {
                Action::Create
            } else {
                Action::Drop
            };
            let trigger_at = (0..words.len()).find(|&i| words.is(i, "trigger")).map(|i| {
                if words.seq_at(i + 1, &["if", "exists"]) {
                    i + 3
                } else {
                    i + 1
                }
            });
            words
                .name_after_top_level("on")
                .map(|table| Change {
                    action,
                    offset: start,
                    table,
                    trigger: trigger_at.and_then(|i| words.name_at(i)).map(|n| n.name),
                })
                .into_iter()
                .collect()
        }
        Kind::AlterTable => {
            let Some(table) = &statement.class.target else {
                return Vec::new();
            };
            words
                .alter_table_clauses()
                .into_iter()
                .filter_map(|clause| {
                    let action = if words.is(clause.start, "enable") {
                        Action::Enable
                    } else if words.is(clause.start, "disable") {
                        Action::Disable
                    } else {
                        return None;
                    };
                    let trigger = words.find_in(clause.clone(), &["trigger"])?;
                    Some(Change {
                        action,
                        offset: words.offset(clause.start)?,
                        table: table.clone(),
                        trigger: words.name_at(trigger + 1).map(|n| trigger_name(&n.name)),
                    })
                })
                .collect()
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::check_rule;

    const RULE: &str = "trigger-on-existing-table";
    const SCHEMA: &str =
        "CREATE TABLE orders (id bigint PRIMARY KEY, total numeric, updated_at timestamptz);\n\
                          CREATE VIEW order_view AS SELECT * FROM orders;";

    #[test]
    fn fires_on_create_trigger() {
        assert_eq!(
            check_rule(
                RULE,
                &[SCHEMA],
                "CREATE TRIGGER orders_touch BEFORE UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION touch();"
            ),
            "\
warning[trigger-on-existing-table]: CREATE TRIGGER orders_touch on existing table public.orders takes SHARE ROW EXCLUSIVE: INSERT, UPDATE and DELETE on public.orders wait while it queues behind running queries and until its transaction commits; from then on every matching write to public.orders also runs the trigger function
 --> migration.sql:1:1
  |
1 | CREATE TRIGGER orders_touch BEFORE UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION touch();
  | ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  |
  = help: run it with a short lock timeout and retry when it times out (`SET lock_timeout = '2s';`), at a quiet time; keep the trigger function cheap, since it runs inside every write, and deploy application code that expects it first

"
        );
    }

    #[test]
    fn fires_on_drop_enable_and_disable() {
        let report = check_rule(
            RULE,
            &[SCHEMA],
            "DROP TRIGGER IF EXISTS orders_touch ON orders;",
        );
        assert!(
            report.contains("DROP TRIGGER orders_touch on existing table public.orders takes ACCESS EXCLUSIVE: reads and writes"),
            "{report}"
        );
        let report = check_rule(
            RULE,
            &[SCHEMA],
            "ALTER TABLE orders DISABLE TRIGGER ALL, ENABLE TRIGGER orders_touch;",
        );
        assert!(report.contains("ALTER TABLE … DISABLE TRIGGER ALL on existing table public.orders takes SHARE ROW EXCLUSIVE"), "{report}");
        assert!(
            report.contains("internal triggers that enforce foreign keys"),
            "{report}"
        );
        assert!(report.contains("--> migration.sql:1:41"), "{report}");
        assert!(report.contains("session_replication_role"), "{report}");
    }

    #[test]
    fn fires_when_sqlparser_cannot_parse_the_statement() {
        let report = check_rule(
            RULE,
            &[SCHEMA],
            "CREATE TRIGGER orders_audit AFTER UPDATE OF total ON public.orders REFERENCING NEW TABLE AS n FOR EACH STATEMENT EXECUTE FUNCTION audit();",
        );
        assert!(
            report.contains("CREATE TRIGGER orders_audit on existing table public.orders"),
            "{report}"
        );
    }

    #[test]
    fn silent_on_new_tables_and_views() {
        for sql in [
            "CREATE TABLE t (id bigint);\nCREATE TRIGGER t_touch BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION touch();",
            "CREATE TRIGGER v_insert INSTEAD OF INSERT ON order_view FOR EACH ROW EXECUTE FUNCTION ins();",
        ] {
            assert_eq!(check_rule(RULE, &[SCHEMA], sql), "", "{sql}");
        }
    }
}
