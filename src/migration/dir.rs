//! A directory's visible entries, read once per scan and shared by layout detection and listing.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// How much of a file layout detection reads. The markers that identify a layout (dbmate's
/// `-- migrate:up`, sqlx's `-- no-transaction`, Liquibase's header) sit at the top of a file, and
/// detection must not read every byte of a directory of multi-megabyte migrations.
const HEAD_BYTES: u64 = 64 * 1024;

/// Where to read a directory the user named: an empty path (the parent of a bare file name) is the
/// working directory.
pub(super) fn on_disk(shown: &Path) -> &Path {
    if shown.as_os_str().is_empty() {
        Path::new(".")
    } else {
        shown
    }
}

/// Whether a file name can be a migration: `.sql`, and not a down file (`*.down.sql`), which never is one.
pub(super) fn is_sql_migration_name(name: &str) -> bool {
    name.ends_with(".sql") && !name.ends_with(".down.sql")
}

/// The visible (not dot-prefixed) files and subdirectories of a migrations directory.
pub(super) struct Dir {
    /// The directory as the user named it: migration paths are built from it, never canonicalised.
    shown: PathBuf,
    files: Vec<String>,
    subdirs: Vec<String>,
}

impl Dir {
    /// Lists `shown`. Names that are not UTF-8 cannot match any tool's naming scheme and are skipped.
    pub(super) fn read(shown: &Path) -> io::Result<Dir> {
        let mut files = Vec::new();
        let mut subdirs = Vec::new();
        for entry in fs::read_dir(on_disk(shown))? {
            let entry = entry?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if name.starts_with('.') {
                continue;
            }
            // `fs::metadata` follows symlinks, so a linked migration counts and a dangling link is skipped.
            match fs::metadata(entry.path()) {
                Ok(meta) if meta.is_dir() => subdirs.push(name),
                Ok(meta) if meta.is_file() => files.push(name),
                _ => {}
            }
        }
        files.sort();
        subdirs.sort();
        Ok(Dir {
            shown: shown.to_path_buf(),
            files,
            subdirs,
        })
    }

    pub(super) fn shown(&self) -> &Path {
        &self.shown
    }

    /// The path of an entry as the user would write it: the directory as given joined with `rel`.
    pub(super) fn path(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.shown.join(rel)
    }

    /// Every visible file name, sorted bytewise.
    pub(super) fn files(&self) -> &[String] {
        &self.files
    }

    pub(super) fn has_file(&self, name: &str) -> bool {
        self.files
            .binary_search_by(|file| file.as_str().cmp(name))
            .is_ok()
    }

    /// The `.sql` files that can be migrations (see [`is_sql_migration_name`]).
    pub(super) fn sql_files(&self) -> impl Iterator<Item = &str> {
        self.files
            .iter()
            .map(String::as_str)
            .filter(|name| is_sql_migration_name(name))
    }

    /// The subdirectories holding a file called `file`, sorted by name (the per-migration folders of
    /// Prisma and Diesel).
    pub(super) fn subdirs_with(&self, file: &str) -> Vec<&str> {
        self.subdirs
            .iter()
            .map(String::as_str)
            .filter(|subdir| self.fs_path(Path::new(subdir).join(file)).is_file())
            .collect()
    }

    /// The text of a metadata file, or `None` when it is missing or unreadable.
    pub(super) fn read_to_string(&self, rel: impl AsRef<Path>) -> Option<String> {
        fs::read_to_string(self.fs_path(rel)).ok()
    }

    /// The first [`HEAD_BYTES`] of a file, lossily decoded; empty when it cannot be read (`load`
    /// reports unreadable migrations properly).
    pub(super) fn head(&self, name: &str) -> String {
        let mut bytes = Vec::new();
        if let Ok(file) = fs::File::open(self.fs_path(name)) {
            // A read error leaves a shorter prefix, which only makes detection more conservative.
            let _ = file.take(HEAD_BYTES).read_to_end(&mut bytes);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }

    fn fs_path(&self, rel: impl AsRef<Path>) -> PathBuf {
        on_disk(&self.shown).join(rel)
    }
}
