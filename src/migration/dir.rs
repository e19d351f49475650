//! A directory's visible entries, read once per scan and shared by layout detection and listing.
//!
//! Migrations come from pull requests, so reading them must neither leave the directory under review
//! nor hang: entries are looked at without being opened (`lstat`), a symbolic link is followed only
//! when it resolves inside the directory, and anything that is neither a regular file nor a directory
//! (a FIFO, a socket, a device, a dangling or looping link) is never opened. Such entries are kept as
//! [`Unread`] entries, so that discovery can report every one of them.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::fmt;
use std::fs::{self, FileType};
use std::io::{self, Read};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::{diesel, prisma};
use crate::escape;

/// How much of a file layout detection reads. The markers that identify a layout (dbmate's
/// `-- migrate:up`, sqlx's `-- no-transaction`, Liquibase's header) sit at the top of a file, and
/// detection must not read every byte of a directory of multi-megabyte migrations.
const HEAD_BYTES: u64 = 64 * 1024;

/// The files of per-migration folders (Prisma, Diesel), looked for in every subdirectory.
const FOLDER_FILES: [&str; 3] = [prisma::FILE, diesel::UP, diesel::DOWN];

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

/// Why an entry was not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnreadReason {
    /// A symbolic link that resolves outside the directory under review.
    LinkOutside {
        target: PathBuf,
    },
    /// A symbolic link whose target does not exist.
    DanglingLink {
        target: PathBuf,
    },
    /// A symbolic link that cannot be resolved (a loop, a component that cannot be searched).
    BrokenLink {
        error: String,
    },
    Fifo,
    Socket,
    Device,
    /// A directory where a file is expected.
    Directory,
    /// `lstat` or `stat` failed.
    Unreadable {
        error: String,
    },
    /// A name that is not UTF-8 and reads the same as another entry's name once escaped.
    AmbiguousName,
}

impl fmt::Display for UnreadReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnreadReason::LinkOutside { target } => write!(
                f,
                "a symbolic link to {}, outside the directory under review: not followed (a link out \
                 of the reviewed tree would put a file of this machine into the report)",
                escape::path(target)
            ),
            UnreadReason::DanglingLink { target } => write!(
                f,
                "a symbolic link to {}, which does not exist",
                escape::path(target)
            ),
            UnreadReason::BrokenLink { error } => {
                write!(f, "a symbolic link that cannot be resolved ({error})")
            }
            UnreadReason::Fifo => f.write_str(
                "a named pipe (FIFO), not a file: not opened (reading it could block the review forever)",
            ),
            UnreadReason::Socket => f.write_str("a socket, not a file"),
            UnreadReason::Device => f.write_str("a device, not a file"),
            UnreadReason::Directory => f.write_str("a directory, not a file"),
            UnreadReason::Unreadable { error } => write!(f, "cannot be read ({error})"),
            UnreadReason::AmbiguousName => f.write_str(
                "its name is not UTF-8 and prints like another file's name: rename it to UTF-8",
            ),
        }
    }
}

/// An entry of the directory that was not read.
#[derive(Debug, Clone)]
pub(super) struct Unread {
    /// Relative to the directory, with `/` between a folder and its file (`<folder>/migration.sql`).
    pub rel: String,
    pub path: PathBuf,
    pub reason: UnreadReason,
}

/// What an entry is, found without opening it and without following a link out of the tree.
enum Entry {
    File,
    Dir,
    Missing,
    Unread(UnreadReason),
}

/// Looks at `path` the way discovery may: `lstat`, then its canonical path, which must lie inside
/// `root` (itself canonical) whatever links lead there, then the type of what that path names.
/// `in_root_dir`: the path's directory is known to lie inside `root`, so only a link can lead out.
fn inspect(path: &Path, root: &Path, in_root_dir: bool) -> Entry {
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Entry::Missing,
        Err(err) => return unreadable(&err),
    };
    let is_link = meta.file_type().is_symlink();
    if in_root_dir && !is_link {
        return kind(meta.file_type());
    }
    let target = match fs::canonicalize(path) {
        Ok(target) => target,
        Err(err) if is_link && err.kind() == io::ErrorKind::NotFound => {
            return Entry::Unread(UnreadReason::DanglingLink {
                target: fs::read_link(path).unwrap_or_default(),
            })
        }
        Err(err) if is_link => {
            return Entry::Unread(UnreadReason::BrokenLink {
                error: err.to_string(),
            })
        }
        Err(err) => return unreadable(&err),
    };
    if !target.starts_with(root) {
        return Entry::Unread(UnreadReason::LinkOutside { target });
    }
    match fs::metadata(&target) {
        Ok(meta) => kind(meta.file_type()),
        Err(err) => unreadable(&err),
    }
}

