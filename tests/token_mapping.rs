//! sqlparser is fed the tokens migagent's lexer already made (`sql::tokens`): checked here against
//! sqlparser's own tokenizer, token by token with their spans, and by parsing both, on every
//! statement of every rule document, a hostile sample and, when present, the whole corpus.
//!
//! The only difference allowed is the one `sql::tokens` documents: a run of spaces, tabs and line
//! breaks is one whitespace token (sqlparser's first of the run), which the parser cannot tell apart.

use migagent::sql::{self, tokens, Statement};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer, Whitespace};

mod common;

/// Statements whose every token must map.
const MAPPED: &[&str] = &[
    "SELECT 1, 1.5, .5, 5., 1e5, 1.5E-3, 1_000, 0, 007 FROM t WHERE a <> b AND c != d OR e <= f",
    "SELECT a >= b, a < b, a > b, a = b, a || 'x', -1, +2, 3 * 4 / 5 % 6, 2 ^ 3, a::int, $1, $12",
    "SELECT 'it''s', '', '''', $$a$b$$, $$$x$$, $tag$ body $$ $other$ $tag$, $$$$, \"Quoted\"\"Id\"",
    "CREATE TABLE \"Users\" (id bigint PRIMARY KEY, \"Name\" text NOT NULL DEFAULT 'x', arr int[])",
    "SELECT /* a /* nested */ comment */ 1 -- line comment\n, 2 /*+ hint */",
    "SELECT 1\r\n-- CRLF comment\r\n  , 2\r\n\t\t,3",
    "SELECT 'é', \"ünïcödé\", naïve, 日本語 FROM «t» WHERE x = 'ça'",
    "SELECT\x0b1\x0c, 2",
    "SELECT f(a => 1, b := 2), a[1:2], x.y.z, t.*, count(*)",
    "COMMENT ON COLUMN t.c IS 'a\\b'",
    "SELECT :name, @ x, a->>'k', a ->> 'k', x._y, \"X\"._y, x . _y",
    "SELECT a @> b, a <@ b, a ? b, a ?& b, a ?| b, a ~ b, a ~* b, a !~ b, a && b, a & b, a -> 'k'",
    "SELECT a ~~ b, a@@b, a @? b, a<@b, '{}'::jsonb?'k', a&&b",
    "DO $body$ BEGIN PERFORM 1; END $body$",
    "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT 2; END",
];

/// Statements with a token left to sqlparser's own tokenizer.
const LEFT_TO_SQLPARSER: &[&str] = &[
    "SELECT E'a\\'b'",
    "SELECT N'national'",
    "SELECT B'1010', X'1F'",
    "SELECT U&'d\\0061t', U&\"d\\0061t\"",
    "SELECT 1e+",
    "SELECT 0x1F, 0o17, 0b101",
    "SELECT 1L",
    "SELECT 1..2",
    "SELECT a #> b",
    "SELECT a ->>> b",
    "SELECT 1 ._a",
    "SELECT a ?| b, a ?|| b",
    "SELECT a !~* b",
    "SELECT a ~~* b",
    "SELECT a @- b",
    "SELECT a +- b, a <=> b, a !=- 1, a ||/ b",
    "SELECT $1abc",
    "SELECT $é$ x $é$",
    "COPY t FROM STDIN; 1\t2",
];

/// sqlparser's own tokens for `sql`, with each run of spaces, tabs and line breaks cut to its first
/// token: what `sql::tokens` promises.
fn reference_tokens(sql: &str) -> Result<Vec<TokenWithSpan>, String> {
    let tokens = Tokenizer::new(&PostgreSqlDialect {}, sql)
        .tokenize_with_location()
        .map_err(|e| e.to_string())?;
    let blank = |t: &TokenWithSpan| {
        matches!(
            t.token,
            Token::Whitespace(Whitespace::Space | Whitespace::Tab | Whitespace::Newline)
        )
    };
    let mut out: Vec<TokenWithSpan> = Vec::with_capacity(tokens.len());
    for token in tokens {
        if !(blank(&token) && out.last().is_some_and(blank)) {
            out.push(token);
        }
    }
    Ok(out)
}

fn parse_debug(parser: Result<Parser<'static>, String>) -> String {
    match parser.and_then(|mut p| p.parse_statements().map_err(|e| e.to_string())) {
        Ok(statements) => format!("{statements:?}"),
        Err(error) => format!("error: {error}"),
    }
}

#[derive(Default)]
struct Tally {
    mapped: usize,
    left: usize,
    /// Why the first statements left to sqlparser were.
    reasons: Vec<String>,
    failures: Vec<String>,
}

