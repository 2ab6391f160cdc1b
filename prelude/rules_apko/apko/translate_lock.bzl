"""ocib's @rules_apko//apko:translate_lock.bzl: the WORKSPACE form of `apko.translate_lock`."""

translate_apko_lock = ocib.translate_apko_lock
