//! Evaluating a query expression to a set of targets, loading only the packages it needs.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use regex::Regex;

use super::QueryError;
use super::parse::{Arg, Expr, SetOp};
use crate::graph::label::{Label, PackageId};
use crate::graph::pattern::{Selection, TargetPattern};
use crate::graph::{AttrValue, Package, SelectPart, TargetRef};
use crate::load::Loader;

pub type TargetSet = BTreeSet<Label>;

/// The variables `let` has bound, innermost first. A list linked through the evaluation's
/// stack frames: entering a `let` costs O(1), where copying a map of every outer binding made
/// 1,000 nested `let`s take seconds and gigabytes.
enum Scope<'s> {
    Empty,
    Bind { name: &'s str, value: &'s TargetSet, parent: &'s Scope<'s> },
}

impl Scope<'_> {
    fn get(&self, wanted: &str) -> Option<&TargetSet> {
        let mut scope = self;
        loop {
            match scope {
                Scope::Empty => return None,
                Scope::Bind { name, value, .. } if *name == wanted => return Some(value),
                Scope::Bind { parent, .. } => scope = parent,
            }
        }
    }
}

pub struct QueryEngine<'a> {
    pub loader: &'a Loader,
    pub cwd: PackageId,
    pub keep_going: bool,
    /// Errors skipped under `--keep_going`.
    pub errors: Mutex<Vec<String>>,
}

impl<'a> QueryEngine<'a> {
    pub fn new(loader: &'a Loader, cwd: PackageId, keep_going: bool) -> Self {
        QueryEngine { loader, cwd, keep_going, errors: Mutex::default() }
    }

    fn skip_or_fail(&self, message: String) -> Result<(), QueryError> {
        if self.keep_going {
            let mut errors = self.errors.lock().unwrap_or_else(|e| e.into_inner());
            if !errors.contains(&message) {
                errors.push(message);
            }
            Ok(())
        } else {
            Err(QueryError::eval(message))
        }
    }

    /// A package; under `--keep_going`, a package whose evaluation failed gives the targets
    /// created before the error (the error is recorded), as Bazel's query does.
    pub fn package(&self, id: &PackageId) -> Result<Arc<Package>, QueryError> {
        match self.loader.package(id) {
            Ok(p) => Ok(p),
            Err(e) => match &e.partial {
                Some(p) if self.keep_going => {
                    self.skip_or_fail(e.render())?;
                    Ok(p.clone())
                }
                _ => Err(QueryError::eval(e.render())),
            },
        }
    }

    /// Loads packages in parallel; failures are errors or, under `--keep_going`, skipped
    /// (keeping what a failed package defined before its error).
    fn packages(&self, ids: &[PackageId]) -> Result<Vec<Arc<Package>>, QueryError> {
        let mut out = Vec::new();
        for result in self.loader.packages(ids) {
            match result {
                Ok(p) => out.push(p),
                Err(e) => {
                    self.skip_or_fail(e.render())?;
                    out.extend(e.partial);
                }
            }
        }
        Ok(out)
    }

    pub fn eval(&self, expr: &Expr) -> Result<TargetSet, QueryError> {
        self.eval_in(expr, &Scope::Empty)
    }

    fn eval_in(&self, expr: &Expr, vars: &Scope) -> Result<TargetSet, QueryError> {
        match expr {
            Expr::Pattern(p) => self.pattern(p),
            Expr::Var(v) => vars.get(v).cloned().ok_or_else(|| QueryError::eval(format!("undefined variable '{v}'"))),
            Expr::Set(words) => {
                let mut out = TargetSet::new();
                for w in words {
                    out.extend(self.pattern(w)?);
                }
                Ok(out)
            }
            Expr::Let { name, value, body } => {
                let value = self.eval_in(value, vars)?;
                self.eval_in(body, &Scope::Bind { name, value: &value, parent: vars })
            }
            Expr::Binary { op, left, right } => {
                let l = self.eval_in(left, vars)?;
                let r = self.eval_in(right, vars)?;
                Ok(match op {
                    SetOp::Union => l.union(&r).cloned().collect(),
                    SetOp::Except => l.difference(&r).cloned().collect(),
                    SetOp::Intersect => l.intersection(&r).cloned().collect(),
                })
            }
            Expr::Call { func, args } => self.call(func, args, vars),
        }
    }

