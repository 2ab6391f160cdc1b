"""ocib's @rules_pkg//pkg:pkg.bzl."""

load("//pkg:tar.bzl", _pkg_tar = "pkg_tar")

pkg_tar = _pkg_tar
pkg_deb = ocib.unknown_rule("pkg_deb_impl")
pkg_zip = ocib.unknown_rule("pkg_zip_impl")
