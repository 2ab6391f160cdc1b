"""ocib's @rules_oci//oci:pull.bzl: `oci_pull` declares the repositories rules_oci would."""

oci_pull = ocib.oci_pull
