//! Built-in drafts: what migagent proposes for a reviewed migration with no LLM at all. The rewrite
//! puts each finding's fix (drafted by the rule's own fixer, see [`crate::rules::fix`]) in place of
//! its statement and keeps every other statement as written, in the transactions it ran in; the down
//! migration undoes each statement the schema model can invert, in reverse order. Both go to the
//! validator unchanged, marked not validated yet.

use std::collections::BTreeMap;

use crate::advice::draft::{Body, Draft, Rewrite, Source, Step, Validation};
use crate::migration::Section;
use crate::pg::transactions::{transaction_states, TxState};
use crate::review::{Finding, MigrationReview};
use crate::rules::fix::{terminated, Fix, Placement};
use crate::schema::Catalog;
use crate::sql::{self, Kind, ParsedFile, Statement};

mod inverse;

/// What the built-in fixers draft for one migration, and why a draft is missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltinDrafts {
    /// The rewrite (when a finding has a fix) and the down migration (when every statement can be
    /// undone), each with `validation.status = skipped` until the validator has run it.
    pub drafts: Vec<Draft>,
    /// Why a draft is missing or partial, one sentence each.
    pub notes: Vec<String>,
}

/// The built-in drafts of one reviewed migration. `before` is the schema model just before the
/// migration (the history replayed): the down draft restores names, types, defaults and
/// nullability from it. It replays the migration on `before` under a journal, and leaves it as it
/// was.
pub fn drafts(migration: &MigrationReview, before: &mut Catalog) -> BuiltinDrafts {
    let parsed = parse(&migration.text, &migration.sections);
    drafts_of(migration, &parsed.statements, before)
}

/// [`drafts`] from the migration's statements as the review split them (not split again).
pub fn drafts_of(
    migration: &MigrationReview,
    statements: &[Statement],
    before: &mut Catalog,
) -> BuiltinDrafts {
    let states = transaction_states(&migration.text, statements, &migration.sections);
    let mut notes = Vec::new();
    let mut drafts = Vec::new();
    let shape = Shape {
        text: &migration.text,
        statements,
        states: &states,
        lines: |offset| migration.lines.position(&migration.text, offset).line,
    };
    match rewrite(&shape, &migration.findings) {
        Ok(Some(rewrite)) => drafts.push(builtin(Body::Rewrite(rewrite))),
        Ok(None) => {}
        Err(note) => notes.push(note),
    }
    match inverse::down(&shape, before) {
        Ok(down) => drafts.push(builtin(Body::Down(down))),
        Err(note) => notes.push(note),
    }
    BuiltinDrafts { drafts, notes }
}

fn builtin(body: Body) -> Draft {
    Draft {
        source: Source::Builtin,
        attempts: 1,
        body,
        validation: Validation::skipped("not validated yet"),
    }
}

fn parse(text: &str, sections: &[Section]) -> ParsedFile {
    let ranges: Vec<_> = sections.iter().map(|s| s.range.clone()).collect();
    sql::parse(text, &ranges)
}

/// A migration's statements with what the drafts need to know about each.
pub(crate) struct Shape<'a, L: Fn(usize) -> usize> {
    pub text: &'a str,
    pub statements: &'a [Statement],
    pub states: &'a [TxState],
    /// The 1-based line of a file offset.
    pub lines: L,
}

impl<L: Fn(usize) -> usize> Shape<'_, L> {
    /// `statement 3 (line 7)`, as findings name statements.
    pub fn describe(&self, index: usize) -> String {
        let line = (self.lines)(self.statements[index].range.start);
        format!("statement {} (line {line})", index + 1)
    }
}

/// One piece of the rewrite before pieces of one transaction are merged into steps.
enum Piece {
    /// A statement as written (or a preamble), in the transaction block it ran in.
    Kept {
        sql: String,
        transaction: Option<u32>,
        transactional: bool,
        /// Why it is there, for a preamble; `None` for a statement as written.
        note: Option<String>,
    },
    /// A step of a fix: a unit of its own.
    Fixed(Step),
}

