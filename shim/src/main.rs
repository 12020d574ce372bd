//! `containerd-shim-worldhost-v1`: containerd runs WebAssembly containers through worldhost.
//!
//! runwasi's `containerd-shim-wasm` does containerd's side (the task API, the container's
//! namespaces and cgroups through youki's libcontainer, the image's wasm layers and their
//! precompiled copies in containerd's store). Inside the container, this shim turns what the
//! container is given into a worldhost command line and runs it with [`worldhost::main_from`],
//! so that core loads the component, detects its world and hands it to the handler that
//! serves it, exactly as `worldhost run` would: the shim knows no world of its own.
//!
//! What a container's guest is given (docs/kubernetes.md):
//! - the container's arguments after the component, and its environment (the image's and the
//!   pod spec's) except `WORLDHOST_*`, which is the shim's own;
//! - the container's root, read-only, at `/`; each writable mount of the spec (a volume),
//!   writable, at its path;
//! - `WORLDHOST_FLAGS`: any of `worldhost run`'s flags (`--addr`, `--allow-outgoing`, `-S`,
//!   `-W`…), split as a shell splits words; network and outgoing requests are given only there.
//! - `COMPONENT#CALL` as the entrypoint calls a custom export (`calc.wasm#add(1, 2)`: `--invoke`).

use anyhow::{Context as _, Result, bail};
use containerd_shim_wasm::sandbox::Sandbox;
use containerd_shim_wasm::sandbox::context::{RuntimeContext, Source, WasmLayer};
use containerd_shim_wasm::shim::{Cli as _, Compiler, Shim, Version, version};
use sha2::Digest as _;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use worldhost_core::code::kind::{InMemory, in_memory};

fn main() {
    WorldhostShim::run(None);
}

/// The shim.
struct WorldhostShim;

/// A container's run.
#[derive(Default)]
struct WorldhostSandbox;

/// Compiles an image's wasm layers once, where containerd keeps them.
struct WorldhostCompiler;

/// The prefix of the environment variables that speak to the shim; the guest never sees them.
const OWN_PREFIX: &str = "WORLDHOST_";

impl Shim for WorldhostShim {
    fn name() -> &'static str {
        "worldhost"
    }

    fn version() -> Version {
        version!()
    }

    type Sandbox = WorldhostSandbox;

    #[allow(refining_impl_trait)]
    async fn compiler() -> Option<WorldhostCompiler> {
        Some(WorldhostCompiler)
    }
}

impl Sandbox for WorldhostSandbox {
    async fn run_wasi(&self, ctx: &impl RuntimeContext) -> Result<i32> {
        // What the shim refuses goes to the container's log as worldhost's errors do, with
        // worldhost's status for a usage error (an error returned here would be logged by
        // containerd-shim-wasm only, and exit 137 as if killed).
        let (argv, _layer) = match container_command_line(ctx) {
            Ok(line) => line,
            Err(e) => {
                eprintln!("error: {e:#}");
                return Ok(2);
            }
        };
        // `-S inherit-env` and `--env NAME` in WORLDHOST_FLAGS read the container's
        // environment, never the shim process's own.
        worldhost::use_host_environment(container_environment(ctx.envs()));
        Ok(i32::from(worldhost(argv)?))
    }

    async fn can_handle(&self, _ctx: &impl RuntimeContext) -> Result<()> {
        // Whatever the entrypoint is, worldhost says what it found and what to do about it
        // (in the container's log), rather than containerd's "cannot handle".
        Ok(())
    }
}

impl Compiler for WorldhostCompiler {
    fn cache_key(&self) -> impl std::hash::Hash {
        // The code is valid for this build of the shim only: its version, and the binary
        // itself (its size and time), so that a node's upgraded shim compiles again.
        let exe = std::env::current_exe()
            .and_then(std::fs::metadata)
            .ok()
            .map(|meta| (meta.len(), meta.modified().ok()));
        (env!("CARGO_PKG_VERSION"), exe)
    }

    async fn compile(&self, layers: &[WasmLayer]) -> Result<Vec<Option<Vec<u8>>>> {
        layers.iter().map(|layer| compile(&layer.layer)).collect()
    }
}

