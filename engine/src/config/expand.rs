//! `$name` expansion in main.cf values: Postfix's mac_parse + mac_expand.
//!
//! Supported forms: `$name`, `${name}`, `$(name)`, `$$` (a literal `$`),
//! `${name?text}` / `${name?{text}}` (text when name is non-empty),
//! `${name:text}` / `${name:{text}}` (text when name is empty or undefined),
//! `${name?{a}:{b}}`, and the logical form `${{x} op {y}?{a}:{b}}` with
//! `==` `!=` `<` `<=` `>` `>=` (numeric when both sides are decimal numbers).
//! As in Postfix, the old unbraced `${name?text}` takes the rest of the
//! expression as text, `:` included. Expansion is recursive: a value that
//! refers to `$other` is expanded in turn, and an undefined name expands to
//! the empty string. Nesting deeper than [`MAX_NESTING`] is an error (it
//! catches `a = $b`, `b = $a`).
//!
//! An undefined name expanding to empty is silent here; the loader warns
//! once per name, as Postfix's postconf does (`warning: /etc/postfix/
//! main.cf: undefined parameter: name`), using [`undefined_names`].

use memchr::memchr;

/// Postfix's mac_expand gives up beyond 100 nested expansions
/// ("unreasonable macro call nesting").
pub const MAX_NESTING: usize = 100;

/// The longest value one expansion may produce. Nesting alone does not
/// bound it: `a = $b$b`, `b = $c$c`, … doubles per line, so 40 lines ask
/// for a terabyte. Postfix has no such bound (it would run out of memory);
/// a real value (a long mynetworks, a banner) is far below a megabyte.
pub const MAX_EXPANSION: usize = 1 << 20;

/// The most `$` references one expansion may evaluate: the same doubling
/// with empty values costs time instead of memory.
pub const MAX_EXPANSION_STEPS: usize = 10_000;

/// State of one [`expand`] call.
struct Cx<'a> {
    lookup: &'a dyn Lookup,
    /// `$` references evaluated so far.
    steps: usize,
}

/// Why a value could not be expanded. Display is Postfix's warning text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ExpandError {
    #[error("truncated macro reference: \"{0}\"")]
    Truncated(String),
    #[error("empty macro name: \"{0}\"")]
    EmptyName(String),
    #[error("unreasonable macro call nesting: \"{0}\"")]
    Nesting(String),
    #[error("{0}")]
    Syntax(String),
    /// Past [`MAX_EXPANSION`] bytes or [`MAX_EXPANSION_STEPS`] references.
    #[error("macro expansion too large (over {MAX_EXPANSION} bytes or {MAX_EXPANSION_STEPS} references): \"{0}\"")]
    TooLarge(String),
}

/// Looks up a parameter's raw (unexpanded) value; `None` means undefined.
pub trait Lookup {
    fn lookup(&self, name: &str) -> Option<String>;
}

impl<F: Fn(&str) -> Option<String>> Lookup for F {
    fn lookup(&self, name: &str) -> Option<String> {
        self(name)
    }
}

/// Expands `text` recursively against `lookup`.
pub fn expand(text: &str, lookup: &dyn Lookup) -> Result<String, ExpandError> {
    let mut out = String::with_capacity(text.len());
    let mut cx = Cx { lookup, steps: 0 };
    expand_into(&mut out, text, &mut cx, 0)?;
    Ok(out)
}

/// Every parameter name that `text` refers to, in order, without expanding
/// anything (for "unused parameter" warnings: a user-defined parameter is
/// in use when a known one refers to it).
pub fn referenced_names(text: &str) -> Vec<String> {
    let b = text.as_bytes();
    let mut names = Vec::new();
    let mut i = 0;
    while let Some(off) = memchr(b'$', &b[i..]) {
        let at = i + off;
        if b.get(at + 1) == Some(&b'$') {
            i = at + 2;
            continue;
        }
        let mut j = at + 1;
        // `${name...}`, `$(name...)`; a logical `${{` has no name of its own
        // but its operands are scanned by the loop anyway.
        if matches!(b.get(j), Some(b'{') | Some(b'(')) {
            j += 1;
        }
        let start = j;
        while j < b.len() && is_name_byte(b[j]) {
            j += 1;
        }
        if j > start {
            names.push(text[start..j].to_string());
        }
        i = at + 1;
    }
    names
}

