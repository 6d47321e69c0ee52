//! The file registry: shared writers, rotation, flush, ordering.

use std::path::Path;

use rpm2_logs::LogRegistry;

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).expect("read log file")
}

#[tokio::test]
async fn writer_creates_parent_dirs_and_appends() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/c.log");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, "old\n").unwrap();
    let reg = LogRegistry::new();
    let w = reg.writer(&path).unwrap();
    w.write(b"new\n".to_vec());
    w.write(Vec::new());
    reg.sync().await;
    assert_eq!(read(&path), "old\nnew\n");
    let fresh = dir.path().join("x/y/z.log");
    reg.writer(&fresh).unwrap().write(b"1\n".to_vec());
    reg.sync().await;
    assert_eq!(read(&fresh), "1\n");
}

#[tokio::test]
async fn reopen_after_rename_writes_to_the_new_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app-out.log");
    let rotated = dir.path().join("app-out.log.1");
    let reg = LogRegistry::new();
    let w = reg.writer(&path).unwrap();
    w.write(b"before\n".to_vec());
    reg.sync().await;
    std::fs::rename(&path, &rotated).unwrap();
    // Without reopen, writes follow the renamed file (like pm2).
    w.write(b"still old\n".to_vec());
    reg.reopen_all().await.unwrap();
    w.write(b"after\n".to_vec());
    reg.sync().await;
    assert_eq!(read(&rotated), "before\nstill old\n");
    assert_eq!(read(&path), "after\n");
}

#[tokio::test]
async fn reopen_recreates_a_deleted_directory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("logs/app.log");
    let reg = LogRegistry::new();
    let w = reg.writer(&path).unwrap();
    std::fs::remove_dir_all(dir.path().join("logs")).unwrap();
    reg.reopen_all().await.unwrap();
    w.write(b"x\n".to_vec());
    reg.sync().await;
    assert_eq!(read(&path), "x\n");
}

#[tokio::test]
async fn truncate_with_an_open_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.log");
    let reg = LogRegistry::new();
    let w = reg.writer(&path).unwrap();
    w.write(b"one\ntwo\n".to_vec());
    reg.truncate(&path).await.unwrap();
    w.write(b"three\n".to_vec());
    reg.sync().await;
    // O_APPEND: the next write lands at the new end, with no hole.
    assert_eq!(read(&path), "three\n");
}

#[tokio::test]
async fn truncate_without_a_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("closed.log");
    std::fs::write(&path, "data\n").unwrap();
    let reg = LogRegistry::new();
    reg.truncate(&path).await.unwrap();
    assert_eq!(read(&path), "");
    let missing = dir.path().join("nope/missing.log");
    reg.truncate(&missing).await.unwrap();
    assert!(!missing.exists());
}

#[tokio::test]
async fn dropped_writer_drains_before_a_new_one_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.log");
    let reg = LogRegistry::new();
    let w = reg.writer(&path).unwrap();
    let mut expected = String::new();
    for i in 0..10_000 {
        let line = format!("old {i}\n");
        expected.push_str(&line);
        w.write(line.into_bytes());
    }
    drop(w);
    // A restarted worker gets a writer while the old task may still drain.
    let w2 = reg.writer(&path).unwrap();
    w2.write(b"new\n".to_vec());
    expected.push_str("new\n");
    reg.sync().await;
    assert_eq!(read(&path), expected);
    drop(w2);
    // sync also waits for tasks whose writers are all gone.
    let w3 = reg.writer(&path).unwrap();
    w3.write(b"last\n".to_vec());
    drop(w3);
    reg.sync().await;
    assert!(read(&path).ends_with("new\nlast\n"));
}

#[tokio::test]
async fn clones_share_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("o.log");
    let reg = LogRegistry::new();
    let a = reg.writer(&path).unwrap();
    let b = a.clone();
    let c = reg.clone().writer(&path).unwrap();
    a.write(b"1\n".to_vec());
    b.write(b"2\n".to_vec());
    c.write(b"3\n".to_vec());
    reg.sync().await;
    assert_eq!(read(&path), "1\n2\n3\n");
}

#[tokio::test]
async fn a_symlink_at_a_log_path_is_refused_and_its_target_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("victim.txt");
    std::fs::write(&target, "precious\n").unwrap();
    let link = dir.path().join("logs/app-out.log");
    std::fs::create_dir_all(link.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let reg = LogRegistry::new();
    let Err(err) = reg.writer(&link) else {
        panic!("a symlink must be refused");
    };
    let text = err.to_string();
    assert!(
        text.contains("symbolic link") && text.contains("app-out.log"),
        "{text}"
    );
    assert!(
        reg.truncate(&link).await.is_err(),
        "flush must refuse it too"
    );
    assert_eq!(read(&target), "precious\n");
}

#[tokio::test]
async fn new_log_files_are_created_0640() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.log");
    let reg = LogRegistry::new();
    let w = reg.writer(&path).unwrap();
    w.write(b"x\n".to_vec());
    reg.sync().await;
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode & !0o640, 0, "mode {mode:o} is wider than 0640");
}

#[test]
fn pid_files_do_not_follow_symlinks() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("victim");
    std::fs::write(&target, "keep").unwrap();
    let link = dir.path().join("app-0.pid");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    assert!(rpm2_logs::safe_open::write_file(&link, b"123").is_err());
    assert_eq!(read(&target), "keep");
}

#[tokio::test]
async fn a_deleted_log_folder_is_created_again_at_a_later_write() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    let path = logs.join("app-out.log");
    let reg = LogRegistry::new();
    let w = reg.writer(&path).unwrap();
    w.write(b"before\n".to_vec());
    reg.sync().await;
    std::fs::remove_dir_all(&logs).unwrap();
    // Lines keep coming; within a check interval the file is back.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut n = 0;
    while !path.exists() {
        assert!(std::time::Instant::now() < deadline, "not recreated");
        n += 1;
        w.write(format!("line {n}\n").into_bytes());
        reg.sync().await;
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    w.write(b"after\n".to_vec());
    reg.sync().await;
    assert!(read(&path).ends_with("after\n"));
}
