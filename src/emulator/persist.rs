//! `--state FILE`: the directory as JSON, written atomically (temp file + rename).

use std::path::Path;

use super::errors::EmulatorError;
use super::model::Directory;
use super::server::{Emulator, lock};

pub fn save(emu: &Emulator, path: &Path) -> Result<(), EmulatorError> {
    let bytes = {
        let mut dir = lock(&emu.dir);
        dir.saved_at = Some(emu.clock.now());
        serde_json::to_vec_pretty(&*dir).unwrap_or_default()
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
    serde_json::from_slice(&text).map_err(|e| EmulatorError::State {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}
