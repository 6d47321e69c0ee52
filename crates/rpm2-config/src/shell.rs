//! What the caller's shell contributes to loading: its environment, its
//! cwd and `--only`. Shared by the CLI and the addon (through
//! `rpm2-client`), so both load a config the same way.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{Map, Value};

use crate::LoadOptions;

/// This process's environment (the base of apps' env, and `--update-env`).
#[must_use]
pub fn shell_env() -> BTreeMap<String, String> {
    std::env::vars().collect()
}

/// Options for loading from this shell. `only` entries may hold several
/// names separated by commas (`--only a,b`); `cwd` defaults to the current
/// directory.
pub fn load_options(
    only: impl IntoIterator<Item = String>,
    env_name: Option<String>,
    overrides: Map<String, Value>,
    cwd: Option<PathBuf>,
) -> std::io::Result<LoadOptions> {
    let cwd = match cwd {
        Some(c) => c,
        None => std::env::current_dir().map_err(|e| {
            std::io::Error::new(e.kind(), format!("cannot read the current directory: {e}"))
        })?,
    };
    Ok(LoadOptions {
        only: only
            .into_iter()
            .flat_map(|o| {
                o.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect(),
        env_name,
        shell_env: shell_env(),
        cwd,
        overrides,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_is_split_on_commas() {
        let o = load_options(
            ["a, b".to_owned(), "c,".to_owned()],
            None,
            Map::new(),
            Some("/x".into()),
        )
        .unwrap();
        assert_eq!(o.only, ["a", "b", "c"]);
        assert_eq!(o.cwd, PathBuf::from("/x"));
    }
}
