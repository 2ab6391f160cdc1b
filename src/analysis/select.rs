//! Resolving `select()` against the configuration.

use crate::graph::label::Label;
use crate::graph::{AttrValue, SelectPart};

use super::{Analysis, AnalysisError};

impl Analysis<'_> {
    /// Whether a `select()` condition holds: a `config_setting` or a `constraint_value`.
    fn condition(&mut self, key: &str) -> Result<bool, AnalysisError> {
        let label = Label::parse_absolute(key).map_err(|e| AnalysisError::new(e.to_string()))?;
        let target = self.analyze(&label)?;
        target
            .providers
            .condition
            .ok_or_else(|| AnalysisError::new(format!("'{key}' is not a valid select() condition (it is a {})", target.kind)))
    }

    /// The value of an attribute with every `select()` resolved.
    pub fn resolve(&mut self, value: &AttrValue) -> Result<AttrValue, AnalysisError> {
        let AttrValue::Select(parts) = value else { return Ok(value.clone()) };
        let mut out: Option<AttrValue> = None;
        for part in parts {
            let chosen = match part {
                SelectPart::Plain(v) => v.clone(),
                SelectPart::Select { branches, no_match_error } => {
                    let mut matched = Vec::new();
                    let mut default = None;
                    for (key, v) in branches {
                        if key == "//conditions:default" {
                            default = Some(v);
                        } else if self.condition(key)? {
                            matched.push((key, v));
                        }
                    }
                    match matched.len() {
                        0 => default.cloned().ok_or_else(|| {
                            let keys: Vec<&str> = branches.iter().map(|(k, _)| k.as_str()).collect();
                            AnalysisError::new(if no_match_error.is_empty() {
                                format!("configurable attribute doesn't match this configuration: none of {keys:?} matches and there is no //conditions:default")
                            } else {
                                no_match_error.clone()
                            })
                        })?,
                        1 => matched[0].1.clone(),
                        _ => {
                            let keys: Vec<&str> = matched.iter().map(|(k, _)| k.as_str()).collect();
                            return Err(AnalysisError::new(format!("illegal ambiguous match on configurable attribute: {keys:?} all match")));
                        }
                    }
                }
            };
            out = Some(match out {
                None => chosen,
                Some(prev) => concat(prev, chosen),
            });
        }
        Ok(out.unwrap_or(AttrValue::None))
    }
}

fn concat(a: AttrValue, b: AttrValue) -> AttrValue {
    use AttrValue::*;
    match (a, b) {
        (StringList(mut x), StringList(y)) => {
            x.extend(y);
            StringList(x)
        }
        (LabelList(mut x), LabelList(y)) => {
            x.extend(y);
            LabelList(x)
        }
        (IntList(mut x), IntList(y)) => {
            x.extend(y);
            IntList(x)
        }
        (String(x), String(y)) => String(x + &y),
        (StringDict(mut x), StringDict(y)) => {
            x.extend(y);
            StringDict(x)
        }
        (LabelKeyedStringDict(mut x), LabelKeyedStringDict(y)) => {
            x.extend(y);
            LabelKeyedStringDict(x)
        }
        (_, other) => other,
    }
}