    /// The targets a pattern names.
    pub fn pattern(&self, text: &str) -> Result<TargetSet, QueryError> {
        let ws = self.loader.workspace();
        let pattern = TargetPattern::parse(text, &self.cwd, &|r| ws.map_repo(r)).map_err(|e| QueryError::eval(e.to_string()))?;
        match pattern {
            TargetPattern::Target(label) => self.single(&label),
            TargetPattern::Path { repo, path } => {
                let label = TargetPattern::resolve_path(&repo, &path, &|p| self.loader.is_package(p))
                    .ok_or_else(|| QueryError::eval(format!("no such target '{path}': no package contains it")))?;
                self.single(&label)
            }
            TargetPattern::Package { package, selection } => {
                let pkg = self.package(&package)?;
                Ok(select_targets(&pkg, selection))
            }
            TargetPattern::Recursive { prefix, selection } => {
                let ids = self.loader.packages_under(&prefix).map_err(|e| QueryError::eval(format!("{e:#}")))?;
                if ids.is_empty() {
                    return Err(QueryError::eval(format!("no targets found beneath '{}'", prefix.package)));
                }
                // Collected then built in one go: a BTreeSet bulk-builds from a sorted sequence far
                // faster than it takes ~10^4 single inserts.
                let mut labels = Vec::new();
                for pkg in self.packages(&ids)? {
                    labels.extend(select_targets(&pkg, selection));
                }
                Ok(labels.into_iter().collect())
            }
        }
    }

    fn single(&self, label: &Label) -> Result<TargetSet, QueryError> {
        let pkg = self.package(&label.package_id())?;
        if pkg.target(&label.name).is_some() {
            return Ok(TargetSet::from([label.clone()]));
        }
        Err(QueryError::eval(no_such_target(self.loader, &pkg, label)))
    }

    /// The direct dependencies of each target (rules: label attributes; generated files:
    /// their rule; source files: none), loading packages a level at a time in parallel.
    fn direct_deps(&self, labels: &[Label]) -> Result<BTreeMap<Label, Vec<Label>>, QueryError> {
        let ids: Vec<PackageId> = labels.iter().map(Label::package_id).collect::<BTreeSet<_>>().into_iter().collect();
        let packages: HashMap<PackageId, Arc<Package>> = self.packages(&ids)?.into_iter().map(|p| (p.id.clone(), p)).collect();
        let mut out = BTreeMap::new();
        for label in labels {
            let Some(pkg) = packages.get(&label.package_id()) else { continue };
            let deps = match pkg.target(&label.name) {
                Some(TargetRef::Rule(r)) if r.kind == "test_suite" => {
                    let mut deps: Vec<Label> = r.deps().into_iter().collect();
                    deps.extend(implicit_tests(pkg, r));
                    deps.sort();
                    deps.dedup();
                    deps
                }
                Some(TargetRef::Rule(r)) => r.deps().into_iter().collect(),
                Some(TargetRef::Generated { rule, .. }) => vec![rule.label.clone()],
                Some(TargetRef::Source { .. }) => vec![],
                None => {
                    self.skip_or_fail(no_such_target(self.loader, pkg, label))?;
                    vec![]
                }
            };
            out.insert(label.clone(), deps);
        }
        Ok(out)
    }

