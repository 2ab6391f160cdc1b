//! Starlark `transition()`s: the implementation gets the current values of its `inputs`
//! settings and the rule's attributes, and returns the new values of its `outputs` (one
//! dict: a 1:1 transition; a list or dict of dicts: a split). Each result becomes an
//! `analysis::Config` the attribute's dependencies are analysed in.

use starlark::environment::Module;
use starlark::values::dict::{AllocDict, DictRef};
use starlark::values::list::AllocList;
use starlark::values::structs::AllocStruct;
use starlark::values::{FrozenValue, Heap, OwnedFrozenValue, Value, ValueLike};

use super::AttrInput;
use crate::analysis::{AnalysisError, Config, RuleContext, bazel_cpu};
use crate::graph::label::Label;
use crate::graph::{AttrValue, TargetRef};
use crate::load::providers::iterate_elements;
use crate::load::rule_def::FrozenTransition;
use crate::load::values::LabelValue;

const PLATFORMS: &str = "//command_line_option:platforms";
const COMPILATION_MODE: &str = "//command_line_option:compilation_mode";
const CPU: &str = "//command_line_option:cpu";

/// One setting's new value, as the implementation returned it.
enum SettingValue {
    Text(String),
    Labels(Vec<Label>),
}

/// The configurations `transition` makes from the current one for the rule `ctx` analyses.
pub(super) fn apply(
    ctx: &mut RuleContext,
    transition: FrozenValue,
    inputs: &[AttrInput],
    owned: &OwnedFrozenValue,
) -> Result<Vec<Config>, AnalysisError> {
    let t = transition.to_value().downcast_ref::<FrozenTransition>().ok_or_else(|| AnalysisError::new("internal: not a transition"))?;
    let config = ctx.config().clone();
    let mut current: Vec<(String, String)> = Vec::new();
    for input in &t.inputs {
        let value = match input.as_str() {
            COMPILATION_MODE => config.compilation_mode.clone(),
            CPU => bazel_cpu(&config.goarch).to_owned(),
            PLATFORMS => config.platform.clone().unwrap_or_else(|| "@platforms//host".to_owned()),
            setting => {
                let label = setting_label(ctx, setting)?;
                ctx.analysis.build_setting_value(&label)?
            }
        };
        current.push((input.clone(), value));
    }
    let results: Vec<Vec<(String, SettingValue)>> = Module::with_temp_heap(|module| -> Result<_, AnalysisError> {
        let heap = module.heap();
        module.frozen_heap().add_reference(owned.owner());
        let settings = heap.alloc(AllocDict(current.iter().map(|(k, v)| (heap.alloc(k.as_str()), setting_value(heap, k, v)))));
        let attr = heap.alloc(AllocStruct(inputs.iter().map(|i| (i.name.clone(), attr_value(heap, &i.value)))));
        let mut eval = starlark::eval::Evaluator::new(&module);
        let returned = eval
            .eval_function(t.implementation.to_value(), &[settings, attr], &[])
            .map_err(|e| AnalysisError::new(format!("in transition implementation:\n{e}")))?;
        let dicts: Vec<Value> = if DictRef::from_value(returned).is_some_and(|d| {
            d.iter().all(|(_, v)| DictRef::from_value(v).is_some())
                && !d.is_empty()
                && !d.iter().any(|(k, _)| k.unpack_str().is_some_and(|s| t.outputs.iter().any(|o| o == s)))
        }) {
            // A split transition written as {"key": {...}, ...}.
            DictRef::from_value(returned).map(|d| d.iter().map(|(_, v)| v).collect()).unwrap_or_default()
        } else if DictRef::from_value(returned).is_some() {
            vec![returned]
        } else {
            iterate_elements(returned).map_err(|e| AnalysisError::new(e.to_string()))?
        };
        let mut out = Vec::new();
        for d in dicts {
            let dict = DictRef::from_value(d)
                .ok_or_else(|| AnalysisError::new(format!("a transition must return a dict or a list of dicts, got '{}'", d.get_type())))?;
            let mut values = Vec::new();
            for key in &t.outputs {
                let v = dict
                    .get_str(key)
                    .ok_or_else(|| AnalysisError::new(format!("transition outputs [{key}] were not defined by the transition function")))?;
                values.push((key.clone(), read_setting(v)?));
            }
            out.push(values);
        }
        Ok(out)
    })?;
    let mut configs = Vec::new();
    for values in results {
        let mut c = config.clone();
        for (key, value) in values {
            match (key.as_str(), value) {
                (COMPILATION_MODE, SettingValue::Text(v)) => c.compilation_mode = v,
                (CPU, SettingValue::Text(v)) => c.goarch = goarch_of_cpu(&v).to_owned(),
                (PLATFORMS, SettingValue::Labels(labels)) => {
                    let platform = labels.first().ok_or_else(|| AnalysisError::new("transition: --platforms needs a platform"))?;
                    let (goos, goarch) = platform_os_cpu(ctx, platform)?;
                    c.goos = goos;
                    c.goarch = goarch;
                    c.platform = Some(platform.to_string());
                }
                (PLATFORMS, SettingValue::Text(text)) => {
                    let label =
                        Label::parse_absolute(text.trim()).map_err(|e| AnalysisError::new(format!("transition: --platforms: {e}")))?;
                    let (goos, goarch) = platform_os_cpu(ctx, &label)?;
                    c.goos = goos;
                    c.goarch = goarch;
                    c.platform = Some(label.to_string());
                }
                (setting, value) if !setting.starts_with("//command_line_option:") => {
                    let label = setting_label(ctx, setting)?;
                    let text = match value {
                        SettingValue::Text(t) => t,
                        SettingValue::Labels(l) => l.iter().map(Label::to_string).collect::<Vec<_>>().join(","),
                    };
                    c.settings.insert(label.to_string(), text);
                }
                (other, _) => return Err(AnalysisError::new(format!("transition: setting '{other}' is not supported by ocib"))),
            }
        }
        configs.push(c);
    }
    Ok(configs)
}

