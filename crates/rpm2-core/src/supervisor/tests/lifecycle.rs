//! Start, crash, stop, restart, reload and scale scenarios.

use nix::sys::signal::Signal;
use rpm2_node_ipc::Incoming;
use rpm2_proto::{ErrorCode, WorkerStatus};
use serde_json::json;

use super::harness::*;
use crate::link::fake::Sent;
use crate::supervisor::run::{DrainStep, RunPhase};
use crate::supervisor::worker::WorkerState;
use crate::supervisor::{Call, Msg};

#[tokio::test(start_paused = true)]
async fn a_crash_loop_ends_errored_after_max_restarts() {
    let mut h = Harness::new();
    let mut spec = fork_app("crashy");
    spec.max_restarts = 4;
    let id = h.start(spec).await[0];
    for _ in 0..4 {
        assert_eq!(h.status(id), WorkerStatus::Online);
        let run = h.serving(id);
        h.exit(run, Some(1), None).await;
    }
    assert_eq!(h.state(id), WorkerState::Errored);
    assert_eq!(h.spawns(), 4, "first start and three restarts");
    assert_eq!(h.restarts(id), (3, 3));
}

#[tokio::test(start_paused = true)]
async fn a_stable_run_resets_the_unstable_count() {
    let mut h = Harness::new();
    let id = h.start(fork_app("app")).await[0];
    for _ in 0..3 {
        let run = h.serving(id);
        h.exit(run, Some(1), None).await;
    }
    assert_eq!(h.restarts(id), (3, 3));
    h.advance(5_000).await; // longer than min_uptime
    let run = h.serving(id);
    h.exit(run, Some(1), None).await;
    assert_eq!(h.restarts(id), (4, 0));
    assert_eq!(h.status(id), WorkerStatus::Online);
}

#[tokio::test(start_paused = true)]
async fn stop_during_launch_answers_once_the_process_is_gone() {
    let mut h = Harness::new();
    let mut spec = fork_app("web");
    spec.wait_ready = true; // launching until it says ready
    let id = h.start(spec).await[0];
    let run = h.serving(id);
    assert_eq!(h.status(id), WorkerStatus::Launching);
    let mut stopped = h.stop(id);
    h.settle().await;
    assert_eq!(h.status(id), WorkerStatus::Stopping);
    assert_eq!(h.signals_to(h.pid(run)), vec![Signal::SIGINT]);
    assert!(answered(&mut stopped).is_none());
    // A late `ready` changes nothing, nor does listen_timeout.
    h.says(run, json!("ready")).await;
    h.advance(5_000).await;
    assert_eq!(h.status(id), WorkerStatus::Stopping);
    h.exit(run, None, Some(2)).await;
    assert_eq!(answered(&mut stopped), Some(Ok(())));
    assert_eq!(h.state(id), WorkerState::Stopped);
}

#[tokio::test(start_paused = true)]
async fn restart_while_stopping_starts_again_after_the_exit() {
    let mut h = Harness::new();
    let id = h.start(fork_app("app")).await[0];
    let run = h.serving(id);
    let mut stopped = h.stop(id);
    let mut restarted = h.restart(id);
    h.settle().await;
    assert_eq!(h.spawns(), 1, "nothing new while the old one runs");
    h.exit(run, Some(0), None).await;
    assert_eq!(answered(&mut stopped), Some(Ok(())));
    assert_eq!(answered(&mut restarted), Some(Ok(())), "online again");
    assert_eq!(h.status(id), WorkerStatus::Online);
    assert_ne!(h.serving(id), run);
    assert_eq!(h.restarts(id).0, 1);
}

