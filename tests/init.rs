//! `migagent init` as a user runs it: finds the migrations, writes a config that `migagent review` then
//! uses as it is, and an example workflow; never overwrites without `--force`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct Project(PathBuf);

impl Project {
    fn new(name: &str) -> Project {
        let root =
            std::env::temp_dir().join(format!("migagent-init-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(&root).unwrap();
        Project(root)
    }

    fn write(&self, path: &str, contents: &str) {
        let path = self.0.join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, contents).unwrap();
    }

    fn read(&self, path: &str) -> String {
        fs::read_to_string(self.0.join(path)).unwrap()
    }

    fn migagent(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_migagent"))
            .args(args)
            .current_dir(&self.0)
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

const CONFIG: &str = "migagent.toml";
const WORKFLOW: &str = ".github/workflows/migagent.yml";

#[test]
fn init_finds_the_migrations_and_review_uses_the_config() {
    let project = Project::new("found");
    project.write(
        "db/migrations/0001_users.sql",
        "CREATE TABLE users (id bigint PRIMARY KEY);\n",
    );
    project.write(
        "db/migrations/0002_index.sql",
        "CREATE INDEX users_id ON users (id);\n",
    );
    project.write(
        "prisma/migrations/20240101000000_init/migration.sql",
        "CREATE TABLE posts (id bigint PRIMARY KEY);\n",
    );
    // Dependencies are not the project's migrations.
    project.write(
        "node_modules/lib/migrations/0001.sql",
        "DROP TABLE users;\n",
    );

    let output = project.migagent(&["init"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(
        stdout(&output),
        "found db/migrations: 2 plain migrations\n\
         found prisma/migrations: 1 prisma migration\n\
         wrote migagent.toml\n\
         wrote .github/workflows/migagent.yml\n\
         next: run `migagent review` to see the report, then commit both files: the workflow reviews \
         the migrations each pull request adds or changes\n"
    );
    let config = project.read(CONFIG);
    assert!(
        config.contains("paths = [\"db/migrations\", \"prisma/migrations\"]\n"),
        "{config}"
    );
    let workflow = project.read(WORKFLOW);
    assert!(
        workflow.contains("      - \"db/migrations/**\"\n"),
        "{workflow}"
    );
    assert!(
        workflow.contains("      - \"prisma/migrations/**\"\n"),
        "{workflow}"
    );

    // The config as written drives a review of both directories.
    let review = project.migagent(&["review", "--shadow", "off", "--format", "json"]);
    assert_eq!(review.status.code(), Some(1), "{}", stderr(&review));
    let report: serde_json::Value = serde_json::from_slice(&review.stdout).unwrap();
    let paths: Vec<&str> = report["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        [
            "db/migrations/0001_users.sql",
            "db/migrations/0002_index.sql",
            "prisma/migrations/20240101000000_init/migration.sql"
        ]
    );
}

#[test]
fn init_never_overwrites_without_force() {
    let project = Project::new("exists");
    project.write("migrations/0001_a.sql", "SELECT 1;\n");
    project.write(WORKFLOW, "# mine\n");

    let output = project.migagent(&["init"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains(
            "migagent init: .github/workflows/migagent.yml already exists; nothing was written \
             (--force replaces it)"
        ),
        "{}",
        stderr(&output)
    );
    assert!(!Path::new(&project.0.join(CONFIG)).exists());
    assert_eq!(project.read(WORKFLOW), "# mine\n");

    let output = project.migagent(&["init", "--no-workflow"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(project.read(CONFIG).contains("paths = [\"migrations\"]"));
    assert_eq!(project.read(WORKFLOW), "# mine\n");

    let output = project.migagent(&["init", "--force"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(project.read(WORKFLOW).contains("uses: "));
    let leftovers: Vec<_> = fs::read_dir(project.0.join(".github/workflows"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers, ["migagent.yml"], "no temporary file is left");
}

#[test]
fn init_without_migrations_writes_a_config_to_fill_in() {
    let project = Project::new("empty");
    let output = project.migagent(&["init", "--no-workflow"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stdout(&output).starts_with("found no migrations directory"),
        "{}",
        stdout(&output)
    );
    assert!(project
        .read(CONFIG)
        .contains("# paths = [\"db/migrations\"]\n"));
    let review = project.migagent(&["review"]);
    assert_eq!(review.status.code(), Some(2));
    assert!(
        stderr(&review).contains("set `paths` in migagent.toml"),
        "{}",
        stderr(&review)
    );
}
