//! The database files' permissions. They hold personal data and password hashes, so a new
//! database is created readable and writable by its owner only (0600). SQLite gives the `-wal`
//! and `-shm` files it creates the mode of the main file, so creating the main file 0600
//! before SQLite first opens it covers all three; an existing file's mode is never changed
//! (the operator may have chosen it, e.g. for a backup group), only reported.

use scim_store_core::{Result, StoreError};
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
pub(crate) fn is_plain_file(path: &Path) -> bool {
    let text = path.to_string_lossy();
    !(text.is_empty() || text == ":memory:" || text.starts_with("file:"))
}

/// The directory holding `path` (`.` for a bare file name).
fn directory_of(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// Whether an I/O error says the file or file system may not be written: permission denied
/// (a mode, for a non-root user), `EPERM` (an immutable file, `chattr +i`, even for root) or a
/// read-only file system.
fn is_read_only(e: &std::io::Error) -> bool {
    const EPERM: i32 = 1;
    matches!(
        e.kind(),
        std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
    ) || e.raw_os_error() == Some(EPERM)
}

/// Checks, before SQLite opens it, what SQLite would only report as "unable to open database
/// file" or "attempt to write a readonly database": that the database's directory exists, and
/// that an existing database file can be written. The errors name the directory or the file.
pub(crate) fn check_writable(path: &Path) -> Result<()> {
    if !is_plain_file(path) {
        return Ok(());
    }
    let dir = directory_of(path);
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            return Err(StoreError::backend(format!(
                "{}: not a directory, so the database {} cannot be there",
                dir.display(),
                path.display()
            )));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(StoreError::backend(format!(
                "{}: the directory for the database {} does not exist; create it first",
                dir.display(),
                path.display()
            )));
        }
        Err(e) => {
            return Err(StoreError::backend(format!(
                "{}: cannot use the directory for the database {}: {e}",
                dir.display(),
                path.display()
            )));
        }
    }
    match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) if is_read_only(&e) => Err(StoreError::backend(format!(
            "{}: the database file is read-only ({e}); scimd must be able to write it",
            path.display()
        ))),
        Err(e) => Err(StoreError::backend(format!(
            "{}: cannot open the database file: {e}",
            path.display()
        ))),
    }
}

/// Fails, naming the file, if the database `path` does not exist.
pub(crate) fn check_exists(path: &Path) -> Result<()> {
    if is_plain_file(path) && !path.exists() {
        return Err(StoreError::backend(format!(
            "{}: no database there (the file does not exist; nothing was created)",
            path.display()
        )));
    }
    Ok(())
}

/// Adds the database's name to an error SQLite gave while opening or migrating it, and, when
/// SQLite could not open or write it though the file itself is writable (checked by
/// [`check_writable`]), says the likely cause: the directory is read-only, and SQLite must
/// create the `-wal` and `-shm` files there.
pub(crate) fn explain_open_error(path: &Path, error: StoreError) -> StoreError {
    match error {
        StoreError::Backend { message, .. } => {
            let cannot_write = message.contains("unable to open database file")
                || message.contains("readonly database");
            if cannot_write && is_plain_file(path) {
                StoreError::backend(format!(
                    "{}: cannot open the database for writing ({message}); is its directory {} \
                     read-only? SQLite must create {}-wal and {}-shm there",
                    path.display(),
                    directory_of(path).display(),
                    path.display(),
                    path.display()
                ))
            } else {
                StoreError::backend(format!("{}: {message}", path.display()))
            }
        }
        other => other,
    }
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
        Err(e) if is_read_only(&e) => Err(StoreError::backend(format!(
            "{}: cannot create the database file: its directory {} is read-only ({e})",
            path.display(),
            directory_of(path).display()
        ))),
        Err(e) => Err(StoreError::backend(format!(
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

/// The database's files (main, `-wal`, `-shm`, and the provisioning log's `-log` with its own)
/// that group or others may access.
#[cfg(unix)]
pub(crate) fn exposed(path: &Path) -> Vec<ExposedFile> {
    use std::os::unix::fs::PermissionsExt;
    if !is_plain_file(path) {
        return Vec::new();
    }
    ["", "-wal", "-shm", "-log", "-log-wal", "-log-shm"]
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