#[tokio::test(start_paused = true)]
async fn reload_swaps_in_the_successor_once_ready_and_drains_the_old_run() {
    let mut h = Harness::new();
    let (id, old) = ready_cluster_worker(&mut h, cluster_app("web", 1)).await;
    let mut reloaded = h.reload(id);
    h.settle().await;
    let new = h.newest_run();
    assert_eq!(
        h.state(id),
        WorkerState::Reloading {
            run: old,
            successor: new
        }
    );
    assert_eq!(
        h.status(id),
        WorkerStatus::Online,
        "pm2 shows online during a reload"
    );
    h.says(new, json!("ready")).await;
    assert_eq!(h.state(id), WorkerState::Online { run: new });
    // The old run: grace, then `disconnect`, then SIGINT once its channel closes.
    assert!(matches!(
        h.phase(old),
        RunPhase::Draining {
            step: DrainStep::Grace
        }
    ));
    h.advance(100).await;
    assert!(h
        .link(old)
        .sent()
        .iter()
        .any(|s| matches!(s, Sent::Message(m) if m["act"] == "disconnect")));
    h.actor.handle(Msg::Ipc {
        gen: old,
        incoming: Incoming::Closed,
    });
    h.settle().await;
    assert_eq!(h.signals_to(h.pid(old)), vec![Signal::SIGINT]);
    assert!(
        answered(&mut reloaded).is_none(),
        "answers when the old run is gone"
    );
    h.exit(old, Some(0), None).await;
    assert_eq!(answered(&mut reloaded), Some(Ok(())));
    assert_eq!(h.restarts(id).0, 1);
    assert_eq!(h.status(id), WorkerStatus::Online);
}

#[tokio::test(start_paused = true)]
async fn reload_whose_successor_crashes_keeps_the_old_run() {
    let mut h = Harness::new();
    let (id, old) = ready_cluster_worker(&mut h, cluster_app("web", 1)).await;
    let mut reloaded = h.reload(id);
    h.settle().await;
    let new = h.newest_run();
    h.exit(new, Some(1), None).await;
    let err = answered(&mut reloaded).unwrap().unwrap_err();
    assert_eq!(err.code, ErrorCode::ReloadFailed);
    assert_eq!(h.state(id), WorkerState::Online { run: old });
    assert!(
        h.signals_to(h.pid(old)).is_empty(),
        "the old run was not touched"
    );
    assert_eq!(h.restarts(id).0, 0);
}

#[tokio::test(start_paused = true)]
async fn reload_whose_successor_never_says_ready_takes_over_at_listen_timeout() {
    let mut h = Harness::new();
    let mut spec = cluster_app("web", 1);
    spec.listen_timeout_ms = 3000;
    let (id, old) = ready_cluster_worker(&mut h, spec).await;
    let mut reloaded = h.reload(id);
    h.settle().await;
    let new = h.newest_run();
    h.advance(2_900).await;
    assert_eq!(
        h.state(id),
        WorkerState::Reloading {
            run: old,
            successor: new
        },
        "the old run serves until listen_timeout"
    );
    h.advance(100).await;
    assert_eq!(h.state(id), WorkerState::Online { run: new });
    assert!(matches!(h.phase(old), RunPhase::Draining { .. }));
    h.advance(100).await;
    h.exit(old, Some(0), None).await;
    assert_eq!(answered(&mut reloaded), Some(Ok(())));
}

#[tokio::test(start_paused = true)]
async fn scale_up_and_down_during_a_reload() {
    let mut h = Harness::new();
    let ids = h.start(cluster_app("web", 2)).await;
    for &id in &ids {
        let run = h.serving(id);
        h.says(run, json!("ready")).await;
    }
    let mut reloaded = h.reload(ids[1]);
    h.settle().await;
    let successor = h.newest_run();
    // Scale up by one while the reload runs.
    let mut plan = h.call(|reply| Call::Scale {
        name: "web".into(),
        count: rpm2_proto::ScaleCount::Up(1),
        reply,
    });
    let added = plan.try_recv().unwrap().unwrap().add;
    assert_eq!(added.len(), 1);
    let mut started = h.call(|reply| Call::Start {
        pm_id: added[0],
        until_ready: true,
        reply,
    });
    h.settle().await;
    let third = h.serving(added[0]);
    h.says(third, json!("ready")).await;
    assert_eq!(answered(&mut started), Some(Ok(())));
    // Scale down to one: the oldest workers go, as in pm2, the reloading
    // one among them (stop, then remove).
    let mut plan = h.call(|reply| Call::Scale {
        name: "web".into(),
        count: rpm2_proto::ScaleCount::To(1),
        reply,
    });
    let remove = plan.try_recv().unwrap().unwrap().remove;
    assert_eq!(remove, ids);
    let first = h.serving(ids[0]);
    let old = h.serving(ids[1]);
    let mut stops: Vec<Answer> = remove.iter().map(|&id| h.stop(id)).collect();
    h.settle().await;
    let err = answered(&mut reloaded).unwrap().unwrap_err();
    assert_eq!(err.code, ErrorCode::ReloadFailed, "the reload is cut short");
    // Successor and old run are both asked to end; they exit.
    h.advance(100).await;
    for gen in [successor, old, first] {
        if h.actor.table.runs.contains_key(&gen) {
            h.exit(gen, Some(0), None).await;
        }
    }
    for stop in &mut stops {
        assert_eq!(answered(stop), Some(Ok(())));
    }
    for &id in &remove {
        drop(h.call(|reply| Call::Remove { pm_id: id, reply }));
    }
    assert_eq!(h.actor.table.workers_of("web"), added);
    assert_eq!(h.status(added[0]), WorkerStatus::Online);
    assert!(
        h.actor.table.runs.contains_key(&third),
        "the newest keeps running"
    );
}

