//! Evaluates parsed yq expressions. As in yq (pkg/yqlib), an expression runs over a *context*:
//! the list of nodes it is given (every document of every file with `eval-all`). `|` passes
//! the whole list on, `as $x ireduce` folds over it, binary operators combine the results of
//! both sides over the whole context (yq's `crossFunction`), and the rest map each node.

use std::cmp::Ordering;
use std::collections::HashMap;

use anyhow::{Result, anyhow, bail};
use serde_json::{Map, Value};

use super::parse::{AssignOp, BinOp, Expr, MergeFlags, StrPart};

/// A value with the file and document it came from (`fi`, `di`, document separators).
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub file: usize,
    pub doc: usize,
}

impl Node {
    fn with(&self, value: Value) -> Node {
        Node { value, file: self.file, doc: self.doc }
    }
}

type Vars = HashMap<String, Vec<Node>>;

/// How far past an array's end an assignment may index (null-padding): a typo such as
/// `.[100000000000] = 1` fails instead of exhausting memory.
const MAX_PAD: usize = 1 << 20;
/// Largest string `"x" * n` builds.
const MAX_STRING: usize = 64 << 20;

/// One step of a path into a document.
#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Key(String),
    Idx(i64),
}

/// Runs `expr` over `context`.
pub fn eval(expr: &Expr, context: &[Node]) -> Result<Vec<Node>> {
    Eval { vars: Vars::new() }.run(expr, context)
}

struct Eval {
    vars: Vars,
}

fn truthy(v: &Value) -> bool {
    !matches!(v, Value::Null | Value::Bool(false))
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "!!null",
        Value::Bool(_) => "!!bool",
        Value::Number(n) if n.is_f64() => "!!float",
        Value::Number(_) => "!!int",
        Value::String(_) => "!!str",
        Value::Array(_) => "!!seq",
        Value::Object(_) => "!!map",
    }
}

/// jq's order: null < false < true < numbers < strings < arrays < objects.
pub fn compare(a: &Value, b: &Value) -> Ordering {
    fn rank(v: &Value) -> u8 {
        match v {
            Value::Null => 0,
            Value::Bool(false) => 1,
            Value::Bool(true) => 2,
            Value::Number(_) => 3,
            Value::String(_) => 4,
            Value::Array(_) => 5,
            Value::Object(_) => 6,
        }
    }
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x.cmp(&y),
            _ => x.as_f64().unwrap_or(0.0).partial_cmp(&y.as_f64().unwrap_or(0.0)).unwrap_or(Ordering::Equal),
        },
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Array(x), Value::Array(y)) => {
            for (p, q) in x.iter().zip(y) {
                let o = compare(p, q);
                if o != Ordering::Equal {
                    return o;
                }
            }
            x.len().cmp(&y.len())
        }
        (Value::Object(x), Value::Object(y)) => {
            let mut kx: Vec<&String> = x.keys().collect();
            let mut ky: Vec<&String> = y.keys().collect();
            kx.sort();
            ky.sort();
            match kx.cmp(&ky) {
                Ordering::Equal => {}
                o => return o,
            }
            for k in kx {
                let o = compare(&x[k], &y[k]);
                if o != Ordering::Equal {
                    return o;
                }
            }
            Ordering::Equal
        }
        _ => rank(a).cmp(&rank(b)),
    }
}

fn num(f: f64) -> Value {
    if f.fract() == 0.0 && f.abs() < 9.0e15 { Value::from(f as i64) } else { Value::from(f) }
}

