//! `DROP SEQUENCE` of a sequence that existed before the migration deletes its position for good: a
//! sequence recreated later starts over and hands out values that may already be stored as ids.
//! Column defaults that call `nextval` on it make the drop fail, or with `CASCADE` lose their
//! default; the finding names the ones the model knows. A sequence created earlier in the same
//! migration is skipped.

use sqlparser::ast::ObjectType;

use super::fix::{known, Undo};
use super::syntax::{dropped, sql_ident, sql_name, Dropped};
use super::{kinds, Category, Diagnostic, Kinds, Rule, Severity, StatementContext};
use crate::schema::ddl::create_sequence;
use crate::schema::naming::quote_literal;
use crate::schema::Catalog;
use crate::sql::{Kind, ObjectName};

pub const RULE: Rule = Rule {
    id: "drop-sequence",
    category: Category::DataLoss,
    default_severity: Severity::Warning,
    size_graded: false,
    summary: "DROP SEQUENCE deletes its position; defaults that use it fail or are dropped",
    doc: include_str!("../../rules/drop-sequence.md"),
    check,
    kinds: Kinds::Only(&[kinds::DROP]),
};

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    let current = cx.catalog.current_migration();
    for Dropped {
        name: sequence,
        offset,
        cascade,
    } in dropped(cx, ObjectType::Sequence, Kind::DropSequence)
    {
        let known = cx.catalog.sequence(&sequence);
        if known.is_some_and(|s| s.origin == current) {
            continue;
        }
        let name = cx.qualified(&sequence);
        let mut message = format!(
            "DROP SEQUENCE deletes {name} and its position for good: a sequence recreated later starts \
             over and hands out values that may already be stored as ids, and the application version \
             still running fails on every nextval('{name}') (relation \"{}\" does not exist)",
            sequence.name
        );
        let identity = known
            .and_then(|s| s.owned_by.as_ref())
            .filter(|(table, column)| {
                cx.catalog
                    .column(table, column)
                    .is_some_and(|c| c.identity.is_some())
            });
        let resolved = cx.catalog.resolve(&sequence);
        let users = cx.catalog.columns_where(|column| {
            column
                .default
                .as_deref()
                .and_then(nextval_target)
                .is_some_and(|target| cx.catalog.resolve(&target) == resolved)
        });
        if let Some((table, column)) = identity {
            message.push_str(&format!(
                "; PostgreSQL refuses it: the sequence belongs to identity column {table}.{column} \
                 (`ALTER TABLE {} ALTER COLUMN {} DROP IDENTITY` removes both)",
                sql_name(table),
                sql_ident(column)
            ));
        } else if !users.is_empty() && cascade {
            message.push_str(&format!(
                "; CASCADE also drops the default of {}: INSERTs that leave the column out then store \
                 NULL or fail on NOT NULL",
                users.join(", ")
            ));
        } else if !users.is_empty() {
            message.push_str(&format!(
                "; it fails while {} takes its default from it",
                users.join(", ")
            ));
        }
        let mut help = format!(
            "stop using it first (drop the column defaults that call nextval on it, and every \
             nextval in the application), deploy that, and drop it in a later migration; if its \
             position may still matter, record it first (`SELECT last_value FROM {};`)",
            sql_name(&resolved)
        );
        if let Ok(undo) = down(cx.catalog, std::slice::from_ref(&sequence), cascade) {
            help.push_str(&format!(
                "; the down migration re-creates it at its first value: `{}`",
                undo.sql.join(" ")
            ));
        }
        out.push(cx.diagnostic(offset, Some(&sequence), message, help));
    }
}

/// The down of `DROP SEQUENCE names [CASCADE]`: each sequence again with its options and owner, and
/// with CASCADE the column defaults that drew from it. Its position is gone (`data_loss`): it starts
/// again at its first value.
pub fn down(catalog: &Catalog, names: &[ObjectName], cascade: bool) -> Result<Undo, String> {
    let mut undo = Undo {
        data_loss: true,
        ..Undo::default()
    };
    for name in names {
        let resolved = catalog.resolve(name);
        let sequence = known(catalog.sequence(&resolved), "sequence", &resolved)?;
        let sequence_sql = sql_name(&sequence.name);
        undo.sql.push(create_sequence(sequence, None));
        if let Some((table, column)) = &sequence.owned_by {
            undo.sql.push(format!(
                "ALTER SEQUENCE {sequence_sql} OWNED BY {}.{};",
                sql_name(table),
                sql_ident(column)
            ));
        }
        if cascade {
            undo.sql.extend(defaults_from(catalog, &resolved));
        }
        undo.notes.push(format!(
            "Sequence {resolved} comes back at its first value: its position is gone. Before \
             anything calls nextval on it, move it past the values in use (`SELECT setval({}, \
             max(id)) FROM …;`).",
            quote_literal(&sequence_sql)
        ));
    }
    Ok(undo)
}

/// `SET DEFAULT` again for every column whose default draws from `sequence` (CASCADE dropped them).
fn defaults_from(catalog: &Catalog, sequence: &ObjectName) -> Vec<String> {
    let mut sql: Vec<String> = catalog
        .relations()
        .flat_map(|relation| {
            relation.columns.iter().filter_map(move |column| {
                let default = column.default.as_deref()?;
                let target = nextval_target(default)?;
                (catalog.resolve(&target) == *sequence).then(|| {
                    format!(
                        "ALTER TABLE {} ALTER COLUMN {} SET DEFAULT {default};",
                        sql_name(&relation.name),
                        sql_ident(&column.name)
                    )
                })
            })
        })
        .collect();
    sql.sort();
    sql
}

