//! A cache of PostgreSQL data directories ("images"), so that a cluster can start from a copy instead of
//! running initdb (about a second) and re-applying a migration history it has applied before (seconds).
//!
//! Layout: `<root>/images/<key>/data`, keys chosen by the caller from `[a-z0-9_-]`. An image is written
//! under a staging name (`<key>.tmp-<pid>-<n>`) and renamed into place, so a reader never sees half an
//! image and of two runs storing the same key the first one wins. Only the [`KEPT_IMAGES`] most recently
//! used images are kept. Servers never run on the cache: clusters start from copies of it, owned by the
//! server's OS user, while the cache stays owned by us.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::SystemTime;

use super::cluster::{process_exists, ClusterError, OsUser};

/// How many images the cache keeps; older ones are deleted after each store.
pub const KEPT_IMAGES: usize = 8;

/// The longest key accepted; keys become directory names.
pub const MAX_KEY_LEN: usize = 128;

/// Files of a running server that must not be in an image: a copy holding them looks like a data dir in
/// use by another server.
const SERVER_RUNTIME_FILES: [&str; 2] = ["postmaster.pid", "postmaster.opts"];

/// Makes staging dir names unique within this process; the pid makes them unique across processes.
static NEXT_STAGING: AtomicUsize = AtomicUsize::new(0);

/// The name an image is stored under: 1 to [`MAX_KEY_LEN`] characters from `[a-z0-9_-]`, so it is a safe
/// directory name and never looks like a staging dir (those contain a `.`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageKey(String);

