//! Advice: what migagent proposes for a reviewed migration, next to its findings. Built-in fixers and
//! an LLM draft a safer rewrite and a down migration; every draft is untrusted until the validate
//! stage has run it on the shadow. Advice adds words and drafts: it never adds, removes or re-grades
//! a finding, and never changes the exit code.

pub mod builtin;
pub mod draft;
