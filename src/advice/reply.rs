//! The model's part of the advice contract: the Rust types a reply deserializes into, the JSON Schema
//! generated from them (schemars) made acceptable to OpenAI's strict structured output, and a checker
//! of a reply against that schema.
//!
//! The checker covers exactly the subset [`strict_schema`] produces (object, array, string, integer,
//! boolean, null, enum, anyOf): a general JSON Schema validator would add a regex engine and dozens of
//! crates to the build to check what these forty lines check, and its messages are what the repair
//! request quotes to the model.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::draft::{Down, Rewrite, Step};
use super::Risk;

/// What the model answers for one migration.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelReply {
    /// Two or three sentences: what the migration does and how risky it is to run as it is.
    pub summary: String,
    pub risk: ReplyRisk,
    /// One entry per finding worth explaining, by the finding's number.
    pub explanations: Vec<ReplyExplanation>,
    /// A safer migration doing the same, or null when the migration is fine as it is.
    pub rewrite: Option<ReplyRewrite>,
    /// The SQL that undoes the migration, or null when it cannot be written.
    pub down: Option<ReplyDown>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReplyRisk {
    Low,
    Medium,
    High,
    Critical,
}

impl From<ReplyRisk> for Risk {
    fn from(risk: ReplyRisk) -> Risk {
        match risk {
            ReplyRisk::Low => Risk::Low,
            ReplyRisk::Medium => Risk::Medium,
            ReplyRisk::High => Risk::High,
            ReplyRisk::Critical => Risk::Critical,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplyExplanation {
    /// The finding's number as the prompt gives it.
    pub finding: u32,
    pub explanation: String,
    /// What running the migration as it is would do in production.
    pub impact: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplyRewrite {
    pub steps: Vec<ReplyStep>,
    pub rationale: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplyStep {
    /// One or more statements, each ending with `;`.
    pub sql: String,
    /// Whether the step may run inside a transaction block.
    pub transactional: bool,
    pub note: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplyDown {
    pub sql: String,
    /// The migration destroys data this SQL cannot bring back.
    pub data_loss: bool,
    pub notes: String,
}

impl From<ReplyRewrite> for Rewrite {
    fn from(rewrite: ReplyRewrite) -> Rewrite {
        Rewrite {
            steps: rewrite
                .steps
                .into_iter()
                .map(|s| Step {
                    sql: s.sql,
                    transactional: s.transactional,
                    note: s.note,
                })
                .collect(),
            rationale: rewrite.rationale,
        }
    }
}

impl From<ReplyDown> for Down {
    fn from(down: ReplyDown) -> Down {
        Down {
            sql: down.sql,
            data_loss: down.data_loss,
            notes: down.notes,
        }
    }
}

/// The reply schema as OpenAI's strict mode accepts it: subschemas inline, every property required,
/// `additionalProperties: false` on every object, no `format`/`default`/`minimum`, and an optional
/// value as a union of its type with `null`.
pub fn strict_schema() -> Value {
    let schema = schemars::generate::SchemaSettings::draft07()
        .with(|settings| settings.inline_subschemas = true)
        .into_generator()
        .into_root_schema_for::<ModelReply>()
        .to_value();
    let mut schema = strict(schema);
    if let Value::Object(root) = &mut schema {
        root.remove("$schema");
        root.remove("title");
    }
    schema
}

fn strict(schema: Value) -> Value {
    let Value::Object(mut object) = schema else {
        return schema;
    };
    for key in ["format", "default", "minimum", "maximum", "examples"] {
        object.remove(key);
    }
    if let Some(Value::Object(properties)) = object.remove("properties") {
        let properties: Map<String, Value> = properties
            .into_iter()
            .map(|(name, schema)| (name, strict(schema)))
            .collect();
        object.insert(
            "required".into(),
            Value::Array(properties.keys().cloned().map(Value::String).collect()),
        );
        object.insert("properties".into(), Value::Object(properties));
        object.insert("additionalProperties".into(), Value::Bool(false));
    }
    if let Some(items) = object.remove("items") {
        object.insert("items".into(), strict(items));
    }
    if let Some(Value::Array(any_of)) = object.remove("anyOf") {
        let mut any_of: Vec<Value> = any_of.into_iter().map(strict).collect();
        let null = Value::Object(Map::from_iter([("type".into(), "null".into())]));
        // `{anyOf: [X, {type: null}]}` becomes X with `type: [X's type, "null"]`.
        if any_of.len() == 2 && any_of[1] == null {
            if let Value::Object(mut inner) = any_of.remove(0) {
                if let Some(Value::String(kind)) = inner.remove("type") {
                    inner.insert("type".into(), Value::from(vec![kind, "null".into()]));
                    if let Some(description) = object.remove("description") {
                        inner.insert("description".into(), description);
                    }
                    return Value::Object(inner);
                }
                any_of.insert(0, Value::Object(inner));
            }
        }
        object.insert("anyOf".into(), Value::Array(any_of));
    }
    Value::Object(object)
}

/// Where `value` breaks `schema` (one of [`strict_schema`]'s shapes): one message per problem, each
/// with the JSON path of the value; empty when it conforms.
pub fn check(value: &Value, schema: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    check_at(value, schema, "$", &mut errors);
    errors
}

fn check_at(value: &Value, schema: &Value, path: &str, errors: &mut Vec<String>) {
    if let Some(Value::Array(options)) = schema.get("anyOf") {
        let fits = options.iter().any(|option| {
            let mut inner = Vec::new();
            check_at(value, option, path, &mut inner);
            inner.is_empty()
        });
        if !fits {
            errors.push(format!("{path}: matches none of the allowed shapes"));
        }
        return;
    }
    let types: Vec<&str> = match schema.get("type") {
        Some(Value::String(kind)) => vec![kind],
        Some(Value::Array(kinds)) => kinds.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !types.is_empty() && !types.iter().any(|kind| is_type(value, kind)) {
        errors.push(format!(
            "{path}: expected {}, found {}",
            types.join(" or "),
            type_name(value)
        ));
        return;
    }
    if let Some(Value::Array(allowed)) = schema.get("enum") {
        if !allowed.contains(value) {
            errors.push(format!(
                "{path}: {value} is not one of {}",
                Value::from(allowed.clone())
            ));
        }
    }
    match value {
        Value::Object(object) => check_object(object, schema, path, errors),
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (index, item) in items.iter().enumerate() {
                    check_at(item, item_schema, &format!("{path}[{index}]"), errors);
                }
            }
        }
        _ => {}
    }
}

fn check_object(object: &Map<String, Value>, schema: &Value, path: &str, errors: &mut Vec<String>) {
    let properties = schema.get("properties").and_then(Value::as_object);
    for required in schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        if !object.contains_key(required) {
            errors.push(format!("{path}: missing required property `{required}`"));
        }
    }
    for (name, value) in object {
        match properties.and_then(|p| p.get(name)) {
            Some(property) => check_at(value, property, &format!("{path}.{name}"), errors),
            None if schema.get("additionalProperties") == Some(&Value::Bool(false)) => {
                errors.push(format!("{path}: property `{name}` is not allowed"));
            }
            None => {}
        }
    }
}

fn is_type(value: &Value, kind: &str) -> bool {
    match kind {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "integer" => value.is_u64() || value.is_i64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        _ => false,
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_u64() || n.is_i64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A reply's text checked against the schema and deserialized; the error lists what is wrong.
pub fn parse(text: &str, schema: &Value) -> Result<ModelReply, String> {
    let value: Value = serde_json::from_str(strip_code_fence(text))
        .map_err(|e| format!("the reply is not valid JSON: {e}"))?;
    let errors = check(&value, schema);
    if !errors.is_empty() {
        return Err(format!(
            "the reply does not match the schema: {}",
            errors.join("; ")
        ));
    }
    serde_json::from_value(value).map_err(|e| format!("the reply does not match the schema: {e}"))
}

/// Servers without structured output often wrap JSON in a Markdown fence.
fn strip_code_fence(text: &str) -> &str {
    let trimmed = text.trim();
    trimmed
        .strip_prefix("```json")
        .or_else(|| trimmed.strip_prefix("```"))
        .and_then(|rest| rest.strip_suffix("```"))
        .map_or(trimmed, str::trim)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Every object in the schema, with its path.
    fn objects<'a>(
        schema: &'a Value,
        path: String,
        out: &mut Vec<(String, &'a Map<String, Value>)>,
    ) {
        if let Value::Object(object) = schema {
            out.push((path.clone(), object));
            for (key, value) in object {
                match value {
                    Value::Array(items) => items
                        .iter()
                        .for_each(|item| objects(item, format!("{path}/{key}"), out)),
                    _ => objects(value, format!("{path}/{key}"), out),
                }
            }
        }
    }

    #[test]
    fn the_schema_is_strict_mode_compatible() {
        let schema = strict_schema();
        let mut all = Vec::new();
        objects(&schema, String::new(), &mut all);
        for (path, object) in &all {
            for banned in [
                "$ref",
                "$defs",
                "definitions",
                "format",
                "default",
                "minimum",
                "oneOf",
            ] {
                assert!(!object.contains_key(banned), "{banned} at {path}");
            }
            if let Some(Value::Object(properties)) = object.get("properties") {
                let required: Vec<&str> = object["required"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap())
                    .collect();
                assert_eq!(required.len(), properties.len(), "{path}");
                assert!(properties.keys().all(|k| required.contains(&k.as_str())));
                assert_eq!(object["additionalProperties"], false, "{path}");
            }
        }
        assert_eq!(schema["type"], "object");
        assert_eq!(
            schema["properties"]["rewrite"]["type"],
            json!(["object", "null"])
        );
        assert_eq!(
            schema["properties"]["down"]["type"],
            json!(["object", "null"])
        );
        assert_eq!(
            schema["properties"]["risk"]["enum"],
            json!(["low", "medium", "high", "critical"])
        );
    }

    fn good() -> Value {
        json!({
            "summary": "s", "risk": "high",
            "explanations": [{"finding": 1, "explanation": "e", "impact": "i"}],
            "rewrite": {"steps": [{"sql": "SELECT 1;", "transactional": false, "note": "n"}], "rationale": "r"},
            "down": null
        })
    }

    #[test]
    fn a_conforming_reply_parses() {
        let reply = parse(&good().to_string(), &strict_schema()).unwrap();
        assert_eq!(reply.risk, ReplyRisk::High);
        assert_eq!(reply.explanations[0].finding, 1);
        assert!(reply.down.is_none());
        let fenced = format!("```json\n{}\n```", good());
        assert!(parse(&fenced, &strict_schema()).is_ok());
    }

    #[test]
    fn the_checker_names_each_violation_by_its_path() {
        let schema = strict_schema();
        let mut reply = good();
        reply["risk"] = json!("safe");
        reply["explanations"][0]["finding"] = json!("one");
        reply["rewrite"]["steps"][0]
            .as_object_mut()
            .unwrap()
            .remove("sql");
        reply["extra"] = json!(1);
        let errors = check(&reply, &schema);
        assert!(
            errors.contains(
                &"$.risk: \"safe\" is not one of [\"low\",\"medium\",\"high\",\"critical\"]"
                    .to_owned()
            ),
            "{errors:?}"
        );
        assert!(errors
            .contains(&"$.explanations[0].finding: expected integer, found string".to_owned()));
        assert!(errors.contains(&"$.rewrite.steps[0]: missing required property `sql`".to_owned()));
        assert!(errors.contains(&"$: property `extra` is not allowed".to_owned()));
        assert!(parse("{\"summary\": \"cut", &schema)
            .unwrap_err()
            .starts_with("the reply is not valid JSON"));
    }
}
