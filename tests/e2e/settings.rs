//! The shared settings as a guest sees them: environment grants and `-S inherit-env`.

use crate::worldhost;
use worldhost_test_artifacts as guest;

#[test]
fn env_set_and_inherited_by_name() {
    worldhost()
        .args(["run", "--env", "GREETING=hi there", "--env", "WH_FROM_HOST"])
        .args(["--env", "WH_UNSET_ON_HOST", guest::PRINT_ENV])
        .env("WH_FROM_HOST", "host value")
        .env("WH_NOT_GRANTED", "secret")
        .run()
        .success()
        .stdout("GREETING=hi there\nWH_FROM_HOST=host value\n");
}

#[test]
fn inherit_env_gives_everything() {
    let out = worldhost()
        .args(["run", "-S", "inherit-env", guest::PRINT_ENV])
        .env("WH_FROM_HOST", "host value")
        .run();
    out.success().stdout_has("WH_FROM_HOST=host value\n");
}

#[test]
fn dir_without_guest_path_keeps_the_host_path() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f.txt"), "same path\n").unwrap();
    let host = dir.path().to_str().unwrap();
    let file = format!("{host}/f.txt");
    worldhost()
        .args(["run", "--dir", host, guest::READ_FILE, &file])
        .run()
        .success()
        .stdout("same path\n");
}
