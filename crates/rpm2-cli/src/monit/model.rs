//! The dashboard's state: the last process list, each worker's samples
//! and log tail, the selection and the last notice. It changes only
//! through `update` (a list), `log`/`event` (the bus), `apply` (a key,
//! in `input.rs`) and `notice`; drawing reads it.

use std::collections::{BTreeMap, VecDeque};

use rpm2_proto::{Event, ProcessInfo};

use super::history::History;

/// Log lines kept per worker (pm2 keeps 200 in all).
pub const LOG_LINES: usize = 200;

/// Where a log line came from, which decides its colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogKind {
    Out,
    Err,
    /// A lifecycle event from the daemon (`online`, `exit`, …).
    Daemon,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub kind: LogKind,
    pub text: String,
}

/// What the footer says about the last action or a lost daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    Pending(String),
    Done(String),
    Failed(String),
}

/// A worker action the user asked for, sent to the daemon off the UI
/// thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Restart,
    Reload,
    Stop,
}

impl Op {
    /// The verb in notices: "restart", "reload", "stop".
    pub fn verb(self) -> &'static str {
        match self {
            Self::Restart => "restart",
            Self::Reload => "reload",
            Self::Stop => "stop",
        }
    }
}

/// An action on one worker, by id (the row the user selected).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub op: Op,
    pub pm_id: u32,
    pub name: String,
}

#[derive(Debug, Default)]
pub struct App {
    /// Sorted by name, then id (pm2 sorts its dashboard by name).
    pub procs: Vec<ProcessInfo>,
    /// The selected worker's id; it follows the worker when rows move.
    pub selected: Option<u32>,
    pub history: BTreeMap<u32, History>,
    pub logs: BTreeMap<u32, VecDeque<LogLine>>,
    pub notice: Option<Notice>,
    pub quit: bool,
}

impl App {
    /// A new list: one sample per worker; workers gone lose their state.
    /// Returns the ids of workers not seen before, whose log files the
    /// caller may read. An id now held by another worker (a new daemon
    /// reuses ids) counts as new: its old samples and lines are dropped.
    pub fn update(&mut self, mut procs: Vec<ProcessInfo>) -> Vec<u32> {
        procs.sort_by(|a, b| a.name.cmp(&b.name).then(a.pm_id.cmp(&b.pm_id)));
        let old_index = self.selected_index();
        let same = |old: &ProcessInfo| {
            procs
                .iter()
                .any(|p| p.pm_id == old.pm_id && p.pm2_env.unique_id == old.pm2_env.unique_id)
        };
        let kept: Vec<u32> = self
            .procs
            .iter()
            .filter(|p| same(p))
            .map(|p| p.pm_id)
            .collect();
        self.history.retain(|id, _| kept.contains(id));
        self.logs.retain(|id, _| kept.contains(id));
        let mut new = Vec::new();
        for p in &procs {
            if !kept.contains(&p.pm_id) {
                new.push(p.pm_id);
            }
            self.history
                .entry(p.pm_id)
                .or_default()
                .push(p.monit.cpu, p.monit.memory);
        }
        self.procs = procs;
        if self.selected_index().is_none() {
            // The selected worker is gone: keep the row position.
            let at = old_index
                .unwrap_or(0)
                .min(self.procs.len().saturating_sub(1));
            self.selected = self.procs.get(at).map(|p| p.pm_id);
        }
        new
    }

    pub fn selected_index(&self) -> Option<usize> {
        let id = self.selected?;
        self.procs.iter().position(|p| p.pm_id == id)
    }

    pub fn selected_proc(&self) -> Option<&ProcessInfo> {
        self.procs.get(self.selected_index()?)
    }

    /// Lines a worker wrote (a chunk may hold several).
    pub fn log(&mut self, pm_id: u32, kind: LogKind, data: &str) {
        let tail = self.logs.entry(pm_id).or_default();
        for line in data.split('\n').filter(|l| !l.is_empty()) {
            if tail.len() == LOG_LINES {
                tail.pop_front();
            }
            tail.push_back(LogLine {
                kind,
                text: line.trim_end_matches('\r').to_owned(),
            });
        }
    }

