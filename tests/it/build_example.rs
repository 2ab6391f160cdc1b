//! BUILD.example (the annotated example in the repository root) evaluates, and declares the
//! chain of targets its comments describe.

use crate::common::{query_ok, workspace};

#[test]
fn build_example_evaluates() {
    let example = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/BUILD.example")).expect("BUILD.example");
    let module = "module(name = \"monorepo\")\n\
        oci = use_extension(\"@rules_oci//oci:extensions.bzl\", \"oci\")\n\
        oci.pull(name = \"wolfi_base\", image = \"cgr.dev/chainguard/wolfi-base\", digest = \"sha256:1111111111111111111111111111111111111111111111111111111111111111\", platforms = [\"linux/amd64\"])\n\
        use_repo(oci, \"wolfi_base\", \"wolfi_base_linux_amd64\")\n";
    let ws = workspace(&[
        ("MODULE.bazel", module),
        ("cmd/worker/BUILD.bazel", &example),
        ("cmd/worker/main.go", "package main\n\nvar version = \"dev\"\n\nfunc main() {}\n"),
        ("cmd/worker/main_test.go", "package main\n"),
        ("cmd/worker/image_test.yaml", "schemaVersion: \"2.0.0\"\n"),
    ]);
    let kinds = query_ok(
        ws.path(),
        &["query", "--order_output=no", "//cmd/worker:all - attr(tags, manual, //cmd/worker:all)", "--output=label_kind"],
    );
    assert_eq!(
        kinds,
        [
            // rules_oci 1.x's oci_tarball does not mark its tags file manual.
            "_write_file rule //cmd/worker:_image_tarball_write_tags",
            "oci_push rule //cmd/worker:candidate_push",
            "oci_image rule //cmd/worker:image",
            "_jq_rule rule //cmd/worker:image.digest",
            "oci_tarball rule //cmd/worker:image_tarball",
            "container_structure_test rule //cmd/worker:image_test",
            "pkg_tar_impl rule //cmd/worker:tar_worker",
            "go_binary rule //cmd/worker:worker",
            "go_library rule //cmd/worker:worker_lib",
        ]
    );
    let srcs = query_ok(ws.path(), &["query", "labels(srcs, //cmd/worker:worker_lib)"]);
    assert_eq!(srcs, ["//cmd/worker:main.go"]);
    let deps = query_ok(ws.path(), &["query", "deps(//cmd/worker:candidate_push)"]);
    assert!(deps.contains(&"@wolfi_base_linux_amd64//:wolfi_base_linux_amd64".to_owned()), "{deps:?}");
}