    /// For each target of `labels` (sorted, without repeats), the positions in `labels` of
    /// its direct dependencies, ascending. Indices rather than labels, and in parallel: output
    /// ordering runs this over every target of `query //...`. Sorted labels keep each
    /// package's targets together, so a dependency is looked up by package (one hash of two
    /// strings) and then by name within that package's run only, not by comparing whole labels
    /// across the result (that search was a fifth of a 5,000-package `query //...`).
    pub fn dependency_positions(&self, labels: &[Label]) -> Vec<Vec<usize>> {
        use rayon::prelude::*;
        // The runs of one package: (package, first position, end).
        let mut runs: Vec<(PackageId, usize, usize)> = Vec::new();
        for (i, l) in labels.iter().enumerate() {
            match runs.last_mut() {
                Some((id, _, end)) if id.repo == l.repo && id.package == l.package => *end = i + 1,
                _ => runs.push((l.package_id(), i, i + 1)),
            }
        }
        let run_of: HashMap<(&str, &str), usize> =
            runs.iter().enumerate().map(|(r, (id, _, _))| ((id.repo.as_str(), id.package.as_str()), r)).collect();
        let ids: Vec<PackageId> = runs.iter().map(|(id, _, _)| id.clone()).collect();
        // Every package here already gave targets to the result; one that fails to load now
        // (a `buildfiles` label's package, say) just has no edges.
        let packages: Vec<Option<Arc<Package>>> = self
            .loader
            .packages(&ids)
            .into_iter()
            .map(|p| match p {
                Ok(p) => Some(p),
                Err(e) => e.partial,
            })
            .collect();
        let position = |l: &Label| {
            let &r = run_of.get(&(l.repo.as_str(), l.package.as_str()))?;
            let (_, start, end) = &runs[r];
            labels[*start..*end].binary_search_by(|c| c.name.as_str().cmp(l.name.as_str())).ok().map(|i| start + i)
        };
        runs.par_iter()
            .zip(packages.par_iter())
            .flat_map_iter(|((_, start, end), pkg)| {
                labels[*start..*end].iter().map(move |label| {
                    let mut out = Vec::new();
                    let Some(pkg) = pkg else { return out };
                    match pkg.target(&label.name) {
                        Some(TargetRef::Rule(r)) => {
                            r.for_each_dep(|d| out.extend(position(d)));
                            if r.kind == "test_suite" {
                                out.extend(implicit_tests(pkg, r).filter_map(|t| position(&t)));
                            }
                        }
                        Some(TargetRef::Generated { rule, .. }) => out.extend(position(&rule.label)),
                        Some(TargetRef::Source { .. }) | None => {}
                    }
                    out.sort_unstable();
                    out.dedup();
                    out
                })
            })
            .collect()
    }

    /// The transitive closure of `roots` (depth-limited), with the edges traversed.
    fn closure(&self, roots: &TargetSet, depth: Option<i64>) -> Result<(TargetSet, BTreeMap<Label, Vec<Label>>), QueryError> {
        let mut seen = roots.clone();
        let mut edges = BTreeMap::new();
        let mut frontier: Vec<Label> = roots.iter().cloned().collect();
        let mut level = 0;
        while !frontier.is_empty() && depth.is_none_or(|d| level < d) {
            let deps = self.direct_deps(&frontier)?;
            let mut next = Vec::new();
            for (from, tos) in deps {
                for to in &tos {
                    if seen.insert(to.clone()) {
                        next.push(to.clone());
                    }
                }
                edges.insert(from, tos);
            }
            frontier = next;
            level += 1;
        }
        Ok((seen, edges))
    }

