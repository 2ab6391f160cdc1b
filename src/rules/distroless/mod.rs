//! rules_distroless: Debian packages from a lock (`apt.install`'s repositories: `deb_archive`,
//! `deb_data`, `deb_control` in `deb_import`), dpkg status entries (`dpkg`), and the rules of
//! `@rules_distroless//distroless:defs.bzl`: `flatten`, `passwd`, `group`, `home`,
//! `os_release` (`files`), `cacerts` and `locale` (`cacerts`). `archive` reads .debs and
//! compressed tars and writes the deterministic tars they all produce. The repositories
//! themselves are declared at load time (`load::apt`).

pub mod archive;
pub mod cacerts;
pub mod deb_import;
pub mod dpkg;
pub mod files;
pub mod flatten;

use super::Kind;

/// rules_distroless's kinds (`passwd`, `group`, `home` and `os_release` are macros upstream;
/// the prelude macros compute their text and call these).
pub const KINDS: &[Kind] = &[
    Kind { schema: deb_import::archive_schema, analyze: deb_import::analyze_archive },
    Kind { schema: deb_import::data_schema, analyze: deb_import::analyze_data },
    Kind { schema: deb_import::control_schema, analyze: deb_import::analyze_control },
    Kind { schema: dpkg::status_schema, analyze: dpkg::analyze_status },
    Kind { schema: dpkg::statusd_schema, analyze: dpkg::analyze_statusd },
    Kind { schema: flatten::schema, analyze: flatten::analyze },
    Kind { schema: || files::etc_file_schema("passwd"), analyze: files::analyze_etc_file },
    Kind { schema: || files::etc_file_schema("group"), analyze: files::analyze_etc_file },
    Kind { schema: files::home_schema, analyze: files::analyze_home },
    Kind { schema: files::os_release_schema, analyze: files::analyze_os_release },
    Kind { schema: cacerts::cacerts_schema, analyze: cacerts::analyze_cacerts },
    Kind { schema: cacerts::locale_schema, analyze: cacerts::analyze_locale },
];
