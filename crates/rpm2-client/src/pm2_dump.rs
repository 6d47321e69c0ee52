//! `resurrect --from`: find pm2's saved list (a pm2 home or the file
//! itself) and read it into app specs; `rpm2_config::from_pm2_dump` does
//! the conversion, `Client::start_saved` the start.

use std::path::{Path, PathBuf};

use rpm2_config::{ConfigError, LoadOptions, Pm2Dump};
use rpm2_proto::ErrorCode;

use crate::ClientError;

/// The file pm2 writes on `pm2 save`, in its home.
pub const DUMP_FILE: &str = "dump.pm2";

/// A pm2 dump, read and resolved.
#[derive(Debug, Clone)]
pub struct Pm2Saved {
    /// The file read.
    pub file: PathBuf,
    /// The pm2 home it belongs to (the file's folder when a file was given).
    pub home: PathBuf,
    pub dump: Pm2Dump,
}

/// Reads `from` (a pm2 home or a dump file); nothing is started.
///
/// # Errors
/// A missing path or dump file (`NO_DUMP`), an unreadable or malformed
/// file, an entry without a script, and any option the loader refuses.
pub fn load(from: &Path, opts: &LoadOptions) -> Result<Pm2Saved, ClientError> {
    let from = if from.is_absolute() {
        from.to_path_buf()
    } else {
        opts.cwd.join(from)
    };
    let (file, home) = locate(&from)?;
    let shown = file.display().to_string();
    let text = std::fs::read_to_string(&file).map_err(|e| ConfigError::Read {
        file: shown.clone(),
        message: e.to_string(),
    })?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| ConfigError::Parse {
        file: shown.clone(),
        message: format!("not a pm2 dump (invalid JSON: {e})"),
    })?;
    let dump = rpm2_config::from_pm2_dump(value, &shown, Some(&home), opts)?;
    Ok(Pm2Saved { file, home, dump })
}

/// The dump file and the pm2 home it belongs to.
fn locate(from: &Path) -> Result<(PathBuf, PathBuf), ClientError> {
    let no_dump = |message: String| ClientError::rejected(ErrorCode::NoDump, message);
    if from.is_dir() {
        let file = from.join(DUMP_FILE);
        if file.is_file() {
            return Ok((file, from.to_path_buf()));
        }
        let backup = from.join(format!("{DUMP_FILE}.bak"));
        let hint = if backup.is_file() {
            format!(" (its backup is there: --from {})", backup.display())
        } else {
            " (pm2 writes it on `pm2 save`)".to_owned()
        };
        return Err(no_dump(format!(
            "{} holds no {DUMP_FILE}{hint}",
            from.display()
        )));
    }
    if from.is_file() {
        let home = from
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        return Ok((from.to_path_buf(), home));
    }
    Err(no_dump(format!(
        "{}: no such pm2 home or dump file",
        from.display()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(cwd: &Path) -> LoadOptions {
        LoadOptions {
            cwd: cwd.to_path_buf(),
            ..LoadOptions::default()
        }
    }

    #[test]
    fn missing_places_and_bad_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let o = opts(dir.path());
        let err = load(Path::new("nope"), &o).unwrap_err();
        assert_eq!(err.code(), ErrorCode::NoDump);
        assert!(err.to_string().contains("no such pm2 home"), "{err}");
        let err = load(dir.path(), &o).unwrap_err();
        assert_eq!(err.code(), ErrorCode::NoDump);
        assert!(err.to_string().contains("holds no dump.pm2"), "{err}");
        std::fs::write(dir.path().join("dump.pm2"), "[{").unwrap();
        let err = load(dir.path(), &o).unwrap_err();
        assert_eq!(err.code(), ErrorCode::ConfigParse);
        assert!(err.to_string().contains("invalid JSON"), "{err}");
        std::fs::write(dir.path().join("dump.pm2"), "[]").unwrap();
        let saved = load(&dir.path().join("dump.pm2"), &o).unwrap();
        assert!(saved.dump.loaded.apps.is_empty());
    }
}
