//! Suppression comments: `-- migagent:ignore rule-a, rule-b -- reason` on the line before a statement
//! (or at the end of its last line) and `-- migagent:ignore-file rule-a -- reason` anywhere in the file.

use std::ops::Range;

use crate::sql::{LineIndex, Statement};

/// The suppressions of one file.
#[derive(Debug, Default)]
pub struct Suppressions {
    /// Rules ignored in the whole file.
    file: Vec<String>,
    /// Rules ignored for one statement, by statement index.
    statements: Vec<(usize, String)>,
    /// Problems with the directives themselves (unknown rule ids), with their byte offsets.
    pub problems: Vec<(usize, String)>,
}

impl Suppressions {
    /// Reads the directives from the file's comments and attaches each statement-level one to the
    /// statement it precedes or ends. `lines` indexes `text`.
    pub fn parse(
        text: &str,
        lines: &LineIndex,
        comments: &[Range<usize>],
        statements: &[Statement],
        known_rule: impl Fn(&str) -> bool,
    ) -> Self {
        let line_of = |offset: usize| lines.position(text, offset).line;
        let mut out = Suppressions::default();
        for comment in comments {
            let Some(directive) = Directive::parse(&text[comment.clone()]) else {
                continue;
            };
            for rule in &directive.rules {
                if !known_rule(rule) {
                    out.problems.push((
                        comment.start,
                        format!(
                            "`migagent:{}` names an unknown rule `{rule}`; it suppresses nothing (see `migagent rules`)",
                            if directive.whole_file { "ignore-file" } else { "ignore" }
                        ),
                    ));
                }
            }
            if directive.whole_file {
                out.file.extend(directive.rules);
                continue;
            }
            let comment_line = line_of(comment.start);
            // A trailing comment on the line where a statement ends belongs to that statement;
            // otherwise the directive belongs to the next statement.
            let target = statements
                .iter()
                .position(|s| s.range.end <= comment.start && line_of(s.range.end) == comment_line)
                .or_else(|| statements.iter().position(|s| s.range.start >= comment.end));
            if let Some(index) = target {
                out.statements
                    .extend(directive.rules.into_iter().map(|rule| (index, rule)));
            }
        }
        out
    }

    /// Whether findings of `rule` on statement `index` are suppressed.
    pub fn is_suppressed(&self, rule: &str, index: usize) -> bool {
        self.file.iter().any(|r| r == rule)
            || self
                .statements
                .iter()
                .any(|(i, r)| *i == index && r == rule)
    }
}

struct Directive {
    whole_file: bool,
    rules: Vec<String>,
}

impl Directive {
    /// `-- migagent:ignore a, b -- reason` or `/* migagent:ignore-file a */`.
    fn parse(comment: &str) -> Option<Directive> {
        let body = comment
            .strip_prefix("--")
            .or_else(|| comment.strip_prefix("/*").map(|c| c.trim_end_matches("*/")))?
            .trim_start();
        let rest = body.strip_prefix("migagent:")?;
        let (whole_file, rest) = match rest.strip_prefix("ignore-file") {
            Some(rest) => (true, rest),
            None => (false, rest.strip_prefix("ignore")?),
        };
        if !rest.is_empty() && !rest.starts_with(char::is_whitespace) {
            return None;
        }
        let list = rest.split("--").next().unwrap_or_default();
        let rules = list
            .split([',', ' ', '\t'])
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(str::to_owned)
            .collect();
        Some(Directive { whole_file, rules })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql;

    fn suppressions(sql: &str) -> (Suppressions, usize) {
        let parsed = sql::parse_text(sql);
        let lines = LineIndex::new(sql);
        let s = Suppressions::parse(sql, &lines, &parsed.comments, &parsed.statements, |r| {
            r != "no-such-rule"
        });
        (s, parsed.statements.len())
    }

    #[test]
    fn line_before_and_trailing() {
        let (s, _) = suppressions(
            "-- migagent:ignore drop-table -- archived\nDROP TABLE a;\n\
             DROP TABLE b; -- migagent:ignore drop-table, rename-table\nDROP TABLE c;",
        );
        assert!(s.is_suppressed("drop-table", 0));
        assert!(s.is_suppressed("drop-table", 1));
        assert!(s.is_suppressed("rename-table", 1));
        assert!(!s.is_suppressed("drop-table", 2));
    }

    #[test]
    fn whole_file_and_unknown_rules() {
        let (s, _) = suppressions(
            "DROP TABLE a;\n/* migagent:ignore-file drop-table */\n-- migagent:ignore no-such-rule\nDROP TABLE b;",
        );
        assert!(s.is_suppressed("drop-table", 0));
        assert!(s.is_suppressed("drop-table", 1));
        assert_eq!(s.problems.len(), 1);
        assert!(s.problems[0].1.contains("`no-such-rule`"));
    }

    #[test]
    fn other_comments_are_not_directives() {
        let (s, _) = suppressions("-- migagent:ignored drop-table\nDROP TABLE a;");
        assert!(!s.is_suppressed("drop-table", 0));
    }
}
