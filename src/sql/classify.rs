//! What a statement is, read from its leading keywords.
//!
//! Every statement gets a [`Classification`], parsed or not: it is what transaction tracking needs
//! (BEGIN, COMMIT, SET) and it is the fallback for statements sqlparser rejects
//! (`DROP INDEX CONCURRENTLY IF EXISTS`, `REINDEX`, `CLUSTER`, `DO`, …), good enough for the rules
//! that need only a statement's kind, its target and whether it runs CONCURRENTLY.

use super::lex::{matching_paren, Token, TokenKind};
use super::name::ObjectName;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    CreateTable,
    AlterTable,
    DropTable,
    CreateIndex,
    AlterIndex,
    DropIndex,
    Reindex,
    CreateSequence,
    AlterSequence,
    DropSequence,
    CreateType,
    AlterType,
    DropType,
    CreateView,
    CreateMaterializedView,
    RefreshMaterializedView,
    DropView,
    CreateFunction,
    CreateTrigger,
    DropTrigger,
    CreateSchema,
    AlterSchema,
    DropSchema,
    CreateExtension,
    Cluster,
    Vacuum,
    Truncate,
    Do,
    Comment,
    Grant,
    Revoke,
    Begin,
    Commit,
    Rollback,
    Savepoint,
    Set,
    Reset,
    Insert,
    Update,
    Delete,
    Select,
    Copy,
    PsqlMeta,
    Other,
}

impl Kind {
    /// The statements that open or end a transaction block: BEGIN (START TRANSACTION), COMMIT (END),
    /// ROLLBACK (ABORT). Savepoints work inside a block and are not among them.
    pub const TRANSACTION_CONTROL: [Kind; 3] = [Kind::Begin, Kind::Commit, Kind::Rollback];

