//! pm2's `uid`/`gid` options: the user and groups a worker runs as. Names
//! and ids resolve through the system's user database when the app starts;
//! only a daemon running as root may switch users.

use std::ffi::CString;
use std::path::PathBuf;

use nix::unistd::{Gid, Group, Uid, User};

/// The identity a worker process takes before `exec`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunAs {
    pub uid: Uid,
    pub gid: Gid,
    /// Supplementary groups (the user's, from the group database).
    pub groups: Vec<Gid>,
    pub name: Option<String>,
    /// The user's home: the worker's `HOME`, as pm2 sets it.
    pub home: Option<PathBuf>,
}

/// Resolve an app's `uid`/`gid`; `None` when it has neither.
pub fn resolve(uid: Option<&str>, gid: Option<&str>) -> Result<Option<RunAs>, String> {
    if uid.is_none() && gid.is_none() {
        return Ok(None);
    }
    if !Uid::effective().is_root() {
        return Err(format!(
            "uid/gid need the rpm2 daemon to run as root (it runs as uid {}); start it with sudo, or drop the option",
            Uid::effective()
        ));
    }
    let user = match uid {
        None => None,
        Some(text) => Some(lookup_user(text)?),
    };
    let gid = match (gid, &user) {
        (Some(text), _) => lookup_group(text)?,
        (None, Some((_, Some(u)))) => u.gid,
        (None, Some((uid, None))) => Gid::from_raw(uid.as_raw()),
        (None, None) => Gid::effective(),
    };
    let (uid, entry) = user.unwrap_or((Uid::effective(), None));
    let groups = match &entry {
        Some(u) => CString::new(u.name.as_str())
            .ok()
            .and_then(|name| nix::unistd::getgrouplist(&name, gid).ok())
            .unwrap_or_else(|| vec![gid]),
        None => vec![gid],
    };
    Ok(Some(RunAs {
        uid,
        gid,
        groups,
        name: entry.as_ref().map(|u| u.name.clone()),
        home: entry.map(|u| u.dir),
    }))
}

/// A user by name or id; an id with no entry in the database is allowed.
fn lookup_user(text: &str) -> Result<(Uid, Option<User>), String> {
    let by_name =
        User::from_name(text).map_err(|e| format!("cannot look up user {text:?}: {e}"))?;
    if let Some(u) = by_name {
        return Ok((u.uid, Some(u)));
    }
    let id: u32 = text
        .parse()
        .map_err(|_| format!("unknown user {text:?} (uid)"))?;
    let uid = Uid::from_raw(id);
    let entry = User::from_uid(uid).map_err(|e| format!("cannot look up uid {id}: {e}"))?;
    Ok((uid, entry))
}

fn lookup_group(text: &str) -> Result<Gid, String> {
    if let Some(g) =
        Group::from_name(text).map_err(|e| format!("cannot look up group {text:?}: {e}"))?
    {
        return Ok(g.gid);
    }
    text.parse()
        .map(Gid::from_raw)
        .map_err(|_| format!("unknown group {text:?} (gid)"))
}

/// In the child between fork and exec: take the identity. Only the
/// async-signal-safe `setgroups`, `setgid` and `setuid` calls.
pub fn assume(run_as: &RunAs) -> std::io::Result<()> {
    nix::unistd::setgroups(&run_as.groups)?;
    nix::unistd::setgid(run_as.gid)?;
    nix::unistd::setuid(run_as.uid)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_to_do_without_uid_or_gid() {
        assert_eq!(resolve(None, None), Ok(None));
    }

    #[test]
    fn root_resolves_users_and_others_are_refused() {
        let res = resolve(Some("root"), None);
        if Uid::effective().is_root() {
            let r = res.unwrap().unwrap();
            assert_eq!(r.uid, Uid::from_raw(0));
            assert_eq!(r.gid, Gid::from_raw(0));
            assert!(resolve(Some("no-such-user-rpm2"), None)
                .unwrap_err()
                .contains("unknown user"));
            assert!(resolve(None, Some("no-such-group-rpm2"))
                .unwrap_err()
                .contains("unknown group"));
        } else {
            assert!(res.unwrap_err().contains("run as root"));
        }
    }
}
