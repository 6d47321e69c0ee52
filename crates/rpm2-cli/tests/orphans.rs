//! After kill -9 of the daemon: the next daemon finds what the dead one left
//! running, and `resurrect` does not report success while a copy of an app
//! crash-loops on the port an orphan still holds.

mod common;

use common::{alive, fixture, free_port, wait_dead, wait_until, Rpm2};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

#[test]
fn resurrect_after_a_daemon_crash_reports_the_orphan_holding_the_port() {
    let r = Rpm2::new();
    let port = free_port().to_string();
    r.ok(&["start", &fixture("http.js"), "--name", "web", "--", &port]);
    let orphan = wait_until("the app to serve", || {
        let p = r.proc("web");
        let pid = p["pid"].as_i64()?;
        std::net::TcpStream::connect(("127.0.0.1", port.parse::<u16>().ok()?))
            .ok()
            .map(|_| i32::try_from(pid).unwrap())
    });
    r.ok(&["save"]);
    let daemon = r.daemon_pid().expect("a daemon pid");
    kill(Pid::from_raw(daemon), Signal::SIGKILL).unwrap();
    wait_dead(daemon);
    assert!(alive(orphan), "the app outlived its daemon");

    // The first command after the crash says what happened, and `list`
    // names the orphan with the command that ends it.
    let first = r.ok(&["list"]);
    assert!(
        first
            .stderr
            .contains(&format!("previous rpm2 daemon (pid {daemon}) died"))
            && first.stderr.contains("rpm2 resurrect"),
        "{}",
        first.all()
    );
    assert!(
        first.stderr.contains(&format!("kill {orphan}")),
        "{}",
        first.all()
    );
    let again = r.ok(&["list"]);
    assert!(
        !again.stderr.contains("died"),
        "the crash is told once: {}",
        again.all()
    );
    assert!(
        again.stderr.contains(&format!("kill {orphan}")),
        "{}",
        again.all()
    );
    assert!(
        r.ok(&["jlist"]).stdout.trim_start().starts_with('['),
        "jlist stays JSON"
    );

    let out = r.fails(&["resurrect"]);
    let text = out.all();
    assert!(text.contains("keeps crashing"), "{text}");
    assert!(text.contains(&format!("kill {orphan}")), "{text}");
    let log = std::fs::read_to_string(r.home().join("pm2.log")).unwrap();
    assert!(
        log.contains(&format!("previous daemon (pid {daemon}) died")),
        "{log}"
    );

    // Once the orphan is gone, resurrect works.
    kill(Pid::from_raw(orphan), Signal::SIGKILL).unwrap();
    wait_dead(orphan);
    r.ok(&["delete", "all"]);
    r.ok(&["resurrect"]);
    assert_eq!(r.proc("web")["pm2_env"]["status"], "online");
}
