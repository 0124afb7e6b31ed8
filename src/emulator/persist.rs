//! `--state FILE`: the directory as compact JSON, written atomically (temp file + rename).
//!
//! Serialising needs the directory lock, so requests wait while it runs (≈ 1 s per 100k users
//! in a debug build); the saver runs on a blocking thread and spaces saves at least
//! [`SAVE_SPACING`] times the last save's duration apart, so it never holds the lock more than
//! a tenth of the time however large the tenant. The file write happens outside the lock.

use std::path::Path;

use super::errors::EmulatorError;
use super::model::Directory;
use super::server::{Emulator, lock};

/// Minimum gap between saves, in multiples of the last save's duration.
pub const SAVE_SPACING: u32 = 10;

pub fn save(emu: &Emulator, path: &Path) -> Result<(), EmulatorError> {
    let bytes = {
        let mut dir = lock(&emu.dir);
        dir.saved_at = Some(emu.clock.now());
        serde_json::to_vec(&*dir).unwrap_or_default()
    };
    let write_err = |source| EmulatorError::Write {
        path: path.display().to_string(),
        source,
    };
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, &bytes).map_err(write_err)?;
    std::fs::rename(&tmp, path).map_err(write_err)?;
    Ok(())
}

pub fn load(path: &Path) -> Result<Directory, EmulatorError> {
    let text = std::fs::read(path).map_err(|source| EmulatorError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let mut dir: Directory = serde_json::from_slice(&text).map_err(|e| EmulatorError::State {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    dir.reindex();
    Ok(dir)
}
