//! Whether a draft reaches the schema it must: a rewrite the schema the original migration produces,
//! a down the schema from before the up. Every difference is a reason naming the object as the
//! trace and the messages do ("index public.orders_user_id_idx missing", "column public.users.email
//! is character varying(320), the original's is text"); a different column order is only a note,
//! since PostgreSQL cannot reorder columns.

use crate::shadow::snapshot::{
    diff, Change, Column, Constraint, ObjectKind, SchemaChange, SchemaSnapshot, Table,
};
use crate::sql::name::unquoted;

/// The schema a draft's result is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reference {
    /// What the original migration produces (a rewrite must reach it).
    Original,
    /// What there was before the up migration (a down must restore it).
    BeforeUp,
}

impl Reference {
    /// "… missing (the original's result has it)".
    fn missing(self, object: &str) -> String {
        match self {
            Reference::Original => format!("{object} missing (the original's result has it)"),
            Reference::BeforeUp => {
                format!("{object} missing after the down (it existed before the up)")
            }
        }
    }

    /// "… left behind (the original's result has no such index)".
    fn left_behind(self, object: &str, noun: &str) -> String {
        match self {
            Reference::Original => {
                format!("{object} left behind (the original's result has no such {noun})")
            }
            Reference::BeforeUp => {
                format!("{object} left behind after the down (it did not exist before the up)")
            }
        }
    }

    /// "column public.users.email is varchar(320), the original's is text".
    fn differs(self, object: &str, got: &str, expected: &str) -> String {
        match self {
            Reference::Original => format!("{object} is {got}, the original's is {expected}"),
            Reference::BeforeUp => {
                format!("{object} is {got} after the down, before the up it was {expected}")
            }
        }
    }

    /// "index x differs from the original's: definition A → B (the original's → this draft's)".
    fn changed(self, object: &str, detail: &str) -> String {
        match self {
            Reference::Original => format!(
                "{object} differs from the original's: {detail} (the original's → this draft's)"
            ),
            Reference::BeforeUp => format!(
                "{object} differs after the down: {detail} (before the up → after the down)"
            ),
        }
    }

    /// Who the columns' order is compared with, for the note.
    fn whose(self) -> &'static str {
        match self {
            Reference::Original => "the original's",
            Reference::BeforeUp => "the order before the up",
        }
    }
}

/// What keeps the draft's schema `got` from being `expected`: reasons, and notes about what is not
/// compared (column order).
pub(super) fn compare(
    expected: &SchemaSnapshot,
    got: &SchemaSnapshot,
    reference: Reference,
) -> (Vec<String>, Vec<String>) {
    let mut reasons = Vec::new();
    for change in diff(expected, got) {
        if let Some(reason) = change_reason(&change, expected, got, reference) {
            reasons.push(reason);
        }
    }
    let mut notes = Vec::new();
    for (name, expected_table) in &expected.tables {
        let Some(got_table) = got.tables.get(name) else {
            continue;
        };
        reasons.extend(column_reasons(name, expected_table, got_table, reference));
        notes.extend(column_order_note(
            name,
            expected_table,
            got_table,
            reference,
        ));
    }
    (reasons, notes)
}

/// The reason one difference of the snapshot diff (`expected` → `got`) gives, if any: changed
/// columns are compared field by field in [`column_reasons`] instead, so a moved column alone is
/// no reason.
fn change_reason(
    change: &SchemaChange,
    expected: &SchemaSnapshot,
    got: &SchemaSnapshot,
    reference: Reference,
) -> Option<String> {
    let noun = change.object.noun();
    let object = format!("{noun} {}", unquoted(&change.name));
    match (change.change, change.object) {
        (Change::Changed, ObjectKind::Column) => None,
        (Change::Removed, _) => Some(reference.missing(&object)),
        (Change::Added, _) => Some(reference.left_behind(&object, noun)),
        (Change::Changed, ObjectKind::Constraint) => {
            let expected = expected.constraints.get(&change.name)?;
            let got = got.constraints.get(&change.name)?;
            Some(constraint_reason(&object, expected, got, reference))
        }
        (Change::Changed, _) => Some(reference.changed(&object, change.detail.as_deref()?)),
    }
}