fn kind(file_type: FileType) -> Entry {
    if file_type.is_file() {
        Entry::File
    } else if file_type.is_dir() {
        Entry::Dir
    } else if file_type.is_fifo() {
        Entry::Unread(UnreadReason::Fifo)
    } else if file_type.is_socket() {
        Entry::Unread(UnreadReason::Socket)
    } else {
        Entry::Unread(UnreadReason::Device)
    }
}

fn unreadable(err: &io::Error) -> Entry {
    Entry::Unread(UnreadReason::Unreadable {
        error: err.to_string(),
    })
}

/// The text of a side file (metadata, sums, journals, per-script config) when it is a regular file
/// inside `root`; `None` when it is missing, unreadable, or anything else.
pub(super) fn read_within(path: &Path, root: &Path) -> Option<String> {
    let root = fs::canonicalize(on_disk(root)).ok()?;
    match inspect(path, &root, false) {
        Entry::File => fs::read_to_string(path).ok(),
        _ => None,
    }
}

/// The visible (not dot-prefixed) files and subdirectories of a migrations directory.
///
/// Names are keys: a UTF-8 name is itself, any other has its non-UTF-8 bytes written `\xNN`
/// ([`escape::os_name`]), so tools match and sort every name as text and paths still reach the file.
#[derive(Clone)]
pub(super) struct Dir {
    /// The directory as the user named it: migration paths are built from it, never canonicalised.
    shown: PathBuf,
    files: Vec<String>,
    subdirs: Vec<String>,
    /// `<subdir>/<file>` for each of [`FOLDER_FILES`] that is a readable file.
    folder_files: HashSet<String>,
    /// The file-system names of the keys that are not the name itself.
    os_names: HashMap<String, OsString>,
    unread: Vec<Unread>,
    /// Names listed whose content is not known (see [`Dir::with_stand_ins`]).
    stand_ins: HashSet<String>,
    /// The [`Dir::head`] of each file read so far: several layouts look at the same files' heads.
    heads: RefCell<HashMap<String, Rc<str>>>,
}

impl Dir {
    /// Lists `shown`, sorting out what it can read from what it must not.
    pub(super) fn read(shown: &Path) -> io::Result<Dir> {
        let root = fs::canonicalize(on_disk(shown))?;
        let mut entries = Vec::new();
        for entry in fs::read_dir(&root)? {
            let entry = entry?;
            let os_name = entry.file_name();
            if os_name.as_encoded_bytes().starts_with(b".") {
                continue;
            }
            let key = escape::os_name(&os_name).into_owned();
            entries.push((key, os_name));
        }
        entries.sort();
        let mut dir = Dir {
            shown: shown.to_path_buf(),
            files: Vec::new(),
            subdirs: Vec::new(),
            folder_files: HashSet::new(),
            os_names: HashMap::new(),
            unread: Vec::new(),
            stand_ins: HashSet::new(),
            heads: RefCell::default(),
        };
        let ambiguous: HashSet<String> = entries
            .windows(2)
            .filter(|pair| pair[0].0 == pair[1].0)
            .map(|pair| pair[0].0.clone())
            .collect();
        for (key, os_name) in entries {
            let path = shown.join(&os_name);
            if ambiguous.contains(&key) {
                dir.unread.push(Unread {
                    rel: key,
                    path,
                    reason: UnreadReason::AmbiguousName,
                });
                continue;
            }
            if key.as_str() != os_name {
                dir.os_names.insert(key.clone(), os_name);
            }
            match inspect(&root.join(dir.os_name(&key)), &root, true) {
                Entry::File => dir.files.push(key),
                Entry::Dir => {
                    dir.probe_folder(&root, &key);
                    dir.subdirs.push(key);
                }
                // Gone between listing and looking: nothing to review.
                Entry::Missing => {}
                Entry::Unread(reason) => dir.unread.push(Unread {
                    rel: key,
                    path,
                    reason,
                }),
            }
        }
        Ok(dir)
    }

