//! `constraint_setting` and `constraint_value`: the vocabulary of platforms.
use crate::analysis::{AnalysisError, Providers, RuleContext};
use crate::graph::AttrType as A;
use crate::rules::{RuleSchema, SchemaBuilder};

pub fn setting_schema() -> RuleSchema {
    SchemaBuilder::new("constraint_setting").manual_by_default().native().attr("default_constraint_value", A::Label).build()
}

pub fn value_schema() -> RuleSchema {
    SchemaBuilder::new("constraint_value").manual_by_default().native().mandatory("constraint_setting", A::Label).build()
}

/// `@platforms//os:<os>` and `@platforms//cpu:<cpu>` of the target platform.
fn platform_constraints(goos: &str, goarch: &str) -> Vec<String> {
    let os = match goos {
        "darwin" => "macos",
        other => other,
    };
    let cpus: &[&str] = match goarch {
        "amd64" => &["x86_64"],
        "arm64" => &["arm64", "aarch64"],
        // `x86_32`, `ppc64le`, `armv7e-mf`: what rules_distroless's apt.install repositories
        // select on for Debian's i386, ppc64el and armhf.
        "386" => &["i386", "x86_32"],
        "arm" => &["armv7", "armv7e-mf"],
        "ppc64le" => &["ppc", "ppc64le"],
        "s390x" => &["s390x"],
        "mips64le" => &["mips64"],
        _ => &[],
    };
    let mut out = vec![format!("@platforms//os:{os}")];
    out.extend(cpus.iter().map(|c| format!("@platforms//cpu:{c}")));
    out
}

/// A constraint value holds when the target platform has it.
pub fn analyze_value(ctx: &mut RuleContext) -> Result<Providers, AnalysisError> {
    let config = ctx.config();
    let holds = platform_constraints(&config.goos, &config.goarch).contains(&ctx.label().to_string());
    Ok(Providers { condition: Some(holds), ..Default::default() })
}
