//! The bus: a thread that subscribes to the daemon's events and hands each
//! one to JS as a JSON string through a `ThreadsafeFunction`.
//!
//! The function holds the event loop open while the bus lives (a script
//! that only listens to the bus keeps running, as with pm2). Closing the
//! bus shuts the socket down; the thread's read fails, the thread ends and
//! drops the function, and the loop is free to exit.

use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::Status;
use rpm2_client::{Client, Home};
use serde_json::json;

/// The JS callback: one JSON string per packet.
pub type BusCallback = ThreadsafeFunction<String, (), String, Status, false>;

static NEXT_ID: AtomicU32 = AtomicU32::new(1);

/// What the owner keeps to close a bus.
pub struct BusHandle {
    pub id: u32,
    closed: Arc<AtomicBool>,
    stream: Arc<Mutex<Option<UnixStream>>>,
}

impl BusHandle {
    /// Stop the bus; idempotent, never blocks on the thread.
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        if let Ok(guard) = self.stream.lock() {
            if let Some(s) = guard.as_ref() {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
    }
}

/// Start a bus thread for the daemon of `home`.
pub fn spawn(home: Home, callback: BusCallback) -> BusHandle {
    let handle = BusHandle {
        id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        closed: Arc::new(AtomicBool::new(false)),
        stream: Arc::new(Mutex::new(None)),
    };
    let closed = Arc::clone(&handle.closed);
    let stream = Arc::clone(&handle.stream);
    let spawned = std::thread::Builder::new()
        .name("rpm2-bus".into())
        .spawn(move || run(&home, &callback, &closed, &stream));
    if let Err(e) = spawned {
        // The closure (and the callback) is gone with the failed spawn; the
        // JS side sees no "ready" and times out on its own.
        eprintln!("rpm2: cannot start the bus thread: {e}");
    }
    handle
}

fn send(callback: &BusCallback, packet: String) -> bool {
    callback.call(packet, ThreadsafeFunctionCallMode::Blocking) == Status::Ok
}

fn run(home: &Home, callback: &BusCallback, closed: &AtomicBool, slot: &Mutex<Option<UnixStream>>) {
    let events = Client::connect(home).and_then(|client| {
        if let (Ok(s), Ok(mut guard)) = (client.try_clone_stream(), slot.lock()) {
            *guard = Some(s);
        }
        client.subscribe()
    });
    let mut events = match events {
        Ok(ev) => ev,
        Err(e) => {
            send(
                callback,
                json!({"rpm2": "error", "code": e.code().as_str(), "message": e.to_string()})
                    .to_string(),
            );
            return;
        }
    };
    // Closed while we were connecting: the shutdown missed our socket.
    if closed.load(Ordering::SeqCst) {
        send(callback, json!({"rpm2": "closed"}).to_string());
        return;
    }
    if !send(callback, json!({"rpm2": "ready"}).to_string()) {
        return;
    }
    while let Ok(event) = events.next_event() {
        if closed.load(Ordering::SeqCst) {
            break;
        }
        let Ok(text) = serde_json::to_string(&event) else {
            continue;
        };
        if !send(callback, text) {
            return;
        }
    }
    send(callback, json!({"rpm2": "closed"}).to_string());
}
