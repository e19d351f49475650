//! Adding a constraint `NOT VALID` and validating it later is the online recipe because `VALIDATE
//! CONSTRAINT` takes only SHARE UPDATE EXCLUSIVE: reads and writes continue during its scan. That only
//! holds when the transaction does not already hold a stronger lock on the table, such as the ACCESS
//! EXCLUSIVE that `ADD CONSTRAINT … NOT VALID` itself took: then the scan runs under that lock and the
//! split gained nothing.

use sqlparser::ast::AlterTableOperation;

use super::syntax::{sql_ident, sql_name, AlterTable};
use super::{kinds, Category, Diagnostic, Kinds, Rule, Severity, StatementContext};
use crate::pg::locks::{LockMode, PredictedLock, Words};
use crate::schema::ConstraintKind;
use crate::sql::name::fold_ident;
use crate::sql::{Kind, ObjectName};

pub const RULE: Rule = Rule {
    id: "validate-in-same-transaction",
    category: Category::Locking,
    default_severity: Severity::Warning,
    size_graded: true,
    summary:
        "VALIDATE CONSTRAINT in the transaction that added it NOT VALID or holds a strong lock",
    doc: include_str!("../../rules/validate-in-same-transaction.md"),
    check,
    kinds: Kinds::Only(&[kinds::ALTER]),
};

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    let Some((table, validated)) = validated_constraints(cx) else {
        return;
    };
    for (offset, constraint) in validated {
        let Some((relation, why)) = blocking_lock(cx, &table, &constraint) else {
            continue;
        };
        let table_sql = sql_name(&cx.catalog.resolve(&table));
        let help = if cx.tx.tool_transaction {
            format!(
                "the migration tool runs this file in one transaction: move `ALTER TABLE {table_sql} VALIDATE \
                 CONSTRAINT {};` to the next migration, so that it runs in a transaction of its own under \
                 SHARE UPDATE EXCLUSIVE (reads and writes continue)",
                sql_ident(&constraint)
            )
        } else {
            format!(
                "COMMIT after adding the constraint NOT VALID and run `ALTER TABLE {table_sql} VALIDATE \
                 CONSTRAINT {};` in a transaction of its own: alone it takes only SHARE UPDATE EXCLUSIVE, \
                 so reads and writes continue during the scan",
                sql_ident(&constraint)
            )
        };
        out.push(cx.diagnostic(
            offset,
            Some(&relation),
            format!(
                "VALIDATE CONSTRAINT {constraint} scans {} {why}: the scan runs under that lock, so the split \
                 into NOT VALID and VALIDATE gains nothing",
                cx.qualified(&table)
            ),
            help,
        ));
    }
}

/// The table of an `ALTER TABLE` and the constraints it validates, each with the offset of its
/// `VALIDATE` clause.
fn validated_constraints(cx: &StatementContext) -> Option<(ObjectName, Vec<(usize, String)>)> {
    if let Some(alter) = AlterTable::of(cx) {
        let validated = alter
            .operations
            .iter()
            .enumerate()
            .filter_map(|(i, operation)| match operation {
                AlterTableOperation::ValidateConstraint { name } => {
                    Some((alter.offset(cx, i), fold_ident(name)))
                }
                _ => None,
            })
            .collect();
        return Some((alter.table.clone(), validated));
    }
    let statement = cx.statement;
    if statement.ast().is_some() || statement.class.kind != Kind::AlterTable {
        return None;
    }
    let words = Words::of(cx.text, statement);
    let validated = words
        .alter_table_clauses()
        .into_iter()
        .filter(|clause| words.seq_at(clause.start, &["validate", "constraint"]))
        .filter_map(|clause| {
            Some((
                words.offset(clause.start)?,
                words.name_at(clause.start + 2)?.name,
            ))
        })
        .collect();
    Some((statement.class.target.clone()?, validated))
}

