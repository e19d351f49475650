//! A statement sqlparser could not parse is reviewed from its leading keywords only: rules that need its
//! full syntax cannot check it. psql backslash commands are reported too: they are not SQL.

use super::syntax::location_offset;
use super::{Category, Diagnostic, Kinds, Rule, Severity, StatementContext};
use crate::sql::Kind;

pub const RULE: Rule = Rule {
    id: "unparsed-statement",
    category: Category::Parser,
    default_severity: Severity::Info,
    size_graded: false,
    summary: "sqlparser could not parse the statement; a fallback classification was used",
    doc: include_str!("../../rules/unparsed-statement.md"),
    check,
    kinds: Kinds::All,
};

/// Longest stretch of a psql meta-command quoted in a message.
const MAX_QUOTED_CHARS: usize = 60;

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    let statement = cx.statement;
    // A DO block of plain statements is read statement by statement: the rules checked them.
    if statement.ast().is_some() || !statement.nested.is_empty() {
        return;
    }
    if statement.class.kind == Kind::PsqlMeta {
        let command = quote_start(cx.sql());
        out.push(
            cx.diagnostic(
                statement.range.start,
                None,
                format!(
                "psql meta-command `{command}` is not SQL: only psql understands it, and most \
                 migration tools send the file to the server themselves and reject it or fail on it"
            ),
                "keep it only if this file is always run with psql; otherwise remove it \
             (pass psql options such as ON_ERROR_STOP on the command line instead)"
                    .into(),
            ),
        );
        return;
    }
    let error = statement
        .parse_error()
        .unwrap_or("no syntax tree was produced");
    let (offset, reason) = match sqlparser_error(cx, error) {
        Some((offset, detail)) => (offset, format!("sqlparser could not parse it: {detail}")),
        None => (statement.range.start, format!("it was not parsed: {error}")),
    };
    let class = &statement.class;
    let classified = match (class.kind, &class.target) {
        (Kind::Other, _) => format!(
            "migagent does not recognise its leading keywords ({}) either",
            class.label
        ),
        (_, Some(target)) => format!(
            "migagent classified it as {} on {} from its keywords",
            class.label,
            cx.qualified(target)
        ),
        (_, None) => format!(
            "migagent classified it as {} from its keywords",
            class.label
        ),
    };
    // With the shadow running, its trace of this statement is in the report already (unless the
    // shadow does not get to apply it: see `not_applied`).
    let (shadow, help) = if cx.traced { TRACED } else { UNTRACED };
    out.push(cx.diagnostic(
        offset,
        None,
        format!(
            "{reason}; {classified}, so rules that need its full syntax could not check it ({shadow})"
        ),
        format!(
            "{help}; if it is fine, silence this note with `-- migagent:ignore unparsed-statement -- \
             <reason>` on the line before it"
        ),
    ));
}

/// What a finding says of the shadow, in its message and at the start of its help: when the shadow
/// traced the statement, and when no shadow ran.
const TRACED: (&str, &str) = (
    "the shadow database applied it: its trace shows the locks it really took",
    "check this statement by hand against its trace",
);
const UNTRACED: (&str, &str) = (
    "the shadow database, when enabled, still applies it and traces what it does",
    "check this statement by hand, or review with a shadow database (`--shadow`) to see the \
     locks it really takes",
);

/// The shadow ran but has no trace of the statement's locks (`why`: it failed there, or an earlier
/// statement did): a finding of this rule says so instead of pointing at that trace.
pub fn not_applied(message: &mut String, help: &mut String, why: &str) {
    if let Some(start) = message.rfind(TRACED.0) {
        message.replace_range(start..start + TRACED.0.len(), why);
    }
    if let Some(rest) = help.strip_prefix(TRACED.1) {
        *help = format!("check this statement by hand{rest}");
    }
}

/// The first line of a statement, shortened for a message.
fn quote_start(sql: &str) -> String {
    let line = sql.lines().next().unwrap_or_default().trim_end();
    if line.chars().count() > MAX_QUOTED_CHARS {
        let short: String = line.chars().take(MAX_QUOTED_CHARS).collect();
        format!("{short}…")
    } else {
        line.to_owned()
    }
}

