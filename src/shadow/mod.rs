//! The shadow database: a real PostgreSQL server that migagent applies the migration history to, so the
//! baseline schema comes from the real catalog instead of a best-effort replay (see DESIGN.md, "Schema model
//! and shadow database").
//!
//! - `cluster` starts and tears down a throwaway server of migagent's own; `signals` tears it down on
//!   Ctrl-C; `cache` keeps images of clusters whose history is applied;
//! - `session` opens the shadow (that cluster, or a server given by URL) and owns the databases migagent
//!   creates on it; `url` checks a server given by URL and sweeps what dead runs left there;
//! - `apply` applies migrations in their tool's transaction shape; `trace` does so statement by statement,
//!   recording locks, rewrites, scans and plans;
//! - `snapshot` reads a database's schema and diffs two snapshots; `live_schema` keeps one up to date
//!   statement by statement for the trace, reading only what each statement can have changed.

pub mod apply;
pub mod cache;
pub mod cluster;
pub mod live_schema;
pub mod privilege;
pub mod session;
pub mod signals;
pub mod snapshot;
pub mod trace;
pub mod url;
