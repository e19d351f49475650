//! `migagent init`: finds the project's migrations directories and writes a commented `migagent.toml`
//! that reviews them, and an example GitHub Actions workflow that runs the review on pull requests.

use std::fmt::Write;
use std::fs;
use std::path::{Path, PathBuf};

use crate::config;
use crate::files::{self, Existing};
use crate::migration::{self, DiscoverOptions, Tool};

/// Where the workflow is written.
pub const WORKFLOW_PATH: &str = ".github/workflows/migagent.yml";
/// The GitHub Action the workflow uses (this repository's `action.yml`).
pub const ACTION: &str = "migagent/migagent@main";

/// Directory names that hold migrations in the layouts migagent knows: `migrations` (most tools),
/// `migration` (Flyway's `db/migration`), `drizzle`, `changelog` (Liquibase).
const MIGRATION_DIR_NAMES: [&str; 4] = ["migrations", "migration", "drizzle", "changelog"];
/// Directories never searched: dependencies, build output, version control.
const SKIPPED_DIRS: [&str; 6] = ["node_modules", "target", "vendor", "dist", "build", "venv"];
/// How deep below the project root migrations are looked for (`src/main/resources/db/migration` is 5).
const MAX_DEPTH: usize = 5;

/// A migrations directory found in the project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Relative to the project root.
    pub dir: PathBuf,
    pub tool: Tool,
    pub migrations: usize,
}

/// What `init` should write.
#[derive(Debug, Clone, Copy)]
pub struct InitOptions {
    /// Replace files that exist.
    pub force: bool,
    /// Write only `migagent.toml`.
    pub no_workflow: bool,
}

/// Writes the files into `root` and returns what it did, line by line, for the user. Refuses, writing
/// nothing, when a file exists and `force` is off.
pub fn init(root: &Path, options: InitOptions) -> Result<String, String> {
    let found = find_migrations(root);
    let mut files = vec![(PathBuf::from(config::FILE_NAME), config_file(&found))];
    if !options.no_workflow {
        files.push((PathBuf::from(WORKFLOW_PATH), workflow_file(&found)));
    }
    let existing: Vec<String> = files
        .iter()
        .filter(|(path, _)| root.join(path).exists())
        .map(|(path, _)| path.display().to_string())
        .collect();
    if !existing.is_empty() && !options.force {
        return Err(format!(
            "{} already exist{}; nothing was written (--force replaces {})",
            existing.join(" and "),
            if existing.len() == 1 { "s" } else { "" },
            if existing.len() == 1 { "it" } else { "them" },
        ));
    }
    let mut said = describe_found(&found);
    let existing_files = if options.force {
        Existing::Replace
    } else {
        Existing::Keep
    };
    for (path, contents) in &files {
        files::write_atomically(&root.join(path), contents.as_bytes(), existing_files)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        let _ = writeln!(said, "wrote {}", path.display());
    }
    said.push_str(next_steps(&found, options.no_workflow));
    Ok(said)
}

fn describe_found(found: &[Found]) -> String {
    if found.is_empty() {
        return "found no migrations directory (looked for directories named migrations, migration, \
                drizzle or changelog): set `paths` in migagent.toml\n"
            .to_owned();
    }
    found
        .iter()
        .map(|f| {
            format!(
                "found {}: {} {} migration{}\n",
                f.dir.display(),
                f.migrations,
                f.tool,
                if f.migrations == 1 { "" } else { "s" }
            )
        })
        .collect()
}

fn next_steps(found: &[Found], no_workflow: bool) -> &'static str {
    match (found.is_empty(), no_workflow) {
        (true, _) => "next: set `paths` in migagent.toml, then run `migagent review`\n",
        (false, true) => "next: run `migagent review` to see the report\n",
        (false, false) => {
            "next: run `migagent review` to see the report, then commit both files: the workflow reviews \
             the migrations each pull request adds or changes\n"
        }
    }
}

/// The migrations directories under `root`, nearest first, each detected the way `migagent review`
/// detects it. Hidden directories and dependency or build folders are not searched.
pub fn find_migrations(root: &Path) -> Vec<Found> {
    let mut found = Vec::new();
    let mut level = vec![PathBuf::new()];
    for _ in 0..=MAX_DEPTH {
        let mut next = Vec::new();
        for relative in level {
            for name in subdirectories(&root.join(&relative)) {
                let dir = relative.join(&name);
                if MIGRATION_DIR_NAMES.contains(&name.as_str()) {
                    if let Some(migrations) = detect(root, &dir) {
                        found.push(migrations);
                        continue;
                    }
                }
                next.push(dir);
            }
        }
        level = next;
    }
    found
}

/// The visible subdirectories of `dir` worth searching, sorted.
fn subdirectories(dir: &Path) -> Vec<String> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|entry| entry.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter(|name| !name.starts_with('.') && !SKIPPED_DIRS.contains(&name.as_str()))
        .collect();
    names.sort();
    names
}

fn detect(root: &Path, dir: &Path) -> Option<Found> {
    let discovery = migration::discover(&[root.join(dir)], &DiscoverOptions::default());
    let set = discovery.sets.into_iter().next()?;
    Some(Found {
        dir: dir.to_path_buf(),
        tool: set.tool,
        migrations: set.migrations.len(),
    })
}