    /// Every kind, each at the index `kind as usize`.
    pub const ALL: [Kind; 44] = [
        Kind::CreateTable,
        Kind::AlterTable,
        Kind::DropTable,
        Kind::CreateIndex,
        Kind::AlterIndex,
        Kind::DropIndex,
        Kind::Reindex,
        Kind::CreateSequence,
        Kind::AlterSequence,
        Kind::DropSequence,
        Kind::CreateType,
        Kind::AlterType,
        Kind::DropType,
        Kind::CreateView,
        Kind::CreateMaterializedView,
        Kind::RefreshMaterializedView,
        Kind::DropView,
        Kind::CreateFunction,
        Kind::CreateTrigger,
        Kind::DropTrigger,
        Kind::CreateSchema,
        Kind::AlterSchema,
        Kind::DropSchema,
        Kind::CreateExtension,
        Kind::Cluster,
        Kind::Vacuum,
        Kind::Truncate,
        Kind::Do,
        Kind::Comment,
        Kind::Grant,
        Kind::Revoke,
        Kind::Begin,
        Kind::Commit,
        Kind::Rollback,
        Kind::Savepoint,
        Kind::Set,
        Kind::Reset,
        Kind::Insert,
        Kind::Update,
        Kind::Delete,
        Kind::Select,
        Kind::Copy,
        Kind::PsqlMeta,
        Kind::Other,
    ];
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classification {
    pub kind: Kind,
    /// The leading keywords as written, upper-cased (`DROP INDEX`, `ALTER TABLE`), for messages.
    pub label: String,
    /// The relation or object the statement acts on, when its syntax names one first.
    pub target: Option<ObjectName>,
    /// `CONCURRENTLY` appears among the statement's keywords.
    pub concurrently: bool,
    /// `CREATE INDEX … ON ONLY`: the index is built on the partitioned parent alone.
    pub on_only: bool,
}

/// Classifies a statement from its significant tokens.
pub fn classify(text: &str, tokens: &[Token]) -> Classification {
    let words = Words { text, tokens };
    if tokens
        .first()
        .is_some_and(|t| t.kind == TokenKind::MetaCommand)
    {
        return Classification::new(Kind::PsqlMeta, "psql command".into());
    }
    let concurrently = words.position("concurrently").is_some();
    let (kind, label_len) = kind_of(&words);
    let mut label = String::new();
    for word in (0..label_len).filter_map(|i| words.word(i)) {
        if !label.is_empty() {
            label.push(' ');
        }
        label.push_str(word);
    }
    label.make_ascii_uppercase();
    let mut classification = Classification::new(kind, label);
    classification.concurrently = concurrently;
    classification.target = target_of(kind, &words);
    classification.on_only = kind == Kind::CreateIndex
        && words
            .position("on")
            .is_some_and(|on| words.is(on + 1, "only"));
    classification
}

impl Classification {
    fn new(kind: Kind, label: String) -> Self {
        Classification {
            kind,
            label,
            target: None,
            concurrently: false,
            on_only: false,
        }
    }
}

/// The statement's kind and how many leading words name it.
fn kind_of(words: &Words) -> (Kind, usize) {
    let w = |i| words.lower(i);
    let (first, second) = (w(0), w(1));
    match first.as_str() {
        "create" => {
            // Skip modifiers that sit between CREATE and the object type.
            let mut at = 1;
            while matches!(
                w(at).as_str(),
                "or" | "replace"
                    | "unique"
                    | "temp"
                    | "temporary"
                    | "unlogged"
                    | "global"
                    | "local"
                    | "constraint"
                    | "recursive"
                    | "trusted"
                    | "procedural"
            ) {
                at += 1;
            }
            let kind = match w(at).as_str() {
                "table" => Kind::CreateTable,
                "index" => Kind::CreateIndex,
                "sequence" => Kind::CreateSequence,
                "type" | "domain" => Kind::CreateType,
                "view" => Kind::CreateView,
                "materialized" => return (Kind::CreateMaterializedView, at + 2),
                "function" | "procedure" => Kind::CreateFunction,
                "trigger" => Kind::CreateTrigger,
                "schema" => Kind::CreateSchema,
                "extension" => Kind::CreateExtension,
                _ => Kind::Other,
            };
            (kind, at + 1)
        }
        "alter" => {
            let kind = match second.as_str() {
                "table" => Kind::AlterTable,
                "index" => Kind::AlterIndex,
                "sequence" => Kind::AlterSequence,
                "type" | "domain" => Kind::AlterType,
                "schema" => Kind::AlterSchema,
                _ => Kind::Other,
            };
            (kind, 2)
        }
        "drop" => {
            let kind = match second.as_str() {
                "table" => Kind::DropTable,
                "index" => Kind::DropIndex,
                "sequence" => Kind::DropSequence,
                "type" | "domain" => Kind::DropType,
                "view" => Kind::DropView,
                "materialized" => return (Kind::DropView, 3),
                "trigger" => Kind::DropTrigger,
                "schema" => Kind::DropSchema,
                _ => Kind::Other,
            };
            (kind, 2)
        }
        "refresh" => (Kind::RefreshMaterializedView, 3),
        "reindex" => (Kind::Reindex, 1),
        "cluster" => (Kind::Cluster, 1),
        "vacuum" => (Kind::Vacuum, 1),
        "truncate" => (Kind::Truncate, 1),
        "do" => (Kind::Do, 1),
        "comment" => (Kind::Comment, 2),
        "grant" => (Kind::Grant, 1),
        "revoke" => (Kind::Revoke, 1),
        "begin" | "start" => (Kind::Begin, 1),
        "commit" | "end" => (Kind::Commit, 1),
        "abort" => (Kind::Rollback, 1),
        "rollback" if second.as_str() == "to" => (Kind::Savepoint, 2),
        "rollback" => (Kind::Rollback, 1),
        "savepoint" | "release" => (Kind::Savepoint, 1),
        "set" => (Kind::Set, 1),
        "reset" => (Kind::Reset, 1),
        "insert" => (Kind::Insert, 2),
        "update" => (Kind::Update, 1),
        "delete" => (Kind::Delete, 2),
        "select" | "values" | "table" => (Kind::Select, 1),
        "with" => (with_kind(words), 1),
        "copy" => (Kind::Copy, 1),
        _ => (Kind::Other, 1),
    }
}

/// The kind of `WITH … <statement>`: the first top-level DML keyword after the CTEs.
fn with_kind(words: &Words) -> Kind {
    let mut depth = 0usize;
    for token in words.tokens {
        match token.kind {
            TokenKind::LParen => depth += 1,
            TokenKind::RParen => depth = depth.saturating_sub(1),
            TokenKind::Word if depth == 0 => {
                match Lowered::of(&words.text[token.range()]).as_str() {
                    "insert" => return Kind::Insert,
                    "update" => return Kind::Update,
                    "delete" => return Kind::Delete,
                    "select" => return Kind::Select,
                    _ => {}
                }
            }
            _ => {}
        }
    }
    Kind::Select
}

/// The object a statement names first, skipping the optional keywords its syntax allows there.
fn target_of(kind: Kind, words: &Words) -> Option<ObjectName> {
    let skip: &[&str] = &[
        "if",
        "not",
        "exists",
        "only",
        "concurrently",
        "verbose",
        "full",
        "analyze",
        "freeze",
        "index",
        "table",
        "schema",
        "database",
        "system",
    ];
    let after = match kind {
        Kind::CreateIndex => words.position("on")? + 1,
        Kind::AlterTable
        | Kind::AlterIndex
        | Kind::AlterSequence
        | Kind::AlterType
        | Kind::DropTable
        | Kind::DropIndex
        | Kind::DropSequence
        | Kind::DropType
        | Kind::DropView
        | Kind::AlterSchema
        | Kind::DropSchema => 2,
        Kind::Reindex | Kind::Cluster | Kind::Vacuum | Kind::Truncate => 1,
        Kind::RefreshMaterializedView => 3,
        Kind::CreateTable | Kind::CreateSequence | Kind::CreateType | Kind::CreateSchema => {
            words
                .position("table")
                .or_else(|| words.position("sequence"))
                .or_else(|| words.position("type"))
                .or_else(|| words.position("domain"))
                .or_else(|| words.position("schema"))?
                + 1
        }
        _ => return None,
    };
    let mut at = words.token_index_of_word(after)?;
    // Skip option lists such as REINDEX (VERBOSE) and the optional keywords.
    loop {
        let token = words.tokens.get(at)?;
        match token.kind {
            TokenKind::LParen => {
                at = matching_paren(words.tokens, at)? + 1;
            }
            TokenKind::Word if skip.contains(&words.lower(at).as_str()) => at += 1,
            TokenKind::Word | TokenKind::QuotedIdent => break,
            _ => return None,
        }
    }
    ObjectName::from_tokens(words.text, &words.tokens[at..])
}

/// The statement's tokens viewed as a sequence of words.
struct Words<'a> {
    text: &'a str,
    tokens: &'a [Token],
}

