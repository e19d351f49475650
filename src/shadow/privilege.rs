//! Least privilege on migagent's own cluster: the migrations run as [`APPLY_ROLE`], a login role that owns
//! the shadow databases and nothing else (no SUPERUSER, CREATEDB, CREATEROLE, REPLICATION or BYPASSRLS),
//! as they run on a managed database (RDS, Cloud SQL and Supabase give no superuser either). What needs
//! more is decided here:
//!
//! - `CREATE EXTENSION` of an extension the user allowed (`--shadow-extension`) runs on a superuser
//!   connection to the same database, because installing an untrusted extension is an admin decision;
//!   trusted extensions (PostgreSQL 13+) need nothing, the role owns the database;
//! - `CREATE ROLE` / `USER` / `GROUP`, `GRANT role TO …`, `REVOKE role FROM …` and `DROP ROLE` run on
//!   migagent's superuser connection in a sanitized form: without SUPERUSER, CREATEROLE (before
//!   PostgreSQL 16 it could grant itself `pg_execute_server_program`), REPLICATION, BYPASSRLS, a password,
//!   or membership in a predefined `pg_*` role or migagent's own roles; what was dropped is reported;
//! - every other statement that needs superuser fails, and its error says so (see [`explain`]).
//!
//! A delegated statement runs in a transaction of its own, just before the point where the migration has
//! it: it is not undone if the migration's transaction is rolled back.

use crate::sql::lex::{Token, TokenKind};
use crate::sql::Statement;

/// The role the migrations run as on migagent's own cluster.
pub const APPLY_ROLE: &str = "migagent_apply";

/// The cluster's superuser (see `cluster::SUPERUSER`): never a role a migration may join.
const SUPERUSER: &str = "postgres";

/// Role attributes a migration's role never gets on the shadow.
const DROPPED_ATTRIBUTES: [&str; 4] = ["superuser", "createrole", "replication", "bypassrls"];

/// A statement that runs on a superuser connection instead of as [`APPLY_ROLE`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delegation {
    /// What runs; empty when nothing is left to run once sanitized (then `dropped` says why).
    pub sql: String,
    /// What was left out, for a notice.
    pub dropped: Vec<String>,
}

impl Delegation {
    /// Nothing of the statement runs, for `reason`.
    fn refused(reason: String) -> Delegation {
        Delegation {
            sql: String::new(),
            dropped: vec![reason],
        }
    }
}

/// What migagent's superuser connection does for a migration beyond what [`APPLY_ROLE`] may do.
#[derive(Debug, Clone, Copy, Default)]
pub struct Allowed<'a> {
    /// Extensions it installs (lower-case names): the user's admin decision.
    pub extensions: &'a [String],
    /// Parameters a migration may not set on a role (see [`RESTRICTED_SETTINGS_SQL`]).
    pub restricted_settings: &'a [String],
}

/// The parameters a migration may not give a role with `ALTER ROLE … SET`: those only a superuser
/// may set (PostgreSQL checks the applying role's own rights, but migagent's connection is a
/// superuser), and `local_preload_libraries`, which any role may set and which loads a library in
/// every session of the role. Placeholders of extensions (`app.x`) are not listed: any role may set them.
pub const RESTRICTED_SETTINGS_SQL: &str = "SELECT name FROM pg_catalog.pg_settings \
     WHERE context <> 'user' OR name = 'local_preload_libraries' ORDER BY name";