/// A lock that blocks reads or writes and is held while the validation scans: taken by this very
/// ALTER TABLE for its other operations, or by an earlier statement of the transaction, on the table
/// or, for a foreign key, on the table it references. Returns the relation and how the message says it.
fn blocking_lock(
    cx: &StatementContext,
    table: &ObjectName,
    constraint: &str,
) -> Option<(ObjectName, String)> {
    let mut relations = vec![table.clone()];
    if let Some(ConstraintKind::ForeignKey { references, .. }) =
        cx.catalog.constraint(table, constraint).map(|c| &c.kind)
    {
        relations.push(references.clone());
    }
    let blocking = |lock: &PredictedLock, relation: &ObjectName| {
        lock.mode >= LockMode::Share
            && cx.catalog.resolve(&lock.relation) == cx.catalog.resolve(relation)
    };
    let own = cx.locks();
    for relation in &relations {
        if let Some(lock) = own.iter().find(|lock| blocking(lock, relation)) {
            return Some((
                relation.clone(),
                format!(
                    "while this same ALTER TABLE holds {} on {} for its other operations",
                    lock.mode,
                    cx.qualified(relation)
                ),
            ));
        }
    }
    // The engine says the transaction holds such a lock; the statements before this one say which
    // took it (and read statements sqlparser could not parse from their text).
    for relation in &relations {
        let Some(held) = cx
            .held_locks
            .on(relation, cx.catalog)
            .filter(|held| held.mode >= LockMode::Share)
        else {
            continue;
        };
        let (holder, held) = (cx.unit(held.holder), held.mode);
        let added_it = cx.catalog.is_new_constraint(table, constraint)
            && holder.class.kind == Kind::AlterTable
            && holder.find_keywords(cx.text, &["not", "valid"]).is_some();
        return Some((
            relation.clone(),
            format!(
                "in a transaction that already holds {held} on {}, taken by the {} on line {}{} ({held} {} \
                 until COMMIT)",
                cx.qualified(relation),
                label(holder),
                cx.line_of(holder.range.start),
                if added_it { " that added it NOT VALID" } else { "" },
                held.blocks()
            ),
        ));
    }
    None
}

fn label(statement: &crate::sql::Statement) -> &str {
    statement.label_or("statement")
}

#[cfg(test)]
mod tests {
    use crate::migration::Transaction;
    use crate::rules::testing::{check_rule, render_rule, review_in};

    const RULE: &str = "validate-in-same-transaction";
    const SCHEMA: &str = "CREATE TABLE users (id bigint PRIMARY KEY, age int);\n\
                          CREATE TABLE orders (id bigint PRIMARY KEY, user_id bigint);";

    #[test]
    fn fires_when_the_transaction_added_it_not_valid() {
        assert_eq!(
            check_rule(
                RULE,
                &[SCHEMA],
                "BEGIN;\nALTER TABLE users ADD CONSTRAINT users_age_check CHECK (age >= 0) NOT VALID;\nALTER TABLE users VALIDATE CONSTRAINT users_age_check;\nCOMMIT;"
            ),
            "\
warning[validate-in-same-transaction]: VALIDATE CONSTRAINT users_age_check scans public.users in a transaction that already holds ACCESS EXCLUSIVE on public.users, taken by the ALTER TABLE on line 2 that added it NOT VALID (ACCESS EXCLUSIVE blocks reads and writes until COMMIT): the scan runs under that lock, so the split into NOT VALID and VALIDATE gains nothing
 --> migration.sql:3:19
  |
3 | ALTER TABLE users VALIDATE CONSTRAINT users_age_check;
  |                   ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  |
  = help: COMMIT after adding the constraint NOT VALID and run `ALTER TABLE public.users VALIDATE CONSTRAINT users_age_check;` in a transaction of its own: alone it takes only SHARE UPDATE EXCLUSIVE, so reads and writes continue during the scan

"
        );
    }

