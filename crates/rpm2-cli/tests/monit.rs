//! `rpm2 monit` driven as a person would: in a detached tmux session of
//! a fixed size, reading the screen with capture-pane and typing keys
//! with send-keys. Skipped (with a message) where tmux is not installed.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use common::{restart_time, status_of, wait_until, Rpm2};

/// Prints a numbered line every 200 ms.
const TICKER: &str = "let i = 0;\nsetInterval(() => console.log(`tick ${++i}`), 200);\n";

/// A tmux server of our own (its socket in the test's work directory),
/// killed when dropped.
struct Tmux {
    socket: PathBuf,
}

impl Tmux {
    /// `None` when tmux is not installed.
    fn start(r: &Rpm2, width: u16, height: u16) -> Option<Self> {
        if Command::new("tmux").arg("-V").output().is_err() {
            return None;
        }
        let tmux = Self {
            socket: r.path("tmux.sock"),
        };
        let (w, h) = (width.to_string(), height.to_string());
        let out = tmux.run(&[
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-s",
            "monit",
            "-x",
            &w,
            "-y",
            &h,
            "env PS1='$ ' sh",
        ]);
        assert!(out.status.success(), "tmux new-session: {out:?}");
        Some(tmux)
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run tmux")
    }

    /// Type `text` literally (no key names), optionally then Enter.
    fn type_text(&self, text: &str, enter: bool) {
        assert!(self
            .run(&["send-keys", "-t", "monit", "-l", text])
            .status
            .success());
        if enter {
            assert!(self
                .run(&["send-keys", "-t", "monit", "Enter"])
                .status
                .success());
        }
    }

