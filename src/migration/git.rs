//! `--base REF`: what git says changed under the reviewed paths since the merge base of `REF` and
//! `HEAD` — the migrations a branch adds or changes, and the already-applied ones it edits or deletes.
//!
//! git lists names NUL-separated (`-z`), so no name comes back quoted (`"0002_\303\274.sql"`) or cut
//! at a newline; the paths are literal pathspecs, never patterns.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::escape;

/// What changed since the merge base. Paths are relative to the directory git ran in.
#[derive(Debug, Clone, Default)]
pub struct Changes {
    /// Added, changed or untracked `.sql` files: the migrations to review.
    pub changed: Vec<PathBuf>,
    /// The `.sql` files of the merge base that were edited or deleted since.
    pub edited: HistoryEdits,
}

/// Migrations that existed at the merge base (so environments may have run them) and differ now.
#[derive(Debug, Clone, Default)]
pub struct HistoryEdits {
    /// The ref as the user gave it (`origin/main`).
    pub base: String,
    /// The merge base's abbreviated commit.
    pub merge_base: String,
    pub migrations: Vec<EditedMigration>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EditedMigration {
    pub path: PathBuf,
    /// Its text at the merge base (not UTF-8 bytes replaced).
    pub base_text: String,
    pub deleted: bool,
}

/// Asks git, in `dir`, what changed under `paths` since the merge base of `base` and `HEAD`.
/// `Err` says what is wrong and what to do (a ref git does not know, a shallow clone without the
/// merge base).
pub fn changes_since(dir: &Path, base: &str, paths: &[PathBuf]) -> Result<Changes, String> {
    if base.starts_with('-') {
        return Err(format!(
            "--base {base}: a git ref cannot start with `-`; give a branch, tag or commit (`--base origin/main`)"
        ));
    }
    let git = Git { dir, base };
    let merge_base = git.merge_base()?;
    let listed = git.run(
        &[
            "diff",
            "-z",
            "--name-status",
            "--no-renames",
            "--relative",
            "--no-ext-diff",
            "--no-textconv",
            &merge_base,
            "--",
        ],
        paths,
    )?;
    let untracked = git.run(
        &["ls-files", "-z", "--others", "--exclude-standard", "--"],
        paths,
    )?;
    let mut changes = Changes {
        edited: HistoryEdits {
            base: base.to_owned(),
            merge_base: merge_base.chars().take(12).collect(),
            migrations: Vec::new(),
        },
        ..Changes::default()
    };
    let mut fields = listed.split(|&byte| byte == 0);
    while let (Some(status), Some(name)) = (fields.next(), fields.next()) {
        if !name.ends_with(b".sql") {
            continue;
        }
        let path = PathBuf::from(OsStr::from_bytes(name));
        // M: edited, T: its type changed (a file became a symlink), D: deleted; A: added.
        let deleted = status == b"D";
        if matches!(status, b"M" | b"T" | b"D") {
            changes.edited.migrations.push(EditedMigration {
                base_text: git.file_at(&merge_base, &path)?,
                path: path.clone(),
                deleted,
            });
        }
        if !deleted {
            changes.changed.push(path);
        }
    }
    changes.changed.extend(
        untracked
            .split(|&byte| byte == 0)
            .filter(|name| name.ends_with(b".sql"))
            .map(|name| PathBuf::from(OsStr::from_bytes(name))),
    );
    changes.changed.sort();
    changes.changed.dedup();
    Ok(changes)
}

struct Git<'a> {
    dir: &'a Path,
    base: &'a str,
}

impl Git<'_> {
    /// `git args… paths…` in the directory: its standard output, or what git said on failure.
    fn run(&self, args: &[&str], paths: &[PathBuf]) -> Result<Vec<u8>, String> {
        let output = Command::new("git")
            .arg("--literal-pathspecs")
            .args(args)
            .args(paths)
            .current_dir(self.dir)
            .output()
            .map_err(|e| format!("--base needs git: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "--base {}: git failed: {}",
                self.base,
                escape::text(String::from_utf8_lossy(&output.stderr).trim())
            ));
        }
        Ok(output.stdout)
    }

    /// The merge base of the ref and `HEAD`: what the branch started from, so that commits made on
    /// the base branch since do not count as the branch's changes.
    fn merge_base(&self) -> Result<String, String> {
        let base = self.base;
        let verify = format!("{base}^{{commit}}");
        if self
            .run(&["rev-parse", "--verify", "--quiet", &verify], &[])
            .is_err()
        {
            return Err(if self.is_shallow() {
                format!(
                    "--base {base}: git does not know `{base}` in this shallow clone. Fetch it with \
                     enough history to reach the branch point: `fetch-depth: 0` on actions/checkout, \
                     or `git fetch --deepen=100 origin {base_branch}` (GIT_DEPTH: 0 on GitLab)",
                    base_branch = base.strip_prefix("origin/").unwrap_or(base)
                )
            } else {
                format!(
                    "--base {base}: git does not know `{base}` here; fetch it first (`git fetch origin \
                     main`, then `--base origin/main`) or give a branch, tag or commit that exists"
                )
            });
        }
        match self.run(&["merge-base", &verify, "HEAD"], &[]) {
            Ok(out) => Ok(String::from_utf8_lossy(&out).trim().to_owned()),
            Err(_) if self.is_shallow() => Err(format!(
                "--base {base}: this clone is shallow and does not reach the commit `{base}` and HEAD \
                 share (their merge base), so migagent cannot tell what this branch changed. Fetch \
                 the full history (`fetch-depth: 0` on actions/checkout, GIT_DEPTH: 0 on GitLab) or \
                 deepen it until the merge base is there (`git fetch --deepen=100`)"
            )),
            Err(_) => Err(format!(
                "--base {base}: `{base}` and HEAD share no history (no merge base), so nothing tells \
                 which migrations this branch changed; give the branch it was started from"
            )),
        }
    }

    fn is_shallow(&self) -> bool {
        self.run(&["rev-parse", "--is-shallow-repository"], &[])
            .is_ok_and(|out| out.trim_ascii() == b"true")
    }

    /// A file's text at a commit; `path` is relative to the directory git runs in.
    fn file_at(&self, commit: &str, path: &Path) -> Result<String, String> {
        let mut object = format!("{commit}:./").into_bytes();
        object.extend_from_slice(path.as_os_str().as_bytes());
        let output = Command::new("git")
            .args(["cat-file", "blob"])
            .arg(OsStr::from_bytes(&object))
            .current_dir(self.dir)
            .output()
            .map_err(|e| format!("--base needs git: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "--base {}: cannot read {} at {commit}: {}",
                self.base,
                escape::path(path),
                escape::text(String::from_utf8_lossy(&output.stderr).trim())
            ));
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }
}
