//! Syntax trees built on a second core ahead of a thread that walks a long file's statements in
//! order (the review, or the replay of a history file). The walking thread hands out copies of the
//! next statements' tokens in batches of hundreds, a worker parses them and hands the trees back,
//! and the trees the walk is done with go back to that worker to be freed: each tree is allocated
//! and freed on the thread that built it, and a message carries hundreds of statements.

// Trees move between the threads in the boxes their statements held, never copied.
#![allow(clippy::vec_box)]

use std::ops::Range;
use std::sync::mpsc;
use std::sync::Arc;

use sqlparser::ast;

use super::nesting::THREAD_STACK_BYTES;
use super::{parse_tokens, refusal, Statement, Token, Tree};

/// Statements per batch.
const BATCH: usize = 512;

/// Batches handed out ahead of the walk: bounds the trees held ahead (10–20 KB each).
const BATCHES_AHEAD: usize = 4;

/// Files with fewer statements are walked without a worker: the threads that load files parse
/// their first statements ahead already (see `review`), and a thread costs more than it saves.
const MIN_STATEMENTS: usize = 4 * BATCH;

/// Where a tree belongs: a statement, or the statement of its DO block at that position.
type Unit = (usize, Option<usize>);

/// What parsing one statement reads of it, owned by the batch.
struct Job {
    unit: Unit,
    range: Range<usize>,
    /// Its significant tokens, in the batch's `tokens`.
    tokens: Range<usize>,
    refused: Option<&'static str>,
}

/// Statements for the worker to parse, and trees for it to free.
struct Batch {
    text: Arc<str>,
    jobs: Vec<Job>,
    tokens: Vec<Token>,
    free: Vec<Box<ast::Statement>>,
}

impl Batch {
    fn parse(self) -> Vec<(Unit, Tree)> {
        drop(self.free);
        self.jobs
            .into_iter()
            .map(|job| {
                let tokens = &self.tokens[job.tokens];
                (
                    job.unit,
                    parse_tokens(&self.text, job.range, tokens, job.refused),
                )
            })
            .collect()
    }
}

