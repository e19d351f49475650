//! `ALTER TABLE … ADD COLUMN` that rewrites the table and every index on it while holding ACCESS
//! EXCLUSIVE: a volatile default (any non-null default before PostgreSQL 11), a serial type, an
//! identity column, a stored generated column, or a domain type with a CHECK constraint. Adding a
//! nullable column or one with a non-volatile default is metadata-only since PostgreSQL 11.

use sqlparser::ast::{
    AlterTableOperation, ColumnDef, ColumnOption, DataType, Expr, GeneratedAs,
    GeneratedExpressionMode, Value,
};

use super::batch::{batched_update, BatchKey};
use super::fix::{not_null_via_check, Fix, Step};
use super::syntax::{sql_ident, AlterTable};
use super::{kinds, Category, Diagnostic, Kinds, Rule, Severity, StatementContext};
use crate::schema::TypeKind;
use crate::sql::name::fold_ident;
use crate::sql::ObjectName;

pub const RULE: Rule = Rule {
    id: "add-column-rewrites-table",
    category: Category::Locking,
    default_severity: Severity::Error,
    size_graded: true,
    summary: "ADD COLUMN that rewrites the table under ACCESS EXCLUSIVE",
    doc: include_str!("../../rules/add-column-rewrites-table.md"),
    check,
    kinds: Kinds::Only(&[kinds::ALTER]),
};

/// Volatile functions commonly used as column defaults: PostgreSQL must evaluate them once per
/// existing row, so the table is rewritten. `now()`, `current_timestamp` and friends are stable and
/// stored once (no rewrite since PostgreSQL 11).
const VOLATILE_FUNCTIONS: &[&str] = &[
    "clock_timestamp",
    "random",
    "random_normal",
    "gen_random_uuid",
    "gen_random_bytes",
    "uuid_generate_v1",
    "uuid_generate_v1mc",
    "uuid_generate_v4",
    "uuidv4",
    "uuidv7",
    "nextval",
    "timeofday",
    "txid_current",
];

/// The first version that adds a column with a non-volatile default without rewriting.
const FAST_DEFAULT_SINCE: u32 = 11;

const SERIAL_TYPES: &[&str] = &[
    "serial",
    "serial4",
    "bigserial",
    "serial8",
    "smallserial",
    "serial2",
];

