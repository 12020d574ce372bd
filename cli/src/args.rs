//! The shared flags as the command line spells them, as wasmtime's CLI does: `--dir`, `--env`,
//! `-S` (WASI), `-W` (wasm limits); checked against the host and resolved into core's
//! [`Settings`] before anything is compiled. The default grants the guest nothing.

use anyhow::{Result, bail};
use std::time::Duration;
use worldhost_core::Settings;
use worldhost_core::settings::{DirGrant, parse_duration};

/// The shared flags, as clap parses them; [`SharedArgs::resolve`] checks them against the host.
#[derive(clap::Args, Debug, Clone, Default)]
#[command(next_help_heading = "Capabilities and limits (shared by every handler)")]
pub struct SharedArgs {
    /// Grant the guest a host directory: `HOST[::GUEST][::ro]`
    ///
    /// The directory HOST appears in the guest as GUEST (default: the same path). It is
    /// read-write unless `::ro` is added (`--dir data::/data::ro`), which wasmtime has no
    /// form for. May be repeated.
    #[arg(long = "dir", value_name = "HOST[::GUEST][::ro]", value_parser = parse_dir)]
    pub dirs: Vec<DirGrant>,

    /// Give the guest an environment variable: `NAME=VAL`, or `NAME` for the host's value
    ///
    /// A bare NAME that the host does not set is skipped, as in wasmtime. May be repeated.
    #[arg(long = "env", value_name = "NAME[=VAL]", value_parser = parse_env)]
    pub envs: Vec<EnvGrant>,

    /// WASI options: `-S inherit-env`, `-S inherit-network`, `-S allow-ip-name-lookup`, …
    ///
    /// Comma-separated `KEY[=y|n]`, as in wasmtime: inherit-env (every host variable),
    /// inherit-network (any address for sockets), allow-ip-name-lookup (DNS), tcp, udp (both on
    /// by default, yet useless without inherit-network), cli (accepted for wasmtime
    /// compatibility; worldhost always links the CLI interfaces). May be repeated.
    #[arg(short = 'S', value_name = "KEY[=VAL]", value_parser = parse_wasi_options)]
    pub wasi: Vec<Vec<WasiOption>>,

    /// Wasm limits: `-W max-memory-size=BYTES`, `-W timeout=DURATION`, `-W fuel=N`, …
    ///
    /// Comma-separated `KEY=VAL`, as in wasmtime: max-memory-size (bytes a linear memory may
    /// grow to), timeout (`500ms`, `2s`, `1m`; a bare number is seconds; running past it traps),
    /// fuel (units of work before the guest traps), unknown-imports-trap (imports nothing
    /// provides become functions that trap when called). May be repeated.
    #[arg(short = 'W', value_name = "KEY=VAL", value_parser = parse_wasm_options)]
    pub wasm: Vec<Vec<WasmOption>>,

    /// The guest's argv[0] (default: the file name of the component, without its directories)
    #[arg(long, value_name = "NAME")]
    pub argv0: Option<String>,

    /// Do not use the compilation cache (on by default, as in wasmtime)
    #[arg(long)]
    pub no_cache: bool,

    /// Run a precompiled artifact (`worldhost compile`, `wasmtime compile`): machine code
    ///
    /// An artifact is native code that runs unchecked, with worldhost's own rights, as a
    /// native program would; without this flag a file that holds one is refused, whatever its
    /// name (as in wasmtime). Give it only for artifacts you made or trust.
    #[arg(long)]
    pub allow_precompiled: bool,
}

/// An `--env` grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvGrant {
    /// `NAME=VAL`
    Set(String, String),
    /// `NAME`: the host's value, if it has one.
    Inherit(String),
}

/// One `-S` option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WasiOption {
    /// `inherit-env`
    InheritEnv(bool),
    /// `inherit-network`
    InheritNetwork(bool),
    /// `allow-ip-name-lookup`
    AllowIpNameLookup(bool),
    /// `tcp`
    Tcp(bool),
    /// `udp`
    Udp(bool),
    /// `cli`
    Cli(bool),
}

/// One `-W` option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WasmOption {
    /// `max-memory-size=BYTES`
    MaxMemorySize(usize),
    /// `timeout=DURATION`
    Timeout(Duration),
    /// `fuel=N`
    Fuel(u64),
    /// `unknown-imports-trap[=y|n]`
    UnknownImportsTrap(bool),
}

