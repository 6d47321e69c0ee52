//! `rpm2 startup [systemd]` and `rpm2 unstartup [systemd]`: pm2's boot hook,
//! for systemd only.
//!
//! As in pm2, a user who is not root gets the `sudo env PATH=… startup …`
//! line to paste, and exit 1. Root writes `<service>.service`, runs
//! `systemctl daemon-reload` and `enable`; `unstartup` stops, disables and
//! removes it. The unit runs `rpm2 __daemon --systemd` in the foreground
//! (`Type=notify`, see rpm2-core's `systemd.rs`) where pm2's forks
//! `pm2 resurrect` (`Type=forking`).
//!
//! Test hooks (never needed otherwise): `RPM2_SYSTEMD_DIR` replaces
//! `/etc/systemd/system`, `RPM2_SYSTEMCTL` the `systemctl` found on PATH.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use rpm2_proto::ErrorCode;

use super::{CmdResult, Ctx};
use crate::error::{exit, CliError};

/// Test hook: the folder units are written to.
const SYSTEMD_DIR_ENV: &str = "RPM2_SYSTEMD_DIR";
const SYSTEMD_DIR: &str = "/etc/systemd/system";
/// Test hook: the `systemctl` program to run.
const SYSTEMCTL_ENV: &str = "RPM2_SYSTEMCTL";
/// Names pm2 accepts for systemd (`pm2 startup ubuntu`, …).
const SYSTEMD_NAMES: &[&str] = &["systemd", "ubuntu", "centos", "arch", "oracle"];
/// Appended to the unit's PATH when missing, as pm2's template does.
const STANDARD_PATH: &[&str] = &[
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
];

/// `startup` / `unstartup` and pm2's flags for them.
#[derive(Debug, Args)]
pub struct StartupArgs {
    /// Init system: `systemd`, the only one rpm2 supports (detected when
    /// omitted)
    pub platform: Option<String>,
    /// User the daemon runs as (default: you)
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// That user's home: the daemon's home is <HOME>/.rpm2 (default:
    /// $RPM2_HOME, or the user's ~/.rpm2)
    #[arg(long = "hp", value_name = "HOME")]
    pub hp: Option<PathBuf>,
    /// Unit name (default: rpm2-<user>)
    #[arg(long)]
    pub service_name: Option<String>,
    /// Start once the network is online (network-online.target), not just up
    #[arg(long)]
    pub wait_ip: bool,
}

/// Whether the command installs or removes the unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Startup,
    Unstartup,
}

impl Action {
    fn command(self) -> &'static str {
        match self {
            Self::Startup => "startup",
            Self::Unstartup => "unstartup",
        }
    }
}

pub fn startup(ctx: &Ctx, args: &StartupArgs) -> CmdResult {
    let Some(code) = check(ctx, args, Action::Startup)? else {
        return install(ctx, args);
    };
    Ok(code)
}

pub fn unstartup(ctx: &Ctx, args: &StartupArgs) -> CmdResult {
    let Some(code) = check(ctx, args, Action::Unstartup)? else {
        return uninstall(ctx, args);
    };
    Ok(code)
}

/// The platform, then root: `Some(exit code)` when the command ends here
/// (not root: the sudo line was printed).
fn check(ctx: &Ctx, args: &StartupArgs, action: Action) -> Result<Option<ExitCode>, CliError> {
    match args.platform.as_deref() {
        Some(p) if SYSTEMD_NAMES.contains(&p) => {}
        Some(other) => {
            return Err(bad(format!(
                "unknown startup platform '{other}': rpm2 supports systemd only \
                 (pm2's upstart, systemv, launchd, openrc, rcd, rcd-openbsd and smf scripts are not made)"
            )))
        }
        None => {
            systemctl()?;
            ctx.style.info("Init System found: systemd");
        }
    }
    if nix::unistd::geteuid().is_root() {
        return Ok(None);
    }
    let verb = match action {
        Action::Startup => "setup",
        Action::Unstartup => "unsetup",
    };
    println!("[RPM2] To {verb} the Startup Script, copy/paste the following command:");
    println!("{}", sudo_line(args, action));
    Ok(Some(ExitCode::from(exit::ERROR)))
}

