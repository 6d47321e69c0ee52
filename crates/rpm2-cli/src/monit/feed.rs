//! Everything that talks to the daemon, off the UI thread where it may
//! wait: the bus reader and the worker actions. Each sends its result
//! back as a `Msg`; the UI thread owns the state.

use std::sync::mpsc::SyncSender;
use std::thread;

use rpm2_client::{Client, ClientError, Home, Timeouts};
use rpm2_proto::{Event, Target};

use super::model::{Op, Request};

/// Bus events buffered between the reader and the UI. When the UI is
/// slower, the reader waits and the daemon drops (and counts) events for
/// this subscriber, as for any slow `rpm2 logs`: the daemon never waits.
pub const BUS_BUFFER: usize = 4096;

pub enum Msg {
    Bus(Event),
    /// The event stream ended (the daemon went away).
    BusLost(String),
    /// A worker action's outcome.
    Done(Request, Result<(), String>),
}

/// Read the bus until it ends or the UI is gone.
pub fn spawn_bus(mut events: rpm2_client::Events, tx: SyncSender<Msg>) {
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

/// Send one action on its own connection (a reload can take a while:
/// the dashboard keeps refreshing meanwhile). No daemon is started here.
pub fn spawn_action(home: Home, timeouts: Timeouts, request: Request, tx: SyncSender<Msg>) {
    thread::spawn(move || {
        let outcome = run_action(&home, timeouts, &request).map_err(|e| e.to_string());
        let _ = tx.send(Msg::Done(request, outcome));
    });
}

fn run_action(home: &Home, timeouts: Timeouts, r: &Request) -> Result<(), ClientError> {
    let mut client = Client::connect_with(home, timeouts)?;
    let targets = vec![Target::Id(r.pm_id)];
    match r.op {
        Op::Restart => client.restart(targets, None)?,
        Op::Reload => client.reload(targets, None, None)?,
        Op::Stop => client.stop(targets)?,
    };
    Ok(())
}
