//! A server the user gives by URL (`--shadow postgres://…`): what migagent checks before it applies
//! untrusted migrations there, and how a run stakes its claim so that later runs can drop what a dead
//! run left behind.
//!
//! - **Privileges.** The migrations under review run with the URL role's privileges. A superuser, a
//!   member of `pg_execute_server_program`, `pg_read_server_files` or `pg_write_server_files`, or
//!   (before PostgreSQL 16, where it can grant itself those roles) a role with CREATEROLE is refused
//!   unless the user accepts it (`--shadow-superuser`).
//! - **Claim.** Each run holds a session-level advisory lock keyed by its id on its admin connection for
//!   as long as it runs; `pg_locks` shows it to every other session on the server, from any machine.
//!   Every database the run creates is named `migagent_shadow_<id>_<n>` and carries a comment naming
//!   the run. The lock is taken before the first database is created and released only when the admin
//!   connection closes, after the run dropped its databases.
//! - **Sweep.** At start, a run drops the databases whose comment names a run that holds no lock: that
//!   run ended without dropping them (killed with SIGKILL, its machine lost). A database without
//!   migagent's comment, or of a role the run cannot act for, is left alone.

use std::collections::HashSet;

use tokio_postgres::Client;

use crate::postgres::db_error;
use crate::schema::naming::quote_ident;
use crate::shadow::session::{drop_database_sql, random_suffix, ServerVersion, ShadowError};

/// Every database migagent creates on a server starts with this.
pub const DATABASE_PREFIX: &str = "migagent_shadow_";

/// Roles whose members reach beyond the databases migagent creates, and what they allow.
const SERVER_ROLES: &[(&str, &str)] = &[
    (
        "pg_execute_server_program",
        "run programs on the database server",
    ),
    ("pg_read_server_files", "read the database server's files"),
    ("pg_write_server_files", "write the database server's files"),
];

/// This run on a user's server: its id, in its databases' names and its lock.
#[derive(Debug)]
pub struct UrlRun {
    /// Twelve hex digits.
    pub id: String,
    /// When the run claimed its id, by the server's clock, for the databases' comments.
    started: String,
}

/// Checks the URL role and the server, claims a run id, and drops the databases of dead runs.
/// Returns the run with what the user should hear (a privileged role accepted, leftovers dropped).
/// `server` names the server in messages.
pub async fn start(
    admin: &Client,
    version: ServerVersion,
    accept_privileged: bool,
    server: &str,
) -> Result<(UrlRun, Vec<String>), ShadowError> {
    let mut warnings = Vec::new();
    if let Some(warning) = check_privileges(admin, version, accept_privileged, server).await? {
        warnings.push(warning);
    }
    check_string_syntax(admin, server).await?;
    let (id, started) = claim(admin).await?;
    warnings.extend(sweep(admin, version).await);
    Ok((UrlRun { id, started }, warnings))
}

/// What the URL role may do beyond the databases migagent creates, as reasons ("is a superuser").
async fn privileges(
    admin: &Client,
    version: ServerVersion,
) -> Result<(String, Vec<String>), ShadowError> {
    let row = admin
        .query_one(
            "SELECT current_user::text, \
               (SELECT rolsuper FROM pg_roles WHERE rolname = current_user), \
               ARRAY(SELECT rolname::text FROM pg_roles \
                     WHERE rolsuper AND pg_has_role(current_user, oid, 'MEMBER') ORDER BY 1), \
               EXISTS (SELECT FROM pg_roles r WHERE r.rolcreaterole AND pg_has_role(current_user, r.oid, 'MEMBER')), \
               ARRAY(SELECT rolname::text FROM pg_roles \
                     WHERE rolname = ANY($1) AND pg_has_role(current_user, oid, 'MEMBER') ORDER BY 1)",
            &[&SERVER_ROLES.iter().map(|(role, _)| *role).collect::<Vec<_>>()],
        )
        .await
        .map_err(|e| {
            ShadowError(format!(
                "cannot read the privileges of the shadow's role: {}",
                db_error(&e)
            ))
        })?;
    let role: String = row.get(0);
    // A superuser is a member of every role: that says it all.
    if row.get::<_, bool>(1) {
        return Ok((role, vec!["is a superuser".to_owned()]));
    }
    let superusers: Vec<String> = row.get(2);
    if !superusers.is_empty() {
        let reason = format!(
            "is a member of the superuser role {}, so SET ROLE makes it a superuser",
            superusers.join(", ")
        );
        return Ok((role, vec![reason]));
    }
    let mut reasons: Vec<String> = row
        .get::<_, Vec<String>>(4)
        .into_iter()
        .filter_map(|member| {
            let (_, allows) = SERVER_ROLES.iter().find(|(role, _)| *role == member)?;
            Some(format!("is a member of {member}, so it can {allows}"))
        })
        .collect();
    if row.get::<_, bool>(3) && version.major < 16 {
        reasons.push(format!(
            "has CREATEROLE, with which PostgreSQL {} lets it grant itself pg_execute_server_program",
            version.major
        ));
    }
    Ok((role, reasons))
}

