//! The column types a statement declares (`CREATE TABLE` columns, `ADD COLUMN`, `ALTER COLUMN … TYPE`),
//! for the hygiene rules that judge them.

use sqlparser::ast::{
    AlterColumnOperation, AlterTableOperation, ArrayElemTypeDef, ColumnDef, ColumnOptionDef,
    DataType, Ident, Statement as Ast,
};

use super::syntax::ident_offset;
use super::types::PgType;
use super::StatementContext;
use crate::sql::name::fold_ident;
use crate::sql::{ObjectName, TokenKind};

/// How a statement gives a column its type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Declaration {
    /// A column of `CREATE TABLE`.
    CreateTable,
    /// `ALTER TABLE … ADD COLUMN`.
    AddColumn,
    /// `ALTER TABLE … ALTER COLUMN … TYPE`.
    AlterType,
}

/// A column type written in the statement.
pub(crate) struct DeclaredColumn<'a> {
    /// The table as written.
    pub table: ObjectName,
    /// Case-folded.
    pub column: String,
    pub data_type: &'a DataType,
    /// Its inline options and constraints (none for `ALTER COLUMN … TYPE`).
    pub options: &'a [ColumnOptionDef],
    pub declaration: Declaration,
    /// Where the type is written, so that each column's finding points at its own type.
    pub offset: usize,
}

impl DeclaredColumn<'_> {
    /// `column public.events.payload`, for messages.
    pub fn name(&self, cx: &StatementContext) -> String {
        format!("{}.{}", cx.qualified(&self.table), self.column)
    }

    /// The built-in type it names (see [`catalog_type`]).
    pub fn catalog_type(&self) -> Option<PgType> {
        catalog_type(self.data_type)
    }

    /// Whether it is the built-in type `name` (PostgreSQL's catalog name: `json`, `timestamp`), or
    /// an array of it.
    pub fn is(&self, name: &str) -> bool {
        self.catalog_type().is_some_and(|t| t.name == name)
    }

    /// The type as SQL, lower case (`varchar(100)`, `timestamp without time zone`).
    pub fn type_sql(&self) -> String {
        self.data_type.to_string().to_lowercase()
    }

    /// `column public.events.payload is declared json` (`is changed to` for ALTER COLUMN TYPE).
    pub fn subject(&self, cx: &StatementContext) -> String {
        let verb = match self.declaration {
            Declaration::AlterType => "is changed to",
            Declaration::CreateTable | Declaration::AddColumn => "is declared",
        };
        format!("column {} {verb} {}", self.name(cx), self.type_sql())
    }
}

/// The column types the statement declares: the columns of a `CREATE TABLE` (not a temporary one,
/// not `AS SELECT`), `ADD COLUMN` and `ALTER COLUMN … TYPE` (not of a foreign table, whose types
/// mirror the remote ones). Statements sqlparser could not parse declare nothing the rules can read.
/// Read once per statement for the rules that judge column types.
pub(crate) fn declared_columns<'c, 'a>(cx: &'c StatementContext<'a>) -> &'c [DeclaredColumn<'a>] {
    cx.readings
        .declared_columns
        .get_or_init(|| read_declared_columns(cx))
}

