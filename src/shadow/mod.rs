//! The shadow database: a real PostgreSQL server that migagent applies the migration history to, so the
//! baseline schema comes from the real catalog instead of a best-effort replay (see DESIGN.md, "Schema model
//! and shadow database").
//!
//! `cluster` starts and tears down a throwaway server of migagent's own; `signals` tears the live ones
//! down when the process is interrupted; `cache` keeps data directories (fresh initdb, applied histories)
//! to start later clusters from.

pub mod cache;
pub mod cluster;
pub mod signals;