fn arith(op: BinOp, a: &Value, b: &Value) -> Result<Value> {
    Ok(match (op, a, b) {
        (BinOp::Add, Value::Null, x) | (BinOp::Add, x, Value::Null) => x.clone(),
        (BinOp::Add, Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => Value::from(x.checked_add(y).ok_or_else(|| anyhow!("integer overflow"))?),
            _ => num(x.as_f64().unwrap_or(0.0) + y.as_f64().unwrap_or(0.0)),
        },
        (BinOp::Add, Value::String(x), Value::String(y)) => Value::String(format!("{x}{y}")),
        (BinOp::Add, Value::Array(x), Value::Array(y)) => Value::Array(x.iter().chain(y).cloned().collect()),
        // yq: adding a scalar to an array appends it.
        (BinOp::Add, Value::Array(x), y) => Value::Array(x.iter().cloned().chain([y.clone()]).collect()),
        (BinOp::Add, Value::Object(x), Value::Object(y)) => {
            let mut m = x.clone();
            for (k, v) in y {
                m.insert(k.clone(), v.clone());
            }
            Value::Object(m)
        }
        (BinOp::Sub, Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => Value::from(x.checked_sub(y).ok_or_else(|| anyhow!("integer overflow"))?),
            _ => num(x.as_f64().unwrap_or(0.0) - y.as_f64().unwrap_or(0.0)),
        },
        (BinOp::Sub, Value::Array(x), Value::Array(y)) => Value::Array(x.iter().filter(|v| !y.contains(v)).cloned().collect()),
        (BinOp::Mul(_), Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => Value::from(x.checked_mul(y).ok_or_else(|| anyhow!("integer overflow"))?),
            _ => num(x.as_f64().unwrap_or(0.0) * y.as_f64().unwrap_or(0.0)),
        },
        (BinOp::Mul(_), Value::String(s), Value::Number(k)) | (BinOp::Mul(_), Value::Number(k), Value::String(s)) => {
            let k = k.as_i64().unwrap_or(-1);
            if k < 0 || (k as u128) * (s.len() as u128) > MAX_STRING as u128 {
                bail!("cannot repeat a string of {} bytes {k} times", s.len());
            }
            Value::String(s.repeat(k as usize))
        }
        (BinOp::Mul(flags), x, y) => merge(x, y, flags),
        (BinOp::Div, Value::Number(x), Value::Number(y)) => {
            let d = y.as_f64().unwrap_or(0.0);
            if d == 0.0 {
                bail!("cannot divide {x} by zero");
            }
            num(x.as_f64().unwrap_or(0.0) / d)
        }
        (BinOp::Div, Value::String(x), Value::String(y)) => {
            Value::Array(x.split(y.as_str()).map(|s| Value::String(s.to_owned())).collect())
        }
        (BinOp::Mod, Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(_), Some(0)) => bail!("cannot modulo {x} by zero"),
            (Some(x), Some(y)) => Value::from(x % y),
            _ => num(x.as_f64().unwrap_or(0.0) % y.as_f64().unwrap_or(1.0)),
        },
        (BinOp::Eq, x, y) => Value::Bool(compare(x, y) == Ordering::Equal),
        (BinOp::Ne, x, y) => Value::Bool(compare(x, y) != Ordering::Equal),
        (BinOp::Lt, x, y) => Value::Bool(compare(x, y) == Ordering::Less),
        (BinOp::Le, x, y) => Value::Bool(compare(x, y) != Ordering::Greater),
        (BinOp::Gt, x, y) => Value::Bool(compare(x, y) == Ordering::Greater),
        (BinOp::Ge, x, y) => Value::Bool(compare(x, y) != Ordering::Less),
        (op, x, y) => bail!("cannot {} {} and {}", op_name(op), type_name(x), type_name(y)),
    })
}

fn op_name(op: BinOp) -> &'static str {
    match op {
        BinOp::Add => "add",
        BinOp::Sub => "subtract",
        BinOp::Mul(_) => "multiply",
        BinOp::Div => "divide",
        BinOp::Mod => "modulo",
        _ => "compare",
    }
}

/// yq's `*` (operator_multiply.go): maps merge deeply, the right side winning; arrays are
/// replaced, appended with `+`, merged by index with `d`; `?` only updates keys the left side
/// has, `n` only adds new ones. Any other pair: the right side (null on the right keeps the left
/// only at the top level, as `. * null` does in yq).
pub fn merge(a: &Value, b: &Value, flags: MergeFlags) -> Value {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut m = x.clone();
            for (k, v) in y {
                match m.get_mut(k) {
                    Some(existing) => {
                        if flags.only_new {
                            if let (Value::Object(_), Value::Object(_)) = (&*existing, v) {
                                *existing = merge(existing, v, flags);
                            }
                            continue;
                        }
                        *existing = match (&*existing, v) {
                            (Value::Object(_), Value::Object(_)) | (Value::Array(_), Value::Array(_)) => merge(existing, v, flags),
                            _ => v.clone(),
                        };
                    }
                    None => {
                        if !flags.only_existing {
                            m.insert(k.clone(), v.clone());
                        }
                    }
                }
            }
            Value::Object(m)
        }
        (Value::Array(x), Value::Array(y)) if flags.append => Value::Array(x.iter().chain(y).cloned().collect()),
        (Value::Array(x), Value::Array(y)) if flags.deep_arrays => {
            let mut out = x.clone();
            for (i, v) in y.iter().enumerate() {
                match out.get_mut(i) {
                    Some(e) => *e = merge(e, v, flags),
                    None if !flags.only_existing => out.push(v.clone()),
                    None => {}
                }
            }
            Value::Array(out)
        }
        (x, Value::Null) if !x.is_null() => x.clone(),
        (_, y) => y.clone(),
    }
}

fn get(v: &Value, seg: &Seg) -> Value {
    match (v, seg) {
        (Value::Object(m), Seg::Key(k)) => m.get(k).cloned().unwrap_or(Value::Null),
        (Value::Array(a), Seg::Idx(i)) => {
            let i = if *i < 0 { a.len() as i64 + i } else { *i };
            usize::try_from(i).ok().and_then(|i| a.get(i)).cloned().unwrap_or(Value::Null)
        }
        _ => Value::Null,
    }
}