/// Why an added column rewrites the table.
enum Cause {
    VolatileDefault(String),
    DefaultBeforeFastDefaults(String),
    Serial(String),
    Identity,
    StoredGenerated,
    DomainWithCheck(String),
}

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    let Some(alter) = AlterTable::of(cx) else {
        return;
    };
    let table = &alter.table;
    for (i, operation) in alter.operations.iter().enumerate() {
        let AlterTableOperation::AddColumn { column_def, .. } = operation else {
            continue;
        };
        let Some(cause) = rewrite_cause(cx, column_def) else {
            continue;
        };
        let (name, table_sql) = (alter.qualified(cx), alter.table_sql(cx));
        let column = fold_ident(&column_def.name);
        let column_sql = sql_ident(&column);
        let data_type = column_def.data_type.to_string().to_lowercase();
        let version = cx.settings.pg_version;
        let mut fix = None;
        let (what, help) = match cause {
            Cause::VolatileDefault(function) => {
                fix = backfill_fix(cx, alter, &table_sql, column_def);
                let help = match &fix {
                    Some(fix) => format!(
                        "add it without a default and set the default for new rows (`{}`), backfill \
                         existing rows in batches that each commit (`{}`){}",
                        fix.steps[0].sql.replace('\n', " "),
                        fix.steps[1].sql.replace('\n', " "),
                        match fix.steps.get(2..) {
                            Some(rest) if !rest.is_empty() => format!(
                                ", then make it NOT NULL without a long lock (`{}`)",
                                rest.iter()
                                    .map(|step| step.sql.as_str())
                                    .collect::<Vec<_>>()
                                    .join(" ")
                            ),
                            _ => String::new(),
                        }
                    ),
                    None => format!(
                        "add it without a default (`ALTER TABLE {table_sql} ADD COLUMN {column_sql} \
                         {data_type};`), then `ALTER TABLE {table_sql} ALTER COLUMN {column_sql} SET \
                         DEFAULT …;` (applies to new rows only), and backfill existing rows in batches"
                    ),
                };
                (format!("with volatile DEFAULT {function}()"), help)
            }
            Cause::DefaultBeforeFastDefaults(default) => (
                format!(
                    "with DEFAULT {default} on PostgreSQL {version} (any non-null default rewrites \
                     before PostgreSQL 11)"
                ),
                format!(
                    "add it without a default, then `ALTER TABLE {table_sql} ALTER COLUMN {column_sql} \
                     SET DEFAULT {default};` (applies to new rows only), and backfill existing rows in batches"
                ),
            ),
            Cause::Serial(serial) => (
                format!("of type {serial} (its nextval() default is volatile)"),
                format!(
                    "add a plain {} column, create the sequence yourself and set it as the column's \
                     DEFAULT in a separate statement (new rows only), then backfill existing rows in batches",
                    serial_base(&serial)
                ),
            ),
            Cause::Identity => (
                "as an identity column (every existing row gets a sequence value)".to_owned(),
                format!(
                    "add a plain {data_type} column, backfill it in batches, make it NOT NULL with the \
                     CHECK … NOT VALID recipe, then `ALTER TABLE {table_sql} ALTER COLUMN {column_sql} \
                     ADD GENERATED BY DEFAULT AS IDENTITY (START WITH <max + 1>);` (no rewrite)"
                ),
            ),
            Cause::StoredGenerated => (
                "as a STORED generated column (computed for every existing row)".to_owned(),
                "add a plain column kept up to date by a trigger (or by the application) and backfill \
                 existing rows in batches; on PostgreSQL 18 or later a VIRTUAL generated column needs \
                 no rewrite"
                    .to_owned(),
            ),
            Cause::DomainWithCheck(domain) => (
                format!(
                    "of domain type {domain}, which has a CHECK constraint (every existing row is \
                     checked and rewritten)"
                ),
                "add it with the domain's base type and enforce the rule with a table CHECK \
                 constraint added NOT VALID and validated in a separate transaction"
                    .to_owned(),
            ),
        };
        out.push(cx.diagnostic(
            alter.offset(cx, i),
            Some(table),
            format!(
                "ADD COLUMN {column} {what} rewrites {name} and all its indexes under ACCESS EXCLUSIVE: \
                 reads and writes on {name} are blocked until every row is rewritten"
            ),
            help,
        ).with_fix(fix.filter(|_| cx.fixable())));
    }
}

/// A column with a volatile default, without the rewrite: add it bare and set the default for new
/// rows, backfill existing rows in batches over the table's primary key, then NOT NULL through a
/// validated CHECK when the column was declared NOT NULL. `None` when the model knows no key to
/// batch by, or the column carries constraints the steps would have to rebuild.
fn backfill_fix(
    cx: &StatementContext,
    alter: &AlterTable,
    table_sql: &str,
    column: &ColumnDef,
) -> Option<Fix> {
    let mut default = None;
    let mut not_null = false;
    for option in &column.options {
        match &option.option {
            ColumnOption::Default(expr) => default = Some(expr),
            ColumnOption::NotNull => not_null = true,
            ColumnOption::Null => {}
            _ => return None,
        }
    }
    let default = default?;
    let key = BatchKey::primary_key_of(cx.catalog, &alter.table)?;
    let head = alter.head_sql(cx)?;
    let name = fold_ident(&column.name);
    let column_sql = sql_ident(&name);
    let mut steps = vec![
        Step::transactional(
            format!(
                "{head} ADD COLUMN {column_sql} {};\nALTER TABLE {table_sql} ALTER COLUMN {column_sql} \
                 SET DEFAULT {default};",
                column.data_type
            ),
            "adds the column without a default (no rewrite) and sets the default for new rows",
        ),
        Step::outside_transaction(
            batched_update(
                table_sql,
                &key,
                &format!("{column_sql} = {default}"),
                Some(&format!("{column_sql} IS NULL")),
            ),
            "fills existing rows a batch at a time, committing after each batch",
        ),
    ];
    if not_null {
        let constraint = format!("{}_{name}_not_null", alter.table.name);
        let set_not_null =
            format!("ALTER TABLE {table_sql} ALTER COLUMN {column_sql} SET NOT NULL;");
        steps.extend(not_null_via_check(
            table_sql,
            &column_sql,
            &constraint,
            &set_not_null,
        ));
    }
    Some(Fix::replace(steps))
}

