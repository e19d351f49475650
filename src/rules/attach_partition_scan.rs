//! `ALTER TABLE parent ATTACH PARTITION p FOR VALUES …` must prove that every row of `p` fits the
//! bounds. Unless a validated CHECK constraint on `p` already implies them, it scans all of `p` while
//! holding ACCESS EXCLUSIVE on it: nobody can read or write `p` until the scan is done. The parent
//! only gets SHARE UPDATE EXCLUSIVE (since PostgreSQL 12), so the scan is the whole problem, and a
//! CHECK added `NOT VALID` and validated beforehand removes it.
//!
//! A CHECK counts when it bounds *some* column exactly as the partition bound does (`col >= lower
//! AND col < upper`, or `col IN (…)`) and rules out NULLs in it (`col IS NOT NULL` or a NOT NULL
//! column). Anything else is reported as not recognised rather than guessed. The fixer writes that
//! CHECK from the parent's partition key (as the model recorded it from `PARTITION BY`) for a
//! single-column RANGE or LIST key; no CHECK proves a HASH partition's bounds, and the help says
//! what to do instead.

use sqlparser::ast::{
    AlterTableOperation, BinaryOperator, Expr, ForValues, InTarget, PartitionBoundValue,
    UnaryOperator, Value,
};

use super::context::unparsed_alter_clauses;
use super::fix::{not_valid_then_validate, Fix, Step};
use super::syntax::{sql_ident, sql_name, AlterTable};
use super::{kinds, Category, Diagnostic, Kinds, Rule, Severity, StatementContext};
use crate::schema::ConstraintKind;
use crate::sql;
use crate::sql::name::fold_ident;
use crate::sql::ObjectName;

pub const RULE: Rule = Rule {
    id: "attach-partition-scan",
    category: Category::Locking,
    default_severity: Severity::Warning,
    size_graded: true,
    summary:
        "ATTACH PARTITION without a validated CHECK that implies the bounds scans the partition",
    doc: include_str!("../../rules/attach-partition-scan.md"),
    check,
    kinds: Kinds::Only(&[kinds::ALTER]),
};

/// The first version that attaches with SHARE UPDATE EXCLUSIVE on the parent, not ACCESS EXCLUSIVE.
const PARENT_SHARE_UPDATE_EXCLUSIVE_SINCE: u32 = 12;

/// A partition bound, with its values as written and as compared.
enum Bound {
    /// `FROM (lo) TO (hi)` on one column; `None` for MINVALUE / MAXVALUE.
    Range(Option<Literal>, Option<Literal>),
    /// `IN (a, b, …)`.
    List(Vec<Literal>),
    /// Multi-column ranges, hash partitions, DEFAULT, or bounds sqlparser did not read.
    Other(&'static str),
}

/// A bound value: its SQL as written, and its normalised text for comparison.
#[derive(Clone)]
struct Literal {
    sql: String,
    key: String,
}

/// An `ATTACH PARTITION` clause.
struct Attach {
    offset: usize,
    parent: ObjectName,
    partition: ObjectName,
    /// `FOR VALUES …` as written.
    bound_sql: String,
    /// `ALTER TABLE parent ATTACH PARTITION …;` as written, when the ATTACH is one operation of a
    /// statement the tokens locate.
    statement_sql: Option<String>,
    bound: Bound,
}

/// Why the ATTACH will scan.
enum Verdict {
    /// A validated CHECK implies the bound: no scan.
    Implied,
    /// The model does not know the partition.
    UnknownPartition,
    /// The partition has no validated CHECK constraint.
    NoCheck,
    /// A validated CHECK bounds this column as required but allows NULLs.
    AllowsNull(String),
    /// Validated CHECKs exist but do not match, or the bound is of a kind this rule cannot compare.
    NotRecognised,
}

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    for attach in attachments(cx) {
        let verdict = verdict(cx, &attach);
        if matches!(verdict, Verdict::Implied) {
            continue;
        }
        let partition = cx.qualified(&attach.partition);
        let why = match &verdict {
            Verdict::Implied => String::new(),
            Verdict::UnknownPartition => {
                format!("; the model does not know {partition}, so not whether a CHECK proves the bounds")
            }
            Verdict::NoCheck => format!("; {partition} has no validated CHECK constraint that proves them"),
            Verdict::AllowsNull(column) => format!(
                "; its CHECK bounds {column} as required but does not rule out NULLs, which the partition \
                 does not accept: add `{column} IS NOT NULL` to it or make {column} NOT NULL"
            ),
            Verdict::NotRecognised => match attach.bound {
                Bound::Other(kind) => format!("; migagent cannot tell whether a CHECK proves {kind}"),
                _ => format!(
                    "; {partition} has validated CHECK constraints, but none was recognised as implying the \
                     bounds (migagent looks for `key >= lower AND key < upper` or `key IN (…)` with the \
                     bound values as written, and `key IS NOT NULL`)"
                ),
            },
        };
        let steps = fix_steps(cx, &attach, &verdict);
        // The fix replaces the statement: only when it is this ATTACH alone, all its steps there.
        let fix = steps
            .clone()
            .filter(|steps| steps.len() == 4 && cx.fixable())
            .map(Fix::replace);
        let parent = cx.qualified(&attach.parent);
        let parent_lock = if cx.settings.pg_version >= PARENT_SHARE_UPDATE_EXCLUSIVE_SINCE {
            format!("the parent {parent} only gets SHARE UPDATE EXCLUSIVE")
        } else {
            format!(
                "before PostgreSQL 12 the parent {parent} is locked ACCESS EXCLUSIVE for the whole scan too"
            )
        };
        out.push(
            cx.diagnostic(
            attach.offset,
            Some(&attach.partition),
            format!(
                "ATTACH PARTITION {partition} takes ACCESS EXCLUSIVE on {partition} and scans all of it to \
                 check that every row fits {}: reads and writes on {partition} are blocked until the scan \
                 finishes ({parent_lock}){why}",
                attach.bound_sql,
            ),
            help(cx, &attach, steps.as_deref()),
        )
        .with_fix(fix));
    }
}

