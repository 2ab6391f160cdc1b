"""ocib's @rules_apko//apko/private:apk.bzl: the targets of a translated lock's repository."""

apk_import = ocib.apk_import
apk_filegroup = ocib.apk_filegroup
