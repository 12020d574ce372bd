//! Sandbox escapes: a guest gets no file outside its preopens (not by `..`, not through a
//! symlink, not by a host path), and no socket without `-S inherit-network`. Each attempt is
//! checked against a secret it must not see, for components and preview-1 modules alike.

use crate::worldhost;
use std::io::Read;
use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;
use worldhost_test_artifacts as guest;

const SECRET: &str = "the secret outside the preopen\n";

/// A temporary directory with `data/` (to be granted) holding `inside.txt`, and `secret.txt`
/// next to it (not granted), plus symlinks in `data/` that point at the secret.
fn layout() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("inside.txt"), "inside\n").unwrap();
    std::fs::write(tmp.path().join("secret.txt"), SECRET).unwrap();
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink("../secret.txt", data.join("relative-link")).unwrap();
        std::os::unix::fs::symlink(tmp.path().join("secret.txt"), data.join("absolute-link"))
            .unwrap();
    }
    tmp
}

fn grant(tmp: &Path) -> String {
    format!("{}::/data", tmp.join("data").display())
}

#[test]
fn a_file_inside_the_preopen_is_readable() {
    let tmp = layout();
    for module in [guest::READ_FILE, guest::READ_FILE_P1] {
        worldhost()
            .args([
                "run",
                "--dir",
                &grant(tmp.path()),
                module,
                "/data/inside.txt",
            ])
            .run()
            .success()
            .stdout("inside\n");
    }
}

#[test]
fn no_way_out_of_the_preopen() {
    let tmp = layout();
    let host_path = tmp.path().join("secret.txt").display().to_string();
    let escapes = [
        "/data/../secret.txt",
        "/data/../../../../../../etc/passwd",
        "/data/relative-link",
        "/data/absolute-link",
        host_path.as_str(),
        "/etc/passwd",
    ];
    for module in [guest::READ_FILE, guest::READ_FILE_P1] {
        for path in escapes {
            let out = worldhost()
                .args(["run", "--dir", &grant(tmp.path()), module, path])
                .run();
            out.code(1).stdout("");
            assert!(
                out.stderr.contains("cannot read"),
                "{module} {path}: {}",
                out.stderr
            );
        }
    }
}

#[test]
pub(crate) fn connect() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap().to_string();

    // Denied by default, for components and preview-1 modules: nothing reaches the listener.
    for module in [guest::CONNECT, guest::CONNECT_P1] {
        worldhost()
            .args(["run", module, &addr])
            .run()
            .code(1)
            .stdout("")
            .stderr_has("cannot connect");
    }
    assert!(listener.accept().is_err(), "a denied guest got through");

    // Granted with -S inherit-network: the line arrives.
    worldhost()
        .args(["run", "-S", "inherit-network", guest::CONNECT, &addr])
        .run()
        .success()
        .stdout("connected\n");
    listener.set_nonblocking(false).unwrap();
    let (mut stream, _) = listener.accept().unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut line = String::new();
    stream.read_to_string(&mut line).unwrap();
    assert_eq!(line, "hello from the guest\n");
}