/// The help, quoting the fixer's steps when the partition key and the bound are known.
fn help(cx: &StatementContext, attach: &Attach, steps: Option<&[Step]>) -> String {
    if let Some(steps) = steps {
        return format!(
            "prove the bounds first without blocking: `{}` then `{}` (scans under SHARE UPDATE \
             EXCLUSIVE: reads and writes continue); the ATTACH then skips its scan, and the CHECK can \
             be dropped after it",
            steps[0].sql, steps[1].sql
        );
    }
    let hash = cx
        .catalog
        .relation(&attach.parent)
        .and_then(|parent| parent.partition_key.as_ref())
        .is_some_and(|key| key.strategy == "HASH");
    if hash {
        return "no CHECK constraint proves a hash partition's bounds to PostgreSQL: attach the table \
                while it is still empty and load its rows afterwards (in batches), or attach it in a quiet \
                window with a short lock_timeout"
            .to_owned();
    }
    "attach the partition while it is still empty, or give it a validated CHECK constraint equivalent \
     to its bounds first (ADD CONSTRAINT … NOT VALID, then VALIDATE CONSTRAINT, which scans under SHARE \
     UPDATE EXCLUSIVE)"
        .to_owned()
}

/// The built-in fix: a CHECK equivalent to the bounds added NOT VALID, validated in a transaction
/// of its own (the scan under SHARE UPDATE EXCLUSIVE), then the ATTACH as written, which finds it
/// and skips its scan, then the CHECK dropped again. `None` unless the bound is a single-column range
/// or a list and the key is known: the parent's, else the column a CHECK already bounds.
fn fix_steps(cx: &StatementContext, attach: &Attach, verdict: &Verdict) -> Option<Vec<Step>> {
    let recorded = cx
        .catalog
        .relation(&attach.parent)
        .and_then(|parent| parent.partition_key.as_ref())
        .and_then(|key| match key.expressions.as_slice() {
            [single] if key.strategy != "HASH" => Some(single.clone()),
            _ => None,
        });
    let key = match verdict {
        Verdict::AllowsNull(column) => sql_ident(column),
        _ => recorded?,
    };
    let condition = match &attach.bound {
        Bound::Range(lower, upper) => {
            let mut terms = vec![format!("{key} IS NOT NULL")];
            terms.extend(lower.iter().map(|lo| format!("{key} >= {}", lo.sql)));
            terms.extend(upper.iter().map(|hi| format!("{key} < {}", hi.sql)));
            terms.join(" AND ")
        }
        Bound::List(values) => format!(
            "{key} IS NOT NULL AND {key} IN ({})",
            values
                .iter()
                .map(|v| v.sql.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Bound::Other(_) => return None,
    };
    let partition_sql = sql_name(&cx.catalog.resolve(&attach.partition));
    let constraint = format!("{}_bounds", attach.partition.name);
    let add = format!(
        "ALTER TABLE {partition_sql} ADD CONSTRAINT {} CHECK ({condition}) NOT VALID;",
        sql_ident(&constraint)
    );
    let mut steps = not_valid_then_validate(add, &partition_sql, &constraint).steps;
    if let Some(statement) = &attach.statement_sql {
        steps.push(Step::transactional(
            statement.clone(),
            "attaches the partition: the validated CHECK proves its bounds, so it skips the scan",
        ));
        steps.push(Step::transactional(
            format!(
                "ALTER TABLE {partition_sql} DROP CONSTRAINT {};",
                sql_ident(&constraint)
            ),
            "drops the CHECK, which the partition's bounds now enforce",
        ));
    }
    Some(steps)
}

fn attachments(cx: &StatementContext) -> Vec<Attach> {
    if let Some(alter) = AlterTable::of(cx) {
        return alter
            .operations
            .iter()
            .enumerate()
            .filter_map(|(i, operation)| match operation {
                AlterTableOperation::AttachPartitionOf {
                    partition,
                    for_values,
                } => Some(Attach {
                    offset: alter.offset(cx, i),
                    parent: alter.table.clone(),
                    partition: ObjectName::from_ast(partition)?,
                    bound_sql: match for_values {
                        ForValues::Default => {
                            "the bounds of a DEFAULT partition (no row may fit another partition)"
                                .to_owned()
                        }
                        other => other.to_string(),
                    },
                    bound: bound(for_values),
                    statement_sql: alter.single_operation_sql(cx, i, str::to_owned),
                }),
                _ => None,
            })
            .collect();
    }
    let Some((parent, words, clauses)) = unparsed_alter_clauses(cx, &["attach", "partition"])
    else {
        return Vec::new();
    };
    clauses
        .into_iter()
        .filter_map(|clause| {
            let after = words.after_name(clause.start + 2);
            Some(Attach {
                offset: words.offset(clause.start)?,
                parent: parent.clone(),
                partition: words.name_at(clause.start + 2)?,
                bound_sql: words.text_of(after..clause.end).to_owned(),
                bound: Bound::Other("these bounds"),
                statement_sql: None,
            })
        })
        .collect()
}

fn bound(for_values: &ForValues) -> Bound {
    match for_values {
        ForValues::From { from, to } if from.len() == 1 && to.len() == 1 => {
            let value = |v: &PartitionBoundValue| match v {
                PartitionBoundValue::Expr(expr) => Some(literal(expr)),
                PartitionBoundValue::MinValue | PartitionBoundValue::MaxValue => None,
            };
            Bound::Range(value(&from[0]), value(&to[0]))
        }
        ForValues::From { .. } => Bound::Other("a multi-column range"),
        ForValues::In(values) => Bound::List(values.iter().map(literal).collect()),
        ForValues::With { .. } => Bound::Other("a hash partition's bounds"),
        ForValues::Default => Bound::Other("a DEFAULT partition's bounds"),
    }
}

fn literal(expr: &Expr) -> Literal {
    Literal {
        sql: expr.to_string(),
        key: normalise(expr),
    }
}

/// A constant as compared: the string or number it holds, without casts and type prefixes
/// (`DATE '2024-01-01'`, `'2024-01-01'::date` and `'2024-01-01'` are the same bound).
fn normalise(expr: &Expr) -> String {
    match expr {
        Expr::Nested(inner) | Expr::Cast { expr: inner, .. } => normalise(inner),
        Expr::TypedString(typed) => value_text(&typed.value.value),
        Expr::Value(value) => value_text(&value.value),
        Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr,
        } => format!("-{}", normalise(expr)),
        other => other.to_string(),
    }
}

fn value_text(value: &Value) -> String {
    match value {
        Value::Number(number, _) => number.clone(),
        Value::SingleQuotedString(text) => text.clone(),
        other => other.to_string(),
    }
}

fn verdict(cx: &StatementContext, attach: &Attach) -> Verdict {
    if matches!(attach.bound, Bound::Other(_)) {
        return Verdict::NotRecognised;
    }
    let Some(relation) = cx.catalog.relation(&attach.partition) else {
        return Verdict::UnknownPartition;
    };
    let checks: Vec<Expr> = relation
        .constraints
        .iter()
        .filter(|c| c.validated)
        .filter_map(|c| match &c.kind {
            ConstraintKind::Check { expression } => parse_check(expression),
            _ => None,
        })
        .collect();
    if checks.is_empty() {
        return Verdict::NoCheck;
    }
    let mut conjuncts = Vec::new();
    for check in &checks {
        flatten_and(check, &mut conjuncts);
    }
    let Some(column) = bounded_column(&attach.bound, &conjuncts) else {
        return Verdict::NotRecognised;
    };
    let not_null = cx
        .catalog
        .column(&attach.partition, &column)
        .is_some_and(|c| c.not_null)
        || conjuncts
            .iter()
            .any(|c| matches!(c, Expr::IsNotNull(operand) if column_of(operand).as_deref() == Some(&column)));
    if not_null {
        Verdict::Implied
    } else {
        Verdict::AllowsNull(column)
    }
}

fn parse_check(expression: &str) -> Option<Expr> {
    let trimmed = expression.trim();
    let body = match trimmed.get(..5) {
        Some(head) if head.eq_ignore_ascii_case("check") => &trimmed[5..],
        _ => trimmed,
    };
    sql::parser(body).ok()?.parse_expr().ok()
}

fn flatten_and<'e>(expr: &'e Expr, out: &mut Vec<&'e Expr>) {
    match expr {
        Expr::Nested(inner) => flatten_and(inner, out),
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            flatten_and(left, out);
            flatten_and(right, out);
        }
        other => out.push(other),
    }
}

