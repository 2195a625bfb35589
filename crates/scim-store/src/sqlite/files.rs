//! The database files' permissions. They hold personal data and password hashes, so a new
//! database is created readable and writable by its owner only (0600). SQLite gives the `-wal`
//! and `-shm` files it creates the mode of the main file, so creating the main file 0600
//! before SQLite first opens it covers all three; an existing file's mode is never changed
//! (the operator may have chosen it, e.g. for a backup group), only reported.

use crate::error::{Result, StoreError};
use std::path::{Path, PathBuf};

/// A database file that others than its owner may read or write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExposedFile {
    /// The file: the database, or its `-wal` or `-shm`.
    pub path: PathBuf,
    /// Its permission bits, e.g. `0o644`.
    pub mode: u32,
}

/// Whether `path` names a file on disk: not `:memory:`, not an empty name (a temporary
/// database), not a `file:` URI (whose path and options SQLite parses itself).
fn is_plain_file(path: &Path) -> bool {
    let text = path.to_string_lossy();
    !(text.is_empty() || text == ":memory:" || text.starts_with("file:"))
}

/// Creates the database file with mode 0600 if it does not exist yet (SQLite takes an empty
/// file for a new database), so that neither it nor its `-wal` and `-shm` are ever readable by
/// others, whatever the umask. An existing path (a file, or a link to one) is left as it is.
#[cfg(unix)]
pub(crate) fn create_private(path: &Path) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if !is_plain_file(path) {
        return Ok(());
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(StoreError::Backend(format!(
            "{}: cannot create the database file: {e}",
            path.display()
        ))),
    }
}

/// Elsewhere, SQLite creates the file with the platform's defaults.
#[cfg(not(unix))]
pub(crate) fn create_private(_path: &Path) -> Result<()> {
    Ok(())
}

/// The database's files (main, `-wal`, `-shm`) that group or others may access.
#[cfg(unix)]
pub(crate) fn exposed(path: &Path) -> Vec<ExposedFile> {
    use std::os::unix::fs::PermissionsExt;
    if !is_plain_file(path) {
        return Vec::new();
    }
    ["", "-wal", "-shm"]
        .iter()
        .filter_map(|suffix| {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            let path = PathBuf::from(name);
            let mode = std::fs::metadata(&path).ok()?.permissions().mode() & 0o777;
            (mode & 0o077 != 0).then_some(ExposedFile { path, mode })
        })
        .collect()
}

/// Elsewhere, permissions are not Unix modes.
#[cfg(not(unix))]
pub(crate) fn exposed(_path: &Path) -> Vec<ExposedFile> {
    Vec::new()
}
