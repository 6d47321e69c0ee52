//! The actor's side of `@pm2/io` (`axm.rs` holds the pure rules): a
//! run's own messages (`axm:*`, the app's), which run of a worker
//! reports, and `trigger`s waiting for their `axm:reply`.
//!
//! As in pm2, a new process starts with empty `axm_*` data and its exit
//! empties the metrics and actions. During a reload the successor is the
//! one that reports (pm2 moves the old process aside); the old run's
//! `axm:*` messages are dropped.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use rpm2_proto::info::Axm;
use rpm2_proto::{ActionReply, ErrorCode, Event, EventProcess, RpcError, Target, WorkerStatus};
use serde_json::{json, Value};

use super::actor::Actor;
use super::axm::{self, Kind, Sizes};
use super::state::Gen;
use super::{now_ms, Msg, Reply};

/// How long a trigger waits for its replies before it answers with those
/// that came (pm2's CLI waits forever). Under the client's 2 min bound.
pub(crate) const TRIGGER_WAIT_MS: u64 = 110_000;
/// Triggers waiting at once, daemon-wide.
const MAX_PENDING: usize = 1024;

/// What a trigger answers: the workers asked, and their replies.
pub type Triggered = (Vec<EventProcess>, Vec<ActionReply>);

/// The actor's `@pm2/io` bookkeeping.
#[derive(Default)]
pub(crate) struct AxmBook {
    /// The run whose `axm:*` messages fill each worker's data: its newest.
    reporting: HashMap<u32, Gen>,
    /// The approximate bytes each worker's `axm_*` sections hold.
    sizes: HashMap<u32, Sizes>,
    /// Runs already logged for a bad `axm:*` message (logged once each).
    warned: HashSet<Gen>,
    pending: Vec<Pending>,
    next_trigger: u64,
}

/// A trigger waiting for replies.
struct Pending {
    id: u64,
    action: String,
    /// Runs asked that have not answered nor exited.
    waiting: Vec<Gen>,
    sent: Vec<EventProcess>,
    replies: Vec<ActionReply>,
    reply: Reply<Triggered>,
}

impl Actor {
    /// A message from a run's app (neither cluster protocol nor drain
    /// preload), sorted as pm2 does: `{type, data}` events, of which
    /// `axm:monitor`, `axm:action` and `axm:option:*` fill the worker's
    /// data and the others go on the bus; anything else goes on the bus as
    /// a raw `process:msg`.
    pub(crate) fn on_app_message(&mut self, gen: Gen, pm_id: u32, msg: Value) {
        match axm::split_typed(msg) {
            Ok((kind_text, data)) => {
                let kind = Kind::of(&kind_text);
                if kind == Kind::Reply {
                    self.answer_trigger(gen, pm_id, &data);
                }
                if kind.published() {
                    self.publish_msg(pm_id, Some(kind_text), Some(data), None);
                } else {
                    self.store_axm(gen, pm_id, kind, data);
                }
            }
            Err(raw) => self.publish_msg(pm_id, None, None, Some(raw)),
        }
    }

    fn publish_msg(
        &self,
        pm_id: u32,
        msg_type: Option<String>,
        data: Option<Value>,
        raw: Option<Value>,
    ) {
        if self.bus.receiver_count() == 0 {
            return;
        }
        let _ = self.bus.send(Event::ProcessMsg {
            process: self.event_process(pm_id),
            at: now_ms(),
            msg_type,
            data,
            raw,
        });
    }

    /// Keep what an `axm:*` message says in the worker's data; a bad one
    /// is dropped (what of it fits is kept) and logged once per run.
    fn store_axm(&mut self, gen: Gen, pm_id: u32, kind: Kind, data: Value) {
        if self.axm.reporting.get(&pm_id) != Some(&gen) {
            tracing::trace!("axm message from run {gen}, which no longer reports for {pm_id}");
            return;
        }
        let Some(w) = self.table.workers.get_mut(&pm_id) else {
            return;
        };
        let sizes = self.axm.sizes.entry(pm_id).or_default();
        if let Err(e) = axm::apply(&mut w.axm, sizes, kind, data) {
            if self.axm.warned.insert(gen) {
                tracing::warn!(
                    "App [{}:{pm_id}] sent a bad @pm2/io message ({e}); it was dropped, \
                     and later bad ones from this process are dropped without a word",
                    w.app
                );
            }
        }
    }

