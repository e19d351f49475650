//! Statements that act beyond the database they run in: on what every database of the server shares
//! (roles, databases, tablespaces, settings, subscriptions), on the server itself (its files, its
//! programs, its other sessions, its WAL), or on other databases through connections of their own
//! (`dblink`, foreign data wrappers). Code whose effect is known only when it runs counts too: dynamic
//! SQL (`EXECUTE` in a DO block or function body) and bodies in languages other than SQL and PL/pgSQL.
//!
//! Statements are read from their significant tokens, so comments, line breaks and case never hide a
//! keyword (`CREATE /* x */ ROLE`, `ALTER -- c⏎ SYSTEM`), and keywords are recognised only where the
//! grammar puts them (a column named `role` is not a role). The bodies of DO blocks and functions are
//! unquoted and read the same way, statement by statement, nested bodies included.

use std::borrow::Cow;

use crate::sql::lex::{self, Token, TokenKind};
use crate::sql::Statement;

/// What a server-wide statement reaches, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    Roles,
    Databases,
    Tablespaces,
    Settings,
    Subscriptions,
    /// Checkpoints, WAL, replication slots, server statistics.
    Server,
    Files,
    Programs,
    Sessions,
    OtherDatabases,
    /// Dynamic SQL, or code migagent cannot read.
    Unknown,
    /// `standard_conforming_strings` turned off: backslashes in strings become escapes, and the
    /// server would read the statements after it differently from migagent.
    StringSyntax,
}

impl Reach {
    /// Why a statement with this reach must not run on a server that is not migagent's own.
    pub fn why(self) -> &'static str {
        match self {
            Reach::Roles => "roles and role memberships are shared by every database on the server",
            Reach::Databases => {
                "databases, their settings and their privileges belong to the server, not to the database a migration runs in"
            }
            Reach::Tablespaces => {
                "tablespaces are shared by every database and live in the server's file system"
            }
            Reach::Settings => "server settings apply to every database on the server",
            Reach::Subscriptions => {
                "a subscription connects to another database and copies its data in"
            }
            Reach::Server => {
                "it acts on the server itself (checkpoints, WAL, replication, statistics)"
            }
            Reach::Files => "it reads or writes files on the database server",
            Reach::Programs => "it runs programs on the database server",
            Reach::Sessions => "it signals other sessions on the server",
            Reach::OtherDatabases => "it opens connections to other databases",
            Reach::Unknown => {
                "what it runs is known only when it runs, so it cannot be checked beforehand"
            }
            Reach::StringSyntax => {
                "with standard_conforming_strings off the server reads backslashes in strings as escapes, so it would read the statements after it differently from migagent"
            }
        }
    }
}

/// A statement (or a statement in a body) that acts beyond its database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerWide {
    /// Byte offset in the file: the keyword or call found, or the start of the body it was found in
    /// when that body had to be unquoted.
    pub offset: usize,
    /// What was found, as written in upper case: `CREATE ROLE`, `GRANT … ON DATABASE`, `dblink_exec()`.
    pub what: String,
    pub reach: Reach,
}

/// Whether `statement` of the file `text` acts beyond its database, and the first thing that does.
pub fn find(text: &str, statement: &Statement) -> Option<ServerWide> {
    let code = Code {
        text: Cow::Borrowed(text),
        range: 0..text.len(),
        anchor: None,
    };
    // psql sends a statement as one query string and the server runs every statement in it: a
    // statement migagent's splitter kept whole (a routine whose `BEGIN` it took for a block) is
    // read as the server reads it.
    statement
        .tokens
        .split(|token| token.kind == TokenKind::Semicolon)
        .find_map(|piece| code.statement(piece, 0))
}

/// Bodies nested deeper than this (a DO block in a function in a DO block …) are not read.
const MAX_DEPTH: usize = 8;

/// Extensions whose functions reach outside the database.
const EXTENSIONS: &[(&str, Reach)] = &[
    ("dblink", Reach::OtherDatabases),
    ("postgres_fdw", Reach::OtherDatabases),
    ("file_fdw", Reach::Files),
    ("adminpack", Reach::Files),
    ("plperlu", Reach::Programs),
    ("plpythonu", Reach::Programs),
    ("plpython2u", Reach::Programs),
    ("plpython3u", Reach::Programs),
    ("pltclu", Reach::Programs),
];

/// Built-in and contrib functions that reach outside the database, by name or name prefix.
const FUNCTIONS: &[(&str, Reach)] = &[
    ("dblink", Reach::OtherDatabases),
    ("lo_import", Reach::Files),
    ("lo_export", Reach::Files),
    ("pg_read_file", Reach::Files),
    ("pg_read_binary_file", Reach::Files),
    ("pg_stat_file", Reach::Files),
    ("pg_ls_", Reach::Files),
    ("pg_logdir_ls", Reach::Files),
    ("pg_file_", Reach::Files),
    ("pg_terminate_backend", Reach::Sessions),
    ("pg_cancel_backend", Reach::Sessions),
    ("pg_log_backend_memory_contexts", Reach::Sessions),
    ("pg_reload_conf", Reach::Settings),
    ("pg_rotate_logfile", Reach::Server),
    ("pg_promote", Reach::Server),
    ("pg_switch_wal", Reach::Server),
    ("pg_create_restore_point", Reach::Server),
    ("pg_start_backup", Reach::Server),
    ("pg_stop_backup", Reach::Server),
    ("pg_backup_", Reach::Server),
    ("pg_wal_replay_", Reach::Server),
    ("pg_stat_reset_shared", Reach::Server),
    ("pg_stat_reset_slru", Reach::Server),
    ("pg_create_physical_replication_slot", Reach::Server),
    ("pg_create_logical_replication_slot", Reach::Server),
    ("pg_copy_physical_replication_slot", Reach::Server),
    ("pg_copy_logical_replication_slot", Reach::Server),
    ("pg_drop_replication_slot", Reach::Server),
    ("pg_replication_origin_", Reach::Server),
    // They run the query text they are given (tablefunc's crosstab and connectby too; tablefunc is a
    // trusted extension).
    ("query_to_xml", Reach::Unknown),
    ("ts_stat", Reach::Unknown),
    ("ts_rewrite", Reach::Unknown),
    ("crosstab", Reach::Unknown),
    ("connectby", Reach::Unknown),
];

