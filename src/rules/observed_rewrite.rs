//! The shadow's trace saw a table that existed before the migration get new storage (a rewrite of every
//! row under ACCESS EXCLUSIVE) where no rule predicted one from the SQL: hidden in a function, a
//! trigger, a DO block or dynamic SQL. Reported by the shadow stage of the review.

use super::{trace_only, Category, Kinds, Rule, Severity};

pub const RULE: Rule = Rule {
    id: "observed-rewrite",
    category: Category::Shadow,
    default_severity: Severity::Error,
    size_graded: true,
    summary: "the shadow saw an existing table rewritten where no rule predicted it",
    doc: include_str!("../../rules/observed-rewrite.md"),
    check: trace_only,
    kinds: Kinds::Only(&[]),
};
