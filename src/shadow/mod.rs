//! The shadow database: a real PostgreSQL server that migagent applies the migration history to, so the
//! baseline schema comes from the real catalog instead of a best-effort replay (see DESIGN.md, "Schema model
//! and shadow database").
//!
//! `cluster` starts and tears down a throwaway server of migagent's own; `apply` applies migrations
//! in their tool's transaction shape; `trace` applies the reviewed one and records what each
//! statement locked, rewrote and scanned.

pub mod apply;
pub mod cluster;
pub mod trace;