fn rewrite_cause(cx: &StatementContext, column: &ColumnDef) -> Option<Cause> {
    if let Some(serial) = serial_type(&column.data_type) {
        return Some(Cause::Serial(serial));
    }
    for option in &column.options {
        match &option.option {
            ColumnOption::Generated {
                generated_as,
                generation_expr,
                generation_expr_mode,
                ..
            } => {
                if generation_expr.is_none()
                    && matches!(generated_as, GeneratedAs::Always | GeneratedAs::ByDefault)
                {
                    return Some(Cause::Identity);
                }
                if generation_expr.is_some()
                    && !matches!(generation_expr_mode, Some(GeneratedExpressionMode::Virtual))
                {
                    return Some(Cause::StoredGenerated);
                }
            }
            ColumnOption::Default(expr) if !is_null(expr) => {
                let sql = expr.to_string();
                if let Some(function) = volatile_function(&sql) {
                    return Some(Cause::VolatileDefault(function));
                }
                if cx.settings.pg_version < FAST_DEFAULT_SINCE {
                    return Some(Cause::DefaultBeforeFastDefaults(sql));
                }
            }
            _ => {}
        }
    }
    domain_with_check(cx, &column.data_type).map(Cause::DomainWithCheck)
}

fn is_null(expr: &Expr) -> bool {
    match expr {
        Expr::Nested(inner) => is_null(inner),
        Expr::Value(value) => matches!(value.value, Value::Null),
        _ => false,
    }
}

/// The volatile function a default expression calls, from [`VOLATILE_FUNCTIONS`]: a name (possibly
/// schema-qualified) followed by `(`, outside string literals.
fn volatile_function(sql: &str) -> Option<String> {
    let chars: Vec<char> = sql.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            // Skip the literal; '' and \' do not end it.
            i += 1;
            while i < chars.len() {
                match chars[i] {
                    '\\' => i += 2,
                    '\'' if chars.get(i + 1) == Some(&'\'') => i += 2,
                    '\'' => break,
                    _ => i += 1,
                }
            }
            i += 1;
        } else if c.is_alphabetic() || c == '_' || c == '"' {
            let quoted = c == '"';
            let start = if quoted { i + 1 } else { i };
            let mut end = start;
            while end < chars.len()
                && (if quoted {
                    chars[end] != '"'
                } else {
                    chars[end].is_alphanumeric() || chars[end] == '_' || chars[end] == '$'
                })
            {
                end += 1;
            }
            let word: String = chars[start..end].iter().collect();
            let word = if quoted { word } else { word.to_lowercase() };
            i = if quoted { end + 1 } else { end };
            let mut next = i;
            while chars.get(next).is_some_and(|c| c.is_whitespace()) {
                next += 1;
            }
            if chars.get(next) == Some(&'(') && VOLATILE_FUNCTIONS.contains(&word.as_str()) {
                return Some(word);
            }
        } else {
            i += 1;
        }
    }
    None
}

fn custom_type_name(data_type: &DataType) -> Option<ObjectName> {
    match data_type {
        DataType::Custom(name, _) => ObjectName::from_ast(name),
        _ => None,
    }
}

fn serial_type(data_type: &DataType) -> Option<String> {
    let name = custom_type_name(data_type)?;
    let schema_ok = name.schema.as_deref().is_none_or(|s| s == "pg_catalog");
    (schema_ok && SERIAL_TYPES.contains(&name.name.as_str())).then_some(name.name)
}

fn serial_base(serial: &str) -> &'static str {
    match serial {
        "bigserial" | "serial8" => "bigint",
        "smallserial" | "serial2" => "smallint",
        _ => "integer",
    }
}

fn domain_with_check(cx: &StatementContext, data_type: &DataType) -> Option<String> {
    let name = custom_type_name(data_type)?;
    let user_type = cx.catalog.user_type(&name)?;
    matches!(
        user_type.kind,
        TypeKind::Domain {
            has_check: true,
            ..
        }
    )
    .then(|| cx.qualified(&name))
}

#[cfg(test)]
mod tests {
    use super::volatile_function;
    use crate::migration::Transaction;
    use crate::review::{review_sql, ReviewOptions};
    use crate::rules::testing::{check_rule, fix_sql, render_rule};
    use crate::rules::RuleSettings;

    const RULE: &str = "add-column-rewrites-table";
    const USERS: &str = "CREATE TABLE users (id bigint PRIMARY KEY, email text);";

