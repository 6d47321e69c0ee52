//! `ignore_watch`: which changed paths do not restart an app.
//!
//! pm2 gives the patterns to chokidar as `ignored`: globs (dotfiles included)
//! joined to the app's cwd, and a folder that matches hides everything in it.
//! rpm2 does the same, compiled once when the watcher is armed, plus what
//! pm2's own default (`node_modules` and dotfiles anywhere) leads users to
//! expect: a pattern without a `/` (`node_modules`, `.*`, `*.log`) names an
//! entry at any depth below the watched folder, as in `.gitignore`. Any `/`
//! (`logs/*`, `./dist`, `tmp/`) anchors a pattern at the cwd, as in pm2.

use std::path::{Component, Path, PathBuf};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

/// Compiled `ignore_watch` patterns of one app.
#[derive(Debug)]
pub struct WatchIgnore {
    /// Folders below which names are matched: the cwd and the watched paths.
    roots: Vec<PathBuf>,
    /// Patterns without a `/`, matched against each name below a root.
    names: GlobSet,
    /// Patterns with a `/`, anchored at the cwd unless absolute, matched
    /// against the path and each folder above it.
    paths: GlobSet,
}

impl WatchIgnore {
    /// Compiles `patterns` for an app in `cwd` that watches `watched`.
    /// Returns the matcher and one message per pattern that is not a valid
    /// glob (left out).
    pub fn new(cwd: &Path, watched: &[PathBuf], patterns: &[String]) -> (Self, Vec<String>) {
        let mut names = GlobSetBuilder::new();
        let mut paths = GlobSetBuilder::new();
        let mut invalid = Vec::new();
        let anchor = globset::escape(&cwd.to_string_lossy());
        for pattern in patterns {
            let p = pattern.trim_start_matches("./").trim_end_matches('/');
            let (set, full) = if p.is_empty() {
                continue;
            } else if !pattern.contains('/') {
                (&mut names, p.to_owned())
            } else if p.starts_with('/') {
                (&mut paths, p.to_owned())
            } else {
                (&mut paths, format!("{}/{p}", anchor.trim_end_matches('/')))
            };
            // `*` stays within one name; `**` crosses folders.
            match GlobBuilder::new(&full).literal_separator(true).build() {
                Ok(glob) => {
                    set.add(glob);
                }
                Err(e) => invalid.push(format!("ignore_watch {pattern:?}: {e}")),
            }
        }
        let mut build = |b: GlobSetBuilder| {
            b.build().unwrap_or_else(|e| {
                invalid.push(format!("ignore_watch: {e}"));
                GlobSet::empty()
            })
        };
        let me = Self {
            roots: std::iter::once(cwd)
                .chain(watched.iter().map(PathBuf::as_path))
                .map(Path::to_path_buf)
                .collect(),
            names: build(names),
            paths: build(paths),
        };
        (me, invalid)
    }

    /// True when a change at `path` must not restart the app.
    pub fn is_ignored(&self, path: &Path) -> bool {
        if !self.paths.is_empty() && path.ancestors().any(|a| self.paths.is_match(a)) {
            return true;
        }
        let below = self
            .roots
            .iter()
            .find_map(|root| path.strip_prefix(root).ok())
            .unwrap_or(path);
        below
            .components()
            .any(|c| matches!(c, Component::Normal(name) if self.names.is_match(name)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ignore(patterns: &[&str]) -> WatchIgnore {
        let patterns: Vec<String> = patterns.iter().map(|&p| p.to_owned()).collect();
        let (w, invalid) = WatchIgnore::new(Path::new("/app"), &[], &patterns);
        assert!(invalid.is_empty(), "{invalid:?}");
        w
    }

    fn check(w: &WatchIgnore, ignored: &[&str], kept: &[&str]) {
        for p in ignored {
            assert!(w.is_ignored(Path::new(p)), "{p} should be ignored");
        }
        for p in kept {
            assert!(!w.is_ignored(Path::new(p)), "{p} should restart");
        }
    }

    #[test]
    fn pm2_default_hides_node_modules_and_dotfiles_at_any_depth() {
        check(
            &ignore(&["node_modules", ".*"]),
            &[
                "/app/node_modules/x/index.js",
                "/app/packages/a/node_modules/y.js",
                "/app/.git/HEAD",
                "/app/src/.env",
            ],
            &["/app/src/index.js", "/app/config.json"],
        );
    }

    #[test]
    fn folder_glob_is_anchored_at_the_cwd() {
        check(
            &ignore(&["logs/*"]),
            &["/app/logs/out.log", "/app/logs/old/out.log"],
            &["/app/src/logs/out.log", "/app/logs", "/app/index.js"],
        );
    }

    #[test]
    fn double_star_crosses_folders() {
        check(
            &ignore(&["**/*.log"]),
            &["/app/out.log", "/app/a/b/out.log"],
            &["/app/out.txt", "/app/a/log.js"],
        );
    }

    #[test]
    fn name_glob_matches_at_any_depth_but_not_across_slashes() {
        check(
            &ignore(&["*.log"]),
            &["/app/out.log", "/app/tmp/x/err.log"],
            &["/app/out.log.js", "/app/logs/app.js"],
        );
    }

    #[test]
    fn plain_folder_path_dot_slash_and_absolute_patterns() {
        check(
            &ignore(&["./dist", "public/", "/app/tmp/*.pid", "src/gen"]),
            &[
                "/app/dist/a.js",
                "/app/public/x/y.css",
                "/app/tmp/app.pid",
                "/app/src/gen/a.ts",
            ],
            &["/app/src/dist/a.js", "/app/tmp/app.js", "/app/src/main.ts"],
        );
    }

    #[test]
    fn names_are_matched_below_the_watched_folder_only() {
        // A dotted folder above the cwd must not hide the whole app.
        let (w, _) = WatchIgnore::new(
            Path::new("/home/u/.apps/web"),
            &[PathBuf::from("/srv/.shared/conf")],
            &[".*".to_owned()],
        );
        check(
            &w,
            &["/home/u/.apps/web/.cache/x", "/srv/.shared/conf/.tmp"],
            &["/home/u/.apps/web/index.js", "/srv/.shared/conf/app.json"],
        );
    }

    #[test]
    fn cwd_with_glob_characters_is_taken_literally() {
        let (w, _) = WatchIgnore::new(Path::new("/srv/[web]"), &[], &["logs/*".to_owned()]);
        check(&w, &["/srv/[web]/logs/a"], &["/srv/w/logs/a"]);
    }

    #[test]
    fn an_invalid_pattern_is_reported_and_the_rest_still_apply() {
        let patterns = vec!["a[".to_owned(), "*.log".to_owned()];
        let (w, invalid) = WatchIgnore::new(Path::new("/app"), &[], &patterns);
        assert_eq!(invalid.len(), 1, "{invalid:?}");
        assert!(invalid[0].contains("a["));
        check(&w, &["/app/x.log"], &["/app/x.js"]);
    }
}