/// The walking thread's end of the worker.
struct Worker {
    batches: mpsc::Sender<Batch>,
    trees: mpsc::Receiver<Vec<(Unit, Tree)>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Worker {
    /// `None` when no thread can be started: the walk then parses as it goes.
    fn start() -> Option<Worker> {
        let (batches, received) = mpsc::channel::<Batch>();
        let (sender, trees) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("parse-ahead".into())
            .stack_size(THREAD_STACK_BYTES)
            .spawn(move || {
                for batch in received {
                    if sender.send(batch.parse()).is_err() {
                        break;
                    }
                }
            })
            .ok()?;
        Some(Worker {
            batches,
            trees,
            thread: Some(thread),
        })
    }
}

impl Drop for Worker {
    /// Closes the batches' channel, which ends the worker, and waits for it.
    fn drop(&mut self) {
        let (closed, _) = mpsc::channel();
        drop(std::mem::replace(&mut self.batches, closed));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Parses a file's statements ahead of a walk over them in order: call [`Ahead::reach`] before
/// using a statement and [`Ahead::release`] once done with it.
pub struct Ahead {
    /// `None` on one core, for a short file, or once the worker is gone: statements are then parsed
    /// where they are first used, as without this.
    worker: Option<Worker>,
    /// Statements before this index were handed out to the worker.
    handed_out: usize,
    /// Statements before this index have the trees the worker built for them.
    installed: usize,
    /// The end of each batch handed out and not yet back, in order.
    pending: std::collections::VecDeque<usize>,
    /// Released trees not yet sent back to the worker.
    free: Vec<Box<ast::Statement>>,
}

impl Ahead {
    /// For a walk over `count` statements: with a worker on a thread of its own when there is more
    /// than one core and the file is long, else parsing nothing ahead.
    pub fn new(count: usize) -> Ahead {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let worker = (cores >= 2 && count >= MIN_STATEMENTS)
            .then(Worker::start)
            .flatten();
        Ahead {
            worker,
            handed_out: 0,
            installed: 0,
            pending: Default::default(),
            free: Vec::new(),
        }
    }

    /// Readies `statements[index]` (the walk's next statement): hands out the batches up to a
    /// bounded distance ahead of it, keeps the trees the worker sent back, and waits for the
    /// statement's own.
    pub fn reach(&mut self, statements: &[Statement], index: usize) {
        let Some(worker) = &self.worker else {
            return;
        };
        let ahead = (index + BATCH * BATCHES_AHEAD).min(statements.len());
        while self.handed_out < ahead {
            let end = (self.handed_out + BATCH).min(statements.len());
            let batch = batch(
                statements,
                self.handed_out..end,
                std::mem::take(&mut self.free),
            );
            if worker.batches.send(batch).is_err() {
                self.worker = None;
                return;
            }
            self.pending.push_back(end);
            self.handed_out = end;
        }
        while let Some(&end) = self.pending.front() {
            let trees = if self.installed <= index {
                worker.trees.recv().ok()
            } else {
                match worker.trees.try_recv() {
                    Ok(trees) => Some(trees),
                    Err(mpsc::TryRecvError::Empty) => break,
                    Err(mpsc::TryRecvError::Disconnected) => None,
                }
            };
            let Some(trees) = trees else {
                self.worker = None;
                return;
            };
            self.pending.pop_front();
            self.installed = end;
            for ((at, nested), tree) in trees {
                let statement = &statements[at];
                let unit = nested.map_or(statement, |i| &statement.nested[i]);
                if let Err(Ok(tree)) = unit.install(tree) {
                    // The walk parsed it first (a rule looked ahead): freed with the released.
                    self.free.push(tree);
                }
            }
        }
    }

    /// Frees the syntax trees of a statement the walk is done with (on the worker, which built
    /// them, when there is one).
    pub fn release(&mut self, statement: &mut Statement) {
        statement.release_tree(&mut self.free);
        if self.worker.is_none() {
            self.free.clear();
        }
    }
}

/// The statements of `range` (and of their DO blocks) that have no tree yet, with their tokens.
fn batch(statements: &[Statement], range: Range<usize>, free: Vec<Box<ast::Statement>>) -> Batch {
    let text = statements[range.start].source.0.clone();
    let mut jobs = Vec::with_capacity(range.len());
    let mut tokens = Vec::new();
    for at in range {
        let statement = &statements[at];
        let units = std::iter::once((None, statement)).chain(
            statement
                .nested
                .iter()
                .enumerate()
                .map(|(i, s)| (Some(i), s)),
        );
        for (nested, unit) in units.filter(|(_, unit)| !unit.has_tree()) {
            let start = tokens.len();
            tokens.extend_from_slice(&unit.tokens);
            jobs.push(Job {
                unit: (at, nested),
                range: unit.range.clone(),
                tokens: start..tokens.len(),
                refused: refusal(unit),
            });
        }
    }
    Batch {
        text,
        jobs,
        tokens,
        free,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::parse_text;

    /// Every statement walked with a worker has the tree (or the error) it has when parsed where
    /// it is used, the DO blocks' statements included, whatever the walk parsed first itself.
    #[test]
    fn trees_built_ahead_are_those_built_in_place() {
        let mut sql = String::new();
        for i in 0..3 * MIN_STATEMENTS {
            match i % 4 {
                0 => sql.push_str(&format!("CREATE TABLE t{i} (id bigint);\n")),
                1 => sql.push_str("SELECT 1 +;\n"),
                2 => sql.push_str(&format!(
                    "DO $$ BEGIN ALTER TABLE t{} ADD COLUMN c int; END $$;\n",
                    i - 2
                )),
                _ => sql.push_str("\\set x 1\n;\n"),
            }
        }
        let expected = parse_text(&sql);
        let mut walked = parse_text(&sql);
        let shown = |s: &Statement| match (s.ast(), s.parse_error()) {
            (Some(ast), _) => format!("{ast:?}"),
            (None, error) => format!("{error:?}"),
        };
        let count = walked.statements.len();
        let mut ahead = Ahead::new(count);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(ahead.worker.is_some(), cores >= 2);
        for index in 0..count {
            ahead.reach(&walked.statements, index);
            // A look ahead of the walk, parsed here before the worker's tree arrives.
            if let Some(later) = walked.statements.get(index + 700) {
                later.ast();
            }
            let statement = &walked.statements[index];
            let original = &expected.statements[index];
            assert_eq!(shown(statement), shown(original), "statement {index}");
            assert_eq!(statement.is_parsed(), original.is_parsed());
            for (nested, original) in statement.nested.iter().zip(&original.nested) {
                assert_eq!(shown(nested), shown(original), "statement {index}");
            }
            ahead.release(&mut walked.statements[index]);
        }
        assert_eq!(ahead.worker.is_some(), cores >= 2, "the worker was lost");
        assert_eq!(ahead.installed, count);
    }
}
