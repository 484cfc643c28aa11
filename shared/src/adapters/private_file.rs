//! Files only their owner may read (signing secrets, a CA key), created afresh: never
//! opened through a file or link someone left at that path.

use std::fs::{File, OpenOptions};
use std::path::Path;

/// A new file at `path`, mode 0600 on Unix; an error if anything is there already.
pub fn create(path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}
