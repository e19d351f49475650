//! Transaction states: which transaction each statement of a migration runs in (the tool's, the
//! file's own BEGIN … COMMIT, or none) and which timeouts are in effect when it runs. The rules judge
//! statements by it, and the shadow applies migrations in the same shape.

use crate::migration::{Section, Transaction};
use crate::sql::{Kind, Statement, TokenKind};

/// The transaction a statement runs in, and the timeouts in effect when it runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TxState {
    /// It runs inside a transaction block: the file's own BEGIN or the tool's.
    pub in_transaction: bool,
    /// That transaction is the migration tool's, not a BEGIN written in the file.
    pub tool_transaction: bool,
    /// The tool's transaction is the implicit one PostgreSQL gives a multi-statement query
    /// (Prisma, golang-migrate), not a BEGIN … COMMIT the tool sends: a BEGIN … COMMIT written in
    /// the file is legitimate there.
    pub implicit: bool,
    /// Which transaction block of the migration it runs in (numbered from 1), if any: statements
    /// with the same number share locks, which are held until the block ends.
    pub transaction: Option<u32>,
    /// A non-zero `lock_timeout` is in effect.
    pub lock_timeout: bool,
    /// A non-zero `statement_timeout` is in effect.
    pub statement_timeout: bool,
}

/// Computes the transaction state of every statement: what the tool wraps, the file's own
/// BEGIN/COMMIT, and `lock_timeout`/`statement_timeout` set by `SET` (session-wide) or `SET LOCAL`
/// (until the end of the current transaction).
pub fn transaction_states(
    text: &str,
    statements: &[Statement],
    sections: &[Section],
) -> Vec<TxState> {
    let mut states = Vec::with_capacity(statements.len());
    let mut session = Timeouts::default();
    let mut local: Option<Timeouts> = None;
    let mut explicit = false;
    let mut current_section = usize::MAX;
    let mut tool_wraps = false;
    let mut implicit = false;
    let mut blocks = 0;
    let mut block = None;
    for statement in statements {
        if statement.section != current_section {
            // A tool transaction ends with its section; SET LOCAL dies with it.
            current_section = statement.section;
            let section = sections.get(statement.section);
            tool_wraps = section.is_some_and(|section| wraps(section, statements));
            implicit = tool_wraps
                && section.is_some_and(|s| s.transaction == Transaction::ImplicitMultiStatement);
            explicit = false;
            local = tool_wraps.then(Timeouts::default);
            block = tool_wraps.then(|| {
                blocks += 1;
                blocks
            });
        }
        let in_transaction = explicit || tool_wraps;
        let effective = local.map_or(session, |l| l.or(session));
        // Outside a transaction block, a DO block's statements share the DO's own transaction.
        let transaction = match block {
            None if !statement.nested.is_empty() => {
                blocks += 1;
                Some(blocks)
            }
            block => block,
        };
        states.push(TxState {
            in_transaction,
            tool_transaction: tool_wraps && !explicit,
            implicit,
            transaction,
            lock_timeout: effective.lock,
            statement_timeout: effective.statement,
        });
        match statement.class.kind {
            Kind::Begin if !explicit => {
                explicit = true;
                if !tool_wraps {
                    local = Some(Timeouts::default());
                    blocks += 1;
                    block = Some(blocks);
                }
            }
            Kind::Commit | Kind::Rollback => {
                explicit = false;
                if tool_wraps {
                    // It ends the tool's transaction too (PostgreSQL folds statements before a
                    // BEGIN into its block): its locks are released, what follows runs in another.
                    blocks += 1;
                    block = Some(blocks);
                } else {
                    local = None;
                    block = None;
                }
            }
            Kind::Set | Kind::Select => {
                if let Some(setting) = timeout_setting(text, statement) {
                    let target = match (setting.local, local.as_mut()) {
                        (true, Some(local)) => local,
                        // SET LOCAL outside a transaction block has no effect.
                        (true, None) => continue,
                        (false, _) => &mut session,
                    };
                    target.set(setting.name, setting.enabled);
                    if !setting.local {
                        // A session SET inside a transaction also applies to the rest of it.
                        if let Some(local) = local.as_mut() {
                            local.set(setting.name, setting.enabled);
                        }
                    }
                }
            }
            _ => {}
        }
    }
    states
}

