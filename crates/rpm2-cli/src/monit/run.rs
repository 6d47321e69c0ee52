//! The dashboard loop: the terminal (restored on exit and on panic), one
//! `list` a second, bus events and keys.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::time::{Duration, Instant};

use ratatui::crossterm::event::{self, Event as TermEvent};
use ratatui::DefaultTerminal;
use rpm2_client::Client;
use rpm2_core::supervisor::now_ms;
use rpm2_proto::ErrorCode;

use super::feed::{self, Msg, BUS_BUFFER};
use super::input;
use super::model::{App, LogKind, Notice};
use super::render;
use crate::commands::{CmdResult, Ctx};
use crate::error::CliError;

/// The list is read once a second, as pm2's dashboard does (800 ms).
const REFRESH: Duration = Duration::from_secs(1);
/// How long keys and bus lines may wait for a redraw.
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
    let (tx, rx) = mpsc::sync_channel(BUS_BUFFER);
    feed::spawn_bus(ctx.client()?.subscribe()?, tx.clone());
    let mut terminal = ratatui::try_init()?; // also hooks panics to restore
    let result = Dashboard {
        ctx,
        client: Some(client),
        tx,
        rx,
        app: App::default(),
    }
    .run(&mut terminal);
    ratatui::restore();
    result.map(|()| ExitCode::SUCCESS).map_err(CliError::from)
}

struct Dashboard<'a> {
    ctx: &'a Ctx,
    /// `None` after the daemon went away; reconnected (never spawned) on
    /// the next refresh.
    client: Option<Client>,
    tx: SyncSender<Msg>,
    rx: Receiver<Msg>,
    app: App,
}

impl Dashboard<'_> {
    fn run(&mut self, terminal: &mut DefaultTerminal) -> std::io::Result<()> {
        let mut next_list = Instant::now();
        let mut dirty = true;
        loop {
            if Instant::now() >= next_list {
                self.refresh();
                next_list = Instant::now() + REFRESH;
                dirty = true;
            }
            while let Ok(msg) = self.rx.try_recv() {
                if self.handle(msg) {
                    next_list = Instant::now();
                }
                dirty = true;
            }
            if dirty {
                terminal.draw(|frame| render::draw(frame, &self.app, now_ms()))?;
                dirty = false;
            }
            let wait = next_list
                .saturating_duration_since(Instant::now())
                .min(TICK);
            if event::poll(wait)? {
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
            let (home, timeouts) = (self.ctx.home.clone(), self.ctx.timeouts);
            feed::spawn_action(home, timeouts, request, self.tx.clone());
        }
    }

    /// Apply a message; `true` when the list should be read again now.
    fn handle(&mut self, msg: Msg) -> bool {
        match msg {
            Msg::Bus(event) => self.app.event(event),
            Msg::BusLost(why) => {
                self.app.notice = Some(Notice::Failed(format!("log stream ended: {why}")));
            }
            Msg::Done(r, outcome) => {
                let what = format!("{} {} (id {})", r.op.verb(), r.name, r.pm_id);
                self.app.notice = Some(match outcome {
                    Ok(()) => Notice::Done(format!("{what}: done")),
                    Err(e) => Notice::Failed(format!("{what}: {e}")),
                });
                return true;
            }
        }
        false
    }

    /// Read the list; after losing the daemon, reconnect (and subscribe
    /// again) without starting one: `rpm2 kill` meant it.
    fn refresh(&mut self) {
        if self.client.is_none() {
            let Ok(client) = Client::connect_with(&self.ctx.home, self.ctx.timeouts) else {
                return;
            };
            if let Ok(events) =
                Client::connect_with(&self.ctx.home, self.ctx.timeouts).and_then(Client::subscribe)
            {
                feed::spawn_bus(events, self.tx.clone());
            }
            self.client = Some(client);
            self.app.notice = Some(Notice::Done("daemon reachable again".to_owned()));
        }
        let Some(client) = self.client.as_mut() else {
            return;
        };
        match client.list() {
            Ok(procs) => {
                let new = self.app.update(procs);
                self.prefill(&new);
            }
            Err(e) => {
                self.client = None;
                self.app.notice = Some(Notice::Failed(format!(
                    "daemon unreachable ({e}); retrying every second"
                )));
            }
        }
    }

    /// The end of a new worker's log files, so a quiet app shows its
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