/// The names `text` refers to that `lookup` does not define, each once,
/// in order of first reference.
pub fn undefined_names(text: &str, lookup: &dyn Lookup) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for name in referenced_names(text) {
        if lookup.lookup(&name).is_none() && !out.contains(&name) {
            out.push(name);
        }
    }
    out
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// mac_parse: split into literal text and `$` expressions.
fn expand_into(
    out: &mut String,
    text: &str,
    cx: &mut Cx<'_>,
    level: usize,
) -> Result<(), ExpandError> {
    let b = text.as_bytes();
    let mut i = 0;
    while let Some(off) = memchr(b'$', &b[i..]) {
        let at = i + off;
        out.push_str(&text[i..at]);
        if b.get(at + 1) == Some(&b'$') {
            out.push('$');
            i = at + 2;
            continue;
        }
        let (expr, next) = match b.get(at + 1) {
            Some(&open @ (b'{' | b'(')) => {
                let close = if open == b'{' { b'}' } else { b')' };
                let start = at + 2;
                let end = matching_close(b, start, open, close)
                    .ok_or_else(|| ExpandError::Truncated(text.to_string()))?;
                (&text[start..end], end + 1)
            }
            _ => {
                let start = at + 1;
                let mut j = start;
                while j < b.len() && is_name_byte(b[j]) {
                    j += 1;
                }
                (&text[start..j], j)
            }
        };
        if expr.is_empty() {
            return Err(ExpandError::EmptyName(text.to_string()));
        }
        eval_expr(out, expr, cx, level + 1)?;
        if out.len() > MAX_EXPANSION {
            return Err(ExpandError::TooLarge(head(text).to_string()));
        }
        i = next;
    }
    out.push_str(&text[i..]);
    if out.len() > MAX_EXPANSION {
        return Err(ExpandError::TooLarge(head(text).to_string()));
    }
    Ok(())
}

/// Index of the bracket that closes one already opened before `start`,
/// counting only brackets of the same kind (as mac_parse does).
fn matching_close(b: &[u8], start: usize, open: u8, close: u8) -> Option<usize> {
    let mut depth = 1usize;
    for (k, &c) in b.iter().enumerate().skip(start) {
        if c == open {
            depth += 1;
        } else if c == close {
            depth -= 1;
            if depth == 0 {
                return Some(k);
            }
        }
    }
    None
}

fn skip_ws(s: &str) -> &str {
    s.trim_start_matches([' ', '\t', '\r', '\n'])
}

/// If `s` (after whitespace) starts with `{`, returns the balanced payload
/// and the rest after the `}` and any whitespace.
fn curly_payload(s: &str) -> Result<Option<(&str, &str)>, ExpandError> {
    let t = skip_ws(s);
    if !t.starts_with('{') {
        return Ok(None);
    }
    let b = t.as_bytes();
    let end = matching_close(b, 1, b'{', b'}').ok_or_else(|| {
        ExpandError::Syntax(format!("unbalanced {{}} in attribute expression: \"{t}\""))
    })?;
    Ok(Some((&t[1..end], skip_ws(&t[end + 1..]))))
}

/// mac_expand_callback for one `$` expression (without the `$`/brackets).
fn eval_expr(
    out: &mut String,
    expr: &str,
    cx: &mut Cx<'_>,
    level: usize,
) -> Result<(), ExpandError> {
    if level > MAX_NESTING {
        return Err(ExpandError::Nesting(expr.to_string()));
    }
    cx.steps += 1;
    if cx.steps > MAX_EXPANSION_STEPS {
        return Err(ExpandError::TooLarge(head(expr).to_string()));
    }
    let (value, op, mut rest): (Option<String>, Option<char>, &str) =
        if let Some((left, after)) = curly_payload(expr)? {
            let (truth, after) = eval_logical(left, after, cx, level)?;
            let value = Some(if truth {
                "true".to_string()
            } else {
                String::new()
            });
            match after.chars().next() {
                None => (value, None, ""),
                Some(c @ ('?' | ':')) => (value, Some(c), &after[1..]),
                Some(_) => {
                    return Err(ExpandError::Syntax(format!(
                        "\"?\" or \":\" expected at: \"...}}>>>{}\"",
                        head(after)
                    )))
                }
            }
        } else {
            let split = expr.find(['?', ':']).unwrap_or(expr.len());
            let name = &expr[..split];
            if let Some(bad) = name.bytes().position(|c| !is_name_byte(c)) {
                return Err(ExpandError::Syntax(format!(
                    "attribute name syntax error at: \"...{}>>>{}\"",
                    &name[..bad],
                    head(&expr[bad..])
                )));
            }
            let op = expr[split..].chars().next();
            let rest = if op.is_some() { &expr[split + 1..] } else { "" };
            (cx.lookup.lookup(name), op, rest)
        };
    let non_empty = value.as_deref().is_some_and(|v| !v.is_empty());
    match op {
        None => {
            if let Some(v) = value.filter(|v| !v.is_empty()) {
                expand_into(out, &v, cx, level)?;
            }
        }
        Some(op) => {
            if op == '?' {
                let iftrue;
                (iftrue, rest) = match curly_payload(rest)? {
                    Some((payload, after)) => (payload, after),
                    None => (rest, ""),
                };
                if non_empty {
                    expand_into(out, iftrue, cx, level)?;
                }
                if rest.is_empty() {
                    return Ok(());
                }
                rest = rest.strip_prefix(':').ok_or_else(|| {
                    ExpandError::Syntax(format!(
                        "\":\" expected at: \"...{iftrue}}}>>>{}\"",
                        head(rest)
                    ))
                })?;
            }
            let (iffalse, after) = match curly_payload(rest)? {
                Some((payload, after)) => (payload, after),
                None => (rest, ""),
            };
            if !non_empty {
                expand_into(out, iffalse, cx, level)?;
            }
            if !after.is_empty() {
                return Err(ExpandError::Syntax(format!(
                    "unexpected input at: \"...{iffalse}}}>>>{}\"",
                    head(after)
                )));
            }
        }
    }
    Ok(())
}

