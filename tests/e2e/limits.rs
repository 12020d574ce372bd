//! `-W max-memory-size`, `-W timeout` and `-W fuel` for every handler the command tests do not
//! already cover: each stops the guest (a trap, exit 134; for `serve`, a failed request and the
//! next one served), and a guest within its limits runs as usual.

use crate::server::{Server, get};
use crate::worldhost;
use worldhost_test_artifacts as guest;

#[test]
fn invoke_stops_at_each_limit() {
    for (limit, call, says) in [
        (
            "timeout=300ms",
            "spin()",
            "was stopped after `-W timeout=300ms`",
        ),
        (
            "fuel=5000000",
            "spin()",
            "ran out of fuel (`-W fuel=5000000`)",
        ),
        (
            "max-memory-size=4194304",
            "hog(8)",
            "past `-W max-memory-size=4194304`, and was refused",
        ),
    ] {
        worldhost()
            .args([
                "run",
                "-W",
                limit,
                "--invoke",
                "add(1, 2)",
                "--invoke",
                call,
            ])
            .args([guest::INVOKE_CALC])
            .run()
            .code(134)
            .stdout("3\n")
            .stderr_has(says);
    }
    worldhost()
        .args(["run", "-W", "max-memory-size=4194304", "--invoke", "hog(1)"])
        .args([guest::INVOKE_CALC])
        .run()
        .success()
        .stdout("1048576\n");
}

#[test]
fn preview1_stops_at_fuel_and_memory() {
    worldhost()
        .args(["run", "-W", "fuel=5000000", guest::SPIN_P1])
        .run()
        .code(134)
        .stderr_has("ran out of fuel (`-W fuel=5000000`)");
    worldhost()
        .args(["run", "-W", "max-memory-size=4194304", guest::ALLOC_P1, "8"])
        .run()
        .code(134)
        .stdout("")
        .stderr_has("past `-W max-memory-size=4194304`, and was refused");
    worldhost()
        .args(["run", "-W", "max-memory-size=4194304", guest::ALLOC_P1, "1"])
        .run()
        .success()
        .stdout("holding 1 MiB\n");
}

#[test]
fn serve_runs_each_request_on_its_own_fuel() {
    let mut server = Server::start(&["-W", "fuel=50000000", guest::HTTP_ROUTES]);
    assert_eq!(get(&server.url("/spin")).0, 500);
    server.wait_for("ran out of fuel");
    // A fresh store, with fresh fuel, for every request.
    for _ in 0..3 {
        assert_eq!(get(&server.url("/status/200")).0, 200);
    }
}
