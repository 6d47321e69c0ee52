//! Apps of one load that would get in each other's way: two entries with
//! one name, and two apps writing one log file.
//!
//! pm2 7 starts every entry of a file, so two entries named alike run as
//! two processes under one name, and a later `start` of the file restarts
//! both with the last entry's environment. rpm2 keeps one app per name (a
//! second spec for a known name restarts it with that spec), so here the
//! entries would silently replace each other: the last one is kept, and
//! the warning names both.

use std::collections::BTreeMap;
use std::path::PathBuf;

use rpm2_proto::{file_safe_name, AppSpec, LogTarget};

/// Warn about entries that share a name, naming both; the start plan
/// keeps the last of them (`last_of_each_name`).
pub(crate) fn warn_duplicate_names(specs: &[(usize, AppSpec)], warnings: &mut Vec<String>) {
    // Names are unique across namespaces, as in pm2's process list.
    let mut last: BTreeMap<&str, usize> = BTreeMap::new();
    for (pos, (_, spec)) in specs.iter().enumerate() {
        last.insert(&spec.name, pos);
    }
    for (pos, (index, spec)) in specs.iter().enumerate() {
        let winner = last[spec.name.as_str()];
        if winner == pos {
            continue;
        }
        let (w_index, w_spec) = &specs[winner];
        warnings.push(format!(
            "apps #{} (script {}) and #{} (script {}) are both named \"{}\": rpm2 runs one app \
             per name, so only #{} is started (pm2 7 would run both under one name); give one \
             of them another name",
            index + 1,
            spec.script.display(),
            w_index + 1,
            w_spec.script.display(),
            spec.name,
            w_index + 1,
        ));
    }
}

/// The last spec of each name, in the order they were given: what is
/// started when entries share a name (see `warn_duplicate_names`).
#[must_use]
pub fn last_of_each_name(specs: Vec<AppSpec>) -> Vec<AppSpec> {
    let mut last: BTreeMap<String, usize> = BTreeMap::new();
    for (pos, spec) in specs.iter().enumerate() {
        last.insert(spec.name.clone(), pos);
    }
    specs
        .into_iter()
        .enumerate()
        .filter(|(pos, spec)| last.get(&spec.name) == Some(pos))
        .map(|(_, spec)| spec)
        .collect()
}

/// Warn when two apps would write one log file: distinct names can map to
/// one file name (`äb` and `öb` both give `-b-out.log`), or two apps can
/// name the same path. Only apps whose workers share their files matter:
/// the others get a `-<id>` suffix.
pub(crate) fn warn_shared_logs(specs: &[AppSpec], warnings: &mut Vec<String>) {
    let mut owners: BTreeMap<PathBuf, &str> = BTreeMap::new();
    for spec in specs.iter().filter(|s| s.merge_logs) {
        let base = file_safe_name(&spec.name);
        let files = [
            file_of(&spec.out_file, format!("{base}-out.log")),
            file_of(&spec.error_file, format!("{base}-error.log")),
            spec.log_file
                .as_ref()
                .and_then(|t| file_of(t, format!("{base}.log"))),
        ];
        for file in files.into_iter().flatten() {
            match owners.get(&file) {
                Some(&other) if other != spec.name => warnings.push(format!(
                    "apps \"{other}\" and \"{}\" would write the same log file {} (file names \
                     keep only [A-Za-z0-9.-] of an app name); set out_file/error_file for one \
                     of them",
                    spec.name,
                    file.display()
                )),
                Some(_) => {}
                None => {
                    owners.insert(file, &spec.name);
                }
            }
        }
    }
}

/// The file a target names: a default one under the home's `logs/`
/// (relative here, which is enough to compare), or the path given.
fn file_of(target: &LogTarget, default: String) -> Option<PathBuf> {
    match target {
        LogTarget::Null => None,
        LogTarget::Default => Some(PathBuf::from("logs").join(default)),
        LogTarget::Path(p) => Some(p.clone()),
    }
}
