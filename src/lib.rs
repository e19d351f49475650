//! migagent reviews PostgreSQL schema migrations before they merge.
//!
//! The modules follow the pipeline: `migration` (discover) → `sql` (split/parse) → `schema` (model) →
//! `rules` → `review` (findings) → `report`; `pg` holds the PostgreSQL knowledge several of them share
//! (the lock model, transaction states); `cli` and `config` turn flags and `migagent.toml` into options;
//! `escape` makes text from the repository under review safe to print, for every stage and report.

pub mod advice;
pub mod cli;
pub mod config;
pub mod escape;
pub mod files;
pub mod init;
pub mod migration;
pub mod nonce;
pub mod pg;
pub mod postgres;
pub mod report;
pub mod review;
pub mod rules;
pub mod schema;
pub mod shadow;
pub mod sql;
pub mod stats;
pub mod validate;