fn set_path(root: &mut Value, path: &[Seg], value: Value) -> Result<()> {
    let Some((first, rest)) = path.split_first() else {
        *root = value;
        return Ok(());
    };
    match first {
        Seg::Key(k) => {
            if root.is_null() {
                *root = Value::Object(Map::new());
            }
            let Value::Object(m) = root else { bail!("cannot index {} with '{k}'", type_name(root)) };
            let child = m.entry(k.clone()).or_insert(Value::Null);
            set_path(child, rest, value)
        }
        Seg::Idx(i) => {
            if root.is_null() {
                *root = Value::Array(vec![]);
            }
            let Value::Array(a) = root else { bail!("cannot index {} with {i}", type_name(root)) };
            let i = if *i < 0 { a.len() as i64 + i } else { *i };
            let i = usize::try_from(i).map_err(|_| anyhow!("array index out of range"))?;
            if i > a.len() + MAX_PAD {
                bail!("array index {i} is too far past the end ({} items)", a.len());
            }
            if i >= a.len() {
                a.resize(i + 1, Value::Null);
            }
            set_path(&mut a[i], rest, value)
        }
    }
}

fn delete_path(root: &mut Value, path: &[Seg]) {
    let Some((last, parent)) = path.split_last() else {
        *root = Value::Null;
        return;
    };
    let mut cur = root;
    for seg in parent {
        let next = match (cur, seg) {
            (Value::Object(m), Seg::Key(k)) => m.get_mut(k),
            (Value::Array(a), Seg::Idx(i)) => {
                let i = if *i < 0 { a.len() as i64 + i } else { *i };
                usize::try_from(i).ok().and_then(|i| a.get_mut(i))
            }
            _ => None,
        };
        match next {
            Some(n) => cur = n,
            None => return,
        }
    }
    match (cur, last) {
        (Value::Object(m), Seg::Key(k)) => {
            m.shift_remove(k);
        }
        (Value::Array(a), Seg::Idx(i)) => {
            let i = if *i < 0 { a.len() as i64 + i } else { *i };
            if let Ok(i) = usize::try_from(i)
                && i < a.len()
            {
                a.remove(i);
            }
        }
        _ => {}
    }
}

fn to_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "null".to_owned(),
        other => other.to_string(),
    }
}

impl Eval {
    fn run(&mut self, expr: &Expr, ctx: &[Node]) -> Result<Vec<Node>> {
        match expr {
            Expr::Identity => Ok(ctx.to_vec()),
            Expr::Pipe(a, b) => {
                let mid = self.run(a, ctx)?;
                self.run(b, &mid)
            }
            Expr::Comma(a, b) => {
                let mut out = self.run(a, ctx)?;
                out.extend(self.run(b, ctx)?);
                Ok(out)
            }
            Expr::Binary(op, a, b) => {
                // yq's crossFunction: both sides over the whole context, then every left result
                // with every right result (`.a * .b` over two documents gives four results).
                let lhs = self.run(a, ctx)?;
                let rhs = self.run(b, ctx)?;
                let mut out = Vec::new();
                for l in &lhs {
                    for r in &rhs {
                        out.push(l.with(arith(*op, &l.value, &r.value)?));
                    }
                }
                Ok(out)
            }
            // A literal is one node whatever the context holds (yq's valueOperator).
            Expr::Literal(v) => Ok(ctx.first().map(|n| n.with(v.clone())).into_iter().collect()),
            Expr::As(src, var, body) => {
                let mut out = Vec::new();
                for n in ctx {
                    let values = self.run(src, std::slice::from_ref(n))?;
                    for v in values {
                        let saved = self.vars.insert(var.clone(), vec![v]);
                        let r = self.run(body, std::slice::from_ref(n));
                        self.restore(var, saved);
                        out.extend(r?);
                    }
                }
                Ok(out)
            }
            Expr::Reduce(src, var, init, update) => {
                let items = self.run(src, ctx)?;
                let first = ctx.first().cloned().unwrap_or(Node { value: Value::Null, file: 0, doc: 0 });
                let mut acc = self.run(init, std::slice::from_ref(&first))?;
                for item in items {
                    let saved = self.vars.insert(var.clone(), vec![item]);
                    let r = self.run(update, &acc);
                    self.restore(var, saved);
                    acc = r?;
                    if let Some(last) = acc.pop() {
                        acc = vec![last];
                    }
                }
                Ok(acc)
            }
            Expr::Call(name, args) if name == "ireduce" || name == "reduce" => {
                bail!("'{name}' needs 'as $var' before it ({args:?})")
            }
            _ => {
                let mut out = Vec::new();
                for n in ctx {
                    out.extend(self.one(expr, n)?);
                }
                Ok(out)
            }
        }
    }

    fn restore(&mut self, var: &str, saved: Option<Vec<Node>>) {
        match saved {
            Some(v) => {
                self.vars.insert(var.to_owned(), v);
            }
            None => {
                self.vars.remove(var);
            }
        }
    }

    fn values(&mut self, expr: &Expr, n: &Node) -> Result<Vec<Value>> {
        Ok(self.run(expr, std::slice::from_ref(n))?.into_iter().map(|n| n.value).collect())
    }

