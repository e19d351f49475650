//! `migagent.toml`: found by walking up from the working directory, or given with `--config`.
//! Unknown keys are errors that name the key, so a typo never silently disables a setting.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::de::{self, Deserializer, Visitor};
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
    /// Target PostgreSQL version: `15`, or `"14.2"` with its minor.
    pub pg_version: Option<PgVersion>,
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
    /// `false` applies the whole history every run instead of starting from a cached copy.
    pub cache: Option<bool>,
    /// `true` accepts a shadow role that can reach beyond its databases (`--shadow-superuser`).
    pub superuser: Option<bool>,
    /// `true`: a history the shadow cannot apply fails the run (`--shadow require`).
    pub required: Option<bool>,
    /// Extensions migagent's own shadow installs as superuser (`--shadow-extension`).
    pub extensions: Option<Vec<String>>,
    /// `--statement-timeout`, e.g. `"5min"`.
    pub statement_timeout: Option<String>,
    /// `--shadow-max-size`, e.g. `"2GB"`.
    pub max_size: Option<String>,
    /// `--shadow-concurrency`: drafts validated at once (default 4).
    pub concurrency: Option<usize>,
    /// `--trace-changes`: `auto`, `always` or `never`.
    pub trace_changes: Option<String>,
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
    /// Azure OpenAI: the `api-version`; `model` is then the deployment.
    pub azure_api_version: Option<String>,
    /// Extra headers sent with every request; none may carry a credential (see `api-key-env`).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// `json_schema` (default), `json_object` (the schema in the prompt) or `plain`.
    pub response_format: Option<String>,
    /// Migrations get advice from a finding of this severity on: `error`, `warning` (default), `info`,
    /// or `never` (no LLM request, no drafts).
    pub advise_on: Option<String>,
    /// A directory of `*.hbs` templates replacing the embedded prompts.
    pub prompts: Option<PathBuf>,
    /// Prompt budget in tokens (default 12000).
    pub budget: Option<usize>,
    /// Seconds for one request, from sending it to the end of the reply (default 120).
    pub timeout: Option<u64>,
    /// Seconds to connect (default 10).
    pub connect_timeout: Option<u64>,
    /// Retries on 429, 5xx and connection errors (default 3).
    pub retries: Option<u32>,
    /// Requests in flight at once (default 4).
    pub concurrency: Option<usize>,
    pub max_completion_tokens: Option<u32>,
    /// `false`: ask the model every run instead of reusing cached replies.
    pub cache: Option<bool>,
    /// How many times a rejected draft of the model's goes back with the validator's reasons
    /// (default 2; 0: never).
    pub repair_rounds: Option<u32>,
}

/// A target PostgreSQL version: the major release, and the minor when it was given (`14.2`). Some
/// advice depends on the minor (14.0–14.3 build corrupt indexes concurrently).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PgVersion {
    pub major: u32,
    pub minor: Option<u32>,
}

/// The oldest major release accepted: rules distinguish versions from 9 on.
const OLDEST_MAJOR: u32 = 9;
/// Versions 10 and later number their major releases with one number; up to 9.6 the first two
/// numbers (`9.6`) named the major release and the minor came third (`9.6.24`).
const ONE_NUMBER_MAJORS_SINCE: u32 = 10;

impl FromStr for PgVersion {
    type Err = String;

    /// Reads `15`, `14.2`, and for releases before 10 `9.6` or `9.6.24` (major 9; rules tell no 9.x
    /// releases apart, so their minor is not kept).
    fn from_str(text: &str) -> Result<PgVersion, String> {
        let invalid = || {
            format!(
                "`{text}` is not a PostgreSQL version: give the major release (`15`) or the major and \
                 minor (`14.2`), as `SHOW server_version` prints them"
            )
        };
        let numbers = text
            .trim()
            .split('.')
            .map(|part| {
                (!part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| part.parse::<u32>().ok())
                    .flatten()
            })
            .collect::<Option<Vec<u32>>>()
            .ok_or_else(invalid)?;
        let (major, minor) = match numbers[..] {
            [major] => (major, None),
            [major, minor] if major >= ONE_NUMBER_MAJORS_SINCE => (major, Some(minor)),
            [major, _] | [major, _, _] if major < ONE_NUMBER_MAJORS_SINCE => (major, None),
            _ => return Err(invalid()),
        };
        if !(OLDEST_MAJOR..100).contains(&major) {
            return Err(format!(
                "PostgreSQL {major} is not a version migagent knows: give a major release from \
                 {OLDEST_MAJOR} on (`15`), optionally with its minor (`14.2`)"
            ));
        }
        Ok(PgVersion { major, minor })
    }
}

