//! Rule documents, `rules/<id>.md`, and their fenced example blocks: ```` ```sql history ````,
//! ```` ```sql bad ````, ```` ```sql good ````, optionally with `pg=N` (see tests/rule_docs.rs).

use std::fs;
use std::path::{Path, PathBuf};

use migagent::rules::Rule;

pub fn docs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("rules")
}

pub fn doc_path(rule: &Rule) -> PathBuf {
    docs_dir().join(format!("{}.md", rule.id))
}

/// Reads a rule's document, or says why it cannot.
pub fn read_doc(rule: &Rule) -> Result<String, String> {
    let path = doc_path(rule);
    fs::read_to_string(&path).map_err(|error| format!("cannot read {}: {error}", path.display()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    History,
    Bad,
    Good,
}

#[derive(Debug)]
pub struct Example {
    pub role: Role,
    /// `pg=N` on the fence.
    pub pg_version: Option<u32>,
    pub sql: String,
    /// 1-based line of the opening fence, for messages.
    pub line: usize,
}

/// The example blocks of a document.
pub fn parse_examples(doc: &str) -> Result<Vec<Example>, String> {
    let mut examples = Vec::new();
    let mut lines = doc.lines().enumerate();
    while let Some((index, line)) = lines.next() {
        let Some(info) = line.trim_start().strip_prefix("```") else {
            continue;
        };
        let mut words = info.split_whitespace();
        let is_sql = words.next() == Some("sql");
        let mut role = None;
        let mut pg_version = None;
        for word in words.filter(|_| is_sql) {
            match word {
                "history" | "bad" | "good" if role.is_some() => {
                    return Err(format!("line {}: the fence names two roles", index + 1));
                }
                "history" => role = Some(Role::History),
                "bad" => role = Some(Role::Bad),
                "good" => role = Some(Role::Good),
                _ => match word.strip_prefix("pg=").map(str::parse::<u32>) {
                    Some(Ok(version)) => pg_version = Some(version),
                    _ => {
                        return Err(format!(
                            "line {}: unknown word `{word}` in the fence (expected history, bad, good, pg=N)",
                            index + 1
                        ))
                    }
                },
            }
        }
        // The block's body, up to the closing fence.
        let mut body = Vec::new();
        let mut closed = false;
        for (_, line) in lines.by_ref() {
            if line.trim_start().starts_with("```") {
                closed = true;
                break;
            }
            body.push(line);
        }
        if !closed {
            return Err(format!(
                "line {}: the fenced block is never closed",
                index + 1
            ));
        }
        let Some(role) = role else {
            if pg_version.is_some() {
                return Err(format!(
                    "line {}: pg=N on a block that is not bad or good",
                    index + 1
                ));
            }
            continue;
        };
        if role == Role::History && pg_version.is_some() {
            return Err(format!(
                "line {}: pg=N applies to bad and good blocks, not to history",
                index + 1
            ));
        }
        examples.push(Example {
            role,
            pg_version,
            sql: body.join("\n") + "\n",
            line: index + 1,
        });
    }
    Ok(examples)
}
