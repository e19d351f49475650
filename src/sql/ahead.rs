//! Syntax trees parsed ahead on other threads while one thread goes through a long file's
//! statements in order: sqlparser's work is a large part of reviewing or replaying a statement,
//! and within one file it would otherwise all fall to the thread that must take them in order.
//!
//! The statements themselves stay on the consuming thread (their trees are parsed on demand and
//! released there); the parsing threads get only what parsing needs ([`ParseInput`]) and send the
//! trees back in order, a bounded number ahead.

use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;

use super::{nesting, ParseInput, Statement, Tree};

/// How many statements each parsing thread may have parsed and not yet handed over: enough to ride
/// out a slow statement on either side, few enough that memory stays bounded (a tree takes
/// 10–20 KB).
const READY_PER_THREAD: usize = 256;

/// What to parse of one top-level statement.
struct Job {
    /// `None` when the statement already holds its tree.
    statement: Option<ParseInput>,
    /// The statements of its DO block that hold no tree yet, by their position in the block.
    nested: Vec<(usize, ParseInput)>,
}

/// The trees of one top-level statement, as parsed ahead.
struct Trees {
    statement: Option<Tree>,
    nested: Vec<(usize, Tree)>,
}

/// The trees parsed ahead, handed to each statement as the consumer reaches it. Dropping it stops
/// the parsing threads.
pub struct Ahead {
    receivers: Vec<Receiver<Trees>>,
    threads: Vec<JoinHandle<()>>,
    /// The index of the next statement to receive trees for.
    next: usize,
    /// Where the jobs start and end (statement indexes).
    from: usize,
    end: usize,
}

impl Ahead {
    /// Starts parsing `statements[from..]` (those without a tree) on other threads: one per core but
    /// the consumer's, at least one. When every one of them holds its tree, nothing starts.
    pub fn start(statements: &[Statement], from: usize) -> Ahead {
        let rest = statements.get(from..).unwrap_or_default();
        let mut ahead = Ahead::idle(from);
        let Some(text) = rest.first().map(|s| s.source.0.clone()) else {
            return ahead;
        };
        let unparsed = |s: &Statement| (!s.has_tree()).then(|| ParseInput::of(&text, s));
        let jobs: Vec<Job> = rest
            .iter()
            .map(|statement| Job {
                statement: unparsed(statement),
                nested: statement
                    .nested
                    .iter()
                    .enumerate()
                    .filter_map(|(i, nested)| Some((i, unparsed(nested)?)))
                    .collect(),
            })
            .collect();
        if jobs
            .iter()
            .all(|job| job.statement.is_none() && job.nested.is_empty())
        {
            return ahead;
        }
        ahead.end = from + jobs.len();
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .saturating_sub(1)
            .clamp(1, jobs.len());
        // Thread k parses jobs k, k + threads, …: the consumer reads their channels in turn.
        let mut shares: Vec<Vec<Job>> = (0..threads).map(|_| Vec::new()).collect();
        for (i, job) in jobs.into_iter().enumerate() {
            shares[i % threads].push(job);
        }
        for share in shares {
            let (sender, receiver) = mpsc::sync_channel(READY_PER_THREAD);
            let text = text.clone();
            let thread = std::thread::Builder::new()
                .name("parse-ahead".into())
                .stack_size(nesting::THREAD_STACK_BYTES)
                .spawn(move || parse_share(&text, share, sender));
            match thread {
                Ok(thread) => {
                    ahead.receivers.push(receiver);
                    ahead.threads.push(thread);
                }
                // Without the thread, statements parse on demand as they would anyway.
                Err(_) => {
                    drop(ahead);
                    return Ahead::idle(from);
                }
            }
        }
        ahead
    }

    /// Parses nothing: every statement parses on demand.
    fn idle(from: usize) -> Ahead {
        Ahead {
            receivers: Vec::new(),
            threads: Vec::new(),
            next: from,
            from,
            end: from,
        }
    }

    /// Gives `statement` (the one at `index`; called for each index in order) the trees parsed for
    /// it and its DO block. A statement that already holds its tree (a rule looked ahead) keeps it.
    pub fn install(&mut self, index: usize, statement: &Statement) {
        if index < self.from || index >= self.end {
            return;
        }
        while self.next <= index {
            let receiver = &self.receivers[(self.next - self.from) % self.receivers.len()];
            let trees = receiver.recv().ok();
            if self.next == index {
                if let Some(trees) = trees {
                    if let Some(tree) = trees.statement {
                        statement.set_tree(tree);
                    }
                    for (i, tree) in trees.nested {
                        if let Some(nested) = statement.nested.get(i) {
                            nested.set_tree(tree);
                        }
                    }
                }
            }
            self.next += 1;
        }
    }
}

impl Drop for Ahead {
    fn drop(&mut self) {
        // The parsing threads stop at their next send, then are joined.
        self.receivers.clear();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

fn parse_share(text: &str, share: Vec<Job>, sender: SyncSender<Trees>) {
    for job in share {
        let trees = Trees {
            statement: job.statement.map(|input| input.parse(text)),
            nested: job
                .nested
                .into_iter()
                .map(|(i, input)| (i, input.parse(text)))
                .collect(),
        };
        if sender.send(trees).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::parse_text;

    #[test]
    fn trees_parsed_ahead_are_those_parsed_on_demand() {
        let sql = "CREATE TABLE a (x int); SELECT FROM WHERE; DO $$ BEGIN CREATE INDEX i ON a (x); END $$; \
                   SELECT 1 /* open";
        let on_demand = parse_text(sql);
        let parsed = parse_text(sql);
        parsed.statements[0].parse_ahead();
        let mut ahead = Ahead::start(&parsed.statements, 1);
        assert_eq!(ahead.end, parsed.statements.len());
        for (index, statement) in parsed.statements.iter().enumerate() {
            ahead.install(index, statement);
            assert!(statement.has_tree(), "statement {index}");
            let expected = &on_demand.statements[index];
            assert_eq!(
                format!("{:?}", statement.ast()),
                format!("{:?}", expected.ast())
            );
            assert_eq!(statement.parse_error(), expected.parse_error());
            assert_eq!(statement.nested.len(), expected.nested.len());
            for (nested, expected) in statement.nested.iter().zip(&expected.nested) {
                assert!(nested.has_tree());
                assert_eq!(
                    format!("{:?}", nested.ast()),
                    format!("{:?}", expected.ast())
                );
            }
        }
        assert!(parsed.statements[1].parse_error().is_some());
        assert_eq!(parsed.statements[2].nested.len(), 1);
        assert!(parsed.statements[3].parse_error().is_some());
    }

    #[test]
    fn nothing_runs_ahead_when_every_statement_holds_its_tree() {
        let parsed = parse_text("SELECT 1; SELECT 2");
        for statement in &parsed.statements {
            statement.parse_ahead();
        }
        let ahead = Ahead::start(&parsed.statements, 0);
        assert!(ahead.threads.is_empty());
        assert!(Ahead::start(&parsed.statements, 5).threads.is_empty());
    }

    #[test]
    fn stopping_early_stops_the_parsing_threads() {
        let sql = "SELECT 1;\n".repeat(5 * READY_PER_THREAD);
        let parsed = parse_text(&sql);
        let mut ahead = Ahead::start(&parsed.statements, 0);
        ahead.install(0, &parsed.statements[0]);
        assert!(parsed.statements[0].has_tree());
        drop(ahead);
        assert!(!parsed.statements[1].has_tree());
    }
}
