//! The binary form of one evaluated [`Package`] in the load cache: a string table, then the
//! package's fields with strings as indices into it. Hand-rolled (varints, tag bytes) rather
//! than serde + a format crate: the graph types hold schemas (`Arc<RuleSchema>`, shared with
//! the rule registry) that must be re-linked, not copied, and decoding 5,000 packages is on
//! the path of every repeated query, so it borrows strings from the buffer until the last
//! moment. A payload is self-contained, so an untouched package is carried to the next cache
//! file as bytes.
//!
//! Decoding never trusts the bytes: every length and index is checked, nesting is bounded,
//! and any inconsistency is a [`Corrupt`] error (the caller then evaluates the package).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::graph::label::{Label, PackageId};
use crate::graph::schema::RuleSchema;
use crate::graph::{AttrValue, Generator, Location, Package, Raw, Rule, SelectPart, StackFrame};

/// A payload that does not decode.
#[derive(Debug)]
pub struct Corrupt;

/// Deepest nesting of attribute values decoded (real values nest a few levels; the bound
/// keeps a damaged file from exhausting the stack).
const MAX_DEPTH: u32 = 200;

/// Why a package cannot be stored.
#[derive(Debug)]
pub enum NotStorable {
    /// A rule's kind was made by Starlark `rule()`: its definition is a live Starlark value.
    StarlarkDefinition,
    /// A rule's schema is neither a registry kind's nor an untyped stand-in.
    UnknownSchema,
    /// A path is not UTF-8.
    Path,
}

/// Appends varints and string indices to a buffer, collecting the strings.
struct Encoder<'p> {
    body: Vec<u8>,
    strings: foldhash::HashMap<&'p str, u32>,
    order: Vec<&'p str>,
    schemas: &'p HashMap<String, Arc<RuleSchema>>,
}

