//! `CREATE SEQUENCE` and `ALTER SEQUENCE` (which sqlparser does not parse: see `fallback`).

use sqlparser::ast::{self, SequenceOptions};

use super::object_name;
use crate::schema::{Catalog, Sequence};
use crate::sql::ObjectName;

impl Catalog {
    pub(super) fn create_sequence(
        &mut self,
        name: &ast::ObjectName,
        if_not_exists: bool,
        options: &[SequenceOptions],
    ) {
        let Some(name) = object_name(name) else {
            return;
        };
        let key = self.qualify(&name);
        if if_not_exists && self.sequences.contains_key(&key) {
            return;
        }
        let owned_by = options.iter().find_map(|option| match option {
            SequenceOptions::OwnedBy(Some(column)) => object_name(column),
            _ => None,
        });
        self.sequences.insert(
            key.clone(),
            Sequence {
                name: key.clone(),
                owned_by: None,
                options: super::create_table::sequence_options_sql(options),
                origin: *self.current,
            },
        );
        if let Some(column) = owned_by {
            self.set_sequence_owner(&key, Some(&column));
        }
    }

    /// `OWNED BY table.column` (`None`: `OWNED BY NONE`).
    pub(super) fn set_sequence_owner(
        &mut self,
        sequence: &ObjectName,
        column: Option<&ObjectName>,
    ) {
        // The model name of `[schema.]table.column` keeps its last two parts: table and column.
        let owner = column.and_then(|column| {
            let table = ObjectName::new(None, column.schema.as_deref()?);
            Some((self.relation_name(&table), column.name.clone()))
        });
        if let Some(mut sequence) = self.sequences.get_mut(sequence) {
            sequence.owned_by = owner;
        }
    }
}
