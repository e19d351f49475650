//! Connection helpers shared by everything that talks to a PostgreSQL server (`migagent stats`, the shadow
//! database): connecting, and error and target descriptions that name the server's message and never
//! the password.

use tokio::task::JoinHandle;
use tokio_postgres::{Client, Config, NoTls};

/// Connects with `config`; the connection task runs on the caller's runtime and ends when the client
/// is dropped. `target` names what is connected to in the error ("the shadow database at "), before
/// `user@host:port/dbname`.
pub async fn connect(config: &Config, target: &str) -> Result<(Client, JoinHandle<()>), String> {
    let (client, connection) = config.connect(NoTls).await.map_err(|e| {
        format!(
            "cannot connect to {target}{}: {}; check that the server runs there and that the user may log in",
            describe(config),
            db_error(&e)
        )
    })?;
    let task = tokio::spawn(async move {
        // A connection that breaks shows up as an error on the client's next query.
        let _ = connection.await;
    });
    Ok((client, task))
}

/// A driver error with the server's message or the underlying cause (the plain `Display` says only
/// "db error" or "error connecting to server").
pub fn db_error(error: &tokio_postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        return format!("{}: {}", db.severity(), db.message());
    }
    match std::error::Error::source(error) {
        Some(cause) => format!("{error}: {cause}"),
        None => error.to_string(),
    }
}

/// Where a connection goes, without the password: `user@host:port/dbname`.
pub fn describe(config: &tokio_postgres::Config) -> String {
    let host = config
        .get_hosts()
        .iter()
        .map(|host| match host {
            tokio_postgres::config::Host::Tcp(name) => name.clone(),
            #[cfg(unix)]
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .collect::<Vec<_>>()
        .join(",");
    let port = match config.get_ports() {
        [] => "5432".to_owned(),
        ports => ports
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(","),
    };
    format!(
        "{}@{}:{}/{}",
        config.get_user().unwrap_or(""),
        host,
        port,
        config.get_dbname().unwrap_or("")
    )
}

/// The URL with any password replaced by `***`, for messages.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "the URL".to_owned();
    };
    // The authority ends at the first `/` or `?` after the userinfo: a password may hold a `/`.
    let query_start = rest.find('?').unwrap_or(rest.len());
    let host_start = rest[..query_start].rfind('@').map_or(0, |at| at + 1);
    let authority_end = rest[host_start..]
        .find(['/', '?'])
        .map_or(rest.len(), |end| host_start + end);
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{user}:***@{host}"),
            None => authority.to_owned(),
        },
        None => authority.to_owned(),
    };
    let tail = redact_query_password(tail);
    format!("{scheme}://{authority}{tail}")
}

/// `?password=…` in the query string is a password too.
fn redact_query_password(tail: &str) -> String {
    let Some((path, query)) = tail.split_once('?') else {
        return tail.to_owned();
    };
    let query: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some(("password", _)) => "password=***".to_owned(),
            _ => pair.to_owned(),
        })
        .collect();
    format!("{path}?{}", query.join("&"))
}