/// sqlparser's error without its prefix, and the file offset of the position it names
/// (`… at Line: 1, Column: 23`, relative to the statement).
fn sqlparser_error<'e>(cx: &StatementContext, error: &'e str) -> Option<(usize, &'e str)> {
    let error = error.strip_prefix("sql parser error: ")?;
    let (detail, at) = error.rsplit_once(" at Line: ")?;
    let (line, column) = at.split_once(", Column: ")?;
    let offset = location_offset(cx, line.trim().parse().ok()?, column.trim().parse().ok()?)?;
    Some((offset, detail))
}

#[cfg(test)]
mod tests {
    use crate::rules::testing::check_rule;

    #[test]
    fn silent_on_do_blocks_whose_statements_were_read() {
        let sql =
            "DO $$ BEGIN\n ALTER TABLE a ADD CONSTRAINT f FOREIGN KEY (b) REFERENCES c (id);\n\
                   EXCEPTION\n WHEN duplicate_object THEN null;\nEND $$;";
        assert_eq!(check_rule("unparsed-statement", &[], sql), "");
        let plpgsql = "DO $$ BEGIN IF true THEN PERFORM 1; END IF; END $$;";
        assert!(check_rule("unparsed-statement", &[], plpgsql).contains("classified it as DO"));
    }

    #[test]
    fn reports_the_parse_error_at_its_position_and_the_classification() {
        assert_eq!(
            check_rule(
                "unparsed-statement",
                &[],
                "ALTER TABLE users SET SCHEMA archive;"
            ),
            "\
info[unparsed-statement]: sqlparser could not parse it: Expected: (, found: SCHEMA; migagent classified it as ALTER TABLE on public.users from its keywords, so rules that need its full syntax could not check it (the shadow database, when enabled, still applies it and traces what it does)
 --> migration.sql:1:23
  |
1 | ALTER TABLE users SET SCHEMA archive;
  |                       ^^^^^^^^^^^^^^
  |
  = help: check this statement by hand, or review with a shadow database (`--shadow`) to see the locks it really takes; if it is fine, silence this note with `-- migagent:ignore unparsed-statement -- <reason>` on the line before it

"
        );
    }

    #[test]
    fn positions_on_later_lines_of_a_statement_map_to_the_file() {
        let report = check_rule(
            "unparsed-statement",
            &[],
            "SELECT 1;\nALTER TABLE users\n  SET SCHEMA archive;",
        );
        assert!(report.contains("--> migration.sql:3:7"), "{report}");
    }

    #[test]
    fn unknown_leading_keywords_are_said_so() {
        let report = check_rule("unparsed-statement", &[], "FROBNICATE the table;");
        assert!(
            report.contains("does not recognise its leading keywords (FROBNICATE) either"),
            "{report}"
        );
    }

    #[test]
    fn psql_meta_commands_are_not_sql() {
        let report = check_rule(
            "unparsed-statement",
            &[],
            "\\set ON_ERROR_STOP on\nCREATE TABLE t (id bigint);",
        );
        assert!(
            report.contains("psql meta-command `\\set ON_ERROR_STOP on` is not SQL"),
            "{report}"
        );
        assert!(report.contains("most migration tools"), "{report}");
        assert_eq!(
            report.matches("info[unparsed-statement]").count(),
            1,
            "{report}"
        );
    }

    #[test]
    fn names_the_target_it_classified() {
        let report = check_rule(
            "unparsed-statement",
            &[],
            "DROP INDEX CONCURRENTLY IF EXISTS t_idx;",
        );
        assert!(
            report.contains("classified it as DROP INDEX on public.t_idx from its keywords"),
            "{report}"
        );
        assert!(report.contains("--> migration.sql:1:25"), "{report}");
    }

    #[test]
    fn an_error_at_the_end_of_the_statement_is_reported() {
        let report = check_rule("unparsed-statement", &[], "CREATE TABLE t (");
        assert!(report.contains("info[unparsed-statement]"), "{report}");
    }

    #[test]
    fn silent_on_parsed_statements() {
        assert_eq!(
            check_rule(
                "unparsed-statement",
                &[],
                "CREATE TABLE t (id bigint);\nCREATE INDEX CONCURRENTLY t_idx ON t (id);\nSELECT 1;"
            ),
            ""
        );
    }
}