impl<'a> Words<'a> {
    /// The n-th token if it is a word.
    fn word(&self, n: usize) -> Option<&'a str> {
        let token = self.tokens.get(n)?;
        (token.kind == TokenKind::Word).then(|| &self.text[token.range()])
    }

    /// The n-th token lower-cased when it is a word, to match keywords; else empty.
    fn lower(&self, n: usize) -> Lowered {
        Lowered::of(self.word(n).unwrap_or_default())
    }

    fn is(&self, n: usize, keyword: &str) -> bool {
        self.tokens
            .get(n)
            .is_some_and(|token| self.token_is(token, keyword))
    }

    /// Whether `token` is the word `keyword`. Every statement is searched for `CONCURRENTLY`: the
    /// kind and length are compared before the text is sliced.
    fn token_is(&self, token: &Token, keyword: &str) -> bool {
        token.kind == TokenKind::Word
            && token.range().len() == keyword.len()
            && self.text[token.range()].eq_ignore_ascii_case(keyword)
    }

    /// Index of the first token that is the given keyword.
    fn position(&self, keyword: &str) -> Option<usize> {
        self.tokens
            .iter()
            .position(|token| self.token_is(token, keyword))
    }

    /// Token index `n`, if the statement has that many tokens.
    fn token_index_of_word(&self, n: usize) -> Option<usize> {
        (n < self.tokens.len()).then_some(n)
    }
}

