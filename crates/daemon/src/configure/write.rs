//! Replacing the configuration file atomically: the new text goes to a
//! fresh file of mode 0600 in the same directory, is flushed to disk, and is
//! renamed over the old file, so a reader (or a crash) sees either the old
//! file or the new one, never a mix. The directory is synced after the
//! rename so the new name is durable too.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The directory a file lives in (`.` for a bare file name).
pub fn parent_dir(file: &Path) -> PathBuf {
    match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Write `text` to `file` as described in the module documentation.
pub fn replace_file(file: &Path, text: &str) -> io::Result<()> {
    let dir = parent_dir(file);
    let name = file
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path names no file"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".vmfence-{}.tmp", std::process::id()));
    let tmp = dir.join(tmp_name);
    let result = write_then_rename(&tmp, file, &dir, text);
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn write_then_rename(tmp: &Path, file: &Path, dir: &Path, text: &str) -> io::Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(tmp)?;
    // The umask can only take bits away; make the mode exact anyway.
    f.set_permissions(fs::Permissions::from_mode(0o600))?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    drop(f);
    fs::rename(tmp, file)?;
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::os::unix::fs::MetadataExt;

    use super::*;

    #[test]
    fn replaces_with_mode_0600_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("fence_virt.conf");
        fs::write(&file, "old").unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
        replace_file(&file, "new\n").unwrap();
        assert_eq!(fs::read_to_string(&file).unwrap(), "new\n");
        assert_eq!(fs::metadata(&file).unwrap().mode() & 0o7777, 0o600);
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("fence_virt.conf")]);
    }

    #[test]
    fn a_failed_write_leaves_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sub");
        // A directory in the way: the rename fails, the temporary file goes.
        fs::create_dir(&file).unwrap();
        fs::write(file.join("x"), "keep").unwrap();
        assert!(replace_file(&file, "new").is_err());
        assert_eq!(fs::read_to_string(file.join("x")).unwrap(), "keep");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn parent_of_a_bare_name_is_the_current_directory() {
        assert_eq!(parent_dir(Path::new("x.conf")), PathBuf::from("."));
        assert_eq!(parent_dir(Path::new("/etc/x.conf")), PathBuf::from("/etc"));
    }
}