/// `sudo env PATH=$PATH:<node dir> <rpm2> startup systemd -u <user> --hp <home>`.
fn sudo_line(args: &StartupArgs, action: Action) -> String {
    let node_dir = which("node", std::env::var_os("PATH").as_ref())
        .and_then(|n| n.parent().map(|d| format!(":{}", d.display())))
        .unwrap_or_default();
    let home = std::env::var("HOME").unwrap_or_default();
    let user = args.user.clone().unwrap_or_else(current_user);
    let mut line = format!(
        "sudo env PATH=$PATH{node_dir} {} {} systemd -u {user} --hp {home}",
        rpm2_exe().display(),
        action.command()
    );
    if let Some(name) = &args.service_name {
        let _ = write!(line, " --service-name {name}");
    }
    if args.wait_ip {
        line.push_str(" --wait-ip");
    }
    line
}

fn install(ctx: &Ctx, args: &StartupArgs) -> CmdResult {
    let user = args.user.clone().unwrap_or_else(current_user);
    let account = nix::unistd::User::from_name(&user)
        .ok()
        .flatten()
        .ok_or_else(|| bad(format!("unknown user '{user}' (-u)")))?;
    let service = service_name(args, &user)?;
    let systemctl = systemctl()?;
    let home = match &args.hp {
        Some(hp) => absolute(hp).join(".rpm2"),
        None if account.uid == nix::unistd::geteuid() => ctx.home.root().to_path_buf(),
        None => account.dir.join(".rpm2"),
    };
    let path_var = std::env::var_os("PATH");
    let node_dir = which("node", path_var.as_ref()).and_then(|n| n.parent().map(Path::to_path_buf));
    let unit = Unit {
        user,
        rpm2: rpm2_exe(),
        daemon: rpm2_client::daemon_executable(&rpm2_exe()),
        home,
        path: unit_path(path_var.as_ref(), node_dir.as_deref()),
        wait_ip: args.wait_ip,
    };
    let text = unit.text();
    let target = systemd_dir().join(format!("{service}.service"));
    println!(
        "Platform systemd\nTemplate\n{text}\nTarget path\n{}",
        target.display()
    );
    ctx.style.info(&format!(
        "Writing init configuration in {}",
        target.display()
    ));
    std::fs::write(&target, &text).map_err(|e| {
        CliError::new(
            ErrorCode::Io,
            format!("cannot write {}: {e}", target.display()),
        )
    })?;
    ctx.style.info("Making script booting at startup...");
    run_systemctl(ctx, &systemctl, &["daemon-reload"])?;
    run_systemctl(ctx, &systemctl, &["enable", &service])?;
    ctx.style.info(&format!(
        "Freeze a process list on reboot via:\n$ rpm2 save\n\n\
         [RPM2] Start it now (after `rpm2 kill`, if a daemon runs for this home):\n\
         $ systemctl start {service}\n\n\
         [RPM2] Remove init script via:\n$ rpm2 unstartup systemd{}",
        args.service_name
            .as_ref()
            .map(|n| format!(" --service-name {n}"))
            .unwrap_or_default()
    ));
    Ok(ExitCode::SUCCESS)
}

fn uninstall(ctx: &Ctx, args: &StartupArgs) -> CmdResult {
    let user = args.user.clone().unwrap_or_else(current_user);
    let service = service_name(args, &user)?;
    let target = systemd_dir().join(format!("{service}.service"));
    if !target.exists() {
        return Err(bad(format!(
            "no unit at {}: nothing to remove (--service-name?)",
            target.display()
        )));
    }
    let systemctl = systemctl()?;
    run_systemctl(ctx, &systemctl, &["stop", &service])?;
    run_systemctl(ctx, &systemctl, &["disable", &service])?;
    std::fs::remove_file(&target).map_err(|e| {
        CliError::new(
            ErrorCode::Io,
            format!("cannot remove {}: {e}", target.display()),
        )
    })?;
    run_systemctl(ctx, &systemctl, &["daemon-reload"])?;
    ctx.style.info("Init file disabled.");
    Ok(ExitCode::SUCCESS)
}

/// The unit: what `rpm2 startup` writes.
#[derive(Debug)]
struct Unit {
    user: String,
    rpm2: PathBuf,
    /// What runs the daemon: `rpm2-daemon` beside `rpm2`, else `rpm2`.
    daemon: PathBuf,
    /// The daemon's `RPM2_HOME`.
    home: PathBuf,
    path: String,
    wait_ip: bool,
}