/// Refuses a role that reaches beyond its databases, unless the user accepts it: then the warning.
async fn check_privileges(
    admin: &Client,
    version: ServerVersion,
    accept_privileged: bool,
    server: &str,
) -> Result<Option<String>, ShadowError> {
    let (role, reasons) = privileges(admin, version).await?;
    if reasons.is_empty() {
        return Ok(None);
    }
    let what = format!(
        "the shadow's role {} {}",
        quote_ident(&role),
        reasons.join(", and ")
    );
    if accept_privileged {
        return Ok(Some(format!(
            "--shadow-superuser: {what}. The migrations under review run with its privileges on {server}: a hostile one can run programs there, read or write its files and change its other databases. Use this only on a server that holds nothing else"
        )));
    }
    Err(ShadowError(format!(
        "{what}. migagent applies the migrations under review with the URL role's privileges, and a migration from an untrusted pull request could then run programs on {server}, read or write its files, or change its other databases. \
         Connect as a role that may only create databases: CREATE ROLE migagent_ci LOGIN CREATEDB PASSWORD '…'; \
         or, on a throwaway server that holds nothing else (a CI service container), accept the risk with --shadow-superuser (superuser = true under [shadow])"
    )))
}

/// migagent reads string literals as PostgreSQL does with `standard_conforming_strings` on (the
/// default since 9.1); with it off the server would split some migrations into other statements than
/// the ones migagent checked.
async fn check_string_syntax(admin: &Client, server: &str) -> Result<(), ShadowError> {
    let row = admin
        .query_one("SELECT current_setting('standard_conforming_strings')", &[])
        .await
        .map_err(|e| {
            ShadowError(format!(
                "cannot read the server's settings: {}",
                db_error(&e)
            ))
        })?;
    if row.get::<_, String>(0) == "on" {
        return Ok(());
    }
    Err(ShadowError(format!(
        "{server} has standard_conforming_strings = off: the server would read backslashes in the migrations' strings as escapes and could run statements migagent did not check. Turn it on for the shadow's role (ALTER ROLE … SET standard_conforming_strings = on), or use --shadow auto"
    )))
}

/// The advisory lock key of a run id (48 bits, so always positive).
fn lock_key(id: &str) -> Option<i64> {
    let hex = id.len() == 12 && id.bytes().all(|b| b.is_ascii_hexdigit());
    hex.then(|| i64::from_str_radix(id, 16).ok()).flatten()
}

/// Picks a run id no live run holds and locks it for the rest of the session; returns it with the
/// server's time.
async fn claim(admin: &Client) -> Result<(String, String), ShadowError> {
    let fail = |e: tokio_postgres::Error| {
        ShadowError(format!(
            "cannot take the run's advisory lock on the shadow server: {}",
            db_error(&e)
        ))
    };
    for _ in 0..8 {
        let id = random_suffix();
        let Some(key) = lock_key(&id) else { continue };
        let row = admin
            .query_one(
                "SELECT pg_try_advisory_lock($1), \
                        to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS \"UTC\"')",
                &[&key],
            )
            .await
            .map_err(fail)?;
        if row.get::<_, bool>(0) {
            return Ok((id, row.get(1)));
        }
    }
    Err(ShadowError(
        "cannot find a free run id on the shadow server: every advisory lock tried is held"
            .to_owned(),
    ))
}

