"""ocib's @rules_pkg//:pkg.bzl (re-exports //pkg:pkg.bzl)."""

load("//pkg:pkg.bzl", _pkg_deb = "pkg_deb", _pkg_tar = "pkg_tar", _pkg_zip = "pkg_zip")

pkg_tar = _pkg_tar
pkg_deb = _pkg_deb
pkg_zip = _pkg_zip