impl fmt::Display for PgVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.minor {
            Some(minor) => write!(f, "{}.{minor}", self.major),
            None => write!(f, "{}", self.major),
        }
    }
}

/// `pg-version = 15` or `pg-version = "14.2"`. A TOML number with a fraction is refused: as a number
/// 14.10 is 14.1, so the minor could be wrong.
impl<'de> Deserialize<'de> for PgVersion {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<PgVersion, D::Error> {
        struct VersionVisitor;

        impl Visitor<'_> for VersionVisitor {
            type Value = PgVersion;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a PostgreSQL version: a major release (15) or a string with the minor (\"14.2\")")
            }

            fn visit_i64<E: de::Error>(self, value: i64) -> Result<PgVersion, E> {
                value.to_string().parse().map_err(E::custom)
            }

            fn visit_u64<E: de::Error>(self, value: u64) -> Result<PgVersion, E> {
                value.to_string().parse().map_err(E::custom)
            }

            fn visit_f64<E: de::Error>(self, value: f64) -> Result<PgVersion, E> {
                Err(E::custom(format!(
                    "write a version with its minor as a string, `pg-version = \"{value}\"`: as a TOML \
                     number 14.10 reads as 14.1, so the minor could be wrong"
                )))
            }

            fn visit_str<E: de::Error>(self, value: &str) -> Result<PgVersion, E> {
                value.parse().map_err(E::custom)
            }
        }

        deserializer.deserialize_any(VersionVisitor)
    }
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
        assert_eq!(
            config.pg_version,
            Some(PgVersion {
                major: 14,
                minor: None
            })
        );
        assert_eq!(config.rules["rename-table"], "off");
    }

    #[test]
    fn reads_versions_with_and_without_a_minor() {
        for (text, major, minor) in [
            ("15", 15, None),
            ("14.2", 14, Some(2)),
            ("14.10", 14, Some(10)),
            (" 16.0 ", 16, Some(0)),
            ("9.6", 9, None),
            ("9.6.24", 9, None),
        ] {
            assert_eq!(
                text.parse::<PgVersion>(),
                Ok(PgVersion { major, minor }),
                "{text}"
            );
        }
        let config = parse("pg-version = \"14.2\"").unwrap();
        assert_eq!(
            config.pg_version,
            Some(PgVersion {
                major: 14,
                minor: Some(2)
            })
        );
        assert_eq!(config.pg_version.unwrap().to_string(), "14.2");
    }

    #[test]
    fn refuses_what_is_not_a_version() {
        for text in [
            "", "fifteen", "15.", ".2", "14.2.1", "14.x", "15beta1", "-15", "14,2",
        ] {
            let error = text.parse::<PgVersion>().unwrap_err();
            assert!(
                error.contains("is not a PostgreSQL version") && error.contains("`14.2`"),
                "{text}: {error}"
            );
        }
        for text in ["8", "150", "0"] {
            let error = text.parse::<PgVersion>().unwrap_err();
            assert!(
                error.contains("not a version migagent knows"),
                "{text}: {error}"
            );
        }
        let error = parse("pg-version = 14.2").unwrap_err();
        assert!(
            error.contains("pg-version") && error.contains("`pg-version = \"14.2\"`"),
            "{error}"
        );
        let error = parse("pg-version = \"latest\"").unwrap_err();
        assert!(
            error.contains("`latest` is not a PostgreSQL version"),
            "{error}"
        );
        let error = parse("pg-version = 150").unwrap_err();
        assert!(error.contains("PostgreSQL 150 is not a version"), "{error}");
    }

    #[test]
    fn unknown_keys_are_named() {
        let error = parse("pg-verison = 14").unwrap_err();
        assert!(error.contains("unknown field `pg-verison`"), "{error}");
        let error = parse("[llm]\napi-key = \"sk-1\"").unwrap_err();
        assert!(error.contains("unknown field `api-key`"), "{error}");
    }
}
