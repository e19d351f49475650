//! Int/smallint/serial primary or foreign keys.

use super::{Category, Diagnostic, Rule, Severity, StatementContext};

pub const RULE: Rule = Rule {
    id: "prefer-bigint",
    category: Category::Hygiene,
    default_severity: Severity::Info,
    summary: "int/smallint/serial primary or foreign keys",
    doc: include_str!("../../rules/prefer-bigint.md"),
    check,
};

fn check(cx: &StatementContext, out: &mut Vec<Diagnostic>) {
    let _ = (cx, out);
}

#[cfg(test)]
mod probe_tmp {
    #[test]
    fn probe() {
        use crate::sql::{parse_text, Kind};
        let mut n = 0;
        let mut bad = 0;
        for entry in std::process::Command::new("find")
            .args(["/work/shared/corpus", "-name", "*.sql"])
            .output()
            .unwrap()
            .stdout
            .split(|b| *b == b'\n')
        {
            let path = String::from_utf8_lossy(entry).to_string();
            if path.is_empty() {
                continue;
            }
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            for s in parse_text(&text)
                .statements
                .iter()
                .flat_map(|s| std::iter::once(s).chain(s.nested.iter()))
            {
                if matches!(s.class.kind, Kind::CreateTable | Kind::AlterTable) {
                    n += 1;
                    if s.ast.is_none() {
                        bad += 1;
                        let sql = s.sql(&text);
                        eprintln!(
                            "{path}: {:?} :: {}",
                            s.parse_error,
                            &sql[..sql.len().min(200)].replace('\n', " ")
                        );
                    }
                }
            }
        }
        eprintln!("total {n} unparsed {bad}");
    }
}