    /// Run `gen` of worker `pm_id` was spawned: it reports from now on,
    /// starting from empty data (pm2's `executeApp`).
    /// A run taken over from the previous daemon image reports again; what
    /// it reported so far is kept.
    pub(crate) fn axm_run_adopted(&mut self, pm_id: u32, gen: Gen) {
        self.axm.reporting.insert(pm_id, gen);
        self.axm.sizes.insert(pm_id, Sizes::default());
    }

    pub(crate) fn axm_run_started(&mut self, pm_id: u32, gen: Gen) {
        self.axm.reporting.insert(pm_id, gen);
        self.axm.sizes.insert(pm_id, Sizes::default());
        if let Some(w) = self.table.workers.get_mut(&pm_id) {
            w.axm = Axm::default();
        }
    }

    /// Run `gen` is gone (already out of the table): triggers stop waiting
    /// for it, and if it reported, its metrics and actions go with it and
    /// the worker's other run (a reload's old one) reports, if any.
    pub(crate) fn axm_run_exited(&mut self, pm_id: u32, gen: Gen) {
        self.axm.warned.remove(&gen);
        self.stop_waiting(|g| g == gen);
        if self.axm.reporting.get(&pm_id) != Some(&gen) {
            return;
        }
        match self.table.workers.get_mut(&pm_id) {
            Some(w) => {
                let sizes = self.axm.sizes.entry(pm_id).or_default();
                axm::clear_after_exit(&mut w.axm, sizes);
            }
            None => {
                self.axm.sizes.remove(&pm_id);
            }
        }
        let other = self
            .table
            .runs
            .iter()
            .filter(|(_, r)| r.pm_id == pm_id)
            .map(|(g, _)| *g)
            .max();
        match other {
            Some(g) => self.axm.reporting.insert(pm_id, g),
            None => self.axm.reporting.remove(&pm_id),
        };
    }

    /// pm2's `trigger` (its `msgProcess`): send `action` to the matching
    /// workers that registered it, answer once each replied or exited.
    pub(crate) fn trigger(
        &mut self,
        target: &Target,
        action: String,
        params: Option<Value>,
        reply: Reply<Triggered>,
    ) {
        self.axm.pending.retain(|p| !p.reply.is_closed());
        if self.axm.pending.len() >= MAX_PENDING {
            let _ = reply.send(Err(RpcError::new(
                ErrorCode::DaemonBusy,
                format!("{MAX_PENDING} triggers are already waiting for replies"),
            )));
            return;
        }
        let ids = match self.trigger_ids(target, &action) {
            Ok(ids) => ids,
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        };
        // pm2 sends the bare name without params, else the whole command.
        let payload = match params.filter(|p| !p.is_null()) {
            None => Value::String(action.clone()),
            Some(opts) => match target {
                Target::Id(id) => json!({"msg": action, "opts": opts, "id": id}),
                other => json!({"msg": action, "opts": opts, "name": other.to_string()}),
            },
        };
        let mut sent = Vec::new();
        let mut waiting = Vec::new();
        for pm_id in ids {
            let Some(&gen) = self.axm.reporting.get(&pm_id) else {
                continue;
            };
            let link = self.table.runs.get(&gen).and_then(|r| r.link.as_ref());
            if link.is_some_and(|l| l.send(payload.clone()).is_ok()) {
                sent.push(self.event_process(pm_id));
                waiting.push(gen);
            }
        }
        if let (Target::Id(id), true) = (target, sent.is_empty()) {
            let _ = reply.send(Err(offline(*id)));
            return;
        }
        if waiting.is_empty() {
            let _ = reply.send(Ok((sent, Vec::new())));
            return;
        }
        self.axm.next_trigger += 1;
        let id = self.axm.next_trigger;
        self.axm.pending.push(Pending {
            id,
            action,
            waiting,
            sent,
            replies: Vec::new(),
            reply,
        });
        self.after(TRIGGER_WAIT_MS, Msg::TriggerDue { id });
    }

