"""ocib's @rules_distroless//apt:defs.bzl: dpkg status entries from packages' control archives."""

dpkg_status = ocib.dpkg_status
dpkg_statusd = ocib.dpkg_statusd
