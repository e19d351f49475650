//! PostgreSQL-aware splitting, parsing with sqlparser, and classification of every statement.

pub mod ahead;
pub mod classify;
pub mod lex;
pub mod name;
pub mod nesting;
pub mod position;
pub mod split;
pub mod tokens;

use std::cell::{Cell, OnceCell};
use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};

use sqlparser::ast;
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::keywords::Keyword;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::Token as SqlToken;

pub use classify::{Classification, Kind};
pub use lex::{Token, TokenKind};
pub use name::ObjectName;
pub use position::{LineIndex, Position};
pub use split::Unterminated;

/// Statements longer than this are classified from their tokens only: sqlparser's cost grows with
/// them and such statements are data loads, not DDL worth a syntax tree.
const MAX_PARSED_STATEMENT_BYTES: usize = 1 << 20;

/// One statement of a migration.
#[derive(Debug, Clone)]
pub struct Statement {
    /// Byte range in the file, from its first to its last significant token (no trailing `;`).
    pub range: Range<usize>,
    /// The migration section it belongs to.
    pub section: usize,
    /// Its significant tokens (no whitespace or comments).
    pub tokens: Vec<Token>,
    /// Its kind and target from the leading keywords; always present.
    pub class: Classification,
    /// The syntax tree, or why sqlparser could not build one: parsed on first use (see
    /// [`Statement::ast`]) and released once the review is past the statement, so a long file never
    /// holds every tree at once (a tree takes 10–20 KB; the file's text, a few dozen bytes).
    tree: OnceCell<Tree>,
    /// Whether sqlparser parsed it, once known: kept when the tree is released.
    parsed: Cell<Option<bool>>,
    /// The whole file, for parsing on demand.
    source: Source,
    /// A quote or comment that never closes inside this statement.
    pub unterminated: Option<Unterminated>,
    /// For a `DO` block whose body is plain SQL statements (as Drizzle writes idempotent DDL:
    /// `DO $$ BEGIN ALTER TABLE …; EXCEPTION WHEN duplicate_object THEN null; END $$`), those
    /// statements, with their offsets in the file. Empty for every other statement.
    pub nested: Vec<Statement>,
}

/// The text of the file a statement belongs to, shared by its statements.
#[derive(Clone)]
struct Source(Arc<str>);

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Source({} bytes)", self.0.len())
    }
}

/// A migration's statements and comments.
#[derive(Debug, Clone, Default)]
pub struct ParsedFile {
    pub statements: Vec<Statement>,
    /// Byte ranges of every comment, for suppression directives.
    pub comments: Vec<Range<usize>>,
    /// Every quote or comment that never closes: what follows it was swallowed, and PostgreSQL
    /// rejects the text.
    pub unterminated: Vec<Unterminated>,
}

/// Splits the whole of `text` into statements and parses each one.
pub fn parse_text(text: &str) -> ParsedFile {
    parse(text, std::slice::from_ref(&(0..text.len())))
}

/// Splits the given sections of `text` into statements and classifies each one; each is parsed on
/// first use of its syntax tree.
pub fn parse(text: &str, sections: &[Range<usize>]) -> ParsedFile {
    parse_each(text, sections, |_, _| {})
}

/// A text at least this long ([`is_long`]) is split on a second thread while the calling thread
/// classifies its statements: the two halves of the work then overlap.
const LONG_TEXT_BYTES: usize = 4 << 20;

/// Statements sent from the splitting thread at once, and batches it may read ahead.
const SPLIT_BATCH: usize = 1024;
const SPLIT_BATCHES_AHEAD: usize = 16;

/// Whether [`parse_each`] splits `text` on a second thread (with a second core to run it).
pub fn is_long(text: &str) -> bool {
    text.len() >= LONG_TEXT_BYTES
        && std::thread::available_parallelism().is_ok_and(|cores| cores.get() > 1)
}

