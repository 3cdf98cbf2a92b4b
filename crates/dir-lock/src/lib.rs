//! One process per data directory. The client's `data_dir` and the relay's log are each written by one process
//! that believes it alone moves the state forward: two SkytaleClients on one `data_dir` both encrypt with the same
//! MLS epoch secrets and generations, and the other members then fail to decrypt one of them for good. So the
//! directory is locked while its owner lives, with an OS lock (`flock` on Unix, `LockFileEx` on Windows) on
//! [`LOCK_FILE`]: the OS releases it when the process ends however it ends, so a crash never leaves a stale lock
//! to clean up by hand. The holder writes its pid into the file, so that the process refused can say who holds it.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The lock file inside a locked directory.
pub const LOCK_FILE: &str = "skytale.lock";

/// Why a directory could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another open lock holds it: another process, or another client of this one.
    #[error("{} is in use by {}", dir.display(), describe_holder(*holder))]
    Held { dir: PathBuf, holder: Option<u32> },
    #[error("cannot lock {}: {source}", dir.display())]
    Io { dir: PathBuf, source: std::io::Error },
}

fn describe_holder(holder: Option<u32>) -> String {
    match holder {
        Some(pid) if pid == std::process::id() => format!("this process (pid {pid}), which has it open already"),
        Some(pid) => format!("process {pid}"),
        None => "another process".to_owned(),
    }
}

/// An exclusive lock on a directory, held until dropped.
#[derive(Debug)]
pub struct DirLock {
    // Holding the locked file is what holds the lock; closing it releases the lock.
    _file: File,
}

impl DirLock {
    /// Locks `dir`, which must exist, or says who holds it. Never waits.
    pub fn acquire(dir: &Path) -> Result<Self, LockError> {
        let io = |source| LockError::Io { dir: dir.to_owned(), source };
        // Not truncated on open: the file may be another process's, whose pid is to be read.
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join(LOCK_FILE))
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(LockError::Held { dir: dir.to_owned(), holder: holder(&mut file) })
            }
            Err(TryLockError::Error(error)) => return Err(io(error)),
        }
        file.set_len(0).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        Ok(Self { _file: file })
    }
}

/// The pid a holder wrote, if it has written it yet.
fn holder(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_naming_the_holder_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let first = DirLock::acquire(dir.path()).unwrap();
        let refused = DirLock::acquire(dir.path()).unwrap_err();
        let pid = std::process::id();
        assert!(matches!(refused, LockError::Held { holder: Some(holder), .. } if holder == pid), "{refused:?}");
        assert_eq!(
            refused.to_string(),
            format!("{} is in use by this process (pid {pid}), which has it open already", dir.path().display())
        );
        drop(first);
        let again = DirLock::acquire(dir.path()).unwrap();
        assert_eq!(std::fs::read_to_string(dir.path().join(LOCK_FILE)).unwrap(), format!("{pid}\n"));
        drop(again);
    }

    #[test]
    fn a_missing_directory_is_an_io_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        let error = DirLock::acquire(&missing).unwrap_err();
        assert!(matches!(error, LockError::Io { .. }), "{error:?}");
        assert!(error.to_string().starts_with(&format!("cannot lock {}: ", missing.display())), "{error}");
    }
}