    fn call(&self, func: &str, args: &[Arg], vars: &Scope) -> Result<TargetSet, QueryError> {
        let expr = |i: usize| -> Result<TargetSet, QueryError> {
            match args.get(i) {
                Some(Arg::Expr(e)) => self.eval_in(e, vars),
                _ => Err(QueryError::syntax(format!("{func}(): argument {} must be an expression", i + 1))),
            }
        };
        let word = |i: usize| -> Result<&str, QueryError> {
            match args.get(i) {
                Some(Arg::Word(w)) => Ok(w.as_str()),
                _ => Err(QueryError::syntax(format!("{func}(): argument {} must be a word", i + 1))),
            }
        };
        let depth = |i: usize| match args.get(i) {
            Some(Arg::Int(n)) => Some(*n),
            _ => None,
        };
        let regex =
            |pattern: &str| Regex::new(pattern).map_err(|e| QueryError::eval(format!("illegal regular expression '{pattern}': {e}")));
        match func {
            "deps" => Ok(self.closure(&expr(0)?, depth(1))?.0),
            "rdeps" => {
                let universe = self.closure(&expr(0)?, None)?.1;
                let targets = expr(1)?;
                let mut reverse: BTreeMap<&Label, Vec<&Label>> = BTreeMap::new();
                for (from, tos) in &universe {
                    for to in tos {
                        reverse.entry(to).or_default().push(from);
                    }
                }
                let mut seen: TargetSet =
                    targets.iter().filter(|t| universe.contains_key(*t) || reverse.contains_key(t)).cloned().collect();
                let mut queue: VecDeque<(Label, i64)> = seen.iter().map(|l| (l.clone(), 0)).collect();
                let max = depth(2);
                while let Some((label, d)) = queue.pop_front() {
                    if max.is_some_and(|m| d >= m) {
                        continue;
                    }
                    for from in reverse.get(&label).into_iter().flatten() {
                        if seen.insert((*from).clone()) {
                            queue.push_back(((*from).clone(), d + 1));
                        }
                    }
                }
                Ok(seen)
            }
            "kind" => {
                let re = regex(word(0)?)?;
                self.filter_targets(expr(1)?, |t| re.is_match(&t.kind()))
            }
            "filter" => {
                let re = regex(word(0)?)?;
                Ok(expr(1)?.into_iter().filter(|l| re.is_match(&l.to_string())).collect())
            }
            "attr" => {
                let name = word(0)?.to_owned();
                let re = regex(word(1)?)?;
                self.filter_targets(expr(2)?, |t| match t {
                    TargetRef::Rule(r) => attr_strings(r, &name).iter().any(|s| re.is_match(s)),
                    _ => false,
                })
            }
            "labels" => {
                let name = word(0)?;
                let mut out = TargetSet::new();
                for label in expr(1)? {
                    let pkg = self.package(&label.package_id())?;
                    if let Some(TargetRef::Rule(r)) = pkg.target(&label.name)
                        && let Some(v) = r.attrs.get(name)
                    {
                        out.extend(v.labels().into_iter().cloned());
                    }
                }
                Ok(out)
            }
            "tests" => self.tests(expr(0)?),
            "somepath" | "allpaths" => {
                let from = expr(0)?;
                let to = expr(1)?;
                let (_, edges) = self.closure(&from, None)?;
                let mut reverse: BTreeMap<&Label, Vec<&Label>> = BTreeMap::new();
                for (f, tos) in &edges {
                    for t in tos {
                        reverse.entry(t).or_default().push(f);
                    }
                }
                // Nodes that reach `to`, walking backwards from it.
                let mut reaches: TargetSet = to.iter().filter(|t| from.contains(*t) || reverse.contains_key(t)).cloned().collect();
                let mut queue: Vec<Label> = reaches.iter().cloned().collect();
                while let Some(l) = queue.pop() {
                    for f in reverse.get(&l).into_iter().flatten() {
                        if reaches.insert((*f).clone()) {
                            queue.push((*f).clone());
                        }
                    }
                }
                if func == "allpaths" {
                    let forward = self.closure(&from, None)?.0;
                    return Ok(forward.intersection(&reaches).cloned().collect());
                }
                // One path: from a start that reaches the end, always step to a dep that does.
                let Some(start) = from.iter().find(|s| reaches.contains(*s)) else { return Ok(TargetSet::new()) };
                let mut path = TargetSet::from([start.clone()]);
                let mut cur = start.clone();
                while !to.contains(&cur) {
                    let Some(next) = edges.get(&cur).and_then(|tos| tos.iter().find(|t| reaches.contains(*t) && !path.contains(*t))) else {
                        break;
                    };
                    path.insert(next.clone());
                    cur = next.clone();
                }
                Ok(path)
            }
            "siblings" => {
                let ids: BTreeSet<PackageId> = expr(0)?.iter().map(Label::package_id).collect();
                let mut out = TargetSet::new();
                for pkg in self.packages(&ids.into_iter().collect::<Vec<_>>())? {
                    out.extend(select_targets(&pkg, Selection::AllTargets));
                }
                Ok(out)
            }
            "buildfiles" | "loadfiles" => {
                let ids: BTreeSet<PackageId> = expr(0)?.iter().map(Label::package_id).collect();
                let mut out = TargetSet::new();
                for pkg in self.packages(&ids.into_iter().collect::<Vec<_>>())? {
                    out.extend(pkg.loads.iter().cloned());
                    if func == "buildfiles" {
                        out.insert(pkg.id.label(pkg.build_file_name.clone()));
                        for bzl in &pkg.loads {
                            if let Ok(p) = self.loader.package(&bzl.package_id()) {
                                out.insert(p.id.label(p.build_file_name.clone()));
                            }
                        }
                    }
                }
                Ok(out)
            }
            "some" => {
                let set = expr(0)?;
                let first = set.into_iter().next().ok_or_else(|| QueryError::eval("argument set of some() is empty".into()))?;
                Ok(TargetSet::from([first]))
            }
            "same_pkg_direct_rdeps" => {
                let targets = expr(0)?;
                let mut out = TargetSet::new();
                let ids: BTreeSet<PackageId> = targets.iter().map(Label::package_id).collect();
                for pkg in self.packages(&ids.into_iter().collect::<Vec<_>>())? {
                    for rule in pkg.rules.values() {
                        if rule.deps().iter().any(|d| targets.contains(d)) {
                            out.insert(rule.label.clone());
                        }
                    }
                }
                Ok(out)
            }
            // Bazel's `visible(scope, input)`: the targets of `input` visible to every target
            // of `scope`, by the same rules analysis enforces (`graph::visibility`).
            "visible" => {
                let scope = expr(0)?;
                let input = expr(1)?;
                let froms: BTreeSet<PackageId> = scope.iter().map(Label::package_id).collect();
                let mut out = TargetSet::new();
                let mut load = |id: &PackageId| self.package(id);
                for label in input {
                    let pkg = self.package(&label.package_id())?;
                    let Some(target) = pkg.target(&label.name) else { continue };
                    let mut all = true;
                    for from in &froms {
                        if !crate::graph::visibility::is_visible(from, &pkg, &target, &mut load)? {
                            all = false;
                            break;
                        }
                    }
                    if all {
                        out.insert(label);
                    }
                }
                Ok(out)
            }
            other => Err(QueryError::syntax(format!("unknown function '{other}'"))),
        }
    }