#[tokio::test(start_paused = true)]
async fn kill_timeout_escalates_to_sigkill() {
    let mut h = Harness::new();
    let mut spec = fork_app("stubborn");
    spec.kill_timeout_ms = 1600;
    let id = h.start(spec).await[0];
    let run = h.serving(id);
    let pid = h.pid(run);
    let mut stopped = h.stop(id);
    h.settle().await;
    assert_eq!(h.signals_to(pid), vec![Signal::SIGINT]);
    h.advance(1_599).await;
    assert_eq!(h.signals_to(pid), vec![Signal::SIGINT]);
    h.advance(1).await;
    assert_eq!(h.signals_to(pid), vec![Signal::SIGINT, Signal::SIGKILL]);
    h.exit(run, None, Some(9)).await;
    assert_eq!(answered(&mut stopped), Some(Ok(())));
    assert_eq!(h.state(id), WorkerState::Stopped);
}

#[tokio::test(start_paused = true)]
async fn delete_during_a_restart_delay_cancels_the_restart() {
    let mut h = Harness::new();
    let mut spec = fork_app("slow");
    spec.restart_delay_ms = 500;
    let id = h.start(spec).await[0];
    let run = h.serving(id);
    h.exit(run, Some(1), None).await;
    assert!(matches!(h.state(id), WorkerState::WaitingRestart { .. }));
    assert_eq!(h.status(id), WorkerStatus::WaitingRestart);
    let mut stopped = h.stop(id);
    assert_eq!(answered(&mut stopped), Some(Ok(())));
    drop(h.call(|reply| Call::Remove { pm_id: id, reply }));
    h.advance(1_000).await;
    assert_eq!(h.spawns(), 1, "no restart after delete");
    assert!(h.actor.table.workers.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_restart_delay_is_waited_for() {
    let mut h = Harness::new();
    let mut spec = fork_app("slow");
    spec.restart_delay_ms = 500;
    let id = h.start(spec).await[0];
    let run = h.serving(id);
    h.exit(run, Some(1), None).await;
    h.advance(499).await;
    assert_eq!(h.spawns(), 1);
    h.advance(1).await;
    assert_eq!(h.spawns(), 2);
    assert_eq!(h.status(id), WorkerStatus::Online);
}

#[tokio::test(start_paused = true)]
async fn stop_exit_codes_stop_the_worker() {
    let mut h = Harness::new();
    let mut spec = fork_app("job");
    spec.stop_exit_codes = vec![0];
    let id = h.start(spec).await[0];
    let run = h.serving(id);
    h.exit(run, Some(0), None).await;
    assert_eq!(h.state(id), WorkerState::Stopped);
    assert_eq!(h.spawns(), 1);
    // Another code still restarts.
    drop(h.call(|reply| Call::Start {
        pm_id: id,
        until_ready: false,
        reply,
    }));
    h.settle().await;
    let run = h.serving(id);
    h.exit(run, Some(3), None).await;
    assert_eq!(h.status(id), WorkerStatus::Online);
    assert_eq!(h.spawns(), 3);
}

#[tokio::test(start_paused = true)]
async fn autorestart_false_leaves_a_crashed_worker_stopped() {
    let mut h = Harness::new();
    let mut spec = fork_app("once");
    spec.autorestart = false;
    let id = h.start(spec).await[0];
    let run = h.serving(id);
    h.exit(run, Some(1), None).await;
    assert_eq!(h.state(id), WorkerState::Stopped);
    assert_eq!(h.spawns(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_spawn_failure_errors_the_worker_and_answers_the_caller() {
    let mut h = Harness::new();
    h.os.lock().unwrap().refuse_spawns = true;
    let mut reg = h.call(|reply| Call::Register {
        apps: vec![fork_app("missing")],
        only_new: false,
        force: false,
        stopped: Vec::new(),
        reply,
    });
    let id = reg.try_recv().unwrap().unwrap().new_ids[0];
    let mut started = h.call(|reply| Call::Start {
        pm_id: id,
        until_ready: false,
        reply,
    });
    let err = answered(&mut started).unwrap().unwrap_err();
    assert_eq!(err.code, ErrorCode::SpawnFailed);
    assert_eq!(h.state(id), WorkerState::Errored);
}

#[tokio::test(start_paused = true)]
async fn a_worker_that_leaves_on_purpose_is_not_restarted() {
    let mut h = Harness::new();
    let (id, run) = ready_cluster_worker(&mut h, cluster_app("web", 1)).await;
    h.says(
        run,
        json!({"cmd": "NODE_CLUSTER", "act": "exitedAfterDisconnect", "seq": 4}),
    )
    .await;
    assert!(h
        .link(run)
        .sent()
        .iter()
        .any(|s| matches!(s, Sent::Message(m) if m["ack"] == 4)));
    h.exit(run, Some(0), None).await;
    assert_eq!(h.state(id), WorkerState::Stopped);
    assert_eq!(h.spawns(), 1);
}

#[tokio::test(start_paused = true)]
async fn pid_files_follow_the_serving_run() {
    let mut h = Harness::new();
    let (id, old) = ready_cluster_worker(&mut h, cluster_app("web", 1)).await;
    let old_pid = h.pid(old);
    drop(h.reload(id));
    h.settle().await;
    let new = h.newest_run();
    let new_pid = h.pid(new);
    let writes = |h: &Harness| -> Vec<u32> {
        h.os.lock()
            .unwrap()
            .calls
            .iter()
            .filter_map(|c| match c {
                OsCall::WritePid { pid } => Some(*pid),
                _ => None,
            })
            .collect()
    };
    assert_eq!(
        writes(&h),
        vec![old_pid],
        "a successor's pid is written on takeover"
    );
    h.says(new, json!("ready")).await;
    assert_eq!(writes(&h), vec![old_pid, new_pid]);
}

#[tokio::test(start_paused = true)]
async fn a_successor_gets_connections_only_once_it_takes_over() {
    let mut h = Harness::new();
    let mut spec = cluster_app("web", 1);
    spec.wait_ready = false; // cluster `online`, then `listening`
    let id = h.start(spec).await[0];
    let old = h.serving(id);
    let online = json!({"cmd": "NODE_CLUSTER", "act": "online", "seq": 0});
    let listening = json!({"cmd": "NODE_CLUSTER", "act": "listening", "seq": 1,
        "address": null, "port": 8000, "addressType": 4});
    h.says(old, online.clone()).await;
    assert!(h.actor.primary.is_eligible(old));
    h.says(old, listening.clone()).await;
    drop(h.reload(id));
    h.settle().await;
    let new = h.newest_run();
    h.says(new, online).await;
    assert_eq!(h.phase(new), RunPhase::Online);
    assert!(
        !h.actor.primary.is_eligible(new),
        "not before it takes over"
    );
    assert!(h.actor.primary.is_eligible(old));
    h.says(new, listening).await;
    assert!(h.actor.primary.is_eligible(new));
    assert!(!h.actor.primary.is_eligible(old), "the old run is drained");
}