/// The migration with each finding's fix in place of its statement; `None` when no finding has a
/// fix, an error note when fixes cannot be combined.
fn rewrite<L: Fn(usize) -> usize>(
    shape: &Shape<L>,
    findings: &[Finding],
) -> Result<Option<Rewrite>, String> {
    let mut fixes: BTreeMap<usize, Vec<(&Finding, &Fix)>> = BTreeMap::new();
    for finding in findings {
        if let Some(fix) = &finding.fix {
            fixes
                .entry(finding.statement)
                .or_default()
                .push((finding, fix));
        }
    }
    if fixes.is_empty() {
        return Ok(None);
    }
    let mut pieces = Vec::new();
    let mut rationale = Vec::new();
    for (index, statement) in shape.statements.iter().enumerate() {
        let transaction = shape.states[index].transaction;
        let here = fixes.get(&index).map(Vec::as_slice).unwrap_or_default();
        let replacing: Vec<_> = here
            .iter()
            .filter(|(_, fix)| fix.placement == Placement::Replace)
            .collect();
        if replacing.len() > 1 {
            return Err(format!(
                "no built-in rewrite: {} has {} findings whose fixes each replace the whole \
                 statement; split it into one statement per change and review again",
                shape.describe(index),
                replacing.len()
            ));
        }
        for (finding, fix) in here
            .iter()
            .filter(|(_, f)| f.placement == Placement::Before)
        {
            rationale.push(format!("{}: {}", shape.describe(index), finding.rule.id));
            pieces.extend(fix.steps.iter().map(|step| Piece::Kept {
                sql: step.sql.clone(),
                transaction,
                transactional: step.transactional,
                note: Some(step.note.clone()),
            }));
        }
        match replacing.first() {
            Some((finding, fix)) => {
                rationale.push(format!(
                    "{}: {} — {}",
                    shape.describe(index),
                    finding.rule.id,
                    steps_summary(fix)
                ));
                pieces.extend(fix.steps.iter().cloned().map(Piece::Fixed));
            }
            None if is_transaction_control(statement) => {}
            None => pieces.push(Piece::Kept {
                sql: terminated(statement.sql(shape.text)),
                transaction,
                transactional: runs_in_transaction(statement),
                note: None,
            }),
        }
    }
    Ok(Some(Rewrite {
        steps: merge(pieces),
        rationale: format!(
            "Each statement with a built-in fix is replaced by its safer steps; every other \
             statement is kept as written, grouped in the transactions it ran in: {}.",
            rationale.join("; ")
        ),
    }))
}

fn steps_summary(fix: &Fix) -> String {
    fix.steps
        .iter()
        .map(|step| step.note.as_str())
        .collect::<Vec<_>>()
        .join(", then ")
}

/// BEGIN, COMMIT and ROLLBACK are not kept: the steps' grouping says which statements share a
/// transaction, and a fix that must run outside one would otherwise land inside the file's block.
fn is_transaction_control(statement: &Statement) -> bool {
    Kind::TRANSACTION_CONTROL.contains(&statement.class.kind)
}

/// Statements PostgreSQL refuses inside a transaction block.
fn runs_in_transaction(statement: &Statement) -> bool {
    !(statement.class.concurrently || statement.class.kind == Kind::Vacuum)
}

/// Pieces into steps: consecutive kept statements of one transaction block share a step, as they
/// shared the transaction; a statement that ran on its own and each fix step are a step each.
fn merge(pieces: Vec<Piece>) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    let mut open: Option<u32> = None;
    for piece in pieces {
        match piece {
            Piece::Kept {
                sql,
                transaction: Some(block),
                transactional: true,
                ..
            } if open == Some(block) => {
                let step = steps.last_mut().expect("an open block has a step");
                step.sql.push('\n');
                step.sql.push_str(&sql);
            }
            Piece::Kept {
                sql,
                transaction,
                transactional,
                note,
            } => {
                let note = note.unwrap_or_else(|| {
                    match transaction {
                        Some(_) if transactional => "as written, in one transaction as before",
                        _ if transactional => "as written; it ran on its own",
                        _ => "as written; it runs outside any transaction block",
                    }
                    .to_owned()
                });
                open = transaction.filter(|_| transactional);
                steps.push(Step {
                    sql,
                    transactional,
                    note,
                });
            }
            Piece::Fixed(step) => {
                open = None;
                steps.push(step);
            }
        }
    }
    steps
}

#[cfg(test)]
mod tests;
