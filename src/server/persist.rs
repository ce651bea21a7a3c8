//! Reading and writing the state file.
//!
//! The file is JSON (the [`Saved`] structure). It is replaced atomically: the
//! new state goes to a temporary file beside it, is flushed to disk, and is
//! then renamed over the old one, so a crash leaves either the old or the new
//! state, never half of one.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::error::ServerError;
use super::state::{SAVE_FORMAT, Saved};

fn temp_path(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Writes `state` to `path` atomically.
pub(crate) fn save(path: &Path, state: &Saved) -> io::Result<()> {
    let data = serde_json::to_vec(state).map_err(io::Error::other)?;
    let tmp = temp_path(path);
    {
        let mut f = File::create(&tmp)?;
        f.write_all(&data)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)
}

/// Checks that the state can be saved at `path`: that the temporary file
/// every save goes through can be created beside it. A server that would
/// only find out at its first save, and then warn on every change, must
/// not start.
///
/// # Errors
///
/// [`ServerError::Unusable`] naming the file and the reason.
pub(crate) fn check_writable(path: &Path) -> Result<(), ServerError> {
    let tmp = temp_path(path);
    let result = match OpenOptions::new().write(true).create_new(true).open(&tmp) {
        Ok(f) => {
            drop(f);
            fs::remove_file(&tmp)
        }
        // Left over from a crash: it is overwritten at the next save.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            OpenOptions::new().write(true).open(&tmp).map(drop)
        }
        Err(e) => Err(e),
    };
    result.map_err(|e| {
        ServerError::Unusable(format!(
            "state file {}: cannot be written there: {}",
            path.display(),
            crate::error::plain(&e)
        ))
    })
}

/// Reads the state saved at `path`; `None` if there is no such file.
///
/// # Errors
///
/// [`ServerError::StateFile`] naming the file if it exists but cannot be
/// used, so that a damaged state is never silently replaced by an empty one.
pub(crate) fn load(path: &Path) -> Result<Option<Saved>, ServerError> {
    let data = match fs::read(path) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(ServerError::StateFile(format!(
                "cannot read state file {}: {}",
                path.display(),
                crate::error::plain(&e)
            )));
        }
    };
    let bad = |msg: String| {
        ServerError::StateFile(format!("state file {} is unusable: {msg}", path.display()))
    };
    let saved: Saved = serde_json::from_slice(&data).map_err(|e| bad(e.to_string()))?;
    if saved.format != SAVE_FORMAT {
        return Err(bad(format!(
            "it has format {}, this server writes format {SAVE_FORMAT}",
            saved.format
        )));
    }
    Ok(Some(saved))
}
