//! PostgreSQL keeps at most 63 bytes of an identifier (NAMEDATALEN - 1) and cuts the rest off with
//! only a NOTICE. The object is created under the truncated name: two names that share their first
//! 63 bytes name the same object (the second CREATE fails, or does nothing with IF NOT EXISTS), and
//! tools that compare names as strings (ORM schema diffs, `'name'::regclass`, catalog queries) look
//! for the long name and do not find it.

use sqlparser::ast::{
    AlterIndexOperation, AlterPolicy, AlterPolicyOperation, AlterSchemaOperation,
    AlterTableOperation, AlterTypeOperation, AlterViewOperation, ColumnDef, Ident,
    ObjectName as AstName, RenameTableNameKind, SchemaName, Statement as Ast, TableConstraint,
};

use super::syntax::ident_offset;
use super::{Category, Diagnostic, Kinds, Rule, Severity, StatementContext};
use crate::schema::naming::{truncate_identifier, MAX_IDENTIFIER_BYTES};
use crate::sql::{Kind, ObjectName, TokenKind};

pub const RULE: Rule = Rule {
    id: "identifier-too-long",
    category: Category::Hygiene,
    default_severity: Severity::Warning,
    size_graded: false,
    summary: "identifiers over 63 bytes are silently truncated",
    doc: include_str!("../../rules/identifier-too-long.md"),
    check,
    kinds: Kinds::All,
};

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    let mut names = Names {
        cx,
        defined: Vec::new(),
    };
    match cx.statement.ast() {
        Some(ast) => names.statement(ast),
        None => names.unparsed(),
    }
    let too_long: Vec<Defined> = names
        .defined
        .into_iter()
        .filter(|defined| defined.name.len() > MAX_IDENTIFIER_BYTES)
        .collect();
    if too_long.is_empty() {
        return;
    }
    let table = relation_of(cx);
    for Defined { kind, name, offset } in too_long {
        out.push(cx.diagnostic(
            offset,
            table.as_ref(),
            format!(
                "{kind} name \"{name}\" is {} bytes long: PostgreSQL keeps 63 and creates \"{}\" with \
                 only a NOTICE, so another name with the same first 63 bytes names the same object, and \
                 tools that look the full name up (ORM schema diffs, '…'::regclass, catalog queries) do \
                 not find it",
                name.len(),
                truncate_identifier(&name)
            ),
            "choose a name of at most 63 bytes (letters outside ASCII take 2 to 4 bytes each), and \
             use that exact name wherever the object is referred to"
                .into(),
        ));
    }
}

/// The relation the statement creates or alters, for the finding's table.
fn relation_of(cx: &StatementContext) -> Option<ObjectName> {
    match cx.statement.ast() {
        Some(Ast::CreateTable(create)) => ObjectName::from_ast(&create.name),
        Some(Ast::AlterTable(alter)) => ObjectName::from_ast(&alter.name),
        Some(Ast::CreateIndex(index)) => ObjectName::from_ast(&index.table_name),
        Some(Ast::CreateView(view)) => ObjectName::from_ast(&view.name),
        Some(Ast::CreatePolicy(policy)) => ObjectName::from_ast(&policy.table_name),
        Some(Ast::AlterPolicy(policy)) => ObjectName::from_ast(&policy.table_name),
        Some(_) => None,
        None => match cx.statement.class.kind {
            Kind::CreateTable | Kind::AlterTable | Kind::CreateIndex => {
                cx.statement.class.target.clone()
            }
            _ => None,
        },
    }
}

/// A name the statement gives to a new or renamed object.
struct Defined {
    kind: &'static str,
    /// As PostgreSQL reads it, before truncation.
    name: String,
    /// Where it is written.
    offset: usize,
}

/// Collects the names a statement defines.
struct Names<'c, 'a> {
    cx: &'c StatementContext<'a>,
    defined: Vec<Defined>,
}

impl Names<'_, '_> {
    fn ident(&mut self, kind: &'static str, ident: &Ident) {
        let offset = ident_offset(self.cx, ident).unwrap_or(self.cx.statement.range.start);
        // PostgreSQL folds only ASCII letters of unquoted identifiers (in UTF-8 databases).
        let name = match ident.quote_style {
            Some(_) => ident.value.clone(),
            None => ident.value.to_ascii_lowercase(),
        };
        self.defined.push(Defined { kind, name, offset });
    }

    /// The last part of a (qualified) name: the part the statement defines.
    fn last(&mut self, kind: &'static str, name: &AstName) {
        if let Some(ident) = name.0.last().and_then(|part| part.as_ident()) {
            self.ident(kind, ident);
        }
    }

    /// A column's name and the names of its inline constraints.
    fn column(&mut self, column: &ColumnDef) {
        self.ident("column", &column.name);
        for name in column.options.iter().filter_map(|o| o.name.as_ref()) {
            self.ident("constraint", name);
        }
    }

