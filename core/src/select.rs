//! Selection: every registered handler claims the component (or says why not); the strongest
//! claim wins, `--handler NAME` overrides. Ties and no claim at all are errors that say what the
//! component exports and what each handler looks for. Names no handler.

use crate::handler::{Asked, Claim, Handler, handlers};
use crate::world::World;
use anyhow::{Result, bail};

/// How many exports a message names; `inspect` shows them all.
const EXPORTS_SHOWN: usize = 6;

/// The handler chosen for a component, and why.
pub struct Choice {
    /// The handler.
    pub handler: &'static dyn Handler,
    /// Why: "claims it (strength 50)" or "named by `--handler`".
    pub reason: String,
}

/// Every handler's claim on `world`, in name order.
pub fn claims(world: &World, asked: &Asked<'_>) -> Vec<(&'static dyn Handler, Claim)> {
    handlers()
        .into_iter()
        .map(|h| (h, h.claim(world, asked)))
        .collect()
}

/// Chooses the handler for the component `name` with world `world`: the one the user named
/// (`--handler`, a handler's subcommand), or the strongest claim.
pub fn select(name: &str, world: &World, asked: &Asked<'_>) -> Result<Choice> {
    let claims = claims(world, asked);
    if let Some(forced) = asked.handler {
        let Some((handler, claim)) = claims.into_iter().find(|(h, _)| h.name() == forced) else {
            // clap checks `--handler` against the registry; this is for library callers.
            bail!(
                "unknown handler `{forced}`; registered handlers: {}",
                handler_names()
            )
        };
        return match claim {
            Claim::Yes(_) => Ok(Choice {
                handler,
                reason: format!("named by `--handler {forced}`"),
            }),
            Claim::No(why) => bail!(
                "`--handler {forced}` cannot run `{name}`: {why}; the component exports {}",
                world.export_list()
            ),
        };
    }

    let best = claims
        .iter()
        .filter_map(|(h, c)| match c {
            Claim::Yes(strength) => Some((*h, *strength)),
            Claim::No(_) => None,
        })
        .max_by_key(|(_, strength)| *strength);
    let Some((_, top)) = best else {
        // What was found and the next step first, then one line per handler with what it
        // looked for and did not find, then the exports (a few: `inspect` lists them all).
        let wants: Vec<String> = claims
            .iter()
            .map(|(h, claim)| match claim {
                Claim::No(why) => format!("  {}: {why}", h.name()),
                Claim::Yes(_) => unreachable!("no handler claims it"),
            })
            .collect();
        bail!(
            "no handler recognises `{name}`; if one of them can run it anyway, name it with \
             `--handler NAME`\n{}\nit exports {} (`worldhost inspect {name}` shows them all)",
            wants.join("\n"),
            world.export_list_short(EXPORTS_SHOWN),
        )
    };
    let winners: Vec<&'static dyn Handler> = claims
        .iter()
        .filter(|(_, c)| *c == Claim::Yes(top))
        .map(|(h, _)| *h)
        .collect();
    if let [handler] = winners.as_slice() {
        return Ok(Choice {
            handler: *handler,
            reason: match handler.found(world) {
                Some(found) => format!("{found} (claim strength {top})"),
                None => format!("it has {} (claim strength {top})", handler.looks_for()),
            },
        });
    }
    let described: Vec<String> = winners
        .iter()
        .map(|h| format!("{} ({})", h.name(), h.looks_for()))
        .collect();
    let options: Vec<String> = winners
        .iter()
        .map(|h| format!("`--handler {}`", h.name()))
        .collect();
    bail!(
        "`{name}` is claimed equally by {}; choose one with {}",
        described.join(" and "),
        options.join(" or ")
    )
}

/// The registered handlers' names, comma-separated.
pub fn handler_names() -> String {
    handlers()
        .iter()
        .map(|h| h.name())
        .collect::<Vec<_>>()
        .join(", ")
}