/// Marks a database the run created with the run's id, for the sweeps of later runs.
pub async fn record(admin: &Client, name: &str, run: &UrlRun) -> Result<(), ShadowError> {
    let comment = comment(&run.id, &run.started);
    let sql = format!(
        "COMMENT ON DATABASE {} IS '{}'",
        quote_ident(name),
        comment.replace('\'', "''")
    );
    admin.batch_execute(&sql).await.map_err(|e| {
        ShadowError(format!(
            "cannot mark the shadow database {name} as this run's: {}",
            db_error(&e)
        ))
    })
}

/// The comment on a run's databases; [`comment_run`] reads the id back.
fn comment(id: &str, started: &str) -> String {
    format!(
        "migagent shadow database of run {id} (started {started}); dropped when that run ends, or by a later migagent run once that run is gone"
    )
}

/// The run id in a database's name and comment, when both are migagent's and agree.
fn comment_run<'a>(name: &str, comment: &'a str) -> Option<&'a str> {
    let id = comment
        .strip_prefix("migagent shadow database of run ")?
        .get(..12)?;
    let named = name.strip_prefix(DATABASE_PREFIX)?.strip_prefix(id)?;
    (named.starts_with('_') && lock_key(id).is_some()).then_some(id)
}

/// Drops the databases of runs that hold no lock; returns what the user should hear (what was
/// dropped, what could not be). Best effort: a sweep that fails costs only disk space.
async fn sweep(admin: &Client, version: ServerVersion) -> Vec<String> {
    // Databases first, locks second: a run locks before it creates a database, so a live run's
    // database listed here has its lock in the list read after.
    let Ok(databases) = admin
        .query(
            "SELECT d.datname::text, shobj_description(d.oid, 'pg_database') FROM pg_database d \
             WHERE left(d.datname::text, length($1::text)) = $1::text AND pg_has_role(d.datdba, 'USAGE')",
            &[&DATABASE_PREFIX],
        )
        .await
    else {
        return Vec::new();
    };
    let Ok(locks) = admin
        .query(
            "SELECT (classid::bigint << 32) | objid::bigint FROM pg_locks \
             WHERE locktype = 'advisory' AND objsubid = 1 AND granted",
            &[],
        )
        .await
    else {
        return Vec::new();
    };
    let held: HashSet<i64> = locks.iter().map(|row| row.get(0)).collect();
    let (mut dropped, mut failed) = (Vec::new(), Vec::new());
    for row in &databases {
        let name: String = row.get(0);
        let Some(comment) = row.get::<_, Option<String>>(1) else {
            continue;
        };
        let dead = comment_run(&name, &comment)
            .and_then(lock_key)
            .is_some_and(|key| !held.contains(&key));
        if !dead {
            continue;
        }
        match admin
            .batch_execute(&drop_database_sql(version, &name))
            .await
        {
            Ok(()) => dropped.push(name),
            Err(e) => failed.push(format!("{name} ({})", db_error(&e))),
        }
    }
    let mut warnings = Vec::new();
    if !dropped.is_empty() {
        warnings.push(format!(
            "dropped {} shadow database(s) left on the server by migagent runs that ended without dropping them: {}",
            dropped.len(),
            dropped.join(", ")
        ));
    }
    if !failed.is_empty() {
        warnings.push(format!(
            "could not drop shadow databases left by migagent runs that ended: {}; drop them by hand",
            failed.join("; ")
        ));
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_are_read_back_only_from_matching_names_and_comments() {
        let text = comment("0123456789ab", "2024-01-01 00:00:00 UTC");
        assert_eq!(
            comment_run("migagent_shadow_0123456789ab_0", &text),
            Some("0123456789ab")
        );
        // The name and the comment must name the same run.
        assert_eq!(comment_run("migagent_shadow_ffffffffffff_0", &text), None);
        assert_eq!(comment_run("migagent_shadow_0123456789ab", &text), None);
        assert_eq!(comment_run("app", &text), None);
        assert_eq!(
            comment_run("migagent_shadow_0123456789ab_0", "a database of the app"),
            None
        );
        assert_eq!(
            comment_run(
                "migagent_shadow_zzzzzzzzzzzz_0",
                &comment("zzzzzzzzzzzz", "now")
            ),
            None
        );
    }

    #[test]
    fn lock_keys_are_the_ids_bits() {
        assert_eq!(lock_key("000000000001"), Some(1));
        assert_eq!(lock_key("ffffffffffff"), Some(0xffff_ffff_ffff));
        assert_eq!(lock_key("fff"), None);
        assert_eq!(lock_key("-00000000001"), None);
    }
}