    /// A bus event: log lines and lifecycle events go to the worker's
    /// tail; a gap (this reader fell behind) is said in the footer.
    pub fn event(&mut self, event: Event) {
        match event {
            Event::LogOut { process, data, .. } => self.log(process.pm_id, LogKind::Out, &data),
            Event::LogErr { process, data, .. } => self.log(process.pm_id, LogKind::Err, &data),
            Event::ProcessEvent {
                process,
                event,
                manually,
                ..
            } => {
                let by = if manually { " (by a command)" } else { "" };
                self.log(process.pm_id, LogKind::Daemon, &format!("{event}{by}"));
            }
            Event::Dropped { lines, .. } => {
                self.notice = Some(Notice::Failed(format!(
                    "{lines} log lines skipped: monit fell behind"
                )));
            }
            Event::ProcessMsg { .. } => {}
        }
    }

    pub fn log_tail(&self, pm_id: u32) -> impl Iterator<Item = &LogLine> {
        self.logs.get(&pm_id).into_iter().flatten()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::output::fixtures::proc_with;

    /// A worker named `name` with id `id`, online, with these samples.
    pub(crate) fn worker(name: &str, id: u32, cpu: f64, memory: u64) -> ProcessInfo {
        let mut p = proc_with(&format!(r#"{{"name": "{name}", "pm_id": {id}}}"#));
        p.monit.cpu = cpu;
        p.monit.memory = memory;
        p
    }

    #[test]
    fn rows_sort_by_name_and_the_selection_follows_its_worker() {
        let mut app = App::default();
        let new = app.update(vec![worker("web", 0, 1.0, 1), worker("api", 1, 2.0, 2)]);
        assert_eq!(new, [1, 0]);
        let names: Vec<&str> = app.procs.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["api", "web"]);
        assert_eq!(app.selected, Some(1), "the first row is selected");
        app.selected = Some(0);
        let new = app.update(vec![worker("web", 0, 1.0, 1), worker("aaa", 2, 0.0, 0)]);
        assert_eq!(new, [2]);
        assert_eq!(app.selected, Some(0));
        assert_eq!(app.selected_index(), Some(1));
        assert!(!app.history.contains_key(&1), "gone workers lose history");
        // The selected worker is deleted: the same row position stays.
        app.update(vec![worker("aaa", 2, 0.0, 0)]);
        assert_eq!(app.selected, Some(2));
        app.update(Vec::new());
        assert_eq!(app.selected, None);
    }

    #[test]
    fn an_id_taken_by_another_worker_starts_afresh() {
        let mut app = App::default();
        app.update(vec![worker("old", 0, 1.0, 1)]);
        app.log(0, LogKind::Out, "from the old worker\n");
        assert!(app.update(vec![worker("old", 0, 1.0, 1)]).is_empty());
        assert_eq!(app.log_tail(0).count(), 1, "same worker: lines kept");
        // A new daemon (after `rpm2 kill`) gives id 0 to another worker.
        let mut other = worker("new", 0, 1.0, 1);
        other.pm2_env.unique_id = "another".to_owned();
        assert_eq!(app.update(vec![other]), [0]);
        assert_eq!(app.log_tail(0).count(), 0, "its lines are not the old ones");
        assert_eq!(app.selected, Some(0));
    }

    #[test]
    fn log_chunks_split_into_bounded_lines() {
        let mut app = App::default();
        app.log(3, LogKind::Out, "a\nb\r\n\n");
        app.log(3, LogKind::Err, "c");
        let tail: Vec<(LogKind, &str)> =
            app.log_tail(3).map(|l| (l.kind, l.text.as_str())).collect();
        assert_eq!(
            tail,
            [
                (LogKind::Out, "a"),
                (LogKind::Out, "b"),
                (LogKind::Err, "c")
            ]
        );
        for i in 0..(LOG_LINES * 2) {
            app.log(3, LogKind::Out, &format!("line {i}\n"));
        }
        assert_eq!(app.log_tail(3).count(), LOG_LINES);
        let last = app.log_tail(3).last().map(|l| l.text.clone());
        assert_eq!(last.as_deref(), Some("line 399"));
        assert_eq!(app.log_tail(9).count(), 0);
    }
}
