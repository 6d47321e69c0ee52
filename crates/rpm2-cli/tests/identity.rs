//! pm2's `uid`/`gid` options: the worker runs as that user and its groups.
//! Needs root (to create a throwaway user and to switch to it); skipped
//! with a message elsewhere.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use common::{wait_until, Rpm2};

/// A user made for one test, deleted when dropped.
struct ThrowawayUser {
    name: String,
}

impl ThrowawayUser {
    fn create() -> Option<Self> {
        if !nix::unistd::Uid::effective().is_root() {
            eprintln!("skipped: uid/gid tests need root");
            return None;
        }
        let name = format!("rpm2t{}", std::process::id());
        let made = Command::new("useradd")
            .args(["--no-create-home", "--shell", "/usr/sbin/nologin", &name])
            .status();
        match made {
            Ok(s) if s.success() => Some(Self { name }),
            other => {
                eprintln!("skipped: cannot create a user here ({other:?})");
                None
            }
        }
    }

    fn uid(&self) -> u32 {
        nix::unistd::User::from_name(&self.name)
            .unwrap()
            .unwrap()
            .uid
            .as_raw()
    }
}

impl Drop for ThrowawayUser {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(&self.name).status();
    }
}

/// A copy of a script that prints who it runs as, readable by anyone.
fn whoami_script(r: &Rpm2) -> String {
    let dir = r.path("public");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let script = dir.join("whoami.js");
    std::fs::write(
        &script,
        "console.log(JSON.stringify({ uid: process.getuid(), gid: process.getgid(), \
         groups: process.getgroups() }));\nsetInterval(() => {}, 1 << 30);\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).unwrap();
    // The work dir above it must be traversable too.
    let mut up = dir.parent();
    while let Some(p) = up {
        let mode = std::fs::metadata(p).unwrap().permissions().mode();
        if mode & 0o001 == 0 {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode | 0o711)).unwrap();
        }
        if p == r.path("") {
            break;
        }
        up = p.parent();
    }
    script.display().to_string()
}

#[test]
fn uid_runs_the_worker_as_that_user() {
    let Some(user) = ThrowawayUser::create() else {
        return;
    };
    let r = Rpm2::new();
    let script = whoami_script(&r);
    r.ok(&["start", &script, "--name", "who", "--uid", &user.name]);
    let log = r.home().join("logs/who-out.log");
    let line = wait_until("the worker to say who it is", || {
        std::fs::read_to_string(&log)
            .ok()
            .and_then(|t| t.lines().next().map(str::to_owned))
    });
    let who: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(who["uid"], user.uid(), "{who}");
    assert_ne!(who["gid"], 0, "{who}");
    assert!(
        who["groups"].as_array().unwrap().iter().all(|g| g != 0),
        "root's groups were dropped: {who}"
    );
    assert_eq!(r.proc("who")["pm2_env"]["username"], user.name.as_str());
}

#[test]
fn an_unknown_user_is_refused_and_nothing_starts() {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("skipped: needs root (as another user, any uid is refused)");
        return;
    }
    let r = Rpm2::new();
    let script = whoami_script(&r);
    let out = r.fails(&[
        "start",
        &script,
        "--name",
        "who",
        "--uid",
        "no-such-user-rpm2",
    ]);
    assert!(out.all().contains("unknown user"), "{}", out.all());
    assert!(r.procs("who").is_empty());
}
