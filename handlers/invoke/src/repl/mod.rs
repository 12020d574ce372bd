//! `worldhost repl`: one instance for a whole session of calls, typed in WAVE as `--invoke`
//! takes them, with names for results, so that resource handles can be kept and used:
//!
//! ```text
//! > let c = counter.new(5)        constructor: `[constructor]counter`
//! > c.add(2)                      method: `[method]counter.add`, `c` as `self`
//! 7
//! > counter.zero()                static function: `[static]counter.zero`
//! > let n = c.get()               calls do not nest: bind a result, then pass its name
//! > add(n, 1)
//! ```
//!
//! On a terminal: line editing, history kept between sessions, tab completion of function and
//! bound names (rustyline). Otherwise (a script on stdin): no prompt, and the first error ends
//! the session with a non-zero status. A trap ends only the call: the instance is poisoned, and
//! the REPL offers a fresh one (`.reset`). A component with `async func` exports or WASI 0.3 is
//! called in its store's event loop, as `--invoke` calls it.

use crate::call::{caret, describe};
use crate::json::results_to_json;
use crate::lookup::{Found, find, found};
use anyhow::{Result, anyhow, bail};
use editor::{Completion, History};
use parse::{Call, Line, readable_name};
use std::collections::BTreeMap;
use std::io::{BufRead as _, IsTerminal as _};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use wasmtime::component::Val;
use wasmtime::component::types::Type;
use wasmtime::component::wasm_wave::wasm::DisplayValue;
use worldhost_core::output::write_stdout;
use worldhost_core::wit::wit_type;
use worldhost_core::{Guest, GuestLinker, Loaded, RunContext, runtime};

mod editor;
mod parse;

const HELP: &str = "\
  CALL                 call an exported function: add(1, 2), ops.mul(2, 3)
  let NAME = CALL      call it and keep the result as NAME; NAME may stand for an argument
  RES.new(ARGS)        a resource's constructor; RES.f(ARGS) a static function of it
  NAME.m(ARGS)         a method of the resource bound to NAME
  NAME                 the value bound to NAME
  .exports             the exported functions with their signatures
  .imports             what the component imports
  .type NAME           the type of a bound name, or the signature of a function
  .reset               a fresh instance (bound resources are dropped)
  .help, .quit";

/// A value kept under a name, with its type.
struct Binding {
    val: Val,
    ty: Type,
}

/// One session: the instance, the bindings, and whether a trap poisoned the instance.
struct Session<'s, 'a> {
    cx: &'s RunContext<'a>,
    guest: Guest<()>,
    bindings: BTreeMap<String, Binding>,
    /// For a component called in its event loop (async exports, WASI 0.3).
    runtime: Option<tokio::runtime::Runtime>,
    poisoned: bool,
    json: bool,
    fail_on_err: bool,
}

/// What a line did.
enum Outcome {
    Done,
    Quit,
    /// A trap (or the guest's `exit`): the instance is poisoned.
    Trapped(ExitCode),
}

pub(crate) fn run(cx: RunContext<'_>, json: bool, fail_on_err: bool) -> Result<ExitCode> {
    // Signatures (`.exports`, `.type f`, errors) in the component's own WIT names.
    let named = cx.component.with_wit_names();
    let cx = RunContext {
        component: &named,
        ..cx
    };
    let interactive = std::io::stdin().is_terminal();
    // A component with async exports or WASI 0.3 is called in its store's event loop, on a
    // runtime that lives as long as the session.
    let runtime = crate::call::concurrent(&named).then(runtime).transpose()?;
    let guest = match &runtime {
        Some(runtime) => runtime.block_on(GuestLinker::new_async(&cx)?.instantiate_async(()))?,
        None => GuestLinker::new(&cx)?.instantiate(())?,
    };
    let mut session = Session {
        cx: &cx,
        guest,
        runtime,
        bindings: BTreeMap::new(),
        poisoned: false,
        json,
        fail_on_err,
    };
    if interactive {
        session.interactive()
    } else {
        session.script()
    }
}

