//! A test's own project directory under the system temp dir, and `migagent` run in it the way a user
//! runs it, with nothing from the test runner's environment or cache reaching the run.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use super::show;

/// A directory unique to one test (named after the test binary, the test and this process), emptied
/// when made and removed when dropped. Its `cache/` is the `XDG_CACHE_HOME` of the runs in it.
pub struct Scratch(PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!(
            "migagent-{}-{name}-{}",
            env!("CARGO_CRATE_NAME"),
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    /// A scratch whose `migrations/` holds `files` (name, SQL).
    pub fn with_migrations(name: &str, files: &[(&str, &str)]) -> Scratch {
        let scratch = Scratch::new(name);
        std::fs::create_dir_all(scratch.path("migrations")).unwrap();
        for (file, sql) in files {
            scratch.write(Path::new("migrations").join(file), sql);
        }
        scratch
    }

    pub fn dir(&self) -> &Path {
        &self.0
    }

    /// `rel` inside the scratch.
    pub fn path(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.0.join(rel)
    }

    /// Writes `rel`, creating the directories it is in.
    pub fn write(&self, rel: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> &Self {
        let path = self.path(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
        self
    }

    /// Where the runs in this scratch cache shadow images.
    pub fn images(&self) -> PathBuf {
        self.path("cache/migagent/images")
    }

    /// The names in [`Scratch::images`].
    pub fn image_names(&self) -> BTreeSet<String> {
        std::fs::read_dir(self.images())
            .map(|entries| {
                entries
                    .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `migagent review <args>` in this directory, with its own cache, no colours, and no variable
    /// of the test runner's choosing the shadow, trusting the configuration's extensions or saying
    /// the run is on GitHub Actions.
    pub fn review(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_migagent"));
        command
            .arg("review")
            .args(args)
            .current_dir(&self.0)
            .env("XDG_CACHE_HOME", self.path("cache"))
            .env("NO_COLOR", "1")
            .env_remove("GITHUB_ACTIONS")
            .env_remove("MIGAGENT_SHADOW_URL")
            .env_remove("MIGAGENT_TRUST_CONFIG_EXTENSIONS");
        command
    }

    /// Runs [`Scratch::review`] to its end.
    pub fn run(&self, args: &[&str]) -> Output {
        self.review(args).output().expect("the binary runs")
    }

    /// Runs [`Scratch::review`] with `--format json`; returns the output and the report.
    pub fn json(&self, args: &[&str]) -> (Output, Value) {
        let output = self.run(&[args, &["--format", "json"]].concat());
        let report = json_report(&output);
        (output, report)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The JSON report on a run's stdout; a run without one fails the test, showing what it printed.
pub fn json_report(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|err| panic!("not JSON ({err}): {}", show(output)))
}
