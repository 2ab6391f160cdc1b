//! A native container-structure-test (CST) runner: config parsing ([`config`]), the docker and
//! OCI-layout drivers, the tests' semantics (this file, after CST's `pkg/types/v2/*.go`) and CST's
//! text/json/junit output (`report.rs`).

mod backend;
pub mod config;
mod docker;
mod expand;
mod filemode;
mod layout;
mod load;
mod report;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use backend::{Backend, ImageConfig};
use config::{CommandTest, EnvVar, FileContentTest, FileExistenceTest, LicenseTest, MetadataTest};
pub use config::{SchemaVersion, StructureTests, parse_config};
pub use load::{default_image_tag, load_layout};
pub use report::{all_passed, format_json, format_junit, format_text_files};

/// Where the image under test comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Driver {
    /// An image in a container engine (`engine`: docker, podman or nerdctl), by reference
    /// (the caller loads it first).
    Docker { engine: String, image: String },
    /// Files and metadata straight from an OCI image layout directory (no daemon; command tests
    /// fail with "Tar driver is unable to process commands"). Unlike CST's tar driver, uid/gid
    /// checks work (ownership comes from the layer tar headers).
    Layout { dir: PathBuf },
}

/// One test's outcome (CST's `unversioned.TestResult`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestResult {
    /// CST's name for the test, e.g. "Command Test: say hi".
    pub name: String,
    /// Whether every check of the test held.
    pub pass: bool,
    /// The command's stdout (command tests only).
    pub stdout: String,
    /// The command's stderr (command tests only).
    pub stderr: String,
    /// Why the test failed, one message per failed check.
    pub errors: Vec<String>,
    /// Wall time the test took.
    pub duration: Duration,
}

impl TestResult {
    fn new(name: String) -> TestResult {
        TestResult { name, pass: true, stdout: String::new(), stderr: String::new(), errors: Vec::new(), duration: Duration::ZERO }
    }

    /// A result that failed before the test ran (validation, driver setup).
    fn failed(name: &str, errors: Vec<String>) -> TestResult {
        TestResult { pass: false, errors, ..TestResult::new(name.to_owned()) }
    }

    fn error(&mut self, message: String) {
        self.errors.push(message);
        self.pass = false;
    }
}

/// Runs every test of every config in order (per file: commandTests, fileContentTests,
/// fileExistenceTests, licenseTests, metadataTest), named as CST names them ("Command Test: x",
/// "File Existence Test: x", "File Content Test: x", "License Test", "Metadata Test").
///
/// `platform` (`linux/amd64`) is passed to `docker create` by the docker driver; empty means
/// the engine's default. The layout driver ignores it (the layout must hold a single image).
/// Err only when the driver cannot be set up at all (no docker CLI, unreadable layout).
pub fn run(configs: &[StructureTests], driver: &Driver, platform: &str) -> anyhow::Result<Vec<TestResult>> {
    let factory = Factory::new(driver, platform)?;
    let mut results = Vec::new();
    for st in configs {
        run_file(st, &factory, &mut results);
    }
    factory.finish();
    Ok(results)
}

enum Factory {
    Docker(docker::Session),
    Layout(std::rc::Rc<layout::Image>),
}

impl Factory {
    fn new(driver: &Driver, platform: &str) -> anyhow::Result<Factory> {
        Ok(match driver {
            Driver::Docker { engine, image } => Factory::Docker(docker::Session::new(engine, image, platform)?),
            Driver::Layout { dir } => Factory::Layout(std::rc::Rc::new(layout::Image::open(dir)?)),
        })
    }

    fn driver(&self, st: &StructureTests) -> Box<dyn Backend + '_> {
        match self {
            Factory::Docker(session) => Box::new(session.driver(&st.container_run_options)),
            Factory::Layout(image) => Box::new(layout::Driver::new(image.clone())),
        }
    }

    fn finish(self) {
        if let Factory::Docker(session) = self {
            session.cleanup();
        }
    }
}

/// A file test in a fresh driver; schema 2 sets the global env first, as CST does.
fn run_file_test(st: &StructureTests, factory: &Factory, name: &str, run: impl FnOnce(&mut dyn Backend) -> TestResult) -> TestResult {
    let mut driver = factory.driver(st);
    let env = if st.schema_version == SchemaVersion::V1 { Ok(()) } else { driver.set_env(&st.global_env_vars) };
    let result = match env {
        Ok(()) => run(driver.as_mut()),
        Err(e) => TestResult::failed(name, vec![format!("error setting env vars: {e:#}")]),
    };
    driver.destroy();
    result
}

