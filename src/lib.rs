//! migagent reviews PostgreSQL schema migrations before they merge.
//!
//! The modules follow the pipeline: `migration` (discover) → `sql` (split/parse) → `schema` (model) →
//! `rules` → `review` (findings) → `report`.

pub mod migration;
pub mod schema;
pub mod sql;