/// The worldhost command line of the container `ctx` describes, and the anonymous file that
/// holds its layer (to keep open while it runs).
fn container_command_line(ctx: &impl RuntimeContext) -> Result<(Vec<OsString>, Option<InMemory>)> {
    let entrypoint = ctx.entrypoint();
    let call = Some(entrypoint.func.as_str()).filter(|f| *f != "_start");
    // The guest's argv[0] is the entrypoint's path, for a layer too (not the anonymous
    // file's), and messages name the layer by it.
    let arg0 = ctx.args().first().map(String::as_str).unwrap_or_default();
    let arg0 = arg0.split_once('#').map_or(arg0, |(path, _)| path);
    let arg0 = Some(arg0)
        .filter(|a| !a.is_empty())
        .unwrap_or("component.wasm");
    let (path, precompiled_here, layer) = match &entrypoint.source {
        Source::File(path) => (path.clone(), false, None),
        Source::Oci([layer]) => {
            let copy = in_memory(arg0, &layer.layer).context("cannot hold the image's layer")?;
            (
                copy.path().to_path_buf(),
                !is_image_content(layer),
                Some(copy),
            )
        }
        Source::Oci(layers) => bail!(
            "the image has {} wasm layers; worldhost runs one component per container",
            layers.len()
        ),
    };
    let run = Run {
        component: &path,
        argv0: arg0,
        call,
        precompiled_here,
    };
    let argv = run.command_line(ctx.envs(), ctx.args().iter().skip(1).cloned())?;
    Ok((argv, layer))
}

/// The container's environment as pairs: its `NAME=VALUE` entries but the shim's own
/// (`WORLDHOST_*`).
fn container_environment(envs: &[String]) -> Vec<(String, String)> {
    (envs.iter())
        .filter(|env| !env.starts_with(OWN_PREFIX))
        .filter_map(|env| env.split_once('='))
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

/// Runs worldhost with `argv`, on a thread of its own: worldhost starts its own runtime (a
/// server's), and containerd-shim-wasm calls the shim from inside one of its own, where
/// another cannot be started.
fn worldhost(argv: Vec<OsString>) -> Result<u8> {
    std::thread::spawn(move || exit_status(worldhost::main_from(argv)))
        .join()
        .map_err(|_| anyhow::anyhow!("worldhost stopped with a panic"))
}

/// `worldhost compile`'s artifact of a layer, or `None` for one that is not WebAssembly (an
/// artifact in the image: worldhost refuses to run it unless `WORLDHOST_FLAGS` says
/// `--allow-precompiled`, as it would on the command line).
fn compile(layer: &[u8]) -> Result<Option<Vec<u8>>> {
    if !layer.starts_with(b"\0asm") {
        return Ok(None);
    }
    let dir = tempfile::tempdir().context("cannot make a folder to compile the layer in")?;
    let (input, output) = (
        dir.path().join("layer.wasm"),
        dir.path().join("layer.cwasm"),
    );
    std::fs::write(&input, layer)?;
    let argv = ["compile", "--no-cache", "-o"]
        .into_iter()
        .map(OsString::from)
        .chain([output.clone().into(), input.into()]);
    let argv = std::iter::once(OsString::from("worldhost")).chain(argv);
    let argv: Vec<OsString> = argv.collect();
    let status = worldhost(argv)?;
    if status != 0 {
        bail!(
            "worldhost compile failed on the image's layer (status {status}); it runs from the layer itself"
        );
    }
    Ok(Some(std::fs::read(&output)?))
}

/// What a container runs.
struct Run<'a> {
    /// The component's file, as the container process sees it.
    component: &'a Path,
    /// The guest's argv[0].
    argv0: &'a str,
    /// The custom export to call, from `COMPONENT#CALL`.
    call: Option<&'a str>,
    /// Whether the component is machine code this shim compiled (see `is_image_content`).
    precompiled_here: bool,
}

