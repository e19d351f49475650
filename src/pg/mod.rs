//! PostgreSQL knowledge that several stages share: which locks a statement takes ([`locks`]),
//! which transaction each statement runs in, with the timeouts in effect ([`transactions`]),
//! which statements act beyond the database they run in ([`server_wide`]), and which can roll back
//! a subtransaction ([`subtransactions`]). The rules judge statements by it, the shadow applies
//! migrations in the same shape, and the review compares the shadow's trace with it; it sits below
//! all three so none reaches into another.

pub mod held;
pub mod locks;
pub mod server_wide;
pub mod subtransactions;
pub mod transactions;