impl SharedArgs {
    /// Checks the flags against the host (directories exist, inherited variables are read) and
    /// resolves them into [`Settings`]. Runs before anything is compiled.
    pub fn resolve(&self) -> Result<Settings> {
        let mut settings = Settings {
            tcp: true,
            udp: true,
            cache: !self.no_cache,
            allow_precompiled: self.allow_precompiled,
            argv0: self.argv0.clone(),
            ..Settings::default()
        };
        let mut inherit_env = false;
        for option in self.wasi.iter().flatten() {
            match *option {
                WasiOption::InheritEnv(on) => inherit_env = on,
                WasiOption::InheritNetwork(on) => settings.inherit_network = on,
                WasiOption::AllowIpNameLookup(on) => settings.allow_ip_name_lookup = on,
                WasiOption::Tcp(on) => settings.tcp = on,
                WasiOption::Udp(on) => settings.udp = on,
                WasiOption::Cli(_) => {}
            }
        }
        for option in self.wasm.iter().flatten() {
            match *option {
                WasmOption::MaxMemorySize(n) => settings.limits.max_memory_size = Some(n),
                WasmOption::Timeout(d) => settings.limits.timeout = Some(d),
                WasmOption::Fuel(n) => settings.limits.fuel = Some(n),
                WasmOption::UnknownImportsTrap(on) => settings.unknown_imports_trap = on,
            }
        }
        if inherit_env {
            settings.env.extend(std::env::vars());
        }
        for grant in &self.envs {
            match grant {
                EnvGrant::Set(name, value) => set_env(&mut settings.env, name, value),
                EnvGrant::Inherit(name) => {
                    if let Ok(value) = std::env::var(name) {
                        set_env(&mut settings.env, name, &value);
                    }
                }
            }
        }
        for dir in &self.dirs {
            check_dir(dir)?;
        }
        settings.dirs = self.dirs.clone();
        Ok(settings)
    }
}

fn set_env(env: &mut Vec<(String, String)>, name: &str, value: &str) {
    env.retain(|(n, _)| n != name);
    env.push((name.into(), value.into()));
}

fn check_dir(dir: &DirGrant) -> Result<()> {
    let host = dir.host.display();
    match std::fs::metadata(&dir.host) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => bail!(
            "`--dir {host}`: `{host}` is a file, not a directory; grant the directory that holds \
             it instead"
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "`--dir {host}`: the host directory `{host}` does not exist; create it or correct \
             the path"
        ),
        Err(e) => bail!("`--dir {host}`: cannot open the host directory `{host}`: {e}"),
    }
}

/// Parses `HOST[::GUEST][::ro]`.
pub fn parse_dir(value: &str) -> Result<DirGrant, String> {
    let mut parts: Vec<&str> = value.split("::").collect();
    let read_only = match parts.last() {
        Some(&"ro") if parts.len() > 1 => {
            parts.pop();
            true
        }
        Some(&"rw") if parts.len() > 1 => {
            parts.pop();
            false
        }
        _ => false,
    };
    let (host, guest) = match parts.as_slice() {
        [host] => (*host, *host),
        [host, guest] => (*host, *guest),
        _ => {
            return Err(format!(
                "`{value}` is not `HOST[::GUEST][::ro]` (too many `::`)"
            ));
        }
    };
    if host.is_empty() || guest.is_empty() {
        return Err(format!(
            "`{value}` names an empty directory; write `HOST[::GUEST][::ro]`, e.g. `./data::/data`"
        ));
    }
    Ok(DirGrant {
        host: host.into(),
        guest: guest.into(),
        read_only,
    })
}

/// Parses `NAME[=VAL]`.
pub fn parse_env(value: &str) -> Result<EnvGrant, String> {
    let grant = match value.split_once('=') {
        Some((name, value)) => EnvGrant::Set(name.into(), value.into()),
        None => EnvGrant::Inherit(value.into()),
    };
    match &grant {
        EnvGrant::Set(name, _) | EnvGrant::Inherit(name) if name.is_empty() => Err(format!(
            "`{value}` has no variable name; write `NAME=VAL` or `NAME`"
        )),
        _ => Ok(grant),
    }
}

const WASI_KEYS: &str = "inherit-env, inherit-network, allow-ip-name-lookup, tcp, udp, cli";
const WASM_KEYS: &str = "max-memory-size, timeout, fuel, unknown-imports-trap";

fn parse_wasi_options(value: &str) -> Result<Vec<WasiOption>, String> {
    split_options(value)
        .map(|(key, val)| {
            let on = parse_bool(key, val)?;
            Ok(match key {
                "inherit-env" => WasiOption::InheritEnv(on),
                "inherit-network" => WasiOption::InheritNetwork(on),
                "allow-ip-name-lookup" => WasiOption::AllowIpNameLookup(on),
                "tcp" => WasiOption::Tcp(on),
                "udp" => WasiOption::Udp(on),
                "cli" => WasiOption::Cli(on),
                _ => return Err(format!("unknown -S option `{key}`; known: {WASI_KEYS}")),
            })
        })
        .collect()
}

