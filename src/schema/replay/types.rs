//! `CREATE TYPE` (enums and others), `CREATE DOMAIN` and `ALTER TYPE`.

use sqlparser::ast::{
    self, AlterType, AlterTypeAddValue, AlterTypeAddValuePosition, AlterTypeOperation,
    AlterTypeRename, AlterTypeRenameValue, CreateDomain, TableConstraint,
    UserDefinedTypeRepresentation,
};

use super::object_name;
use crate::schema::naming;
use crate::schema::{Catalog, TypeKind, UserType};
use crate::sql::ObjectName;

impl Catalog {
    pub(super) fn create_type(
        &mut self,
        name: &ast::ObjectName,
        representation: Option<&UserDefinedTypeRepresentation>,
    ) {
        let kind = match representation {
            // Enum labels are string literals: their case is kept as written.
            Some(UserDefinedTypeRepresentation::Enum { labels }) => TypeKind::Enum {
                values: labels.iter().map(|label| label.value.clone()).collect(),
            },
            Some(UserDefinedTypeRepresentation::Composite { attributes }) => TypeKind::Composite {
                attributes: attributes
                    .iter()
                    .map(|a| (naming::ident(&a.name), a.data_type.to_string()))
                    .collect(),
            },
            _ => TypeKind::Other,
        };
        self.insert_type(name, kind);
    }

    pub(super) fn create_domain(&mut self, domain: &CreateDomain) {
        let kind = TypeKind::Domain {
            base: Some(domain.data_type.clone()),
            has_check: domain
                .constraints
                .iter()
                .any(|c| matches!(c, TableConstraint::Check(_))),
        };
        self.insert_type(&domain.name, kind);
    }

    /// Adds a type in its schema, replacing one of the same name (the model missed its drop).
    fn insert_type(&mut self, name: &ast::ObjectName, kind: TypeKind) {
        let Some(name) = object_name(name) else {
            return;
        };
        let key = self.qualify(&name);
        self.types.insert(
            key.clone(),
            UserType {
                name: key,
                kind,
                origin: *self.current,
            },
        );
    }

    pub(super) fn alter_type(&mut self, alter: &AlterType) {
        let Some(key) = object_name(&alter.name).and_then(|n| self.find_key(&self.types, &n))
        else {
            return;
        };
        match &alter.operation {
            AlterTypeOperation::Rename(AlterTypeRename { new_name }) => {
                self.rename_within_schema(&key, &crate::schema::naming::ident(new_name))
            }
            AlterTypeOperation::AddValue(add) => self.add_enum_value(&key, add),
            AlterTypeOperation::RenameValue(AlterTypeRenameValue { from, to }) => {
                if let Some(values) = self.enum_values(&key) {
                    for value in values.iter_mut().filter(|v| **v == from.value) {
                        value.clone_from(&to.value);
                    }
                }
            }
        }
    }

    /// `ALTER TYPE … ADD VALUE [IF NOT EXISTS] 'v' [BEFORE | AFTER 'w']`.
    fn add_enum_value(&mut self, key: &ObjectName, add: &AlterTypeAddValue) {
        let Some(values) = self.enum_values(key) else {
            return;
        };
        let value = add.value.value.clone();
        if values.contains(&value) {
            return;
        }
        let neighbour = |other: &ast::Ident| values.iter().position(|v| *v == other.value);
        let at = match &add.position {
            Some(AlterTypeAddValuePosition::Before(other)) => neighbour(other),
            Some(AlterTypeAddValuePosition::After(other)) => neighbour(other).map(|i| i + 1),
            None => None,
        };
        values.insert(at.unwrap_or(values.len()), value);
    }

    fn enum_values(&mut self, key: &ObjectName) -> Option<&mut Vec<String>> {
        match &mut self.types.get_mut(key)?.kind {
            TypeKind::Enum { values } => Some(values),
            _ => None,
        }
    }
}
