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
    /// What runs; empty when nothing is left to run once sanitized.
    pub sql: String,
    /// What was left out, for a notice.
    pub dropped: Vec<String>,
}

/// How `statement` of `text` runs on a least-privileged shadow: `None` as written by [`APPLY_ROLE`].
pub fn delegation(text: &str, statement: &Statement, extensions: &[String]) -> Option<Delegation> {
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
            extensions.contains(&name).then(|| Delegation {
                sql: statement.sql(text).to_owned(),
                dropped: Vec::new(),
            })
        }
        ("create", "role" | "user" | "group") => Some(sanitize_create_role(text, tokens)),
        ("grant", _) | ("revoke", _) if !has_word(text, tokens, "on") => {
            Some(sanitize_role_grant(text, tokens))
        }
        ("drop", "role" | "user" | "group") => Some(sanitize_drop_role(text, tokens)),
        _ => None,
    }
}

/// A role a migration must never join, create, drop or change: predefined roles (`pg_*`), the
/// cluster's superuser and the role migrations run as.
fn is_protected_role(name: &str) -> bool {
    name.starts_with("pg_") || name == SUPERUSER || name == APPLY_ROLE
}

/// `CREATE ROLE name [WITH] option …` without the attributes in [`DROPPED_ATTRIBUTES`], passwords, and
/// memberships in protected roles.
fn sanitize_create_role(text: &str, tokens: &[Token]) -> Delegation {
    let mut kept: Vec<String> = tokens[..3.min(tokens.len())]
        .iter()
        .map(|t| text[t.range.clone()].to_owned())
        .collect();
    let mut dropped = Vec::new();
    let mut i = 3;
    while i < tokens.len() {
        let current = word(text, tokens, i).unwrap_or_default();
        let raw = &text[tokens[i].range.clone()];
        match current.as_str() {
            attribute if DROPPED_ATTRIBUTES.contains(&attribute) => {
                dropped.push(raw.to_ascii_uppercase());
                i += 1;
            }
            "encrypted" | "unencrypted" | "password" => {
                let value = if current == "password" { i + 1 } else { i + 2 };
                dropped.push("PASSWORD".to_owned());
                i = value + 1;
            }
            "in" | "role" | "admin" | "user" => {
                let list_start = if current == "in" { i + 2 } else { i + 1 };
                let (names, end) = name_list(text, tokens, list_start);
                let (protected, allowed): (Vec<_>, Vec<_>) = names
                    .into_iter()
                    .partition(|(name, _)| is_protected_role(name) && current == "in");
                dropped.extend(protected.iter().map(|(_, raw)| format!("IN ROLE {raw}")));
                if !allowed.is_empty() {
                    kept.extend(
                        tokens[i..list_start]
                            .iter()
                            .map(|t| text[t.range.clone()].to_owned()),
                    );
                    let list: Vec<&str> = allowed.iter().map(|(_, raw)| *raw).collect();
                    kept.push(list.join(", "));
                }
                i = end;
            }
            _ => {
                kept.push(raw.to_owned());
                i += 1;
            }
        }
    }
    let name = name(text, tokens, 2).unwrap_or_default();
    if is_protected_role(&name) {
        return Delegation {
            sql: String::new(),
            dropped: vec![format!(
                "the whole statement (the role {name} is migagent's own or predefined)"
            )],
        };
    }
    Delegation {
        sql: kept.join(" "),
        dropped,
    }
}

/// `GRANT role, … TO grantee, …` / `REVOKE role, … FROM …` without protected roles on either side.
fn sanitize_role_grant(text: &str, tokens: &[Token]) -> Delegation {
    let verb = &text[tokens[0].range.clone()];
    let mut start = 1;
    // REVOKE ADMIN OPTION FOR role …
    if word(text, tokens, 1).as_deref() == Some("admin") {
        start = 4;
    }
    let (roles, end) = name_list(text, tokens, start);
    let (protected, roles): (Vec<_>, Vec<_>) = roles
        .into_iter()
        .partition(|(name, _)| is_protected_role(name));
    let to = end;
    let (grantees, rest) = name_list(text, tokens, to + 1);
    let (protected_grantees, grantees): (Vec<_>, Vec<_>) = grantees
        .into_iter()
        .partition(|(name, _)| name == SUPERUSER || name.starts_with("pg_"));
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
    parts.extend(tokens[1..start].iter().map(|t| &text[t.range.clone()]));
    let role_list: Vec<&str> = roles.iter().map(|(_, raw)| *raw).collect();
    let grantee_list: Vec<&str> = grantees.iter().map(|(_, raw)| *raw).collect();
    let joined_roles = role_list.join(", ");
    let joined_grantees = grantee_list.join(", ");
    let keyword = tokens.get(to).map_or("TO", |t| &text[t.range.clone()]);
    let tail: Vec<&str> = tokens[rest.min(tokens.len())..]
        .iter()
        .map(|t| &text[t.range.clone()])
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
    let head: Vec<&str> = tokens[..start]
        .iter()
        .map(|t| &text[t.range.clone()])
        .collect();
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
        names.push((resolved, &text[tokens[i].range.clone()]));
        i += 1;
        if tokens.get(i).is_some_and(|t| &text[t.range.clone()] == ",") {
            i += 1;
        } else {
            break;
        }
    }
    (names, i)
}

/// The lower-cased word at `i`.
fn word(text: &str, tokens: &[Token], i: usize) -> Option<String> {
    let token = tokens.get(i)?;
    (token.kind == TokenKind::Word).then(|| text[token.range.clone()].to_ascii_lowercase())
}

fn has_word(text: &str, tokens: &[Token], keyword: &str) -> bool {
    (0..tokens.len()).any(|i| word(text, tokens, i).as_deref() == Some(keyword))
}

/// The name at `i` as PostgreSQL resolves it: an unquoted word folded to lower case, a quoted identifier
/// as written.
fn name(text: &str, tokens: &[Token], i: usize) -> Option<String> {
    let token = tokens.get(i)?;
    let raw = &text[token.range.clone()];
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

/// What to add to the server's error when a statement failed for want of superuser on the
/// least-privileged shadow, or was stopped by one of the shadow's limits; `None` for other errors.
pub fn explain(sqlstate: &str, message: &str, hint: Option<&str>) -> Option<String> {
    const MANAGED: &str = "as on a managed database (RDS, Cloud SQL, Supabase), where no migration runs as superuser either";
    match sqlstate {
        "42501" if message.starts_with("permission denied to create extension") => Some(format!(
            "; this extension needs superuser to install, {MANAGED}. If production has it installed by an admin and you trust it, allow it on the shadow with --shadow-extension NAME (or `[shadow] extensions = [\"NAME\"]`)"
        )),
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
            "; the shadow ended the session: the statement outran the statement timeout (--statement-timeout) even after it was cancelled, or grew the shadow beyond its size cap (--shadow-max-size)".to_owned(),
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
        delegation(sql, &parsed.statements[0], &extensions)
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
        assert!(extension.contains("--shadow-extension"), "{extension}");
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
