//! `rpm2 startup` / `unstartup` (systemd) and the daemon's `--systemd` mode.
//! Units go to a temp dir and `systemctl` is a script that records its
//! arguments (the commands' test hooks), so the real /etc is never touched.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{alive, bin, fixture, pid_of, status_of, wait_dead, Rpm2};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// A unit folder and a fake `systemctl` that appends its arguments to
/// `calls.log`.
struct FakeSystemd {
    dir: tempfile::TempDir,
}

impl FakeSystemd {
    fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("rpm2-systemd-")
            .tempdir()
            .unwrap();
        std::fs::create_dir(dir.path().join("units")).unwrap();
        let script = dir.path().join("systemctl");
        let log = dir.path().join("calls.log");
        std::fs::write(
            &script,
            format!("#!/bin/sh\necho \"$*\" >> '{}'\n", log.display()),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        Self { dir }
    }

    fn units(&self) -> PathBuf {
        self.dir.path().join("units")
    }

    fn calls(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("calls.log")).unwrap_or_default()
    }

    fn unit_files(&self) -> Vec<String> {
        std::fs::read_dir(self.units())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    }

    /// The hooks as environment variables.
    fn env(&self) -> [(String, String); 2] {
        [
            (
                "RPM2_SYSTEMD_DIR".into(),
                self.units().display().to_string(),
            ),
            (
                "RPM2_SYSTEMCTL".into(),
                self.dir.path().join("systemctl").display().to_string(),
            ),
        ]
    }
}