    /// Evaluates `expr` on one node.
    fn one(&mut self, expr: &Expr, n: &Node) -> Result<Vec<Node>> {
        let single = std::slice::from_ref(n);
        Ok(match expr {
            Expr::Recurse => {
                let mut out = Vec::new();
                recurse(&n.value, &mut |v| out.push(n.with(v.clone())));
                out
            }
            Expr::Index(target, idx) => {
                let mut out = Vec::new();
                for t in self.run(target, single)? {
                    for i in self.values(idx, n)? {
                        let v = match (&t.value, &i) {
                            (Value::Object(m), Value::String(k)) => m.get(k).cloned().unwrap_or(Value::Null),
                            (Value::Null, _) => Value::Null,
                            (Value::Array(_), Value::Number(x)) => get(&t.value, &Seg::Idx(x.as_i64().unwrap_or(0))),
                            (Value::Array(_), Value::String(_)) => Value::Null,
                            (v, i) => bail!("cannot index {} with {}", type_name(v), to_text(i)),
                        };
                        out.push(t.with(v));
                    }
                }
                out
            }
            Expr::Iterate(target) => {
                let mut out = Vec::new();
                for t in self.run(target, single)? {
                    match &t.value {
                        Value::Object(m) => out.extend(m.values().map(|v| t.with(v.clone()))),
                        Value::Array(a) => out.extend(a.iter().map(|v| t.with(v.clone()))),
                        Value::Null => {}
                        v => bail!("cannot iterate over {}", type_name(v)),
                    }
                }
                out
            }
            Expr::Try(e) => self.run(e, single).unwrap_or_default(),
            Expr::Literal(v) => vec![n.with(v.clone())],
            Expr::Interp(parts) => {
                let mut results = vec![String::new()];
                for p in parts {
                    match p {
                        StrPart::Text(t) => results.iter_mut().for_each(|r| r.push_str(t)),
                        StrPart::Expr(e) => {
                            let vals = self.values(e, n)?;
                            let mut next = Vec::new();
                            for r in &results {
                                for v in &vals {
                                    next.push(format!("{r}{}", to_text(v)));
                                }
                            }
                            results = next;
                        }
                    }
                }
                results.into_iter().map(|s| n.with(Value::String(s))).collect()
            }
            Expr::Array(inner) => {
                let items = match inner {
                    Some(e) => self.values(e, n)?,
                    None => vec![],
                };
                vec![n.with(Value::Array(items))]
            }
            Expr::Object(entries) => {
                let mut maps = vec![Map::new()];
                for (k, v) in entries {
                    let keys = self.values(k, n)?;
                    let vals = match v {
                        Some(v) => self.values(v, n)?,
                        None => {
                            let mut out = Vec::new();
                            for key in &keys {
                                out.push(get(&n.value, &Seg::Key(to_text(key))));
                            }
                            out
                        }
                    };
                    let mut next = Vec::new();
                    for m in &maps {
                        for key in &keys {
                            let Value::String(key) = key else { bail!("object keys must be strings, got {}", type_name(key)) };
                            for val in &vals {
                                let mut m = m.clone();
                                m.insert(key.clone(), val.clone());
                                next.push(m);
                            }
                        }
                    }
                    maps = next;
                }
                maps.into_iter().map(|m| n.with(Value::Object(m))).collect()
            }
            Expr::Neg(e) => {
                let mut out = Vec::new();
                for v in self.values(e, n)? {
                    out.push(n.with(arith(BinOp::Sub, &Value::from(0), &v)?));
                }
                out
            }
            Expr::And(a, b) => {
                let mut out = Vec::new();
                for l in self.values(a, n)? {
                    if !truthy(&l) {
                        out.push(n.with(Value::Bool(false)));
                        continue;
                    }
                    for r in self.values(b, n)? {
                        out.push(n.with(Value::Bool(truthy(&r))));
                    }
                }
                out
            }
            Expr::Or(a, b) => {
                let mut out = Vec::new();
                for l in self.values(a, n)? {
                    if truthy(&l) {
                        out.push(n.with(Value::Bool(true)));
                        continue;
                    }
                    for r in self.values(b, n)? {
                        out.push(n.with(Value::Bool(truthy(&r))));
                    }
                }
                out
            }
            Expr::Alt(a, b) => {
                let l: Vec<Node> = self.run(a, single).unwrap_or_default().into_iter().filter(|v| truthy(&v.value)).collect();
                if l.is_empty() { self.run(b, single)? } else { l }
            }
            Expr::Var(name) => match self.vars.get(name) {
                Some(v) => v.iter().map(|x| n.with(x.value.clone())).collect(),
                None => bail!("variable ${name} is not defined"),
            },
            Expr::If(cond, then, otherwise) => {
                let mut out = Vec::new();
                for c in self.values(cond, n)? {
                    if truthy(&c) {
                        out.extend(self.run(then, single)?);
                    } else if let Some(e) = otherwise {
                        out.extend(self.run(e, single)?);
                    } else {
                        out.push(n.clone());
                    }
                }
                out
            }
            Expr::Assign(op, lhs, rhs) => self.assign(*op, lhs, rhs, n)?,
            Expr::Call(name, args) => self.call(name, args, n)?,
            Expr::Pipe(..) | Expr::Comma(..) | Expr::Identity | Expr::Binary(..) | Expr::As(..) | Expr::Reduce(..) => {
                self.run(expr, single)?
            }
        })
    }

