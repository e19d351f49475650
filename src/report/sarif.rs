//! SARIF 2.1.0, the format code-scanning services read (GitHub code scanning, GitLab, IDE viewers):
//! one rule descriptor per rule with its document, one result per finding with its location in the
//! file, fingerprints that survive lines moving, and the inputs that could not be reviewed as tool
//! notifications.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Write};
use std::path::{Component, Path};

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::Context;
use crate::review::{Finding, MigrationReview, Review};
use crate::rules::{self, Rule, Severity};
use crate::sql::Position;

const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";
/// The base that relative artifact URIs resolve against: the working directory of the review.
const SRCROOT: &str = "%SRCROOT%";
/// The fingerprint of a finding; the version changes if what goes into it ever does.
const FINGERPRINT: &str = "migagentFinding/v1";

#[derive(Serialize)]
struct Log<'a> {
    #[serde(rename = "$schema")]
    schema: &'static str,
    version: &'static str,
    runs: [Run<'a>; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Run<'a> {
    tool: Tool,
    invocations: [Invocation; 1],
    original_uri_base_ids: BTreeMap<&'static str, ArtifactLocation>,
    /// Columns count characters, as every migagent report does.
    column_kind: &'static str,
    results: Vec<SarifResult<'a>>,
}

#[derive(Serialize)]
struct Tool {
    driver: Driver,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Driver {
    name: &'static str,
    version: &'static str,
    semantic_version: &'static str,
    rules: Vec<ReportingDescriptor>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReportingDescriptor {
    id: &'static str,
    name: String,
    short_description: Text,
    full_description: Text,
    help: Help,
    #[serde(skip_serializing_if = "Option::is_none")]
    help_uri: Option<String>,
    default_configuration: Configuration,
    properties: RuleProperties,
}

#[derive(Serialize)]
struct Text {
    text: String,
}

#[derive(Serialize)]
struct Help {
    text: String,
    markdown: &'static str,
}

#[derive(Serialize)]
struct Configuration {
    level: &'static str,
}

#[derive(Serialize)]
struct RuleProperties {
    tags: [&'static str; 2],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifResult<'a> {
    rule_id: &'static str,
    rule_index: usize,
    level: &'static str,
    message: Text,
    locations: [Location; 1],
    partial_fingerprints: BTreeMap<&'static str, String>,
    properties: ResultProperties<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ResultProperties<'a> {
    category: &'static str,
    help: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    table: Option<String>,
    /// Absent without a shadow database.
    #[serde(skip_serializing_if = "Option::is_none")]
    confirmed_by_shadow: Option<bool>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Location {
    physical_location: PhysicalLocation,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PhysicalLocation {
    artifact_location: ArtifactLocation,
    #[serde(skip_serializing_if = "Option::is_none")]
    region: Option<Region>,
}

#[derive(Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct ArtifactLocation {
    uri: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    uri_base_id: Option<&'static str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Region {
    start_line: usize,
    start_column: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    end_line: Option<usize>,
    /// One past the last character, as SARIF counts it.
    #[serde(skip_serializing_if = "Option::is_none")]
    end_column: Option<usize>,
}

impl Region {
    /// A place without an extent.
    fn at(position: Position) -> Region {
        Region {
            start_line: position.line,
            start_column: position.column,
            end_line: None,
            end_column: None,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Invocation {
    execution_successful: bool,
    exit_code: u8,
    tool_execution_notifications: Vec<Notification>,
}

#[derive(Serialize)]
struct Notification {
    level: &'static str,
    message: Text,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    locations: Vec<Location>,
}

/// Writes the review as one SARIF log, pretty-printed (SARIF files are read by people too).
pub fn write(review: &Review, context: &Context, out: &mut dyn Write) -> io::Result<()> {
    let rule_index: HashMap<&str, usize> = rules::ALL
        .iter()
        .enumerate()
        .map(|(index, rule)| (rule.id, index))
        .collect();
    let log = Log {
        schema: SCHEMA,
        version: "2.1.0",
        runs: [Run {
            tool: Tool {
                driver: Driver {
                    name: "migagent",
                    version: env!("CARGO_PKG_VERSION"),
                    semantic_version: env!("CARGO_PKG_VERSION"),
                    rules: rules::ALL
                        .iter()
                        .map(|rule| descriptor(rule, context))
                        .collect(),
                },
            },
            invocations: [invocation(review, context)],
            original_uri_base_ids: BTreeMap::from([(
                SRCROOT,
                ArtifactLocation {
                    uri: directory_uri(context.working_dir),
                    uri_base_id: None,
                },
            )]),
            column_kind: "unicodeCodePoints",
            results: review
                .migrations
                .iter()
                .flat_map(|migration| results(migration, &rule_index, context))
                .collect(),
        }],
    };
    super::write_json(&log, true, out)
}

fn descriptor(rule: &'static Rule, context: &Context) -> ReportingDescriptor {
    ReportingDescriptor {
        id: rule.id,
        name: pascal_case(rule.id),
        short_description: Text {
            text: rule.summary.to_owned(),
        },
        full_description: Text {
            text: why(rule.doc).unwrap_or(rule.summary).replace('\n', " "),
        },
        help: Help {
            text: format!(
                "{}. `migagent rules {}` prints the full document.",
                rule.summary, rule.id
            ),
            markdown: rule.doc,
        },
        help_uri: context
            .rules_url
            .map(|url| format!("{}/{}.md", url.trim_end_matches('/'), rule.id)),
        default_configuration: Configuration {
            level: level(rule.default_severity),
        },
        properties: RuleProperties {
            tags: ["migagent", rule.category.name()],
        },
    }
}

/// The "Why" section of a rule document.
fn why(doc: &str) -> Option<&str> {
    let (_, rest) = doc.split_once("## Why\n")?;
    let section = rest.split("\n## ").next().unwrap_or(rest);
    Some(section.trim())
}

/// `set-not-null` → `SetNotNull`, the identifier form SARIF suggests for a rule's name.
fn pascal_case(id: &str) -> String {
    id.split('-')
        .flat_map(|word| {
            let mut chars = word.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase())
                .into_iter()
                .chain(chars)
        })
        .collect()
}

fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "note",
    }
}

fn results<'a>(
    migration: &'a MigrationReview,
    rule_index: &HashMap<&str, usize>,
    context: &Context,
) -> Vec<SarifResult<'a>> {
    let path = artifact(&migration.path, context.working_dir);
    let mut occurrences: HashMap<(&str, String), usize> = HashMap::new();
    migration
        .findings
        .iter()
        .map(|finding| {
            let statement = normalized_statement(migration, finding);
            let occurrence = occurrences
                .entry((finding.rule.id, statement.clone()))
                .or_default();
            let fingerprint = fingerprint(finding.rule.id, &path.uri, &statement, *occurrence);
            *occurrence += 1;
            SarifResult {
                rule_id: finding.rule.id,
                rule_index: rule_index[finding.rule.id],
                level: level(finding.severity),
                message: Text {
                    text: result_message(finding),
                },
                locations: [Location {
                    physical_location: PhysicalLocation {
                        artifact_location: path.clone(),
                        region: Some(region(migration, finding)),
                    },
                }],
                partial_fingerprints: BTreeMap::from([(FINGERPRINT, fingerprint)]),
                properties: ResultProperties {
                    category: finding.category().name(),
                    help: &finding.help,
                    table: finding.table.as_ref().map(ToString::to_string),
                    confirmed_by_shadow: finding.confirmed_by_shadow,
                },
            }
        })
        .collect()
}

/// The message, then what to do instead: code-scanning services show the message alone.
fn result_message(finding: &Finding) -> String {
    if finding.help.is_empty() {
        finding.message.clone()
    } else {
        format!("{}\n\nHelp: {}", finding.message, finding.help)
    }
}

/// From the finding to the end of its statement.
fn region(migration: &MigrationReview, finding: &Finding) -> Region {
    let end = super::statement_end(migration, finding);
    Region {
        end_line: end.map(|end| end.line),
        end_column: end.map(|end| end.column),
        ..Region::at(finding.position)
    }
}

/// The finding's statement with every run of whitespace made one space: re-indenting it, or moving it
/// to another line, keeps the fingerprint.
fn normalized_statement(migration: &MigrationReview, finding: &Finding) -> String {
    let range = migration.statements[finding.statement].range.clone();
    migration.text[range]
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Identifies a finding across runs and line moves: its rule, its file, its statement's text, and
/// which of the identical (rule, statement) pairs of the file it is.
fn fingerprint(rule: &str, uri: &str, statement: &str, occurrence: usize) -> String {
    let mut hasher = Sha256::new();
    for part in [rule, uri, statement, &occurrence.to_string()] {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    hasher
        .finalize()
        .iter()
        .take(16)
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

fn invocation(review: &Review, context: &Context) -> Invocation {
    let problems = review.problems.iter().map(|problem| {
        let location = super::problem_file(problem).map(|file| Location {
            physical_location: PhysicalLocation {
                artifact_location: artifact(file, context.working_dir),
                region: problem.position.map(Region::at),
            },
        });
        Notification {
            level: "error",
            message: Text {
                text: format!(
                    "{}: could not be reviewed: {}",
                    super::shown_path(&problem.path),
                    problem.message
                ),
            },
            locations: location.into_iter().collect(),
        }
    });
    let passed_over = review.notices.iter().map(|notice| Notification {
        level: "note",
        message: Text {
            text: format!("{}: {}", super::shown_path(&notice.path), notice.message),
        },
        locations: Vec::new(),
    });
    let notices = review.migrations.iter().flat_map(|migration| {
        migration.notices.iter().map(|notice| Notification {
            level: "warning",
            message: Text {
                text: notice.message.clone(),
            },
            locations: vec![Location {
                physical_location: PhysicalLocation {
                    artifact_location: artifact(&migration.path, context.working_dir),
                    region: Some(Region::at(notice.position)),
                },
            }],
        })
    });
    Invocation {
        execution_successful: review.problems.is_empty(),
        exit_code: context.exit_code,
        tool_execution_notifications: problems.chain(passed_over).chain(notices).collect(),
    }
}

/// A file's location: relative to `%SRCROOT%` when it lies under the working directory, else an
/// absolute `file:` URI.
fn artifact(path: &Path, working_dir: &Path) -> ArtifactLocation {
    match super::relative_path(path, working_dir) {
        Some(relative) => ArtifactLocation {
            uri: encode_path(relative),
            uri_base_id: Some(SRCROOT),
        },
        None => ArtifactLocation {
            uri: format!("file://{}", encode_path(path)),
            uri_base_id: None,
        },
    }
}

/// `file:///work/project/`: a directory URI ends with a slash, so relative URIs resolve inside it.
fn directory_uri(dir: &Path) -> String {
    let mut uri = format!("file://{}", encode_path(dir));
    if !uri.ends_with('/') {
        uri.push('/');
    }
    uri
}

/// A path as a URI path: `/` separated, `.` segments dropped, every byte outside RFC 3986's
/// unreserved set and the sub-delimiters that are harmless in a path percent-encoded (`%`, `#`, `?`,
/// spaces, control characters, non-ASCII bytes of the file name).
fn encode_path(path: &Path) -> String {
    let mut out = String::new();
    for (index, component) in path
        .components()
        .filter(|c| *c != Component::CurDir)
        .enumerate()
    {
        match component {
            Component::RootDir => {
                out.push('/');
                continue;
            }
            _ if index > 0 && !out.ends_with('/') => out.push('/'),
            _ => {}
        }
        for &byte in component.as_os_str().as_encoded_bytes() {
            if byte.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=@".contains(&byte) {
                out.push(byte as char);
            } else {
                out.push_str(&format!("%{byte:02X}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_percent_encode_what_a_path_segment_cannot_hold() {
        assert_eq!(
            encode_path(Path::new("./db/migrations/0001 100%#?:x.sql")),
            "db/migrations/0001%20100%25%23%3F%3Ax.sql"
        );
        assert_eq!(encode_path(Path::new("/w/é\n.sql")), "/w/%C3%A9%0A.sql");
        assert_eq!(directory_uri(Path::new("/work/p")), "file:///work/p/");
        assert_eq!(directory_uri(Path::new("/")), "file:///");
    }

    #[test]
    fn files_under_the_working_directory_are_relative_to_srcroot() {
        let inside = artifact(Path::new("/w/p/db/a.sql"), Path::new("/w/p"));
        assert_eq!(
            (inside.uri.as_str(), inside.uri_base_id),
            ("db/a.sql", Some(SRCROOT))
        );
        let outside = artifact(Path::new("/elsewhere/a.sql"), Path::new("/w/p"));
        assert_eq!(
            (outside.uri.as_str(), outside.uri_base_id),
            ("file:///elsewhere/a.sql", None)
        );
    }

    #[test]
    fn rule_names_and_descriptions_come_from_the_catalog() {
        assert_eq!(
            pascal_case("add-column-not-null-without-default"),
            "AddColumnNotNullWithoutDefault"
        );
        for rule in rules::ALL {
            let why = why(rule.doc).unwrap_or_else(|| panic!("{} has no Why section", rule.id));
            assert!(!why.is_empty() && !why.contains("\n## "), "{}", rule.id);
        }
    }

    #[test]
    fn fingerprints_depend_on_every_part() {
        let base = fingerprint("set-not-null", "a.sql", "ALTER TABLE t", 0);
        assert_eq!(base.len(), 32);
        assert_eq!(
            base,
            fingerprint("set-not-null", "a.sql", "ALTER TABLE t", 0)
        );
        for other in [
            fingerprint("drop-table", "a.sql", "ALTER TABLE t", 0),
            fingerprint("set-not-null", "b.sql", "ALTER TABLE t", 0),
            fingerprint("set-not-null", "a.sql", "ALTER TABLE u", 0),
            fingerprint("set-not-null", "a.sql", "ALTER TABLE t", 1),
        ] {
            assert_ne!(base, other);
        }
    }
}
