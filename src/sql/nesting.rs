//! How deep a statement's syntax tree can nest, read from its tokens before anything parses it.
//!
//! sqlparser limits its own recursion (nested parentheses, subqueries, `CASE`, arrays), but it reads a
//! chain of binary operators — `1 + 1 + …`, `a AND b AND …`, `x::int::text…`, `a[1][2]…` — in a loop,
//! building a tree as deep as the chain is long. Dropping, cloning, printing or walking that tree then
//! recurses once per level: 150,000 terms overflow any thread's stack and abort the process. The bound
//! computed here lets such statements be refused before they are parsed.

use super::lex::{Token, TokenKind};

/// The deepest a statement may nest to be parsed. Every walk over a syntax tree (sqlparser's `Drop`,
/// `Clone`, `Display` and visitors, and migagent's own) stays far within a thread's stack at this depth,
/// while real migrations stay far below it: across 30,000 statements of public projects' migration
/// histories the deepest bound is 266.
pub const MAX_NESTING: usize = 1_000;

/// The stack of every thread that parses statements or walks their syntax trees. At [`MAX_NESTING`] the
/// largest walk takes about 1.5 MB in a debug build (cloning a deep `Expr`), a few hundred kB in a
/// release build; sizing it here keeps that independent of `ulimit -s` and `RUST_MIN_STACK`, and
/// leaves a wide margin. Only the pages used are ever committed.
pub const THREAD_STACK_BYTES: usize = 64 << 20;