    fn constraint(&mut self, constraint: &TableConstraint) {
        let name = match constraint {
            TableConstraint::PrimaryKey(c) => c.name.as_ref(),
            TableConstraint::Unique(c) => c.name.as_ref(),
            TableConstraint::ForeignKey(c) => c.name.as_ref(),
            TableConstraint::Check(c) => c.name.as_ref(),
            TableConstraint::Exclude(c) => c.name.as_ref(),
            TableConstraint::PrimaryKeyUsingIndex(c) | TableConstraint::UniqueUsingIndex(c) => {
                c.name.as_ref()
            }
            TableConstraint::Index(_) | TableConstraint::FulltextOrSpatial(_) => None,
        };
        if let Some(name) = name {
            self.ident("constraint", name);
        }
    }

    /// The names of tables, columns, constraints, indexes, sequences, types, domains, views,
    /// schemas, triggers, row-level security policies and functions a parsed statement creates or
    /// renames.
    fn statement(&mut self, ast: &Ast) {
        match ast {
            Ast::CreateTable(create) => {
                self.last("table", &create.name);
                create.columns.iter().for_each(|c| self.column(c));
                create.constraints.iter().for_each(|c| self.constraint(c));
            }
            Ast::AlterTable(alter) => alter.operations.iter().for_each(|o| self.alter_table(o)),
            Ast::CreateIndex(create) => {
                if let Some(name) = &create.name {
                    self.last("index", name);
                }
            }
            Ast::AlterIndex {
                operation: AlterIndexOperation::RenameIndex { index_name },
                ..
            } => self.last("index", index_name),
            Ast::CreateView(view) => {
                let kind = if view.materialized {
                    "materialized view"
                } else {
                    "view"
                };
                self.last(kind, &view.name);
                view.columns
                    .iter()
                    .for_each(|c| self.ident("column", &c.name));
            }
            Ast::AlterView(alter) => {
                if let AlterViewOperation::RenameTo { new_name } = &alter.operation {
                    self.last("view", new_name);
                }
            }
            Ast::CreateSequence { name, .. } => self.last("sequence", name),
            Ast::CreateType { name, .. } => self.last("type", name),
            Ast::AlterType(alter) => {
                if let AlterTypeOperation::Rename(rename) = &alter.operation {
                    self.ident("type", &rename.new_name);
                }
            }
            Ast::CreateDomain(domain) => self.last("domain", &domain.name),
            Ast::CreateSchema {
                schema_name: SchemaName::Simple(name) | SchemaName::NamedAuthorization(name, _),
                ..
            } => self.last("schema", name),
            Ast::AlterSchema(alter) => {
                for operation in &alter.operations {
                    if let AlterSchemaOperation::Rename { name } = operation {
                        self.last("schema", name);
                    }
                }
            }
            Ast::CreateTrigger(trigger) => self.last("trigger", &trigger.name),
            Ast::CreatePolicy(policy) => self.ident("policy", &policy.name),
            Ast::AlterPolicy(AlterPolicy {
                operation: AlterPolicyOperation::Rename { new_name },
                ..
            }) => self.ident("policy", new_name),
            Ast::CreateFunction(function) => self.last("function", &function.name),
            _ => {}
        }
    }

    fn alter_table(&mut self, operation: &AlterTableOperation) {
        match operation {
            AlterTableOperation::AddColumn { column_def, .. } => self.column(column_def),
            AlterTableOperation::AddConstraint { constraint, .. } => self.constraint(constraint),
            AlterTableOperation::RenameColumn {
                new_column_name, ..
            } => self.ident("column", new_column_name),
            AlterTableOperation::RenameConstraint { new_name, .. } => {
                self.ident("constraint", new_name);
            }
            AlterTableOperation::RenameTable {
                table_name: RenameTableNameKind::To(name) | RenameTableNameKind::As(name),
            } => self.last("table", name),
            _ => {}
        }
    }