/// Appends `v` as the varint [`Reader::u`] reads.
pub fn put_u64(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends `bytes` length-prefixed, as [`Reader::blob`] reads them.
pub fn put_blob(out: &mut Vec<u8>, bytes: &[u8]) {
    put_u64(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

impl<'p> Encoder<'p> {
    fn u(&mut self, v: u64) {
        put_u64(&mut self.body, v);
    }

    fn i(&mut self, v: i64) {
        // Zigzag, so small negative numbers stay short.
        self.u(((v << 1) ^ (v >> 63)) as u64);
    }

    fn s(&mut self, s: &'p str) {
        let next = self.order.len() as u32;
        let index = *self.strings.entry(s).or_insert_with(|| {
            self.order.push(s);
            next
        });
        self.u(index as u64);
    }

    fn path(&mut self, p: &'p std::path::Path) -> Result<(), NotStorable> {
        self.s(p.to_str().ok_or(NotStorable::Path)?);
        Ok(())
    }

    fn label(&mut self, l: &'p Label) {
        self.s(&l.repo);
        self.s(&l.package);
        self.s(&l.name);
    }

    fn labels(&mut self, ls: &'p [Label]) {
        self.u(ls.len() as u64);
        for l in ls {
            self.label(l);
        }
    }

    fn strs(&mut self, v: &'p [String]) {
        self.u(v.len() as u64);
        for s in v {
            self.s(s);
        }
    }

    fn location(&mut self, l: &'p Location) -> Result<(), NotStorable> {
        self.path(&l.file)?;
        self.u(l.line as u64);
        self.u(l.column as u64);
        Ok(())
    }

    fn frames(&mut self, frames: &'p [StackFrame]) -> Result<(), NotStorable> {
        self.u(frames.len() as u64);
        for f in frames {
            self.location(&f.location)?;
            self.s(&f.function);
        }
        Ok(())
    }

    fn raw(&mut self, r: &'p Raw) {
        match r {
            Raw::None => self.u(0),
            Raw::Bool(b) => self.u(1 + *b as u64),
            Raw::Int(i) => {
                self.u(3);
                self.i(*i);
            }
            Raw::String(s) => {
                self.u(4);
                self.s(s);
            }
            Raw::Label(l) => {
                self.u(5);
                self.label(l);
            }
            Raw::List(items) => {
                self.u(6);
                self.u(items.len() as u64);
                items.iter().for_each(|i| self.raw(i));
            }
            Raw::Dict(entries) => {
                self.u(7);
                self.u(entries.len() as u64);
                for (k, v) in entries {
                    self.raw(k);
                    self.raw(v);
                }
            }
            Raw::Select(parts) => {
                self.u(8);
                self.select(parts, Self::raw);
            }
        }
    }

    fn select<T>(&mut self, parts: &'p [SelectPart<T>], mut item: impl FnMut(&mut Self, &'p T)) {
        self.u(parts.len() as u64);
        for part in parts {
            match part {
                SelectPart::Plain(v) => {
                    self.u(0);
                    item(self, v);
                }
                SelectPart::Select { branches, no_match_error } => {
                    self.u(1);
                    self.s(no_match_error);
                    self.u(branches.len() as u64);
                    for (cond, v) in branches {
                        self.s(cond);
                        item(self, v);
                    }
                }
            }
        }
    }

    fn value(&mut self, v: &'p AttrValue) {
        match v {
            AttrValue::None => self.u(0),
            AttrValue::Bool(b) => self.u(1 + *b as u64),
            AttrValue::Int(i) => {
                self.u(3);
                self.i(*i);
            }
            AttrValue::String(s) => {
                self.u(4);
                self.s(s);
            }
            AttrValue::Label(l) => {
                self.u(5);
                self.label(l);
            }
            AttrValue::StringList(v) => {
                self.u(6);
                self.strs(v);
            }
            AttrValue::IntList(v) => {
                self.u(7);
                self.u(v.len() as u64);
                v.iter().for_each(|i| self.i(*i));
            }
            AttrValue::LabelList(v) => {
                self.u(8);
                self.labels(v);
            }
            AttrValue::StringDict(d) => {
                self.u(9);
                self.u(d.len() as u64);
                for (k, v) in d {
                    self.s(k);
                    self.s(v);
                }
            }
            AttrValue::StringListDict(d) => {
                self.u(10);
                self.u(d.len() as u64);
                for (k, v) in d {
                    self.s(k);
                    self.strs(v);
                }
            }
            AttrValue::LabelKeyedStringDict(d) => {
                self.u(11);
                self.u(d.len() as u64);
                for (k, v) in d {
                    self.label(k);
                    self.s(v);
                }
            }
            AttrValue::StringKeyedLabelDict(d) => {
                self.u(12);
                self.u(d.len() as u64);
                for (k, v) in d {
                    self.s(k);
                    self.label(v);
                }
            }
            AttrValue::Select(parts) => {
                self.u(13);
                self.select(parts, Self::value);
            }
            AttrValue::Raw(r) => {
                self.u(14);
                self.raw(r);
            }
        }
    }

    fn rule(&mut self, r: &'p Rule) -> Result<(), NotStorable> {
        if r.definition.is_some() {
            return Err(NotStorable::StarlarkDefinition);
        }
        self.label(&r.label);
        self.s(&r.kind);
        // The schema is linked again on decoding: a registry kind's own `Arc`, or the
        // stand-in `RuleSchema::untyped` makes for rules ocib has no definition of.
        if !r.schema.typed {
            self.u(1);
        } else if self.schemas.get(&r.schema.kind).is_some_and(|s| Arc::ptr_eq(s, &r.schema)) {
            self.u(0);
        } else {
            return Err(NotStorable::UnknownSchema);
        }
        self.s(&r.schema.kind);
        self.u(r.attrs.len() as u64);
        for (name, value) in &r.attrs {
            self.s(name);
            self.value(value);
        }
        self.location(&r.location)?;
        match &r.generator {
            None => self.u(0),
            Some(g) => {
                self.u(1);
                self.s(&g.name);
                self.s(&g.function);
                self.s(&g.location);
            }
        }
        self.frames(&r.call_stack)?;
        self.frames(&r.definition_stack)
    }
}

/// The payload of `pkg`. `schemas` is the rule registry's table (schemas of native kinds).
pub fn encode(pkg: &Package, schemas: &HashMap<String, Arc<RuleSchema>>) -> Result<Vec<u8>, NotStorable> {
    let mut e = Encoder { body: Vec::with_capacity(4096), strings: Default::default(), order: Vec::new(), schemas };
    e.s(&pkg.id.repo);
    e.s(&pkg.id.package);
    e.path(&pkg.build_file)?;
    e.s(&pkg.build_file_display);
    e.s(&pkg.build_file_name);
    e.u(pkg.rules.len() as u64);
    for (name, rule) in &pkg.rules {
        e.s(name);
        e.rule(rule)?;
    }
    e.u(pkg.outputs.len() as u64);
    for (k, v) in &pkg.outputs {
        e.s(k);
        e.s(v);
    }
    e.u(pkg.source_files.len() as u64);
    for s in &pkg.source_files {
        e.s(s);
    }
    e.u(pkg.loads.len() as u64);
    for l in &pkg.loads {
        e.label(l);
    }
    e.labels(&pkg.default_visibility);
    e.u(pkg.exports.len() as u64);
    for (name, vis) in &pkg.exports {
        e.s(name);
        match vis {
            None => e.u(0),
            Some(v) => {
                e.u(1);
                e.labels(v);
            }
        }
    }
    let mut out = Vec::with_capacity(e.body.len() + 16 * e.order.len());
    put_u64(&mut out, e.order.len() as u64);
    for s in &e.order {
        put_u64(&mut out, s.len() as u64);
        out.extend_from_slice(s.as_bytes());
    }
    out.extend_from_slice(&e.body);
    Ok(out)
}

/// Reads varints, strings and byte strings from a buffer, every step checked.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }

    /// How many bytes were read.
    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.pos == self.buf.len()
    }

    pub fn u(&mut self) -> Result<u64, Corrupt> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self.buf.get(self.pos).ok_or(Corrupt)?;
            self.pos += 1;
            v |= ((byte & 0x7f) as u64) << shift;
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(Corrupt)
    }

    /// A count of items that each take at least one byte: never more than the bytes left.
    pub fn count(&mut self) -> Result<usize, Corrupt> {
        let n = self.u()?;
        if n > (self.buf.len() - self.pos) as u64 {
            return Err(Corrupt);
        }
        Ok(n as usize)
    }

    pub fn i(&mut self) -> Result<i64, Corrupt> {
        let v = self.u()?;
        Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
    }

    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], Corrupt> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len()).ok_or(Corrupt)?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    /// A length-prefixed byte string.
    pub fn blob(&mut self) -> Result<&'a [u8], Corrupt> {
        let n = self.count()?;
        self.bytes(n)
    }

    /// A length-prefixed UTF-8 string.
    pub fn str(&mut self) -> Result<&'a str, Corrupt> {
        std::str::from_utf8(self.blob()?).map_err(|_| Corrupt)
    }

    pub fn digest(&mut self) -> Result<[u8; 32], Corrupt> {
        self.bytes(32)?.try_into().map_err(|_| Corrupt)
    }
}