/// Runs `work` on a thread with a [`THREAD_STACK_BYTES`] stack and returns its result; a panic in
/// `work` resumes on the calling thread.
pub fn on_tree_stack<T: Send>(work: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| {
        let thread = std::thread::Builder::new()
            .stack_size(THREAD_STACK_BYTES)
            .spawn_scoped(scope, work)
            .unwrap_or_else(|err| panic!("cannot start a thread: {err}"));
        thread
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// One open bracket (or the statement itself) while scanning.
#[derive(Default)]
struct Frame {
    /// `CASE … END`, where `WHEN`, `THEN` and `ELSE` separate expressions.
    case: bool,
    /// Tokens of the current item (between separators) at this level; a closed bracket counts as one.
    len: usize,
    /// The deepest bracket closed in the current item.
    deepest_inside: usize,
    /// The deepest item finished at this level.
    deepest: usize,
}

impl Frame {
    fn end_item(&mut self) {
        self.deepest = self.deepest.max(self.len + self.deepest_inside);
        self.len = 0;
        self.deepest_inside = 0;
    }

    fn close(mut self) -> usize {
        self.end_item();
        self.deepest
    }
}

/// An upper bound on the nesting depth of the syntax tree of the statement made of `tokens` (its
/// significant tokens, ranges into `text`).
///
/// Every level of a tree is an operator, operand or keyword of one item — the text between two
/// separators (`,` `;`, and `WHEN` `THEN` `ELSE` in a `CASE`) at one bracket level — or a bracket
/// (`(` `[` `{`, `CASE`) nested in one. So an item nests at most as deep as it has tokens, plus the
/// deepest bracket inside it; the bound is the deepest item.
pub fn depth_bound(text: &str, tokens: &[Token]) -> usize {
    let mut stack = vec![Frame::default()];
    for token in tokens {
        let raw = &text[token.range()];
        let word =
            |keyword: &str| token.kind == TokenKind::Word && raw.eq_ignore_ascii_case(keyword);
        let in_case = stack.last().is_some_and(|frame| frame.case);
        let opens = matches!(token.kind, TokenKind::LParen)
            || (token.kind == TokenKind::Punct && matches!(raw, "[" | "{"))
            || word("case");
        let closes = matches!(token.kind, TokenKind::RParen)
            || (token.kind == TokenKind::Punct && matches!(raw, "]" | "}"))
            || (in_case && word("end"));
        let separates = matches!(token.kind, TokenKind::Semicolon)
            || (token.kind == TokenKind::Punct && raw == ",")
            || (in_case && (word("when") || word("then") || word("else")));
        if opens {
            stack.push(Frame {
                case: word("case"),
                ..Frame::default()
            });
        } else if closes && stack.len() > 1 {
            close_innermost(&mut stack);
        } else if let Some(top) = stack.last_mut() {
            if separates {
                top.end_item();
            } else {
                top.len += 1;
            }
        }
    }
    while stack.len() > 1 {
        close_innermost(&mut stack);
    }
    stack.pop().map_or(0, Frame::close)
}

/// Closes the innermost bracket: it is one token of the enclosing item, and as deep as its deepest item.
fn close_innermost(stack: &mut Vec<Frame>) {
    let inner = stack.pop().map_or(0, Frame::close);
    if let Some(outer) = stack.last_mut() {
        outer.len += 1;
        outer.deepest_inside = outer.deepest_inside.max(inner);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::lex::tokenize;

    fn significant_tokens(sql: &str) -> Vec<Token> {
        tokenize(sql, 0..sql.len())
            .into_iter()
            .filter(|t| !t.kind.is_trivia())
            .collect()
    }

    fn bound(sql: &str) -> usize {
        depth_bound(sql, &significant_tokens(sql))
    }

    /// What lets a statement of at most [`MAX_NESTING`] tokens skip the scan: an item counts each of
    /// its tokens once and a closed bracket as one token plus its inside, never its own two brackets.
    #[test]
    fn the_bound_never_exceeds_the_number_of_tokens() {
        let chain = vec!["1 + ARRAY[0, 0][1]"; 50].join(" + ");
        for sql in [
            "SELECT 1",
            "SELECT (1 + 1) + 1",
            "SELECT ((1",
            "SELECT 1))",
            "SELECT (((((1)))))",
            "SELECT CASE WHEN a THEN (b + c) ELSE CASE d WHEN 1 THEN 2 END END",
            "SELECT {a[1][2]}",
            &format!("SELECT {chain}"),
            &format!("SELECT {}1", "(".repeat(200)),
            &format!("SELECT 1{}", ")".repeat(200)),
        ] {
            let tokens = significant_tokens(sql).len();
            assert!(
                bound(sql) <= tokens,
                "{sql}: bound {} over {tokens} tokens",
                bound(sql)
            );
        }
    }

    #[test]
    fn chains_count_every_token_of_their_item() {
        assert_eq!(bound("SELECT 1"), 2);
        assert_eq!(bound("SELECT 1 + 1 + 1"), 6);
        assert_eq!(bound("SELECT a, b + c"), 3);
        assert!(bound(&format!("SELECT {}", vec!["1"; 1000].join(" + "))) > 1999);
        assert!(bound(&format!("SELECT {}", vec!["a = 1"; 500].join(" AND "))) > 1999);
        assert!(bound(&format!("SELECT x{}", "::int".repeat(700))) > 1999);
        assert!(bound(&format!("SELECT a{}", "[1]".repeat(700))) > 700);
    }

    #[test]
    fn lists_are_flat() {
        let values = vec!["(1, 'a', now())"; 5000].join(", ");
        assert!(bound(&format!("INSERT INTO t VALUES {values}")) < 10);
        let labels = vec!["'x'"; 5000].join(", ");
        assert!(bound(&format!("CREATE TYPE t AS ENUM ({labels})")) < 10);
        let whens = vec!["WHEN a = 1 THEN 'x'"; 5000].join(" ");
        assert!(bound(&format!("UPDATE t SET b = CASE {whens} ELSE 'y' END")) < 20);
    }

    #[test]
    fn brackets_add_their_depth_to_the_item_around_them() {
        assert_eq!(bound("SELECT (1 + 1) + 1"), 7);
        let nested = format!("SELECT {}1{}", "(".repeat(100_000), ")".repeat(100_000));
        assert!(bound(&nested) > 100_000);
        // A separator inside a bracket does not hide the chain around it.
        let chain = vec!["1 + ARRAY[0, 0][1]"; 500].join(" + ");
        assert!(bound(&format!("SELECT {chain}")) > 1000);
        // Unbalanced brackets still give a bound.
        assert_eq!(bound("SELECT ((1"), 4);
        assert_eq!(bound("SELECT 1))"), 4);
    }
}