/// Parses as [`parse`] does, and hands each statement to `each` with its index as soon as it is
/// classified, in order: work on a long text's statements overlaps its split.
pub fn parse_each(
    text: &str,
    sections: &[Range<usize>],
    mut each: impl FnMut(usize, &Statement),
) -> ParsedFile {
    let source = Source(Arc::from(text));
    // About one statement per `;`, so that a long file's list is not copied to twice its size
    // again and again as it grows; at most one per 32 bytes, so that a text of semicolons (no
    // statement at all) reserves no more than its size allows.
    let semicolons = memchr::memchr_iter(b';', text.as_bytes()).count();
    let expected = semicolons.min(text.len() / 32) + sections.len();
    let mut statements = Vec::with_capacity(expected);
    let mut add = |raw| {
        let statement = statement(text, &source, raw, true);
        each(statements.len(), &statement);
        statements.push(statement);
    };
    let marks = if is_long(text) {
        split_on_a_worker(text, sections, &mut add)
    } else {
        split::split_each(text, sections, &mut add)
    };
    ParsedFile {
        statements,
        comments: marks.comments,
        unterminated: marks.unterminated,
    }
}

/// Splits `text` on a second thread, handing its statements to `add` on this one in batches; in
/// one pass here when no thread can be started.
fn split_on_a_worker(
    text: &str,
    sections: &[Range<usize>],
    add: &mut impl FnMut(split::RawStatement),
) -> split::Marks {
    let (sender, receiver) = mpsc::sync_channel::<Vec<split::RawStatement>>(SPLIT_BATCHES_AHEAD);
    std::thread::scope(|scope| {
        let splitting = std::thread::Builder::new().spawn_scoped(scope, move || {
            let mut batch = Vec::with_capacity(SPLIT_BATCH);
            let marks = split::split_each(text, sections, |raw| {
                batch.push(raw);
                if batch.len() == SPLIT_BATCH {
                    let full = std::mem::replace(&mut batch, Vec::with_capacity(SPLIT_BATCH));
                    let _ = sender.send(full);
                }
            });
            let _ = sender.send(batch);
            marks
        });
        let Ok(splitting) = splitting else {
            return split::split_each(text, sections, add);
        };
        for raw in receiver.into_iter().flatten() {
            add(raw);
        }
        splitting
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

/// Classifies one statement; with `read_do_block`, also the statements of a `DO` block's
/// body (never those of a block inside that body, which makes the body not plain SQL anyway: reading
/// blocks nested in blocks would recurse as deep as they nest).
fn statement(
    text: &str,
    source: &Source,
    raw: split::RawStatement,
    read_do_block: bool,
) -> Statement {
    let class = classify::classify(text, &raw.tokens);
    let nested = if read_do_block && class.kind == Kind::Do {
        do_block_statements(text, source, &raw)
    } else {
        Vec::new()
    };
    Statement {
        range: raw.range,
        section: raw.section,
        tokens: raw.tokens,
        class,
        tree: OnceCell::new(),
        parsed: Cell::new(None),
        source: source.clone(),
        unterminated: raw.unterminated,
        nested,
    }
}

/// The statements of a `DO $tag$ BEGIN … [EXCEPTION …] END $tag$` block when every one of them is a
/// plain SQL statement; empty when the body has declarations, control flow or anything else PL/pgSQL.
fn do_block_statements(text: &str, source: &Source, raw: &split::RawStatement) -> Vec<Statement> {
    let Some(body) = raw
        .tokens
        .iter()
        .find(|t| t.kind == TokenKind::DollarString && !t.unterminated)
    else {
        return Vec::new();
    };
    let quoted = &text[body.range()];
    let tag_len = quoted[1..].find('$').map_or(0, |end| end + 2);
    let inner = body.range().start + tag_len..body.range().end - tag_len;
    let tokens: Vec<Token> = lex::tokenize(text, inner.clone())
        .into_iter()
        .filter(|t| !t.kind.is_trivia())
        .collect();
    let word = |t: &Token, keyword: &str| {
        t.kind == TokenKind::Word && text[t.range()].eq_ignore_ascii_case(keyword)
    };
    let (Some(first), Some(end)) = (tokens.first(), tokens.iter().rposition(|t| word(t, "end")))
    else {
        return Vec::new();
    };
    if !word(first, "begin")
        || tokens[end + 1..]
            .iter()
            .any(|t| t.kind != TokenKind::Semicolon)
    {
        return Vec::new();
    }
    // The statements run from after BEGIN to the exception handler, or to the final END.
    let stop = tokens[..end]
        .iter()
        .position(|t| word(t, "exception"))
        .unwrap_or(end);
    let region = first.range().end..tokens[stop].range().start;
    let statements: Vec<Statement> = split::split(text, std::slice::from_ref(&region))
        .statements
        .into_iter()
        .map(|mut nested| {
            nested.section = raw.section;
            statement(text, source, nested, false)
        })
        .collect();
    let plain_sql = |s: &Statement| {
        !matches!(
            s.class.kind,
            Kind::Other | Kind::Do | Kind::PsqlMeta | Kind::Begin | Kind::Commit | Kind::Rollback
        ) && s.unterminated.is_none()
    };
    if statements.iter().all(plain_sql) {
        statements
    } else {
        Vec::new()
    }
}

/// A statement's syntax tree, or why sqlparser could not build one.
type Tree = Result<Box<ast::Statement>, String>;

/// Parses one statement of `text` with sqlparser.
fn parse_one(text: &str, statement: &Statement) -> Tree {
    let refused = refusal(statement);
    parse_tokens(text, statement.range.clone(), &statement.tokens, refused)
}

/// Why a statement is not given to sqlparser at all, whatever its length and nesting.
fn refusal(statement: &Statement) -> Option<&'static str> {
    if statement.unterminated.is_some() {
        Some("the statement contains an unterminated quote or comment")
    } else if statement.class.kind == Kind::PsqlMeta {
        Some("psql backslash commands are not SQL")
    } else {
        None
    }
}

/// Parses the statement `text[range]`, whose significant tokens are `tokens`, unless `refused`:
/// what a statement's parse reads of it, so that another thread can parse a copy.
fn parse_tokens(
    text: &str,
    range: Range<usize>,
    tokens: &[Token],
    refused: Option<&'static str>,
) -> Tree {
    if let Some(refused) = refused {
        return Err(refused.into());
    }
    let sql = &text[range.clone()];
    if sql.len() > MAX_PARSED_STATEMENT_BYTES {
        return Err(format!(
            "the statement is {} bytes long; statements over {} bytes are classified without parsing",
            sql.len(),
            MAX_PARSED_STATEMENT_BYTES
        ));
    }
    check_nesting(text, tokens)?;
    let mut parser = parser_over_tokens(text, range, tokens)?;
    only_statement(&mut parser)
}

/// The one statement `parser` reads, boxed as it is parsed; an error when it reads none or several.
/// The same reading, and the same errors, as sqlparser's `parse_statements` followed by a count,
/// without collecting the statements into a vector and moving the first one out of it.
fn only_statement(parser: &mut Parser) -> Result<Box<ast::Statement>, String> {
    let mut first = None;
    let mut read = 0usize;
    let mut expecting_delimiter = false;
    loop {
        while parser.consume_token(&SqlToken::SemiColon) {
            expecting_delimiter = false;
        }
        let next = parser.peek_token_ref();
        match &next.token {
            SqlToken::EOF => break,
            SqlToken::Word(word) if expecting_delimiter && word.keyword == Keyword::END => break,
            _ if expecting_delimiter => {
                return parser
                    .expected_ref("end of statement", next)
                    .map_err(|error| error.to_string())
            }
            _ => {}
        }
        match first {
            None => first = Some(parse_boxed(parser)?),
            // A second statement is only counted, or its error reported, as sqlparser would.
            Some(_) => drop(
                parser
                    .parse_statement()
                    .map_err(|error| error.to_string())?,
            ),
        }
        read += 1;
        expecting_delimiter = true;
    }
    match (first, read) {
        (Some(statement), 1) => Ok(statement),
        (_, n) => Err(format!("sqlparser read {n} statements where psql sees one")),
    }
}

/// The next statement `parser` reads, written into its box from where sqlparser returned it: a
/// syntax tree is 3.4 KB, and each move of it on the way (through `map_err`, `?` and `Box::new`) was
/// a copy of all of it.
fn parse_boxed(parser: &mut Parser) -> Result<Box<ast::Statement>, String> {
    let slot = Box::new_uninit();
    match parser.parse_statement() {
        Ok(statement) => Ok(Box::write(slot, statement)),
        Err(error) => Err(error.to_string()),
    }
}

/// sqlparser's PostgreSQL parser over `text`. Every parse of SQL text goes through here (or through
/// [`parse`]): text whose expressions nest deeper than [`nesting::MAX_NESTING`] is refused before
/// sqlparser builds a syntax tree that no thread's stack could walk.
pub fn parser(text: &str) -> Result<Parser<'static>, String> {
    let tokens: Vec<Token> = lex::tokenize(text, 0..text.len())
        .into_iter()
        .filter(|token| !token.kind.is_trivia())
        .collect();
    check_nesting(text, &tokens)?;
    parser_over_tokens(text, 0..text.len(), &tokens)
}

/// How many texts sqlparser had to tokenize itself because [`tokens::sqlparser_tokens`] could not
/// map one of their tokens exactly, since the process started.
static TOKENIZED_BY_SQLPARSER: AtomicUsize = AtomicUsize::new(0);

/// The number of statements and expressions sqlparser tokenized itself (see
/// [`tokens::sqlparser_tokens`]); all others were parsed from the tokens [`lex`] made.
pub fn tokenized_by_sqlparser() -> usize {
    TOKENIZED_BY_SQLPARSER.load(Ordering::Relaxed)
}

/// sqlparser's parser over `text[range]`, whose significant tokens are `tokens`: fed those tokens
/// when they map exactly, else tokenizing the text itself.
fn parser_over_tokens(
    text: &str,
    range: Range<usize>,
    tokens: &[Token],
) -> Result<Parser<'static>, String> {
    match tokens::sqlparser_tokens(text, range.clone(), tokens) {
        Ok(mapped) => Ok(Parser::new(&PostgreSqlDialect {}).with_tokens_with_locations(mapped)),
        Err(_) => {
            TOKENIZED_BY_SQLPARSER.fetch_add(1, Ordering::Relaxed);
            sqlparser_over(&text[range])
        }
    }
}

