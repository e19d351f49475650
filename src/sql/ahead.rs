//! Syntax trees built on a second core ahead of the thread that reviews a long file's statements
//! in order. The review thread hands out copies of the next statements' tokens in batches of
//! hundreds, a worker parses them and hands the trees back, and the trees the review is done with
//! go back to that worker to be freed: each message carries hundreds of statements, and a tree is
//! mostly freed on the thread that built it.

// Trees move between the threads in the boxes their statements held, never copied.
#![allow(clippy::vec_box)]

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::mpsc;
use std::sync::Arc;

use sqlparser::ast;

use super::nesting::THREAD_STACK_BYTES;
use super::{parse_tokens, refusal, Statement, Token, Tree};

/// Statements per batch.
const BATCH: usize = 512;

/// Batches handed out ahead of the review: bounds the trees held ahead (10–20 KB each).
const BATCHES_AHEAD: usize = 4;

/// A file needs at least this many statements worth a hand-off ([`worth_handing_out`]) for a
/// worker: a thread and its messages cost more than they save on fewer.
const MIN_STATEMENTS: usize = 4 * BATCH;

/// Statements with fewer significant tokens are parsed where they are used: their parse costs
/// about what copying them out, the messages and installing the tree cost (100,000 × `SELECT 1;`
/// took 45–100 % more CPU with every statement handed out).
const MIN_TOKENS: usize = 4;

/// Whether a statement (or a statement of its DO block) is parsed on the worker.
fn worth_handing_out(statement: &Statement) -> bool {
    statement.tokens.len() >= MIN_TOKENS
}

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
                let tree = parse_tokens(&self.text, job.range, tokens, job.refused);
                (job.unit, tree)
            })
            .collect()
    }
}

/// The review thread's end of the worker.
struct Worker {
    batches: mpsc::Sender<Batch>,
    trees: mpsc::Receiver<Vec<(Unit, Tree)>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Worker {
    /// `None` when no thread can be started: the review then parses as it goes.
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
    /// `None` on one core, for a file with few statements worth handing out, or once the worker is
    /// gone: statements are then parsed where they are first used, as without this.
    worker: Option<Worker>,
    /// Statements before this index were handed out to the worker.
    handed_out: usize,
    /// Statements before this index have the trees the worker built for them.
    installed: usize,
    /// The end of each batch handed out and not yet back, in order.
    pending: VecDeque<usize>,
    /// Released trees not yet sent back to the worker.
    free: Vec<Box<ast::Statement>>,
}

impl Ahead {
    /// For a walk over `statements`: with a worker on a thread of its own when there is more than
    /// one core and enough statements worth parsing there, else parsing nothing ahead.
    pub fn new(statements: &[Statement]) -> Ahead {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let worth = || {
            statements.len() >= MIN_STATEMENTS
                && statements
                    .iter()
                    .filter(|statement| worth_handing_out(statement))
                    .nth(MIN_STATEMENTS - 1)
                    .is_some()
        };
        let worker = (cores >= 2 && worth()).then(Worker::start).flatten();
        Ahead {
            worker,
            handed_out: 0,
            installed: 0,
            pending: VecDeque::new(),
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
            let free = std::mem::take(&mut self.free);
            let batch = batch(statements, self.handed_out..end, free);
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

    /// Frees the syntax trees of a statement the walk is done with: on the worker, which built
    /// most of them, when there is one.
    pub fn release(&mut self, statement: &mut Statement) {
        statement.release_tree(&mut self.free);
        if self.worker.is_none() {
            self.free.clear();
        }
    }
}

/// The statements of `range` (and of their DO blocks) worth handing out that have no tree yet,
/// with their tokens.
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
                .map(|(i, nested)| (Some(i), nested)),
        );
        for (nested, unit) in units {
            if unit.has_tree() || !worth_handing_out(unit) {
                continue;
            }
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

    /// What a statement's parse left: its tree, or why it has none.
    fn shown(statement: &Statement) -> String {
        match (statement.ast(), statement.parse_error()) {
            (Some(ast), _) => format!("{ast:?}"),
            (None, error) => format!("{error:?}"),
        }
    }

    /// Walks `sql`'s statements with [`Ahead`] as the review does, looking `look_ahead` statements
    /// ahead of the walk as a rule may; checks each statement's tree (or error) against the one
    /// built in place, the DO blocks' statements included. Returns how many had a tree installed
    /// from the worker.
    fn walk_and_compare(sql: &str, look_ahead: usize) -> usize {
        let expected = parse_text(sql);
        let mut walked = parse_text(sql);
        let count = walked.statements.len();
        let mut ahead = Ahead::new(&walked.statements);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(
            ahead.worker.is_some(),
            cores >= 2,
            "a worker on {cores} cores"
        );
        let mut from_worker = 0;
        for index in 0..count {
            ahead.reach(&walked.statements, index);
            if let Some(later) = walked.statements.get(index + look_ahead) {
                later.ast();
            }
            let statement = &walked.statements[index];
            from_worker += usize::from(statement.has_tree());
            let original = &expected.statements[index];
            assert_eq!(shown(statement), shown(original), "statement {index}");
            assert_eq!(
                statement.is_parsed(),
                original.is_parsed(),
                "statement {index}"
            );
            assert_eq!(statement.nested.len(), original.nested.len());
            for (nested, original) in statement.nested.iter().zip(&original.nested) {
                assert_eq!(shown(nested), shown(original), "statement {index}");
            }
            ahead.release(&mut walked.statements[index]);
        }
        assert_eq!(ahead.worker.is_some(), cores >= 2, "the worker was lost");
        if ahead.worker.is_some() {
            assert_eq!(ahead.installed, count);
        }
        from_worker
    }

    /// Statements that parse, that fail to parse (a syntax error, psql's backslash commands, an
    /// unterminated quote at the end), DO blocks of plain statements, and short statements left to
    /// the walk, mixed within every batch.
    #[test]
    fn trees_built_ahead_are_those_built_in_place() {
        let mut sql = String::new();
        for i in 0..3 * MIN_STATEMENTS {
            match i % 5 {
                0 => sql.push_str(&format!("CREATE TABLE t{i} (id bigint);\n")),
                1 => sql.push_str("SELECT 1 + FROM nowhere WHERE;\n"),
                2 => sql.push_str(&format!(
                    "DO $$ BEGIN ALTER TABLE t{} ADD COLUMN c int; END $$;\n",
                    i - 2
                )),
                3 => sql.push_str("SELECT 1;\n"),
                _ => sql.push_str("\\set x 1\n;\n"),
            }
        }
        sql.push_str("SELECT 'never closed FROM t;\n");
        let from_worker = walk_and_compare(&sql, 700);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(from_worker > 0, cores >= 2);
    }

    /// A batch whose statements all fail to parse, in the middle of statements that parse.
    #[test]
    fn a_batch_of_parse_errors_mid_file() {
        let mut sql = String::new();
        for i in 0..3 * MIN_STATEMENTS {
            if (BATCH + 100..2 * BATCH + 100).contains(&i) {
                sql.push_str(&format!("ALTER TABLE t{i} ADD COLUMN;\n"));
            } else {
                sql.push_str(&format!("CREATE INDEX i{i} ON t (c{i});\n"));
            }
        }
        walk_and_compare(&sql, 0);
    }

    /// A file of statements too short to hand out keeps the walk's own parsing, without a thread.
    #[test]
    fn short_statements_are_parsed_in_place() {
        let walked = parse_text(&"SELECT 1;\n".repeat(3 * MIN_STATEMENTS));
        assert!(Ahead::new(&walked.statements).worker.is_none());
    }
}