/// Decodes payloads, linking schemas to the registry's.
pub struct Decoder {
    schemas: HashMap<String, Arc<RuleSchema>>,
    /// Untyped stand-in schemas by kind, made once per process.
    untyped: Mutex<HashMap<String, Arc<RuleSchema>>>,
}

struct Payload<'a, 'k> {
    r: Reader<'a>,
    strings: Vec<&'a str>,
    decoder: &'k Decoder,
    /// Decode rules for [`Depth::Graph`].
    graph_only: bool,
}

/// How much of a package a command needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    /// Everything.
    Full,
    /// Its target graph only: every target, each rule's label, kind, schema and the
    /// attributes its dependencies come from (and `tags`, `tests`), but no other attribute,
    /// no location, generator or stacks. For a query that reads nothing else (the caller
    /// decides): decoding 70,000 rules whole for `query //...` at 5,000 packages made most of
    /// its memory and much of its time.
    Graph,
}

/// Whether the target-graph form of a rule keeps the attribute `name` (value `value`): what
/// `Rule::for_each_dep` reads (dependency attributes, and `select()` conditions of any
/// attribute), and `tags` and `tests`, which `test_suite` expansion reads.
fn graph_keeps(schema: &RuleSchema, name: &str, value: &AttrValue) -> bool {
    schema.attr(name).is_some_and(|spec| spec.ty.is_dep() && !spec.nodep)
        || matches!(value, AttrValue::Select(_))
        || matches!(name, "tags" | "tests")
}