fn read_declared_columns<'a>(cx: &StatementContext<'a>) -> Vec<DeclaredColumn<'a>> {
    match cx.statement.ast() {
        Some(Ast::CreateTable(create)) if create.query.is_none() && !create.temporary => {
            let Some(table) = ObjectName::from_ast(&create.name) else {
                return Vec::new();
            };
            create
                .columns
                .iter()
                .filter(|def| !is_like_clause(def) && def.data_type != DataType::Unspecified)
                .map(|def| DeclaredColumn {
                    table: table.clone(),
                    column: fold_ident(&def.name),
                    data_type: &def.data_type,
                    options: &def.options,
                    declaration: Declaration::CreateTable,
                    offset: type_offset(cx, &def.name, None),
                })
                .collect()
        }
        Some(Ast::AlterTable(alter)) if alter.table_type.is_none() => {
            let Some(table) = ObjectName::from_ast(&alter.name) else {
                return Vec::new();
            };
            alter
                .operations
                .iter()
                .filter_map(|operation| match operation {
                    AlterTableOperation::AddColumn { column_def, .. } => Some(DeclaredColumn {
                        table: table.clone(),
                        column: fold_ident(&column_def.name),
                        data_type: &column_def.data_type,
                        options: &column_def.options,
                        declaration: Declaration::AddColumn,
                        offset: type_offset(cx, &column_def.name, None),
                    }),
                    AlterTableOperation::AlterColumn {
                        column_name,
                        op: AlterColumnOperation::SetDataType { data_type, .. },
                    } => Some(DeclaredColumn {
                        table: table.clone(),
                        column: fold_ident(column_name),
                        data_type,
                        options: &[],
                        declaration: Declaration::AlterType,
                        offset: type_offset(cx, column_name, Some("type")),
                    }),
                    _ => None,
                })
                .collect()
        }
        _ => Vec::new(),
    }
}

/// sqlparser reads `(a int, LIKE source)` as a column named LIKE of type `source`.
fn is_like_clause(def: &ColumnDef) -> bool {
    def.name.quote_style.is_none() && def.name.value.eq_ignore_ascii_case("like")
}

/// Where the type of the column `name` is written: the token after the name, or after the
/// `keyword` that follows it (`ALTER COLUMN c [SET DATA] TYPE t`); else the name; else the statement.
fn type_offset(cx: &StatementContext, name: &Ident, keyword: Option<&str>) -> usize {
    let Some(at) = ident_offset(cx, name) else {
        return cx.statement.range.start;
    };
    let mut after = cx
        .statement
        .tokens
        .iter()
        .skip_while(|token| token.range().start <= at);
    let found = match keyword {
        None => after.next(),
        Some(keyword) => after
            .by_ref()
            .find(|token| {
                token.kind == TokenKind::Word
                    && cx.text[token.range()].eq_ignore_ascii_case(keyword)
            })
            .and_then(|_| after.next()),
    };
    found.map_or(at, |token| token.range().start)
}

/// The built-in type a declared type names, aliases folded (`integer` and `serial` → `int4`,
/// `character varying` → `varchar`, `"json"` and `pg_catalog.json` → `json`; arrays flagged), or
/// `None` for a type qualified with another schema than `pg_catalog`: a user type, whatever its name.
pub(crate) fn catalog_type(data_type: &DataType) -> Option<PgType> {
    let mut element = data_type;
    while let DataType::Array(
        ArrayElemTypeDef::SquareBracket(inner, _)
        | ArrayElemTypeDef::AngleBracket(inner)
        | ArrayElemTypeDef::Parenthesis(inner)
        | ArrayElemTypeDef::ParenthesisNotNull(inner)
        | ArrayElemTypeDef::Qualified(inner, _),
    ) = element
    {
        element = inner;
    }
    if let DataType::Custom(name, _) = element {
        let schema = ObjectName::from_ast(name).and_then(|name| name.schema);
        if schema.is_some_and(|schema| schema != "pg_catalog") {
            return None;
        }
    }
    Some(PgType::of(data_type))
}

/// The integer type of a serial pseudo-type (`serial` → `integer`): PostgreSQL recognises them by
/// their unqualified name only.
pub(crate) fn serial_integer(data_type: &DataType) -> Option<&'static str> {
    let DataType::Custom(name, modifiers) = data_type else {
        return None;
    };
    let [part] = name.0.as_slice() else {
        return None;
    };
    if !modifiers.is_empty() {
        return None;
    }
    match fold_ident(part.as_ident()?).as_str() {
        "serial" | "serial4" => Some("integer"),
        "bigserial" | "serial8" => Some("bigint"),
        "smallserial" | "serial2" => Some("smallint"),
        _ => None,
    }
}