/// A word ASCII-lower-cased on the stack, to match it against the keywords of this module without
/// allocating; a word longer than any of them reads as empty, which matches none.
struct Lowered {
    bytes: [u8; Lowered::LONGEST],
    len: usize,
}

impl Lowered {
    const LONGEST: usize = 16;

    fn of(word: &str) -> Lowered {
        let mut lowered = Lowered {
            bytes: [0; Lowered::LONGEST],
            len: 0,
        };
        if let Some(bytes) = lowered.bytes.get_mut(..word.len()) {
            bytes.copy_from_slice(word.as_bytes());
            bytes.make_ascii_lowercase();
            lowered.len = word.len();
        }
        lowered
    }

    fn as_str(&self) -> &str {
        // ASCII lower-casing keeps UTF-8 valid, and `len` ends where the word ended.
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::lex::tokenize;

    fn classify_sql(sql: &str) -> Classification {
        let tokens: Vec<Token> = tokenize(sql, 0..sql.len())
            .into_iter()
            .filter(|t| !t.kind.is_trivia())
            .collect();
        classify(sql, &tokens)
    }

    #[test]
    fn drop_index_concurrently_if_exists() {
        let c = classify_sql("DROP INDEX CONCURRENTLY IF EXISTS public.\"Idx\"");
        assert_eq!(c.kind, Kind::DropIndex);
        assert_eq!(c.label, "DROP INDEX");
        assert!(c.concurrently);
        assert_eq!(c.target.unwrap().to_string(), "public.Idx");
    }

    #[test]
    fn keywords_in_any_case_and_words_longer_than_any_keyword() {
        let c = classify_sql("Create Or Replace Materialized View v AS SELECT 1");
        assert_eq!(c.kind, Kind::CreateMaterializedView);
        assert_eq!(c.label, "CREATE OR REPLACE MATERIALIZED VIEW");
        let c = classify_sql("CREATE materializedviewsandmore v");
        assert_eq!(c.kind, Kind::Other);
        assert_eq!(c.label, "CREATE MATERIALIZEDVIEWSANDMORE");
        assert_eq!(
            classify_sql("WITH x AS (SELECT 1) Delete FROM t").kind,
            Kind::Delete
        );
        assert_eq!(classify_sql("créer table t").kind, Kind::Other);
    }

    #[test]
    fn reindex_with_options() {
        let c = classify_sql("REINDEX (VERBOSE) TABLE CONCURRENTLY users");
        assert_eq!(c.kind, Kind::Reindex);
        assert!(c.concurrently);
        assert_eq!(c.target.unwrap().to_string(), "users");
    }

    #[test]
    fn create_index_on_only() {
        let c = classify_sql("CREATE INDEX i ON ONLY measurements (ts)");
        assert_eq!(c.kind, Kind::CreateIndex);
        assert!(c.on_only);
        assert_eq!(c.target.unwrap().to_string(), "measurements");
    }

    #[test]
    fn transaction_control_and_cte() {
        assert_eq!(classify_sql("START TRANSACTION").kind, Kind::Begin);
        assert_eq!(classify_sql("end").kind, Kind::Commit);
        assert_eq!(
            classify_sql("WITH x AS (SELECT 1) UPDATE t SET a = 1").kind,
            Kind::Update
        );
        assert_eq!(
            classify_sql("CREATE OR REPLACE FUNCTION f() RETURNS int").kind,
            Kind::CreateFunction
        );
    }

    #[test]
    fn every_kind_is_listed_at_its_index() {
        for (index, kind) in Kind::ALL.into_iter().enumerate() {
            assert_eq!(kind as usize, index, "{kind:?}");
        }
        // A kind added to the enum after Other would not be listed.
        assert_eq!(Kind::Other as usize, Kind::ALL.len() - 1);
    }
}
