//! Everything that talks to the daemon, each on its own thread so the
//! dashboard never waits on it: the once-a-second list, the bus reader
//! and the worker actions. Each sends what it got back as a `Msg`; the
//! UI thread owns the state.

use std::sync::mpsc::{self, RecvTimeoutError, Sender, SyncSender};
use std::thread;
use std::time::Duration;

use rpm2_client::{Client, ClientError, Events, Home, Timeouts};
use rpm2_proto::{Event, ProcessInfo, Target};

use super::model::{Op, Request};

/// The list is read once a second (pm2's dashboard: every 800 ms).
pub const REFRESH: Duration = Duration::from_secs(1);

/// Messages buffered for the UI. When it is slower, the bus reader
/// waits and the daemon drops (and counts) events for this subscriber,
/// as for any slow `rpm2 logs`: the daemon never waits.
pub const BUFFER: usize = 4096;

pub enum Msg {
    List(Result<Vec<ProcessInfo>, String>),
    /// The daemon answers again after it was lost.
    Reconnected,
    Bus(Event),
    /// The event stream ended (the daemon went away).
    BusLost(String),
    /// A worker action's outcome.
    Done(Request, Result<(), String>),
}

/// Where the daemon is and how long to wait for it.
#[derive(Clone)]
pub struct Daemon {
    pub home: Home,
    pub timeouts: Timeouts,
}

impl Daemon {
    fn connect(&self) -> Result<Client, ClientError> {
        Client::connect_with(&self.home, self.timeouts)
    }
}

/// List once a second, and at once when poked (after an action), until
/// the UI is gone. A lost daemon is reconnected, with a new bus reader,
/// but never started: `rpm2 kill` meant it.
pub fn spawn_lister(daemon: Daemon, client: Client, tx: SyncSender<Msg>) -> Sender<()> {
    let (poke, pokes) = mpsc::channel();
    thread::spawn(move || {
        let mut client = Some(client);
        loop {
            if client.is_none() {
                if let Ok(c) = daemon.connect() {
                    if let Ok(events) = daemon.connect().and_then(Client::subscribe) {
                        spawn_bus(events, tx.clone());
                    }
                    client = Some(c);
                    if tx.send(Msg::Reconnected).is_err() {
                        return;
                    }
                }
            }
            if let Some(c) = client.as_mut() {
                let listed = c.list().map_err(|e| e.to_string());
                if listed.is_err() {
                    client = None;
                }
                if tx.send(Msg::List(listed)).is_err() {
                    return;
                }
            }
            if let Err(RecvTimeoutError::Disconnected) = pokes.recv_timeout(REFRESH) {
                return;
            }
        }
    });
    poke
}

/// Read the bus until it ends or the UI is gone.
pub fn spawn_bus(mut events: Events, tx: SyncSender<Msg>) {
    thread::spawn(move || loop {
        match events.next_event() {
            Ok(event) => {
                if tx.send(Msg::Bus(event)).is_err() {
                    return;
                }
            }
            Err(e) => {
                let _ = tx.send(Msg::BusLost(e.to_string()));
                return;
            }
        }
    });
}

/// Send one action on its own connection (a reload can take a while).
pub fn spawn_action(daemon: Daemon, request: Request, tx: SyncSender<Msg>) {
    thread::spawn(move || {
        let outcome = run_action(&daemon, &request).map_err(|e| e.to_string());
        let _ = tx.send(Msg::Done(request, outcome));
    });
}

fn run_action(daemon: &Daemon, r: &Request) -> Result<(), ClientError> {
    let mut client = daemon.connect()?;
    let targets = vec![Target::Id(r.pm_id)];
    match r.op {
        Op::Restart => client.restart(targets, None)?,
        Op::Reload => client.reload(targets, None, None)?,
        Op::Stop => client.stop(targets)?,
    };
    Ok(())
}