    /// A `CREATE TABLE/SEQUENCE/TYPE/SCHEMA` sqlparser could not parse: the name it creates, from
    /// its leading keywords. Its other names (columns, constraints) cannot be told apart from
    /// references without the syntax tree.
    fn unparsed(&mut self) {
        let cx = self.cx;
        let kind = match cx.statement.class.kind {
            Kind::CreateTable => "table",
            Kind::CreateSequence => "sequence",
            Kind::CreateType => "type",
            Kind::CreateSchema => "schema",
            _ => return,
        };
        let Some(target) = &cx.statement.class.target else {
            return;
        };
        let written = cx.statement.tokens.iter().find(|token| {
            matches!(token.kind, TokenKind::Word | TokenKind::QuotedIdent)
                && ObjectName::from_tokens(cx.text, std::slice::from_ref(*token))
                    .is_some_and(|name| name.name == target.name)
        });
        self.defined.push(Defined {
            kind,
            name: target.name.clone(),
            offset: written.map_or(cx.statement.range.start, |token| token.range().start),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::truncate_identifier;
    use crate::rules::testing::check_rule;

    const RULE: &str = "identifier-too-long";

    /// 64 bytes.
    const LONG: &str = "subscription_notification_preferences_by_channel_and_frequency_x";

    #[test]
    fn fires_on_a_long_constraint_name() {
        let sql = format!("ALTER TABLE users ADD CONSTRAINT {LONG} CHECK (id > 0);");
        assert_eq!(
            check_rule(RULE, &["CREATE TABLE users (id bigint);"], &sql),
            "\
warning[identifier-too-long]: constraint name \"subscription_notification_preferences_by_channel_and_frequency_x\" is 64 bytes long: PostgreSQL keeps 63 and creates \"subscription_notification_preferences_by_channel_and_frequency_\" with only a NOTICE, so another name with the same first 63 bytes names the same object, and tools that look the full name up (ORM schema diffs, '…'::regclass, catalog queries) do not find it
 --> migration.sql:1:34
  |
1 | ALTER TABLE users ADD CONSTRAINT subscription_notification_preferences_by_channel_and_frequency_x CHECK (id > 0);
  |                                  ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  |
  = help: choose a name of at most 63 bytes (letters outside ASCII take 2 to 4 bytes each), and use that exact name wherever the object is referred to

"
        );
    }

    #[test]
    fn fires_on_every_kind_of_defined_name() {
        let statements = [
            (format!("CREATE TABLE {LONG} (id bigint);"), "table name"),
            (format!("CREATE TABLE t ({LONG} int);"), "column name"),
            (
                format!("CREATE TABLE t (a int CONSTRAINT {LONG} NOT NULL);"),
                "constraint name",
            ),
            (
                format!("CREATE TABLE t (a int, CONSTRAINT \"{LONG}\" UNIQUE (a));"),
                "constraint name",
            ),
            (format!("CREATE INDEX {LONG} ON t (a);"), "index name"),
            (
                format!("CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS {LONG} ON t (a);"),
                "index name",
            ),
            (
                format!("ALTER INDEX t_a_idx RENAME TO {LONG};"),
                "index name",
            ),
            (
                format!("ALTER TABLE t ADD COLUMN {LONG} text;"),
                "column name",
            ),
            (
                format!("ALTER TABLE t RENAME COLUMN a TO {LONG};"),
                "column name",
            ),
            (format!("ALTER TABLE t RENAME TO {LONG};"), "table name"),
            (
                format!("ALTER TABLE t RENAME CONSTRAINT c TO {LONG};"),
                "constraint name",
            ),
            (format!("CREATE SEQUENCE app.{LONG};"), "sequence name"),
            (format!("CREATE TYPE {LONG} AS ENUM ('a');"), "type name"),
            (format!("CREATE VIEW {LONG} AS SELECT 1;"), "view name"),
            (
                format!("CREATE MATERIALIZED VIEW {LONG} AS SELECT 1;"),
                "materialized view name",
            ),
            (format!("CREATE SCHEMA {LONG};"), "schema name"),
            (format!("CREATE DOMAIN {LONG} AS text;"), "domain name"),
            (
                format!(
                    "CREATE TRIGGER {LONG} BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION f();"
                ),
                "trigger name",
            ),
            (
                format!("CREATE POLICY \"{LONG}\" ON t FOR SELECT USING (true);"),
                "policy name",
            ),
            (
                format!("ALTER POLICY p ON t RENAME TO {LONG};"),
                "policy name",
            ),
        ];
        for (sql, kind) in statements {
            let report = check_rule(RULE, &[], &sql);
            assert!(
                report.contains(&format!("{kind} \"{LONG}\" is 64 bytes")),
                "{sql}\n{report}"
            );
        }
    }

    #[test]
    fn counts_bytes_not_characters() {
        // 32 two-byte characters: 64 bytes, 32 characters.
        let name: String = "é".repeat(32);
        let report = check_rule(RULE, &[], &format!("CREATE TABLE \"{name}\" (id bigint);"));
        assert!(report.contains("is 64 bytes long"), "{report}");
        assert_eq!(truncate_identifier(&name), "é".repeat(31));
        assert_eq!(
            truncate_identifier(&format!("a{name}")),
            format!("a{}", "é".repeat(31))
        );
        // 63 bytes is fine.
        let fits = &LONG[..63];
        assert_eq!(
            check_rule(RULE, &[], &format!("CREATE TABLE {fits} (id bigint);")),
            ""
        );
    }

    #[test]
    fn fires_on_unparsed_create_table_names() {
        let sql = format!("CREATE TABLE {LONG} (a int, CONSTRAINT a_nn NOT NULL a);");
        let report = check_rule(RULE, &[], &sql);
        assert!(report.contains("table name"), "{report}");
        assert!(report.contains("migration.sql:1:14"), "{report}");
    }

    #[test]
    fn silent_on_references_to_long_names() {
        for sql in [
            format!("ALTER TABLE {LONG} ADD COLUMN note text;"),
            format!("CREATE INDEX t_idx ON {LONG} (a);"),
            format!("DROP INDEX {LONG};"),
            format!("DROP POLICY IF EXISTS \"{LONG}\" ON t;"),
            format!("CREATE TABLE t (a bigint REFERENCES {LONG} (id));"),
        ] {
            assert_eq!(check_rule(RULE, &[], &sql), "", "{sql}");
        }
    }
}