/// How `statement` of `text` runs on a least-privileged shadow: `None` as written by [`APPLY_ROLE`].
pub fn delegation(text: &str, statement: &Statement, allowed: Allowed) -> Option<Delegation> {
    let tokens = &statement.tokens;
    let word = |i: usize| word(text, tokens, i);
    match (word(0)?.as_str(), word(1).unwrap_or_default().as_str()) {
        ("create", "extension") => {
            let at = if word(2).as_deref() == Some("if") {
                5
            } else {
                2
            };
            let name = name(text, tokens, at)?;
            allowed.extensions.contains(&name).then(|| Delegation {
                sql: statement.sql(text).to_owned(),
                dropped: Vec::new(),
            })
        }
        ("create", "role" | "user" | "group") => Some(sanitize_create_role(text, tokens)),
        ("alter", "role" | "user") => sanitize_alter_role(text, statement, allowed),
        ("alter", "group") => Some(sanitize_alter_group(text, tokens)),
        ("grant", _) | ("revoke", _) if !has_word(text, tokens, "on") => {
            Some(sanitize_role_grant(text, tokens))
        }
        ("drop", "role" | "user" | "group") => Some(sanitize_drop_role(text, tokens)),
        _ => None,
    }
}

/// Words that name the session's role: on migagent's superuser connection, its superuser.
const CURRENT_ROLE_WORDS: [&str; 3] = ["current_user", "current_role", "session_user"];

/// A role a migration must never join, create, drop or change: predefined roles (`pg_*`), the
/// cluster's superuser and the role migrations run as, also when named as the current role.
fn is_protected_role(name: &str) -> bool {
    name.starts_with("pg_")
        || name == SUPERUSER
        || name == APPLY_ROLE
        || CURRENT_ROLE_WORDS.contains(&name)
}

/// A role that may not be given a membership: a protected one other than [`APPLY_ROLE`] (a role the
/// migrations created may be granted to the role they run as).
fn is_protected_grantee(name: &str) -> bool {
    is_protected_role(name) && name != APPLY_ROLE
}

/// Role attributes kept as written: they give no power beyond the role's own objects.
const HARMLESS_ATTRIBUTES: [&str; 10] = [
    "login",
    "nologin",
    "inherit",
    "noinherit",
    "createdb",
    "nocreatedb",
    "nosuperuser",
    "nocreaterole",
    "noreplication",
    "nobypassrls",
];

/// `CREATE ROLE name [WITH] option …` keeping only harmless options (see [`sanitize_role_options`]).
fn sanitize_create_role(text: &str, tokens: &[Token]) -> Delegation {
    let name = name(text, tokens, 2).unwrap_or_default();
    if is_protected_role(&name) {
        return Delegation::refused(format!("the role {name} is migagent's own or predefined"));
    }
    let mut kept: Vec<String> = raw_tokens(text, &tokens[..3.min(tokens.len())]);
    let mut dropped = Vec::new();
    sanitize_role_options(text, tokens, 3, &mut kept, &mut dropped);
    Delegation {
        sql: kept.join(" "),
        dropped,
    }
}

