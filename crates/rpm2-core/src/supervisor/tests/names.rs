//! Two apps of one name (`start -f`, a dump that holds both), renames,
//! and `all` with no worker: what the table answers.

use rpm2_proto::{ErrorCode, SpecUpdate, Target};

use super::harness::{fork_app, Harness};
use crate::supervisor::{Call, Registered};

fn register(
    h: &mut Harness,
    apps: Vec<rpm2_proto::AppSpec>,
    force: bool,
    only_new: bool,
) -> Registered {
    let mut rx = h.call(|reply| Call::Register {
        apps,
        only_new,
        force,
        stopped: Vec::new(),
        reply,
    });
    rx.try_recv().unwrap().unwrap()
}

fn resolve(h: &mut Harness, targets: Vec<Target>) -> Result<Vec<u32>, rpm2_proto::RpcError> {
    let mut rx = h.call(|reply| Call::Resolve { targets, reply });
    rx.try_recv().unwrap()
}

#[tokio::test(start_paused = true)]
async fn force_adds_a_second_app_of_one_name() {
    let mut h = Harness::new();
    let first = register(&mut h, vec![fork_app("echo")], false, false);
    assert_eq!(first.new_ids, [0]);
    // Without force a known name is the same app (restarted with its spec).
    let again = register(&mut h, vec![fork_app("echo")], false, false);
    assert!(again.new_ids.is_empty());
    assert_eq!(again.existing_ids, [0]);
    // With force: a second app beside it, with its own worker.
    let beside = register(&mut h, vec![fork_app("echo")], true, false);
    assert_eq!(beside.new_ids, [1]);
    assert!(beside.existing_ids.is_empty());
    assert_eq!(h.actor.table.apps.len(), 2);
    assert_eq!(
        resolve(&mut h, vec![Target::Name("echo".into())]).unwrap(),
        [0, 1]
    );
    let names: Vec<String> = h.actor.infos(None).into_iter().map(|p| p.name).collect();
    assert_eq!(names, ["echo", "echo"]);
}

#[tokio::test(start_paused = true)]
async fn a_dump_with_two_apps_of_one_name_brings_both_back_once() {
    let mut h = Harness::new();
    let dump = vec![fork_app("echo"), fork_app("echo")];
    let reg = register(&mut h, dump.clone(), false, true);
    assert_eq!(reg.new_ids, [0, 1]);
    // Resurrect again (only_new): both run, nothing is added.
    let reg = register(&mut h, dump, false, true);
    assert!(reg.new_ids.is_empty() && reg.existing_ids.is_empty());
    assert_eq!(h.actor.table.apps.len(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_renamed_app_is_found_by_its_new_name_only() {
    let mut h = Harness::new();
    register(&mut h, vec![fork_app("old")], false, false);
    let mut rx = h.call(|reply| Call::Update {
        ids: vec![0],
        update: SpecUpdate {
            name: Some("new".into()),
            interpreter_args: Some(vec!["--no-warnings".into()]),
        },
        reply,
    });
    rx.try_recv().unwrap().unwrap();
    assert_eq!(
        resolve(&mut h, vec![Target::Name("new".into())]).unwrap(),
        [0]
    );
    let err = resolve(&mut h, vec![Target::Name("old".into())]).unwrap_err();
    assert_eq!(err.code, ErrorCode::ProcessNotFound);
    // A start of "new" is that app; a start of "old" is another app.
    let reg = register(&mut h, vec![fork_app("new")], false, false);
    assert_eq!(reg.existing_ids, [0]);
    let reg = register(&mut h, vec![fork_app("old")], false, false);
    assert_eq!(reg.new_ids, [1]);
    assert_eq!(h.actor.table.apps.len(), 2);
}

#[tokio::test(start_paused = true)]
async fn all_with_no_worker_is_not_found() {
    let mut h = Harness::new();
    let err = resolve(&mut h, vec![Target::All]).unwrap_err();
    assert_eq!(err.code, ErrorCode::ProcessNotFound);
    assert_eq!(err.message, "No process found");
    register(&mut h, vec![fork_app("a")], false, false);
    assert_eq!(resolve(&mut h, vec![Target::All]).unwrap(), [0]);
}
