//! `ocib test`: go_test (internal and external test packages, a generated main, env, data),
//! sh_test, cached results, failures with exit 3 and JUnit files, timeouts, exit 4.

use crate::common;

use crate::common::{copy_workspace, ocib_env, require_go};

fn test(ws: &std::path::Path, cache: &std::path::Path, args: &[&str]) -> common::Output {
    let mut all = vec!["test", "--noshow_progress"];
    let cache_flag = format!("--disk_cache={}", cache.display());
    all.push(&cache_flag);
    all.extend_from_slice(args);
    ocib_env(ws, &all, &[("GOCACHE", common::go_cache().to_str().unwrap())])
}

#[test]
fn go_and_sh_tests_pass_then_are_cached() {
    if !require_go() {
        return;
    }
    let ws = copy_workspace("gotests");
    let cache = tempfile::tempdir().unwrap();
    let out = test(ws.path(), cache.path(), &["--test_env=OCIB_TEST_FLAG=on", "//..."]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let passed = regex::Regex::new(r"(?m)^//calc:calc_test +PASSED in \d+\.\ds$").unwrap();
    assert!(passed.is_match(&out.stderr), "{}", out.stderr);
    assert!(out.stderr.contains("Executed 2 out of 2 tests: 2 tests pass."), "{}", out.stderr);
    // The go test ran verbosely into its log, with every test function of both packages.
    let log = std::fs::read_to_string(ws.path().join("ocib-testlogs/calc/calc_test/test.log")).unwrap();
    for name in ["TestDouble", "TestEnvAndData", "TestAdd", "ExampleAdd"] {
        assert!(log.contains(&format!("--- PASS: {name}")), "{log}");
    }
    let sh_log = std::fs::read_to_string(ws.path().join("ocib-testlogs/scripts/passes/test.log")).unwrap();
    assert_eq!(sh_log, "ran with hello\n");
    let xml = std::fs::read_to_string(ws.path().join("ocib-testlogs/scripts/passes/test.xml")).unwrap();
    assert!(xml.contains("<testsuite") && xml.contains("failures=\"0\""), "{xml}");

    // Nothing changed: all cached, nothing runs.
    let again = test(ws.path(), cache.path(), &["--test_env=OCIB_TEST_FLAG=on", "//..."]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(again.stderr.contains("(cached) PASSED"), "{}", again.stderr);
    assert!(again.stderr.contains("Executed 0 out of 2 tests: 2 tests pass."), "{}", again.stderr);
    // --cache_test_results=no runs them anyway.
    let forced = test(ws.path(), cache.path(), &["--cache_test_results=no", "--test_env=OCIB_TEST_FLAG=on", "//..."]);
    assert!(forced.stderr.contains("Executed 2 out of 2 tests"), "{}", forced.stderr);
    // A different --test_env is a different result: the Go test checks it and fails.
    let other_env = test(ws.path(), cache.path(), &["--test_env=OCIB_TEST_FLAG=off", "//calc:all"]);
    assert_eq!(other_env.code, 3, "{}", other_env.stderr);
    // An example whose output comment no longer matches fails the test, as with `go test`.
    let example = ws.path().join("calc/calc_external_test.go");
    let text = std::fs::read_to_string(&example).unwrap().replace("// Output: 5", "// Output: 6");
    std::fs::write(&example, text).unwrap();
    let wrong = test(ws.path(), cache.path(), &["--test_env=OCIB_TEST_FLAG=on", "//calc:all"]);
    assert_eq!(wrong.code, 3, "{}", wrong.stderr);
    let log = std::fs::read_to_string(ws.path().join("ocib-testlogs/calc/calc_test/test.log")).unwrap();
    assert!(log.contains("--- FAIL: ExampleAdd") && log.contains("got:\n5\nwant:\n6"), "{log}");
}

#[test]
fn failing_and_timed_out_tests_exit_3_and_are_not_cached() {
    let ws = copy_workspace("gotests");
    let cache = tempfile::tempdir().unwrap();
    let out = test(ws.path(), cache.path(), &["--test_output=errors", "//scripts:fails", "//scripts:passes"]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(out.stderr.contains("//scripts:fails") && out.stderr.contains("FAILED in"), "{}", out.stderr);
    assert!(out.stderr.contains("this test fails on purpose"), "--test_output=errors shows the log: {}", out.stderr);
    assert!(out.stderr.contains("Executed 2 out of 2 tests: 1 test pass and 1 fails."), "{}", out.stderr);
    let xml = std::fs::read_to_string(ws.path().join("ocib-testlogs/scripts/fails/test.xml")).unwrap();
    assert!(xml.contains("<failure"), "{xml}");
    // A failed test runs again; a passed one is cached.
    let again = test(ws.path(), cache.path(), &["//scripts:fails", "//scripts:passes"]);
    assert!(again.stderr.contains("Executed 1 out of 2 tests"), "{}", again.stderr);
    // Timeouts: --test_timeout overrides the attribute.
    let slow = test(ws.path(), cache.path(), &["--test_timeout=1", "//scripts:slow"]);
    assert_eq!(slow.code, 3, "{}", slow.stderr);
    assert!(slow.stderr.contains("TIMEOUT"), "{}", slow.stderr);
}

#[test]
fn no_tests_is_exit_4_and_manual_tests_are_skipped_by_wildcards() {
    let ws = copy_workspace("gotests");
    let cache = tempfile::tempdir().unwrap();
    let none = test(ws.path(), cache.path(), &["//scripts:all", "--test_tag_filters=nonexistent"]);
    assert_eq!(none.code, 4, "{}", none.stderr);
    let scripts = test(ws.path(), cache.path(), &["//scripts:all"]);
    assert_eq!(scripts.code, 0, "manual failing tests are not run by :all: {}", scripts.stderr);
    assert!(scripts.stderr.contains("Executed 1 out of 1 test"), "{}", scripts.stderr);
}
