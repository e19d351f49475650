//! `migagent.toml`: found by walking up from the working directory, or given with `--config`.
//! Unknown keys are errors that name the key, so a typo never silently disables a setting.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

pub const FILE_NAME: &str = "migagent.toml";

/// The contents of `migagent.toml`. Every field is optional; command-line flags override it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FileConfig {
    /// Migration paths reviewed when none are given on the command line.
    pub paths: Option<Vec<PathBuf>>,
    /// Forces the migration tool instead of detecting it.
    pub tool: Option<String>,
    /// `per-statement` (psql, the default) or `per-file`: how plain `*.sql` files are run.
    pub transaction: Option<String>,
    pub pg_version: Option<u32>,
    pub fail_on: Option<String>,
    pub format: Option<String>,
    /// Largest migration file reviewed, in bytes.
    pub max_file_size: Option<u64>,
    /// Tables with fewer rows are small for `--stats` grading.
    pub small_table_rows: Option<u64>,
    /// Per-rule settings: `rule-id = "off" | "info" | "warning" | "error"`.
    #[serde(default)]
    pub rules: BTreeMap<String, String>,
    pub shadow: Option<ShadowConfig>,
    pub llm: Option<LlmConfig>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ShadowConfig {
    /// `auto`, `off`, or a `postgres://` URL of a server where migagent may create databases.
    pub mode: Option<String>,
    /// Directory holding `initdb`, `pg_ctl` and `postgres`.
    pub pg_bin: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LlmConfig {
    /// `auto`, `off` or `on`.
    pub mode: Option<String>,
    pub base_url: Option<String>,
    pub model: Option<String>,
    /// The name of the environment variable holding the API key (the key itself never goes in the file).
    pub api_key_env: Option<String>,
}

/// A configuration file that could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: PathBuf,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.message)
    }
}

/// The nearest `migagent.toml` in `start` or one of its ancestors.
pub fn find(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .map(|dir| dir.join(FILE_NAME))
        .find(|candidate| candidate.is_file())
}

/// Reads and checks a configuration file.
pub fn load(path: &Path) -> Result<FileConfig, ConfigError> {
    let error = |message: String| ConfigError {
        path: path.to_owned(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| error(format!("cannot read it: {e}")))?;
    parse(&text).map_err(error)
}

/// Parses configuration text; the error names the offending key and line.
pub fn parse(text: &str) -> Result<FileConfig, String> {
    toml::from_str::<FileConfig>(text).map_err(|e| e.to_string().trim_end().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_section() {
        let config = parse(
            r#"
            paths = ["db/migrations"]
            tool = "flyway"
            pg-version = 14
            [rules]
            rename-table = "off"
            [shadow]
            mode = "off"
            [llm]
            model = "gpt-4o-mini"
            "#,
        )
        .unwrap();
        assert_eq!(config.tool.as_deref(), Some("flyway"));
        assert_eq!(config.pg_version, Some(14));
        assert_eq!(config.rules["rename-table"], "off");
    }

    #[test]
    fn unknown_keys_are_named() {
        let error = parse("pg-verison = 14").unwrap_err();
        assert!(error.contains("unknown field `pg-verison`"), "{error}");
        let error = parse("[llm]\napi-key = \"sk-1\"").unwrap_err();
        assert!(error.contains("unknown field `api-key`"), "{error}");
    }
}