impl<'a> Payload<'a, '_> {
    fn u(&mut self) -> Result<u64, Corrupt> {
        self.r.u()
    }

    fn count(&mut self) -> Result<usize, Corrupt> {
        self.r.count()
    }

    fn str(&mut self) -> Result<&'a str, Corrupt> {
        let i = self.r.u()?;
        self.strings.get(i as usize).copied().ok_or(Corrupt)
    }

    fn s(&mut self) -> Result<String, Corrupt> {
        self.str().map(str::to_owned)
    }

    fn label(&mut self) -> Result<Label, Corrupt> {
        Ok(Label { repo: self.s()?, package: self.s()?, name: self.s()? })
    }

    fn labels(&mut self) -> Result<Vec<Label>, Corrupt> {
        (0..self.count()?).map(|_| self.label()).collect()
    }

    fn strs(&mut self) -> Result<Vec<String>, Corrupt> {
        (0..self.count()?).map(|_| self.s()).collect()
    }

    fn int(&mut self) -> Result<i64, Corrupt> {
        self.r.i()
    }

    fn u32(&mut self) -> Result<u32, Corrupt> {
        u32::try_from(self.u()?).map_err(|_| Corrupt)
    }

    fn location(&mut self) -> Result<Location, Corrupt> {
        Ok(Location { file: PathBuf::from(self.str()?), line: self.u32()?, column: self.u32()? })
    }

    fn frames(&mut self) -> Result<Vec<StackFrame>, Corrupt> {
        (0..self.count()?).map(|_| Ok(StackFrame { location: self.location()?, function: self.s()? })).collect()
    }

    /// Reads past a location, checking it, without allocating it.
    fn skip_location(&mut self) -> Result<(), Corrupt> {
        self.str()?;
        self.u32()?;
        self.u32()?;
        Ok(())
    }

    /// Reads past a stack, checking it, without allocating it.
    fn skip_frames(&mut self) -> Result<(), Corrupt> {
        for _ in 0..self.count()? {
            self.skip_location()?;
            self.str()?;
        }
        Ok(())
    }

    fn select<T>(&mut self, depth: u32, item: fn(&mut Self, u32) -> Result<T, Corrupt>) -> Result<Vec<SelectPart<T>>, Corrupt> {
        (0..self.count()?)
            .map(|_| match self.u()? {
                0 => Ok(SelectPart::Plain(item(self, depth)?)),
                1 => {
                    let no_match_error = self.s()?;
                    let branches = (0..self.count()?).map(|_| Ok((self.s()?, item(self, depth)?))).collect::<Result<_, Corrupt>>()?;
                    Ok(SelectPart::Select { branches, no_match_error })
                }
                _ => Err(Corrupt),
            })
            .collect()
    }

    fn raw(&mut self, depth: u32) -> Result<Raw, Corrupt> {
        let depth = depth.checked_sub(1).ok_or(Corrupt)?;
        Ok(match self.u()? {
            0 => Raw::None,
            1 => Raw::Bool(false),
            2 => Raw::Bool(true),
            3 => Raw::Int(self.int()?),
            4 => Raw::String(self.s()?),
            5 => Raw::Label(self.label()?),
            6 => Raw::List((0..self.count()?).map(|_| self.raw(depth)).collect::<Result<_, _>>()?),
            7 => Raw::Dict((0..self.count()?).map(|_| Ok((self.raw(depth)?, self.raw(depth)?))).collect::<Result<_, _>>()?),
            8 => Raw::Select(self.select(depth, Self::raw)?),
            _ => return Err(Corrupt),
        })
    }

    fn value(&mut self, depth: u32) -> Result<AttrValue, Corrupt> {
        let depth = depth.checked_sub(1).ok_or(Corrupt)?;
        Ok(match self.u()? {
            0 => AttrValue::None,
            1 => AttrValue::Bool(false),
            2 => AttrValue::Bool(true),
            3 => AttrValue::Int(self.int()?),
            4 => AttrValue::String(self.s()?),
            5 => AttrValue::Label(self.label()?),
            6 => AttrValue::StringList(self.strs()?),
            7 => AttrValue::IntList((0..self.count()?).map(|_| self.int()).collect::<Result<_, _>>()?),
            8 => AttrValue::LabelList(self.labels()?),
            9 => AttrValue::StringDict((0..self.count()?).map(|_| Ok((self.s()?, self.s()?))).collect::<Result<_, Corrupt>>()?),
            10 => AttrValue::StringListDict((0..self.count()?).map(|_| Ok((self.s()?, self.strs()?))).collect::<Result<_, Corrupt>>()?),
            11 => {
                AttrValue::LabelKeyedStringDict((0..self.count()?).map(|_| Ok((self.label()?, self.s()?))).collect::<Result<_, Corrupt>>()?)
            }
            12 => {
                AttrValue::StringKeyedLabelDict((0..self.count()?).map(|_| Ok((self.s()?, self.label()?))).collect::<Result<_, Corrupt>>()?)
            }
            13 => AttrValue::Select(self.select(depth, Self::value)?),
            14 => AttrValue::Raw(self.raw(depth)?),
            _ => return Err(Corrupt),
        })
    }

    fn rule(&mut self) -> Result<Rule, Corrupt> {
        let label = self.label()?;
        let kind = self.s()?;
        let source = self.u()?;
        let schema_kind = self.str()?;
        let schema = match source {
            0 => self.decoder.schemas.get(schema_kind).cloned().ok_or(Corrupt)?,
            1 => self.decoder.untyped(schema_kind),
            _ => return Err(Corrupt),
        };
        let mut attrs = BTreeMap::new();
        for _ in 0..self.count()? {
            let name = self.str()?;
            let value = self.value(MAX_DEPTH)?;
            // A value left out is still decoded (and so checked), then dropped at once: its
            // memory is reused by the next, instead of growing the process by a few KB per rule.
            if !self.graph_only || graph_keeps(&schema, name, &value) {
                attrs.insert(name.to_owned(), value);
            }
        }
        if self.graph_only {
            self.skip_location()?;
            match self.u()? {
                0 => {}
                1 => {
                    self.str()?;
                    self.str()?;
                    self.str()?;
                }
                _ => return Err(Corrupt),
            }
            self.skip_frames()?;
            self.skip_frames()?;
            let location = Location { file: PathBuf::new(), line: 0, column: 0 };
            return Ok(Rule {
                label,
                kind,
                schema,
                attrs,
                location,
                generator: None,
                call_stack: Vec::new(),
                definition_stack: Vec::new(),
                definition: None,
            });
        }
        let location = self.location()?;
        let generator = match self.u()? {
            0 => None,
            1 => Some(Generator { name: self.s()?, function: self.s()?, location: self.s()? }),
            _ => return Err(Corrupt),
        };
        Ok(Rule {
            label,
            kind,
            schema,
            attrs,
            location,
            generator,
            call_stack: self.frames()?,
            definition_stack: self.frames()?,
            definition: None,
        })
    }
}