/// Names of roles, databases, tablespaces and subscriptions as the grammar's object words.
fn shared_object(word: &str) -> Option<Reach> {
    match word {
        "role" | "user" | "group" => Some(Reach::Roles),
        "database" => Some(Reach::Databases),
        "tablespace" => Some(Reach::Tablespaces),
        "subscription" => Some(Reach::Subscriptions),
        _ => None,
    }
}

/// SQL being read: the file, or a body unquoted from one of its strings.
struct Code<'t> {
    text: Cow<'t, str>,
    /// The part of `text` to read.
    range: std::ops::Range<usize>,
    /// For an unquoted body: the file offset of its string, where everything found in it points.
    anchor: Option<usize>,
}

impl Code<'_> {
    fn offset(&self, token: &Token) -> usize {
        self.anchor.unwrap_or(token.range().start)
    }

    fn found(&self, token: &Token, what: impl Into<String>, reach: Reach) -> Option<ServerWide> {
        Some(ServerWide {
            offset: self.offset(token),
            what: what.into(),
            reach,
        })
    }

    /// The lower-cased keyword or unquoted identifier at `i`.
    fn word(&self, tokens: &[Token], i: usize) -> Option<String> {
        let token = tokens.get(i)?;
        (token.kind == TokenKind::Word).then(|| self.text[token.range()].to_ascii_lowercase())
    }

    fn is(&self, tokens: &[Token], i: usize, keyword: &str) -> bool {
        tokens.get(i).is_some_and(|token| {
            token.kind == TokenKind::Word && self.text[token.range()].eq_ignore_ascii_case(keyword)
        })
    }

    /// The name at `i` as PostgreSQL resolves it: an unquoted word folded to lower case, a quoted
    /// identifier as written (escapes decoded).
    fn name(&self, tokens: &[Token], i: usize) -> Option<String> {
        let token = tokens.get(i)?;
        let raw = &self.text[token.range()];
        match token.kind {
            TokenKind::Word => Some(raw.to_ascii_lowercase()),
            TokenKind::QuotedIdent => {
                let escape = self.uescape(tokens, i)?;
                unquote(raw, escape).map(Cow::into_owned)
            }
            _ => None,
        }
    }

    /// The escape character of a `U&"…"` or `U&'…'` token at `i`: `\` unless a `UESCAPE 'c'` follows.
    /// `None` when the clause cannot be read.
    fn uescape(&self, tokens: &[Token], i: usize) -> Option<char> {
        if !self.is(tokens, i + 1, "uescape") {
            return Some('\\');
        }
        let clause = tokens.get(i + 2)?;
        let quoted = &self.text[clause.range()];
        let mut chars = quoted.strip_prefix('\'')?.strip_suffix('\'')?.chars();
        let escape = chars.next()?;
        chars.next().is_none().then_some(escape)
    }

    /// A statement's tokens: its command, the functions it calls, and its body.
    fn statement(&self, tokens: &[Token], depth: usize) -> Option<ServerWide> {
        self.command(tokens)
            .or_else(|| self.calls(tokens))
            .or_else(|| self.string_syntax(tokens))
            .or_else(|| self.body(tokens, depth))
    }

    /// The command itself, from its leading keywords.
    fn command(&self, tokens: &[Token]) -> Option<ServerWide> {
        let first = tokens.first()?;
        let w = |i| self.word(tokens, i).unwrap_or_default();
        let label = |words: &[usize]| {
            words
                .iter()
                .map(|&i| w(i).to_ascii_uppercase())
                .collect::<Vec<_>>()
                .join(" ")
        };
        match w(0).as_str() {
            "create" => {
                let at = (1..tokens.len())
                    .find(|&i| {
                        !matches!(w(i).as_str(), "or" | "replace" | "trusted" | "procedural")
                    })
                    .unwrap_or(1);
                let object = w(at);
                if object == "extension" {
                    return self.extension(tokens, at + 1);
                }
                if object == "schema" {
                    return self.schema_elements(tokens);
                }
                let reach =
                    shared_object(&object).filter(|_| !self.is(tokens, at + 1, "mapping"))?;
                self.found(first, label(&[0, at]), reach)
            }
            "alter" | "drop" => {
                let object = w(1);
                let reach = match object.as_str() {
                    "system" if w(0) == "alter" => Reach::Settings,
                    "owned" if w(0) == "drop" => Reach::Roles,
                    _ => shared_object(&object).filter(|_| !self.is(tokens, 2, "mapping"))?,
                };
                self.found(first, label(&[0, 1]), reach)
            }
            "reassign" => self.found(first, "REASSIGN OWNED", Reach::Roles),
            "grant" | "revoke" => self.grant(tokens),
            "comment" if w(1) == "on" => {
                let reach = shared_object(&w(2))?;
                self.found(first, label(&[0, 1, 2]), reach)
            }
            "security" if w(1) == "label" => {
                let on = (2..tokens.len().min(6)).find(|&i| w(i) == "on")?;
                let reach = shared_object(&w(on + 1))?;
                self.found(
                    first,
                    format!("SECURITY LABEL ON {}", w(on + 1).to_ascii_uppercase()),
                    reach,
                )
            }
            "checkpoint" => self.found(first, "CHECKPOINT", Reach::Server),
            "copy" => self.copy(tokens),
            _ => None,
        }
    }

    /// `CREATE EXTENSION [IF NOT EXISTS] name` of an extension that reaches outside the database.
    fn extension(&self, tokens: &[Token], mut at: usize) -> Option<ServerWide> {
        while matches!(
            self.word(tokens, at).as_deref(),
            Some("if" | "not" | "exists")
        ) {
            at += 1;
        }
        let name = self.name(tokens, at)?;
        let (_, reach) = EXTENSIONS.iter().find(|(known, _)| *known == name)?;
        self.found(&tokens[0], format!("CREATE EXTENSION {name}"), *reach)
    }

    /// `CREATE SCHEMA … GRANT …`: the commands a schema definition may hold.
    fn schema_elements(&self, tokens: &[Token]) -> Option<ServerWide> {
        let starts: Vec<usize> = (2..tokens.len())
            .filter(|&i| self.is(tokens, i, "create") || self.is(tokens, i, "grant"))
            .collect();
        starts.iter().enumerate().find_map(|(n, &start)| {
            let end = starts.get(n + 1).copied().unwrap_or(tokens.len());
            self.command(&tokens[start..end])
        })
    }

    /// `GRANT`/`REVOKE`: role membership (no `ON`), or privileges on a database, tablespace or
    /// parameter.
    fn grant(&self, tokens: &[Token]) -> Option<ServerWide> {
        let verb = self.word(tokens, 0)?.to_ascii_uppercase();
        let mut depth = 0usize;
        for (i, token) in tokens.iter().enumerate().skip(1) {
            match token.kind {
                TokenKind::LParen => depth += 1,
                TokenKind::RParen => depth = depth.saturating_sub(1),
                TokenKind::Word if depth == 0 => match self.word(tokens, i).as_deref() {
                    Some("on") => {
                        let object = self.word(tokens, i + 1).unwrap_or_default();
                        let reach = match object.as_str() {
                            "database" => Reach::Databases,
                            "tablespace" => Reach::Tablespaces,
                            "parameter" => Reach::Settings,
                            _ => return None,
                        };
                        let what = format!("{verb} … ON {}", object.to_ascii_uppercase());
                        return self.found(&tokens[0], what, reach);
                    }
                    Some("to" | "from") => break,
                    _ => {}
                },
                _ => {}
            }
        }
        self.found(
            &tokens[0],
            format!("{verb} (role membership)"),
            Reach::Roles,
        )
    }

    /// `COPY … TO/FROM PROGRAM '…'` and `COPY … TO/FROM '/a/file'`.
    fn copy(&self, tokens: &[Token]) -> Option<ServerWide> {
        let mut depth = 0usize;
        for (i, token) in tokens.iter().enumerate() {
            match token.kind {
                TokenKind::LParen => depth += 1,
                TokenKind::RParen => depth = depth.saturating_sub(1),
                TokenKind::Word if depth == 0 => {
                    let direction = self.word(tokens, i).unwrap_or_default();
                    if direction != "to" && direction != "from" {
                        continue;
                    }
                    let direction = direction.to_ascii_uppercase();
                    if self.is(tokens, i + 1, "program") {
                        return self.found(
                            &tokens[0],
                            format!("COPY … {direction} PROGRAM"),
                            Reach::Programs,
                        );
                    }
                    if tokens
                        .get(i + 1)
                        .is_some_and(|t| t.kind == TokenKind::String)
                    {
                        return self.found(
                            &tokens[0],
                            format!("COPY … {direction} a server file"),
                            Reach::Files,
                        );
                    }
                }
                _ => {}
            }
        }
        None
    }

    /// Functions that reach outside the database, anywhere in the statement: called, or referenced
    /// by an operator, cast, aggregate or type that calls them (`FUNCTION = f`, `WITH FUNCTION f`).
    fn calls(&self, tokens: &[Token]) -> Option<ServerWide> {
        (0..tokens.len()).find_map(|i| {
            let name = self.name(tokens, i)?;
            let after = if self.is(tokens, i + 1, "uescape") {
                i + 3
            } else {
                i + 1
            };
            let called = tokens.get(after).map(|t| t.kind) == Some(TokenKind::LParen);
            if name == "set_config" {
                return called.then(|| self.set_config(tokens, after)).flatten();
            }
            let (_, reach) = FUNCTIONS
                .iter()
                .find(|(known, _)| name.starts_with(known))?;
            (called || self.references_function(tokens, i))
                .then(|| self.found(&tokens[i], format!("{name}()"), *reach))
                .flatten()
        })
    }

    /// Whether the (possibly schema-qualified) name ending at `i` follows `=`, `FUNCTION` or
    /// `PROCEDURE`: where a statement names a function without calling it.
    fn references_function(&self, tokens: &[Token], i: usize) -> bool {
        let mut start = i;
        while start >= 2 && &self.text[tokens[start - 1].range()] == "." {
            start -= 2;
        }
        let Some(before) = start.checked_sub(1) else {
            return false;
        };
        &self.text[tokens[before].range()] == "="
            || self.is(tokens, before, "function")
            || self.is(tokens, before, "procedure")
    }

    /// `standard_conforming_strings` set to anything but on, anywhere: `SET`, a routine's `SET`
    /// clause. (`ALTER ROLE`/`ALTER DATABASE … SET` are server-wide already.)
    fn string_syntax(&self, tokens: &[Token]) -> Option<ServerWide> {
        (0..tokens.len()).find_map(|i| {
            if self.name(tokens, i).as_deref() != Some("standard_conforming_strings") {
                return None;
            }
            let assigned = self.is(tokens, i + 1, "to")
                || tokens
                    .get(i + 1)
                    .is_some_and(|t| &self.text[t.range()] == "=");
            if !assigned {
                return None;
            }
            let value = tokens
                .get(i + 2)
                .map(|t| self.text[t.range()].trim_matches('\'').to_ascii_lowercase());
            if matches!(
                value.as_deref(),
                Some("on" | "true" | "yes" | "1" | "default")
            ) {
                return None;
            }
            self.found(
                &tokens[i],
                "standard_conforming_strings = off",
                Reach::StringSyntax,
            )
        })
    }

    /// `set_config(name, …)` of `standard_conforming_strings`, or of a name computed at run time.
    /// The opening parenthesis is at `open`.
    fn set_config(&self, tokens: &[Token], open: usize) -> Option<ServerWide> {
        let name = tokens.get(open + 1)?;
        // A plain string: an `E''` or `U&''` one could spell the name with escapes.
        let literal = self.text[name.range()].starts_with('\'')
            && tokens
                .get(open + 2)
                .is_some_and(|t| &self.text[t.range()] == ",");
        if !literal {
            return self.found(name, "set_config() of a computed setting", Reach::Unknown);
        }
        self.text[name.range()]
            .to_ascii_lowercase()
            .contains("standard_conforming_strings")
            .then(|| {
                self.found(
                    name,
                    "set_config('standard_conforming_strings')",
                    Reach::StringSyntax,
                )
            })
            .flatten()
    }

    /// The body of a DO block or of a function or procedure: read statement by statement when it is
    /// SQL or PL/pgSQL, otherwise (or nested too deep, or escaped past reading) server-wide as
    /// unknown.
    fn body(&self, tokens: &[Token], depth: usize) -> Option<ServerWide> {
        let (is_do, default_language) = match self.word(tokens, 0)?.as_str() {
            "do" => (true, "plpgsql"),
            "create" if self.defines_routine(tokens) => (false, "sql"),
            _ => return None,
        };
        let language = self
            .language(tokens)
            .unwrap_or_else(|| default_language.to_owned());
        let body = if is_do {
            (1..tokens.len())
                .find(|&i| is_string(tokens[i].kind) && !self.is(tokens, i - 1, "language"))
        } else {
            self.function_body(tokens)
        }?;
        let at = &tokens[body];
        if language != "sql" && language != "plpgsql" {
            return self.found(at, format!("code in LANGUAGE {language}"), Reach::Unknown);
        }
        if depth >= MAX_DEPTH {
            return self.found(at, "a body nested too deep to read", Reach::Unknown);
        }
        let escape = self.uescape(tokens, body);
        let Some(inner) = escape.and_then(|escape| self.body_text(at, escape)) else {
            return self.found(at, "a body written with escapes", Reach::Unknown);
        };
        let code = match inner {
            BodyText::Verbatim(range) => Code {
                text: Cow::Borrowed(&self.text),
                anchor: self.anchor,
                range,
            },
            BodyText::Unquoted(text) => Code {
                range: 0..text.len(),
                text: Cow::Owned(text),
                anchor: Some(self.offset(at)),
            },
        };
        code.body_statements(depth)
    }

    fn defines_routine(&self, tokens: &[Token]) -> bool {
        (1..tokens.len().min(4))
            .any(|i| self.is(tokens, i, "function") || self.is(tokens, i, "procedure"))
    }

    /// `LANGUAGE name` (or `LANGUAGE 'name'`), lower-cased; not a parameter named `language`.
    fn language(&self, tokens: &[Token]) -> Option<String> {
        let at = self.top_level(tokens, "language")? + 1;
        let token = tokens.get(at)?;
        match token.kind {
            TokenKind::String => Some(
                self.text[token.range()]
                    .trim_matches('\'')
                    .to_ascii_lowercase(),
            ),
            _ => self.name(tokens, at).map(|name| name.to_ascii_lowercase()),
        }
    }

    /// The string after `AS` at the top level of `CREATE FUNCTION … AS 'body'`.
    fn function_body(&self, tokens: &[Token]) -> Option<usize> {
        let body = self.top_level(tokens, "as")? + 1;
        tokens
            .get(body)
            .is_some_and(|t| is_string(t.kind))
            .then_some(body)
    }

    /// The index of the first `keyword` outside parentheses.
    fn top_level(&self, tokens: &[Token], keyword: &str) -> Option<usize> {
        let mut depth = 0usize;
        for (i, token) in tokens.iter().enumerate() {
            match token.kind {
                TokenKind::LParen => depth += 1,
                TokenKind::RParen => depth = depth.saturating_sub(1),
                _ if depth == 0 && self.is(tokens, i, keyword) => return Some(i),
                _ => {}
            }
        }
        None
    }

    /// The text inside a string token: a dollar quote's content as it stands in the file, a standard
    /// string with its doubled quotes undone, a Unicode-escaped one decoded; `None` for an `E''`
    /// string with backslash escapes, which migagent does not decode.
    fn body_text(&self, token: &Token, escape: char) -> Option<BodyText> {
        let raw = &self.text[token.range()];
        if token.kind == TokenKind::DollarString {
            let tag_len = raw[1..].find('$').map_or(raw.len(), |end| end + 2);
            let end = if token.unterminated {
                raw.len()
            } else {
                raw.len().saturating_sub(tag_len).max(tag_len)
            };
            let start = token.range().start;
            return Some(BodyText::Verbatim(start + tag_len.min(end)..start + end));
        }
        let (prefix, quoted) = match raw.find('\'') {
            Some(quote) => raw.split_at(quote),
            None => return None,
        };
        let inner = quoted.strip_prefix('\'')?;
        let inner = inner.strip_suffix('\'').unwrap_or(inner).replace("''", "'");
        match prefix.to_ascii_lowercase().as_str() {
            "" => Some(BodyText::Unquoted(inner)),
            "e" if !inner.contains('\\') => Some(BodyText::Unquoted(inner)),
            "u&" => decode_unicode(&inner, escape).map(BodyText::Unquoted),
            _ => None,
        }
    }

    /// The statements of a body, split where PL/pgSQL lets a statement start.
    fn body_statements(&self, depth: usize) -> Option<ServerWide> {
        let tokens: Vec<Token> = lex::tokenize(&self.text, self.range.clone())
            .into_iter()
            .filter(|t| !t.kind.is_trivia())
            .collect();
        if let Some(found) = self.dynamic_sql(&tokens) {
            return Some(found);
        }
        let mut start = 0;
        for (i, token) in tokens.iter().enumerate() {
            let ends_before_next = token.kind == TokenKind::Semicolon
                || matches!(
                    self.word(&tokens, i).as_deref(),
                    Some("begin" | "then" | "else" | "loop" | "atomic" | "declare")
                );
            if ends_before_next {
                let statement = &tokens[start..i + usize::from(token.kind != TokenKind::Semicolon)];
                if let Some(found) = self.statement(statement, depth + 1) {
                    return Some(found);
                }
                start = i + 1;
            }
        }
        self.statement(&tokens[start..], depth + 1)
    }

    /// `EXECUTE` in a body runs SQL built at run time. Not `GRANT EXECUTE` or `EXECUTE FUNCTION` (a
    /// trigger's function).
    fn dynamic_sql(&self, tokens: &[Token]) -> Option<ServerWide> {
        (0..tokens.len()).find_map(|i| {
            if !self.is(tokens, i, "execute") {
                return None;
            }
            let privilege = i > 0
                && (tokens[i - 1].kind == TokenKind::Punct
                    && &self.text[tokens[i - 1].range()] == ","
                    || self.is(tokens, i - 1, "grant")
                    || self.is(tokens, i - 1, "revoke"));
            let trigger = self.is(tokens, i + 1, "function") || self.is(tokens, i + 1, "procedure");
            if privilege || trigger {
                return None;
            }
            self.found(&tokens[i], "EXECUTE (dynamic SQL)", Reach::Unknown)
        })
    }
}