    #[test]
    fn a_foreign_key_blocks_writes_to_the_referenced_table_too() {
        let review = review_in(
            &[SCHEMA],
            "ALTER TABLE orders ADD CONSTRAINT orders_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;\n\
             ALTER TABLE orders VALIDATE CONSTRAINT orders_user_id_fkey;",
            Transaction::Wrapped,
        );
        let report = render_rule(RULE, &review);
        assert!(
            report.contains("already holds SHARE ROW EXCLUSIVE on public.orders, taken by the ALTER TABLE on line 1 that added it NOT VALID"),
            "{report}"
        );
        assert!(report.contains("move `ALTER TABLE public.orders VALIDATE CONSTRAINT orders_user_id_fkey;` to the next migration"), "{report}");
    }

    #[test]
    fn fires_on_a_strong_lock_from_another_statement_or_the_same_alter() {
        let existing =
            "ALTER TABLE users ADD CONSTRAINT users_age_check CHECK (age >= 0) NOT VALID;";
        let report = check_rule(
            RULE,
            &[SCHEMA, existing],
            "BEGIN;\nALTER TABLE users ADD COLUMN nickname text;\nALTER TABLE users VALIDATE CONSTRAINT users_age_check;\nCOMMIT;",
        );
        assert!(
            report.contains("taken by the ALTER TABLE on line 2 ("),
            "{report}"
        );
        let report = check_rule(
            RULE,
            &[SCHEMA, existing],
            "ALTER TABLE users ALTER COLUMN age SET DEFAULT 0, VALIDATE CONSTRAINT users_age_check;",
        );
        assert!(
            report.contains("while this same ALTER TABLE holds ACCESS EXCLUSIVE on public.users for its other operations"),
            "{report}"
        );
    }

    #[test]
    fn names_the_statement_that_took_the_strongest_lock() {
        let existing =
            "ALTER TABLE users ADD CONSTRAINT users_age_check CHECK (age >= 0) NOT VALID;";
        let report = check_rule(
            RULE,
            &[SCHEMA, existing],
            "BEGIN;\nCREATE INDEX users_age_idx ON users (age);\nALTER TABLE users ADD COLUMN a text;\n\
             ALTER TABLE users VALIDATE CONSTRAINT users_age_check;\nCOMMIT;",
        );
        assert!(
            report.contains(
                "holds ACCESS EXCLUSIVE on public.users, taken by the ALTER TABLE on line 3 ("
            ),
            "{report}"
        );
        // SET STATISTICS takes only SHARE UPDATE EXCLUSIVE, although sqlparser cannot read it.
        let sql = "BEGIN;\nALTER TABLE users ALTER COLUMN age SET STATISTICS 100;\n\
                   ALTER TABLE users VALIDATE CONSTRAINT users_age_check;\nCOMMIT;";
        assert_eq!(check_rule(RULE, &[SCHEMA, existing], sql), "");
    }

    #[test]
    fn silent_in_a_transaction_of_its_own_and_on_new_tables() {
        for sql in [
            "ALTER TABLE users ADD CONSTRAINT users_age_check CHECK (age >= 0) NOT VALID;\n\
             ALTER TABLE users VALIDATE CONSTRAINT users_age_check;",
            "BEGIN;\nALTER TABLE users ADD CONSTRAINT users_age_check CHECK (age >= 0) NOT VALID;\nCOMMIT;\n\
             BEGIN;\nALTER TABLE users VALIDATE CONSTRAINT users_age_check;\nCOMMIT;",
            "BEGIN;\nCREATE INDEX CONCURRENTLY orders_user_id_idx ON orders (user_id);\nALTER TABLE users VALIDATE CONSTRAINT users_age_check;\nCOMMIT;",
            "BEGIN;\nCREATE TABLE t (a int);\nALTER TABLE t ADD CONSTRAINT t_a_check CHECK (a > 0) NOT VALID;\nALTER TABLE t VALIDATE CONSTRAINT t_a_check;\nCOMMIT;",
        ] {
            assert_eq!(check_rule(RULE, &[SCHEMA], sql), "", "{sql}");
        }
    }
}
