//! What a REPL line says: a command (`.type x`), a call with its arguments, or a bound name;
//! optionally bound (`let NAME = …`). A call is parsed as WAVE by wasm-wave's own parser, so
//! each argument comes with its span; an argument that is a bound name is taken from the
//! session, the rest are typed as `--invoke` types them.

use anyhow::{Result, anyhow, bail};
use wasmtime::component::wasm_wave::ast::Node;
use wasmtime::component::wasm_wave::untyped::UntypedFuncCall;

/// One line of input.
pub(crate) enum Line<'a> {
    /// Nothing to do (blank, or a `#` comment).
    Empty,
    /// `.NAME ARG`.
    Command(&'a str, &'a str),
    /// `[let NAME =] EXPR`.
    Expr {
        /// The name to bind the result to.
        bind: Option<&'a str>,
        /// What follows `=`: a call or a bound name.
        expr: &'a str,
    },
}

/// Reads a line.
pub(crate) fn line(line: &str) -> Result<Line<'_>> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(Line::Empty);
    }
    if let Some(command) = line.strip_prefix('.') {
        let (name, arg) = command.split_once(' ').unwrap_or((command, ""));
        return Ok(Line::Command(name, arg.trim()));
    }
    let Some(rest) = line.strip_prefix("let ") else {
        return Ok(Line::Expr {
            bind: None,
            expr: line,
        });
    };
    let (name, expr) = rest
        .split_once('=')
        .ok_or_else(|| anyhow!("`{line}`: write `let NAME = CALL`"))?;
    let name = name.trim();
    if !is_identifier(name) {
        bail!("`{name}` cannot be a name: use letters, digits and `-`");
    }
    Ok(Line::Expr {
        bind: Some(name),
        expr: expr.trim(),
    })
}

/// A parsed call: the function's name as written (`add`, `c.get`, `counter.new`) and the
/// argument nodes, each with its span in the call's text.
pub(crate) struct Call<'a> {
    parsed: UntypedFuncCall<'a>,
}

impl<'a> Call<'a> {
    /// Parses `expr` as a WAVE function call; the error points at what is wrong.
    pub(crate) fn parse(expr: &'a str) -> Result<Self> {
        let parsed = UntypedFuncCall::parse(expr).map_err(|e| {
            anyhow!(
                "`{expr}` is not a WAVE call: {}; write `name(arg, …)`\n{}",
                crate::call::describe(&e),
                crate::call::caret(expr, e.span())
            )
        })?;
        Ok(Call { parsed })
    }

    /// The function's name as written.
    pub(crate) fn head(&self) -> &str {
        self.parsed.name()
    }

    /// The argument nodes, in order.
    pub(crate) fn args(&self) -> Vec<&Node> {
        match self.parsed.params_node().map(Node::as_tuple) {
            Some(Ok(args)) => args.collect(),
            _ => Vec::new(),
        }
    }

    /// The text of `node`, one of [`Call::args`].
    pub(crate) fn text(&self, node: &Node) -> &str {
        &self.parsed.source()[node.span()]
    }

    /// The call's whole text.
    pub(crate) fn source(&self) -> &str {
        self.parsed.source()
    }
}

/// A name that `let` may bind.
fn is_identifier(name: &str) -> bool {
    name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// `[constructor]counter` → `counter.new`, `[static]counter.zero` → `counter.zero`,
/// `[method]counter.add` → `add` (a method is called on a bound value: `c.add(…)`). Read with
/// wasmparser's parser of component names.
pub(crate) fn readable_name(name: &str) -> String {
    use wasmparser::names::{ComponentName, ComponentNameKind};
    match ComponentName::new(name, 0)
        .as_ref()
        .map(ComponentName::kind)
    {
        Ok(ComponentNameKind::Constructor(resource)) => format!("{resource}.new"),
        Ok(ComponentNameKind::Static(func)) => format!("{}.{}", func.resource(), func.method()),
        Ok(ComponentNameKind::Method(func)) => func.method().to_string(),
        _ => name.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_gives_each_argument_with_its_text() {
        let call = Call::parse(r#"f(1, "a, b", [1, 2], {x: 1, y: 2}, 'c', c)"#).unwrap();
        assert_eq!(call.head(), "f");
        let texts: Vec<&str> = call.args().iter().map(|n| call.text(n)).collect();
        assert_eq!(
            texts,
            ["1", r#""a, b""#, "[1, 2]", "{x: 1, y: 2}", "'c'", "c"]
        );
        assert!(Call::parse("f()").unwrap().args().is_empty());
        assert_eq!(Call::parse("c.add(2)").unwrap().head(), "c.add");
        assert!(Call::parse("f(1").is_err());
    }

    #[test]
    fn lines_bind_call_or_command() {
        assert!(matches!(line("  # note"), Ok(Line::Empty)));
        assert!(matches!(line(".type x"), Ok(Line::Command("type", "x"))));
        assert!(matches!(
            line("let c = counter.new(5)"),
            Ok(Line::Expr {
                bind: Some("c"),
                expr: "counter.new(5)"
            })
        ));
        assert!(line("let 1x = f()").is_err());
    }

    #[test]
    fn resource_functions_read_as_calls() {
        assert_eq!(readable_name("[constructor]counter"), "counter.new");
        assert_eq!(readable_name("[method]counter.add"), "add");
        assert_eq!(readable_name("[static]counter.zero"), "counter.zero");
        assert_eq!(readable_name("add"), "add");
    }
}
