//! `require('rpm2')`'s native half: an RPC *client* of the rpm2 daemon.
//!
//! Nothing here supervises anything: the daemon is its own process (the
//! `rpm2 __daemon` executable), and this addon only talks to it over
//! `$RPM2_HOME/rpc.sock` with the blocking client of `rpm2-core`.
//!
//! - Every call runs as an [`AsyncTask`] on libuv's thread pool, so Node's
//!   event loop never waits on the socket.
//! - Results cross the boundary as data, never as thrown errors: a JSON
//!   string of `{ ok: value }` or `{ error: { code, message } }` (rolldown's
//!   `BindingResult` pattern; JSON because the values are pm2's loose
//!   process objects, which `index.d.ts` types by hand). `index.js` turns errors into `Error`
//!   objects with a stable `err.code`.
//! - The bus ([`Connection::subscribe`]) is a dedicated thread reading
//!   events and handing them to JS through a `ThreadsafeFunction`; closing
//!   it shuts the socket down, the thread ends and drops the function, so
//!   nothing keeps the process alive afterwards.
//!
//! Request and response types are `rpm2-proto`'s, unchanged: `request`
//! takes a `Request` as JSON and answers with the `Response` as JSON.

mod bus;
mod start;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bus::BusCallback;
use napi::bindgen_prelude::AsyncTask;
use napi::{Env, Status, Task};
use napi_derive::napi;
use rpm2_core::rpc::client::{connect_or_spawn, Client, ClientError};
use rpm2_core::Home;
use rpm2_proto::{ErrorCode, Request, Response};
use serde_json::{json, Value};

/// What a job hands back to JS: `{ ok }` or `{ error: { code, message } }`.
pub(crate) type Outcome = Result<Value, Failure>;

/// An error as JS sees it.
#[derive(Debug)]
pub(crate) struct Failure {
    pub code: String,
    pub message: String,
}

impl Failure {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
        }
    }
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Self {
        Self::new(e.code().as_str(), e.to_string())
    }
}

impl From<rpm2_config::ConfigError> for Failure {
    fn from(e: rpm2_config::ConfigError) -> Self {
        Self::new(e.code(), e.to_string())
    }
}

fn to_js(outcome: Outcome) -> Value {
    match outcome {
        Ok(v) => json!({ "ok": v }),
        Err(f) => json!({ "error": { "code": f.code, "message": f.message } }),
    }
}

/// The state shared by a connection's jobs: where the daemon is, and idle
/// connections to it (a small pool, so concurrent calls do not queue behind
/// a long reload).
pub(crate) struct Shared {
    home: Home,
    exe: Option<PathBuf>,
    idle: Mutex<Vec<Client>>,
}

impl Shared {
    fn take_idle(&self) -> Option<Client> {
        self.idle.lock().ok()?.pop()
    }

    fn put_idle(&self, client: Client) {
        if let Ok(mut idle) = self.idle.lock() {
            if idle.len() < 4 {
                idle.push(client);
            }
        }
    }

    fn clear(&self) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.clear();
        }
    }

    /// A fresh connection; with `spawn`, start the daemon if none answers.
    fn open(&self, spawn: bool) -> Result<(Client, bool), ClientError> {
        match (&self.exe, spawn) {
            (Some(exe), true) => connect_or_spawn(&self.home, exe),
            _ => Client::connect(&self.home).map(|c| (c, false)),
        }
    }

    /// One request, on an idle connection if there is one. A pooled
    /// connection whose daemon went away is replaced once.
    pub(crate) fn call(&self, req: &Request) -> Result<Response, ClientError> {
        let reused = self.take_idle();
        let was_reused = reused.is_some();
        let mut client = match reused {
            Some(c) => c,
            None => self.open(true)?.0,
        };
        let result = match client.call(req) {
            Err(ClientError::Io(_)) if was_reused => {
                client = self.open(true)?.0;
                client.call(req)
            }
            other => other,
        };
        match (&result, req) {
            (_, Request::Kill) => self.clear(),
            (Ok(_) | Err(ClientError::Rpc(_)), _) => self.put_idle(client),
            _ => {}
        }
        result
    }

    fn processes(&self, req: &Request) -> Result<Vec<rpm2_proto::ProcessInfo>, Failure> {
        match self.call(req)? {
            Response::Processes { processes } => Ok(processes),
            other => Err(unexpected(&other)),
        }
    }
}

