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

/// A fenced block of a document: the words after its opening fence, its body's lines, the 1-based
/// line of the opening fence, and whether a closing fence was found.
pub struct Fenced<'a> {
    pub info: &'a str,
    pub body: Vec<&'a str>,
    pub line: usize,
    pub closed: bool,
}

/// The fenced blocks of a document, in order; an unclosed block runs to the end and is the last.
pub fn fenced_blocks(doc: &str) -> Vec<Fenced<'_>> {
    let mut blocks = Vec::new();
    let mut lines = doc.lines().enumerate();
    while let Some((index, line)) = lines.next() {
        let Some(info) = line.trim_start().strip_prefix("```") else {
            continue;
        };
        let mut body = Vec::new();
        let mut closed = false;
        for (_, line) in lines.by_ref() {
            if line.trim_start().starts_with("```") {
                closed = true;
                break;
            }
            body.push(line);
        }
        blocks.push(Fenced {
            info,
            body,
            line: index + 1,
            closed,
        });
    }
    blocks
}

/// Every `sql` block of every rule document, with its origin (`path:line`), whatever its role.
pub fn all_sql_blocks() -> Vec<(String, String)> {
    let mut paths: Vec<PathBuf> = fs::read_dir(docs_dir())
        .unwrap()
        .flatten()
        .map(|entry| entry.path())
        .collect();
    paths.sort();
    let mut blocks = Vec::new();
    for path in paths {
        let doc = fs::read_to_string(&path).unwrap();
        for block in fenced_blocks(&doc) {
            if block.closed && block.info.split_whitespace().next() == Some("sql") {
                let sql = block.body.iter().map(|line| format!("{line}\n")).collect();
                blocks.push((format!("{}:{}", path.display(), block.line), sql));
            }
        }
    }
    blocks
}

/// The example blocks of a document.
pub fn parse_examples(doc: &str) -> Result<Vec<Example>, String> {
    let mut examples = Vec::new();
    for Fenced {
        info,
        body,
        line,
        closed,
    } in fenced_blocks(doc)
    {
        let mut words = info.split_whitespace();
        let is_sql = words.next() == Some("sql");
        let mut role = None;
        let mut pg_version = None;
        for word in words.filter(|_| is_sql) {
            match word {
                "history" | "bad" | "good" if role.is_some() => {
                    return Err(format!("line {}: the fence names two roles", line));
                }
                "history" => role = Some(Role::History),
                "bad" => role = Some(Role::Bad),
                "good" => role = Some(Role::Good),
                _ => match word.strip_prefix("pg=").map(str::parse::<u32>) {
                    Some(Ok(version)) => pg_version = Some(version),
                    _ => {
                        return Err(format!(
                            "line {}: unknown word `{word}` in the fence (expected history, bad, good, pg=N)",
                            line
                        ))
                    }
                },
            }
        }
        if !closed {
            return Err(format!("line {}: the fenced block is never closed", line));
        }
        let Some(role) = role else {
            if pg_version.is_some() {
                return Err(format!(
                    "line {}: pg=N on a block that is not bad or good",
                    line
                ));
            }
            continue;
        };
        if role == Role::History && pg_version.is_some() {
            return Err(format!(
                "line {}: pg=N applies to bad and good blocks, not to history",
                line
            ));
        }
        examples.push(Example {
            role,
            pg_version,
            sql: body.join("\n") + "\n",
            line,
        });
    }
    Ok(examples)
}