impl ImageKey {
    /// Validates `key`.
    pub fn new(key: &str) -> Result<ImageKey, ClusterError> {
        let allowed =
            |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-';
        if key.is_empty() || key.len() > MAX_KEY_LEN || !key.chars().all(allowed) {
            return Err(ClusterError::InvalidImageKey {
                key: key.to_string(),
            });
        }
        Ok(ImageKey(key.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What to do with the data dir being stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transfer {
    /// Leave it in place (a fresh initdb that a cluster is about to start on).
    Copy,
    /// Take it (a stopped cluster's data dir, about to be deleted anyway): a rename, or a copy when the
    /// cache is on another file system.
    Move,
}

/// A stored image; start a cluster from it with `EphemeralCluster::start_from_image`.
#[derive(Debug, Clone)]
pub struct Image {
    /// The cache's root, for error messages.
    root: PathBuf,
    dir: PathBuf,
}

impl Image {
    /// The image's data dir. Read it, never run a server on it.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Copies the image's data dir to `data_dir` (which must not exist), with mode 0700 as PostgreSQL
    /// requires and every entry given to `owner` when set, and checks the copy against the manifest
    /// written when the image was stored: a damaged image is [`ClusterError::DamagedImage`].
    pub(crate) fn copy_to(
        &self,
        data_dir: &Path,
        owner: Option<OsUser>,
    ) -> Result<(), ClusterError> {
        copy_tree(&self.data_dir(), data_dir, owner)
            .and_then(|()| fs::set_permissions(data_dir, fs::Permissions::from_mode(0o700)))
            .map_err(|source| ClusterError::ImageCache {
                root: self.root.clone(),
                action: format!(
                    "copy the image {} to {}",
                    self.dir.display(),
                    data_dir.display()
                ),
                source,
            })?;
        let damaged = |what: String| ClusterError::DamagedImage {
            dir: self.dir.clone(),
            what,
        };
        let expected = fs::read_to_string(self.dir.join(MANIFEST))
            .map_err(|err| damaged(format!("its manifest cannot be read: {err}")))?;
        let found = manifest(data_dir)
            .map_err(|err| damaged(format!("its files cannot be read: {err}")))?;
        match first_difference(&expected, &found) {
            None => Ok(()),
            Some(file) => Err(damaged(format!(
                "{file} differs from what the manifest recorded when it was stored"
            ))),
        }
    }
}

/// The image cache at a root directory.
#[derive(Debug, Clone)]
pub struct ImageCache {
    root: PathBuf,
}

impl ImageCache {
    /// `$XDG_CACHE_HOME/migagent`, else `$HOME/.cache/migagent`; `None` when neither is set to an absolute
    /// path (the XDG spec says to ignore relative ones).
    pub fn default_location() -> Option<PathBuf> {
        location_from(std::env::var_os("XDG_CACHE_HOME"), std::env::var_os("HOME"))
    }

    /// Opens the cache at `root`, creating it with mode 0700 if needed, and checks that we can write there,
    /// so an unusable cache is reported now rather than when the first image is stored.
    pub fn open(root: PathBuf) -> Result<ImageCache, ClusterError> {
        let cache = ImageCache { root };
        let images = cache.images_dir();
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&images)
            .map_err(cache.error("create the images directory"))?;
        let probe = cache.staging_path("probe", "open");
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&probe)
            .map_err(cache.error("create a directory"))?;
        fs::remove_dir(&probe).map_err(cache.error("remove a directory"))?;
        fs::read_dir(&images).map_err(cache.error("list the images"))?;
        Ok(cache)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The key of the freshly initdb'd data dir of PostgreSQL `major`.
    pub(crate) fn initdb_key(major: u32) -> ImageKey {
        ImageKey(format!("initdb-pg{major}"))
    }

    /// The image stored under `key`, if any; marks it as just used, so pruning keeps it longest.
    pub fn lookup(&self, key: &ImageKey) -> Option<Image> {
        let dir = self.images_dir().join(key.as_str());
        if !dir.join("data").is_dir() {
            return None;
        }
        // Best effort: an image whose mtime cannot be updated is only pruned a little earlier.
        let _ = touch(&dir);
        Some(Image {
            root: self.root.clone(),
            dir,
        })
    }

    /// Stores the data dir of a stopped server (or a fresh initdb) as the image `key`: staged under a
    /// private name, cleaned of the server's runtime files, then renamed into place. When `key` is already
    /// there (another run stored it first) the stored image is kept and ours discarded. Prunes afterwards.
    pub(crate) fn store(
        &self,
        key: &ImageKey,
        data_dir: &Path,
        transfer: Transfer,
    ) -> Result<(), ClusterError> {
        let staging = self.staging_path(key.as_str(), "tmp");
        let stored = self.stage(&staging, data_dir, transfer).and_then(|()| {
            let target = self.images_dir().join(key.as_str());
            match fs::rename(&staging, &target) {
                Ok(()) => {
                    let _ = touch(&target);
                    Ok(())
                }
                // Renaming a directory onto a non-empty one fails: a concurrent run stored this key first.
                Err(err)
                    if matches!(
                        err.kind(),
                        io::ErrorKind::DirectoryNotEmpty | io::ErrorKind::AlreadyExists
                    ) =>
                {
                    Ok(())
                }
                Err(err) => Err(self.error(format!("store the image {}", key.as_str()))(err)),
            }
        });
        // Whatever happened, leave no staging dir behind (after a successful rename it is already gone).
        let _ = fs::remove_dir_all(&staging);
        self.prune();
        stored
    }

    /// Puts a cleaned copy of `data_dir` at `<staging>/data`, owned by us.
    fn stage(
        &self,
        staging: &Path,
        data_dir: &Path,
        transfer: Transfer,
    ) -> Result<(), ClusterError> {
        fs::DirBuilder::new()
            .mode(0o700)
            .create(staging)
            .map_err(self.error("create a staging directory"))?;
        let staged = staging.join("data");
        let copy = |action: &str| {
            copy_tree(data_dir, &staged, None)
                .map_err(self.error(format!("{action} {}", data_dir.display())))
        };
        match transfer {
            Transfer::Copy => copy("copy")?,
            Transfer::Move => match fs::rename(data_dir, &staged) {
                Ok(()) => {
                    // The server's OS user owned the files; the cache stays ours.
                    let us = OsUser::current()?;
                    if us.uid == 0 {
                        chown_tree(&staged, us)
                            .map_err(self.error("take ownership of an image"))?;
                    }
                }
                Err(err) if err.kind() == io::ErrorKind::CrossesDevices => {
                    copy("copy (the cache is on another file system)")?
                }
                Err(err) => {
                    return Err(self
                        .error(format!("move {} into the cache", data_dir.display()))(
                        err
                    ))
                }
            },
        }
        for file in SERVER_RUNTIME_FILES {
            match fs::remove_file(staged.join(file)) {
                Err(err) if err.kind() != io::ErrorKind::NotFound => {
                    return Err(self.error(format!("remove {file} from an image"))(err))
                }
                _ => {}
            }
        }
        let manifest = manifest(&staged).map_err(self.error("list an image's files"))?;
        fs::write(staging.join(MANIFEST), manifest).map_err(self.error("write an image's manifest"))
    }

    /// Deletes the image `key` (a damaged one): renamed first, so no lookup finds it half-deleted.
    pub(crate) fn discard(&self, key: &ImageKey) {
        let doomed = self.staging_path(key.as_str(), "del");
        if fs::rename(self.images_dir().join(key.as_str()), &doomed).is_ok() {
            let _ = fs::remove_dir_all(&doomed);
        }
    }

    /// Keeps the [`KEPT_IMAGES`] most recently used images and deletes the rest, along with staging dirs of
    /// runs that died mid-store. Best effort: a failure leaves an extra image, which costs only disk space.
    fn prune(&self) {
        let Ok(entries) = fs::read_dir(self.images_dir()) else {
            return;
        };
        let mut images = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if ImageKey::new(&name).is_ok() {
                let used = entry.metadata().and_then(|meta| meta.modified());
                images.push((used.unwrap_or(SystemTime::UNIX_EPOCH), name));
            } else if staging_owner(&name).is_some_and(|pid| !process_exists(pid)) {
                let _ = fs::remove_dir_all(&path);
            }
        }
        images.sort_by_key(|image| std::cmp::Reverse(image.0));
        for (_, name) in images.into_iter().skip(KEPT_IMAGES) {
            // Renamed first so that a lookup never finds a half-deleted image.
            let doomed = self.staging_path(&name, "del");
            if fs::rename(self.images_dir().join(&name), &doomed).is_ok() {
                let _ = fs::remove_dir_all(&doomed);
            }
        }
    }

    fn images_dir(&self) -> PathBuf {
        self.root.join("images")
    }

    /// `<images>/<name>.<purpose>-<pid>-<n>`: never a valid key (it has a `.`), unique, and tells
    /// [`ImageCache::prune`] whose it is.
    fn staging_path(&self, name: &str, purpose: &str) -> PathBuf {
        let n = NEXT_STAGING.fetch_add(1, Ordering::Relaxed);
        self.images_dir()
            .join(format!("{name}.{purpose}-{}-{n}", std::process::id()))
    }

    fn error(&self, action: impl Into<String>) -> impl FnOnce(io::Error) -> ClusterError {
        let root = self.root.clone();
        let action = action.into();
        move |source| ClusterError::ImageCache {
            root,
            action,
            source,
        }
    }
}

/// The file beside an image's data dir listing its files: `<sha256> <size> <path>` per line, sorted.
const MANIFEST: &str = "manifest";

/// The manifest of the data dir at `dir` (see [`MANIFEST`]); symlinks and directories are not listed.
fn manifest(dir: &Path) -> io::Result<String> {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    let mut files = Vec::new();
    list_files(dir, Path::new(""), &mut files)?;
    files.sort();
    let mut manifest = String::new();
    let mut buffer = vec![0u8; 1 << 16];
    for relative in files {
        let mut file = fs::File::open(dir.join(&relative))?;
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        loop {
            let read = file.read(&mut buffer)?;
            if read == 0 {
                break;
            }
            size += read as u64;
            hasher.update(&buffer[..read]);
        }
        let hash: String = hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        manifest.push_str(&format!("{hash} {size} {}\n", relative.display()));
    }
    Ok(manifest)
}

/// The regular files under `dir`, as paths relative to the data dir.
fn list_files(root: &Path, relative: &Path, files: &mut Vec<PathBuf>) -> io::Result<()> {
    for entry in fs::read_dir(root.join(relative))? {
        let entry = entry?;
        let path = relative.join(entry.file_name());
        let kind = entry.file_type()?;
        if kind.is_dir() {
            list_files(root, &path, files)?;
        } else if kind.is_file() {
            files.push(path);
        }
    }
    Ok(())
}

/// The path of the first file two manifests disagree on (missing, extra, other size or hash).
fn first_difference(expected: &str, found: &str) -> Option<String> {
    let path_of = |line: &str| line.splitn(3, ' ').nth(2).unwrap_or(line).to_owned();
    let mut found_lines = found.lines();
    for line in expected.lines() {
        match found_lines.next() {
            Some(other) if other == line => continue,
            _ => return Some(path_of(line)),
        }
    }
    found_lines.next().map(path_of)
}

/// The cache location for the given `XDG_CACHE_HOME` and `HOME` values.
fn location_from(xdg_cache_home: Option<OsString>, home: Option<OsString>) -> Option<PathBuf> {
    let absolute = |value: Option<OsString>| value.map(PathBuf::from).filter(|p| p.is_absolute());
    absolute(xdg_cache_home)
        .map(|dir| dir.join("migagent"))
        .or_else(|| absolute(home).map(|dir| dir.join(".cache").join("migagent")))
}

/// The pid in a staging dir name `<name>.<purpose>-<pid>-<n>`; `None` for any other name.
fn staging_owner(name: &str) -> Option<u32> {
    let (_, suffix) = name.split_once('.')?;
    let mut parts = suffix.split('-');
    let (_purpose, pid) = (parts.next()?, parts.next()?);
    pid.parse().ok()
}

/// Sets a directory's mtime to now.
fn touch(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.set_modified(SystemTime::now())
}

/// Copies the directory tree `src` to `dst` (which must not exist), keeping modes and symlinks; every
/// entry is given to `owner` when set.
pub(crate) fn copy_tree(src: &Path, dst: &Path, owner: Option<OsUser>) -> io::Result<()> {
    let mode = fs::symlink_metadata(src)?.permissions().mode();
    fs::DirBuilder::new().mode(0o700).create(dst)?;
    for entry in fs::read_dir(src)? {
        let entry = entry?;
        let (from, to) = (entry.path(), dst.join(entry.file_name()));
        let kind = entry.file_type()?;
        if kind.is_dir() {
            copy_tree(&from, &to, owner)?;
            continue;
        }
        if kind.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&from)?, &to)?;
        } else {
            fs::copy(&from, &to)?;
        }
        if let Some(user) = owner {
            std::os::unix::fs::lchown(&to, Some(user.uid), Some(user.gid))?;
        }
    }
    // Set last: a read-only source dir must not stop us from filling its copy.
    fs::set_permissions(dst, fs::Permissions::from_mode(mode))?;
    if let Some(user) = owner {
        std::os::unix::fs::chown(dst, Some(user.uid), Some(user.gid))?;
    }
    Ok(())
}