/// Refuses tokens (ranges into `text`) that nest deeper than [`nesting::MAX_NESTING`].
fn check_nesting(text: &str, tokens: &[Token]) -> Result<(), String> {
    // The bound never exceeds the statement's number of tokens (see `nesting`'s tests): nearly every
    // statement is too short to need the scan.
    if tokens.len() <= nesting::MAX_NESTING {
        return Ok(());
    }
    let depth = nesting::depth_bound(text, tokens);
    if depth > nesting::MAX_NESTING {
        return Err(format!(
            "its expressions nest up to {depth} levels deep (a chain of operators counts one level per \
             operator); statements nesting over {} levels are classified without parsing",
            nesting::MAX_NESTING
        ));
    }
    Ok(())
}

/// sqlparser's parser, for text whose nesting was checked.
fn sqlparser_over(text: &str) -> Result<Parser<'static>, String> {
    Parser::new(&PostgreSqlDialect {})
        .try_with_sql(text)
        .map_err(|error| error.to_string())
}

impl Statement {
    /// The syntax tree, when sqlparser can parse the statement; parsed on first use and kept until
    /// [released](Statement::release_tree).
    pub fn ast(&self) -> Option<&ast::Statement> {
        self.tree.get_or_init(|| self.parse_now()).as_deref().ok()
    }