fn wraps(section: &Section, statements: &[Statement]) -> bool {
    match section.transaction {
        Transaction::None => false,
        Transaction::Wrapped => true,
        Transaction::ImplicitMultiStatement => {
            statements
                .iter()
                .filter(|s| section.range.contains(&s.range.start))
                .count()
                > 1
        }
    }
}

/// Timeouts set in one scope; `None` means "not set here".
#[derive(Debug, Clone, Copy, Default)]
struct Timeouts {
    lock: bool,
    statement: bool,
    lock_set: bool,
    statement_set: bool,
}

impl Timeouts {
    fn set(&mut self, name: TimeoutName, enabled: bool) {
        match name {
            TimeoutName::Lock => {
                self.lock = enabled;
                self.lock_set = true;
            }
            TimeoutName::Statement => {
                self.statement = enabled;
                self.statement_set = true;
            }
        }
    }

    /// These settings where set, the outer scope's elsewhere.
    fn or(self, outer: Timeouts) -> Timeouts {
        Timeouts {
            lock: if self.lock_set { self.lock } else { outer.lock },
            statement: if self.statement_set {
                self.statement
            } else {
                outer.statement
            },
            lock_set: self.lock_set || outer.lock_set,
            statement_set: self.statement_set || outer.statement_set,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimeoutName {
    Lock,
    Statement,
}

struct TimeoutSetting {
    name: TimeoutName,
    local: bool,
    enabled: bool,
}

/// Reads `SET [LOCAL|SESSION] lock_timeout {TO|=} value` and
/// `SELECT set_config('lock_timeout', 'value', is_local)`.
fn timeout_setting(text: &str, statement: &Statement) -> Option<TimeoutSetting> {
    let words: Vec<(TokenKind, &str)> = statement
        .tokens
        .iter()
        .map(|t| (t.kind, &text[t.range()]))
        .collect();
    let unquote = |s: &str| s.trim_matches('\'').to_ascii_lowercase();
    let name_of = |s: &str| match unquote(s).as_str() {
        "lock_timeout" => Some(TimeoutName::Lock),
        "statement_timeout" => Some(TimeoutName::Statement),
        _ => None,
    };
    let enabled = |value: &str| {
        let value = unquote(value);
        let digits: String = value.chars().take_while(char::is_ascii_digit).collect();
        !(value == "default" || digits.parse::<u64>().is_ok_and(|n| n == 0))
    };
    if statement.class.kind == Kind::Set {
        let mut at = 1;
        let local = words.get(1)?.1.eq_ignore_ascii_case("local");
        if local || words.get(1)?.1.eq_ignore_ascii_case("session") {
            at += 1;
        }
        let name = name_of(words.get(at)?.1)?;
        let value = words.get(at + 2)?.1;
        return Some(TimeoutSetting {
            name,
            local,
            enabled: enabled(value),
        });
    }
    // SELECT set_config('lock_timeout', '5s', false)
    let call = words
        .iter()
        .position(|(kind, w)| *kind == TokenKind::Word && w.eq_ignore_ascii_case("set_config"))?;
    let args: Vec<&str> = words[call + 1..]
        .iter()
        .filter(|(kind, _)| matches!(kind, TokenKind::String | TokenKind::Word))
        .map(|(_, w)| *w)
        .take(3)
        .collect();
    let [name, value, is_local] = args.as_slice() else {
        return None;
    };
    Some(TimeoutSetting {
        name: name_of(name)?,
        local: is_local.eq_ignore_ascii_case("true"),
        enabled: enabled(value),
    })
}