impl Run<'_> {
    /// The worldhost command line of a container: its grants first, then `WORLDHOST_FLAGS`, the
    /// component, and the container's own arguments.
    fn command_line(
        &self,
        envs: &[String],
        guest_args: impl Iterator<Item = String>,
    ) -> Result<Vec<OsString>> {
        let mut argv: Vec<OsString> = [
            "worldhost",
            "run",
            "--no-cache",
            "--dir",
            "/::/::ro",
            "--argv0",
            self.argv0,
        ]
        .into_iter()
        .map(OsString::from)
        .collect();
        for mount in writable_mounts() {
            argv.push("--dir".into());
            argv.push(format!("{0}::{0}", mount.display()).into());
        }
        let mut flags = String::new();
        for env in envs {
            match env.strip_prefix(OWN_PREFIX) {
                Some(own) => match own.split_once('=') {
                    Some(("FLAGS", value)) => flags = value.to_string(),
                    _ => bail!(
                        "`{env}`: the shim knows {OWN_PREFIX}FLAGS only (worldhost's flags, e.g. \
                     `--addr 0.0.0.0:8080 --allow-outgoing example.com`)"
                    ),
                },
                // `NAME=VALUE` only: a bare `NAME` would be `--env NAME`, the shim process's own
                // value of NAME, which no one gave the container.
                None if env.contains('=') => {
                    argv.push("--env".into());
                    argv.push(env.into());
                }
                None => eprintln!(
                    "worldhost: the container's environment entry `{env}` has no value (`NAME=VALUE`); \
                     it is not passed to the guest"
                ),
            }
        }
        if self.precompiled_here {
            // Machine code this shim compiled and containerd kept (see `is_image_content`).
            argv.push("--allow-precompiled".into());
        }
        if let Some(call) = self.call {
            argv.push("--invoke".into());
            argv.push(call.into());
        }
        let flags = shlex::split(&flags)
            .with_context(|| format!("{OWN_PREFIX}FLAGS=`{flags}` has an unclosed quote"))?;
        let composes = |flag: &String| {
            ["--middleware", "--plug"].iter().any(|f| {
                flag.strip_prefix(f)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('='))
            })
        };
        if self.precompiled_here && flags.iter().any(composes) {
            bail!(
                "`--middleware` and `--plug` compose the component before it is compiled, and \
                 this image's wasm layer was compiled ahead by the shim; put the component in \
                 the image's root file system (with the middleware), or compose it into the \
                 layer (`worldhost compose`)"
            );
        }
        argv.extend(flags.into_iter().map(OsString::from));
        argv.push(self.component.into());
        argv.extend(guest_args.map(OsString::from));
        Ok(argv)
    }
}

/// Whether a layer's bytes are the image's own (their digest is the one the image names):
/// containerd-shim-wasm hands a layer in place of the image's only when this shim compiled it
/// before and containerd kept it, under labels only containerd's clients (root) can set. Only
/// that code runs as precompiled; an image's own artifact is refused as any other file.
fn is_image_content(layer: &WasmLayer) -> bool {
    let digest = layer.config.digest();
    let ours = format!("{:x}", sha2::Sha256::digest(&layer.layer));
    digest.algorithm().to_string() == "sha256" && digest.digest() == ours
}

/// The directories the container's spec mounts writable (volumes), from the mount table the
/// container sees; the kernel's own (`/proc`, `/sys`, `/dev`), the runtime's `/run`, and the
/// volumes an image declares (see [`is_image_volume`]) are not the guest's.
fn writable_mounts() -> Vec<PathBuf> {
    let Ok(table) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    mounts_in(&table)
        .into_iter()
        .filter(|path| path.is_dir())
        .collect()
}

/// The writable mount points of a mountinfo table, but the kernel's, the runtime's and the
/// image's.
fn mounts_in(table: &str) -> Vec<PathBuf> {
    let mut mounts = Vec::new();
    for mount in worldhost_core::preopen::mounts(table) {
        let point = &mount.point;
        let theirs = worldhost_core::preopen::is_kernel_mount(point, &mount.fs_type)
            || point.starts_with("/run");
        if !mount.writable || point == Path::new("/") || theirs {
            continue;
        }
        if is_image_volume(&mount.root) {
            eprintln!(
                "worldhost: `{}` is a volume the image declares (`VOLUME`), not one the pod \
                 spec mounts: it is not granted (mount a volume there in the pod spec to grant it)",
                point.display()
            );
            continue;
        }
        mounts.push(point.clone());
    }
    mounts
}