impl Tally {
    /// Compares one statement's mapped tokens, and the parse of them, with sqlparser's.
    fn check(&mut self, origin: &str, text: &str, statement: &Statement) {
        for nested in &statement.nested {
            self.check(origin, text, nested);
        }
        if statement.unterminated.is_some() || statement.class.kind == sql::Kind::PsqlMeta {
            return;
        }
        let sql = statement.sql(text);
        let mapped = tokens::sqlparser_tokens(text, statement.range.clone(), &statement.tokens);
        let mapped = match mapped {
            Ok(mapped) => mapped,
            Err(unmapped) => {
                self.left += 1;
                if self.reasons.len() < 20 {
                    let at = unmapped.offset;
                    let near: String = text[at..].chars().take(12).collect();
                    self.reasons
                        .push(format!("{origin}: {} at {near:?}", unmapped.what));
                }
                return;
            }
        };
        self.mapped += 1;
        match reference_tokens(sql) {
            Ok(reference) if reference == mapped => {}
            Ok(reference) => {
                let at = reference
                    .iter()
                    .zip(&mapped)
                    .position(|(a, b)| a != b)
                    .unwrap_or(reference.len().min(mapped.len()));
                self.failures.push(format!(
                    "{origin}: {sql:?}\n  sqlparser: {:?}\n  mapped:    {:?}",
                    reference.get(at),
                    mapped.get(at)
                ));
                return;
            }
            Err(error) => {
                self.failures.push(format!(
                    "{origin}: {sql:?}: mapped, but sqlparser's tokenizer fails: {error}"
                ));
                return;
            }
        }
        let ours = parse_debug(Ok(
            Parser::new(&PostgreSqlDialect {}).with_tokens_with_locations(mapped)
        ));
        let theirs = parse_debug(
            Parser::new(&PostgreSqlDialect {})
                .try_with_sql(sql)
                .map_err(|e| e.to_string()),
        );
        if ours != theirs {
            self.failures.push(format!(
                "{origin}: {sql:?}: parsed differently\n  sqlparser: {theirs}\n  mapped:    {ours}"
            ));
        }
    }

    fn check_text(&mut self, origin: &str, text: &str) {
        for statement in &sql::parse_text(text).statements {
            self.check(origin, text, statement);
        }
    }

    fn assert_clean(&self) {
        assert!(
            self.failures.is_empty(),
            "{} of {} mapped statements differ:\n{}",
            self.failures.len(),
            self.mapped,
            self.failures.join("\n")
        );
    }
}

#[test]
fn rule_documents_map_exactly() {
    let mut tally = Tally::default();
    for (origin, sql) in common::docs::all_sql_blocks() {
        tally.check_text(&origin, &sql);
    }
    tally.assert_clean();
    assert!(
        tally.mapped > 200,
        "only {} statements mapped",
        tally.mapped
    );
    // The documents are ordinary DDL: each token of theirs has a mapping.
    assert_eq!(tally.left, 0, "left to sqlparser: {:#?}", tally.reasons);
}

#[test]
fn hostile_statements_map_exactly_or_are_left_to_sqlparser() {
    for sql in MAPPED {
        let mut tally = Tally::default();
        tally.check_text("sample", sql);
        tally.assert_clean();
        assert_eq!(
            tally.mapped, 1,
            "{sql:?} was not mapped: {:?}",
            tally.reasons
        );
    }
    for sql in LEFT_TO_SQLPARSER {
        // The whole text, as `sql::parser` maps it: a COPY's data follows its semicolon.
        let significant: Vec<_> = sql::lex::tokenize(sql, 0..sql.len())
            .into_iter()
            .filter(|t| !t.kind.is_trivia())
            .collect();
        let mapped = tokens::sqlparser_tokens(sql, 0..sql.len(), &significant);
        assert!(mapped.is_err(), "{sql:?} was mapped: {mapped:?}");
    }
}

#[test]
fn expressions_parse_from_mapped_tokens() {
    for text in [
        "a IS NOT NULL AND b > 0",
        "  lower(\"Email\")  ",
        "x -- c\n",
        "1 /* c */ + 2",
    ] {
        let mapped = sql::parser(text).unwrap().parse_expr().unwrap();
        let theirs = Parser::new(&PostgreSqlDialect {})
            .try_with_sql(text)
            .unwrap()
            .parse_expr()
            .unwrap();
        assert_eq!(format!("{mapped:?}"), format!("{theirs:?}"), "{text}");
    }
}

#[test]
fn corpus_maps_exactly() {
    let Some(corpus) = common::corpus_or_skip("corpus_maps_exactly") else {
        return;
    };
    let mut files = Vec::new();
    common::sql_files(&corpus, &mut files);
    let mut tally = Tally::default();
    for path in &files {
        let Ok(text) = std::fs::read_to_string(path) else {
            continue;
        };
        tally.check_text(&path.display().to_string(), &text);
    }
    eprintln!(
        "corpus: {} files, {} statements mapped, {} left to sqlparser's tokenizer",
        files.len(),
        tally.mapped,
        tally.left
    );
    eprintln!("{:#?}", tally.reasons);
    tally.assert_clean();
    // Most statements of real migrations map; those that do not are counted, not failed.
    assert!(
        tally.left * 20 < tally.mapped,
        "{} left, {} mapped",
        tally.left,
        tally.mapped
    );
}