pub(crate) fn unexpected(resp: &Response) -> Failure {
    Failure::new(
        ErrorCode::BadRequest.as_str(),
        format!("unexpected answer from the daemon: {resp:?}"),
    )
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
            shared: Arc::new(Shared {
                home: Home::new(home),
                exe: exe.map(PathBuf::from),
                idle: Mutex::new(Vec::new()),
            }),
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
                    Err(e) if Instant::now() >= deadline => return Err(e.into()),
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            };
            let pid = client.daemon_pid;
            shared.put_idle(client);
            Ok(json!({
                "daemonPid": pid,
                "newDaemon": spawned,
                "home": shared.home.root().display().to_string(),
                "rpcSocketFile": shared.home.rpc_socket().display().to_string(),
            }))
        })
    }

    /// Send one `rpm2-proto` `Request` (as JSON: `{ op: "list" }`, …);
    /// resolves to the `Response` as JSON.
    #[napi(ts_return_type = "Promise<string>")]
    pub fn request(&self, request: Value) -> AsyncTask<Job> {
        self.job(move |shared| {
            let req: Request = serde_json::from_value(request).map_err(|e| {
                Failure::new(ErrorCode::BadRequest.as_str(), format!("bad request: {e}"))
            })?;
            if matches!(req, Request::Hello { .. } | Request::Subscribe) {
                return Err(Failure::new(
                    ErrorCode::BadRequest.as_str(),
                    "hello and subscribe are not plain requests",
                ));
            }
            let resp = shared.call(&req)?;
            serde_json::to_value(resp)
                .map_err(|e| Failure::new(ErrorCode::BadRequest.as_str(), e.to_string()))
        })
    }

    /// `start(script | configPath | appObject | appArray, opts)`: loads and
    /// validates everything the way `rpm2 start` does, then starts it.
    /// Resolves to `{ processes, warnings }`.
    #[napi(ts_return_type = "Promise<string>")]
    pub fn start(&self, target: Value, opts: Value) -> AsyncTask<Job> {
        self.job(move |shared| start::start(shared, &target, &opts))
    }

    /// Load apps (from a config file, a script or app objects) without
    /// starting them; resolves to the `AppSpec`s. Used to turn a config
    /// path given to stop/restart/reload/delete into app names.
    #[napi(ts_return_type = "Promise<string>")]
    pub fn load(&self, target: Value, opts: Value) -> AsyncTask<Job> {
        self.job(move |_| {
            let loaded = start::load(&target, &opts)?;
            serde_json::to_value(loaded.apps)
                .map_err(|e| Failure::new(ErrorCode::BadRequest.as_str(), e.to_string()))
        })
    }

    /// `restart`/`reload` of a config file: its apps start, restart or
    /// reload with the file's spec, as the CLI does.
    #[napi(ts_return_type = "Promise<string>")]
    pub fn start_or(&self, target: Value, opts: Value, reload: bool) -> AsyncTask<Job> {
        self.job(move |shared| start::start_or(shared, &target, &opts, reload))
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
        let handle = bus::spawn(self.shared.home.clone(), callback);
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

/// The `Request` list's processes helper, for the modules above.
pub(crate) fn processes(shared: &Shared, req: &Request) -> Result<Vec<Value>, Failure> {
    shared
        .processes(req)?
        .into_iter()
        .map(|p| {
            serde_json::to_value(p)
                .map_err(|e| Failure::new(ErrorCode::BadRequest.as_str(), e.to_string()))
        })
        .collect()
}