/// A body's text: where it stands in the file, or decoded from its quoting.
enum BodyText {
    Verbatim(std::ops::Range<usize>),
    Unquoted(String),
}

fn is_string(kind: TokenKind) -> bool {
    matches!(kind, TokenKind::String | TokenKind::DollarString)
}

/// A quoted identifier's name: `"a""b"` is `a"b`, `U&"d\0061t"` is `dat`. `None` when its escapes
/// cannot be decoded.
fn unquote(raw: &str, escape: char) -> Option<Cow<'_, str>> {
    let unicode = raw.len() > 2 && raw[..2].eq_ignore_ascii_case("u&");
    let quoted = if unicode { &raw[2..] } else { raw };
    let inner = quoted.strip_prefix('"')?;
    let inner = inner.strip_suffix('"').unwrap_or(inner);
    let inner = if inner.contains("\"\"") {
        Cow::Owned(inner.replace("\"\"", "\""))
    } else {
        Cow::Borrowed(inner)
    };
    if unicode {
        decode_unicode(&inner, escape).map(Cow::Owned)
    } else {
        Some(inner)
    }
}

/// Decodes the escapes of a `U&` string or identifier: `\XXXX`, `\+XXXXXX` and `\\` (with `\` standing
/// for the escape character).
fn decode_unicode(text: &str, escape: char) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != escape {
            out.push(c);
            continue;
        }
        let rest = chars.as_str();
        if rest.starts_with(escape) {
            chars.next();
            out.push(escape);
            continue;
        }
        let (digits, skip) = match rest.strip_prefix('+') {
            Some(long) => (long.get(..6)?, 7),
            None => (rest.get(..4)?, 4),
        };
        let code = u32::from_str_radix(digits, 16).ok()?;
        out.push(char::from_u32(code)?);
        for _ in 0..skip {
            chars.next();
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::parse_text;

    /// What the first statement of `sql` is found to be, as "WHAT" and its reach.
    fn found(sql: &str) -> Option<(String, Reach)> {
        let parsed = parse_text(sql);
        find(sql, &parsed.statements[0]).map(|f| (f.what, f.reach))
    }

    fn reach(sql: &str) -> Option<Reach> {
        found(sql).map(|(_, reach)| reach)
    }

    #[test]
    fn comments_line_breaks_and_case_never_hide_a_keyword() {
        for (sql, what, expected) in [
            (
                "CREATE /* x */ ROLE evil SUPERUSER",
                "CREATE ROLE",
                Reach::Roles,
            ),
            (
                "ALTER -- c\nSYSTEM SET work_mem = '1GB'",
                "ALTER SYSTEM",
                Reach::Settings,
            ),
            (
                "ALTER /* x */ DATABASE app CONNECTION LIMIT 0",
                "ALTER DATABASE",
                Reach::Databases,
            ),
            (
                "ALTER\x0bSYSTEM SET work_mem = '1GB'",
                "ALTER SYSTEM",
                Reach::Settings,
            ),
            (
                "alter\n\n\tuser app set search_path = evil",
                "ALTER USER",
                Reach::Roles,
            ),
            (
                "ALTER ROLE app SET statement_timeout = 0",
                "ALTER ROLE",
                Reach::Roles,
            ),
            (
                "CrEaTe /* a /* nested */ comment */ DaTaBaSe x",
                "CREATE DATABASE",
                Reach::Databases,
            ),
            (
                "DROP--\nTABLESPACE fast",
                "DROP TABLESPACE",
                Reach::Tablespaces,
            ),
            (
                "CREATE SUBSCRIPTION s CONNECTION 'x' PUBLICATION p",
                "CREATE SUBSCRIPTION",
                Reach::Subscriptions,
            ),
            (
                "GRANT /* x */ pg_execute_server_program TO app",
                "GRANT (role membership)",
                Reach::Roles,
            ),
            (
                "REVOKE ADMIN OPTION FOR admin FROM app",
                "REVOKE (role membership)",
                Reach::Roles,
            ),
            (
                "GRANT CONNECT ON /* x */ DATABASE app TO bob",
                "GRANT … ON DATABASE",
                Reach::Databases,
            ),
            (
                "REVOKE ALL ON TABLESPACE fast FROM bob",
                "REVOKE … ON TABLESPACE",
                Reach::Tablespaces,
            ),
            (
                "GRANT SET ON PARAMETER work_mem TO app",
                "GRANT … ON PARAMETER",
                Reach::Settings,
            ),
            (
                "REASSIGN OWNED BY old TO new",
                "REASSIGN OWNED",
                Reach::Roles,
            ),
            ("DROP OWNED BY old", "DROP OWNED", Reach::Roles),
            (
                "COMMENT ON DATABASE app IS 'x'",
                "COMMENT ON DATABASE",
                Reach::Databases,
            ),
            (
                "SECURITY LABEL FOR selinux ON ROLE app IS 'x'",
                "SECURITY LABEL ON ROLE",
                Reach::Roles,
            ),
            ("CHECKPOINT", "CHECKPOINT", Reach::Server),
            (
                "CREATE EXTENSION IF NOT EXISTS dblink",
                "CREATE EXTENSION dblink",
                Reach::OtherDatabases,
            ),
            (
                "create extension \"postgres_fdw\"",
                "CREATE EXTENSION postgres_fdw",
                Reach::OtherDatabases,
            ),
            (
                "CREATE SCHEMA s CREATE TABLE t (a int) GRANT CONNECT ON DATABASE app TO x",
                "GRANT … ON DATABASE",
                Reach::Databases,
            ),
        ] {
            assert_eq!(found(sql), Some((what.to_owned(), expected)), "{sql}");
        }
    }

    #[test]
    fn server_files_programs_sessions_and_other_databases() {
        for (sql, what, expected) in [
            (
                "COPY t TO PROGRAM 'psql -c \"DELETE FROM items\" app'",
                "COPY … TO PROGRAM",
                Reach::Programs,
            ),
            (
                "COPY (SELECT 1 FROM t) TO /* x */ PROGRAM 'id'",
                "COPY … TO PROGRAM",
                Reach::Programs,
            ),
            (
                "copy t from program 'env'",
                "COPY … FROM PROGRAM",
                Reach::Programs,
            ),
            (
                "COPY t TO '/tmp/out'",
                "COPY … TO a server file",
                Reach::Files,
            ),
            (
                "COPY t FROM E'/etc/passwd'",
                "COPY … FROM a server file",
                Reach::Files,
            ),
            (
                "SELECT dblink_exec('dbname=app', 'DELETE FROM items')",
                "dblink_exec()",
                Reach::OtherDatabases,
            ),
            (
                "SELECT public.\"dblink_exec\" /* x */ ('dbname=app', 'x')",
                "dblink_exec()",
                Reach::OtherDatabases,
            ),
            (
                "SELECT U&\"\\0064blink_exec\"('dbname=app', 'x')",
                "dblink_exec()",
                Reach::OtherDatabases,
            ),
            (
                "SELECT U&\"!0064blink\" UESCAPE '!' ('x')",
                "dblink()",
                Reach::OtherDatabases,
            ),
            (
                "SELECT * FROM DBLINK('dbname=app', 'SELECT 1') AS t(a int)",
                "dblink()",
                Reach::OtherDatabases,
            ),
            ("SELECT lo_export(1, '/tmp/x')", "lo_export()", Reach::Files),
            (
                "SELECT pg_read_file('/etc/passwd')",
                "pg_read_file()",
                Reach::Files,
            ),
            ("SELECT pg_ls_dir('.')", "pg_ls_dir()", Reach::Files),
            (
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity",
                "pg_terminate_backend()",
                Reach::Sessions,
            ),
            (
                "SELECT pg_reload_conf()",
                "pg_reload_conf()",
                Reach::Settings,
            ),
            (
                "SELECT pg_create_logical_replication_slot('s', 'pgoutput')",
                "pg_create_logical_replication_slot()",
                Reach::Server,
            ),
            (
                "CREATE OPERATOR !!! (FUNCTION = pg_catalog.pg_terminate_backend, RIGHTARG = int)",
                "pg_terminate_backend()",
                Reach::Sessions,
            ),
            (
                "CREATE CAST (int AS t) WITH FUNCTION pg_cancel_backend",
                "pg_cancel_backend()",
                Reach::Sessions,
            ),
            (
                "SELECT query_to_xml('select 1', true, true, '')",
                "query_to_xml()",
                Reach::Unknown,
            ),
            (
                "SELECT * FROM crosstab('SELECT pg_terminate_backend(1)') AS t(a bool)",
                "crosstab()",
                Reach::Unknown,
            ),
            (
                "INSERT INTO t SELECT * FROM ts_stat('SELECT v FROM d')",
                "ts_stat()",
                Reach::Unknown,
            ),
        ] {
            assert_eq!(found(sql), Some((what.to_owned(), expected)), "{sql}");
        }
    }

    #[test]
    fn bodies_are_read_statement_by_statement() {
        for (sql, what, expected) in [
            ("DO $$ BEGIN CREATE ROLE anon NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$", "CREATE ROLE", Reach::Roles),
            ("DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles) THEN CREATE /* x */ ROLE anon; END IF; END $$", "CREATE ROLE", Reach::Roles),
            ("DO $$ BEGIN EXECUTE 'DELETE FROM items'; END $$", "EXECUTE (dynamic SQL)", Reach::Unknown),
            ("DO $$ BEGIN EXECUTE format('%s', 'x'); END $$", "EXECUTE (dynamic SQL)", Reach::Unknown),
            ("DO $$ DECLARE r record; BEGIN FOR r IN EXECUTE 'SELECT 1' LOOP END LOOP; END $$", "EXECUTE (dynamic SQL)", Reach::Unknown),
            ("DO 'BEGIN PERFORM dblink_exec(''dbname=app'', ''DELETE FROM items''); END'", "dblink_exec()", Reach::OtherDatabases),
            ("DO $x$ BEGIN COPY t TO PROGRAM 'rm -rf /'; END $x$", "COPY … TO PROGRAM", Reach::Programs),
            ("DO $a$ BEGIN DO $b$ BEGIN ALTER SYSTEM SET x = 1; END $b$; END $a$", "ALTER SYSTEM", Reach::Settings),
            ("CREATE FUNCTION f() RETURNS void AS $$ BEGIN DROP DATABASE x; END $$ LANGUAGE plpgsql", "DROP DATABASE", Reach::Databases),
            ("CREATE OR REPLACE FUNCTION f() RETURNS void LANGUAGE sql AS 'ALTER ROLE app SET work_mem = ''1GB'''", "ALTER ROLE", Reach::Roles),
            ("CREATE PROCEDURE p() LANGUAGE sql BEGIN ATOMIC SELECT lo_import('/etc/passwd'); END", "lo_import()", Reach::Files),
            ("CREATE FUNCTION f() RETURNS int LANGUAGE plperl AS $$ spi_exec_query('ALTER SYSTEM') $$", "code in LANGUAGE plperl", Reach::Unknown),
            ("DO LANGUAGE plpython3u $$ import os $$", "code in LANGUAGE plpython3u", Reach::Unknown),
            (
                "DO LANGUAGE 'plpgsql' $$BEGIN DROP ROLE x; END$$",
                "DROP ROLE",
                Reach::Roles,
            ),
            ("CREATE FUNCTION f() RETURNS int AS 'dblink', 'dblink_exec' LANGUAGE c", "code in LANGUAGE c", Reach::Unknown),
            ("DO E'BEGIN \\x43REATE ROLE evil; END'", "a body written with escapes", Reach::Unknown),
            ("DO U&'BEGIN \\0043REATE ROLE evil; END'", "CREATE ROLE", Reach::Roles),
        ] {
            assert_eq!(found(sql), Some((what.to_owned(), expected)), "{sql}");
        }
    }

    #[test]
    fn strings_the_server_would_read_differently_are_caught() {
        for (sql, what, expected) in [
            ("SET standard_conforming_strings = off", "standard_conforming_strings = off", Reach::StringSyntax),
            ("SET SESSION standard_conforming_strings TO 'false'", "standard_conforming_strings = off", Reach::StringSyntax),
            (
                "SET \"standard_conforming_strings\" TO off",
                "standard_conforming_strings = off",
                Reach::StringSyntax,
            ),
            ("CREATE FUNCTION f() RETURNS int LANGUAGE sql SET standard_conforming_strings = off AS 'SELECT 1'", "standard_conforming_strings = off", Reach::StringSyntax),
            ("SELECT set_config('standard_conforming_strings', 'off', false)", "set_config('standard_conforming_strings')", Reach::StringSyntax),
            ("SELECT set_config(E'standard\\x5fconforming_strings', 'off', false)", "set_config() of a computed setting", Reach::Unknown),
            ("SELECT set_config('standard_' || 'conforming_strings', 'off', false)", "set_config() of a computed setting", Reach::Unknown),
            // A statement the splitter kept whole is read as the server reads it.
            ("CREATE FUNCTION f(begin int) RETURNS int LANGUAGE sql RETURN begin; ALTER SYSTEM SET x = 1; END", "ALTER SYSTEM", Reach::Settings),
        ] {
            assert_eq!(found(sql), Some((what.to_owned(), expected)), "{sql}");
        }
        for sql in [
            "SET standard_conforming_strings = on",
            "SET standard_conforming_strings TO DEFAULT",
            "SELECT pg_catalog.set_config('search_path', '', false)",
        ] {
            assert_eq!(found(sql), None, "{sql}");
        }
    }

    #[test]
    fn what_stays_inside_the_database_is_not_server_wide() {
        for sql in [
            "CREATE TABLE roles (id int, role text, system text, database text)",
            "ALTER TABLE users ADD COLUMN role text",
            "ALTER TABLE users DROP role",
            "ALTER TABLE users ALTER role TYPE varchar(20)",
            "ALTER TABLE users OWNER TO app",
            "ALTER SCHEMA s OWNER TO app",
            "CREATE INDEX ON users (role)",
            "GRANT SELECT ON users TO bob",
            "GRANT SELECT (role) ON users TO bob",
            "REVOKE ALL ON ALL TABLES IN SCHEMA public FROM PUBLIC",
            "GRANT EXECUTE ON FUNCTION f() TO app",
            "GRANT USAGE ON SCHEMA s TO app",
            "ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO app",
            "INSERT INTO settings (name) VALUES ('system'), ('ALTER SYSTEM'), ('CREATE ROLE x')",
            "UPDATE t SET note = 'COPY x TO PROGRAM' WHERE role = 'admin'",
            "SELECT current_user, session_user",
            "CREATE USER MAPPING FOR CURRENT_USER SERVER films",
            "DROP USER MAPPING FOR app SERVER films",
            "COMMENT ON TABLE users IS 'ALTER SYSTEM'",
            "COMMENT ON COLUMN users.role IS 'the user role'",
            "COPY t FROM STDIN",
            "COPY (SELECT * FROM t) TO STDOUT",
            "CREATE EXTENSION pgcrypto",
            "CREATE EXTENSION IF NOT EXISTS \"uuid-ossp\"",
            "SELECT dblink_status FROM t",
            "DO $$ BEGIN ALTER TABLE users ADD COLUMN role text; END $$",
            "DO $$ BEGIN CREATE TYPE t AS ENUM ('a'); EXCEPTION WHEN duplicate_object THEN null; END $$",
            "DO $$ BEGIN IF true THEN GRANT EXECUTE ON FUNCTION f() TO app; END IF; END $$",
            "DO $$ BEGIN CREATE TRIGGER t AFTER INSERT ON x FOR EACH ROW EXECUTE FUNCTION f(); END $$",
            "CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.role := 'system'; RETURN NEW; END $$",
            "CREATE FUNCTION f(a int) RETURNS int LANGUAGE sql IMMUTABLE RETURN a + 1",
            "CREATE FUNCTION f(language text) RETURNS text LANGUAGE sql AS $$ SELECT language $$",
            "CREATE TRIGGER t BEFORE UPDATE ON users FOR EACH ROW EXECUTE FUNCTION f()",
        ] {
            assert_eq!(found(sql), None, "{sql}");
        }
    }

    #[test]
    fn the_offset_points_at_what_was_found() {
        let sql = "DO $$\nBEGIN\n  CREATE ROLE evil;\nEND $$;";
        let parsed = parse_text(sql);
        let found = find(sql, &parsed.statements[0]).unwrap();
        assert_eq!(&sql[found.offset..found.offset + 11], "CREATE ROLE");
        // A body that had to be unquoted points at its string.
        let sql = "DO 'BEGIN CREATE ROLE evil; END'";
        let parsed = parse_text(sql);
        assert_eq!(find(sql, &parsed.statements[0]).unwrap().offset, 3);
    }

    #[test]
    fn deep_nesting_is_unknown() {
        let mut sql = "ALTER TABLE t ADD c int".to_owned();
        for depth in 0..=MAX_DEPTH {
            let tag = format!("$t{depth}$");
            sql = format!("DO {tag} BEGIN {sql}; END {tag}");
        }
        assert_eq!(reach(&sql), Some(Reach::Unknown));
    }
}