fn parse_wasm_options(value: &str) -> Result<Vec<WasmOption>, String> {
    split_options(value)
        .map(|(key, val)| {
            if key == "unknown-imports-trap" {
                return Ok(WasmOption::UnknownImportsTrap(parse_bool(key, val)?));
            }
            let val = val.ok_or_else(|| format!("-W {key} needs a value: `-W {key}=VALUE`"))?;
            Ok(match key {
                "max-memory-size" => WasmOption::MaxMemorySize(parse_number(key, val)?),
                "timeout" => WasmOption::Timeout(parse_duration(val)?),
                "fuel" => WasmOption::Fuel(parse_number(key, val)?),
                _ => return Err(format!("unknown -W option `{key}`; known: {WASM_KEYS}")),
            })
        })
        .collect()
}

fn split_options(value: &str) -> impl Iterator<Item = (&str, Option<&str>)> {
    value.split(',').map(|opt| match opt.split_once('=') {
        Some((key, val)) => (key.trim(), Some(val.trim())),
        None => (opt.trim(), None),
    })
}

fn parse_bool(key: &str, val: Option<&str>) -> Result<bool, String> {
    match val {
        None | Some("y" | "yes" | "true") => Ok(true),
        Some("n" | "no" | "false") => Ok(false),
        Some(other) => Err(format!("{key}={other}: expected y or n")),
    }
}

fn parse_number<T: std::str::FromStr>(key: &str, val: &str) -> Result<T, String> {
    // Underscores are allowed as digit separators: `-W max-memory-size=10_000_000`.
    val.replace('_', "")
        .parse()
        .map_err(|_| format!("-W {key}={val}: expected a whole number"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dir_forms_parse() {
        let d = parse_dir("data").unwrap();
        assert_eq!(
            (d.host.to_str(), d.guest.as_str(), d.read_only),
            (Some("data"), "data", false)
        );
        let d = parse_dir("./data::/data").unwrap();
        assert_eq!((d.guest.as_str(), d.read_only), ("/data", false));
        let d = parse_dir("./data::/data::ro").unwrap();
        assert_eq!((d.guest.as_str(), d.read_only), ("/data", true));
        assert!(parse_dir("a::b::c::d").is_err());
        assert!(parse_dir("::/x").is_err());
    }

    #[test]
    fn env_forms_parse() {
        assert_eq!(
            parse_env("A=1").unwrap(),
            EnvGrant::Set("A".into(), "1".into())
        );
        assert_eq!(
            parse_env("A=").unwrap(),
            EnvGrant::Set("A".into(), "".into())
        );
        assert_eq!(parse_env("A").unwrap(), EnvGrant::Inherit("A".into()));
        assert!(parse_env("=1").is_err());
    }

    #[test]
    fn wasi_options_are_comma_separated_with_optional_bools() {
        let opts = parse_wasi_options("inherit-env,tcp=n").unwrap();
        assert_eq!(opts, [WasiOption::InheritEnv(true), WasiOption::Tcp(false)]);
        let err = parse_wasi_options("inherit-everything").unwrap_err();
        assert!(err.contains("known: inherit-env"), "{err}");
    }

    #[test]
    fn wasm_options_take_values() {
        let opts = parse_wasm_options("max-memory-size=1_000,timeout=250ms,fuel=5").unwrap();
        assert_eq!(
            opts,
            [
                WasmOption::MaxMemorySize(1000),
                WasmOption::Timeout(Duration::from_millis(250)),
                WasmOption::Fuel(5)
            ]
        );
        assert!(parse_wasm_options("timeout").is_err());
        assert!(parse_wasm_options("timeout=soon").is_err());
    }

    #[test]
    fn later_env_grants_override_inherited_ones() {
        let args = SharedArgs {
            envs: vec![
                EnvGrant::Set("A".into(), "1".into()),
                EnvGrant::Set("A".into(), "2".into()),
            ],
            ..SharedArgs::default()
        };
        assert_eq!(
            args.resolve().unwrap().env,
            [("A".to_string(), "2".to_string())]
        );
    }

    #[test]
    fn missing_dir_is_named() {
        let args = SharedArgs {
            dirs: vec![parse_dir("/no/such/dir::/d").unwrap()],
            ..SharedArgs::default()
        };
        let err = args.resolve().unwrap_err().to_string();
        assert!(err.contains("`/no/such/dir` does not exist"), "{err}");
    }

    #[test]
    fn nothing_is_granted_by_default() {
        let settings = SharedArgs::default().resolve().unwrap();
        assert!(settings.dirs.is_empty() && settings.env.is_empty());
        assert!(!settings.inherit_network && !settings.allow_ip_name_lookup);
    }
}