/// `{left} op {right}`: returns the truth value and the text after `{right}`.
fn eval_logical<'a>(
    left: &str,
    after_left: &'a str,
    cx: &mut Cx<'_>,
    level: usize,
) -> Result<(bool, &'a str), ExpandError> {
    let op_len = after_left
        .bytes()
        .take_while(|c| b"<>!=?+-*/~&|%".contains(c))
        .count();
    let op = &after_left[..op_len];
    if !matches!(op, "==" | "!=" | "<" | "<=" | ">" | ">=") {
        return Err(ExpandError::Syntax(format!(
            "\"==\", \"!=\", \"<\", \"<=\", \">\" or \">=\" expected at: \"...{left}}}>>>{}\"",
            head(after_left)
        )));
    }
    let (right, rest) = curly_payload(&after_left[op_len..])?.ok_or_else(|| {
        ExpandError::Syntax(format!(
            "\"{{expression}}\" expected at: \"...{{{left}}} {op}>>>{}\"",
            head(&after_left[op_len..])
        ))
    })?;
    let mut l = String::new();
    expand_into(&mut l, left, cx, level)?;
    let mut r = String::new();
    expand_into(&mut r, right, cx, level)?;
    let ordering = match (decimal(&l), decimal(&r)) {
        (Some(a), Some(b)) => a.cmp(&b),
        _ if matches!(op, "==" | "!=") => l.cmp(&r),
        _ => {
            return Err(ExpandError::Syntax(format!(
                "numerical operands required for \"{op}\": \"{l}\" and \"{r}\""
            )))
        }
    };
    let truth = match op {
        "==" => ordering.is_eq(),
        "!=" => ordering.is_ne(),
        "<" => ordering.is_lt(),
        "<=" => ordering.is_le(),
        ">" => ordering.is_gt(),
        _ => ordering.is_ge(),
    };
    Ok((truth, rest))
}