/// A string as TOML and YAML both read it: a JSON string is a valid basic string in each.
fn quoted(path: &Path) -> String {
    serde_json::to_string(&path.to_string_lossy()).unwrap_or_default()
}

/// `migagent.toml`, commented, reviewing the directories found.
pub fn config_file(found: &[Found]) -> String {
    let mut out = String::from(
        "# migagent: reviews PostgreSQL migrations before they merge (`migagent review`).\n\
         # Every key is optional; command-line flags override them.\n\n",
    );
    if found.is_empty() {
        out.push_str(
            "# The migrations reviewed when no path is given (none were found):\n\
             # paths = [\"db/migrations\"]\n",
        );
    } else {
        let paths: Vec<String> = found.iter().map(|f| quoted(&f.dir)).collect();
        let tools: Vec<String> = found
            .iter()
            .map(|f| format!("{} in {}", f.tool, f.dir.display()))
            .collect();
        let _ = write!(
            out,
            "# The migrations reviewed when no path is given.\n\
             paths = [{}]\n\n\
             # The layout is detected ({}); name it to override the detection:\n\
             # tool = \"{}\"\n",
            paths.join(", "),
            tools.join(", "),
            found[0].tool
        );
    }
    if found.iter().any(|f| f.tool == Tool::Plain) {
        out.push_str(
            "\n# Plain *.sql files run like psql runs them: each statement commits on its own. If your\n\
             # runner wraps each file in one transaction, say so:\n\
             # transaction = \"per-file\"\n",
        );
    }
    out.push_str(
        "\n# Exit 1 on findings at or above this level: \"error\", \"warning\", \"info\" or \"never\".\n\
         fail-on = \"error\"\n\
         \n\
         # The PostgreSQL version production runs (default: the shadow server's, else 15).\n\
         # pg-version = \"15\"\n\
         \n\
         [shadow]\n\
         # \"auto\": apply the migrations to a throwaway PostgreSQL when its server binaries are\n\
         # installed; \"off\": review the SQL only; or a postgres:// URL where migagent may create\n\
         # (and drop) databases of its own.\n\
         mode = \"auto\"\n\
         \n\
         [rules]\n\
         # A rule id or a whole category, \"off\", \"info\", \"warning\" or \"error\"\n\
         # (`migagent rules` lists them):\n\
         # prefer-text = \"off\"\n\
         # hygiene = \"info\"\n",
    );
    out
}

/// The example GitHub Actions workflow: on pull requests touching the migrations, run the action.
pub fn workflow_file(found: &[Found]) -> String {
    let mut out = String::from(
        "# Reviews the PostgreSQL migrations each pull request adds or changes, with migagent:\n\
         # annotations on the diff, a comment on the pull request, and a SARIF upload to code scanning.\n\
         name: migagent\n\
         \n\
         on:\n\
         \x20 pull_request:\n",
    );
    if !found.is_empty() {
        out.push_str("    paths:\n");
        for f in found {
            let glob = f.dir.join("**");
            let _ = writeln!(out, "      - {}", quoted(&glob));
        }
        out.push_str("      - \"migagent.toml\"\n");
    }
    let _ = write!(
        out,
        "\n\
         permissions:\n\
         \x20 contents: read\n\
         \x20 pull-requests: write    # the review comment\n\
         \x20 security-events: write  # the SARIF upload (code scanning)\n\
         \n\
         jobs:\n\
         \x20 migagent:\n\
         \x20   runs-on: ubuntu-latest\n\
         \x20   steps:\n\
         \x20     - uses: actions/checkout@v4\n\
         \x20       with:\n\
         \x20         fetch-depth: 0  # the review compares with the pull request's base\n\
         \x20     - uses: {ACTION}\n\
         \x20       # with:\n\
         \x20       #   fail-on: warning\n\
         \x20       #   paths: db/migrations   # default: `paths` in migagent.toml\n"
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::FileConfig;

    #[test]
    fn the_config_is_valid_and_names_what_was_found() {
        let found = [
            Found {
                dir: PathBuf::from("db/migrations"),
                tool: Tool::Plain,
                migrations: 3,
            },
            Found {
                dir: PathBuf::from("odd \"dir\"\\x"),
                tool: Tool::Flyway,
                migrations: 1,
            },
        ];
        let text = config_file(&found);
        let config: FileConfig = toml::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(
            config.paths.unwrap(),
            [
                PathBuf::from("db/migrations"),
                PathBuf::from("odd \"dir\"\\x")
            ]
        );
        assert_eq!(config.fail_on.as_deref(), Some("error"));
        assert!(text.contains("# transaction = \"per-file\""), "{text}");
        let empty: FileConfig = toml::from_str(&config_file(&[])).unwrap();
        assert_eq!(empty.paths, None);
    }

    #[test]
    fn the_workflow_watches_the_migrations() {
        let found = [Found {
            dir: PathBuf::from("prisma/migrations"),
            tool: Tool::Prisma,
            migrations: 2,
        }];
        let text = workflow_file(&found);
        assert!(
            text.contains("      - \"prisma/migrations/**\"\n"),
            "{text}"
        );
        assert!(
            text.contains(&format!("      - uses: {ACTION}\n")),
            "{text}"
        );
        assert!(!text.contains('\t'));
    }
}