    fn check_on(pg_version: u32, sql: &str) -> String {
        let options = ReviewOptions {
            rule_settings: RuleSettings {
                pg_version,
                ..RuleSettings::default()
            },
            ..ReviewOptions::default()
        };
        render_rule(
            RULE,
            &review_sql("migration.sql", &[USERS], sql, Transaction::None, &options),
        )
    }

    #[test]
    fn the_backfill_walks_a_uuid_key_in_key_order() {
        let sql = fix_sql(
            RULE,
            &["CREATE TABLE jobs (uuid uuid PRIMARY KEY, name text);"],
            "ALTER TABLE jobs ADD COLUMN current_run_uuid uuid DEFAULT gen_random_uuid();",
        )
        .expect("a fix");
        assert_eq!(sql.len(), 2, "nullable: no NOT NULL steps: {sql:?}");
        assert_eq!(
            sql[1],
            "DO $batch$\n\
             DECLARE\n  batch_after public.jobs.uuid%TYPE;\n  batch_end public.jobs.uuid%TYPE;\n\
             BEGIN\n  LOOP\n    \
             SELECT uuid INTO batch_end FROM (SELECT uuid FROM public.jobs WHERE batch_after IS NULL \
             OR uuid > batch_after ORDER BY uuid LIMIT 10000) AS batch ORDER BY uuid DESC LIMIT 1;\n    \
             EXIT WHEN batch_end IS NULL;\n    \
             UPDATE public.jobs SET current_run_uuid = gen_random_uuid() WHERE (batch_after IS NULL \
             OR uuid > batch_after) AND uuid <= batch_end AND (current_run_uuid IS NULL);\n    \
             COMMIT;\n    batch_after := batch_end;\n  END LOOP;\nEND $batch$;"
        );
    }

    #[test]
    fn no_backfill_fix_without_a_key_or_beside_other_constraints() {
        for (history, sql) in [
            (
                "CREATE TABLE logs (at timestamptz, line text);",
                "ALTER TABLE logs ADD COLUMN id uuid DEFAULT gen_random_uuid();",
            ),
            (
                USERS,
                "ALTER TABLE users ADD COLUMN token uuid DEFAULT gen_random_uuid() UNIQUE;",
            ),
        ] {
            assert_eq!(fix_sql(RULE, &[history], sql), None, "{sql}");
        }
    }

    #[test]
    fn fires_on_a_volatile_default() {
        assert_eq!(
            check_rule(
                RULE,
                &[USERS],
                "ALTER TABLE users ADD COLUMN token uuid NOT NULL DEFAULT gen_random_uuid();"
            ),
            "\
error[add-column-rewrites-table]: ADD COLUMN token with volatile DEFAULT gen_random_uuid() rewrites public.users and all its indexes under ACCESS EXCLUSIVE: reads and writes on public.users are blocked until every row is rewritten
 --> migration.sql:1:19
  |
1 | ALTER TABLE users ADD COLUMN token uuid NOT NULL DEFAULT gen_random_uuid();
  |                   ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  |
  = help: add it without a default and set the default for new rows (`ALTER TABLE users ADD COLUMN token UUID; ALTER TABLE public.users ALTER COLUMN token SET DEFAULT gen_random_uuid();`), backfill existing rows in batches that each commit (`DO $batch$ DECLARE   batch_start bigint;   last_key bigint; BEGIN   SELECT min(id), max(id) INTO batch_start, last_key FROM public.users;   WHILE batch_start <= last_key LOOP     UPDATE public.users SET token = gen_random_uuid() WHERE id >= batch_start AND id < batch_start + 10000 AND (token IS NULL);     COMMIT;     batch_start := batch_start + 10000;   END LOOP; END $batch$;`), then make it NOT NULL without a long lock (`ALTER TABLE public.users ADD CONSTRAINT users_token_not_null CHECK (token IS NOT NULL) NOT VALID; ALTER TABLE public.users VALIDATE CONSTRAINT users_token_not_null; ALTER TABLE public.users ALTER COLUMN token SET NOT NULL; ALTER TABLE public.users DROP CONSTRAINT users_token_not_null;`)

"
        );
    }