    /// The workers a trigger goes to, with pm2's errors for an id.
    fn trigger_ids(&mut self, target: &Target, action: &str) -> Result<Vec<u32>, RpcError> {
        let live = |s: WorkerStatus| matches!(s, WorkerStatus::Online | WorkerStatus::Launching);
        if let Target::Id(id) = target {
            let Some(w) = self.table.workers.get_mut(id) else {
                return Err(RpcError::new(
                    ErrorCode::ProcessNotFound,
                    format!("{id} id unknown"),
                ));
            };
            if axm::find_action(&w.axm.axm_actions, action).is_none() {
                return Err(RpcError::new(
                    ErrorCode::BadRequest,
                    format!("Action doesn't exist {action} for {}", w.app),
                ));
            }
            axm::clear_output(&mut w.axm.axm_actions, action);
            if !live(w.life.status()) {
                return Err(offline(*id));
            }
            return Ok(vec![*id]);
        }
        let ids = self
            .table
            .workers
            .values()
            .filter(|w| live(w.life.status()))
            .filter(|w| axm::find_action(&w.axm.axm_actions, action).is_some())
            .filter(|w| match target {
                Target::Name(name) => {
                    let spec = self.table.apps.get(&w.app).map(|a| &a.spec);
                    w.app == *name
                        || spec.is_some_and(|s| {
                            s.namespace == *name
                                || s.script.file_name().map(Path::new) == Some(Path::new(name))
                        })
                }
                _ => true,
            })
            .map(|w| w.pm_id)
            .collect();
        Ok(ids)
    }

    /// An `axm:reply` from run `gen`: it answers the oldest trigger waiting
    /// for that run and that action.
    fn answer_trigger(&mut self, gen: Gen, pm_id: u32, data: &Value) {
        let action = data.get("action_name").and_then(Value::as_str);
        let Some(idx) = self
            .axm
            .pending
            .iter()
            .position(|p| p.waiting.contains(&gen) && action.is_none_or(|a| a == p.action))
        else {
            return;
        };
        let process = self.event_process(pm_id);
        let p = &mut self.axm.pending[idx];
        p.replies.push(ActionReply {
            process,
            at: now_ms(),
            data: data.clone(),
        });
        p.waiting.retain(|g| *g != gen);
        if p.waiting.is_empty() {
            let p = self.axm.pending.remove(idx);
            let _ = p.reply.send(Ok((p.sent, p.replies)));
        }
    }

    /// The runs for which `gone` holds will not answer: triggers left with
    /// nobody to wait for answer now.
    fn stop_waiting(&mut self, gone: impl Fn(Gen) -> bool) {
        let mut i = 0;
        while i < self.axm.pending.len() {
            let p = &mut self.axm.pending[i];
            p.waiting.retain(|g| !gone(*g));
            if p.waiting.is_empty() || p.reply.is_closed() {
                let p = self.axm.pending.remove(i);
                let _ = p.reply.send(Ok((p.sent, p.replies)));
            } else {
                i += 1;
            }
        }
    }

    /// A trigger's wait is over: it answers with the replies that came.
    pub(crate) fn trigger_due(&mut self, id: u64) {
        if let Some(i) = self.axm.pending.iter().position(|p| p.id == id) {
            let p = self.axm.pending.remove(i);
            if !p.waiting.is_empty() {
                tracing::warn!(
                    "trigger {}: {} process(es) did not reply within {} s",
                    p.action,
                    p.waiting.len(),
                    TRIGGER_WAIT_MS / 1000
                );
            }
            let _ = p.reply.send(Ok((p.sent, p.replies)));
        }
    }
}

#[cfg(test)]
impl Actor {
    /// Triggers waiting for replies.
    pub(crate) fn axm_pending(&self) -> usize {
        self.axm.pending.len()
    }
}

fn offline(id: u32) -> RpcError {
    RpcError::new(ErrorCode::ProcessNotFound, format!("{id} : id offline"))
}
