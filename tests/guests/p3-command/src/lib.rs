//! A WASI 0.3 command (`wasi:cli/command@0.3.0`, an `async func run`), built with the wasip3
//! crate. Every word of output goes through 0.3's interfaces: stdout is a stream, the
//! arguments and environment come from 0.3's `wasi:cli/environment`, a file is read as a stream
//! from a 0.3 preopen. What it does is chosen by its first argument:
//!
//! - none: prints "Hello from WASI 0.3!";
//! - `args`: prints each argument on a line of its own, argv[0] first;
//! - `env NAME`: prints `NAME=VALUE`, or `NAME is not set`;
//! - `read PATH`: prints the file at PATH (relative to the first preopen);
//! - `exit N`: exits with status N (`wasi:cli/exit@0.3.0`'s exit-with-code);
//! - `fail`: `run` returns `Err(())`;
//! - `trap`: reaches `unreachable`;
//! - `spin`: computes for ever;
//! - `sleep`: waits for ever on 0.3's monotonic clock.

use wasip3::cli::{environment, exit, stdout};
use wasip3::clocks::monotonic_clock;
use wasip3::filesystem::preopens;
use wasip3::filesystem::types::{DescriptorFlags, OpenFlags, PathFlags};

wasip3::cli::command::export!(P3Command);

struct P3Command;

async fn print(text: String) {
    let (mut tx, rx) = wasip3::wit_stream::new();
    let written = stdout::write_via_stream(rx);
    let rest = tx.write_all(text.into_bytes()).await;
    assert!(rest.is_empty(), "stdout took every byte");
    drop(tx);
    written.await.expect("stdout is writable");
}

async fn read(path: &str) -> Result<Vec<u8>, String> {
    let Some((dir, _)) = preopens::get_directories().into_iter().next() else {
        return Err("no directory is preopened".into());
    };
    let file = dir
        .open_at(
            PathFlags::empty(),
            path.to_string(),
            OpenFlags::empty(),
            DescriptorFlags::READ,
        )
        .await
        .map_err(|e| format!("cannot open {path}: {e:?}"))?;
    let (bytes, done) = file.read_via_stream(0);
    let bytes = bytes.collect().await;
    done.await.map_err(|e| format!("cannot read {path}: {e:?}"))?;
    Ok(bytes)
}

impl wasip3::exports::cli::run::Guest for P3Command {
    async fn run() -> Result<(), ()> {
        let args = environment::get_arguments();
        match args.iter().skip(1).map(String::as_str).collect::<Vec<_>>()[..] {
            [] => print("Hello from WASI 0.3!\n".into()).await,
            ["args", ..] => print(args.iter().map(|a| format!("{a}\n")).collect()).await,
            ["env", name] => {
                let value = environment::get_environment()
                    .into_iter()
                    .find(|(n, _)| n == name);
                print(match value {
                    Some((_, value)) => format!("{name}={value}\n"),
                    None => format!("{name} is not set\n"),
                })
                .await
            }
            ["read", path] => match read(path).await {
                Ok(bytes) => print(String::from_utf8_lossy(&bytes).into_owned()).await,
                Err(why) => {
                    print(format!("{why}\n")).await;
                    return Err(());
                }
            },
            ["exit", code] => exit::exit_with_code(code.parse().expect("a status from 0 to 255")),
            ["fail"] => return Err(()),
            ["trap"] => core::arch::wasm32::unreachable(),
            ["spin"] => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            ["sleep"] => monotonic_clock::wait_for(u64::MAX).await,
            _ => {
                print("unknown request\n".into()).await;
                return Err(());
            }
        }
        Ok(())
    }
}