fn run(r: &Rpm2, sd: &FakeSystemd, args: &[&str]) -> common::Out {
    let env = sd.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    r.run_with(args, &env)
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

#[test]
fn unknown_platforms_are_refused_and_nothing_is_written() {
    let r = Rpm2::new();
    let sd = FakeSystemd::new();
    for args in [
        ["startup", "upstart"],
        ["startup", "launchd"],
        ["unstartup", "openrc"],
    ] {
        let out = run(&r, &sd, &args);
        assert_eq!(out.code, Some(1), "{args:?}: {out:?}");
        assert!(
            out.stderr
                .contains(&format!("unknown startup platform '{}'", args[1]))
                && out.stderr.contains("systemd"),
            "{args:?}: {}",
            out.stderr
        );
    }
    assert!(sd.unit_files().is_empty());
    assert_eq!(sd.calls(), "");
}

#[test]
fn without_systemctl_the_init_system_is_not_found() {
    let r = Rpm2::new();
    let sd = FakeSystemd::new();
    let out = r
        .command(&["startup"])
        .env("RPM2_SYSTEMD_DIR", sd.units())
        .env_remove("RPM2_SYSTEMCTL")
        .env("PATH", sd.units())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no init system found"), "{stderr}");
    assert!(sd.unit_files().is_empty());
}

#[test]
fn a_user_who_is_not_root_gets_the_sudo_line() {
    let r = Rpm2::new();
    let mut cmd = if is_root() {
        // Drop to nobody, if nobody may run the binary here.
        let nobody = ["--reuid=65534", "--regid=65534", "--clear-groups"];
        let can_run = Command::new("setpriv")
            .args(nobody)
            .args([bin(), "--version"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !can_run {
            eprintln!("skipped: root, and setpriv cannot run {} as nobody", bin());
            return;
        }
        let mut cmd = Command::new("setpriv");
        cmd.args(nobody).arg(bin());
        cmd
    } else {
        Command::new(bin())
    };
    let out = cmd
        .args(["startup", "systemd", "--service-name", "web"])
        .env("HOME", "/home/someone")
        .env("USER", "someone")
        .env("RPM2_HOME", r.home())
        .env("RPM2_SYSTEMD_DIR", r.home())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "pm2 exits 1 here: {stdout}");
    assert!(stdout.contains("To setup the Startup Script, copy/paste the following command:"));
    let line = stdout
        .lines()
        .find(|l| l.starts_with("sudo env PATH=$PATH"))
        .unwrap_or_else(|| panic!("no sudo line in {stdout}"));
    assert!(
        line.contains(&format!(
            "{} startup systemd -u someone --hp /home/someone --service-name web",
            bin()
        )),
        "{line}"
    );
}

#[test]
fn root_installs_and_removes_the_unit() {
    if !is_root() {
        eprintln!("skipped: installing a unit needs root");
        return;
    }
    let r = Rpm2::new();
    let sd = FakeSystemd::new();
    let hp = r.work().display().to_string();
    // No platform: detected through the (fake) systemctl.
    let out = run(
        &r,
        &sd,
        &[
            "startup",
            "-u",
            "root",
            "--hp",
            &hp,
            "--service-name",
            "rpm2-test",
        ],
    );
    assert!(out.success(), "{out:?}");
    assert!(out.stdout.contains("Init System found: systemd"));
    assert_eq!(sd.unit_files(), ["rpm2-test.service"]);
    assert_eq!(sd.calls(), "daemon-reload\nenable rpm2-test\n");
    let unit_path = sd.units().join("rpm2-test.service");
    let unit = std::fs::read_to_string(&unit_path).unwrap();
    for line in [
        "Type=notify".to_owned(),
        "User=root".to_owned(),
        // rpm2-daemon when it was built beside rpm2, else rpm2 itself.
        format!(
            "ExecStart={} __daemon --systemd",
            rpm2_client::daemon_executable(std::path::Path::new(bin())).display()
        ),
        format!("ExecReload={} reload all", bin()),
        format!("Environment=RPM2_HOME={hp}/.rpm2"),
    ] {
        assert!(unit.lines().any(|l| l == line), "no `{line}` in\n{unit}");
    }
    verify(&unit_path);

    let out = run(
        &r,
        &sd,
        &["unstartup", "systemd", "--service-name", "rpm2-test"],
    );
    assert!(out.success(), "{out:?}");
    assert!(sd.unit_files().is_empty());
    assert_eq!(
        sd.calls(),
        "daemon-reload\nenable rpm2-test\nstop rpm2-test\ndisable rpm2-test\ndaemon-reload\n"
    );
    // Nothing left to remove: a clear error.
    let out = run(
        &r,
        &sd,
        &["unstartup", "systemd", "--service-name", "rpm2-test"],
    );
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("nothing to remove"), "{}", out.stderr);
}

/// `systemd-analyze verify` on a written unit, where the tool exists.
fn verify(unit: &Path) {
    let Ok(out) = Command::new("systemd-analyze")
        .arg("verify")
        .arg(unit)
        .output()
    else {
        eprintln!("systemd-analyze not found: unit not verified");
        return;
    };
    assert!(
        out.status.success(),
        "systemd-analyze verify failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn systemd_mode_resurrects_then_says_ready_and_stops_the_apps_on_sigterm() {
    let r = Rpm2::new();
    r.ok(&["start", &fixture("idle.js"), "--name", "boot"]);
    r.wait_status("boot", "online");
    r.ok(&["save"]);
    r.ok(&["kill"]);
    let backup = r.home().join("dump.pm2.bak");
    assert!(!backup.exists());

    let socket_path = r.work().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut daemon = r
        .command(&["__daemon", "--systemd"])
        .env("NOTIFY_SOCKET", &socket_path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    // Wait for READY=1 (a hang guard, not a timing check).
    let mut buf = [0u8; 4096];
    let message = loop {
        let n = socket.recv(&mut buf).expect("READY=1 within 60 s");
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        if text.lines().any(|l| l == "READY=1") {
            break text;
        }
    };
    assert!(
        message.contains("STATUS=1 of 1 processes online"),
        "{message}"
    );
    let app = r.proc("boot");
    assert_eq!(status_of(&app), "online", "READY=1 before the app was back");
    let app_pid = pid_of(&app);
    assert!(alive(app_pid));

    // A second daemon for this home is refused (a unit started twice).
    let second = r.run(&["__daemon", "--systemd"]);
    assert_eq!(second.code, Some(1));
    assert!(second.stderr.contains("another rpm2 daemon already runs"));

    // `systemctl stop`: SIGTERM to the daemon alone.
    kill(Pid::from_raw(daemon.id() as i32), Signal::SIGTERM).unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = daemon.try_wait().unwrap() {
            break status;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "daemon hung");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
    wait_dead(app_pid);
    let stopping = socket.recv(&mut buf).expect("STOPPING=1");
    assert_eq!(&buf[..stopping], b"STOPPING=1\n");
    // Stopping the unit does not save over the user's list (pm2's `kill`).
    assert!(!backup.exists(), "SIGTERM under systemd saved the list");
}