impl Unit {
    fn text(&self) -> String {
        let rpm2 = exec_word(&self.rpm2.display().to_string());
        let daemon = exec_word(&self.daemon.display().to_string());
        let (after, wanted_by) = if self.wait_ip {
            (
                "After=network-online.target\nWants=network-online.target",
                "network-online.target",
            )
        } else {
            ("After=network.target", "multi-user.target")
        };
        format!(
            "[Unit]\n\
             Description=rpm2 process manager ({user})\n\
             {after}\n\
             \n\
             [Service]\n\
             Type=notify\n\
             User={user}\n\
             LimitNOFILE=infinity\n\
             LimitNPROC=infinity\n\
             LimitCORE=infinity\n\
             Environment={path}\n\
             Environment={home}\n\
             ExecStart={daemon} __daemon --systemd\n\
             ExecReload={rpm2} reload all\n\
             KillMode=mixed\n\
             Restart=on-failure\n\
             \n\
             [Install]\n\
             WantedBy={wanted_by}\n",
            user = escape_percent(&self.user),
            path = env_word("PATH", &self.path),
            home = env_word("RPM2_HOME", &self.home.display().to_string()),
        )
    }
}

/// The unit's PATH: the caller's absolute entries, node's folder, then the
/// standard folders, each once.
fn unit_path(caller: Option<&OsString>, node_dir: Option<&Path>) -> String {
    let mut dirs: Vec<String> = Vec::new();
    let caller = caller.map(std::env::split_paths).into_iter().flatten();
    let node = node_dir.map(Path::to_path_buf);
    let standard = STANDARD_PATH.iter().map(PathBuf::from);
    for dir in caller.chain(node).chain(standard) {
        let dir = dir.display().to_string();
        if dir.starts_with('/') && !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    dirs.join(":")
}

/// `%` starts a systemd specifier everywhere in a unit.
fn escape_percent(s: &str) -> String {
    s.replace('%', "%%")
}

/// One word of a unit file value: quoted when it has blanks, quotes or
/// backslashes.
fn quoted(s: &str) -> String {
    if s.chars()
        .any(|c| c.is_whitespace() || matches!(c, '"' | '\'' | '\\' | ';'))
    {
        format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        s.to_owned()
    }
}

/// A word of `ExecStart=`: `$` would expand a variable.
fn exec_word(s: &str) -> String {
    quoted(&escape_percent(s).replace('$', "$$"))
}

/// `NAME=value` for `Environment=`.
fn env_word(name: &str, value: &str) -> String {
    quoted(&escape_percent(&format!("{name}={value}")))
}

/// `rpm2-<user>` unless `--service-name`; a name systemd accepts.
fn service_name(args: &StartupArgs, user: &str) -> Result<String, CliError> {
    let name = args
        .service_name
        .clone()
        .unwrap_or_else(|| format!("rpm2-{user}"));
    let name = name.strip_suffix(".service").unwrap_or(&name).to_owned();
    let fits = !name.is_empty()
        && name.len() <= 200
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '-' | '_' | '.' | '@'));
    if fits {
        Ok(name)
    } else {
        Err(bad(format!(
            "--service-name '{name}': a unit name is made of letters, digits and : - _ . @"
        )))
    }
}

fn systemd_dir() -> PathBuf {
    std::env::var_os(SYSTEMD_DIR_ENV)
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from(SYSTEMD_DIR), PathBuf::from)
}

/// `systemctl` (or the test hook's program): its presence is how systemd is
/// detected, as pm2 does.
fn systemctl() -> Result<PathBuf, CliError> {
    if let Some(p) = std::env::var_os(SYSTEMCTL_ENV).filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    which("systemctl", std::env::var_os("PATH").as_ref()).ok_or_else(|| {
        bad("no init system found: rpm2 startup supports systemd, and systemctl is not on PATH")
    })
}