/// The sequence a default of the form `nextval('name'::regclass)` draws from, with PostgreSQL's
/// identifier rules applied to the name inside the string (`'"Order_seq"'`, `'app.order_seq'`).
fn nextval_target(default: &str) -> Option<ObjectName> {
    let lower = default.to_ascii_lowercase();
    let call = lower.find("nextval(")?;
    let rest = default.get(call + "nextval(".len()..)?.trim_start();
    let literal = rest.strip_prefix('\'')?;
    let end = literal.find('\'')?;
    let mut parts: Vec<String> = split_dotted(&literal[..end]);
    let name = parts.pop()?;
    Some(ObjectName {
        schema: parts.pop(),
        name,
    })
}

/// `a."B".c` → `["a", "B", "c"]`: quoted parts keep their case, bare parts fold to lower case.
fn split_dotted(text: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut part = String::new();
    let mut quoted = false;
    let mut was_quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                part.push('"');
                chars.next();
            }
            '"' => {
                quoted = !quoted;
                was_quoted = true;
            }
            '.' if !quoted => {
                parts.push(fold(&part, was_quoted));
                part.clear();
                was_quoted = false;
            }
            c => part.push(c),
        }
    }
    parts.push(fold(&part, was_quoted));
    parts
}

fn fold(part: &str, quoted: bool) -> String {
    if quoted {
        part.to_owned()
    } else {
        part.trim().to_lowercase()
    }
}

#[cfg(test)]
mod tests {
    use super::nextval_target;
    use crate::rules::testing::check_rule;
    use crate::sql::ObjectName;

    const RULE: &str = "drop-sequence";
    const HISTORY: &str = "CREATE SEQUENCE invoice_number_seq;\n\
                           CREATE TABLE invoices (id bigserial PRIMARY KEY, number bigint NOT NULL DEFAULT nextval('invoice_number_seq'));\n\
                           CREATE SEQUENCE legacy_seq;\n\
                           CREATE TABLE users (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY);";

    #[test]
    fn fires_on_an_unused_sequence() {
        assert_eq!(
            check_rule(RULE, &[HISTORY], "DROP SEQUENCE legacy_seq;"),
            "\
warning[drop-sequence]: DROP SEQUENCE deletes public.legacy_seq and its position for good: a sequence recreated later starts over and hands out values that may already be stored as ids, and the application version still running fails on every nextval('public.legacy_seq') (relation \"legacy_seq\" does not exist)
 --> migration.sql:1:15
  |
1 | DROP SEQUENCE legacy_seq;
  |               ^^^^^^^^^^
  |
  = help: stop using it first (drop the column defaults that call nextval on it, and every nextval in the application), deploy that, and drop it in a later migration; if its position may still matter, record it first (`SELECT last_value FROM public.legacy_seq;`); the down migration re-creates it at its first value: `CREATE SEQUENCE public.legacy_seq;`

"
        );
    }

    #[test]
    fn names_the_defaults_that_use_it() {
        let report = check_rule(RULE, &[HISTORY], "DROP SEQUENCE invoice_number_seq;");
        assert!(
            report.contains("; it fails while public.invoices.number takes its default from it"),
            "{report}"
        );
        let report = check_rule(
            RULE,
            &[HISTORY],
            "DROP SEQUENCE IF EXISTS invoice_number_seq, invoices_id_seq CASCADE;",
        );
        assert_eq!(
            report.matches("warning[drop-sequence]").count(),
            2,
            "{report}"
        );
        assert!(
            report.contains("; CASCADE also drops the default of public.invoices.number:"),
            "{report}"
        );
        assert!(
            report.contains("; CASCADE also drops the default of public.invoices.id:"),
            "{report}"
        );
    }

    #[test]
    fn an_identity_sequence_cannot_be_dropped() {
        let report = check_rule(RULE, &[HISTORY], "DROP SEQUENCE users_id_seq;");
        assert!(
            report.contains("; PostgreSQL refuses it: the sequence belongs to identity column public.users.id (`ALTER TABLE public.users ALTER COLUMN id DROP IDENTITY` removes both)"),
            "{report}"
        );
    }

    #[test]
    fn fires_on_an_unknown_sequence() {
        let report = check_rule(RULE, &[], "DROP SEQUENCE billing.\"Order_seq\";");
        assert!(report.contains("deletes billing.Order_seq"), "{report}");
    }

    #[test]
    fn silent_on_a_sequence_created_in_the_same_migration() {
        for sql in [
            "CREATE SEQUENCE scratch_seq;\nDROP SEQUENCE scratch_seq;",
            "CREATE TABLE t (id serial);\nDROP SEQUENCE t_id_seq CASCADE;",
            "DROP TABLE invoices;",
        ] {
            assert_eq!(check_rule(RULE, &[HISTORY], sql), "", "{sql}");
        }
    }

    #[test]
    fn reads_nextval_defaults() {
        let name = |schema: Option<&str>, name: &str| Some(ObjectName::new(schema, name));
        assert_eq!(
            nextval_target("nextval('invoice_number_seq'::regclass)"),
            name(None, "invoice_number_seq")
        );
        assert_eq!(
            nextval_target("NEXTVAL( 'App.\"Order\"\"s_seq\"')"),
            name(Some("app"), "Order\"s_seq")
        );
        assert_eq!(nextval_target("now()"), None);
    }
}