/// A build setting's label, resolved against the rule's package.
fn setting_label(ctx: &RuleContext, setting: &str) -> Result<Label, AnalysisError> {
    let ws = ctx.analysis.loader.workspace().clone();
    Label::parse(setting, &ctx.label().package_id(), &|r| ws.map_repo(r))
        .map_err(|e| AnalysisError::new(format!("transition setting '{setting}': {e}")))
}

/// A setting's value as the transition implementation sees it: booleans as bools, platforms
/// as a list of labels, the rest as strings.
fn setting_value<'v>(heap: Heap<'v>, key: &str, text: &str) -> Value<'v> {
    match (key, text) {
        (PLATFORMS, t) => match Label::parse_absolute(t) {
            Ok(l) => heap.alloc(AllocList([heap.alloc(LabelValue(l))])),
            Err(_) => heap.alloc(t),
        },
        (_, "True") => Value::new_bool(true),
        (_, "False") => Value::new_bool(false),
        (_, t) => heap.alloc(t),
    }
}

fn read_setting(v: Value) -> Result<SettingValue, AnalysisError> {
    if let Some(l) = v.downcast_ref::<LabelValue>() {
        return Ok(SettingValue::Labels(vec![l.0.clone()]));
    }
    if let Some(b) = v.unpack_bool() {
        return Ok(SettingValue::Text(if b { "True" } else { "False" }.to_owned()));
    }
    if let Some(s) = v.unpack_str() {
        return Ok(SettingValue::Text(s.to_owned()));
    }
    if v.get_type() == "list" || v.get_type() == "tuple" {
        let mut labels = Vec::new();
        for item in iterate_elements(v).map_err(|e| AnalysisError::new(e.to_string()))? {
            match item.downcast_ref::<LabelValue>() {
                Some(l) => labels.push(l.0.clone()),
                None => match item.unpack_str().map(Label::parse_absolute) {
                    Some(Ok(l)) => labels.push(l),
                    _ => return Err(AnalysisError::new(format!("transition: expected labels, got {}", item.to_repr()))),
                },
            }
        }
        return Ok(SettingValue::Labels(labels));
    }
    Ok(SettingValue::Text(v.to_str()))
}

/// An attribute as a transition's `attr` shows it: labels as `Label`s.
fn attr_value<'v>(heap: Heap<'v>, value: &AttrValue) -> Value<'v> {
    match value {
        AttrValue::Label(l) => heap.alloc(LabelValue(l.clone())),
        AttrValue::LabelList(l) => heap.alloc(AllocList(l.iter().map(|x| heap.alloc(LabelValue(x.clone()))))),
        AttrValue::None => Value::new_none(),
        AttrValue::String(s) => heap.alloc(s.as_str()),
        AttrValue::Bool(b) => Value::new_bool(*b),
        AttrValue::Int(i) => heap.alloc(*i),
        AttrValue::StringList(l) => heap.alloc(AllocList(l.iter().map(|s| heap.alloc(s.as_str())))),
        other => heap.alloc(other.to_string()),
    }
}

/// Go's GOARCH for a Bazel `--cpu` value.
fn goarch_of_cpu(cpu: &str) -> &str {
    match cpu {
        "k8" | "x86_64" | "amd64" => "amd64",
        "aarch64" | "arm64" => "arm64",
        "armeabi-v7a" | "arm" => "arm",
        "s390x" => "s390x",
        "ppc" | "ppc64le" => "ppc64le",
        other => other,
    }
}

/// The OS and CPU (as Go names them) of a `platform()` target, from its `@platforms`
/// constraint values; `@platforms//host` is the machine ocib runs on.
fn platform_os_cpu(ctx: &mut RuleContext, platform: &Label) -> Result<(String, String), AnalysisError> {
    let host = || (std::env::consts::OS.to_owned(), goarch_of_cpu(std::env::consts::ARCH).to_owned());
    if platform.repo == "platforms" && platform.package == "host" || platform.repo == "local_config_platform" {
        return Ok(host());
    }
    let pkg = ctx.analysis.loader.package(&platform.package_id())?;
    let Some(TargetRef::Rule(rule)) = pkg.target(&platform.name) else {
        return Err(AnalysisError::new(format!("transition: '{platform}' is not a platform")));
    };
    if rule.kind != "platform" {
        return Err(AnalysisError::new(format!("transition: '{platform}' is a {} rule, not a platform", rule.kind)));
    }
    let constraints = match rule.attr("constraint_values") {
        Some(v) => ctx.analysis.resolve(&v)?,
        None => AttrValue::None,
    };
    let (mut goos, mut goarch) = host();
    for c in constraints.labels() {
        match (c.package.as_str(), c.name.as_str()) {
            ("os", "osx" | "macos") => goos = "darwin".to_owned(),
            ("os", os) => goos = os.to_owned(),
            ("cpu", cpu) => goarch = goarch_of_cpu(cpu).to_owned(),
            _ => {}
        }
    }
    Ok((goos, goarch))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bazel_cpus_map_to_go_architectures() {
        assert_eq!(goarch_of_cpu("k8"), "amd64");
        assert_eq!(goarch_of_cpu("aarch64"), "arm64");
        assert_eq!(goarch_of_cpu("arm64"), "arm64");
    }
}
