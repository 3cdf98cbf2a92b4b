//! Noticing that a key file changed, without reading it: servers poll a key file's stamp every few seconds and
//! reload only when it differs from the one they last saw.

use std::path::Path;

/// What a file looks like from outside. Every write of [`crate::rotate_signing_key`] renames a new file into
/// place, so its inode changes even where modification times are coarse; a `chmod` changes its change time, so a
/// file whose mode was refused is read again once the mode is fixed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileStamp {
    #[cfg(unix)]
    identity: (u64, u64, u32),
    len: u64,
    modified: Option<std::time::SystemTime>,
    #[cfg(unix)]
    changed: (i64, i64),
}

impl FileStamp {
    /// The stamp of the file at `path`; `None` when it cannot be looked at (it is missing, or a directory on its
    /// path is not readable), which is itself a state to compare with.
    pub fn of(path: &Path) -> Option<Self> {
        let meta = std::fs::metadata(path).ok()?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            Some(Self {
                identity: (meta.dev(), meta.ino(), meta.mode()),
                len: meta.len(),
                modified: meta.modified().ok(),
                changed: (meta.ctime(), meta.ctime_nsec()),
            })
        }
        #[cfg(not(unix))]
        Some(Self { len: meta.len(), modified: meta.modified().ok() })
    }
}