fn constraint_reason(
    object: &str,
    expected: &Constraint,
    got: &Constraint,
    reference: Reference,
) -> String {
    let unmarked = |constraint: &Constraint| {
        constraint
            .definition
            .trim_end_matches(" NOT VALID")
            .to_owned()
    };
    let validated = |constraint: &Constraint| {
        if constraint.validated {
            "validated"
        } else {
            "NOT VALID"
        }
    };
    let mut parts = Vec::new();
    if expected.validated != got.validated {
        parts.push(reference.differs(object, validated(got), validated(expected)));
    }
    if unmarked(expected) != unmarked(got) {
        parts.push(reference.differs(
            object,
            &format!("`{}`", unmarked(got)),
            &format!("`{}`", unmarked(expected)),
        ));
    }
    parts.join("; ")
}

/// A column's attribute as reasons show it, with its label ("" for the type and nullability).
type ColumnField = (&'static str, fn(&Column) -> String);

/// The columns both tables have whose type, collation, nullability, default, identity or
/// generation expression differ.
fn column_reasons(table: &str, expected: &Table, got: &Table, reference: Reference) -> Vec<String> {
    let mut reasons = Vec::new();
    for expected_column in &expected.columns {
        let Some(got_column) = got.columns.iter().find(|c| c.name == expected_column.name) else {
            continue;
        };
        let object = format!("column {}", column_shown(table, &expected_column.name));
        let fields: [ColumnField; 6] = [
            ("", |c| c.data_type.clone()),
            ("collation", |c| {
                c.collation.clone().unwrap_or_else(|| "default".into())
            }),
            ("", |c| {
                if c.not_null { "NOT NULL" } else { "nullable" }.to_owned()
            }),
            ("default", |c| {
                c.default.clone().unwrap_or_else(|| "none".into())
            }),
            ("identity", |c| match c.identity {
                Some(identity) => format!("{identity:?}"),
                None => "none".into(),
            }),
            ("generated", |c| {
                c.generated.clone().unwrap_or_else(|| "none".into())
            }),
        ];
        for (label, show) in fields {
            let (got_value, expected_value) = (show(got_column), show(expected_column));
            if got_value != expected_value {
                let (got_value, expected_value) = match label {
                    "" => (got_value, expected_value),
                    label => (
                        format!("{label} {got_value}"),
                        format!("{label} {expected_value}"),
                    ),
                };
                reasons.push(reference.differs(&object, &got_value, &expected_value));
            }
        }
    }
    reasons
}

/// A note when the columns both tables have are in another order.
fn column_order_note(
    table: &str,
    expected: &Table,
    got: &Table,
    reference: Reference,
) -> Option<String> {
    let names = |of: &Table, other: &Table| -> Vec<String> {
        of.columns
            .iter()
            .filter(|c| other.columns.iter().any(|o| o.name == c.name))
            .map(|c| unquoted(&c.name))
            .collect()
    };
    let (expected_order, got_order) = (names(expected, got), names(got, expected));
    (expected_order != got_order).then(|| {
        format!(
            "the columns of table {} end up in the order ({}), {} is ({}); column order is not compared: PostgreSQL cannot reorder columns, and queries that name their columns do not notice",
            unquoted(table),
            got_order.join(", "),
            reference.whose(),
            expected_order.join(", ")
        )
    })
}

/// A column of a snapshot's table as messages show it (`public.User.email`).
pub(super) fn column_shown(table: &str, column: &str) -> String {
    unquoted(&format!("{table}.{column}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shadow::snapshot::Index;

    fn column(name: &str, data_type: &str) -> Column {
        Column {
            name: name.into(),
            data_type: data_type.into(),
            default: None,
            not_null: false,
            identity: None,
            generated: None,
            collation: None,
        }
    }

    fn users(columns: Vec<Column>) -> SchemaSnapshot {
        let mut snapshot = SchemaSnapshot::default();
        snapshot
            .tables
            .insert("public.users".into(), Table::plain(columns));
        snapshot
    }

    #[test]
    fn differences_name_the_object_and_both_versions() {
        let mut expected = users(vec![column("id", "bigint"), column("email", "text")]);
        expected.indexes.insert(
            "public.users_email_idx".into(),
            Index {
                definition: "CREATE INDEX users_email_idx ON public.users USING btree (email)"
                    .into(),
                valid: true,
                partition_of: None,
            },
        );
        expected.constraints.insert(
            "public.users.users_email_check".into(),
            Constraint {
                definition: "CHECK ((email <> ''::text))".into(),
                validated: true,
            },
        );
        let mut got = users(vec![
            column("id", "bigint"),
            column("email", "character varying(320)"),
        ]);
        got.constraints.insert(
            "public.users.users_email_check".into(),
            Constraint {
                definition: "CHECK ((email <> ''::text)) NOT VALID".into(),
                validated: false,
            },
        );
        got.constraints.insert(
            "public.users.email_not_null".into(),
            Constraint {
                definition: "CHECK ((email IS NOT NULL))".into(),
                validated: true,
            },
        );
        let (reasons, notes) = compare(&expected, &got, Reference::Original);
        assert_eq!(
            reasons,
            [
                "constraint public.users.email_not_null left behind (the original's result has no such constraint)",
                "constraint public.users.users_email_check is NOT VALID, the original's is validated",
                "index public.users_email_idx missing (the original's result has it)",
                "column public.users.email is character varying(320), the original's is text",
            ]
        );
        assert!(notes.is_empty());
    }

    #[test]
    fn column_order_is_a_note_not_a_reason() {
        let expected = users(vec![column("id", "bigint"), column("email", "text")]);
        let got = users(vec![column("email", "text"), column("id", "bigint")]);
        let (reasons, notes) = compare(&expected, &got, Reference::BeforeUp);
        assert!(reasons.is_empty(), "{reasons:?}");
        assert_eq!(notes.len(), 1);
        assert!(
            notes[0].starts_with("the columns of table public.users end up in the order (email, id), the order before the up is (id, email)"),
            "{}",
            notes[0]
        );
        let (reasons, _) = compare(
            &expected,
            &users(vec![column("id", "bigint")]),
            Reference::BeforeUp,
        );
        assert_eq!(
            reasons,
            ["column public.users.email missing after the down (it existed before the up)"]
        );
    }

    /// Reasons show names as the trace, the messages and the JSON report do: exact parts joined by
    /// dots, the schema included, never PostgreSQL's quoting.
    #[test]
    fn names_are_shown_unquoted_with_their_schema() {
        let table = |columns| {
            let mut snapshot = SchemaSnapshot::default();
            snapshot
                .tables
                .insert("public.\"User\"".into(), Table::plain(columns));
            snapshot
        };
        let expected = table(vec![column("id", "bigint"), column("\"Email\"", "text")]);
        let got = table(vec![
            column("\"Email\"", "character varying(320)"),
            column("id", "bigint"),
        ]);
        let (reasons, notes) = compare(&expected, &got, Reference::Original);
        assert_eq!(
            reasons,
            ["column public.User.Email is character varying(320), the original's is text"]
        );
        assert!(
            notes[0]
                .starts_with("the columns of table public.User end up in the order (Email, id)"),
            "{}",
            notes[0]
        );
        let (reasons, _) = compare(&expected, &SchemaSnapshot::default(), Reference::Original);
        assert_eq!(
            reasons,
            ["table public.User missing (the original's result has it)"]
        );
    }
}
