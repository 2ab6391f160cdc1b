//! Facts read from a BUILD file's syntax tree before it runs: for each top-level call, where
//! its `(` is (Bazel reports rule locations there) and its literal `name = "..."` (the
//! generator name of every rule a macro call creates).

use std::collections::HashMap;

use starlark::syntax::AstModule;
use starlark::syntax::ast::{ArgumentP, AssignTargetP, AstAssignTargetP, AstExpr, AstLiteral, AstNoPayload, AstStmt, BinOp, ExprP, StmtP};

/// A top-level call, keyed by the 0-based line its expression starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallSite {
    /// 1-based line and column of the call's `(`.
    pub paren_line: u32,
    pub paren_column: u32,
    pub name: Option<String>,
}

pub fn top_level_call_names(ast: &AstModule) -> HashMap<u32, CallSite> {
    let mut out = HashMap::new();
    visit_stmt(ast, ast.statement(), &mut out);
    out
}

fn visit_stmt(ast: &AstModule, stmt: &AstStmt, out: &mut HashMap<u32, CallSite>) {
    match &stmt.node {
        StmtP::Statements(stmts) => stmts.iter().for_each(|s| visit_stmt(ast, s, out)),
        StmtP::Expression(e) => visit_expr(ast, e, out),
        _ => {}
    }
}

fn visit_expr(ast: &AstModule, expr: &AstExpr, out: &mut HashMap<u32, CallSite>) {
    match &expr.node {
        ExprP::Call(callee, args) => {
            let begin = ast.file_span(expr.span).resolve_span().begin;
            let paren = ast.file_span(callee.span).resolve_span().end;
            let name = args.args.iter().find_map(|a| match &a.node {
                ArgumentP::Named(n, v) if n.node == "name" => match &v.node {
                    ExprP::Literal(AstLiteral::String(s)) => Some(s.node.clone()),
                    _ => None,
                },
                _ => None,
            });
            out.entry(begin.line as u32).or_insert(CallSite {
                paren_line: paren.line as u32 + 1,
                paren_column: paren.column as u32 + 1,
                name,
            });
        }
        // `[macro(name = n) for n in NAMES]` at the top level.
        ExprP::ListComprehension(e, _, _) => visit_expr(ast, e, out),
        _ => {}
    }
}

/// The literal `name` of a top-level `workspace(name = "...")` call, if any. WORKSPACE's
/// `load()`s run before its statements, yet Bazel resolves `@<that name>//...` in them to the
/// main repository (`workspace()` must come first, so the name is known before any load).
pub fn workspace_name(ast: &AstModule) -> Option<String> {
    let stmts = match &ast.statement().node {
        StmtP::Statements(stmts) => stmts.iter().collect(),
        _ => vec![ast.statement()],
    };
    stmts.into_iter().find_map(|stmt| {
        let StmtP::Expression(expr) = &stmt.node else { return None };
        let ExprP::Call(callee, args) = &expr.node else { return None };
        if !matches!(&callee.node, ExprP::Identifier(id) if id.node.ident == "workspace") {
            return None;
        }
        args.args.iter().find_map(|a| match &a.node {
            ArgumentP::Named(n, v) if n.node == "name" => match &v.node {
                ExprP::Literal(AstLiteral::String(s)) => Some(s.node.clone()),
                _ => None,
            },
            _ => None,
        })
    })
}

/// The names a module binds at top level: `load()`ed local names, assigned names (also in
/// tuples) and `def`s.
pub fn top_level_names(ast: &AstModule) -> Vec<String> {
    fn targets(target: &AstAssignTargetP<AstNoPayload>, out: &mut std::collections::BTreeSet<String>) {
        match &target.node {
            AssignTargetP::Identifier(id) => {
                out.insert(id.node.ident.clone());
            }
            AssignTargetP::Tuple(items) => items.iter().for_each(|t| targets(t, out)),
            _ => {}
        }
    }
    let mut names: std::collections::BTreeSet<String> =
        ast.loads().iter().flat_map(|l| l.symbols.keys().map(|k| (*k).to_owned())).collect();
    // A module of one statement is that statement, not a list of one.
    let stmts = match &ast.statement().node {
        StmtP::Statements(stmts) => stmts.iter().collect(),
        _ => vec![ast.statement()],
    };
    for stmt in stmts {
        match &stmt.node {
            StmtP::Assign(assign) => targets(&assign.lhs, &mut names),
            StmtP::AssignModify(lhs, _, _) => targets(lhs, &mut names),
            StmtP::Def(def) => {
                names.insert(def.name.node.ident.clone());
            }
            _ => {}
        }
    }
    names.into_iter().collect()
}

/// The identifiers a file merges into a dict: the right operands of `|` whose left operand
/// is a dict (a literal, a comprehension, or such a `|` itself), e.g. `TOOLS` in
/// `{"uv": "@uv"} | TOOLS`. A stub cannot be merged into a dict (starlark-rust's dict `|`
/// takes only dicts), so a stubbed symbol used so is an empty dict instead.
pub fn dict_union_operands(ast: &AstModule) -> std::collections::BTreeSet<String> {
    fn is_dict(e: &AstExpr) -> bool {
        match &e.node {
            ExprP::Dict(_) | ExprP::DictComprehension(..) => true,
            ExprP::Op(lhs, BinOp::BitOr, _) => is_dict(lhs),
            _ => false,
        }
    }
    fn visit(e: &AstExpr, out: &mut std::collections::BTreeSet<String>) {
        if let ExprP::Op(lhs, BinOp::BitOr, rhs) = &e.node
            && is_dict(lhs)
            && let ExprP::Identifier(id) = &rhs.node
        {
            out.insert(id.node.ident.clone());
        }
        e.node.visit_expr(|child| visit(child, out));
    }
    let mut out = std::collections::BTreeSet::new();
    ast.statement().node.visit_expr(|e| visit(e, &mut out));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> AstModule {
        AstModule::parse("t.bzl", text.to_owned(), &crate::load::bzl_dialect()).unwrap()
    }

    #[test]
    fn top_level_names_include_loads_private_names_and_single_statements() {
        let ast = parse("load(\"//a:b.bzl\", \"x\", y = \"z\")\n_p = 1\na, b = 1, 2\nc += [1]\ndef f():\n    inner = 1\n");
        assert_eq!(top_level_names(&ast), ["_p", "a", "b", "c", "f", "x", "y"]);
        assert_eq!(top_level_names(&parse("G = 1\n")), ["G"]);
        assert_eq!(workspace_name(&parse("workspace(name = \"w\")\n")).as_deref(), Some("w"));
    }

    #[test]
    fn dict_union_operands_are_right_operands_of_a_dict() {
        let ast =
            parse("X = {\"a\": 1} | A | B\ndef f():\n    return dict(x = 1) | C\nY = [1] + D\nZ = 1 | E\nW = {k: 1 for k in []} | F\n");
        assert_eq!(dict_union_operands(&ast).into_iter().collect::<Vec<_>>(), ["A", "B", "F"]);
    }
}