impl<'a> Session<'_, 'a> {
    /// Lines from stdin, no prompt; the first error ends the session.
    fn script(&mut self) -> Result<ExitCode> {
        for line in std::io::stdin().lock().lines() {
            match self.line(&line?) {
                Ok(Outcome::Done) => {}
                Ok(Outcome::Quit) => break,
                Ok(Outcome::Trapped(code)) => return Ok(code),
                Err(e) => {
                    eprintln!("error: {e:#}");
                    return Ok(ExitCode::FAILURE);
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    }

    /// A terminal: prompt, editing, history, completion; errors are reported and the session
    /// goes on.
    fn interactive(&mut self) -> Result<ExitCode> {
        use rustyline::error::ReadlineError;
        let names = Arc::new(Mutex::new(Vec::new()));
        let mut editor =
            rustyline::Editor::<Completion, rustyline::history::DefaultHistory>::new()?;
        editor.set_helper(Some(Completion(names.clone())));
        let history = History::open();
        if let Some(history) = &history {
            let _ = editor.load_history(&history.path());
        }
        eprintln!(
            "worldhost repl: {} ({} functions). `.help` for help, `.quit` or Ctrl-D to leave.",
            self.cx.component.name,
            self.cx.component.world.exported_functions().count()
        );
        loop {
            *names.lock().expect("not poisoned") = self.completions();
            let line = match editor.readline("> ") {
                Ok(line) => line,
                Err(ReadlineError::Interrupted) => continue,
                Err(ReadlineError::Eof) => break,
                Err(e) => return Err(e.into()),
            };
            if !line.trim().is_empty() {
                let _ = editor.add_history_entry(line.as_str());
            }
            match self.line(&line) {
                Ok(Outcome::Done) => {}
                Ok(Outcome::Quit) => break,
                Ok(Outcome::Trapped(_)) => {
                    let answer = editor
                        .readline("the instance is poisoned by the trap; start a fresh one? [Y/n] ")
                        .unwrap_or_default();
                    if !answer.trim().to_lowercase().starts_with('n') {
                        self.reset()?;
                    }
                }
                Err(e) => eprintln!("error: {e:#}"),
            }
        }
        if let Some(history) = history.filter(History::still_sound) {
            let _ = editor.save_history(&history.path());
        }
        Ok(ExitCode::SUCCESS)
    }

    /// Function and bound names, for tab completion.
    fn completions(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .cx
            .component
            .world
            .exported_functions()
            .map(|f| readable_name(&f.name))
            .collect();
        names.extend(self.bindings.keys().cloned());
        names.extend(
            [".exports", ".imports", ".type", ".reset", ".help", ".quit"].map(String::from),
        );
        names.sort();
        names.dedup();
        names
    }

    fn reset(&mut self) -> Result<()> {
        let pre = &self.guest.pre;
        let mut store = pre.store(())?;
        self.guest.instance = match &self.runtime {
            Some(runtime) => runtime.block_on(pre.instantiate_async(&mut store))?,
            None => pre.instantiate(&mut store)?,
        };
        self.guest.store = store;
        self.poisoned = false;
        // Handles belong to the old instance.
        self.bindings
            .retain(|_, b| !matches!(b.ty, Type::Own(_) | Type::Borrow(_)));
        eprintln!("a fresh instance; bound resources were dropped");
        Ok(())
    }

    fn line(&mut self, line: &str) -> Result<Outcome> {
        let (name, expr) = match parse::line(line)? {
            Line::Empty => return Ok(Outcome::Done),
            Line::Command(name, arg) => return self.command(name, arg),
            Line::Expr { bind, expr } => (bind, expr),
        };
        if let Some(bound) = self.bindings.get(expr) {
            self.print(std::slice::from_ref(&bound.val))?;
            return Ok(Outcome::Done);
        }
        if self.poisoned {
            bail!("the instance is poisoned by a trap; `.reset` starts a fresh one");
        }
        let (found, params, this) = self.prepare(expr)?;
        let func = (self.guest.instance)
            .get_func(&mut self.guest.store, found.index)
            .expect("the export index comes from this component");
        let mut args = this.into_iter().collect::<Vec<_>>();
        args.extend(params);
        let mut results = vec![Val::Bool(false); found.ty.results().len()];
        let called = match &self.runtime {
            Some(runtime) => runtime.block_on(self.guest.run_concurrent_unjudged(async |store| {
                func.call_concurrent(store, &args, &mut results).await
            })),
            None => func.call(&mut self.guest.store, &args, &mut results),
        };
        if let Err(e) = called {
            let exit = self.guest.pre.classify(&self.guest.store, e)?;
            eprintln!("error: {exit}");
            self.poisoned = true;
            return Ok(Outcome::Trapped(exit.exit_code()));
        }
        let failed = self.fail_on_err && matches!(results.as_slice(), [Val::Result(Err(_))]);
        match name {
            Some(name) => {
                let [val] = <[Val; 1]>::try_from(results)
                    .map_err(|_| anyhow!("`{}` returns no single value to bind", found.function))?;
                let ty = found.ty.results().next().expect("one result");
                self.bindings.insert(name.to_string(), Binding { val, ty });
            }
            None if results.is_empty() => {}
            None => self.print(&results)?,
        }
        if failed {
            bail!("`{expr}` returned `err`, and `--fail-on-err` was given");
        }
        Ok(Outcome::Done)
    }

    fn command(&mut self, name: &str, arg: &str) -> Result<Outcome> {
        let world = &self.cx.component.world;
        match (name, arg) {
            ("quit" | "exit", _) => return Ok(Outcome::Quit),
            ("help", _) => write_stdout(&format!("{HELP}\n")).map(|_| ())?,
            ("exports", _) => {
                let lines: String = world
                    .exported_functions()
                    .map(|f| format!("{} {}\n", f.qualified_name(), f.signature()))
                    .collect();
                write_stdout(&lines)?;
            }
            ("imports", _) => {
                let lines: String = world
                    .imports
                    .iter()
                    .map(|i| format!("{}\n", i.name))
                    .collect();
                write_stdout(&lines)?;
            }
            ("type", "") => bail!("`.type NAME`: name a bound value or a function"),
            ("type", name) => {
                let text = match self.bindings.get(name) {
                    Some(binding) => wit_type(&binding.ty),
                    None => find(self.cx.component, name)?.function.signature(),
                };
                write_stdout(&format!("{text}\n"))?;
            }
            ("reset", _) => self.reset()?,
            _ => bail!("unknown command `.{name}`; `.help` lists them"),
        }
        Ok(Outcome::Done)
    }

    /// Finds the function `expr` calls and types its arguments; for a method, also the value
    /// of `self`.
    fn prepare(&self, expr: &str) -> Result<(Found<'a>, Vec<Val>, Option<Val>)> {
        let call = Call::parse(expr)?;
        let head = call.head();
        let loaded = self.cx.component;
        let (found, this) = match head.split_once('.') {
            // A method of a bound resource.
            Some((var, method)) if self.bindings.contains_key(var) => {
                let binding = &self.bindings[var];
                let Val::Resource(_) = binding.val else {
                    bail!("`{var}` is not a resource; only resources have methods");
                };
                (
                    resource_method(loaded, var, method, &binding.ty)?,
                    Some(binding.val.clone()),
                )
            }
            _ => match find(loaded, head) {
                Ok(found) => (found, None),
                // `counter.new(…)`, `counter.zero(…)`: a resource's constructor or static.
                Err(e) => {
                    let Some((res, f)) = head.split_once('.') else {
                        return Err(e);
                    };
                    let name = match f {
                        "new" => format!("[constructor]{res}"),
                        f => format!("[static]{res}.{f}"),
                    };
                    match find(loaded, &name) {
                        Ok(found) => (found, None),
                        Err(_) => bail!(
                            "`{res}` is neither a bound name nor a resource with `{f}`, and no \
                             function is named `{head}`; `.exports` lists the functions"
                        ),
                    }
                }
            },
        };
        let skip = usize::from(this.is_some());
        let types: Vec<Type> = found.ty.params().skip(skip).map(|(_, t)| t).collect();
        let args = call.args();
        // Trailing options may be left out, as in WAVE.
        let required = types
            .iter()
            .rposition(|t| !matches!(t, Type::Option(_)))
            .map_or(0, |at| at + 1);
        if !(required..=types.len()).contains(&args.len()) {
            bail!(
                "`{expr}`: {} arguments for `{}`",
                args.len(),
                found.function
            );
        }
        let mut params = Vec::new();
        for (at, ty) in types.iter().enumerate() {
            let val = match args.get(at) {
                Some(node) => match self.bindings.get(call.text(node)) {
                    Some(bound) => bound.val.clone(),
                    None => node.to_wasm_value::<Val>(ty, call.source()).map_err(|e| {
                        anyhow!(
                            "`{expr}`: the arguments do not fit `{}`: {}\n{}",
                            found.function,
                            describe(&e),
                            caret(expr, e.span())
                        )
                    })?,
                },
                None => Val::Option(None),
            };
            params.push(val);
        }
        Ok((found, params, this))
    }

    fn print(&self, results: &[Val]) -> Result<()> {
        let text = if self.json {
            results_to_json(results).to_string()
        } else {
            results.iter().map(show).collect::<Vec<_>>().join(", ")
        };
        write_stdout(&format!("{text}\n"))?;
        Ok(())
    }
}

/// A value in WAVE; one that holds a handle (a resource), which WAVE cannot write, as JSON with
/// `"<resource>"` where each handle is.
fn show(val: &Val) -> String {
    match val {
        Val::Resource(_) => "<resource>".into(),
        val if holds_handle(val) => crate::json::to_json(val).to_string(),
        val => DisplayValue(val).to_string(),
    }
}

fn holds_handle(val: &Val) -> bool {
    match val {
        Val::Resource(_) | Val::Future(_) | Val::Stream(_) | Val::ErrorContext(_) => true,
        Val::List(items) | Val::Tuple(items) | Val::FixedLengthList(items) => {
            items.iter().any(holds_handle)
        }
        Val::Map(entries) => entries
            .iter()
            .any(|(k, v)| holds_handle(k) || holds_handle(v)),
        Val::Record(fields) => fields.iter().any(|(_, v)| holds_handle(v)),
        Val::Variant(_, Some(v)) | Val::Option(Some(v)) => holds_handle(v),
        Val::Result(Ok(Some(v)) | Err(Some(v))) => holds_handle(v),
        _ => false,
    }
}

/// The method `name` of the resource type `ty` (of the value bound to `var`) is (or borrows): among the exported
/// `[method]` functions, the one whose `self` borrows that type.
fn resource_method<'a>(loaded: &'a Loaded, var: &str, name: &str, ty: &Type) -> Result<Found<'a>> {
    let (Type::Own(resource) | Type::Borrow(resource)) = ty else {
        bail!("not a resource");
    };
    let mut methods: Vec<Found<'a>> = loaded
        .world
        .exported_functions()
        .filter(|f| f.name.starts_with("[method]"))
        .map(|f| found(loaded, f))
        .collect::<Result<_>>()?;
    methods
        .retain(|f| matches!(f.ty.params().next(), Some((_, Type::Borrow(r))) if r == *resource));
    let names: Vec<String> = methods
        .iter()
        .map(|f| readable_name(&f.function.name))
        .collect();
    match names.iter().position(|m| m == name) {
        Some(at) => Ok(methods.swap_remove(at)),
        None if names.is_empty() => bail!("`{var}` has no method `{name}`, nor any other"),
        None => bail!(
            "`{var}` has no method `{name}`; its methods: {}",
            names.join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_holding_handles_are_shown_without_wave() {
        let plain = Val::Option(Some(Box::new(Val::U32(3))));
        assert!(!holds_handle(&plain));
        assert_eq!(show(&plain), "some(3)");
        let engine = wasmtime::Engine::default();
        let mut store = wasmtime::Store::new(&engine, ());
        let handle = wasmtime::component::Resource::<u32>::new_own(1)
            .try_into_resource_any(&mut store)
            .unwrap();
        assert_eq!(show(&Val::Resource(handle)), "<resource>");
        let held = Val::List(vec![Val::Option(Some(Box::new(Val::Resource(handle))))]);
        assert!(holds_handle(&held));
        assert_eq!(show(&held), r#"["<resource>"]"#);
    }
}