    #[test]
    fn fires_on_serial_identity_generated_and_domains() {
        let report = check_rule(
            RULE,
            &[USERS],
            "ALTER TABLE users ADD COLUMN seq bigserial;\n\
             ALTER TABLE users ADD COLUMN n bigint GENERATED ALWAYS AS IDENTITY;\n\
             ALTER TABLE users ADD COLUMN m bigint GENERATED BY DEFAULT AS IDENTITY (START WITH 10);\n\
             ALTER TABLE users ADD COLUMN domain text GENERATED ALWAYS AS (split_part(email, '@', 2)) STORED;\n\
             ALTER TABLE users ADD COLUMN at timestamptz DEFAULT clock_timestamp(), ADD COLUMN r float8 DEFAULT pg_catalog.random();",
        );
        for expected in [
            "ADD COLUMN seq of type bigserial (its nextval() default is volatile)",
            "add a plain bigint column",
            "ADD COLUMN n as an identity column",
            "ADD COLUMN m as an identity column",
            "ADD GENERATED BY DEFAULT AS IDENTITY",
            "ADD COLUMN domain as a STORED generated column",
            "ADD COLUMN at with volatile DEFAULT clock_timestamp()",
            "ADD COLUMN r with volatile DEFAULT random()",
            "migration.sql:5:72",
        ] {
            assert!(report.contains(expected), "{expected}\n{report}");
        }
    }

    #[test]
    fn fires_on_a_domain_with_a_check() {
        let domain = "CREATE DOMAIN positive_int AS integer CHECK (VALUE > 0);";
        let report = check_rule(
            RULE,
            &[USERS, domain],
            "ALTER TABLE users ADD COLUMN score positive_int;",
        );
        assert!(
            report.contains(
                "ADD COLUMN score of domain type public.positive_int, which has a CHECK constraint"
            ),
            "{report}"
        );
    }

    #[test]
    fn any_default_rewrites_before_postgres_11() {
        let report = check_on(
            10,
            "ALTER TABLE users ADD COLUMN active boolean NOT NULL DEFAULT true;",
        );
        assert!(
            report.contains("ADD COLUMN active with DEFAULT true on PostgreSQL 10 (any non-null default rewrites before PostgreSQL 11)"),
            "{report}"
        );
        assert_eq!(
            check_on(10, "ALTER TABLE users ADD COLUMN active boolean;"),
            ""
        );
        assert_eq!(
            check_on(
                10,
                "ALTER TABLE users ADD COLUMN active boolean DEFAULT NULL;"
            ),
            ""
        );
        assert_eq!(
            check_on(
                11,
                "ALTER TABLE users ADD COLUMN active boolean NOT NULL DEFAULT true;"
            ),
            ""
        );
    }

    #[test]
    fn silent_on_metadata_only_additions_and_new_tables() {
        for sql in [
            "ALTER TABLE users ADD COLUMN nickname text;",
            "ALTER TABLE users ADD COLUMN active boolean NOT NULL DEFAULT false;",
            "ALTER TABLE users ADD COLUMN created_at timestamptz NOT NULL DEFAULT now();",
            "ALTER TABLE users ADD COLUMN created_at timestamptz DEFAULT CURRENT_TIMESTAMP;",
            "ALTER TABLE users ADD COLUMN day date DEFAULT CURRENT_DATE;",
            "ALTER TABLE users ADD COLUMN tags text[] DEFAULT '{}'::text[];",
            "ALTER TABLE users ADD COLUMN note text DEFAULT 'random()';",
            "ALTER TABLE users ADD COLUMN owner text DEFAULT current_user;",
            "CREATE TABLE events (id bigint);\nALTER TABLE events ADD COLUMN seq bigserial, ADD COLUMN token uuid DEFAULT gen_random_uuid();",
        ] {
            assert_eq!(check_rule(RULE, &[USERS], sql), "", "{sql}");
        }
    }

    #[test]
    fn finds_volatile_calls_outside_literals() {
        assert_eq!(
            volatile_function("nextval('s'::REGCLASS)").as_deref(),
            Some("nextval")
        );
        assert_eq!(
            volatile_function("public.gen_random_uuid()").as_deref(),
            Some("gen_random_uuid")
        );
        assert_eq!(
            volatile_function("(random() * 10)::INT").as_deref(),
            Some("random")
        );
        assert_eq!(volatile_function("'random()'"), None);
        assert_eq!(volatile_function("E'it\\'s random()'"), None);
        assert_eq!(volatile_function("\"Random\"()"), None);
        assert_eq!(volatile_function("now()"), None);
        assert_eq!(volatile_function("random"), None);
    }
}
