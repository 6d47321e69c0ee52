//! `require('rpm2')`'s native half: an RPC *client* of the rpm2 daemon.
//!
//! Nothing here supervises anything: the daemon is its own process (the
//! `rpm2 __daemon` executable), and this addon only talks to it over
//! `$RPM2_HOME/rpc.sock` with `rpm2-client` (it does not link the daemon).
//!
//! - Every call runs as an [`AsyncTask`] on libuv's thread pool, so Node's
//!   event loop never waits on the socket.
//! - Results cross the boundary as data, never as thrown errors: a JSON
//!   string of `{ ok: value }` or `{ error: { code, message } }` (rolldown's
//!   `BindingResult` pattern; JSON because the values are pm2's loose
//!   process objects, which `index.d.ts` types by hand). `index.js` turns
//!   errors into `Error` objects with a stable `err.code` (`ErrorCode`).
//! - Requests arrive as `rpm2-proto` `Request` JSON and are parsed into the
//!   typed request here, so a bad target, signal or scale count is refused
//!   before anything is sent.
//! - The bus ([`Connection::subscribe`]) is a dedicated thread reading
//!   events and handing them to JS through a `ThreadsafeFunction`; closing
//!   it shuts the socket down, the thread ends and drops the function, so
//!   nothing keeps the process alive afterwards.

mod bus;
mod pool;
mod start;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bus::BusCallback;
use napi::bindgen_prelude::AsyncTask;
use napi::{Env, Status, Task};
use napi_derive::napi;
use pool::Shared;
use rpm2_client::{ClientError, Home};
use rpm2_proto::{ErrorCode, Request};
use serde_json::{json, Value};

pub use start::LoadOpts;

/// What a job hands back to JS: `{ ok }` or `{ error: { code, message } }`.
pub(crate) type Outcome = Result<Value, ClientError>;

/// A refusal with `BAD_REQUEST`.
pub(crate) fn bad_request(message: impl Into<String>) -> ClientError {
    ClientError::rejected(ErrorCode::BadRequest, message)
}

/// Any serialisable answer as a JSON value.
pub(crate) fn to_value(v: impl serde::Serialize) -> Outcome {
    serde_json::to_value(v).map_err(|e| ClientError::Unexpected(e.to_string()))
}

fn to_js(outcome: Outcome) -> Value {
    match outcome {
        Ok(v) => json!({ "ok": v }),
        Err(e) => json!({ "error": { "code": e.code().as_str(), "message": e.to_string() } }),
    }
}

type Work = Box<dyn FnOnce(&Shared) -> Outcome + Send>;

/// One call on the thread pool.
pub struct Job {
    shared: Arc<Shared>,
    work: Option<Work>,
}

impl Task for Job {
    type Output = String;
    type JsValue = String;

    fn compute(&mut self) -> napi::Result<String> {
        let work = self
            .work
            .take()
            .ok_or_else(|| napi::Error::new(Status::GenericFailure, "job ran twice"))?;
        Ok(to_js(work(&self.shared)).to_string())
    }

    fn resolve(&mut self, _env: Env, output: String) -> napi::Result<String> {
        Ok(output)
    }
}

/// Every request `op` the daemon knows (`rpm2-proto`'s `Request::OPS`);
/// `index.js`'s own list is checked against it by a test.
#[napi]
#[must_use]
pub fn request_ops() -> Vec<String> {
    Request::OPS.iter().map(|&op| op.to_owned()).collect()
}

/// Every `err.code` string (`rpm2-proto`'s `ErrorCode`), by variant name:
/// `{ DaemonUnavailable: 'DAEMON_UNAVAILABLE', … }`.
#[napi(ts_return_type = "Record<string, string>")]
#[must_use]
pub fn error_codes() -> Value {
    let map: serde_json::Map<String, Value> = ErrorCode::ALL
        .iter()
        .map(|c| (format!("{c:?}"), json!(c.as_str())))
        .collect();
    Value::Object(map)
}

/// pm2's rule for "this start target is a config file" (`rpm2-config`).
#[napi]
#[must_use]
pub fn is_config_file(target: String) -> bool {
    rpm2_config::is_config_file(&target)
}

/// A client of the daemon of one `RPM2_HOME`.
#[napi]
pub struct Connection {
    shared: Arc<Shared>,
    buses: Mutex<Vec<bus::BusHandle>>,
}

#[napi]
impl Connection {
    /// `home`: the `RPM2_HOME` to use; `exe`: the rpm2 executable that
    /// starts a daemon when none answers (`null`: never start one).
    #[napi(constructor)]
    #[must_use]
    pub fn new(home: String, exe: Option<String>) -> Self {
        Self {
            shared: Arc::new(Shared::new(Home::new(home), exe.map(PathBuf::from))),
            buses: Mutex::new(Vec::new()),
        }
    }

    fn job(&self, work: impl FnOnce(&Shared) -> Outcome + Send + 'static) -> AsyncTask<Job> {
        AsyncTask::new(Job {
            shared: Arc::clone(&self.shared),
            work: Some(Box::new(work)),
        })
    }