    fn assign(&mut self, op: AssignOp, lhs: &Expr, rhs: &Expr, n: &Node) -> Result<Vec<Node>> {
        let paths = self.paths(lhs, &n.value)?;
        let mut out = Vec::new();
        match op {
            AssignOp::Set | AssignOp::Arith(_) | AssignOp::Alt => {
                for r in self.values(rhs, n)? {
                    let mut root = n.value.clone();
                    for p in &paths {
                        let old = get_path(&root, p);
                        let new = match op {
                            AssignOp::Arith(bin) => arith(bin, &old, &r)?,
                            AssignOp::Alt if truthy(&old) => old,
                            _ => r.clone(),
                        };
                        set_path(&mut root, p, new)?;
                    }
                    out.push(n.with(root));
                }
            }
            AssignOp::Update => {
                let mut root = n.value.clone();
                for p in &paths {
                    let old = n.with(get_path(&root, p));
                    if let Some(new) = self.run(rhs, std::slice::from_ref(&old))?.into_iter().next() {
                        set_path(&mut root, p, new.value)?;
                    }
                }
                out.push(n.with(root));
            }
        }
        Ok(out)
    }

    /// The paths an expression selects in `root` (for `=`, `|=`, `del`).
    fn paths(&mut self, expr: &Expr, root: &Value) -> Result<Vec<Vec<Seg>>> {
        let mut out = Vec::new();
        self.paths_from(expr, root, vec![], &mut out)?;
        Ok(out)
    }

    fn paths_from(&mut self, expr: &Expr, root: &Value, base: Vec<Seg>, out: &mut Vec<Vec<Seg>>) -> Result<()> {
        let here = get_path(root, &base);
        let node = Node { value: here.clone(), file: 0, doc: 0 };
        match expr {
            Expr::Identity => out.push(base),
            Expr::Recurse => {
                fn walk(v: &Value, p: Vec<Seg>, out: &mut Vec<Vec<Seg>>) {
                    out.push(p.clone());
                    match v {
                        Value::Object(m) => m.iter().for_each(|(k, c)| walk(c, [p.clone(), vec![Seg::Key(k.clone())]].concat(), out)),
                        Value::Array(a) => {
                            a.iter().enumerate().for_each(|(i, c)| walk(c, [p.clone(), vec![Seg::Idx(i as i64)]].concat(), out))
                        }
                        _ => {}
                    }
                }
                walk(&here, base, out);
            }
            Expr::Index(target, idx) => {
                let mut targets = Vec::new();
                self.paths_from(target, root, base, &mut targets)?;
                for t in targets {
                    for i in self.values(idx, &node)? {
                        let seg = match i {
                            Value::String(k) => Seg::Key(k),
                            Value::Number(x) => Seg::Idx(x.as_i64().unwrap_or(0)),
                            other => bail!("cannot use {} as a path key", type_name(&other)),
                        };
                        out.push([t.clone(), vec![seg]].concat());
                    }
                }
            }
            Expr::Iterate(target) => {
                let mut targets = Vec::new();
                self.paths_from(target, root, base, &mut targets)?;
                for t in targets {
                    match get_path(root, &t) {
                        Value::Object(m) => m.keys().for_each(|k| out.push([t.clone(), vec![Seg::Key(k.clone())]].concat())),
                        Value::Array(a) => (0..a.len()).for_each(|i| out.push([t.clone(), vec![Seg::Idx(i as i64)]].concat())),
                        _ => {}
                    }
                }
            }
            Expr::Try(e) => {
                let _ = self.paths_from(e, root, base, out);
            }
            Expr::Pipe(a, b) => {
                let mut mids = Vec::new();
                self.paths_from(a, root, base, &mut mids)?;
                for m in mids {
                    self.paths_from(b, root, m, out)?;
                }
            }
            Expr::Comma(a, b) => {
                self.paths_from(a, root, base.clone(), out)?;
                self.paths_from(b, root, base, out)?;
            }
            Expr::If(cond, then, otherwise) => {
                for c in self.values(cond, &node)? {
                    if truthy(&c) {
                        self.paths_from(then, root, base.clone(), out)?;
                    } else if let Some(e) = otherwise {
                        self.paths_from(e, root, base.clone(), out)?;
                    } else {
                        out.push(base.clone());
                    }
                }
            }
            Expr::Call(name, args) if name == "select" && args.len() == 1 => {
                if self.values(&args[0], &node)?.iter().any(truthy) {
                    out.push(base);
                }
            }
            Expr::Call(name, args) if (name == "first" || name == "last") && args.is_empty() => {
                if let Value::Array(a) = &here
                    && !a.is_empty()
                {
                    let i = if name == "first" { 0 } else { a.len() as i64 - 1 };
                    out.push([base, vec![Seg::Idx(i)]].concat());
                }
            }
            Expr::Call(name, args) if name == "empty" && args.is_empty() => {}
            Expr::Var(_) | Expr::Literal(Value::Null) => {}
            other => bail!("invalid path expression {}", describe(other)),
        }
        Ok(())
    }

