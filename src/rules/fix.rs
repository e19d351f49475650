//! What a built-in fixer drafts for one statement: the steps that replace it, each saying whether it
//! may run inside a transaction block. A rule's fixer sits in the rule's own file, next to the check
//! it answers, and the finding's help text shows the fixer's SQL, so what the user pastes is what the
//! validator proved. The advice stage composes a migration's fixes into one rewrite draft.

use serde::Serialize;

/// One step of a rewrite: SQL to run as a unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    /// One or more statements, each ending with `;`.
    pub sql: String,
    /// `true`: may run inside a transaction block (its own, or the tool's); `false`: must run outside
    /// any (CREATE INDEX CONCURRENTLY, a batched backfill that commits between batches).
    pub transactional: bool,
    /// Why this step, in one sentence.
    pub note: String,
}

/// A fixer's answer to one finding: the statement, replaced by these steps in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fix {
    pub steps: Vec<Step>,
}