fn run_file(st: &StructureTests, factory: &Factory, out: &mut Vec<TestResult>) {
    let v1 = st.schema_version == SchemaVersion::V1;
    for test in &st.command_tests {
        if let Err(errors) = validate_command(test, v1) {
            if v1 {
                // CST v1 logs the first problem and skips the test.
                eprintln!("container-structure-test: {}", errors[0]);
            } else {
                out.push(TestResult::failed(&test.name, errors));
            }
            continue;
        }
        let mut driver = factory.driver(st);
        let setup = if v1 {
            let vars: Vec<EnvVar> = st.global_env_vars.iter().chain(&test.env_vars).cloned().collect();
            driver.setup(&vars, &test.setup).map_err(|e| format!("{e:#}"))
        } else {
            match driver.set_env(&st.global_env_vars) {
                Err(e) => Err(format!("error setting env vars: {e:#}")),
                Ok(()) => driver.setup(&test.env_vars, &test.setup).map_err(|e| format!("error in setup: {e:#}")),
            }
        };
        match setup {
            Ok(()) => out.push(run_command(test, driver.as_mut(), v1)),
            Err(e) if v1 => eprintln!("container-structure-test: {e}"),
            Err(e) => out.push(TestResult::failed(&test.name, vec![e])),
        }
        driver.destroy();
    }
    for test in &st.file_content_tests {
        if let Err(errors) = validate_path_test(&test.name, &test.path) {
            if v1 {
                eprintln!("container-structure-test: {}", errors[0]);
            } else {
                out.push(TestResult::failed(&test.name, errors));
            }
            continue;
        }
        out.push(run_file_test(st, factory, &test.name, |driver| run_file_content(test, driver, v1)));
    }
    for test in &st.file_existence_tests {
        if let Err(errors) = validate_path_test(&test.name, &test.path) {
            // CST v1 only rejects a missing name here (its path check is a no-op).
            if v1 {
                if test.name.is_empty() {
                    eprintln!("container-structure-test: {}", errors[0]);
                    continue;
                }
            } else {
                out.push(TestResult::failed(&test.name, errors));
                continue;
            }
        }
        out.push(run_file_test(st, factory, &test.name, |driver| run_file_existence(test, driver, v1)));
    }
    for test in &st.license_tests {
        let mut driver = factory.driver(st);
        out.push(run_license(test, driver.as_mut()));
        driver.destroy();
    }
    if !v1 && !st.metadata_test.is_empty() {
        if let Err(errors) = validate_metadata(&st.metadata_test) {
            out.push(TestResult::failed("Metadata Test", errors));
        } else {
            let mut driver = factory.driver(st);
            out.push(run_metadata(&st.metadata_test, driver.as_mut()));
            driver.destroy();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Validation (CST's Validate methods).

fn validate_command(t: &CommandTest, v1: bool) -> Result<(), Vec<String>> {
    let mut errors = Vec::new();
    if t.name.is_empty() {
        errors.push("Please provide a valid name for every test".to_owned());
    }
    if t.command.is_empty() && (!v1 || t.args.is_empty()) {
        errors.push(format!("Please provide a valid command to run for test {}", t.name));
    }
    if t.setup.iter().any(Vec::is_empty) {
        errors.push(
            "Error in setup command configuration encountered; please check formatting and remove all empty setup commands".to_owned(),
        );
    }
    if t.teardown.iter().any(Vec::is_empty) {
        errors.push(
            "Error in teardown command configuration encountered; please check formatting and remove all empty teardown commands"
                .to_owned(),
        );
    }
    for e in &t.env_vars {
        if e.key.is_empty() || e.value.is_empty() {
            errors.push("Please provide non-empty keys and values for all specified env vars".to_owned());
        }
    }
    if errors.is_empty() { Ok(()) } else { Err(errors) }
}

fn validate_path_test(name: &str, path: &str) -> Result<(), Vec<String>> {
    let mut errors = Vec::new();
    if name.is_empty() {
        errors.push("Please provide a valid name for every test".to_owned());
    }
    if path.is_empty() {
        errors.push(format!("Please provide a valid file path for test {name}"));
    }
    if errors.is_empty() { Ok(()) } else { Err(errors) }
}

fn validate_metadata(m: &MetadataTest) -> Result<(), Vec<String>> {
    let mut errors = Vec::new();
    for e in &m.env_vars {
        if e.key.is_empty() {
            errors.push("Environment variable key cannot be empty".to_owned());
        }
    }
    for l in &m.labels {
        if l.key.is_empty() {
            errors.push("Label key cannot be empty".to_owned());
        }
    }
    for p in &m.exposed_ports {
        if p.is_empty() {
            errors.push("Port cannot be empty".to_owned());
        }
    }
    for v in &m.volumes {
        if v.is_empty() {
            errors.push("Volume cannot be empty".to_owned());
        }
    }
    if errors.is_empty() { Ok(()) } else { Err(errors) }
}

// ---------------------------------------------------------------------------------------------
// The tests.

/// Go `regexp.MatchString` == `should_match`; an invalid regex counts as a failure.
fn regex_check(pattern: &str, text: &str, should_match: bool) -> bool {
    match regex::Regex::new(pattern) {
        Ok(re) => re.is_match(text) == should_match,
        Err(e) => {
            eprintln!("container-structure-test: Error compiling regex {pattern} : {e}");
            false
        }
    }
}

fn config_or_default(driver: &mut dyn Backend) -> ImageConfig {
    driver.config().unwrap_or_else(|e| {
        eprintln!("container-structure-test: error retrieving image config: {e:#}");
        ImageConfig::default()
    })
}

fn run_command(t: &CommandTest, driver: &mut dyn Backend, v1: bool) -> TestResult {
    let config = config_or_default(driver);
    let full: Vec<String> = std::iter::once(&t.command).chain(&t.args).map(|a| expand::expand_env(a, &config.env)).collect();
    let start = Instant::now();
    let outcome = driver.process_command(&t.env_vars, &full);
    let mut result = TestResult::new(format!("Command Test: {}", t.name));
    result.duration = start.elapsed();
    let (stdout, stderr, exit_code) = match outcome {
        Ok(o) => o,
        Err(e) => {
            result.error(format!("{e:#}"));
            return result;
        }
    };
    // CST's messages: "<Expected|Excluded> string '<p>' <not found|found> in <error|output>",
    // with the stream's text appended in schema 2.
    let checks = [
        (&t.expected_error, &stderr, true, "error"),
        (&t.excluded_error, &stderr, false, "error"),
        (&t.expected_output, &stdout, true, "output"),
        (&t.excluded_output, &stdout, false, "output"),
    ];
    for (patterns, text, expected, stream) in checks {
        for p in patterns {
            if !regex_check(p, text, expected) {
                let (what, found) = if expected { ("Expected", "not found") } else { ("Excluded", "found") };
                result.error(if v1 {
                    format!("{what} string '{p}' {found} in {stream}")
                } else {
                    format!("{what} string '{p}' {found} in {stream} '{text}'")
                });
            }
        }
    }
    if t.exit_code != exit_code {
        result.error(format!("Test '{}' exited with incorrect error code. Expected: {}, Actual: {}", t.name, t.exit_code, exit_code));
    }
    result.stdout = stdout;
    result.stderr = stderr;
    result
}

fn run_file_content(t: &FileContentTest, driver: &mut dyn Backend, v1: bool) -> TestResult {
    let mut result = TestResult::new(format!("File Content Test: {}", t.name));
    let start = Instant::now();
    let contents = match driver.read_file(&t.path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) => {
            result.error(format!("Failed to open {}. Error: {e:#}", t.path));
            return result;
        }
    };
    for p in &t.expected_contents {
        if !regex_check(p, &contents, true) {
            result.error(format!("Expected string '{p}' not found in file content string '{contents}'"));
        }
    }
    for p in &t.excluded_contents {
        if !regex_check(p, &contents, false) {
            result.error(if v1 {
                format!("Expected string '{p}' not found in file content string '{contents}'")
            } else {
                format!("Excluded string '{p}' found in file content string '{contents}'")
            });
        }
    }
    let _ = start;
    result
}

fn run_file_existence(t: &FileExistenceTest, driver: &mut dyn Backend, v1: bool) -> TestResult {
    let mut result = TestResult::new(format!("File Existence Test: {}", t.name));
    let path = if v1 {
        t.path.clone()
    } else {
        let config = config_or_default(driver);
        expand::expand_env(&t.path, &config.env)
    };
    let info = match driver.stat_file(&path) {
        Ok(info) => {
            if !t.should_exist {
                result.error(format!("File {} should not exist but does", t.path));
            }
            info
        }
        Err(e) => {
            if t.should_exist {
                result.error(format!("Error examining file in container: {e:#}"));
            }
            return result;
        }
    };
    if !t.should_exist {
        return result;
    }
    let mode = filemode::to_string(info.mode);
    if !t.permissions.is_empty() && mode != t.permissions {
        result.error(format!("{} has incorrect permissions. Expected: {}, Actual: {mode}", t.path, t.permissions));
    }
    if !t.is_executable_by.is_empty() {
        let bits = match t.is_executable_by.as_str() {
            "any" => Some(0o111),
            "owner" => Some(0o100),
            "group" => Some(0o010),
            "other" => Some(0o001),
            _ => None,
        };
        match bits {
            Some(bits) if info.mode & bits == 0 => result.error(format!(
                "{} has incorrect executable bit. Expected to be executable by {}, Actual: {mode}",
                t.path, t.is_executable_by
            )),
            Some(_) => {}
            None => result.error(format!("{} not recognised as a valid option", t.is_executable_by)),
        }
    }
    if t.uid != -1 || t.gid != -1 {
        match (info.uid, info.gid) {
            (Some(uid), Some(gid)) => {
                if t.uid != -1 && uid != t.uid {
                    result.error(format!("{} has incorrect user ownership. Expected: {}, Actual: {uid}", t.path, t.uid));
                }
                if t.gid != -1 && gid != t.gid {
                    result.error(format!("{} has incorrect group ownership. Expected: {}, Actual: {gid}", t.path, t.gid));
                }
            }
            _ => result.error(format!("Error checking ownership of file {}", t.path)),
        }
    }
    result
}

const DEBIAN_ROOT: &str = "/usr/share/doc";
const LICENSE_WHITELIST: &[&str] = &["libgnutls30"];
const LICENSE_BLACKLIST: &[&str] = &["AGPL", "WTFPL"];

fn check_license_file(file: &str, driver: &mut dyn Backend) -> Result<(), String> {
    let text = driver.read_file(file).map_err(|e| format!("Error reading license file for {file}: {e:#}"))?;
    let upper = String::from_utf8_lossy(&text).to_uppercase();
    for b in LICENSE_BLACKLIST {
        if upper.contains(b) {
            return Err(format!("Invalid license for {file}, license contains {b}"));
        }
    }
    Ok(())
}

fn run_license(t: &LicenseTest, driver: &mut dyn Backend) -> TestResult {
    let mut result = TestResult::new("License Test".to_owned());
    if t.debian {
        let packages = match driver.read_dir(DEBIAN_ROOT) {
            Ok(p) => p,
            Err(e) => {
                result.error(format!("Error reading directory: {e:#}"));
                return result;
            }
        };
        for p in packages.iter().filter(|p| p.is_dir()) {
            if LICENSE_WHITELIST.contains(&p.name.as_str()) {
                continue;
            }
            let file = format!("{DEBIAN_ROOT}/{}/copyright", p.name);
            if let Err(e) = driver.stat_file(&file) {
                result.error(format!("Error reading license file for {}: {e:#}", p.name));
            }
            if let Err(e) = check_license_file(&file, driver) {
                result.error(e);
            }
        }
    }
    for f in &t.files {
        if let Err(e) = check_license_file(f, driver) {
            result.error(e);
        }
    }
    result
}

/// Go's `%v` of a `[]string`: `[a b c]`.
fn go_list(v: &[String]) -> String {
    format!("[{}]", v.join(" "))
}

/// Expected env vars or labels against the image's: equal, or matching when `isRegex`.
/// `missing` is CST's message for an absent key, with `{}` for the key.
fn check_pairs(result: &mut TestResult, pairs: &[EnvVar], actual: &std::collections::BTreeMap<String, String>, noun: &str, missing: &str) {
    for pair in pairs {
        match actual.get(&pair.key) {
            Some(val) => {
                let ok = if pair.is_regex { regex_check(&pair.value, val, true) } else { &pair.value == val };
                if !ok {
                    result.error(format!("{noun} {} value {val} does not match expected value: {}", pair.key, pair.value));
                }
            }
            None => result.error(missing.replace("{}", &pair.key)),
        }
    }
}

fn run_metadata(m: &MetadataTest, driver: &mut dyn Backend) -> TestResult {
    let mut result = TestResult::new("Metadata Test".to_owned());
    let config = match driver.config() {
        Ok(c) => c,
        Err(e) => {
            result.error(format!("Error retrieving image config: {e:#}"));
            return result;
        }
    };
    check_pairs(&mut result, &m.env_vars, &config.env, "env var", "variable {} not found in image env");
    for pair in &m.unbound_env_vars {
        if config.env.contains_key(&pair.key) {
            result.error(format!("env variable {} should not be present in image metadata", pair.key));
        }
    }
    check_pairs(&mut result, &m.labels, &config.labels, "label", "label {} not found in image metadata");
    if let Some(cmd) = &m.cmd {
        if cmd.len() != config.cmd.len() {
            result.error(format!("Image Cmd {} does not match expected Cmd: {}", go_list(&config.cmd), go_list(cmd)));
        } else {
            for (want, got) in cmd.iter().zip(&config.cmd) {
                if want != got {
                    result.error(format!("Image config Cmd {} does not match expected value: {}", go_list(&config.cmd), go_list(cmd)));
                }
            }
        }
    }
    if let Some(ep) = &m.entrypoint {
        if ep.len() != config.entrypoint.len() {
            result.error(format!("Image entrypoint {} does not match expected entrypoint: {}", go_list(&config.entrypoint), go_list(ep)));
        } else {
            for (want, got) in ep.iter().zip(&config.entrypoint) {
                if want != got {
                    result.error(format!(
                        "Image config entrypoint {} does not match expected value: {}",
                        go_list(&config.entrypoint),
                        go_list(ep)
                    ));
                }
            }
        }
    }
    if !m.workdir.is_empty() && m.workdir != config.workdir {
        result.error(format!("Image workdir {} does not match config workdir: {}", config.workdir, m.workdir));
    }
    if !m.user.is_empty() && m.user != config.user {
        result.error(format!("Image user {} does not match config user: {}", config.user, m.user));
    }
    for p in &m.exposed_ports {
        if !config.exposed_ports.contains(p) {
            result.error(format!("Port {p} not found in config"));
        }
    }
    for p in &m.unexposed_ports {
        if config.exposed_ports.contains(p) {
            result.error(format!("Port {p} should not be exposed"));
        }
    }
    for v in &m.volumes {
        if !config.volumes.contains(v) {
            result.error(format!("Volume {v} not found in config"));
        }
    }
    for v in &m.unmounted_volumes {
        if config.volumes.contains(v) {
            result.error(format!("Volume {v} should not be mounted"));
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regexes_are_unanchored_and_invalid_ones_fail() {
        assert!(regex_check("hello", "say hello world", true));
        assert!(regex_check("^say", "say hello", true));
        assert!(!regex_check("^hello", "say hello", true));
        assert!(regex_check("(?m)^hello$", "a\nhello\nb", true));
        assert!(regex_check("goodbye", "hello", false));
        assert!(!regex_check("(unclosed", "(unclosed", true));
        assert!(!regex_check("(unclosed", "x", false));
    }

    #[test]
    fn metadata_pairs_match_exactly_or_by_regex_with_csts_messages() {
        let pair = |key: &str, value: &str, is_regex| EnvVar { key: key.into(), value: value.into(), is_regex };
        let actual = std::collections::BTreeMap::from([("PATH".to_owned(), "/usr/bin:/bin".to_owned())]);
        let mut result = TestResult::new("Metadata Test".into());
        check_pairs(
            &mut result,
            &[pair("PATH", "/usr/bin:/bin", false), pair("PATH", "^/usr", true)],
            &actual,
            "env var",
            "variable {} not found in image env",
        );
        assert!(result.pass && result.errors.is_empty(), "{:?}", result.errors);
        check_pairs(
            &mut result,
            &[pair("PATH", "/bin", false), pair("HOME", "/root", false)],
            &actual,
            "label",
            "label {} not found in image metadata",
        );
        assert!(!result.pass);
        assert_eq!(
            result.errors,
            ["label PATH value /usr/bin:/bin does not match expected value: /bin", "label HOME not found in image metadata"]
        );
    }

    #[test]
    fn go_list_formatting() {
        assert_eq!(go_list(&[]), "[]");
        assert_eq!(go_list(&["/bin/sh".into(), "-c".into()]), "[/bin/sh -c]");
    }
}
