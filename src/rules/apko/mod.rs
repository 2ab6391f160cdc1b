//! rules_apko: `apko_image` (an OCI image built from apk packages, `apko_image.rs`), the
//! targets of the repository `translate_lock` generates from an `apko.lock.json`
//! (`apk_import`, `apk_filegroup`: `fetch.rs`), reading `.apk` files (`apk.rs`) and
//! installing them into a layer as apko does (`install.rs`). The lock is read when the
//! repository files are evaluated (`load/apko_lock.rs`), one target per package, so changing
//! one package fetches that package only.

pub mod apk;
pub mod apko_image;
pub mod fetch;
pub mod install;

use super::Kind;

/// rules_apko's kinds.
pub const KINDS: &[Kind] = &[
    Kind { schema: apko_image::schema, analyze: apko_image::analyze },
    Kind { schema: fetch::import_schema, analyze: fetch::analyze_import },
    Kind { schema: fetch::contents_schema, analyze: fetch::analyze_contents },
];