    fn call(&mut self, name: &str, args: &[Expr], n: &Node) -> Result<Vec<Node>> {
        let single = std::slice::from_ref(n);
        let v = &n.value;
        let arity = args.len();
        let one = |x: Value| -> Result<Vec<Node>> { Ok(vec![n.with(x)]) };
        match (name, arity) {
            ("empty", 0) => Ok(vec![]),
            ("not", 0) => one(Value::Bool(!truthy(v))),
            ("length", 0) => one(match v {
                Value::Null => Value::from(0),
                Value::String(s) => Value::from(s.chars().count()),
                Value::Array(a) => Value::from(a.len()),
                Value::Object(m) => Value::from(m.len()),
                Value::Number(x) => Value::from(x.as_f64().unwrap_or(0.0).abs()),
                Value::Bool(_) => bail!("boolean has no length"),
            }),
            ("keys", 0) => one(match v {
                Value::Object(m) => Value::Array(m.keys().map(|k| Value::String(k.clone())).collect()),
                Value::Array(a) => Value::Array((0..a.len()).map(Value::from).collect()),
                other => bail!("{} has no keys", type_name(other)),
            }),
            ("type" | "tag", 0) => one(Value::String(type_name(v).to_owned())),
            ("fi" | "file_index" | "fileIndex", 0) => one(Value::from(n.file)),
            ("di" | "document_index" | "documentIndex", 0) => one(Value::from(n.doc)),
            ("select", 1) => Ok(if self.values(&args[0], n)?.iter().any(truthy) { vec![n.clone()] } else { vec![] }),
            ("has", 1) => {
                let mut out = Vec::new();
                for k in self.values(&args[0], n)? {
                    out.push(n.with(Value::Bool(match (v, &k) {
                        (Value::Object(m), Value::String(k)) => m.contains_key(k),
                        (Value::Array(a), Value::Number(i)) => i.as_u64().is_some_and(|i| (i as usize) < a.len()),
                        _ => false,
                    })));
                }
                Ok(out)
            }
            ("to_entries", 0) => one(to_entries(v)?),
            ("from_entries", 0) => one(from_entries(v)?),
            ("with_entries", 1) => {
                let entries = to_entries(v)?;
                let mut mapped = Vec::new();
                for e in entries.as_array().into_iter().flatten() {
                    mapped.extend(self.values(&args[0], &n.with(e.clone()))?);
                }
                one(from_entries(&Value::Array(mapped))?)
            }
            ("map", 1) => {
                let mut items = Vec::new();
                for child in children(v)? {
                    items.extend(self.values(&args[0], &n.with(child))?);
                }
                one(Value::Array(items))
            }
            ("map_values", 1) => {
                let mut root = v.clone();
                match &mut root {
                    Value::Object(m) => {
                        for (_, c) in m.iter_mut() {
                            if let Some(x) = self.values(&args[0], &n.with(c.clone()))?.into_iter().next() {
                                *c = x;
                            }
                        }
                    }
                    Value::Array(a) => {
                        for c in a.iter_mut() {
                            if let Some(x) = self.values(&args[0], &n.with(c.clone()))?.into_iter().next() {
                                *c = x;
                            }
                        }
                    }
                    _ => {}
                }
                one(root)
            }
            ("del", 1) => {
                let mut paths = self.paths(&args[0], v)?;
                // Delete deepest and highest indexes first so earlier deletions do not shift the
                // later ones.
                paths.sort_by(|a, b| cmp_path(b, a));
                let mut root = v.clone();
                for p in paths {
                    delete_path(&mut root, &p);
                }
                one(root)
            }
            ("add", 0) => {
                let mut acc = Value::Null;
                for c in children(v)? {
                    acc = arith(BinOp::Add, &acc, &c)?;
                }
                one(acc)
            }
            ("any", 0) => one(Value::Bool(children(v)?.iter().any(truthy))),
            ("all", 0) => one(Value::Bool(children(v)?.iter().all(truthy))),
            ("first", 0) => Ok(children(v)?.into_iter().next().map(|c| n.with(c)).into_iter().collect()),
            ("last", 0) => Ok(children(v)?.into_iter().last().map(|c| n.with(c)).into_iter().collect()),
            ("first", 1) => Ok(self.run(&args[0], single)?.into_iter().take(1).collect()),
            ("reverse", 0) => one(match v {
                Value::Array(a) => Value::Array(a.iter().rev().cloned().collect()),
                Value::String(s) => Value::String(s.chars().rev().collect()),
                Value::Null => Value::Array(vec![]),
                other => bail!("cannot reverse {}", type_name(other)),
            }),
            ("sort", 0) => {
                let mut a = array(v, "sort")?;
                a.sort_by(compare);
                one(Value::Array(a))
            }
            ("sort_by" | "unique_by" | "group_by", 1) => {
                let a = array(v, name)?;
                let mut keyed = Vec::new();
                for item in a {
                    let key = Value::Array(self.values(&args[0], &n.with(item.clone()))?);
                    keyed.push((key, item));
                }
                keyed.sort_by(|x, y| compare(&x.0, &y.0));
                match name {
                    "sort_by" => one(Value::Array(keyed.into_iter().map(|(_, v)| v).collect())),
                    "unique_by" => {
                        keyed.dedup_by(|x, y| compare(&x.0, &y.0) == Ordering::Equal);
                        one(Value::Array(keyed.into_iter().map(|(_, v)| v).collect()))
                    }
                    _ => {
                        let mut groups: Vec<(Value, Vec<Value>)> = Vec::new();
                        for (k, item) in keyed {
                            match groups.last_mut() {
                                Some((gk, g)) if compare(gk, &k) == Ordering::Equal => g.push(item),
                                _ => groups.push((k, vec![item])),
                            }
                        }
                        one(Value::Array(groups.into_iter().map(|(_, g)| Value::Array(g)).collect()))
                    }
                }
            }
            ("unique", 0) => {
                // yq keeps first occurrences in order.
                let mut out: Vec<Value> = Vec::new();
                for item in array(v, "unique")? {
                    if !out.iter().any(|o| compare(o, &item) == Ordering::Equal) {
                        out.push(item);
                    }
                }
                one(Value::Array(out))
            }
            ("flatten", 0) => {
                fn flat(a: &[Value], out: &mut Vec<Value>) {
                    for x in a {
                        match x {
                            Value::Array(inner) => flat(inner, out),
                            other => out.push(other.clone()),
                        }
                    }
                }
                let mut out = Vec::new();
                flat(&array(v, "flatten")?, &mut out);
                one(Value::Array(out))
            }
            ("min" | "max", 0) => {
                let a = array(v, name)?;
                let pick = if name == "min" { a.into_iter().min_by(compare) } else { a.into_iter().max_by(compare) };
                one(pick.unwrap_or(Value::Null))
            }
            ("contains", 1) => {
                let mut out = Vec::new();
                for x in self.values(&args[0], n)? {
                    out.push(n.with(Value::Bool(contains(v, &x))));
                }
                Ok(out)
            }
            ("tostring" | "to_string", 0) => one(Value::String(to_text(v))),
            ("tonumber" | "to_number", 0) => one(match v {
                Value::Number(_) => v.clone(),
                Value::String(s) => s.trim().parse::<i64>().map(Value::from).or_else(|_| s.trim().parse::<f64>().map(num))?,
                other => bail!("cannot convert {} to a number", type_name(other)),
            }),
            ("tojson" | "to_json", 0) => one(Value::String(serde_json::to_string(v)?)),
            ("ascii_downcase" | "downcase", 0) => one(Value::String(string(v, name)?.to_lowercase())),
            ("ascii_upcase" | "upcase", 0) => one(Value::String(string(v, name)?.to_uppercase())),
            ("trim", 0) => one(Value::String(string(v, name)?.trim().to_owned())),
            ("join", 1) => {
                let mut out = Vec::new();
                for sep in self.values(&args[0], n)? {
                    let parts: Vec<String> = array(v, "join")?.iter().map(to_text).collect();
                    out.push(n.with(Value::String(parts.join(&to_text(&sep)))));
                }
                Ok(out)
            }
            ("split", 1) => {
                let mut out = Vec::new();
                for sep in self.values(&args[0], n)? {
                    let s = string(v, "split")?;
                    let sep = to_text(&sep);
                    out.push(n.with(Value::Array(s.split(sep.as_str()).map(|p| Value::String(p.to_owned())).collect())));
                }
                Ok(out)
            }
            ("startswith" | "endswith" | "test", 1) => {
                let mut out = Vec::new();
                for x in self.values(&args[0], n)? {
                    let s = string(v, name)?;
                    let x = to_text(&x);
                    let r = match name {
                        "startswith" => s.starts_with(&x),
                        "endswith" => s.ends_with(&x),
                        _ => regex::Regex::new(&x).map_err(|e| anyhow!("test: bad regex '{x}': {e}"))?.is_match(&s),
                    };
                    out.push(n.with(Value::Bool(r)));
                }
                Ok(out)
            }
            ("sub", 2) => {
                let pat = self.values(&args[0], n)?;
                let rep = self.values(&args[1], n)?;
                let mut out = Vec::new();
                for p in &pat {
                    for r in &rep {
                        let re = regex::Regex::new(&to_text(p)).map_err(|e| anyhow!("sub: bad regex: {e}"))?;
                        out.push(n.with(Value::String(re.replace_all(&string(v, "sub")?, to_text(r).as_str()).into_owned())));
                    }
                }
                Ok(out)
            }
            ("ltrimstr" | "rtrimstr", 1) => {
                let mut out = Vec::new();
                for x in self.values(&args[0], n)? {
                    let x = to_text(&x);
                    let r = match v {
                        Value::String(s) if name == "ltrimstr" => s.strip_prefix(x.as_str()).unwrap_or(s).to_owned(),
                        Value::String(s) => s.strip_suffix(x.as_str()).unwrap_or(s).to_owned(),
                        _ => return Ok(vec![n.clone()]),
                    };
                    out.push(n.with(Value::String(r)));
                }
                Ok(out)
            }
            ("sort_keys", 1) => {
                let mut root = v.clone();
                for p in self.paths(&args[0], v)? {
                    if let Value::Object(m) = get_path(&root, &p) {
                        let mut entries: Vec<(String, Value)> = m.into_iter().collect();
                        entries.sort_by(|a, b| a.0.cmp(&b.0));
                        set_path(&mut root, &p, Value::Object(entries.into_iter().collect()))?;
                    }
                }
                one(root)
            }
            ("omit", 1) => {
                let keys = self.values(&args[0], n)?;
                let keys: Vec<Value> = keys.into_iter().flat_map(|k| if let Value::Array(a) = k { a } else { vec![k] }).collect();
                one(match v {
                    Value::Object(m) => Value::Object(
                        m.iter()
                            .filter(|(k, _)| !keys.contains(&Value::String((*k).clone())))
                            .map(|(k, x)| (k.clone(), x.clone()))
                            .collect(),
                    ),
                    other => other.clone(),
                })
            }
            ("pick", 1) => {
                let keys = self.values(&args[0], n)?;
                let keys: Vec<Value> = keys.into_iter().flat_map(|k| if let Value::Array(a) = k { a } else { vec![k] }).collect();
                one(match v {
                    Value::Object(m) => Value::Object(
                        keys.iter().filter_map(|k| k.as_str()).filter_map(|k| m.get(k).map(|x| (k.to_owned(), x.clone()))).collect(),
                    ),
                    other => other.clone(),
                })
            }
            ("error", 1) => {
                let msg = self.values(&args[0], n)?.first().map(to_text).unwrap_or_default();
                bail!("{msg}")
            }
            ("error", 0) => bail!("{}", to_text(v)),
            ("env" | "strenv", _) | ("load" | "load_str", _) => {
                bail!("'{name}' reads outside the build's inputs, which ocib's yq does not allow (pass values through srcs instead)")
            }
            _ => bail!("unknown or unsupported function '{name}/{arity}'"),
        }
    }
}