/// The options of `CREATE ROLE` / `ALTER ROLE` from `start`, through an allow-list: the attributes in
/// [`HARMLESS_ATTRIBUTES`], `CONNECTION LIMIT`, `VALID UNTIL`, `SYSID` and role lists are kept (memberships
/// in protected roles dropped); SUPERUSER, CREATEROLE, REPLICATION, BYPASSRLS, passwords and anything
/// else (a quoted `"superuser"` is SUPERUSER to PostgreSQL) go to `dropped`.
fn sanitize_role_options(
    text: &str,
    tokens: &[Token],
    start: usize,
    kept: &mut Vec<String>,
    dropped: &mut Vec<String>,
) {
    let kind = |i: usize| tokens.get(i).map(|t| t.kind);
    let mut i = start;
    while i < tokens.len() {
        let current = word(text, tokens, i).unwrap_or_default();
        let next = word(text, tokens, i + 1).unwrap_or_default();
        let raw = &text[tokens[i].range()];
        // How many tokens from `i` are kept as written.
        let harmless = match (current.as_str(), next.as_str()) {
            ("with", _) if i == start => 1,
            (attribute, _) if HARMLESS_ATTRIBUTES.contains(&attribute) => 1,
            ("connection", "limit") => {
                let sign = usize::from(tokens.get(i + 2).is_some_and(|t| &text[t.range()] == "-"));
                if kind(i + 2 + sign) == Some(TokenKind::Number) {
                    3 + sign
                } else {
                    0
                }
            }
            ("valid", "until") if kind(i + 2) == Some(TokenKind::String) => 3,
            ("sysid", _) if kind(i + 1) == Some(TokenKind::Number) => 2,
            _ => 0,
        };
        if harmless > 0 {
            kept.extend(raw_tokens(text, &tokens[i..i + harmless]));
            i += harmless;
            continue;
        }
        match (current.as_str(), next.as_str()) {
            ("encrypted" | "unencrypted", "password") => {
                dropped.push("PASSWORD".to_owned());
                i += 3;
            }
            ("password", _) => {
                dropped.push("PASSWORD".to_owned());
                i += 2;
            }
            ("in", "role" | "group") | ("role" | "admin" | "user", _) => {
                let list_start = if current == "in" { i + 2 } else { i + 1 };
                let (names, end) = name_list(text, tokens, list_start);
                let (protected, allowed): (Vec<_>, Vec<_>) = names
                    .into_iter()
                    .partition(|(name, _)| is_protected_role(name) && current == "in");
                dropped.extend(protected.iter().map(|(_, raw)| format!("IN ROLE {raw}")));
                if !allowed.is_empty() {
                    kept.extend(raw_tokens(text, &tokens[i..list_start]));
                    let list: Vec<&str> = allowed.iter().map(|(_, raw)| *raw).collect();
                    kept.push(list.join(", "));
                }
                i = end.max(list_start);
            }
            _ => {
                let attribute = DROPPED_ATTRIBUTES.contains(&current.as_str());
                dropped.push(if attribute {
                    raw.to_ascii_uppercase()
                } else {
                    raw.to_owned()
                });
                i += 1;
            }
        }
    }
}

/// `ALTER ROLE` / `ALTER USER` of a role the migrations created: its options through
/// [`sanitize_role_options`], `SET` of a parameter in `restricted_settings` dropped, `RESET` and
/// `RENAME TO` as written. `ALTER ROLE CURRENT_USER …` is not delegated: the applying role may change
/// itself only as far as PostgreSQL lets it. `ALTER ROLE ALL`, and any change to migagent's own or a
/// predefined role, is dropped whole: it would change the roles migagent works as.
fn sanitize_alter_role(text: &str, statement: &Statement, allowed: Allowed) -> Option<Delegation> {
    let tokens = &statement.tokens;
    let target_word = word(text, tokens, 2);
    if target_word
        .as_deref()
        .is_some_and(|target| CURRENT_ROLE_WORDS.contains(&target))
    {
        return None;
    }
    if target_word.as_deref() == Some("all") {
        return Some(Delegation::refused(
            "ALTER ROLE ALL would change migagent's own roles too".to_owned(),
        ));
    }
    let Some(target) = name(text, tokens, 2) else {
        return Some(Delegation::refused(
            "migagent cannot tell which role it changes".to_owned(),
        ));
    };
    if is_protected_role(&target) {
        return Some(Delegation::refused(format!(
            "the role {target} is migagent's own or predefined"
        )));
    }
    let mut at = 3;
    if word(text, tokens, at).as_deref() == Some("in") {
        // IN DATABASE name
        at += 3;
    }
    let verb = word(text, tokens, at).unwrap_or_default();
    let as_written = || Delegation {
        sql: statement.sql(text).to_owned(),
        dropped: Vec::new(),
    };
    match verb.as_str() {
        "reset" | "rename" => Some(as_written()),
        "set" => {
            let parameter = parameter_name(text, tokens, at + 1);
            let restricted = parameter
                .as_ref()
                .is_none_or(|parameter| allowed.restricted_settings.contains(parameter));
            if restricted {
                let shown =
                    parameter.unwrap_or_else(|| "a parameter migagent cannot read".to_owned());
                return Some(Delegation::refused(format!(
                    "SET {shown}: only a superuser may set it, or it loads libraries"
                )));
            }
            Some(as_written())
        }
        _ => {
            let mut kept = raw_tokens(text, &tokens[..3]);
            let mut dropped = Vec::new();
            sanitize_role_options(text, tokens, 3, &mut kept, &mut dropped);
            Some(Delegation {
                sql: kept.join(" "),
                dropped,
            })
        }
    }
}

