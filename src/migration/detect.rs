//! Which tool's layout a directory has, and how each layout is recognised (for error messages).

use super::dir::Dir;
use super::{atlas, dbmate, diesel, drizzle, flyway, liquibase, numbered, prisma, supabase, Tool};

/// The layouts in detection order: the first whose marker the directory has wins. Layouts with a
/// marker file come first; golang-migrate/sqlx share one detector because only the files' contents
/// tell them apart; plain `*.sql` is the fallback.
const ORDER: [Tool; 11] = [
    Tool::Prisma,
    Tool::Drizzle,
    Tool::Atlas,
    Tool::Diesel,
    Tool::Flyway,
    Tool::Supabase,
    Tool::Dbmate,
    Tool::GolangMigrate,
    Tool::Sqlx,
    Tool::Liquibase,
    Tool::Plain,
];

/// The tool whose layout `dir` has, or `None` when it holds nothing that looks like a migration.
pub(super) fn detect(dir: &Dir) -> Option<Tool> {
    ORDER.into_iter().find(|&tool| has_layout(dir, tool))
}

fn has_layout(dir: &Dir, tool: Tool) -> bool {
    match tool {
        Tool::Prisma => prisma::detect(dir),
        Tool::Drizzle => drizzle::detect(dir),
        Tool::Atlas => atlas::detect(dir),
        Tool::Diesel => diesel::detect(dir),
        Tool::Flyway => flyway::detect(dir),
        Tool::Supabase => supabase::detect(dir),
        Tool::Dbmate => dbmate::detect(dir),
        Tool::GolangMigrate | Tool::Sqlx => numbered::detect(dir) == Some(tool),
        Tool::Liquibase => liquibase::detect(dir),
        Tool::Plain => dir.sql_files().next().is_some(),
    }
}

/// What a layout's migrations look like, as told to a user whose directory or file did not match.
pub(super) fn looks_like(tool: Tool) -> &'static str {
    match tool {
        Tool::Prisma => "<name>/migration.sql folders",
        Tool::Drizzle => "<tag>.sql files listed in meta/_journal.json",
        Tool::Atlas => "<version>_<name>.sql files beside atlas.sum",
        Tool::Diesel => "<version>_<name>/up.sql folders",
        Tool::Flyway => "V<version>__<description>.sql or R__<description>.sql files",
        Tool::Supabase => "<timestamp>_<name>.sql files in supabase/migrations",
        Tool::Dbmate => "<version>_<name>.sql files with -- migrate:up markers",
        Tool::GolangMigrate => "<N>_<name>.up.sql files",
        Tool::Sqlx => "<N>_<name>.sql or <N>_<name>.up.sql files",
        Tool::Liquibase => "*.sql files headed --liquibase formatted sql",
        Tool::Plain => "*.sql files",
    }
}

/// The message for a directory in which no layout matched, listing what was looked for.
pub(super) fn nothing_found() -> String {
    let looked_for: Vec<String> = ORDER
        .iter()
        .map(|&tool| format!("{tool} ({})", looks_like(tool)))
        .collect();
    format!("no migrations found; looked for {}", looked_for.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tool_is_looked_for() {
        let message = nothing_found();
        for tool in Tool::ALL {
            assert!(message.contains(&format!("{tool} (")), "{tool}");
        }
    }
}
