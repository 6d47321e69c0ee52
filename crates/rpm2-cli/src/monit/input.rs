//! Keys: what each does, as pure state changes so they test without a
//! terminal. The footer is drawn from `KEYS`, so it cannot drift.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::model::{App, Notice, Op, Request};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Up,
    Down,
    First,
    Last,
    Run(Op),
    Quit,
}

/// The keys the footer shows, in its order.
pub const KEYS: [(&str, &str); 5] = [
    ("↑↓/jk", "select"),
    ("r", "restart"),
    ("R", "reload"),
    ("s", "stop"),
    ("q", "quit"),
];

/// The action of a key press; `None` for keys without one (and for
/// releases, which some terminals report).
#[must_use]
pub fn action(key: KeyEvent) -> Option<Action> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    if key.modifiers.contains(KeyModifiers::CONTROL) {
        // Raw mode turns Ctrl-C into a key: it quits, as in pm2.
        return matches!(key.code, KeyCode::Char('c')).then_some(Action::Quit);
    }
    Some(match key.code {
        KeyCode::Up | KeyCode::Char('k') => Action::Up,
        KeyCode::Down | KeyCode::Char('j') => Action::Down,
        KeyCode::Home | KeyCode::Char('g') => Action::First,
        KeyCode::End | KeyCode::Char('G') => Action::Last,
        KeyCode::Char('r') => Action::Run(Op::Restart),
        KeyCode::Char('R') => Action::Run(Op::Reload),
        KeyCode::Char('s') => Action::Run(Op::Stop),
        KeyCode::Char('q') | KeyCode::Esc => Action::Quit,
        _ => return None,
    })
}

impl App {
    /// Apply an action; a worker action comes back as the request to send
    /// (the footer says it is under way until its reply).
    pub fn apply(&mut self, action: Action) -> Option<Request> {
        let last = self.procs.len().checked_sub(1);
        let at = self.selected_index();
        let to = match action {
            Action::Quit => {
                self.quit = true;
                return None;
            }
            Action::Run(op) => {
                let p = self.selected_proc()?;
                let request = Request {
                    op,
                    pm_id: p.pm_id,
                    name: p.name.clone(),
                };
                self.notice = Some(Notice::Pending(format!(
                    "{} {} (id {})…",
                    op.verb(),
                    request.name,
                    request.pm_id
                )));
                return Some(request);
            }
            Action::Up => at.map(|i| i.saturating_sub(1)),
            Action::Down => at.map(|i| (i + 1).min(last.unwrap_or(0))),
            Action::First => last.map(|_| 0),
            Action::Last => last,
        };
        if let Some(p) = to.and_then(|i| self.procs.get(i)) {
            self.selected = Some(p.pm_id);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monit::model::tests::worker;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn keys_map_to_actions() {
        assert_eq!(action(key(KeyCode::Down)), Some(Action::Down));
        assert_eq!(action(key(KeyCode::Char('j'))), Some(Action::Down));
        assert_eq!(action(key(KeyCode::Char('k'))), Some(Action::Up));
        assert_eq!(
            action(key(KeyCode::Char('r'))),
            Some(Action::Run(Op::Restart))
        );
        assert_eq!(
            action(key(KeyCode::Char('R'))),
            Some(Action::Run(Op::Reload))
        );
        assert_eq!(action(key(KeyCode::Char('s'))), Some(Action::Run(Op::Stop)));
        assert_eq!(action(key(KeyCode::Esc)), Some(Action::Quit));
        assert_eq!(action(key(KeyCode::Char('q'))), Some(Action::Quit));
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(action(ctrl_c), Some(Action::Quit));
        let ctrl_r = KeyEvent::new(KeyCode::Char('r'), KeyModifiers::CONTROL);
        assert_eq!(action(ctrl_r), None, "Ctrl-R restarts nothing");
        assert_eq!(action(key(KeyCode::Char('x'))), None);
        let mut release = key(KeyCode::Char('r'));
        release.kind = KeyEventKind::Release;
        assert_eq!(action(release), None);
    }

    #[test]
    fn moving_stays_within_the_list() {
        let mut app = App::default();
        assert_eq!(app.apply(Action::Down), None, "an empty list is fine");
        assert_eq!(app.apply(Action::Run(Op::Stop)), None);
        assert_eq!(app.notice, None);
        app.update(vec![
            worker("a", 0, 0.0, 0),
            worker("b", 1, 0.0, 0),
            worker("c", 2, 0.0, 0),
        ]);
        app.apply(Action::Up);
        assert_eq!(app.selected, Some(0));
        app.apply(Action::Down);
        app.apply(Action::Down);
        app.apply(Action::Down);
        assert_eq!(app.selected, Some(2));
        app.apply(Action::First);
        assert_eq!(app.selected, Some(0));
        app.apply(Action::Last);
        assert_eq!(app.selected, Some(2));
        assert!(!app.quit);
        app.apply(Action::Quit);
        assert!(app.quit);
    }

    #[test]
    fn actions_target_the_selected_worker() {
        let mut app = App::default();
        app.update(vec![worker("api", 4, 0.0, 0), worker("web", 7, 0.0, 0)]);
        app.apply(Action::Down);
        let request = app.apply(Action::Run(Op::Reload));
        assert_eq!(
            request,
            Some(Request {
                op: Op::Reload,
                pm_id: 7,
                name: "web".to_owned()
            })
        );
        assert_eq!(
            app.notice,
            Some(Notice::Pending("reload web (id 7)…".to_owned()))
        );
    }
}