fn run_systemctl(ctx: &Ctx, systemctl: &Path, args: &[&str]) -> Result<(), CliError> {
    let shown = format!("systemctl {}", args.join(" "));
    ctx.style.info(&format!("[-] Executing: {shown}..."));
    let status = std::process::Command::new(systemctl)
        .args(args)
        .status()
        .map_err(|e| CliError::new(ErrorCode::Io, format!("cannot run {shown}: {e}")))?;
    if status.success() {
        ctx.style.info("[v] Command successfully executed.");
        Ok(())
    } else {
        Err(CliError::new(
            ErrorCode::Io,
            format!("{shown} failed ({status})"),
        ))
    }
}

/// pm2: `$USER`, else `$LOGNAME`; then the account of our uid.
fn current_user() -> String {
    ["USER", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|u| !u.is_empty()))
        .or_else(|| {
            nix::unistd::User::from_uid(nix::unistd::geteuid())
                .ok()
                .flatten()
                .map(|u| u.name)
        })
        .unwrap_or_else(|| "root".to_owned())
}

fn rpm2_exe() -> PathBuf {
    std::env::current_exe().unwrap_or_else(|_| PathBuf::from("rpm2"))
}

fn absolute(p: &Path) -> PathBuf {
    std::env::current_dir().map_or_else(|_| p.to_path_buf(), |cwd| cwd.join(p))
}

fn which(name: &str, path_var: Option<&OsString>) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    std::env::split_paths(path_var?)
        .map(|d| d.join(name))
        .find(|p| {
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

fn bad(message: impl Into<String>) -> CliError {
    CliError::new(ErrorCode::BadRequest, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> Unit {
        Unit {
            user: "alice".into(),
            rpm2: "/usr/local/lib/node_modules/rpm2/bin/rpm2".into(),
            daemon: "/usr/local/lib/node_modules/rpm2/bin/rpm2-daemon".into(),
            home: "/home/alice/.rpm2".into(),
            path: unit_path(
                Some(&OsString::from("/home/alice/bin:/usr/bin:relative:/bin")),
                Some(Path::new("/opt/node/bin")),
            ),
            wait_ip: false,
        }
    }

    #[test]
    fn the_unit_matches_the_golden_file() {
        let golden = include_str!("../../tests/fixtures/startup/rpm2-alice.service");
        assert_eq!(alice().text(), golden);
    }

    #[test]
    fn wait_ip_waits_for_network_online() {
        let text = Unit {
            wait_ip: true,
            ..alice()
        }
        .text();
        assert!(text.contains("After=network-online.target\nWants=network-online.target\n"));
        assert!(text.contains("WantedBy=network-online.target\n"));
    }

    #[test]
    fn odd_paths_are_quoted_and_escaped() {
        let text = Unit {
            rpm2: "/opt/my apps/100%/rpm2$x".into(),
            daemon: "/opt/my apps/100%/rpm2-daemon$x".into(),
            home: "/srv/a b/.rpm2".into(),
            ..alice()
        }
        .text();
        assert!(
            text.contains("ExecStart=\"/opt/my apps/100%%/rpm2-daemon$$x\" __daemon --systemd\n")
        );
        assert!(text.contains("ExecReload=\"/opt/my apps/100%%/rpm2$$x\" reload all\n"));
        assert!(text.contains("Environment=\"RPM2_HOME=/srv/a b/.rpm2\"\n"));
    }

    #[test]
    fn path_keeps_absolute_entries_once_and_adds_node_and_standard_dirs() {
        assert_eq!(
            unit_path(
                Some(&OsString::from("/usr/bin:.:/opt/node/bin:/usr/bin")),
                Some(Path::new("/opt/node/bin"))
            ),
            "/usr/bin:/opt/node/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/sbin:/bin"
        );
        assert_eq!(unit_path(None, None), STANDARD_PATH.join(":"));
    }

    #[test]
    fn service_names() {
        let args = |name: Option<&str>| StartupArgs {
            platform: None,
            user: None,
            hp: None,
            service_name: name.map(str::to_owned),
            wait_ip: false,
        };
        assert_eq!(service_name(&args(None), "bob").unwrap(), "rpm2-bob");
        assert_eq!(
            service_name(&args(Some("web.service")), "bob").unwrap(),
            "web"
        );
        for bad in ["", "../etc/passwd", "a b", "x/y"] {
            assert!(service_name(&args(Some(bad)), "bob").is_err(), "{bad}");
        }
    }
}