    /// Why sqlparser could not parse the statement.
    pub fn parse_error(&self) -> Option<&str> {
        self.tree
            .get_or_init(|| self.parse_now())
            .as_ref()
            .err()
            .map(String::as_str)
    }

    /// Whether sqlparser can parse the statement.
    pub fn is_parsed(&self) -> bool {
        match self.parsed.get() {
            Some(parsed) => parsed,
            None => self.with_ast(|ast| ast.is_some()),
        }
    }

    /// Calls `f` with the syntax tree, parsing it for this call only when it is not kept: for passes
    /// over many statements (replaying a whole file) that must not keep every tree.
    pub fn with_ast<R>(&self, f: impl FnOnce(Option<&ast::Statement>) -> R) -> R {
        match self.tree.get() {
            Some(tree) => f(tree.as_deref().ok()),
            None => f(self.parse_now().as_deref().ok()),
        }
    }

    /// Parses the statement (and those of its DO block) now, on this thread, and keeps the trees.
    pub fn parse_ahead(&self) {
        self.ast();
        for nested in &self.nested {
            nested.ast();
        }
    }

    /// Takes the syntax trees of the statement and its DO block out into `freed`, for the caller to
    /// free where it chooses (a later use parses again); why a statement could not be parsed is kept.
    pub fn release_tree(&mut self, freed: &mut Vec<Box<ast::Statement>>) {
        if matches!(self.tree.get(), Some(Ok(_))) {
            freed.extend(self.tree.take().and_then(Result::ok));
        }
        for nested in &mut self.nested {
            nested.release_tree(freed);
        }
    }