    fn filter_targets(&self, set: TargetSet, keep: impl Fn(&TargetRef) -> bool) -> Result<TargetSet, QueryError> {
        let mut out = TargetSet::new();
        // The set is sorted, so a package's targets come together: it is fetched once per
        // run of them, not once per target.
        let mut current: Option<(PackageId, Arc<Package>)> = None;
        for label in set {
            let pkg = match &current {
                Some((id, pkg)) if id.repo == label.repo && id.package == label.package => pkg.clone(),
                _ => {
                    let id = label.package_id();
                    let pkg = self.package(&id)?;
                    current = Some((id, pkg.clone()));
                    pkg
                }
            };
            if pkg.target(&label.name).is_some_and(|t| keep(&t)) {
                out.insert(label);
            }
        }
        Ok(out)
    }

    /// `tests(x)`: test rules in x, with `test_suite`s expanded.
    fn tests(&self, set: TargetSet) -> Result<TargetSet, QueryError> {
        let mut out = TargetSet::new();
        let mut queue: Vec<Label> = set.into_iter().collect();
        let mut seen = TargetSet::new();
        while let Some(label) = queue.pop() {
            if !seen.insert(label.clone()) {
                continue;
            }
            let pkg = self.package(&label.package_id())?;
            let Some(TargetRef::Rule(rule)) = pkg.target(&label.name) else { continue };
            if rule.is_test() {
                out.insert(label);
            } else if rule.kind == "test_suite" {
                match rule.attrs.get("tests") {
                    Some(AttrValue::LabelList(tests)) if !tests.is_empty() => queue.extend(tests.iter().cloned()),
                    _ => out.extend(implicit_tests(&pkg, rule)),
                }
            }
        }
        Ok(out)
    }
}

/// The tests a `test_suite` without `tests` stands for: every test rule of its package not
/// tagged `manual` (Bazel's `$implicit_tests` attribute, `_implicit_tests` in `--output=build`;
/// a dependency edge, so `deps`, `rdeps`, `somepath` and `tests()` all see it).
pub fn implicit_tests<'p>(pkg: &'p Package, suite: &crate::graph::Rule) -> impl Iterator<Item = Label> + 'p {
    let explicit = matches!(suite.attrs.get("tests"), Some(AttrValue::LabelList(tests)) if !tests.is_empty());
    pkg.rules.values().filter(move |r| !explicit && r.is_test() && !r.tags().iter().any(|t| t == "manual")).map(|r| r.label.clone())
}

