//! Which statements and routines can open a subtransaction and roll it back. PostgreSQL releases
//! the locks a rolled-back subtransaction took at once, while what it counted there stays counted
//! (the sequential scans of `pg_stat_get_xact_numscans`): after such a statement, a table the
//! transaction no longer holds can have a count it did not have before.

use crate::sql::lex::{tokenize, TokenKind};
use crate::sql::{Kind, Statement, Token};

/// Languages whose routines open no subtransaction: SQL functions cannot hold savepoints, and the
/// built-in ones (`internal`, `c`) that ship with the server and its extensions do not roll back
/// what they read.
pub const LANGUAGES_WITHOUT_SUBTRANSACTIONS: [&str; 3] = ["sql", "internal", "c"];

/// Whether a routine in `language` with source `body` (`pg_proc.prosrc`) can open a subtransaction
/// and roll it back: a PL/pgSQL block with an EXCEPTION clause opens one each time it runs, and every
/// other procedural language can (PL/Python and PL/Perl run their database calls in one).
pub fn routine_can_roll_back(language: &str, body: &str) -> bool {
    let language = language.to_ascii_lowercase();
    if LANGUAGES_WITHOUT_SUBTRANSACTIONS.contains(&language.as_str()) {
        return false;
    }
    language != "plpgsql" || has_exception_clause(body)
}

/// Whether running `statement` (of `text`) can roll back a subtransaction by itself, whatever the
/// routines it calls do: a savepoint statement, a `DO` block that can (see
/// [`routine_can_roll_back`]), and an extension's script, which may run such blocks.
pub fn statement_can_roll_back(text: &str, statement: &Statement) -> bool {
    match statement.class.kind {
        Kind::Savepoint | Kind::CreateExtension => true,
        Kind::Do => do_block_can_roll_back(text, &statement.tokens),
        _ => statement.class.label == "ALTER EXTENSION",
    }
}

/// A `DO [LANGUAGE name] body [LANGUAGE name]` statement (its significant tokens) whose body can
/// roll back a subtransaction. A body in a dollar quote is read precisely; one in a plain string
/// (with its quotes doubled or escaped) counts when it mentions an exception at all.
fn do_block_can_roll_back(text: &str, tokens: &[Token]) -> bool {
    let word = |token: &Token, keyword: &str| {
        token.kind == TokenKind::Word && text[token.range()].eq_ignore_ascii_case(keyword)
    };
    let mut language = "plpgsql".to_owned();
    let mut body = None;
    let mut at = 1;
    while let Some(token) = tokens.get(at) {
        if word(token, "language") {
            if let Some(name) = tokens.get(at + 1) {
                language = text[name.range()].trim_matches(['\'', '"']).to_owned();
            }
            at += 2;
            continue;
        }
        if matches!(token.kind, TokenKind::DollarString | TokenKind::String) {
            body = Some(token);
        }
        at += 1;
    }
    let Some(body) = body else {
        // Not a block the server runs.
        return false;
    };
    let quoted = &text[body.range()];
    let plain = body.kind == TokenKind::String || body.unterminated;
    if plain && language.eq_ignore_ascii_case("plpgsql") {
        return quoted.to_ascii_lowercase().contains("exception");
    }
    let tag_len = quoted[1..].find('$').map_or(0, |end| end + 2);
    let inner = match plain {
        true => quoted,
        false => quoted
            .get(tag_len..quoted.len() - tag_len)
            .unwrap_or(quoted),
    };
    routine_can_roll_back(&language, inner)
}

/// Whether a PL/pgSQL body has a block with an EXCEPTION clause: the keyword followed by `WHEN`
/// (`RAISE EXCEPTION` never is), outside strings and comments. An unterminated quote or comment
/// counts: what follows it cannot be read.
fn has_exception_clause(body: &str) -> bool {
    let tokens: Vec<Token> = tokenize(body, 0..body.len())
        .into_iter()
        .filter(|token| !token.kind.is_trivia() || token.unterminated)
        .collect();
    let word = |token: &Token, keyword: &str| {
        token.kind == TokenKind::Word && body[token.range()].eq_ignore_ascii_case(keyword)
    };
    tokens.iter().any(|token| token.unterminated)
        || tokens
            .windows(2)
            .any(|pair| word(&pair[0], "exception") && word(&pair[1], "when"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statement_rolls_back(sql: &str) -> bool {
        let parsed = crate::sql::parse_text(sql);
        statement_can_roll_back(sql, &parsed.statements[0])
    }

    #[test]
    fn plpgsql_rolls_back_only_in_a_block_with_an_exception_clause() {
        let handler = "BEGIN PERFORM 1; EXCEPTION -- any\n /* error */ when others THEN NULL; END";
        assert!(routine_can_roll_back("plpgsql", handler));
        assert!(routine_can_roll_back("PLPGSQL", handler));
        let raising = "BEGIN IF x THEN RAISE EXCEPTION 'when it fails'; END IF; END";
        assert!(!routine_can_roll_back("plpgsql", raising));
        let quoted = "BEGIN RAISE NOTICE 'EXCEPTION WHEN'; -- exception when\nEND";
        assert!(!routine_can_roll_back("plpgsql", quoted));
        assert!(routine_can_roll_back("plpgsql", "BEGIN /* EXCEPTION WHEN"));
    }

    #[test]
    fn other_procedural_languages_roll_back_and_built_in_ones_do_not() {
        assert!(routine_can_roll_back(
            "plpython3u",
            "plpy.execute('SELECT 1')"
        ));
        assert!(routine_can_roll_back("plperl", ""));
        for language in ["sql", "internal", "c"] {
            assert!(!routine_can_roll_back(language, "EXCEPTION WHEN"));
        }
    }

    #[test]
    fn statements_that_roll_back_by_themselves() {
        for sql in [
            "SAVEPOINT a",
            "ROLLBACK TO SAVEPOINT a",
            "RELEASE SAVEPOINT a",
            "CREATE EXTENSION citext",
            "ALTER EXTENSION citext UPDATE",
            "DO $$ BEGIN ALTER TABLE t ADD c int; EXCEPTION WHEN duplicate_column THEN NULL; END $$",
            "DO LANGUAGE plpgsql $b$ BEGIN NULL; EXCEPTION WHEN others THEN NULL; END $b$",
            "DO $$ plpy.execute('SELECT 1') $$ LANGUAGE plpython3u",
            "DO 'BEGIN NULL; EXCEPTION WHEN others THEN NULL; END'",
        ] {
            assert!(statement_rolls_back(sql), "{sql}");
        }
        for sql in [
            "DO $$ BEGIN RAISE EXCEPTION 'no'; END $$",
            "DO LANGUAGE 'plpgsql' $$ BEGIN ALTER TABLE t ADD c int; END $$",
            "ALTER TABLE t ADD COLUMN c int",
            "SELECT f()",
            "BEGIN",
            "COMMIT",
        ] {
            assert!(!statement_rolls_back(sql), "{sql}");
        }
    }
}
