//! SQL that creates again what the model knows: an index, a constraint, a sequence. Down drafts and
//! the help of rules about drops quote it, so one spelling serves both.

use super::naming::{quote_ident, quote_name};
use super::{Catalog, Constraint, ConstraintKind, Index, Sequence};
use crate::sql::ObjectName;

/// `CREATE [UNIQUE] INDEX` of an index the model knows.
pub fn create_index(catalog: &Catalog, index: &Index) -> String {
    let mut sql = format!(
        "CREATE {}INDEX {} ON {} ({})",
        if index.unique { "UNIQUE " } else { "" },
        quote_ident(&index.name.name),
        quote_name(&index.table),
        index
            .columns
            .iter()
            .map(|key| match catalog.column(&index.table, key) {
                Some(_) => quote_ident(key),
                None => format!("({key})"),
            })
            .collect::<Vec<_>>()
            .join(", ")
    );
    if let Some(predicate) = &index.predicate {
        sql.push_str(&format!(" WHERE {predicate}"));
    }
    sql.push(';');
    sql
}

/// Primary key, unique and exclusion constraints own the index of their name.
pub fn backs_a_constraint(catalog: &Catalog, index: &Index) -> bool {
    catalog
        .constraints_of(&index.table)
        .iter()
        .any(|c| c.name == index.name.name)
}

/// `ALTER TABLE … ADD CONSTRAINT` of a constraint the model knows, as it was: a CHECK or foreign
/// key added NOT VALID, then validated when it was (so that re-adding it on a full table does not
/// hold ACCESS EXCLUSIVE for the scan).
pub fn add_constraint(table: &ObjectName, constraint: &Constraint) -> Result<Vec<String>, String> {
    let definition = constraint_definition(constraint)?;
    let (table_sql, name) = (quote_name(table), quote_ident(&constraint.name));
    let add = format!("ALTER TABLE {table_sql} ADD CONSTRAINT {name} {definition}");
    let may_skip_validation = matches!(
        constraint.kind,
        ConstraintKind::Check { .. } | ConstraintKind::ForeignKey { .. }
    );
    Ok(match (may_skip_validation, constraint.validated) {
        (false, _) => vec![format!("{add};")],
        (true, false) => vec![format!("{add} NOT VALID;")],
        (true, true) => vec![
            format!("{add} NOT VALID;"),
            format!("ALTER TABLE {table_sql} VALIDATE CONSTRAINT {name};"),
        ],
    })
}

/// The constraint as `ADD CONSTRAINT name …` takes it, or why the model cannot say.
pub fn constraint_definition(constraint: &Constraint) -> Result<String, String> {
    constraint.kind.definition_sql().ok_or_else(|| {
        format!(
            "the schema model does not keep the definition of exclusion constraint {}",
            constraint.name
        )
    })
}

/// The foreign keys of other tables that reference `table`, with their tables.
pub fn foreign_keys_to<'a>(
    catalog: &'a Catalog,
    table: &ObjectName,
) -> Vec<(&'a ObjectName, &'a Constraint)> {
    catalog
        .relations()
        .filter(|relation| &relation.name != table)
        .flat_map(|relation| {
            relation
                .constraints
                .iter()
                .filter_map(move |constraint| match &constraint.kind {
                    ConstraintKind::ForeignKey { references, .. } if references == table => {
                        Some((&relation.name, constraint))
                    }
                    _ => None,
                })
        })
        .collect()
}

/// `CREATE SEQUENCE` with the options the model knows (`data_type` stands in for a missing `AS`,
/// as a serial column's type says what its sequence was), without its owner.
pub fn create_sequence(sequence: &Sequence, data_type: Option<&str>) -> String {
    let mut sql = format!("CREATE SEQUENCE {}", quote_name(&sequence.name));
    let typed = sequence.options.iter().any(|o| is_type_option(o));
    if let (false, Some(data_type)) = (typed, data_type) {
        sql.push_str(&format!(" AS {data_type}"));
    }
    for option in &sequence.options {
        sql.push(' ');
        sql.push_str(option);
    }
    sql.push(';');
    sql
}

/// The options of an identity column's sequence as `GENERATED … AS IDENTITY (…)` takes them: its
/// name, and every option but `AS` (the column's type is the sequence's).
pub fn identity_options(sequence: &Sequence) -> String {
    let mut options = vec![format!("SEQUENCE NAME {}", quote_name(&sequence.name))];
    options.extend(
        sequence
            .options
            .iter()
            .filter(|o| !is_type_option(o))
            .cloned(),
    );
    format!("({})", options.join(" "))
}

fn is_type_option(option: &str) -> bool {
    option
        .get(..3)
        .is_some_and(|start| start.eq_ignore_ascii_case("as "))
}