    /// Reach the daemon. With `spawn`, start it (detached) if none answers;
    /// otherwise wait up to `wait_ms` for one to answer (a daemon the caller
    /// just started). Resolves to `{ daemonPid, newDaemon, home }`.
    #[napi(ts_return_type = "Promise<string>")]
    pub fn connect(&self, spawn: bool, wait_ms: u32) -> AsyncTask<Job> {
        self.job(move |shared| {
            let deadline = Instant::now() + Duration::from_millis(u64::from(wait_ms));
            let (client, spawned) = loop {
                match shared.open(spawn) {
                    Ok(pair) => break pair,
                    Err(e) if Instant::now() >= deadline => return Err(e),
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            };
            let pid = client.daemon_pid;
            shared.put_idle(client);
            Ok(json!({
                "daemonPid": pid,
                "newDaemon": spawned,
                "home": shared.home().root().display().to_string(),
                "rpcSocketFile": shared.home().rpc_socket().display().to_string(),
            }))
        })
    }

    /// Send one `rpm2-proto` `Request` (as JSON: `{ op: "list" }`, …);
    /// resolves to the `Response` as JSON. The request is parsed into its
    /// typed form first: bad targets, signals and counts never leave.
    #[napi(ts_return_type = "Promise<string>")]
    pub fn request(&self, request: Value) -> AsyncTask<Job> {
        self.job(move |shared| {
            let req: Request = serde_json::from_value(request)
                .map_err(|e| bad_request(format!("bad request: {e}")))?;
            if matches!(req, Request::Hello { .. } | Request::Subscribe) {
                return Err(bad_request("hello and subscribe are not plain requests"));
            }
            let resp = shared.with_client(|c| c.call(&req));
            if matches!(req, Request::Kill) {
                shared.clear();
            }
            to_value(resp?)
        })
    }

    /// pm2's `update()`: the daemon hands itself over to the rpm2 binary on
    /// disk in place (same pid, every process kept). Resolves to
    /// `{ success, pid, from, to }`; `success: false` when no daemon runs.
    #[napi(ts_return_type = "Promise<string>")]
    pub fn update(&self) -> AsyncTask<Job> {
        self.job(move |shared| {
            // Pooled connections end with the old image.
            shared.clear();
            let done =
                rpm2_client::update_in_place(shared.home(), rpm2_client::Timeouts::from_env());
            shared.clear();
            Ok(match done? {
                Some(u) => json!({
                    "success": true,
                    "pid": u.pid,
                    "from": u.from_version,
                    "to": u.to_version,
                }),
                None => json!({ "success": false }),
            })
        })
    }

    /// `start(script | configPath | appObject | appArray, opts)`: loads and
    /// validates everything the way `rpm2 start` does, then starts it.
    /// Resolves to `{ processes, warnings }`.
    #[napi(ts_return_type = "Promise<string>")]
    pub fn start(&self, target: Value, opts: LoadOpts) -> AsyncTask<Job> {
        self.job(move |shared| start::start(shared, target, opts))
    }

    /// Load apps (from a config file, a script or app objects) without
    /// starting them; resolves to the `AppSpec`s. Used to turn a config
    /// path given to stop/restart/reload/delete into app names.
    #[napi(ts_return_type = "Promise<string>")]
    pub fn load(&self, target: Value, opts: LoadOpts) -> AsyncTask<Job> {
        self.job(move |_| to_value(start::plan(target, &opts)?.into_loaded()?.apps))
    }

    /// `restart`/`reload` of a config file: its apps start, restart or
    /// reload with the file's spec, as the CLI does.
    #[napi(ts_return_type = "Promise<string>")]
    pub fn start_or(&self, target: Value, opts: LoadOpts, reload: bool) -> AsyncTask<Job> {
        self.job(move |shared| start::start_or(shared, target, opts, reload))
    }

    /// Subscribe to the daemon's events. `callback` receives JSON strings:
    /// first `{"rpm2":"ready"}` (or `{"rpm2":"error",code,message}`), then
    /// one per event, and `{"rpm2":"closed"}` at the end. The returned id
    /// closes it with [`Connection::close_bus`].
    #[napi]
    pub fn subscribe(
        &self,
        #[napi(ts_arg_type = "(packet: string) => void")] callback: BusCallback,
    ) -> u32 {
        let handle = bus::spawn(self.shared.home().clone(), callback);
        let id = handle.id;
        if let Ok(mut buses) = self.buses.lock() {
            buses.push(handle);
        }
        id
    }

    /// Close one bus (its thread ends and releases the callback).
    #[napi]
    pub fn close_bus(&self, id: u32) {
        if let Ok(mut buses) = self.buses.lock() {
            buses.retain(|b| {
                if b.id == id {
                    b.close();
                    false
                } else {
                    true
                }
            });
        }
    }

    /// Forget idle connections and close every bus: nothing of this
    /// connection keeps the process alive afterwards.
    #[napi]
    pub fn close(&self) {
        self.shared.clear();
        if let Ok(mut buses) = self.buses.lock() {
            for b in buses.drain(..) {
                b.close();
            }
        }
    }
}
