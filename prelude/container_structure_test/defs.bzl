"""ocib's @container_structure_test//:defs.bzl: the rule is native to ocib (its runner too)."""

container_structure_test = ocib.container_structure_test