fn column_of(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Nested(inner) => column_of(inner),
        Expr::Identifier(ident) => Some(fold_ident(ident)),
        Expr::CompoundIdentifier(parts) => parts.last().map(fold_ident),
        _ => None,
    }
}

/// The column the conjuncts bound exactly as `bound` requires, if any.
fn bounded_column(bound: &Bound, conjuncts: &[&Expr]) -> Option<String> {
    match bound {
        Bound::Range(lower, upper) => {
            // Each (column, operator as `column op value`, value) comparison.
            let comparisons: Vec<(String, BinaryOperator, String)> =
                conjuncts.iter().filter_map(|c| comparison(c)).collect();
            let has = |column: &str, op: BinaryOperator, value: &Literal| {
                comparisons
                    .iter()
                    .any(|(c, o, v)| c == column && *o == op && *v == value.key)
            };
            let candidates = comparisons.iter().map(|(column, _, _)| column.clone());
            candidates.into_iter().find(|column| {
                lower
                    .as_ref()
                    .is_none_or(|lo| has(column, BinaryOperator::GtEq, lo))
                    && upper
                        .as_ref()
                        .is_none_or(|hi| has(column, BinaryOperator::Lt, hi))
            })
        }
        Bound::List(values) => {
            let mut wanted: Vec<String> = values.iter().map(|v| v.key.clone()).collect();
            wanted.sort_unstable();
            conjuncts.iter().find_map(|conjunct| {
                let (column, mut listed) = in_list(conjunct)?;
                listed.sort_unstable();
                (listed == wanted).then_some(column)
            })
        }
        Bound::Other(_) => None,
    }
}