fn describe(e: &Expr) -> String {
    match e {
        Expr::Call(n, a) => format!("'{n}/{}'", a.len()),
        Expr::Literal(v) => format!("literal {v}"),
        other => format!("{other:?}").chars().take(60).collect(),
    }
}

fn cmp_path(a: &[Seg], b: &[Seg]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        let o = match (x, y) {
            (Seg::Idx(p), Seg::Idx(q)) => p.cmp(q),
            (Seg::Key(p), Seg::Key(q)) => p.cmp(q),
            (Seg::Idx(_), Seg::Key(_)) => Ordering::Less,
            (Seg::Key(_), Seg::Idx(_)) => Ordering::Greater,
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    a.len().cmp(&b.len())
}

fn get_path(root: &Value, path: &[Seg]) -> Value {
    let mut cur = root.clone();
    for seg in path {
        cur = get(&cur, seg);
    }
    cur
}

fn recurse(v: &Value, f: &mut dyn FnMut(&Value)) {
    f(v);
    match v {
        Value::Object(m) => m.values().for_each(|c| recurse(c, f)),
        Value::Array(a) => a.iter().for_each(|c| recurse(c, f)),
        _ => {}
    }
}

fn children(v: &Value) -> Result<Vec<Value>> {
    Ok(match v {
        Value::Object(m) => m.values().cloned().collect(),
        Value::Array(a) => a.clone(),
        Value::Null => vec![],
        other => bail!("cannot iterate over {}", type_name(other)),
    })
}

fn array(v: &Value, what: &str) -> Result<Vec<Value>> {
    match v {
        Value::Array(a) => Ok(a.clone()),
        Value::Null => Ok(vec![]),
        other => bail!("{what} needs an array, got {}", type_name(other)),
    }
}

fn string(v: &Value, what: &str) -> Result<String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        other => bail!("{what} needs a string, got {}", type_name(other)),
    }
}

