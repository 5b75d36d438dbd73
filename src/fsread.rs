//! Reading the files a user points platform at (config, catalog, templates, kubeconfig, token
//! files): only regular files (a FIFO never ends and a device like `/dev/zero` never stops), at most
//! a size cap, UTF-8 with an optional byte-order mark (dropped). A symlink to a regular file is
//! followed (a common way to share a config).

use std::io::Read;
use std::path::{Path, PathBuf};

/// Cap for configuration-like inputs: far above any real config, catalog file, template,
/// kubeconfig or token, far below what would hurt.
pub const MAX_INPUT_BYTES: u64 = 16 * 1024 * 1024;

/// `e` without the `at path "…/.platform-XXXX.tmp"` the tempfile crate appends to its errors: a
/// write error names the file being written (the destination), never the temporary file beside it
/// that the user never asked for and that no longer exists.
pub fn without_temp_path(e: std::io::Error) -> std::io::Error {
    if e.get_ref().is_none() {
        return e;
    }
    let text = e.to_string();
    match text.rsplit_once(" at path \"") {
        Some((reason, _)) => std::io::Error::new(e.kind(), reason.to_string()),
        None => e,
    }
}

/// Why a file could not be read; shown as `<path>: <reason>` ([`ReadError::reason`] alone for a
/// caller whose message names the file already).
#[derive(Debug)]
pub enum ReadError {
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    NotRegular {
        path: PathBuf,
        what: &'static str,
    },
    TooLarge {
        path: PathBuf,
        cap: u64,
        kind: &'static str,
    },
    NotUtf8 {
        path: PathBuf,
        offset: usize,
    },
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path().display(), self.reason())
    }
}

impl std::error::Error for ReadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ReadError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl ReadError {
    /// The file that could not be read.
    pub fn path(&self) -> &Path {
        match self {
            ReadError::Io { path, .. }
            | ReadError::NotRegular { path, .. }
            | ReadError::TooLarge { path, .. }
            | ReadError::NotUtf8 { path, .. } => path,
        }
    }

    /// What is wrong, without the path.
    pub fn reason(&self) -> String {
        match self {
            ReadError::Io { source, .. } => source.to_string(),
            ReadError::NotRegular { what, .. } => {
                format!("is {what}, not a regular file: point it at a file")
            }
            ReadError::TooLarge { cap, kind, .. } => format!(
                "larger than {} MiB: this is not a {kind} (wrong file?)",
                cap / (1024 * 1024)
            ),
            ReadError::NotUtf8 { offset, .. } => {
                format!("not UTF-8 text (byte {offset}): save it as UTF-8")
            }
        }
    }

    /// The underlying I/O error kind, when there is one (callers tell "not found" apart).
    pub fn io_kind(&self) -> Option<std::io::ErrorKind> {
        match self {
            ReadError::Io { source, .. } => Some(source.kind()),
            _ => None,
        }
    }
}

fn describe(ft: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_dir() {
        "a directory"
    } else if ft.is_fifo() {
        "a FIFO (named pipe)"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_block_device() {
        "a block device"
    } else if ft.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// Read `path` as text: a regular file (symlinks followed) of at most `cap` bytes; a leading UTF-8
/// byte-order mark is dropped. `kind` names the file in the too-large message ("config file").
pub fn read_text(path: &Path, cap: u64, kind: &'static str) -> Result<String, ReadError> {
    let io = |source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    };
    // Check the type before opening: opening a FIFO for reading blocks until a writer comes.
    let meta = std::fs::metadata(path).map_err(io)?;
    if !meta.file_type().is_file() {
        return Err(ReadError::NotRegular {
            path: path.to_path_buf(),
            what: describe(&meta.file_type()),
        });
    }
    if meta.len() > cap {
        return Err(ReadError::TooLarge {
            path: path.to_path_buf(),
            cap,
            kind,
        });
    }
    let file = std::fs::File::open(path).map_err(io)?;
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // The file may grow between the check and the read: never read past the cap.
    file.take(cap + 1).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 > cap {
        return Err(ReadError::TooLarge {
            path: path.to_path_buf(),
            cap,
            kind,
        });
    }
    let text = String::from_utf8(bytes).map_err(|e| ReadError::NotUtf8 {
        path: path.to_path_buf(),
        offset: e.utf8_error().valid_up_to(),
    })?;
    Ok(match text.strip_prefix('\u{feff}') {
        Some(rest) => rest.to_string(),
        None => text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_files_only_capped_bom_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.yaml");
        std::fs::write(&f, "\u{feff}a: 1\n").unwrap();
        assert_eq!(read_text(&f, 100, "config file").unwrap(), "a: 1\n");
        let link = dir.path().join("l.yaml");
        std::os::unix::fs::symlink(&f, &link).unwrap();
        assert_eq!(read_text(&link, 100, "config file").unwrap(), "a: 1\n");
        assert!(matches!(
            read_text(&f, 3, "config file"),
            Err(ReadError::TooLarge { .. })
        ));
        assert!(matches!(
            read_text(dir.path(), 100, "config file"),
            Err(ReadError::NotRegular {
                what: "a directory",
                ..
            })
        ));
        let zero = dir.path().join("z.yaml");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        let e = read_text(&zero, 100, "config file").unwrap_err();
        assert!(e.to_string().contains("character device"), "{e}");
        std::fs::write(&f, [0x61, 0xff, 0x62]).unwrap();
        assert!(matches!(
            read_text(&f, 100, "config file"),
            Err(ReadError::NotUtf8 { offset: 1, .. })
        ));
    }
}