/// Whether a mount shows, from its file system, a volume that containerd's CRI made for the
/// image's `VOLUME` (`…/io.containerd.grpc.v1.cri/containers/ID/volumes/ID`): an image author
/// declares those, and what the guest may write is for the pod spec to say.
fn is_image_volume(root: &str) -> bool {
    let parts: Vec<&str> = root.trim_end_matches('/').rsplit('/').take(4).collect();
    root.contains("/io.containerd.") && matches!(parts.as_slice(), [_, "volumes", _, "containers"])
}

/// The number behind worldhost's exit status (std's `ExitCode` shows it to no one but the
/// process's exit; it does compare).
fn exit_status(code: ExitCode) -> u8 {
    (0..=u8::MAX)
        .find(|n| ExitCode::from(*n) == code)
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_writable_mounts_of_a_container_are_its_volumes() {
        let table = "\
611 553 0:52 / / ro,relatime - overlay overlay rw,lowerdir=/a
612 611 0:55 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
613 611 0:56 / /dev rw,nosuid - tmpfs tmpfs rw,size=65536k
614 613 0:57 / /dev/shm rw,nosuid,nodev,noexec,relatime - tmpfs shm rw
615 611 0:58 / /run rw - tmpfs tmpfs rw
616 611 8:1 /srv/data /data rw,relatime - ext4 /dev/vda rw
617 611 8:1 /srv/conf /etc/app ro,relatime - ext4 /dev/vda rw
618 611 8:1 /srv/x /my\\040dir rw,relatime - ext4 /dev/vda rw
619 611 8:1 /var/lib/containerd/io.containerd.grpc.v1.cri/containers/4f2/volumes/9ab /cache rw,relatime - ext4 /dev/vda rw
";
        assert_eq!(
            mounts_in(table),
            [PathBuf::from("/data"), PathBuf::from("/my dir")]
        );
    }

    #[test]
    fn the_host_environment_a_guest_may_inherit_is_the_containers() {
        let envs = [
            "A=1".to_string(),
            "BARE".to_string(),
            "WORLDHOST_FLAGS=-S inherit-env".to_string(),
            "B=x=y".to_string(),
        ];
        assert_eq!(
            container_environment(&envs),
            [("A".into(), "1".into()), ("B".into(), "x=y".into())]
        );
    }

    #[test]
    fn an_exit_status_is_read_back() {
        for n in [0, 1, 2, 3, 134, 255] {
            assert_eq!(exit_status(ExitCode::from(n)), n);
        }
    }

    #[test]
    fn the_command_line_gives_what_the_container_was_given_and_nothing_of_the_shims() {
        let envs = [
            "GREETING=hi".to_string(),
            "WORLDHOST_FLAGS=--addr 127.0.0.1:8080 -S 'config-var=a=b c'".to_string(),
        ];
        let run = Run {
            component: Path::new("/app.wasm"),
            argv0: "/app.wasm",
            call: Some("add(1, 2)"),
            precompiled_here: false,
        };
        let argv = run
            .command_line(&envs, ["x".to_string()].into_iter())
            .unwrap();
        let argv: Vec<String> = argv.into_iter().map(|a| a.into_string().unwrap()).collect();
        let at = argv.iter().position(|a| a == "--env").unwrap();
        assert_eq!(argv[at + 1], "GREETING=hi");
        assert!(!argv.iter().any(|a| a.contains("WORLDHOST_")));
        assert!(!argv.contains(&"--allow-precompiled".to_string()));
        let tail = &argv[argv.len() - 8..];
        assert_eq!(
            tail,
            [
                "--invoke",
                "add(1, 2)",
                "--addr",
                "127.0.0.1:8080",
                "-S",
                "config-var=a=b c",
                "/app.wasm",
                "x"
            ]
        );
        // An entry without a value would hand the guest the shim's own variable.
        let bare = ["HOME".to_string(), "A=1".to_string()];
        let argv = run.command_line(&bare, std::iter::empty()).unwrap();
        let envs: Vec<&OsString> = (argv.iter().zip(argv.iter().skip(1)))
            .filter(|(flag, _)| *flag == "--env")
            .map(|(_, value)| value)
            .collect();
        assert_eq!(envs, ["A=1"]);
        let unknown = ["WORLDHOST_ADDR=1".to_string()];
        let err = run.command_line(&unknown, std::iter::empty());
        assert!(err.unwrap_err().to_string().contains("FLAGS only"));
    }
}