fn contains(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => y.iter().all(|(k, v)| x.get(k).is_some_and(|xv| contains(xv, v))),
        (Value::Array(x), Value::Array(y)) => y.iter().all(|v| x.iter().any(|xv| contains(xv, v))),
        (Value::String(x), Value::String(y)) => x.contains(y.as_str()),
        _ => a == b,
    }
}

fn to_entries(v: &Value) -> Result<Value> {
    Ok(Value::Array(match v {
        Value::Object(m) => m.iter().map(|(k, v)| serde_json::json!({"key": k, "value": v})).collect(),
        Value::Array(a) => a.iter().enumerate().map(|(i, v)| serde_json::json!({"key": i, "value": v})).collect(),
        Value::Null => vec![],
        other => bail!("to_entries needs a map or an array, got {}", type_name(other)),
    }))
}

fn from_entries(v: &Value) -> Result<Value> {
    let mut m = Map::new();
    for e in array(v, "from_entries")? {
        let key = ["key", "k", "name", "Name", "Key", "K"].iter().find_map(|k| e.get(*k)).cloned().unwrap_or(Value::Null);
        let value = ["value", "v", "Value", "V"].iter().find_map(|k| e.get(*k)).cloned().unwrap_or(Value::Null);
        let key = match key {
            Value::String(s) => s,
            Value::Null => bail!("from_entries: an entry has no key"),
            other => to_text(&other),
        };
        m.insert(key, value);
    }
    Ok(Value::Object(m))
}
