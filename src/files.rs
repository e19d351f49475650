//! Writing files a user keeps (`migagent init`, `--report-file`): atomically, through a temporary file
//! in the same directory renamed into place, so a crash or a full disk never leaves half a file, and
//! an existing file is replaced only when the caller says so.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Whether an existing file may be replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    Replace,
    Keep,
}

/// Writes `contents` to `path`, creating its directory. With [`Existing::Keep`], an existing file is
/// left as it was and the error is `AlreadyExists`.
pub fn write_atomically(path: &Path, contents: &[u8], existing: Existing) -> io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    fs::create_dir_all(dir)?;
    let temporary = temporary_name(dir, path);
    let result = write_new(&temporary, contents).and_then(|()| match existing {
        Existing::Replace => fs::rename(&temporary, path),
        Existing::Keep => keep_existing(&temporary, path),
    });
    let _ = fs::remove_file(&temporary);
    result
}

/// Moves `temporary` to `path` unless `path` exists. A hard link fails when the target exists, in one
/// step, so a file created meanwhile is never replaced; where the file system has no hard links, the
/// check and the rename are two steps.
fn keep_existing(temporary: &Path, path: &Path) -> io::Result<()> {
    match fs::hard_link(temporary, path) {
        Err(error) if error.kind() != io::ErrorKind::AlreadyExists && !path.exists() => {
            fs::rename(temporary, path)
        }
        result => result,
    }
}

fn write_new(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// `.<name>.migagent-<pid>.tmp` beside the target.
fn temporary_name(dir: &Path, path: &Path) -> PathBuf {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    dir.join(format!(".{name}.migagent-{}.tmp", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("migagent-files-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn writes_creating_the_directory_and_leaves_no_temporary_file() {
        let dir = scratch("new");
        let path = dir.join("a/b.toml");
        write_atomically(&path, b"x = 1\n", Existing::Keep).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "x = 1\n");
        assert_eq!(fs::read_dir(dir.join("a")).unwrap().count(), 1);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn keeps_or_replaces_an_existing_file_as_asked() {
        let dir = scratch("existing");
        let path = dir.join("b.toml");
        write_atomically(&path, b"old", Existing::Keep).unwrap();
        let error = write_atomically(&path, b"new", Existing::Keep).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read_to_string(&path).unwrap(), "old");
        write_atomically(&path, b"new", Existing::Replace).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        fs::remove_dir_all(dir).unwrap();
    }
}