/// Gives `path` and everything under it to `owner`.
fn chown_tree(path: &Path, owner: OsUser) -> io::Result<()> {
    std::os::unix::fs::lchown(path, Some(owner.uid), Some(owner.gid))?;
    if fs::symlink_metadata(path)?.is_dir() {
        for entry in fs::read_dir(path)? {
            chown_tree(&entry?.path(), owner)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Barrier};

    /// A fresh directory for one test's cache, removed on drop.
    struct TempRoot(PathBuf);

    impl TempRoot {
        fn new(name: &str) -> TempRoot {
            let path = std::env::temp_dir()
                .join(format!("migagent-test-cache-{name}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&path);
            TempRoot(path)
        }
    }

    impl Drop for TempRoot {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    /// A stand-in data dir: pruning and staging only move files, so no server is needed to test them.
    fn fake_data_dir(parent: &Path, name: &str, content: &str) -> PathBuf {
        let dir = parent.join(name);
        fs::create_dir_all(dir.join("base/1")).unwrap();
        fs::write(dir.join("PG_VERSION"), "15\n").unwrap();
        fs::write(dir.join("base/1/1259"), content).unwrap();
        fs::write(dir.join("postmaster.pid"), "1\n").unwrap();
        fs::write(dir.join("postmaster.opts"), "postgres\n").unwrap();
        dir
    }

    fn image_names(cache: &ImageCache) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(cache.images_dir())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn keys_are_restricted_to_safe_directory_names() {
        for good in [
            "pg15-3f2a9c",
            "initdb-pg15",
            "a",
            "x_y",
            &"k".repeat(MAX_KEY_LEN),
        ] {
            assert_eq!(ImageKey::new(good).unwrap().as_str(), good);
        }
        let too_long = "k".repeat(MAX_KEY_LEN + 1);
        for bad in [
            "",
            "..",
            "a/b",
            "../etc",
            "Pg15",
            "pg15.tmp-1-2",
            "a b",
            "é",
            &too_long,
        ] {
            let err = ImageKey::new(bad).unwrap_err();
            assert!(matches!(err, ClusterError::InvalidImageKey { .. }), "{bad}");
            assert!(err.to_string().contains("To fix:"), "{err}");
        }
    }

    #[test]
    fn default_location_prefers_an_absolute_xdg_cache_home() {
        let xdg = Some(OsString::from("/xdg"));
        let home = Some(OsString::from("/home/me"));
        assert_eq!(
            location_from(xdg, home.clone()),
            Some(PathBuf::from("/xdg/migagent"))
        );
        assert_eq!(
            location_from(Some(OsString::from("relative")), home.clone()),
            Some(PathBuf::from("/home/me/.cache/migagent"))
        );
        assert_eq!(
            location_from(None, home),
            Some(PathBuf::from("/home/me/.cache/migagent"))
        );
        assert_eq!(location_from(None, Some(OsString::new())), None);
        assert_eq!(location_from(None, None), None);
    }

    #[test]
    fn stored_images_are_private_clean_and_found() {
        let root = TempRoot::new("store");
        let cache = ImageCache::open(root.0.join("cache")).unwrap();
        assert_eq!(
            fs::metadata(cache.root()).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let source = fake_data_dir(&root.0, "source", "catalog");
        let key = ImageKey::new("pg15-abc").unwrap();
        assert!(cache.lookup(&key).is_none());
        cache.store(&key, &source, Transfer::Copy).unwrap();
        assert!(source.exists(), "a copy leaves the source in place");
        let image = cache.lookup(&key).unwrap();
        let data = image.data_dir();
        assert_eq!(
            fs::read_to_string(data.join("base/1/1259")).unwrap(),
            "catalog"
        );
        assert!(!data.join("postmaster.pid").exists());
        assert!(!data.join("postmaster.opts").exists());
        assert_eq!(image_names(&cache), ["pg15-abc"]);

        let moved = fake_data_dir(&root.0, "moved", "moved catalog");
        let other = ImageKey::new("pg15-def").unwrap();
        cache.store(&other, &moved, Transfer::Move).unwrap();
        assert!(!moved.exists(), "a move takes the source");
        let data = cache.lookup(&other).unwrap().data_dir();
        assert_eq!(
            fs::read_to_string(data.join("base/1/1259")).unwrap(),
            "moved catalog"
        );
    }

    #[test]
    fn pruning_keeps_the_most_recently_used_images() {
        let root = TempRoot::new("prune");
        let cache = ImageCache::open(root.0.join("cache")).unwrap();
        let source = fake_data_dir(&root.0, "source", "catalog");
        let key = |i: usize| ImageKey::new(&format!("img{i}")).unwrap();
        for i in 0..KEPT_IMAGES {
            cache.store(&key(i), &source, Transfer::Copy).unwrap();
        }
        // img0 is the oldest store, but using it makes img1 the least recently used.
        assert!(cache.lookup(&key(0)).is_some());
        cache
            .store(&key(KEPT_IMAGES), &source, Transfer::Copy)
            .unwrap();
        let names = image_names(&cache);
        assert_eq!(names.len(), KEPT_IMAGES, "{names:?}");
        assert!(names.contains(&"img0".to_string()), "{names:?}");
        assert!(!names.contains(&"img1".to_string()), "{names:?}");
        assert!(cache.lookup(&key(1)).is_none());
    }

    #[test]
    fn pruning_removes_staging_dirs_of_dead_runs_only() {
        let root = TempRoot::new("stale");
        let cache = ImageCache::open(root.0.join("cache")).unwrap();
        // Pids above the kernel's pid_max (at most 2^22) never belong to a live process.
        let dead = cache.images_dir().join("pg15-abc.tmp-99999999-0");
        let ours = cache.staging_path("pg15-abc", "tmp");
        fs::create_dir_all(dead.join("data")).unwrap();
        fs::create_dir_all(ours.join("data")).unwrap();
        cache.prune();
        assert!(!dead.exists());
        assert!(ours.exists(), "a live run's staging dir must be left alone");
    }

    #[test]
    fn concurrent_stores_of_one_key_leave_one_complete_image() {
        let root = TempRoot::new("race");
        let cache = ImageCache::open(root.0.join("cache")).unwrap();
        let key = ImageKey::new("pg15-same").unwrap();
        let writers = 4;
        let barrier = Arc::new(Barrier::new(writers));
        let threads: Vec<_> = (0..writers)
            .map(|i| {
                let (cache, key, barrier) = (cache.clone(), key.clone(), barrier.clone());
                let source = fake_data_dir(&root.0, &format!("source{i}"), &format!("writer {i}"));
                std::thread::spawn(move || {
                    barrier.wait();
                    cache.store(&key, &source, Transfer::Move)
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap().unwrap();
        }
        assert_eq!(image_names(&cache), ["pg15-same"]);
        let data = cache.lookup(&key).unwrap().data_dir();
        let content = fs::read_to_string(data.join("base/1/1259")).unwrap();
        assert!(content.starts_with("writer "), "{content}");
        assert_eq!(fs::read_to_string(data.join("PG_VERSION")).unwrap(), "15\n");
    }

    #[test]
    fn an_unusable_root_is_a_clear_error() {
        let root = TempRoot::new("unusable");
        fs::create_dir_all(&root.0).unwrap();
        let file = root.0.join("a-file");
        fs::write(&file, "not a directory").unwrap();
        for unusable in [file.clone(), file.join("cache")] {
            let err = ImageCache::open(unusable.clone()).unwrap_err();
            assert!(matches!(err, ClusterError::ImageCache { .. }), "{err:?}");
            let message = err.to_string();
            assert!(message.contains(&*unusable.to_string_lossy()), "{message}");
            assert!(message.contains("To fix:"), "{message}");
            assert!(message.contains("without the image cache"), "{message}");
        }
    }

    #[test]
    fn copies_keep_modes_and_symlinks() {
        let root = TempRoot::new("copy");
        let source = fake_data_dir(&root.0, "source", "catalog");
        fs::set_permissions(source.join("PG_VERSION"), fs::Permissions::from_mode(0o600)).unwrap();
        fs::set_permissions(source.join("base"), fs::Permissions::from_mode(0o750)).unwrap();
        std::os::unix::fs::symlink("/somewhere/else", source.join("pg_tblspc_link")).unwrap();
        let copy = root.0.join("copy");
        copy_tree(&source, &copy, None).unwrap();
        let mode = |path: &Path| fs::symlink_metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&copy.join("PG_VERSION")), 0o600);
        assert_eq!(mode(&copy.join("base")), 0o750);
        assert_eq!(
            fs::read_link(copy.join("pg_tblspc_link")).unwrap(),
            Path::new("/somewhere/else")
        );
        assert_eq!(
            fs::read_to_string(copy.join("base/1/1259")).unwrap(),
            "catalog"
        );
    }
}
