//! The dashboard loop: the terminal (restored on exit and on panic),
//! keys, and what the feed threads send. Nothing here waits on the
//! daemon.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::time::Duration;

use ratatui::crossterm::event::{self, Event as TermEvent};
use ratatui::DefaultTerminal;
use rpm2_core::supervisor::now_ms;
use rpm2_proto::ErrorCode;

use super::feed::{self, Daemon, Msg, BUFFER};
use super::input;
use super::model::{App, LogKind, Notice};
use super::render;
use crate::commands::{CmdResult, Ctx};
use crate::error::CliError;

/// How long keys and daemon messages may wait for a redraw.
const TICK: Duration = Duration::from_millis(100);
/// Lines read from each log file when a worker first shows up.
const PREFILL: usize = 20;

pub fn monit(ctx: &Ctx) -> CmdResult {
    if !std::io::stdout().is_terminal() {
        return Err(CliError::new(
            ErrorCode::BadRequest,
            "monit draws a dashboard: run it in a terminal (for scripts: rpm2 jlist, rpm2 logs)",
        ));
    }
    // Like pm2 monit, start the daemon if none runs; connect before the
    // terminal changes so that errors print as usual.
    let client = ctx.client()?;
    let events = ctx.client()?.subscribe()?;
    let daemon = Daemon {
        home: ctx.home.clone(),
        timeouts: ctx.timeouts,
    };
    let (tx, rx) = mpsc::sync_channel(BUFFER);
    feed::spawn_bus(events, tx.clone());
    let refresh = feed::spawn_lister(daemon.clone(), client, tx.clone());
    let mut terminal = ratatui::try_init()?; // also hooks panics to restore
    let result = Dashboard {
        daemon,
        tx,
        rx,
        refresh,
        app: App::default(),
    }
    .run(&mut terminal);
    ratatui::restore();
    result.map(|()| ExitCode::SUCCESS).map_err(CliError::from)
}

struct Dashboard {
    daemon: Daemon,
    tx: SyncSender<Msg>,
    rx: Receiver<Msg>,
    /// Pokes the lister to read the list now.
    refresh: Sender<()>,
    app: App,
}

impl Dashboard {
    fn run(&mut self, terminal: &mut DefaultTerminal) -> std::io::Result<()> {
        let mut dirty = true;
        loop {
            while let Ok(msg) = self.rx.try_recv() {
                self.handle(msg);
                dirty = true;
            }
            if dirty {
                terminal.draw(|frame| render::draw(frame, &self.app, now_ms()))?;
                dirty = false;
            }
            if event::poll(TICK)? {
                dirty = true;
                if let TermEvent::Key(key) = event::read()? {
                    self.key(key);
                }
            }
            if self.app.quit {
                return Ok(());
            }
        }
    }

    fn key(&mut self, key: event::KeyEvent) {
        let Some(action) = input::action(key) else {
            return;
        };
        if let Some(request) = self.app.apply(action) {
            feed::spawn_action(self.daemon.clone(), request, self.tx.clone());
        }
    }

    fn handle(&mut self, msg: Msg) {
        match msg {
            Msg::List(Ok(procs)) => {
                let new = self.app.update(procs);
                self.prefill(&new);
            }
            Msg::List(Err(e)) => {
                self.app.notice = Some(Notice::Failed(format!(
                    "daemon unreachable, retrying every second: {e}"
                )));
            }
            Msg::Reconnected => {
                self.app.notice = Some(Notice::Done("daemon reachable again".to_owned()));
            }
            Msg::Bus(event) => self.app.event(event),
            Msg::BusLost(why) => {
                // A lost daemon says more; it shows when both happen.
                if !matches!(self.app.notice, Some(Notice::Failed(_))) {
                    self.app.notice = Some(Notice::Failed(format!("log stream ended: {why}")));
                }
            }
            Msg::Done(r, outcome) => {
                let what = format!("{} {} (id {})", r.op.verb(), r.name, r.pm_id);
                self.app.notice = Some(match outcome {
                    Ok(()) => Notice::Done(format!("{what}: done")),
                    Err(e) => Notice::Failed(format!("{what}: {e}")),
                });
                // Show the outcome in the list without waiting a second.
                let _ = self.refresh.send(());
            }
        }
    }

    /// The end of new workers' log files, so a quiet app shows its
    /// recent lines (read here: it costs the daemon nothing).
    fn prefill(&mut self, new: &[u32]) {
        let mut lines = Vec::new();
        for p in self.app.procs.iter().filter(|p| new.contains(&p.pm_id)) {
            let env = &p.pm2_env;
            for (path, kind) in [
                (&env.pm_out_log_path, LogKind::Out),
                (&env.pm_err_log_path, LogKind::Err),
            ] {
                if path == "/dev/null" || (kind == LogKind::Err && *path == env.pm_out_log_path) {
                    continue;
                }
                let tail = rpm2_logs::tail_lines(Path::new(path), PREFILL).unwrap_or_default();
                lines.extend(tail.into_iter().map(|l| (p.pm_id, kind, l)));
            }
        }
        for (pm_id, kind, line) in lines {
            self.app.log(pm_id, kind, &line);
        }
    }
}