    /// Records which per-migration files `subdir` holds, and those it holds but that cannot be read.
    fn probe_folder(&mut self, root: &Path, subdir: &str) {
        for file in FOLDER_FILES {
            let rel = format!("{subdir}/{file}");
            match inspect(&root.join(self.os_name(subdir)).join(file), root, true) {
                Entry::File => {
                    self.folder_files.insert(rel);
                }
                Entry::Missing => {}
                Entry::Dir => self.unread.push(Unread {
                    path: self.folder_path(subdir, file),
                    rel,
                    reason: UnreadReason::Directory,
                }),
                Entry::Unread(reason) => self.unread.push(Unread {
                    path: self.folder_path(subdir, file),
                    rel,
                    reason,
                }),
            }
        }
    }

    /// The entries that cannot be read as files: those not read, and the subdirectories.
    pub(super) fn stand_ins(&self) -> Vec<Unread> {
        let subdirs = self.subdirs.iter().map(|subdir| Unread {
            rel: subdir.clone(),
            path: self.path(subdir),
            reason: UnreadReason::Directory,
        });
        self.unread.iter().cloned().chain(subdirs).collect()
    }

    /// This listing with every [stand-in](Dir::stand_ins) listed as a file, and each entry not read
    /// also as a folder holding every per-migration file. Listing it tells which of them the tool
    /// would run as migrations; their content is unknown ([`Dir::head`] gives `None`).
    pub(super) fn with_stand_ins(&self) -> Dir {
        let mut dir = self.clone();
        for stand_in in self.stand_ins() {
            let top_level = !stand_in.rel.contains('/');
            if top_level {
                dir.files.push(stand_in.rel.clone());
            }
            if top_level && stand_in.reason != UnreadReason::Directory {
                dir.subdirs.push(stand_in.rel.clone());
                dir.folder_files.extend(
                    FOLDER_FILES
                        .iter()
                        .map(|file| format!("{}/{file}", stand_in.rel)),
                );
            }
            if !top_level {
                dir.folder_files.insert(stand_in.rel.clone());
            }
            dir.stand_ins.insert(stand_in.rel);
        }
        dir.files.sort();
        dir.files.dedup();
        dir.subdirs.sort();
        dir.subdirs.dedup();
        dir
    }

    /// The path a listing gives the entry `rel` (`<name>` or `<folder>/<file>`).
    pub(super) fn listed_path(&self, rel: &str) -> PathBuf {
        match rel.split_once('/') {
            Some((folder, file)) => self.folder_path(folder, file),
            None => self.path(rel),
        }
    }

    pub(super) fn shown(&self) -> &Path {
        &self.shown
    }

    /// The path of a file of this directory as the user would write it: the directory as given
    /// joined with the file's name.
    pub(super) fn path(&self, name: &str) -> PathBuf {
        self.shown.join(self.os_name(name))
    }

    /// The path of `file` in the folder `subdir`.
    pub(super) fn folder_path(&self, subdir: &str, file: &str) -> PathBuf {
        self.path(subdir).join(file)
    }

    fn os_name<'a>(&'a self, name: &'a str) -> &'a Path {
        self.os_names
            .get(name)
            .map_or(Path::new(name), |os_name| Path::new(os_name))
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
            .filter(|subdir| self.folder_files.contains(&format!("{subdir}/{file}")))
            .collect()
    }

    /// The text of a metadata file (`atlas.sum`, `meta/_journal.json`), or `None` when it is missing,
    /// unreadable, or not a file inside the directory.
    pub(super) fn read_to_string(&self, rel: &str) -> Option<String> {
        read_within(&on_disk(&self.shown).join(rel), &self.shown)
    }

    /// The first [`HEAD_BYTES`] of a file, lossily decoded; empty when it cannot be read (`load`
    /// reports unreadable migrations properly); `None` for an entry standing in for a file, whose
    /// content is unknown.
    pub(super) fn head(&self, name: &str) -> Option<Rc<str>> {
        if self.stand_ins.contains(name) {
            return None;
        }
        if let Some(head) = self.heads.borrow().get(name) {
            return Some(Rc::clone(head));
        }
        let mut bytes = Vec::new();
        if let Ok(file) = fs::File::open(on_disk(&self.shown).join(self.os_name(name))) {
            // A read error leaves a shorter prefix, which only makes detection more conservative.
            let _ = file.take(HEAD_BYTES).read_to_end(&mut bytes);
        }
        // Valid UTF-8, the usual case, is checked by the fast path and kept without a copy.
        let head: Rc<str> = match String::from_utf8(bytes) {
            Ok(text) => text.into(),
            Err(invalid) => String::from_utf8_lossy(invalid.as_bytes()).into(),
        };
        self.heads
            .borrow_mut()
            .insert(name.to_owned(), Rc::clone(&head));
        Some(head)
    }
}