/// The (possibly dotted) parameter name from `start`, lower-cased as PostgreSQL resolves it.
fn parameter_name(text: &str, tokens: &[Token], start: usize) -> Option<String> {
    let mut parts = vec![name(text, tokens, start)?];
    let mut i = start + 1;
    while tokens.get(i).is_some_and(|t| &text[t.range()] == ".") {
        parts.push(name(text, tokens, i + 1)?);
        i += 2;
    }
    Some(parts.join("."))
}

/// `ALTER GROUP role ADD|DROP USER name, …`: a membership change, sanitized like `GRANT role TO …`.
fn sanitize_alter_group(text: &str, tokens: &[Token]) -> Delegation {
    let group = name(text, tokens, 2).unwrap_or_default();
    let shape = (word(text, tokens, 3), word(text, tokens, 4));
    let membership = matches!(
        (shape.0.as_deref(), shape.1.as_deref()),
        (Some("add" | "drop"), Some("user"))
    );
    if is_protected_role(&group) || !membership {
        return Delegation::refused(format!(
            "the role {group} is migagent's own or predefined, or the statement is not a membership change"
        ));
    }
    let (members, _) = name_list(text, tokens, 5);
    let (protected, members): (Vec<_>, Vec<_>) = members
        .into_iter()
        .partition(|(name, _)| is_protected_grantee(name));
    let dropped: Vec<String> = protected
        .iter()
        .map(|(_, raw)| format!("membership of {raw}"))
        .collect();
    if members.is_empty() {
        return Delegation {
            sql: String::new(),
            dropped,
        };
    }
    let list: Vec<&str> = members.iter().map(|(_, raw)| *raw).collect();
    Delegation {
        sql: format!(
            "{} {}",
            raw_tokens(text, &tokens[..5]).join(" "),
            list.join(", ")
        ),
        dropped,
    }
}

/// `GRANT role, … TO grantee, …` / `REVOKE role, … FROM …` without protected roles on either side.
fn sanitize_role_grant(text: &str, tokens: &[Token]) -> Delegation {
    let verb = &text[tokens[0].range()];
    let mut start = 1;
    // REVOKE ADMIN OPTION FOR role …
    if word(text, tokens, 1).as_deref() == Some("admin") {
        start = 4;
    }
    let (roles, end) = name_list(text, tokens, start);
    let to = end;
    if !matches!(word(text, tokens, to).as_deref(), Some("to" | "from")) {
        return Delegation::refused("migagent cannot tell which roles it grants".to_owned());
    }
    let (protected, roles): (Vec<_>, Vec<_>) = roles
        .into_iter()
        .partition(|(name, _)| is_protected_role(name));
    let (grantees, rest) = name_list(text, tokens, to + 1);
    let (protected_grantees, grantees): (Vec<_>, Vec<_>) = grantees
        .into_iter()
        .partition(|(name, _)| is_protected_grantee(name));
    let mut dropped: Vec<String> = protected
        .iter()
        .chain(&protected_grantees)
        .map(|(_, raw)| format!("membership of {raw}"))
        .collect();
    if roles.is_empty() || grantees.is_empty() {
        dropped.dedup();
        return Delegation {
            sql: String::new(),
            dropped,
        };
    }
    let mut parts: Vec<&str> = vec![verb];
    parts.extend(tokens[1..start].iter().map(|t| &text[t.range()]));
    let role_list: Vec<&str> = roles.iter().map(|(_, raw)| *raw).collect();
    let grantee_list: Vec<&str> = grantees.iter().map(|(_, raw)| *raw).collect();
    let joined_roles = role_list.join(", ");
    let joined_grantees = grantee_list.join(", ");
    let keyword = tokens.get(to).map_or("TO", |t| &text[t.range()]);
    let tail: Vec<&str> = tokens[rest.min(tokens.len())..]
        .iter()
        .map(|t| &text[t.range()])
        .collect();
    // GRANTED BY names a grantor; migagent's connection grants.
    let tail = tail
        .iter()
        .position(|t| t.eq_ignore_ascii_case("granted"))
        .map_or(&tail[..], |at| &tail[..at])
        .join(" ");
    parts.retain(|p| !p.is_empty());
    Delegation {
        sql: format!(
            "{} {joined_roles} {keyword} {joined_grantees} {tail}",
            parts.join(" ")
        )
        .trim_end()
        .to_owned(),
        dropped,
    }
}