fn decimal(s: &str) -> Option<i64> {
    let digits = s.strip_prefix('-').unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Postfix quotes at most 20 characters of the remaining input.
fn head(s: &str) -> &str {
    match s.char_indices().nth(20) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn table(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn exp(vars: &HashMap<String, String>, text: &str) -> Result<String, ExpandError> {
        let lookup = |n: &str| vars.get(n).cloned();
        expand(text, &lookup)
    }

    #[test]
    fn expansion_table() {
        let vars = table(&[
            ("host", "mx.example.com"),
            ("name", "Sluice"),
            ("empty", ""),
            ("banner", "$host ESMTP $name"),
            ("chain", "${banner}!"),
            ("stress", ""),
            ("three", "3"),
            ("dollar", "$$x"),
        ]);
        let cases = [
            ("plain text", "plain text"),
            ("$host", "mx.example.com"),
            ("${host}", "mx.example.com"),
            ("$(host)", "mx.example.com"),
            ("<$host>", "<mx.example.com>"),
            ("$host.$name", "mx.example.com.Sluice"),
            ("$banner", "mx.example.com ESMTP Sluice"),
            ("$chain", "mx.example.com ESMTP Sluice!"),
            ("$undefined|", "|"),
            ("$$host", "$host"),
            ("a$$", "a$"),
            ("$dollar", "$x"),
            // Conditional forms, braced and old-style.
            ("${host?{yes}}", "yes"),
            ("${empty?{yes}}", ""),
            ("${undefined?{yes}}", ""),
            ("${host:{no}}", ""),
            ("${empty:{no}}", "no"),
            ("${undefined:{no}}", "no"),
            ("${host?{a}:{b}}", "a"),
            ("${empty?{a}:{b}}", "b"),
            ("${empty? {a} : {b} }", "b"),
            ("${host?yes}", "yes"),
            ("${host:no}", ""),
            ("${empty:no}", "no"),
            ("${host?a:b}", "a:b"), // old form: the rest is text
            ("${empty?a:b}", ""),
            ("${empty?{a}:b}", "b"),
            ("${host?{$name}}", "Sluice"),
            ("${stress?{10}:{300}}s", "300s"),
            // Logical expressions.
            ("${{$three} == {3}?{eq}:{ne}}", "eq"),
            ("${{$three} != {3}?{eq}:{ne}}", "ne"),
            ("${{$three} < {10}?{lt}:{ge}}", "lt"),
            ("${{$three} >= {10}?{ge}:{lt}}", "lt"),
            ("${{abc} == {abc}}", "true"),
            ("${{abc} == {abd}}", ""),
        ];
        for (input, want) in cases {
            assert_eq!(exp(&vars, input).as_deref(), Ok(want), "{input}");
        }
    }

    #[test]
    fn expansion_errors() {
        let vars = table(&[("loop", "$loop"), ("a", "$b"), ("b", "x$a")]);
        assert_eq!(
            exp(&vars, "$loop").unwrap_err().to_string(),
            "unreasonable macro call nesting: \"loop\""
        );
        assert!(matches!(exp(&vars, "$a"), Err(ExpandError::Nesting(_))));
        assert_eq!(
            exp(&vars, "${host").unwrap_err(),
            ExpandError::Truncated("${host".into())
        );
        assert_eq!(
            exp(&vars, "a $ b").unwrap_err(),
            ExpandError::EmptyName("a $ b".into())
        );
        assert!(matches!(
            exp(&vars, "${ho-st}"),
            Err(ExpandError::Syntax(_))
        ));
        assert!(matches!(
            exp(&vars, "${x?{a}junk}"),
            Err(ExpandError::Syntax(_))
        ));
        assert!(matches!(
            exp(&vars, "${{a} <> {b}}"),
            Err(ExpandError::Syntax(_))
        ));
        assert!(matches!(
            exp(&vars, "${{a} < {b}}"),
            Err(ExpandError::Syntax(_))
        ));
    }

    #[test]
    fn deep_but_finite_chains_expand() {
        let mut vars = HashMap::new();
        for i in 0..50 {
            vars.insert(format!("p{i}"), format!("$p{}", i + 1));
        }
        vars.insert("p50".to_string(), "end".to_string());
        assert_eq!(exp(&vars, "$p0").as_deref(), Ok("end"));
    }

    #[test]
    fn undefined_names_once_each() {
        let vars = table(&[("a", "1")]);
        let lookup = |n: &str| vars.get(n).cloned();
        assert_eq!(
            undefined_names("$a $nope ${nope?x} $(other:y) $$lit", &lookup),
            ["nope", "other"]
        );
        assert!(undefined_names("$a and $$b", &lookup).is_empty());
    }

    #[test]
    fn references() {
        assert_eq!(
            referenced_names("$a, ${b?{$c}:{x}} $$d $(e) ${{$f} == {1}}"),
            ["a", "b", "c", "e", "f"]
        );
    }

    /// Found by fuzzing (fuzz/seeds/main_cf/expansion_bomb*): nesting is
    /// bounded but breadth was not, so `p0 = $p1$p1`, `p1 = $p2$p2`, …
    /// asked for 2^40 bytes (or, with an empty last value, 2^40 lookups).
    #[test]
    fn doubling_chains_are_bounded() {
        for last in ["xxxxxxxx", ""] {
            let mut t: HashMap<String, String> = (0..40)
                .map(|i| (format!("p{i}"), format!("$p{}$p{}", i + 1, i + 1)))
                .collect();
            t.insert("p40".into(), last.into());
            let lookup = |n: &str| t.get(n).cloned();
            let start = std::time::Instant::now();
            let e = expand("$p0", &lookup).unwrap_err();
            assert!(matches!(e, ExpandError::TooLarge(_)), "{e:?}");
            assert!(start.elapsed() < std::time::Duration::from_secs(5));
        }
        // A wide but small expansion is fine.
        let t = table(&[("a", "$b$b$b$b"), ("b", "$c$c$c$c"), ("c", "xy")]);
        let lookup = |n: &str| t.get(n).cloned();
        assert_eq!(expand("$a", &lookup).unwrap().len(), 32);
    }
}
