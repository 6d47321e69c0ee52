//! The state shared by a connection's jobs: where the daemon is, and idle
//! connections to it (a small pool, so concurrent calls do not queue behind
//! a long reload).

use std::path::PathBuf;
use std::sync::Mutex;

use rpm2_client::{connect_or_spawn, Client, ClientError, Home};

/// Idle connections kept for reuse.
const MAX_IDLE: usize = 4;

pub(crate) struct Shared {
    home: Home,
    exe: Option<PathBuf>,
    idle: Mutex<Vec<Client>>,
}

impl Shared {
    pub fn new(home: Home, exe: Option<PathBuf>) -> Self {
        Self {
            home,
            exe,
            idle: Mutex::new(Vec::new()),
        }
    }

    pub fn home(&self) -> &Home {
        &self.home
    }

    fn take_idle(&self) -> Option<Client> {
        self.idle.lock().ok()?.pop()
    }

    pub fn put_idle(&self, client: Client) {
        if let Ok(mut idle) = self.idle.lock() {
            if idle.len() < MAX_IDLE {
                idle.push(client);
            }
        }
    }

    pub fn clear(&self) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.clear();
        }
    }

    /// A fresh connection; with `spawn`, start the daemon if none answers.
    pub fn open(&self, spawn: bool) -> Result<(Client, bool), ClientError> {
        match (&self.exe, spawn) {
            (Some(exe), true) => connect_or_spawn(&self.home, exe),
            _ => Client::connect(&self.home).map(|c| (c, false)),
        }
    }

    /// Run `f` on an idle connection if there is one, else a new one. A
    /// pooled connection whose daemon went away is replaced once.
    pub fn with_client<T>(
        &self,
        mut f: impl FnMut(&mut Client) -> Result<T, ClientError>,
    ) -> Result<T, ClientError> {
        let reused = self.take_idle();
        let was_reused = reused.is_some();
        let mut client = match reused {
            Some(c) => c,
            None => self.open(true)?.0,
        };
        let result = match f(&mut client) {
            Err(ClientError::Io(_)) if was_reused => {
                client = self.open(true)?.0;
                f(&mut client)
            }
            other => other,
        };
        // The connection is still in step after an answer or a refusal.
        if matches!(
            result,
            Ok(_) | Err(ClientError::Rpc(_) | ClientError::Rejected(_))
        ) {
            self.put_idle(client);
        }
        result
    }
}
