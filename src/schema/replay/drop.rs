//! `DROP TABLE | VIEW | MATERIALIZED VIEW | FOREIGN TABLE | INDEX | SEQUENCE | TYPE | DOMAIN |
//! SCHEMA`, several names per statement, with what each drop takes along (see `objects`).

use sqlparser::ast::{self, ObjectType};

use super::object_name;
use crate::schema::Catalog;
use crate::sql::ObjectName;

/// The catalog map a DROP removes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Dropped {
    Relation,
    Index,
    Sequence,
    Type,
    Schema,
}

impl Dropped {
    fn of(object_type: ObjectType) -> Option<Dropped> {
        match object_type {
            ObjectType::Table
            | ObjectType::View
            | ObjectType::MaterializedView
            | ObjectType::ForeignTable => Some(Dropped::Relation),
            ObjectType::Index => Some(Dropped::Index),
            ObjectType::Sequence => Some(Dropped::Sequence),
            ObjectType::Type => Some(Dropped::Type),
            ObjectType::Schema => Some(Dropped::Schema),
            _ => None,
        }
    }
}

impl Catalog {
    pub(super) fn drop_objects(&mut self, object_type: ObjectType, names: &[ast::ObjectName]) {
        let Some(dropped) = Dropped::of(object_type) else {
            return;
        };
        for name in names.iter().filter_map(object_name) {
            self.drop_object(dropped, &name);
        }
    }

    /// `DROP DOMAIN`.
    pub(super) fn drop_types(&mut self, names: &[ast::ObjectName]) {
        self.drop_objects(ObjectType::Type, names);
    }

    /// Drops one object; a name the model does not know changes nothing.
    pub(super) fn drop_object(&mut self, dropped: Dropped, name: &ObjectName) {
        match dropped {
            Dropped::Relation => {
                if let Some(key) = self.relation_key(name) {
                    self.remove_relation(&key);
                }
            }
            Dropped::Index => {
                if let Some(key) = self.find_key(&self.indexes, name) {
                    self.remove_index(&key);
                }
            }
            Dropped::Sequence => {
                if let Some(key) = self.find_key(&self.sequences, name) {
                    self.sequences.remove(&key);
                }
            }
            Dropped::Type => {
                if let Some(key) = self.find_key(&self.types, name) {
                    self.types.remove(&key);
                }
            }
            // `DROP SCHEMA s`: the schema's name is the name's last part.
            Dropped::Schema => {
                self.remove_schema(&crate::schema::naming::truncate_identifier(&name.name))
            }
        }
    }
}
