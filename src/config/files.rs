//! Finding and reading pair files: a file, or a directory walked with its subfolders.
//!
//! Only regular files are read (a FIFO would block the reader forever, `/dev/zero` would grow
//! without end), at most [`MAX_FILE_BYTES`] of each, and text that is not UTF-8 is reported at
//! the line and column of its first bad byte.

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::Problem;

/// A pair file is a few kilobytes; a megabyte leaves room for hundreds of pairs and keeps a
/// wrong path (a log, a disk image) from being read whole into memory.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// Directories deeper than this below the configuration root are not walked (a guard against
/// symlink loops that canonicalization cannot see, e.g. on special file systems).
const MAX_DEPTH: usize = 16;

/// The pair files under `path` with their text, and a problem for each path that cannot be
/// used. A missing `path` is one problem, nothing else.
pub fn read_all(path: &Path) -> (Vec<(PathBuf, String)>, Vec<Problem>) {
    let mut problems = Vec::new();
    let mut files = Vec::new();
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => {
            let mut visited = HashSet::new();
            walk(path, 0, &mut visited, &mut files, &mut problems);
            files.sort();
            if files.is_empty() && problems.is_empty() {
                problems.push(at_start(
                    path,
                    "no *.yaml or *.yml files in this directory or its subfolders".into(),
                    Some("see config/examples/ for a pair to start from".into()),
                ));
            }
        }
        Ok(m) => match not_regular(&m) {
            Some(what) => problems.push(not_a_file(path, what)),
            None => files.push(path.to_owned()),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => problems.push(at_start(
            path,
            "no such file or directory".into(),
            Some("pass a pair file or a directory of *.yaml files".into()),
        )),
        Err(e) => problems.push(at_start(
            path,
            format!("cannot read configuration: {e}"),
            Some("pass a pair file or a directory of *.yaml files".into()),
        )),
    }
    let mut sources = Vec::new();
    for file in files {
        match read_one(&file) {
            Ok(text) => sources.push((file, text)),
            Err(problem) => problems.push(*problem),
        }
    }
    (sources, problems)
}

/// Collects `*.yaml`/`*.yml` below `dir`. Hidden entries are skipped: a Kubernetes ConfigMap
/// volume keeps its files in `..data` and `..<timestamp>` beside the visible symlinks, which
/// would otherwise be read twice or three times.
fn walk(
    dir: &Path,
    depth: usize,
    visited: &mut HashSet<PathBuf>,
    files: &mut Vec<PathBuf>,
    problems: &mut Vec<Problem>,
) {
    if depth > MAX_DEPTH {
        problems.push(at_start(
            dir,
            format!("more than {MAX_DEPTH} folders deep; not read"),
            Some("keep pair files in a shallower tree".into()),
        ));
        return;
    }
    // A symlinked folder that leads back up would otherwise be walked forever.
    if let Ok(real) = std::fs::canonicalize(dir)
        && !visited.insert(real)
    {
        return;
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            problems.push(at_start(dir, format!("cannot read directory: {e}"), None));
            return;
        }
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let p = entry.path();
        // Follows symlinks: ConfigMap files are symlinks.
        let Ok(meta) = std::fs::metadata(&p) else {
            continue;
        };
        if meta.is_dir() {
            walk(&p, depth + 1, visited, files, problems);
            continue;
        }
        let is_yaml = p
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e == "yaml" || e == "yml");
        if !is_yaml {
            continue;
        }
        match not_regular(&meta) {
            Some(what) => problems.push(not_a_file(&p, what)),
            None => files.push(p),
        }
    }
}

/// What a non-regular file is, for the message; `None` for a regular file.
fn not_regular(meta: &std::fs::Metadata) -> Option<&'static str> {
    if meta.is_file() {
        return None;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let t = meta.file_type();
        if t.is_fifo() {
            return Some("a named pipe (FIFO)");
        }
        if t.is_char_device() {
            return Some("a character device");
        }
        if t.is_block_device() {
            return Some("a block device");
        }
        if t.is_socket() {
            return Some("a socket");
        }
    }
    Some("not a regular file")
}

fn not_a_file(path: &Path, what: &str) -> Problem {
    at_start(
        path,
        format!("not a regular file ({what}); only regular files are read"),
        Some("pass a pair file or a directory of *.yaml files".into()),
    )
}

/// Reads one regular file: at most [`MAX_FILE_BYTES`], as UTF-8.
fn read_one(path: &Path) -> Result<String, Box<Problem>> {
    let problem = |message: String, hint: Option<String>| Box::new(at_start(path, message, hint));
    // Checked before opening: opening a FIFO for reading blocks until a writer comes.
    let meta =
        std::fs::metadata(path).map_err(|e| problem(format!("cannot read file: {e}"), None))?;
    if let Some(what) = not_regular(&meta) {
        return Err(Box::new(not_a_file(path, what)));
    }
    let file =
        std::fs::File::open(path).map_err(|e| problem(format!("cannot read file: {e}"), None))?;
    // The file may have been swapped between the check and the open.
    if let Ok(meta) = file.metadata()
        && let Some(what) = not_regular(&meta)
    {
        return Err(Box::new(not_a_file(path, what)));
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| problem(format!("cannot read file: {e}"), None))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(problem(
            format!(
                "the file is larger than {} KiB; a pair file is a few KiB",
                MAX_FILE_BYTES / 1024
            ),
            Some("check the path; split a large topology into several files".into()),
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        // Everything before the bad byte is valid UTF-8 by construction.
        let before = std::str::from_utf8(valid).unwrap_or_default();
        let line = before.matches('\n').count() as u64 + 1;
        let column = before
            .rsplit('\n')
            .next()
            .map_or(0, |l| l.chars().count() as u64)
            + 1;
        Box::new(Problem {
            file: path.to_owned(),
            line,
            column,
            message: "the file is not valid UTF-8 here".into(),
            hint: Some("save the file as UTF-8".into()),
        })
    })
}

fn at_start(file: &Path, message: String, hint: Option<String>) -> Problem {
    Problem {
        file: file.to_owned(),
        line: 1,
        column: 1,
        message,
        hint,
    }
}
