//! `container_structure_test`: file, metadata and command tests against an image.
use crate::analysis::{AnalysisError, Providers, RuleContext, TestRun};
use crate::graph::AttrType as A;
use crate::rules::{RuleSchema, SchemaBuilder, s};

pub fn schema() -> RuleSchema {
    SchemaBuilder::new("container_structure_test")
        .test()
        .attr("image", A::Label)
        .mandatory("configs", A::LabelList)
        .default("driver", A::String, s("docker"))
        .default("platform", A::String, s("linux/amd64"))
        .build()
}

/// container_structure_test: the configs and the image (an OCI layout, or a tarball),
/// checked like the Bazel rule does (a layout needs the docker driver).
pub fn analyze(ctx: &mut RuleContext) -> Result<Providers, AnalysisError> {
    let label = ctx.labels("image")?.into_iter().next().ok_or_else(|| AnalysisError::new("container_structure_test needs 'image'"))?;
    let target = ctx.dep(&label)?;
    let image = match (&target.providers.oci_layout, target.providers.files.as_slice()) {
        (Some(layout), _) => layout.clone(),
        (None, [one]) => one.clone(),
        _ => return Err(AnalysisError::new(format!("attribute 'image': '{label}' must be an image or produce exactly one file"))),
    };
    let driver = ctx.string("driver")?;
    if !["docker", "tar", "host"].contains(&driver.as_str()) {
        return Err(AnalysisError::new(format!("attribute 'driver': '{driver}' must be docker, tar or host")));
    }
    if driver == "host" {
        // CST's host driver tests the machine it runs on and refuses --image, which the rule
        // always passes: under Bazel such a test can only fail. Say so before building.
        return Err(AnalysisError::new(
            "attribute 'driver': 'host' cannot test an image (container-structure-test's host driver takes no --image); use docker or tar",
        ));
    }
    let configs = ctx.files("configs")?;
    let platform = ctx.string("platform")?;
    let (output, junit_suite_name) = report_options(&ctx.string_list("args")?)?;
    Ok(Providers { test: Some(TestRun::Structure { image, configs, driver, platform, output, junit_suite_name }), ..Default::default() })
}

/// The container-structure-test flags `args` may carry that change what the test reports
/// (`-o/--output text|json|junit`, `--junit-suite-name`; `-q`, `--no-color` accepted). Other
/// flags would change how the test runs, which the rule's own attributes say: an error.
fn report_options(args: &[String]) -> Result<(String, String), AnalysisError> {
    let mut output = "text".to_owned();
    let mut suite = String::new();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with('-') => (f, Some(v.to_owned())),
            _ => (arg.as_str(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| rest.next().cloned())
                .ok_or_else(|| AnalysisError::new(format!("attribute 'args': {name} needs a value")))
        };
        match flag {
            "-o" | "--output" => {
                output = value(flag)?;
                if !["text", "json", "junit"].contains(&output.as_str()) {
                    return Err(AnalysisError::new(format!("attribute 'args': --output '{output}' must be text, json or junit")));
                }
            }
            "--junit-suite-name" => suite = value(flag)?,
            "-q" | "--quiet" | "--no-color" => {}
            other => {
                return Err(AnalysisError::new(format!(
                    "attribute 'args': '{other}' is not supported (only --output, --junit-suite-name, -q and --no-color)"
                )));
            }
        }
    }
    Ok((output, suite))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<(String, String), String> {
        report_options(&args.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>()).map_err(|e| e.render())
    }

    #[test]
    fn args_choose_the_report_and_reject_the_rest() {
        assert_eq!(parse(&[]).unwrap(), ("text".into(), String::new()));
        assert_eq!(parse(&["-o", "json"]).unwrap(), ("json".into(), String::new()));
        assert_eq!(parse(&["--output=junit", "--junit-suite-name", "img", "-q"]).unwrap(), ("junit".into(), "img".into()));
        assert!(parse(&["--output", "xml"]).unwrap_err().contains("'xml' must be text, json or junit"));
        assert!(parse(&["--output"]).unwrap_err().contains("--output needs a value"));
        assert!(parse(&["--driver", "host"]).unwrap_err().contains("'--driver' is not supported"));
    }
}
