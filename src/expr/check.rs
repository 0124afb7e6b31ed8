//! Parse-time checks: known functions, argument counts, required arguments, and the
//! arguments whose literal values can be judged before run time (numbers, interval codes,
//! compare modes, regex patterns, date formats), so `ctsync validate` catches mistakes early.

use super::ast::{Node, NodeKind, Span};
use super::catalog::{self, KNOWN_IDENTIFIERS, ParamKind, Signature};
use super::dotnet;
use super::error::ParseError;
use super::functions::{dates, replace};

pub fn check(src: &str, root: &Node) -> Result<(), ParseError> {
    let checker = Checker { src };
    checker.node(root, true)
}

struct Checker<'a> {
    src: &'a str,
}

impl Checker<'_> {
    fn err(&self, span: Span, message: impl Into<String>) -> ParseError {
        ParseError::at(self.src, span, message)
    }

    fn node(&self, node: &Node, top_level: bool) -> Result<(), ParseError> {
        match &node.kind {
            NodeKind::Ident(name) => self.identifier(node, name),
            NodeKind::Compare { left, right, .. } | NodeKind::Concat(left, right) => {
                self.node(left, false)?;
                self.node(right, false)
            }
            NodeKind::Call { name, args } => {
                let Some(sig) = catalog::lookup(name) else {
                    let err = self.err(node.name_span(), format!("unknown function `{name}`"));
                    return Err(match catalog::closest_function(name) {
                        Some(best) => err.with_help(format!("did you mean `{best}`?")),
                        None => err.with_help("function names are case-sensitive; run `ctsync expr --functions` for the list"),
                    });
                };
                self.call(node, sig, args, top_level)?;
                for arg in args.iter().flatten() {
                    self.node(arg, false)?;
                }
                Ok(())
            }
            NodeKind::Str(_) | NodeKind::Int(_) | NodeKind::Hex(_) | NodeKind::Attribute(_) => {
                Ok(())
            }
        }
    }

    fn identifier(&self, node: &Node, name: &str) -> Result<(), ParseError> {
        if KNOWN_IDENTIFIERS.contains(&name) {
            return Ok(());
        }
        let err = self.err(
            node.span,
            format!("unknown name `{name}`: attributes are written in square brackets"),
        );
        Err(
            match catalog::closest(name, KNOWN_IDENTIFIERS.iter().copied()) {
                Some(best) => err.with_help(format!("did you mean `{best}` or `[{name}]`?")),
                None if catalog::lookup(name).is_some() => {
                    err.with_help(format!("`{name}` is a function: call it as `{name}(...)`"))
                }
                None => err.with_help(format!("did you mean `[{name}]`?")),
            },
        )
    }

    fn call(
        &self,
        node: &Node,
        sig: &Signature,
        args: &[Option<Node>],
        top_level: bool,
    ) -> Result<(), ParseError> {
        let usage = sig.usage();
        if args.len() < sig.min_args {
            return Err(self
                .err(
                    node.span,
                    format!(
                        "`{}` needs at least {} argument{}, got {}",
                        sig.name,
                        sig.min_args,
                        if sig.min_args == 1 { "" } else { "s" },
                        args.len()
                    ),
                )
                .with_help(format!("usage: {usage}")));
        }
        if let Some(max) = sig.max_args()
            && args.len() > max
        {
            let extra = args[max..]
                .iter()
                .flatten()
                .next()
                .map_or(node.span, |n| n.span);
            return Err(self
                .err(
                    extra,
                    format!(
                        "`{}` takes at most {max} argument{}, got {}",
                        sig.name,
                        if max == 1 { "" } else { "s" },
                        args.len()
                    ),
                )
                .with_help(format!("usage: {usage}")));
        }
        // FormatDateTime also has the older three-argument form (source, in, out).
        let three_arg_format = sig.name == "FormatDateTime" && args.len() == 3;
        for (i, arg) in args.iter().enumerate() {
            let param_index = match sig.name {
                _ if three_arg_format && i > 0 => i + 1,
                // key, value, key, value, ... after source and defaultValue.
                "Switch" if i >= 2 => 2 + (i - 2) % 2,
                _ => i,
            };
            let Some(param) = sig.param(param_index) else {
                continue;
            };
            match arg {
                None if param.required => {
                    return Err(self
                        .err(
                            node.name_span(),
                            format!(
                                "argument {} (`{}`) of `{}` is required but empty",
                                i + 1,
                                param.name,
                                sig.name
                            ),
                        )
                        .with_help(format!("usage: {usage}")));
                }
                None => {}
                Some(arg) => self.literal(sig, param.name, param.kind, arg)?,
            }
        }
        match sig.name {
            "Switch" if !args.len().is_multiple_of(2) => Err(self.err(
                node.span,
                "`Switch` needs key/value pairs after source and defaultValue: the last key has no value",
            )
            .with_help(format!("usage: {usage}"))),
            "SelectUniqueValue" if !top_level => Err(self.err(
                node.name_span(),
                "`SelectUniqueValue` must be the top-level function and cannot be nested",
            )),
            "Replace" => self.replace_mode(node, args),
            "RandomString" => self.random_string(node, args),
            "Item" => match args.get(1).and_then(Option::as_ref).map(|n| &n.kind) {
                Some(NodeKind::Int(i)) if *i < 1 => Err(self.err(
                    args[1].as_ref().map_or(node.span, |n| n.span),
                    "`Item` indexes are 1-based: index must be 1 or more",
                )),
                _ => Ok(()),
            },
            _ => Ok(()),
        }
    }

    /// RandomString's limits, when its numbers are literals.
    fn random_string(&self, node: &Node, args: &[Option<Node>]) -> Result<(), ParseError> {
        let literal = |i: usize| match args.get(i).and_then(Option::as_ref).map(|n| &n.kind) {
            Some(NodeKind::Int(v) | NodeKind::Hex(v)) => Some(*v),
            Some(NodeKind::Str(s)) => s.trim().parse().ok(),
            None => Some(0),
            _ => None,
        };
        let Some(length) = literal(0) else {
            return Ok(());
        };
        if !(0..=256).contains(&length) {
            return Err(self.err(
                args[0].as_ref().map_or(node.span, |n| n.span),
                format!("`RandomString` Length must be between 0 and 256, got {length}"),
            ));
        }
        let minimums: Option<Vec<i64>> = (1..=4).map(literal).collect();
        if let Some(minimums) = minimums {
            let sum: i64 = minimums.iter().sum();
            if minimums.iter().any(|m| *m < 0) || sum > length {
                return Err(self.err(
                    node.span,
                    format!(
                        "`RandomString` minimums must be non-negative and add up to at most Length ({length}), got {sum}"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Replace's behaviour depends on which arguments are given; reject combinations that
    /// match none of the documented modes.
    fn replace_mode(&self, node: &Node, args: &[Option<Node>]) -> Result<(), ParseError> {
        let given = |i: usize| args.get(i).is_some_and(Option::is_some);
        if replace::Mode::from_presence(&given).is_none() {
            return Err(self.err(
                node.name_span(),
                "`Replace` needs oldValue with replacementValue or template, or regexPattern with replacementValue or (regexGroupName and replacementAttributeName)",
            )
            .with_help("usage: Replace(source, oldValue, regexPattern, regexGroupName, replacementValue, replacementAttributeName, template)"));
        }
        Ok(())
    }

    fn literal(
        &self,
        sig: &Signature,
        param: &str,
        kind: ParamKind,
        arg: &Node,
    ) -> Result<(), ParseError> {
        let text = match &arg.kind {
            NodeKind::Str(s) => Some(s.as_str()),
            NodeKind::Ident(s) => Some(s.as_str()),
            _ => None,
        };
        let fail = |what: String| {
            Err(self.err(
                arg.span,
                format!("argument `{param}` of `{}` {what}", sig.name),
            ))
        };
        match kind {
            ParamKind::Any => Ok(()),
            ParamKind::Number => match &arg.kind {
                NodeKind::Str(s) if s.trim().parse::<i64>().is_err() => {
                    fail(format!("must be a whole number, got \"{s}\""))
                }
                NodeKind::Ident(s) => fail(format!("must be a whole number, got `{s}`")),
                _ => Ok(()),
            },
            ParamKind::Interval => match text {
                Some(s) if !dates::INTERVALS.contains(&s) => fail(format!(
                    "must be one of {}, got \"{s}\"",
                    dates::INTERVALS.join(", ")
                )),
                _ => Ok(()),
            },
            ParamKind::CompareType => match &arg.kind {
                NodeKind::Ident(s) if !s.starts_with("vb") => fail(format!(
                    "must be vbBinaryCompare or vbTextCompare, got `{s}`"
                )),
                NodeKind::Int(i) if !(0..=2).contains(i) => fail(format!(
                    "must be vbBinaryCompare (0) or vbTextCompare (1), got {i}"
                )),
                _ => Ok(()),
            },
            ParamKind::Regex => match &arg.kind {
                NodeKind::Str(s) => match replace::compile_regex(s) {
                    Ok(_) => Ok(()),
                    Err(e) => fail(format!("is not a valid regular expression: {e}")),
                },
                _ => Ok(()),
            },
            ParamKind::DateFormat => match &arg.kind {
                NodeKind::Str(s) => match dotnet::DateFormat::parse(s) {
                    Ok(_) => Ok(()),
                    Err(e) => fail(format!("is not a valid .NET date format: {e}")),
                },
                _ => Ok(()),
            },
            ParamKind::DateTimeStyles => match text {
                Some(s) => match dotnet::Styles::parse(s) {
                    Ok(_) => Ok(()),
                    Err(e) => fail(e),
                },
                None => Ok(()),
            },
            ParamKind::Encoding => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::expr::Expression;

    fn error(src: &str) -> String {
        let err = Expression::parse(src).unwrap_err();
        format!("{} | {}", err.message, err.help.unwrap_or_default())
    }

    #[test]
    fn unknown_function_suggests_the_closest() {
        let e = error("Jion(\"@\", [a])");
        assert!(
            e.contains("unknown function `Jion`") && e.contains("`Join`"),
            "{e}"
        );
        assert!(error("toupper([a])").contains("`ToUpper`"));
    }

    #[test]
    fn arity_and_required_arguments() {
        assert!(error("Append([a])").contains("at least 2"));
        assert!(error("Left([a], 1, 2)").contains("at most 2"));
        assert!(error("Append(, \"x\")").contains("required"));
        assert!(error("Switch([a], \"d\", \"k\", \"v\", \"k2\")").contains("pairs"));
        assert!(Expression::parse("Switch([a], , \"k\", \"v\")").is_ok());
        assert!(error("Switch([a], \"d\", \"k\", \"v\", , \"v2\")").contains("(`key`)"));
        assert!(error("Join(\"a\", SelectUniqueValue([a], [b]))").contains("top-level"));
    }

    #[test]
    fn literal_arguments_are_checked() {
        assert!(error("Left([a], \"x\")").contains("whole number"));
        assert!(error("DateAdd(\"days\", 1, Now())").contains("one of"));
        assert!(error("Replace([a], , \"(\", , \"\", , )").contains("regular expression"));
        assert!(error("Replace([a], \"x\", , , , , )").contains("oldValue with"));
        assert!(error("Item([a], 0)").contains("1-based"));
        assert!(error("RandomString(300)").contains("between 0 and 256"));
        assert!(error("RandomString(4, 2, 2, 1)").contains("add up to"));
        assert!(Expression::parse("RandomString(6,3,0,0,3)").is_ok());
        assert!(error("InStr([a], \"b\", 1, vbFoo)").contains("unknown name"));
        assert!(error("FormatDateTime([a], , \"yyyy'\", \"d\")").contains(".NET date format"));
        assert!(error("Join(\"@\", mailNickname)").contains("[mailNickname]"));
    }
}
