//! Drafts: a rewrite of a migration or its down migration, where it came from, and what the
//! validator concluded. The JSON report's `advice.drafts[]`, `advice.rewrite` and `advice.down`
//! (version 1, see DESIGN.md) are these values.

use serde::Serialize;

pub use crate::rules::fix::Step;

/// A safer migration doing what the reviewed one does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rewrite {
    pub steps: Vec<Step>,
    pub rationale: String,
}

/// A down migration: SQL that takes the schema back to what it was before the up migration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Down {
    pub sql: String,
    /// The up migration destroys data the down cannot bring back (it can at best restore the schema).
    pub data_loss: bool,
    pub notes: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Llm,
    Builtin,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Body {
    Rewrite(Rewrite),
    Down(Down),
}

impl Body {
    /// The JSON report's `kind`: `rewrite` or `down`.
    pub fn kind(&self) -> &'static str {
        match self {
            Body::Rewrite(_) => "rewrite",
            Body::Down(_) => "down",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Accepted,
    Rejected,
    Skipped,
}

/// The validator's verdict on a draft; every failed check is a reason the user can act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Validation {
    pub status: Status,
    pub reasons: Vec<String>,
    /// What the user should know about an accepted draft too (its columns end up in another
    /// order, the up destroys data the down cannot bring back).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl Validation {
    pub fn skipped(reason: impl Into<String>) -> Validation {
        Validation {
            status: Status::Skipped,
            reasons: vec![reason.into()],
            notes: Vec::new(),
        }
    }

    /// Accepted when no check failed, else rejected with every failed check as a reason.
    pub fn from_checks(reasons: Vec<String>, notes: Vec<String>) -> Validation {
        let status = if reasons.is_empty() {
            Status::Accepted
        } else {
            Status::Rejected
        };
        Validation {
            status,
            reasons,
            notes,
        }
    }
}

/// One draft considered for a migration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Draft {
    pub source: Source,
    /// How many drafts it took: 1, plus one per correction the validator's reasons asked for.
    pub attempts: u32,
    #[serde(flatten)]
    pub body: Body,
    pub validation: Validation,
}
