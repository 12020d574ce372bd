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

fn parsed(args: &[&str]) -> Result<Settings> {
    use clap::{Args as _, FromArgMatches as _};
    let cmd = SharedArgs::augment_args(clap::Command::new("t"));
    let argv = std::iter::once("t").chain(args.iter().copied());
    SharedArgs::from_arg_matches(&cmd.try_get_matches_from(argv)?)?.resolve()
}

#[test]
fn wasmtimes_keys_are_parsed_by_wasmtime_cli_flags() {
    let settings = parsed(&[
        "-W",
        "max-memory-size=1_000,timeout=250ms,fuel=5",
        "-W",
        "max-table-elements=7,trap-on-grow-failure=y",
        "-S",
        "inherit-stdout=n,max-resources=1000,hostcall-fuel=9,max-random-size=64",
    ])
    .unwrap();
    let limits = settings.limits;
    assert_eq!(limits.max_memory_size, Some(1000));
    assert_eq!(limits.timeout, Some(std::time::Duration::from_millis(250)));
    assert_eq!((limits.fuel, limits.max_table_elements), (Some(5), Some(7)));
    assert!(limits.trap_on_grow_failure);
    assert_eq!(
        (limits.max_resources, limits.hostcall_fuel),
        (Some(1000), Some(9))
    );
    assert!(!settings.stdio.stdout && settings.stdio.stderr);
    assert_eq!(settings.max_random_size, Some(64));
    let err = parsed(&["-S", "inherit-everything"])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("unknown -S / --wasi option: inherit-everything"),
        "{err}"
    );
}

#[test]
fn keys_that_cannot_apply_say_why() {
    let err = parsed(&["-S", "nn"]).unwrap_err().to_string();
    assert!(
        err.contains("`-S nn` cannot apply: worldhost does not include wasi-nn"),
        "{err}"
    );
    let err = parsed(&["-C", "cache-config=x.toml"])
        .unwrap_err()
        .to_string();
    assert!(err.contains("worldhost keeps its own"), "{err}");
    let err = parsed(&["-S", "config-var=a=b"]).unwrap_err().to_string();
    assert!(err.contains("add `-S config`"), "{err}");
    assert!(!parsed(&["-C", "cache=n"]).unwrap().cache);
    let only = parsed(&["-W", "unknown-imports-default"]).unwrap();
    let err = only.check_for("command", WasmKind::Component).unwrap_err();
    assert!(
        err.to_string().contains("applies to core modules only"),
        "{err}"
    );
    only.check_for("preview1", WasmKind::CoreModule).unwrap();
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
