//! Column types as PostgreSQL sees them, for rules that compare an old and a new type.

use sqlparser::ast::{
    ArrayElemTypeDef, CharacterLength, DataType, ExactNumberInfo, TimezoneInfo, TypeModifier,
};

use crate::sql::ObjectName;

/// A type reduced to what decides whether a conversion rewrites: PostgreSQL's internal name
/// (aliases folded: `integer` → `int4`, `character varying` → `varchar`, …), its modifiers, and
/// whether it is an array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PgType {
    pub name: String,
    pub modifiers: Vec<i64>,
    pub array: bool,
}

impl PgType {
    fn named(name: &str, modifiers: Vec<i64>) -> PgType {
        PgType {
            name: name.to_owned(),
            modifiers,
            array: false,
        }
    }

    pub fn of(data_type: &DataType) -> PgType {
        let length = |len: &Option<CharacterLength>| match len {
            Some(CharacterLength::IntegerLength { length, .. }) => vec![*length as i64],
            _ => vec![],
        };
        let opt = |n: &Option<u64>| n.iter().map(|&n| n as i64).collect::<Vec<_>>();
        match data_type {
            DataType::Array(element) => {
                let mut inner = match element {
                    ArrayElemTypeDef::SquareBracket(inner, _)
                    | ArrayElemTypeDef::Qualified(inner, _)
                    | ArrayElemTypeDef::AngleBracket(inner)
                    | ArrayElemTypeDef::Parenthesis(inner)
                    | ArrayElemTypeDef::ParenthesisNotNull(inner) => PgType::of(inner),
                    ArrayElemTypeDef::None => PgType::named("anyelement", vec![]),
                };
                inner.array = true;
                inner
            }
            DataType::Character(len) | DataType::Char(len) => {
                let mut modifiers = length(len);
                if modifiers.is_empty() {
                    modifiers.push(1);
                }
                PgType::named("bpchar", modifiers)
            }
            DataType::CharacterVarying(len)
            | DataType::CharVarying(len)
            | DataType::Varchar(len)
            | DataType::Nvarchar(len) => PgType::named("varchar", length(len)),
            DataType::Text => PgType::named("text", vec![]),
            DataType::Numeric(info) | DataType::Decimal(info) | DataType::Dec(info) => {
                let modifiers = match info {
                    ExactNumberInfo::None => vec![],
                    ExactNumberInfo::Precision(p) => vec![*p as i64, 0],
                    ExactNumberInfo::PrecisionAndScale(p, s) => vec![*p as i64, *s],
                };
                PgType::named("numeric", modifiers)
            }
            DataType::Int(_) | DataType::Integer(_) | DataType::Int4(_) => {
                PgType::named("int4", vec![])
            }
            DataType::BigInt(_) | DataType::Int8(_) => PgType::named("int8", vec![]),
            DataType::SmallInt(_) | DataType::Int2(_) => PgType::named("int2", vec![]),
            DataType::Float4 | DataType::Real => PgType::named("float4", vec![]),
            DataType::Float8 | DataType::DoublePrecision | DataType::Double(_) => {
                PgType::named("float8", vec![])
            }
            DataType::Float(ExactNumberInfo::Precision(p)) if *p <= 24 => {
                PgType::named("float4", vec![])
            }
            DataType::Float(_) => PgType::named("float8", vec![]),
            DataType::Bool | DataType::Boolean => PgType::named("bool", vec![]),
            DataType::Timestamp(precision, zone) => {
                let name = match zone {
                    TimezoneInfo::WithTimeZone | TimezoneInfo::Tz => "timestamptz",
                    _ => "timestamp",
                };
                PgType::named(name, opt(precision))
            }
            DataType::Time(precision, zone) => {
                let name = match zone {
                    TimezoneInfo::WithTimeZone | TimezoneInfo::Tz => "timetz",
                    _ => "time",
                };
                PgType::named(name, opt(precision))
            }
            DataType::Bit(n) => PgType::named("bit", vec![n.map_or(1, |n| n as i64)]),
            DataType::BitVarying(n) | DataType::VarBit(n) => PgType::named("varbit", opt(n)),
            DataType::Custom(name, modifiers) => {
                let modifiers = modifiers
                    .iter()
                    .filter_map(|m| match m {
                        TypeModifier::Number(n, _) => n.parse().ok(),
                        _ => None,
                    })
                    .collect();
                PgType::named(&custom_name(name), modifiers)
            }
            other => PgType::named(&other.to_string().to_lowercase(), vec![]),
        }
    }
}

/// A type written as a plain name (`int8`, `"varchar"`, `pg_catalog.timestamptz`, `citext`).
fn custom_name(name: &sqlparser::ast::ObjectName) -> String {
    let Some(name) = ObjectName::from_ast(name) else {
        return name.to_string().to_lowercase();
    };
    if name.schema.as_deref().is_some_and(|s| s != "pg_catalog") {
        // User types: compared by name (the model may or may not have qualified them).
        return name.name;
    }
    match name.name.as_str() {
        "int" | "integer" | "int4" | "serial" | "serial4" => "int4",
        "bigint" | "int8" | "bigserial" | "serial8" => "int8",
        "smallint" | "int2" | "smallserial" | "serial2" => "int2",
        "varchar" | "character varying" => "varchar",
        "decimal" => "numeric",
        "boolean" => "bool",
        "double precision" => "float8",
        "real" => "float4",
        other => other,
    }
    .to_owned()
}