impl Decoder {
    /// A decoder linking rules to `schemas`, the rule registry's table.
    pub fn new(schemas: HashMap<String, Arc<RuleSchema>>) -> Decoder {
        Decoder { schemas, untyped: Mutex::default() }
    }

    fn untyped(&self, kind: &str) -> Arc<RuleSchema> {
        let mut map = self.untyped.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(kind.to_owned()).or_insert_with(|| Arc::new(RuleSchema::untyped(kind))).clone()
    }

    /// The package a payload holds, whole.
    #[cfg(test)]
    pub fn decode(&self, bytes: &[u8]) -> Result<Package, Corrupt> {
        self.decode_to(bytes, Depth::Full)
    }

    /// The package a payload holds, to `depth`.
    pub fn decode_to(&self, bytes: &[u8], depth: Depth) -> Result<Package, Corrupt> {
        let mut r = Reader::new(bytes);
        let n = r.count()?;
        let strings = (0..n).map(|_| r.str()).collect::<Result<Vec<_>, _>>()?;
        let mut p = Payload { r, strings, decoder: self, graph_only: depth == Depth::Graph };
        let id = PackageId { repo: p.s()?, package: p.s()? };
        let build_file = PathBuf::from(p.str()?);
        let build_file_display = p.s()?;
        let build_file_name = p.s()?;
        let rules = (0..p.count()?).map(|_| Ok((p.s()?, p.rule()?))).collect::<Result<_, Corrupt>>()?;
        let outputs = (0..p.count()?).map(|_| Ok((p.s()?, p.s()?))).collect::<Result<_, Corrupt>>()?;
        let source_files = (0..p.count()?).map(|_| p.s()).collect::<Result<_, _>>()?;
        let loads = (0..p.count()?).map(|_| p.label()).collect::<Result<_, _>>()?;
        let default_visibility = p.labels()?;
        let exports = (0..p.count()?)
            .map(|_| {
                let name = p.s()?;
                let vis = match p.u()? {
                    0 => None,
                    1 => Some(p.labels()?),
                    _ => return Err(Corrupt),
                };
                Ok((name, vis))
            })
            .collect::<Result<_, Corrupt>>()?;
        if !p.r.is_empty() {
            return Err(Corrupt);
        }
        Ok(Package {
            id,
            build_file,
            build_file_display,
            build_file_name,
            rules,
            outputs,
            source_files,
            loads,
            default_visibility,
            exports,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

    fn package() -> Package {
        let id = PackageId::main("app");
        let schema = Arc::new(RuleSchema::untyped("thing"));
        let raw = Raw::Select(vec![
            SelectPart::Plain(Raw::List(vec![Raw::String("a".into()), Raw::Int(-3), Raw::Bool(true)])),
            SelectPart::Select {
                branches: vec![("//conditions:default".into(), Raw::Dict(vec![(Raw::None, Raw::Label(id.label("x")))]))],
                no_match_error: "none".into(),
            },
        ]);
        let location = Location { file: PathBuf::from("/ws/app/BUILD"), line: 3, column: 7 };
        let rule = Rule {
            label: id.label("t"),
            kind: "thing".into(),
            schema,
            attrs: BTreeMap::from([
                ("srcs".to_owned(), AttrValue::Raw(raw)),
                ("deps".to_owned(), AttrValue::LabelList(vec![id.label("a"), Label::parse_absolute("@r//p:q").unwrap()])),
                ("env".to_owned(), AttrValue::StringListDict(vec![("k".into(), vec!["v".into()])])),
            ]),
            location: location.clone(),
            generator: Some(Generator { name: "t".into(), function: "m".into(), location: "app/BUILD:3:7".into() }),
            call_stack: vec![StackFrame { location, function: "<toplevel>".into() }],
            definition_stack: Vec::new(),
            definition: None,
        };
        Package {
            id: id.clone(),
            build_file: PathBuf::from("/ws/app/BUILD"),
            build_file_display: "app/BUILD".into(),
            build_file_name: "BUILD".into(),
            rules: BTreeMap::from([("t".to_owned(), rule)]),
            outputs: BTreeMap::from([("t.out".to_owned(), "t".to_owned())]),
            source_files: BTreeSet::from(["BUILD".to_owned()]),
            loads: BTreeSet::from([id.label("m.bzl")]),
            default_visibility: vec![Label::parse_absolute("//visibility:public").unwrap()],
            exports: BTreeMap::from([("f".to_owned(), None), ("g".to_owned(), Some(vec![id.label("__pkg__")]))]),
        }
    }

    #[test]
    fn a_package_decodes_to_what_was_encoded() {
        let pkg = package();
        let bytes = encode(&pkg, &HashMap::new()).unwrap();
        let mut back = Decoder::new(HashMap::new()).decode(&bytes).unwrap();
        let rule = back.rules.get_mut("t").unwrap();
        assert!(rule.schema.kind == "thing" && !rule.schema.typed, "an untyped stand-in schema again");
        // The same schema, so that Debug (which shows its HashMap index) compares equal.
        rule.schema = pkg.rules["t"].schema.clone();
        assert_eq!(format!("{back:?}"), format!("{pkg:?}"));
    }

    #[test]
    fn the_graph_form_keeps_targets_and_dependencies_and_drops_the_rest() {
        let pkg = package();
        let bytes = encode(&pkg, &HashMap::new()).unwrap();
        let graph = Decoder::new(HashMap::new()).decode_to(&bytes, Depth::Graph).unwrap();
        let (rule, whole) = (&graph.rules["t"], &pkg.rules["t"]);
        assert_eq!((&rule.label, &rule.kind), (&whole.label, &whole.kind));
        assert_eq!(rule.deps(), whole.deps());
        // An untyped schema declares no dependency attribute, and `srcs` is no `select()` of
        // labels (a raw value), so no attribute is kept; nor are locations and stacks.
        assert!(rule.attrs.is_empty() && rule.generator.is_none() && rule.call_stack.is_empty(), "{rule:?}");
        assert_eq!((&graph.outputs, &graph.source_files, &graph.loads), (&pkg.outputs, &pkg.source_files, &pkg.loads));
        assert_eq!((&graph.default_visibility, &graph.exports), (&pkg.default_visibility, &pkg.exports));
        for end in 0..bytes.len() {
            assert!(Decoder::new(HashMap::new()).decode_to(&bytes[..end], Depth::Graph).is_err(), "a payload cut at {end} decoded");
        }
    }

    #[test]
    fn damaged_payloads_are_errors_not_panics() {
        let bytes = encode(&package(), &HashMap::new()).unwrap();
        let decoder = Decoder::new(HashMap::new());
        for end in 0..bytes.len() {
            assert!(decoder.decode(&bytes[..end]).is_err(), "a payload cut at {end} decoded");
        }
        for i in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[i] ^= 0xff;
            // Any result but a panic: a flipped byte may still decode (the file's checksum
            // catches it first).
            let _ = decoder.decode(&damaged);
        }
    }
}