    /// The visible screen, as text.
    fn screen(&self) -> String {
        let out = self.run(&["capture-pane", "-p", "-t", "monit"]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Whether the pane shows the alternate screen (a full-screen app).
    fn alternate_on(&self) -> bool {
        let out = self.run(&["display-message", "-p", "-t", "monit", "#{alternate_on}"]);
        String::from_utf8_lossy(&out.stdout).trim() == "1"
    }

    /// Wait until the screen shows every one of `needles`; returns it.
    fn wait_screen(&self, needles: &[&str]) -> String {
        let mut last = String::new();
        let found = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            wait_until(&format!("{needles:?} on the screen"), || {
                last = self.screen();
                needles
                    .iter()
                    .all(|n| last.contains(n))
                    .then(|| last.clone())
            })
        }));
        found.unwrap_or_else(|_| panic!("{needles:?} never all on the screen; it shows:\n{last}"))
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[test]
fn monit_in_tmux_shows_apps_and_logs_and_its_keys_act_on_the_selection() {
    let r = Rpm2::new();
    let ticker = r.write("ticker.js", TICKER);
    r.ok(&["start", &ticker, "--name", "alpha"]);
    r.ok(&["start", &ticker, "--name", "beta"]);
    r.wait_online("alpha", 1);
    r.wait_online("beta", 1);
    let Some(tmux) = Tmux::start(&r, 150, 40) else {
        eprintln!("SKIPPED: tmux is not installed; `rpm2 monit` was not driven");
        return;
    };
    tmux.wait_screen(&["$"]);
    // The shell's terminal settings before, to compare after quitting.
    let before = r.path("tty.before");
    tmux.type_text(
        &format!("stty -g > {}", shell_quote(&before.display().to_string())),
        true,
    );
    let command = format!(
        "RPM2_HOME={} {} monit; echo MONIT-EXIT=$?",
        shell_quote(&r.home().display().to_string()),
        shell_quote(common::bin())
    );
    tmux.type_text(&command, true);

    // The list (sorted by name, the first selected) and alpha's logs.
    tmux.wait_screen(&["[ 0] alpha", "[ 1] beta", " alpha logs ", "alpha > tick "]);
    assert!(tmux.alternate_on(), "monit draws on the alternate screen");
    tmux.wait_screen(&["r restart", "R reload", "s stop", "q quit"]);

    // r restarts the selected app, and the list shows it.
    assert_eq!(restart_time(&r.proc("alpha")), 0);
    tmux.type_text("r", false);
    wait_until("alpha restarted by r", || {
        (restart_time(&r.proc("alpha")) == 1).then_some(())
    });
    tmux.wait_screen(&["restart alpha (id 0): done", "rpm2 > restart"]);
    // R reloads it (a fork app restarts).
    tmux.type_text("R", false);
    wait_until("alpha reloaded by R", || {
        (restart_time(&r.proc("alpha")) == 2).then_some(())
    });
    tmux.wait_screen(&["reload alpha (id 0): done"]);
    assert_eq!(restart_time(&r.proc("beta")), 0, "only the selection acts");

    // j moves to beta; s stops it and nothing else.
    tmux.type_text("j", false);
    tmux.wait_screen(&[" beta logs ", "beta > tick "]);
    tmux.type_text("s", false);
    r.wait_status("beta", "stopped");
    tmux.wait_screen(&["stop beta (id 1): done", "stopped"]);
    assert_eq!(status_of(&r.proc("alpha")), "online");

    // q quits: the shell is back with its terminal settings.
    tmux.type_text("q", false);
    let screen = tmux.wait_screen(&["MONIT-EXIT=0"]);
    assert!(
        !screen.contains("Processes"),
        "dashboard left on screen:\n{screen}"
    );
    assert!(!tmux.alternate_on(), "the alternate screen was left");
    tmux.type_text(
        &format!(
            "[ \"$(stty -g)\" = \"$(cat {})\" ] && echo TTY-SAME || echo TTY-CHANGED",
            shell_quote(&before.display().to_string())
        ),
        true,
    );
    // A whole line: the typed command holds both words too.
    let verdict = wait_until("the shell's verdict on the tty settings", || {
        tmux.screen()
            .lines()
            .map(str::trim_end)
            .find(|l| *l == "TTY-SAME" || *l == "TTY-CHANGED")
            .map(str::to_owned)
    });
    assert_eq!(verdict, "TTY-SAME", "terminal settings not restored");
}

#[test]
fn monit_outlives_the_daemon_and_reconnects_without_starting_one() {
    let r = Rpm2::new();
    let ticker = r.write("ticker.js", TICKER);
    r.ok(&["start", &ticker, "--name", "first"]);
    let Some(tmux) = Tmux::start(&r, 120, 30) else {
        eprintln!("SKIPPED: tmux is not installed; `rpm2 monit` was not driven");
        return;
    };
    tmux.wait_screen(&["$"]);
    tmux.type_text(
        &format!(
            "RPM2_HOME={} {} monit; echo MONIT-EXIT=$?",
            shell_quote(&r.home().display().to_string()),
            shell_quote(common::bin())
        ),
        true,
    );
    tmux.wait_screen(&["[ 0] first", "first > tick "]);
    r.ok(&["kill"]);
    // monit keeps retrying but never starts a daemon: the home has none.
    tmux.wait_screen(&["daemon unreachable, retrying every second"]);
    assert_eq!(r.daemon_pid(), None, "monit started a daemon");
    // A daemon started by a command: monit finds it and its new app.
    r.ok(&["start", &ticker, "--name", "second"]);
    tmux.wait_screen(&["[ 0] second", "second > tick ", "daemon reachable again"]);
    let screen = tmux.screen();
    assert!(
        !screen.contains("first >"),
        "old lines under a reused id:\n{screen}"
    );
    tmux.type_text("q", false);
    tmux.wait_screen(&["MONIT-EXIT=0"]);
}

#[test]
fn monit_without_a_terminal_says_so_and_starts_nothing() {
    let r = Rpm2::new();
    let out = r.fails(&["monit"]);
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.contains("run it in a terminal"),
        "{}",
        out.stderr
    );
    assert_eq!(r.daemon_pid(), None, "no daemon was started");
}
