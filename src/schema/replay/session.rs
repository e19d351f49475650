//! The session's `search_path`, which decides where unqualified names are created and found:
//! `SET [LOCAL] search_path …`, `RESET search_path`, and `SELECT set_config('search_path', …)`.

use sqlparser::ast::{
    Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Query, Reset, ResetStatement,
    SelectItem, Set, SetExpr, Value,
};

use crate::schema::{default_search_path, naming, Catalog};

impl Catalog {
    /// `SET search_path TO a, b` / `SET search_path = …` / `… TO DEFAULT`.
    pub(super) fn set(&mut self, set: &Set) {
        let Set::SingleAssignment {
            variable, values, ..
        } = set
        else {
            return;
        };
        if !is_search_path(variable.to_string().as_str()) {
            return;
        }
        let schemas = values.iter().filter_map(|value| match value {
            Expr::Identifier(ident) if ident.quote_style.is_none() => {
                Some(ident.value.to_lowercase())
            }
            Expr::Identifier(ident) => Some(ident.value.clone()),
            // A quoted string is one schema name, however it is spelled.
            Expr::Value(value) => match &value.value {
                Value::SingleQuotedString(name) => Some(name.clone()),
                _ => None,
            },
            _ => None,
        });
        let schemas: Vec<String> = schemas.collect();
        if matches!(schemas.as_slice(), [only] if only == "default") {
            *self.search_path = default_search_path();
        } else {
            self.set_search_path(schemas);
        }
    }

    /// `RESET search_path` / `RESET ALL`.
    pub(super) fn reset(&mut self, reset: &ResetStatement) {
        let resets = match &reset.reset {
            Reset::ALL => true,
            Reset::ConfigurationParameter(name) => is_search_path(&name.to_string()),
            Reset::SessionAuthorization => false,
        };
        if resets {
            *self.search_path = default_search_path();
        }
    }

    /// `SELECT [pg_catalog.]set_config('search_path', 'a, b', is_local)`, as pg_dump and tools
    /// built on it write.
    pub(super) fn select_set_config(&mut self, query: &Query) {
        let SetExpr::Select(select) = query.body.as_ref() else {
            return;
        };
        for item in &select.projection {
            let (SelectItem::UnnamedExpr(Expr::Function(function))
            | SelectItem::ExprWithAlias {
                expr: Expr::Function(function),
                ..
            }) = item
            else {
                continue;
            };
            let is_set_config = function
                .name
                .0
                .last()
                .and_then(|part| part.as_ident())
                .is_some_and(|ident| ident.value.eq_ignore_ascii_case("set_config"));
            let FunctionArguments::List(arguments) = &function.args else {
                continue;
            };
            let strings: Vec<Option<&str>> = arguments.args.iter().map(string_argument).collect();
            if let (true, [Some(setting), Some(value), ..]) = (is_set_config, strings.as_slice()) {
                if is_search_path(setting) {
                    self.set_search_path(parse_search_path(value));
                }
            }
        }
    }

    /// Replaces the search path with `schemas`, less `"$user"` (migrations run as roles without a
    /// schema of their own) and `pg_catalog` (never where objects are created).
    ///
    /// An empty path keeps the default `public`: pg_dump empties it
    /// (`set_config('search_path', '', false)`) only so that every name it writes is
    /// schema-qualified. An unqualified name would then resolve to `pg_catalog` alone, where
    /// migrations create nothing, so `public` is the useful guess for any that still follows.
    fn set_search_path(&mut self, schemas: Vec<String>) {
        let schemas: Vec<String> = schemas
            .into_iter()
            .filter(|schema| !schema.is_empty() && schema != "$user" && schema != "pg_catalog")
            .map(|schema| naming::truncate_identifier(&schema))
            .collect();
        *self.search_path = match schemas.is_empty() {
            true => default_search_path(),
            false => schemas,
        };
    }
}

fn is_search_path(name: &str) -> bool {
    name.eq_ignore_ascii_case("search_path")
}

/// A string literal argument of a function call.
fn string_argument(argument: &FunctionArg) -> Option<&str> {
    match argument {
        FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Value(value))) => match &value.value {
            Value::SingleQuotedString(text) => Some(text),
            _ => None,
        },
        _ => None,
    }
}

/// The schemas of a search-path string (`'"$user", public'`), folded as identifiers.
fn parse_search_path(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .map(
            |schema| match schema.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
                Some(quoted) => quoted.replace("\"\"", "\""),
                None => schema.to_lowercase(),
            },
        )
        .collect()
}
