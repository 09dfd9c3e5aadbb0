//! Reading the files the daemon is told to read (`process.toml`, plugin
//! components) without trusting what they are: only regular files, never
//! blocking on open, never more than a size cap.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// The largest `process.toml` the daemon reads unless told otherwise, MiB.
pub const DEFAULT_MAX_PROCESS_MIB: u64 = 4;

/// Reads `path` whole if it is a regular file (following symlinks) of at
/// most `max` bytes. A FIFO, device, socket or directory is refused without
/// blocking: the file is opened non-blocking and its type checked on the
/// open descriptor, so swapping the file between check and read changes
/// nothing.
pub fn read_regular(path: &Path, max: u64) -> Result<Vec<u8>, String> {
    let name = path.display();
    let file: File = OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)
        .map_err(|e| format!("cannot read `{name}`: {e}"))?;
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot read `{name}`: {e}"))?;
    let kind = meta.file_type();
    if !kind.is_file() {
        let what = if kind.is_dir() {
            "a directory"
        } else if kind.is_fifo() {
            "a FIFO (named pipe)"
        } else if kind.is_char_device() {
            "a character device"
        } else if kind.is_block_device() {
            "a block device"
        } else if kind.is_socket() {
            "a socket"
        } else {
            "not a regular file"
        };
        return Err(format!(
            "`{name}` is {what}, not a regular file: refused without reading it"
        ));
    }
    let too_big = |size: u64| {
        format!(
            "`{name}` is {size} bytes, more than the {} MiB this file may have",
            max >> 20
        )
    };
    if meta.len() > max {
        return Err(too_big(meta.len()));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read `{name}`: {e}"))?;
    if bytes.len() as u64 > max {
        return Err(too_big(bytes.len() as u64));
    }
    Ok(bytes)
}

/// [`read_regular`] as UTF-8 text.
pub fn read_text(path: &Path, max: u64) -> Result<String, String> {
    let bytes = read_regular(path, max)?;
    String::from_utf8(bytes).map_err(|e| format!("`{}` is not UTF-8 text: {e}", path.display()))
}

/// [`read_text`], or `None` when there is no file at `path`.
pub fn read_text_if_any(path: &Path, max: u64) -> Result<Option<String>, String> {
    match read_text(path, max) {
        Ok(t) => Ok(Some(t)),
        Err(_) if !path.exists() => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_within_the_cap_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("p.toml");
        std::fs::write(&file, "x".repeat(100)).unwrap();
        assert_eq!(read_regular(&file, 100).unwrap().len(), 100);
        let e = read_regular(&file, 99).unwrap_err();
        assert!(e.contains("100 bytes"), "{e}");

        let fifo = dir.path().join("fifo");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        let e = read_regular(&fifo, 100).unwrap_err();
        assert!(e.contains("FIFO"), "{e}");

        let link = dir.path().join("zero");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        let e = read_regular(&link, 100).unwrap_err();
        assert!(e.contains("character device"), "{e}");

        let e = read_regular(dir.path(), 100).unwrap_err();
        assert!(e.contains("directory"), "{e}");
    }
}