/// Whether evaluating `expr` reads nothing of a rule but its label, kind, dependencies and
/// `tags`/`tests` (the target graph): then packages from the load cache need only that much
/// decoded ([`crate::load::Loader::with_graph_only_packages`]). Functions that read other
/// attributes, locations or files (`attr`, `labels`, `tests`, `buildfiles`, `visible`, ...)
/// answer false.
pub fn reads_only_the_target_graph(expr: &Expr) -> bool {
    match expr {
        Expr::Pattern(_) | Expr::Var(_) | Expr::Set(_) => true,
        Expr::Let { value, body, .. } => reads_only_the_target_graph(value) && reads_only_the_target_graph(body),
        Expr::Binary { left, right, .. } => reads_only_the_target_graph(left) && reads_only_the_target_graph(right),
        Expr::Call { func, args } => {
            matches!(func.as_str(), "deps" | "rdeps" | "kind" | "filter" | "somepath" | "allpaths" | "some" | "siblings")
                && args.iter().all(|a| match a {
                    Arg::Expr(e) => reads_only_the_target_graph(e),
                    Arg::Word(_) | Arg::Int(_) => true,
                })
        }
    }
}

fn select_targets(pkg: &Package, selection: Selection) -> TargetSet {
    match selection {
        Selection::Rules => pkg.rules.values().map(|r| r.label.clone()).collect(),
        Selection::AllTargets => pkg.all_targets().iter().map(|t| t.label().clone()).collect(),
    }
}

/// Bazel's "no such target" message, with the `exports_files` hint when a source file of that
/// name exists in the package's directory.
pub fn no_such_target(loader: &Loader, pkg: &Package, label: &Label) -> String {
    pkg.no_such_target(label, loader.workspace().package_dir(&pkg.id).as_deref())
}

/// The strings `attr(name, regex, ...)` matches: the value (or default) as Bazel prints it;
/// for a `select()`, each value the concatenation can take. An unset label matches nothing.
fn attr_strings(rule: &crate::graph::Rule, name: &str) -> Vec<String> {
    if let Some(g) = &rule.generator {
        match name {
            "generator_name" => return vec![g.name.clone()],
            "generator_function" => return vec![g.function.clone()],
            "generator_location" => return vec![g.location.clone()],
            _ => {}
        }
    }
    let Some(value) = rule.attr(name) else { return vec![] };
    let mut out = Vec::new();
    for v in possible_values(&value) {
        if !matches!(v, AttrValue::None) {
            out.push(v.query_string());
        }
    }
    out
}

/// Every value a (possibly `select()`-containing) attribute can take, bounded.
fn possible_values(value: &AttrValue) -> Vec<AttrValue> {
    let AttrValue::Select(parts) = value else { return vec![value.clone()] };
    let mut acc: Vec<Option<AttrValue>> = vec![None];
    for part in parts {
        let options: Vec<&AttrValue> = match part {
            SelectPart::Plain(v) => vec![v],
            SelectPart::Select { branches, .. } => branches.iter().map(|(_, v)| v).collect(),
        };
        let mut next = Vec::new();
        for prefix in &acc {
            for opt in &options {
                next.push(Some(match prefix {
                    None => (*opt).clone(),
                    Some(p) => concat(p, opt),
                }));
                if next.len() >= 256 {
                    break;
                }
            }
        }
        acc = next;
    }
    acc.into_iter().flatten().collect()
}

fn concat(a: &AttrValue, b: &AttrValue) -> AttrValue {
    use AttrValue::*;
    match (a, b) {
        (StringList(x), StringList(y)) => StringList(x.iter().chain(y).cloned().collect()),
        (LabelList(x), LabelList(y)) => LabelList(x.iter().chain(y).cloned().collect()),
        (IntList(x), IntList(y)) => IntList(x.iter().chain(y).cloned().collect()),
        (String(x), String(y)) => String(format!("{x}{y}")),
        (StringDict(x), StringDict(y)) => StringDict(x.iter().chain(y).cloned().collect()),
        (_, other) => other.clone(),
    }
}
