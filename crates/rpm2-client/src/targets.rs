//! What a word of `stop`/`restart`/`reload`/`delete` names, for the forms
//! the daemon cannot resolve alone because they need the caller's view:
//!
//! - `/regex/`: the processes whose name the regex matches (pm2 drops
//!   every `/` of the word and tests the rest against each name);
//! - a script path (`echo.js`, `./app/server.js`): the processes whose
//!   script is that file, resolved against the caller's directory, along
//!   with the processes of that name (pm2's `getProcessIdByName`).
//!
//! Other words (`all`, ids, names, namespaces) go to the daemon as typed.

use std::path::{Component, Path, PathBuf};

use rpm2_proto::{ErrorCode, ProcessInfo, Target};

use crate::{Client, ClientError};

/// `/…/` with something between the slashes.
#[must_use]
pub fn is_regex(word: &str) -> bool {
    word.len() > 2 && word.starts_with('/') && word.ends_with('/')
}

/// The names a `/regex/` word matches, compiled once.
#[derive(Debug)]
pub struct NameRegex(regex::Regex);

impl NameRegex {
    /// # Errors
    /// `BAD_REQUEST` when the pattern does not compile.
    pub fn parse(word: &str) -> Result<Self, ClientError> {
        let pattern = word.replace('/', "");
        regex::Regex::new(&pattern).map(Self).map_err(|e| {
            ClientError::rejected(ErrorCode::BadRequest, format!("invalid regex {word}: {e}"))
        })
    }

    #[must_use]
    pub fn matches(&self, name: &str) -> bool {
        self.0.is_match(name)
    }
}

impl Client {
    /// `words` as targets, with regexes and script paths turned into the
    /// ids they name (`cwd` is where relative paths start). A regex that
    /// matches nothing is `PROCESS_NOT_FOUND`, as in pm2 ("No process
    /// found"); an unknown word is left to the daemon, which says so.
    ///
    /// # Errors
    /// An empty word or a bad regex (`BAD_REQUEST`), a regex matching no
    /// process, or the daemon's errors.
    pub fn resolve_words(
        &mut self,
        words: &[String],
        cwd: &Path,
    ) -> Result<Vec<Target>, ClientError> {
        let mut list: Option<Vec<ProcessInfo>> = None;
        let mut out = Vec::new();
        for word in words {
            let target: Target = word
                .parse()
                .map_err(|e| ClientError::rejected(ErrorCode::BadRequest, format!("{e}")))?;
            let Target::Name(name) = target else {
                out.push(target);
                continue;
            };
            if list.is_none() {
                list = Some(self.list()?);
            }
            let procs = list.as_deref().unwrap_or_default();
            if is_regex(&name) {
                let re = NameRegex::parse(&name)?;
                let ids: Vec<Target> = procs
                    .iter()
                    .filter(|p| re.matches(&p.name))
                    .map(|p| Target::Id(p.pm_id))
                    .collect();
                if ids.is_empty() {
                    return Err(ClientError::rejected(
                        ErrorCode::ProcessNotFound,
                        format!("No process found matching {name}"),
                    ));
                }
                out.extend(ids);
                continue;
            }
            let path = normalize(&cwd.join(&name));
            let by_script = procs
                .iter()
                .any(|p| Path::new(&p.pm2_env.pm_exec_path) == path);
            if by_script {
                out.extend(
                    procs
                        .iter()
                        .filter(|p| p.name == name || Path::new(&p.pm2_env.pm_exec_path) == path)
                        .map(|p| Target::Id(p.pm_id)),
                );
            } else {
                out.push(Target::Name(name));
            }
        }
        Ok(out)
    }
}

/// `a/./b/../c` → `a/c`, without touching the file system (Node's
/// `path.resolve`, which pm2 compares with).
#[must_use]
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regex_words() {
        assert!(is_regex("/echo-[1,2]/") && is_regex("/a/b/"));
        assert!(!is_regex("/") && !is_regex("//") && !is_regex("echo") && !is_regex("/tmp/x.js"));
        let re = NameRegex::parse("/echo-[1,2]/").unwrap();
        assert!(re.matches("echo-1") && re.matches("echo-2") && !re.matches("echo-3"));
        let err = NameRegex::parse("/echo-[/").unwrap_err();
        assert_eq!(err.code(), ErrorCode::BadRequest);
        assert!(err.to_string().contains("invalid regex /echo-[/"), "{err}");
    }

    #[test]
    fn paths_resolve_like_node() {
        assert_eq!(normalize(Path::new("/a/./b/../c.js")), Path::new("/a/c.js"));
        assert_eq!(normalize(Path::new("/a/b/")), Path::new("/a/b"));
    }
}
