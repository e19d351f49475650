//! PostgreSQL knowledge that several stages share: which locks a statement takes ([`locks`]) and
//! which transaction each statement runs in, with the timeouts in effect ([`transactions`]). The
//! rules judge statements by it, the shadow applies migrations in the same shape, and the review
//! compares the shadow's trace with it; it sits below all three so none reaches into another.

pub mod locks;
pub mod transactions;
