# The workspace bench/build.sh and bench/remote.sh measure: `gen_services DIR N` writes N Go
# services (each a go_library of package main importing fmt and 1-2 of 5 shared libraries, a
# go_binary embedding it with an x_defs entry, and a pkg_tar of the binary, all made by one
# shared macro) into DIR. Sourced, not run.

gen_services() {
local ws=$1 n=$2 l i svc d libs deps imports calls
cat > "$ws/MODULE.bazel" <<'EOF'
module(name = "bench")

bazel_dep(name = "rules_go", version = "0.62.0", repo_name = "io_bazel_rules_go")
bazel_dep(name = "rules_pkg", version = "1.3.0")
EOF

mkdir -p "$ws/tools"
: > "$ws/tools/BUILD.bazel"
cat > "$ws/tools/service.bzl" <<'EOF'
"""One service: its main package, the binary (named by x_defs) and a layer holding it."""

load("@io_bazel_rules_go//go:def.bzl", "go_binary", "go_library")
load("@rules_pkg//:pkg.bzl", "pkg_tar")

def service(name, deps = []):
    importpath = "example.com/bench/svc/" + name
    go_library(name = name + "_lib", srcs = ["main.go"], importpath = importpath, deps = deps)
    go_binary(name = name, embed = [":" + name + "_lib"], x_defs = {importpath + ".name": name})
    pkg_tar(name = name + "_layer", srcs = [":" + name], package_dir = "/app")
EOF

for ((l = 0; l < 5; l++)); do
    mkdir -p "$ws/lib/l$l"
    printf 'package l%d\n\n// Name names this library.\nfunc Name() string { return "l%d" }\n' "$l" "$l" \
        > "$ws/lib/l$l/l$l.go"
    cat > "$ws/lib/l$l/BUILD.bazel" <<EOF
load("@io_bazel_rules_go//go:def.bzl", "go_library")

go_library(name = "l$l", srcs = ["l$l.go"], importpath = "example.com/bench/lib/l$l",
           visibility = ["//visibility:public"])
EOF
done

for ((i = 0; i < n; i++)); do
    svc=$(printf 's%04d' "$i")
    d=$ws/svc/$svc
    mkdir -p "$d"
    libs=($((i % 5)))
    ((i % 2 == 0)) && libs+=($(((i + 2) % 5)))
    deps="" imports="" calls=""
    for l in "${libs[@]}"; do
        deps+="${deps:+, }\"//lib/l$l\""
        imports+=$'\t'"\"example.com/bench/lib/l$l\""$'\n'
        calls+=", l$l.Name()"
    done
    printf 'load("//tools:service.bzl", "service")\n\nservice(name = "%s", deps = [%s])\n' "$svc" "$deps" \
        > "$d/BUILD.bazel"
    printf 'package main\n\nimport (\n\t"fmt"\n\n%s)\n\nvar name = "unset"\n\nfunc main() { fmt.Println("hello from", name%s) }\n' \
        "$imports" "$calls" > "$d/main.go"
done
}