/// `DROP ROLE [IF EXISTS] name, …` without protected roles.
fn sanitize_drop_role(text: &str, tokens: &[Token]) -> Delegation {
    let start = if word(text, tokens, 2).as_deref() == Some("if") {
        4
    } else {
        2
    };
    let (names, _) = name_list(text, tokens, start);
    let (protected, names): (Vec<_>, Vec<_>) = names
        .into_iter()
        .partition(|(name, _)| is_protected_role(name));
    let dropped = protected
        .iter()
        .map(|(_, raw)| format!("dropping {raw}"))
        .collect();
    if names.is_empty() {
        return Delegation {
            sql: String::new(),
            dropped,
        };
    }
    let head: Vec<&str> = tokens[..start].iter().map(|t| &text[t.range()]).collect();
    let list: Vec<&str> = names.iter().map(|(_, raw)| *raw).collect();
    Delegation {
        sql: format!("{} {}", head.join(" "), list.join(", ")),
        dropped,
    }
}

/// A comma-separated list of names from `start`: each name (as PostgreSQL resolves it) with its text,
/// and the index of the first token after the list.
fn name_list<'t>(text: &'t str, tokens: &[Token], start: usize) -> (Vec<(String, &'t str)>, usize) {
    let mut names = Vec::new();
    let mut i = start;
    while let Some(resolved) = name(text, tokens, i) {
        names.push((resolved, &text[tokens[i].range()]));
        i += 1;
        if tokens.get(i).is_some_and(|t| &text[t.range()] == ",") {
            i += 1;
        } else {
            break;
        }
    }
    (names, i)
}

/// The tokens' text, one string each.
fn raw_tokens(text: &str, tokens: &[Token]) -> Vec<String> {
    tokens.iter().map(|t| text[t.range()].to_owned()).collect()
}

/// The lower-cased word at `i`.
fn word(text: &str, tokens: &[Token], i: usize) -> Option<String> {
    let token = tokens.get(i)?;
    (token.kind == TokenKind::Word).then(|| text[token.range()].to_ascii_lowercase())
}

fn has_word(text: &str, tokens: &[Token], keyword: &str) -> bool {
    (0..tokens.len()).any(|i| word(text, tokens, i).as_deref() == Some(keyword))
}

/// The name at `i` as PostgreSQL resolves it: an unquoted word folded to lower case, a quoted identifier
/// as written.
fn name(text: &str, tokens: &[Token], i: usize) -> Option<String> {
    let token = tokens.get(i)?;
    let raw = &text[token.range()];
    match token.kind {
        TokenKind::Word => Some(raw.to_ascii_lowercase()),
        TokenKind::QuotedIdent if raw.starts_with('"') => {
            Some(raw[1..raw.len() - 1].replace("\"\"", "\""))
        }
        _ => None,
    }
}

/// Functions that read or write the server's files and that only superusers (or members of
/// `pg_read_server_files` / `pg_write_server_files`) may call.
const FILE_FUNCTIONS: [&str; 6] = [
    "pg_read_file",
    "pg_read_binary_file",
    "pg_stat_file",
    "pg_ls_dir",
    "lo_export",
    "lo_import",
];

/// The extension a server error names (`permission denied to create extension "dblink"`,
/// `extension "pg_net" is not available`).
fn extension_named(message: &str) -> Option<&str> {
    let (_, after) = message.split_once("extension \"")?;
    after.split_once('"').map(|(name, _)| name)
}

/// What to add to the server's error when a statement failed for want of superuser on the
/// least-privileged shadow, or was stopped by one of the shadow's limits; `None` for other errors.
pub fn explain(sqlstate: &str, message: &str, hint: Option<&str>) -> Option<String> {
    const MANAGED: &str = "as on a managed database (RDS, Cloud SQL, Supabase), where no migration runs as superuser either";
    match sqlstate {
        "42501" if message.starts_with("permission denied to create extension") => {
            let name = extension_named(message)?;
            Some(format!(
                "; this extension needs superuser to install, {MANAGED}. If production has it installed by an admin and you trust it, allow it on the shadow with `--shadow-extension {name}` (or `[shadow] extensions = [\"{name}\"]`)"
            ))
        }
        _ if message.starts_with("extension \"") && message.ends_with("\" is not available") => {
            let name = extension_named(message)?;
            Some(format!(
                "; the shadow's PostgreSQL does not have the extension {name} installed: install its package for that server, or give migagent one that has it (`--pg-bin DIR`, or `--shadow URL` of a server with it); an extension PostgreSQL does not mark trusted must then also be allowed with `--shadow-extension {name}`"
            ))
        }
        "42501"
            if message.contains("superuser")
                || message.starts_with("permission denied to set parameter")
                || hint.is_some_and(|hint| hint.contains("superuser"))
                || FILE_FUNCTIONS
                    .iter()
                    .any(|f| message == format!("permission denied for function {f}")) =>
        {
            Some(format!(
                "; this needs superuser, {MANAGED}: the shadow runs migrations as the role {APPLY_ROLE}, which owns its database and nothing else (--shadow-superuser applies them as superuser, and then a migration can run programs on this machine)"
            ))
        }
        "57014" => Some(
            "; the shadow stops a statement that runs longer than its statement timeout (--statement-timeout, default 5 min): if it really takes this long on an empty schema it will take longer in production, else raise the limit".to_owned(),
        ),
        "53400" if message.contains("temp_file_limit") => Some(
            "; the shadow caps a statement's temporary files at a quarter of its size cap (--shadow-max-size, default 2GB): raise it if the migration needs more".to_owned(),
        ),
        "57P01" => Some(
            "; the session was ended by a termination request: the shadow sends one when a statement outruns the statement timeout (--statement-timeout) even after it was cancelled, or grows the shadow beyond its size cap (--shadow-max-size), and a statement that calls pg_terminate_backend on its own session fails the same way (in production it would drop the migration's connection)".to_owned(),
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::parse_text;

    fn delegated(sql: &str, extensions: &[&str]) -> Option<Delegation> {
        let parsed = parse_text(sql);
        let extensions: Vec<String> = extensions.iter().map(|e| e.to_string()).collect();
        let restricted_settings: Vec<String> = [
            "local_preload_libraries",
            "session_preload_libraries",
            "log_statement",
        ]
        .map(str::to_owned)
        .to_vec();
        let allowed = Allowed {
            extensions: &extensions,
            restricted_settings: &restricted_settings,
        };
        delegation(sql, &parsed.statements[0], allowed)
    }

    #[test]
    fn quoted_or_unknown_role_options_are_dropped() {
        // PostgreSQL reads a quoted "superuser" as SUPERUSER.
        let quoted = delegated(r#"CREATE ROLE evil "superuser" LOGIN "createrole""#, &[]).unwrap();
        assert_eq!(quoted.sql, "CREATE ROLE evil LOGIN");
        assert_eq!(quoted.dropped, [r#""superuser""#, r#""createrole""#]);
        let kept = delegated(
            "CREATE ROLE app WITH NOLOGIN CONNECTION LIMIT -1 VALID UNTIL 'infinity' NOINHERIT",
            &[],
        )
        .unwrap();
        assert_eq!(
            kept.sql,
            "CREATE ROLE app WITH NOLOGIN CONNECTION LIMIT - 1 VALID UNTIL 'infinity' NOINHERIT"
        );
        assert!(kept.dropped.is_empty(), "{:?}", kept.dropped);
        // On migagent's connection CURRENT_USER is its superuser.
        let current = delegated("CREATE ROLE evil LOGIN IN ROLE current_user", &[]).unwrap();
        assert_eq!(current.sql, "CREATE ROLE evil LOGIN");
        assert_eq!(current.dropped, ["IN ROLE current_user"]);
        let unicode = delegated(r#"GRANT anon, U&"pg_read_server_files" TO x"#, &[]).unwrap();
        assert_eq!(unicode.sql, "");
        let to_current = delegated("GRANT anon TO session_user, app", &[]).unwrap();
        assert_eq!(to_current.sql, "GRANT anon TO app");
    }

    #[test]
    fn alter_role_is_sanitized_and_only_for_roles_the_migrations_made() {
        let options = delegated(
            "ALTER ROLE app WITH SUPERUSER LOGIN ENCRYPTED PASSWORD 'x' BYPASSRLS",
            &[],
        )
        .unwrap();
        assert_eq!(options.sql, "ALTER ROLE app WITH LOGIN");
        assert_eq!(options.dropped, ["SUPERUSER", "PASSWORD", "BYPASSRLS"]);
        let setting = delegated(
            "ALTER ROLE authenticator SET statement_timeout TO '8s'",
            &[],
        )
        .unwrap();
        assert_eq!(
            setting.sql,
            "ALTER ROLE authenticator SET statement_timeout TO '8s'"
        );
        let placeholder = delegated(
            "alter role authenticator set pgrst.db_schemas = 'public'",
            &[],
        )
        .unwrap();
        assert!(placeholder.dropped.is_empty());
        for restricted in [
            "ALTER ROLE app SET session_preload_libraries = 'evil'",
            "ALTER USER app IN DATABASE db SET local_preload_libraries TO 'evil'",
            r#"ALTER ROLE app SET "session_preload_libraries" = 'evil'"#,
            "ALTER ROLE ALL SET search_path = evil",
            "ALTER ROLE postgres SET search_path = evil",
            "ALTER ROLE migagent_apply NOLOGIN",
            "ALTER ROLE pg_monitor RENAME TO x",
            "ALTER GROUP pg_execute_server_program ADD USER app",
        ] {
            let refused = delegated(restricted, &[]).unwrap();
            assert_eq!(refused.sql, "", "{restricted}");
            assert_eq!(refused.dropped.len(), 1, "{restricted}");
        }
        assert_eq!(
            delegated("ALTER ROLE app RESET ALL", &[]).unwrap().sql,
            "ALTER ROLE app RESET ALL"
        );
        assert_eq!(
            delegated("ALTER ROLE app RENAME TO app2", &[]).unwrap().sql,
            "ALTER ROLE app RENAME TO app2"
        );
        // The applying role changes itself only as far as PostgreSQL lets it.
        assert_eq!(
            delegated("ALTER ROLE CURRENT_USER SET work_mem = '1MB'", &[]),
            None
        );
        let group = delegated("ALTER GROUP app ADD USER postgres, web", &[]).unwrap();
        assert_eq!(group.sql, "ALTER GROUP app ADD USER web");
        assert_eq!(group.dropped, ["membership of postgres"]);
    }

    #[test]
    fn only_allowed_extensions_are_delegated() {
        let allowed = delegated(
            "CREATE EXTENSION IF NOT EXISTS dblink SCHEMA x",
            &["dblink"],
        );
        assert_eq!(
            allowed.unwrap().sql,
            "CREATE EXTENSION IF NOT EXISTS dblink SCHEMA x"
        );
        assert!(delegated("CREATE EXTENSION \"dblink\"", &["dblink"]).is_some());
        assert_eq!(delegated("CREATE EXTENSION dblink", &[]), None);
        assert_eq!(delegated("CREATE EXTENSION pgcrypto", &["dblink"]), None);
        assert_eq!(delegated("CREATE TABLE role (x int)", &[]), None);
        assert_eq!(delegated("GRANT SELECT ON t TO anon", &[]), None);
    }

    #[test]
    fn roles_lose_dangerous_attributes_and_memberships() {
        let role = delegated(
            "CREATE /* x */ ROLE evil WITH SUPERUSER LOGIN CREATEROLE BYPASSRLS REPLICATION PASSWORD 'p' IN ROLE pg_execute_server_program, app",
            &[],
        )
        .unwrap();
        assert_eq!(role.sql, "CREATE ROLE evil WITH LOGIN IN ROLE app");
        assert_eq!(
            role.dropped,
            [
                "SUPERUSER",
                "CREATEROLE",
                "BYPASSRLS",
                "REPLICATION",
                "PASSWORD",
                "IN ROLE pg_execute_server_program"
            ]
        );
        let plain = delegated("create role anon nologin noinherit", &[]).unwrap();
        assert_eq!(plain.sql, "create role anon nologin noinherit");
        assert!(plain.dropped.is_empty());
        let in_superuser = delegated("CREATE USER x IN ROLE postgres", &[]).unwrap();
        assert_eq!(in_superuser.sql, "CREATE USER x");
        assert_eq!(
            delegated("CREATE ROLE migagent_apply", &[]).unwrap().sql,
            ""
        );
    }

    #[test]
    fn grants_of_protected_roles_are_dropped() {
        let grant = delegated(
            "GRANT pg_read_server_files, anon TO authenticator WITH ADMIN OPTION",
            &[],
        )
        .unwrap();
        assert_eq!(grant.sql, "GRANT anon TO authenticator WITH ADMIN OPTION");
        assert_eq!(grant.dropped, ["membership of pg_read_server_files"]);
        let none_left = delegated("GRANT postgres TO migagent_apply", &[]).unwrap();
        assert_eq!(none_left.sql, "");
        let revoke = delegated("REVOKE anon FROM authenticator", &[]).unwrap();
        assert_eq!(revoke.sql, "REVOKE anon FROM authenticator");
        let drop = delegated("DROP ROLE IF EXISTS anon, migagent_apply", &[]).unwrap();
        assert_eq!(drop.sql, "DROP ROLE IF EXISTS anon");
    }

    #[test]
    fn superuser_errors_say_so_and_others_do_not() {
        let copy = explain(
            "42501",
            "must be superuser or have privileges of the pg_execute_server_program role to COPY to or from an external program",
            None,
        )
        .unwrap();
        assert!(copy.contains("managed database"), "{copy}");
        assert!(explain("42501", "permission denied for function pg_read_file", None).is_some());
        assert!(explain(
            "42501",
            "permission denied to set parameter \"shared_preload_libraries\"",
            None
        )
        .is_some());
        let extension = explain(
            "42501",
            "permission denied to create extension \"dblink\"",
            None,
        )
        .unwrap();
        assert!(
            extension.contains("`--shadow-extension dblink`")
                && extension.contains("`[shadow] extensions = [\"dblink\"]`"),
            "{extension}"
        );
        let missing = explain("0A000", "extension \"pg_net\" is not available", None).unwrap();
        assert!(
            missing.contains("does not have the extension pg_net installed")
                && missing.contains("`--shadow-extension pg_net`"),
            "{missing}"
        );
        assert!(explain("42501", "permission denied for table t", None).is_none());
        assert!(explain(
            "57014",
            "canceling statement due to statement timeout",
            None
        )
        .unwrap()
        .contains("--statement-timeout"));
        assert!(explain("42P07", "relation exists", None).is_none());
    }
}