/// `column op value` or `value op column`, as `(column, op seen from the column, value)`.
fn comparison(expr: &Expr) -> Option<(String, BinaryOperator, String)> {
    let Expr::BinaryOp { left, op, right } = expr else {
        return None;
    };
    let flipped = |op: &BinaryOperator| match op {
        BinaryOperator::Lt => Some(BinaryOperator::Gt),
        BinaryOperator::LtEq => Some(BinaryOperator::GtEq),
        BinaryOperator::Gt => Some(BinaryOperator::Lt),
        BinaryOperator::GtEq => Some(BinaryOperator::LtEq),
        _ => None,
    };
    flipped(op)?;
    match (column_of(left), column_of(right)) {
        (Some(column), None) => Some((column, op.clone(), normalise(right))),
        (None, Some(column)) => Some((column, flipped(op)?, normalise(left))),
        _ => None,
    }
}

/// `column IN (a, b)` or `column = a`, as the column and the normalised values.
fn in_list(expr: &Expr) -> Option<(String, Vec<String>)> {
    match expr {
        Expr::In {
            expr,
            target: InTarget::List(values),
            negated: false,
            ..
        } => Some((column_of(expr)?, values.iter().map(normalise).collect())),
        Expr::BinaryOp {
            left,
            op: BinaryOperator::Eq,
            right,
        } => Some((column_of(left)?, vec![normalise(right)])),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::check_rule;

    const RULE: &str = "attach-partition-scan";
    const SCHEMA: &str =
        "CREATE TABLE events (id bigint, at date NOT NULL, region text) PARTITION BY RANGE (at);\n\
                          CREATE TABLE events_2024 (id bigint, at date NOT NULL, region text);\n\
                          CREATE TABLE events_nullable (id bigint, at date, region text);";

    #[test]
    fn fires_without_a_check() {
        assert_eq!(
            check_rule(
                RULE,
                &[SCHEMA],
                "ALTER TABLE events ATTACH PARTITION events_2024 FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');"
            ),
            "\
warning[attach-partition-scan]: ATTACH PARTITION public.events_2024 takes ACCESS EXCLUSIVE on public.events_2024 and scans all of it to check that every row fits FOR VALUES FROM ('2024-01-01') TO ('2025-01-01'): reads and writes on public.events_2024 are blocked until the scan finishes (the parent public.events only gets SHARE UPDATE EXCLUSIVE); public.events_2024 has no validated CHECK constraint that proves them
 --> migration.sql:1:20
  |
1 | ALTER TABLE events ATTACH PARTITION events_2024 FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
  |                    ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  |
  = help: prove the bounds first without blocking: `ALTER TABLE public.events_2024 ADD CONSTRAINT events_2024_bounds CHECK (at IS NOT NULL AND at >= '2024-01-01' AND at < '2025-01-01') NOT VALID;` then `ALTER TABLE public.events_2024 VALIDATE CONSTRAINT events_2024_bounds;` (scans under SHARE UPDATE EXCLUSIVE: reads and writes continue); the ATTACH then skips its scan, and the CHECK can be dropped after it

"
        );
    }

    /// The CHECK comes from the parent's partition key for RANGE and LIST; the fix attaches after
    /// it and drops it again. HASH bounds, and a parent the model does not know, get words instead.
    #[test]
    fn the_check_follows_the_partition_key() {
        use crate::rules::testing::fix_sql;
        let history =
            "CREATE TABLE r (id bigint, \"Region\" text) PARTITION BY LIST (\"Region\");\n\
                       CREATE TABLE r_eu (id bigint, \"Region\" text);\n\
                       CREATE TABLE h (id bigint) PARTITION BY HASH (id);\n\
                       CREATE TABLE h_0 (id bigint);";
        let list = "ALTER TABLE r ATTACH PARTITION r_eu FOR VALUES IN ('de', 'fr');";
        assert_eq!(
            fix_sql(RULE, &[history], list).unwrap(),
            [
                "ALTER TABLE public.r_eu ADD CONSTRAINT r_eu_bounds CHECK (\"Region\" IS NOT NULL AND \"Region\" IN ('de', 'fr')) NOT VALID;",
                "ALTER TABLE public.r_eu VALIDATE CONSTRAINT r_eu_bounds;",
                "ALTER TABLE r ATTACH PARTITION r_eu FOR VALUES IN ('de', 'fr');",
                "ALTER TABLE public.r_eu DROP CONSTRAINT r_eu_bounds;",
            ]
        );
        let hash = check_rule(
            RULE,
            &[history],
            "ALTER TABLE h ATTACH PARTITION h_0 FOR VALUES WITH (MODULUS 2, REMAINDER 0);",
        );
        assert!(
            hash.contains("no CHECK constraint proves a hash partition's bounds to PostgreSQL: attach the table while it is still empty"),
            "{hash}"
        );
        let unknown = check_rule(
            RULE,
            &[],
            "ALTER TABLE events ATTACH PARTITION events_2024 FOR VALUES FROM (1) TO (2);",
        );
        assert!(!unknown.contains('<'), "{unknown}");
        assert!(
            unknown.contains("attach the partition while it is still empty"),
            "{unknown}"
        );
    }

    #[test]
    fn silent_with_a_validated_check_that_implies_the_bounds() {
        let attach = "ALTER TABLE events ATTACH PARTITION events_2024 FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');";
        for check in [
            "ALTER TABLE events_2024 ADD CONSTRAINT b CHECK (at >= '2024-01-01' AND at < '2025-01-01');",
            "ALTER TABLE events_2024 ADD CONSTRAINT b CHECK (at >= DATE '2024-01-01' AND '2025-01-01'::date > at);",
            "ALTER TABLE events_2024 ADD CONSTRAINT lo CHECK (at >= '2024-01-01');\n\
             ALTER TABLE events_2024 ADD CONSTRAINT hi CHECK ((at < '2025-01-01'));",
        ] {
            assert_eq!(check_rule(RULE, &[SCHEMA, check], attach), "", "{check}");
        }
        // The whole recipe in the migration itself.
        let recipe = format!(
            "ALTER TABLE events_nullable ADD CONSTRAINT b CHECK (at IS NOT NULL AND at >= '2024-01-01' AND at < '2025-01-01') NOT VALID;\n\
             ALTER TABLE events_nullable VALIDATE CONSTRAINT b;\n{}",
            attach.replace("events_2024", "events_nullable")
        );
        assert_eq!(check_rule(RULE, &[SCHEMA], &recipe), "");
        let list = "CREATE TABLE by_region (id bigint, region text NOT NULL) PARTITION BY LIST (region);\n\
                    CREATE TABLE eu (id bigint, region text NOT NULL CHECK (region IN ('fr', 'de')));";
        assert_eq!(
            check_rule(
                RULE,
                &[list],
                "ALTER TABLE by_region ATTACH PARTITION eu FOR VALUES IN ('de', 'fr');"
            ),
            ""
        );
    }

    #[test]
    fn says_why_a_check_does_not_count() {
        let attach = "ALTER TABLE events ATTACH PARTITION events_nullable FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');";
        let nullable = "ALTER TABLE events_nullable ADD CONSTRAINT b CHECK (at >= '2024-01-01' AND at < '2025-01-01');";
        let report = check_rule(RULE, &[SCHEMA, nullable], attach);
        assert!(
            report.contains("its CHECK bounds at as required but does not rule out NULLs"),
            "{report}"
        );
        assert!(report.contains("CHECK (at IS NOT NULL AND at >= '2024-01-01' AND at < '2025-01-01') NOT VALID;` then"), "{report}");
        let unvalidated = "ALTER TABLE events_nullable ADD CONSTRAINT b CHECK (at IS NOT NULL AND at >= '2024-01-01' AND at < '2025-01-01') NOT VALID;";
        let report = check_rule(RULE, &[SCHEMA, unvalidated], attach);
        assert!(
            report.contains("has no validated CHECK constraint"),
            "{report}"
        );
        let wider = "ALTER TABLE events_nullable ADD CONSTRAINT b CHECK (at IS NOT NULL AND at >= '2023-01-01' AND at < '2025-01-01');";
        let report = check_rule(RULE, &[SCHEMA, wider], attach);
        assert!(
            report.contains("but none was recognised as implying the bounds"),
            "{report}"
        );
        let report = check_rule(
            RULE,
            &[],
            "ALTER TABLE m ATTACH PARTITION m_1 FOR VALUES FROM (1) TO (10);",
        );
        assert!(
            report.contains("the model does not know public.m_1"),
            "{report}"
        );
        let report = check_rule(
            RULE,
            &[],
            "ALTER TABLE m ATTACH PARTITION m_1 FOR VALUES WITH (MODULUS 4, REMAINDER 0);",
        );
        assert!(
            report.contains("cannot tell whether a CHECK proves a hash partition's bounds"),
            "{report}"
        );
        let report = check_rule(
            RULE,
            &[SCHEMA],
            "ALTER TABLE events ATTACH PARTITION events_2024 DEFAULT;",
        );
        assert!(
            report.contains(
                "migagent cannot tell whether a CHECK proves a DEFAULT partition's bounds"
            ),
            "{report}"
        );
    }

    #[test]
    fn before_postgres_12_the_parent_is_locked_too() {
        use crate::migration::Transaction;
        use crate::review::{review_sql, ReviewOptions};
        use crate::rules::testing::render_rule;
        use crate::rules::RuleSettings;
        let options = ReviewOptions {
            rule_settings: RuleSettings {
                pg_version: 11,
                ..RuleSettings::default()
            },
            ..ReviewOptions::default()
        };
        let sql = "ALTER TABLE events ATTACH PARTITION events_2024 FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');";
        let review = review_sql("migration.sql", &[SCHEMA], sql, Transaction::None, &options);
        let report = render_rule(RULE, &review);
        assert!(
            report.contains("(before PostgreSQL 12 the parent public.events is locked ACCESS EXCLUSIVE for the whole scan too)"),
            "{report}"
        );
    }

    #[test]
    fn silent_on_partitions_created_in_the_migration() {
        let sql = "CREATE TABLE events_2026 (id bigint, at date NOT NULL, region text);\n\
                   ALTER TABLE events ATTACH PARTITION events_2026 FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');";
        assert_eq!(check_rule(RULE, &[SCHEMA], sql), "");
    }
}