    /// Keeps `tree`, built elsewhere from this statement's tokens, as its syntax tree; hands it back
    /// when the statement already has one.
    fn install(&self, tree: Tree) -> Result<(), Tree> {
        let parsed = tree.is_ok();
        self.tree.set(tree)?;
        self.parsed.set(Some(parsed));
        Ok(())
    }

    /// Whether the statement's tree (or why it has none) is known, without parsing it.
    fn has_tree(&self) -> bool {
        self.tree.get().is_some()
    }

    fn parse_now(&self) -> Tree {
        let tree = parse_one(&self.source.0, self);
        self.parsed.set(Some(tree.is_ok()));
        tree
    }

    /// The statement's text.
    pub fn sql<'a>(&self, text: &'a str) -> &'a str {
        &text[self.range.clone()]
    }

    /// The statement's leading keywords for messages (`ALTER TABLE`), or `fallback` when it does
    /// not start with a keyword.
    pub fn label_or<'a>(&'a self, fallback: &'a str) -> &'a str {
        match self.class.label.as_str() {
            "" => fallback,
            label => label,
        }
    }

    /// Byte offset of the first occurrence of the keyword sequence `keywords` (case-insensitive,
    /// skipping comments), to point a finding at the exact clause.
    pub fn find_keywords(&self, text: &str, keywords: &[&str]) -> Option<usize> {
        if keywords.is_empty() {
            return None;
        }
        self.tokens
            .windows(keywords.len())
            .find(|window| {
                window.iter().zip(keywords).all(|(token, keyword)| {
                    token.kind == TokenKind::Word
                        && text[token.range()].eq_ignore_ascii_case(keyword)
                })
            })
            .map(|window| window[0].range().start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statements(sql: &str) -> Vec<String> {
        parse_text(sql)
            .statements
            .iter()
            .map(|s| s.sql(sql).to_owned())
            .collect()
    }

    #[test]
    fn one_statement_is_read_as_sqlparser_reads_a_list() {
        let listed = |sql: &str| {
            let mut statements = parser(sql)?
                .parse_statements()
                .map_err(|error| error.to_string())?;
            match statements.len() {
                1 => Ok(format!("{:?}", statements.remove(0))),
                n => Err(format!("sqlparser read {n} statements where psql sees one")),
            }
        };
        let only = |sql: &str| only_statement(&mut parser(sql)?).map(|tree| format!("{tree:?}"));
        for sql in [
            "SELECT 1",
            "SELECT 1;",
            ";; SELECT 1 ;;",
            "",
            ";",
            "SELECT 1; SELECT 2",
            "SELECT 1; SELECT 2; SELECT 3;",
            "SELECT 1 SELECT 2",
            "SELECT 1; SELEC",
            "SELEC 1; SELECT 2",
            "SELECT 1 END",
            "SELECT 1; END",
            "BEGIN; SELECT 1; END",
            "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END",
        ] {
            assert_eq!(only(sql), listed(sql), "{sql:?}");
        }
    }

    #[test]
    fn splits_like_psql() {
        let sql = "CREATE TABLE a (x int); -- c;\n/* ; */ INSERT INTO a VALUES (';');\n\
                   CREATE FUNCTION f() RETURNS void AS $f$ BEGIN; END $f$ LANGUAGE plpgsql;";
        assert_eq!(
            statements(sql),
            [
                "CREATE TABLE a (x int)",
                "INSERT INTO a VALUES (';')",
                "CREATE FUNCTION f() RETURNS void AS $f$ BEGIN; END $f$ LANGUAGE plpgsql",
            ]
        );
    }

    #[test]
    fn begin_atomic_bodies_keep_their_semicolons() {
        let sql = "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT CASE WHEN true THEN 1 END; END; SELECT 2";
        assert_eq!(
            statements(sql),
            [
                "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT CASE WHEN true THEN 1 END; END",
                "SELECT 2"
            ]
        );
        assert_eq!(
            statements("BEGIN; SELECT 1; END;"),
            ["BEGIN", "SELECT 1", "END"]
        );
    }

    #[test]
    fn semicolons_inside_parentheses_do_not_split() {
        assert_eq!(
            statements("SELECT (1;2); SELECT 3"),
            ["SELECT (1;2)", "SELECT 3"]
        );
    }

    #[test]
    fn sections_keep_file_offsets() {
        let sql = "-- migrate:up\nCREATE TABLE a (x int);\n-- migrate:down\nDROP TABLE a;\n";
        let up = 14..38;
        let parsed = parse(sql, &[up]);
        assert_eq!(parsed.statements.len(), 1);
        assert_eq!(parsed.statements[0].range, 14..36);
        assert!(parsed.statements[0].ast().is_some());
    }

    #[test]
    fn a_split_on_a_worker_finds_what_one_pass_finds() {
        // Over three batches of statements, with comments, a psql command, a routine body, a DO
        // block, two sections and an unterminated quote at the end of the second.
        let mut sql =
            String::from("-- head\n\\set x 1\nCREATE FUNCTION f() BEGIN ATOMIC SELECT 1; END;\n");
        for i in 0..2 * SPLIT_BATCH + 7 {
            sql.push_str(&format!(
                "SELECT {i}; /* c{i} */ DO $$ BEGIN DROP TABLE t{i}; END $$;\n"
            ));
        }
        let first = 0..sql.len();
        sql.push_str("SELECT 'never closed;\n");
        let sections = [first, 8..sql.len()];
        let one_pass = split::split(&sql, &sections);
        let mut statements = Vec::new();
        let marks = split_on_a_worker(&sql, &sections, &mut |raw| statements.push(raw));
        assert_eq!(statements, one_pass.statements);
        assert_eq!(marks.comments, one_pass.marks.comments);
        assert_eq!(marks.unterminated, one_pass.marks.unterminated);
        assert!(statements.len() > 4 * SPLIT_BATCH);
    }

    #[test]
    fn unparsable_statements_are_classified() {
        let sql = "DROP INDEX CONCURRENTLY IF EXISTS idx";
        let parsed = parse_text(sql);
        let statement = &parsed.statements[0];
        assert_eq!(statement.class.kind, Kind::DropIndex);
        assert!(statement.class.concurrently);
        assert_eq!(statement.find_keywords(sql, &["concurrently"]), Some(11));
    }

    #[test]
    fn do_blocks_of_plain_statements_are_read() {
        let sql = "DO $$ BEGIN\n ALTER TABLE \"a\" ADD CONSTRAINT \"f\" FOREIGN KEY (\"b\") REFERENCES \"c\"(\"id\");\n\
                   EXCEPTION\n WHEN duplicate_object THEN null;\nEND $$;";
        let parsed = parse_text(sql);
        let nested = &parsed.statements[0].nested;
        assert_eq!(nested.len(), 1);
        assert!(nested[0].ast().is_some());
        assert_eq!(nested[0].class.kind, Kind::AlterTable);
        assert!(nested[0].sql(sql).starts_with("ALTER TABLE \"a\""));
        assert!(nested[0].sql(sql).ends_with("(\"id\")"));
    }

    #[test]
    fn do_blocks_with_control_flow_are_not_read() {
        for sql in [
            "DO $$ DECLARE n int; BEGIN SELECT 1 INTO n; END $$",
            "DO $$ BEGIN IF NOT EXISTS (SELECT 1) THEN CREATE TYPE t AS ENUM ('a'); END IF; END $$",
            "DO $$ BEGIN PERFORM f(); END $$",
        ] {
            assert!(parse_text(sql).statements[0].nested.is_empty(), "{sql}");
        }
    }

    #[test]
    fn text_nested_too_deep_is_refused_before_sqlparser_reads_it() {
        let deep = format!("SELECT {}", vec!["1"; 150_000].join("+"));
        let parsed = parse_text(&format!("{deep}; SELECT 1 + 1"));
        assert!(parsed.statements[0].ast().is_none());
        let error = parsed.statements[0].parse_error().unwrap();
        assert!(
            error.starts_with("its expressions nest up to 300000 levels deep"),
            "{error}"
        );
        assert!(parsed.statements[1].ast().is_some());
        assert!(parser(&deep).is_err());
        assert!(parser("a IS NOT NULL AND b > 0")
            .and_then(|mut p| p.parse_expr().map_err(|e| e.to_string()))
            .is_ok());
    }

    #[test]
    fn do_blocks_inside_do_blocks_are_not_read() {
        let sql = "DO $a$ BEGIN DO $b$ BEGIN CREATE TABLE t (id int); END $b$; END $a$";
        assert!(parse_text(sql).statements[0].nested.is_empty());
    }

    #[test]
    fn an_unterminated_block_comment_is_reported_wherever_it_opens() {
        // Between statements it belongs to none, and what follows it is no statement either.
        let sql = "SELECT 1;\n/* nested /* closed */ but not the outer one\nDROP TABLE users;";
        let parsed = parse_text(sql);
        assert_eq!(parsed.statements.len(), 1);
        assert_eq!(
            parsed.unterminated,
            [Unterminated {
                offset: 10,
                what: "block comment"
            }]
        );
        let inside = parse_text("SELECT 1 /* open");
        assert_eq!(inside.unterminated.len(), 1);
        assert!(inside.statements[0].unterminated.is_some());
        assert!(parse_text("SELECT 1; /* a /* b */ c */")
            .unterminated
            .is_empty());
    }

    #[test]
    fn unterminated_dollar_quote_is_reported() {
        let sql = "SELECT 1;\nCREATE FUNCTION f() AS $$ BEGIN";
        let parsed = parse_text(sql);
        assert_eq!(parsed.statements.len(), 2);
        let unterminated = parsed.statements[1].unterminated.unwrap();
        assert_eq!(unterminated.offset, 33);
        assert_eq!(unterminated.what, "dollar-quoted string");
        assert!(parsed.statements[1].ast().is_none());
    }
}
