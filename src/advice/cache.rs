//! The reply cache: a re-run of the same review (CI on every push) makes no request. An entry is keyed
//! by the endpoint, the model, the response mode and the rendered prompt (with a fixed nonce), and holds
//! the reply's text and its token counts: never the API key nor anything else from the environment.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::llm::Usage;
use crate::files::{self, Existing};

/// A cached reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub model: String,
    pub reply: String,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

impl Entry {
    pub fn usage(&self) -> Usage {
        Usage {
            prompt_tokens: self.prompt_tokens,
            completion_tokens: self.completion_tokens,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ReplyCache {
    dir: PathBuf,
}

impl ReplyCache {
    /// `$XDG_CACHE_HOME/migagent/llm` (else `$HOME/.cache/migagent/llm`); `None` without either.
    pub fn default_location() -> Option<PathBuf> {
        crate::shadow::cache::ImageCache::default_location().map(|dir| dir.join("llm"))
    }

    pub fn at(dir: PathBuf) -> ReplyCache {
        ReplyCache { dir }
    }

    /// The key of a request: hex SHA-256 of what decides the reply.
    pub fn key(endpoint: &str, system: &str, user: &str) -> String {
        let mut hasher = Sha256::new();
        for part in [endpoint, system, user] {
            hasher.update((part.len() as u64).to_le_bytes());
            hasher.update(part.as_bytes());
        }
        hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.json"))
    }

    /// The entry for `key`; a missing or unreadable entry is a miss.
    pub fn get(&self, key: &str) -> Option<Entry> {
        let text = std::fs::read_to_string(self.path(key)).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Stores an entry; a cache that cannot be written costs a request next time, nothing more.
    pub fn put(&self, key: &str, entry: &Entry) -> Result<(), String> {
        let json = serde_json::to_vec(entry).map_err(|e| e.to_string())?;
        files::write_atomically(&self.path(key), &json, Existing::Replace)
            .map_err(|e| format!("cannot write the LLM cache in {}: {e}", display(&self.dir)))
    }
}

fn display(dir: &Path) -> String {
    crate::escape::path(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_keys_depend_on_every_part() {
        let dir = std::env::temp_dir().join(format!("migagent-llm-cache-{}", std::process::id()));
        let cache = ReplyCache::at(dir.clone());
        let key = ReplyCache::key("e", "s", "u");
        assert_ne!(key, ReplyCache::key("e", "su", ""));
        assert_ne!(key, ReplyCache::key("f", "s", "u"));
        assert_eq!(cache.get(&key), None);
        let entry = Entry {
            model: "m".into(),
            reply: "{}".into(),
            prompt_tokens: 3,
            completion_tokens: 4,
        };
        cache.put(&key, &entry).unwrap();
        assert_eq!(cache.get(&key), Some(entry));
        let _ = std::fs::remove_dir_all(dir);
    }
}
