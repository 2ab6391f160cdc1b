//! Remote cache servers for tests, on loopback: Debian's nginx with WebDAV (Bazel's HTTP cache
//! protocol) and BuildGrid (REAPI over gRPC, from PyPI). One of each is shared by every test
//! of a run ([`nginx`], [`buildgrid`]); tests that break their server start their own.
//!
//! A server runs under `sh -c 'server & cat >/dev/null; kill $!'` with its stdin a pipe this
//! process holds: when the test process exits, however it exits, the pipe closes and the
//! server is stopped and its directory removed (a `static` is never dropped, and
//! PR_SET_PDEATHSIG follows the spawning thread, not the process).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A server process and its files, stopped when dropped.
pub struct Server {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Server {
    /// Stops the server (closes the pipe its wrapper waits on, then waits for it).
    pub fn stop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }

    /// Where the server keeps its files.
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("free port").local_addr().expect("addr").port()
}

/// Runs `command` (a shell command line) until this process exits or the server is dropped;
/// waits until it listens on `port`.
fn start(command: &str, port: u16, dir: tempfile::TempDir, log: &Path) -> Server {
    let mut server = start_unlistening(command, dir, log);
    server.port = port;
    let deadline = Instant::now() + Duration::from_secs(120);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline || server.child.try_wait().ok().flatten().is_some() {
            server.stop();
            panic!("the server did not start: {command}\n{}", std::fs::read_to_string(log).unwrap_or_default());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    server
}

/// The token `/hdr/` requires in `X-Cache-Token`, and the user `/private/` requires.
pub const HEADER_TOKEN: &str = "t0ken";
pub const USER: &str = "ci";
pub const PASSWORD: &str = "s3cret-p4ss";

/// Starts nginx as a WebDAV store (`dav_methods PUT; create_full_put_path on`), serving
/// `<dir>/root`; `/private/` needs basic auth ([`USER`], [`PASSWORD`]), `/hdr/` the header
/// `X-Cache-Token: t0ken`. Fails the test when nginx is not installed (scripts/setup.sh).
pub fn start_nginx() -> Server {
    start_nginx_with(None)
}

/// TLS for a test server: its certificate and key, and the CA whose certificates it requires
/// of clients (mutual TLS) if any.
pub struct ServerTls {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: Option<PathBuf>,
}

/// [`start_nginx`], serving `https://` with `tls` if given.
pub fn start_nginx_with(tls: Option<ServerTls>) -> Server {
    let bin = Path::new("/usr/sbin/nginx");
    assert!(bin.exists(), "this test needs Debian's nginx (scripts/setup.sh installs it)");
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    std::fs::create_dir_all(d.join("root")).expect("mkdir");
    std::fs::create_dir_all(d.join("tmp")).expect("mkdir");
    std::fs::write(d.join("htpasswd"), format!("{USER}:{{PLAIN}}{PASSWORD}\n")).expect("htpasswd");
    let port = free_port();
    // `user root` only matters when the tests run as root (CI): the workers then write the
    // temporary directory's files as its owner. Otherwise nginx ignores it with a notice.
    let dav = "dav_methods PUT DELETE; create_full_put_path on; dav_access user:rw group:r all:r;";
    let config = format!(
        "worker_processes 2;\ndaemon off;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n{user}\
         events {{ worker_connections 512; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/tmp;\n  client_max_body_size 0;\n\
           server {{\n    listen 127.0.0.1:{port}{ssl};\n    root {d}/root;\n{tls}\
             location / {{ {dav} }}\n\
             location /private/ {{ auth_basic cache; auth_basic_user_file {d}/htpasswd; {dav} }}\n\
             location /hdr/ {{ if ($http_x_cache_token != \"{HEADER_TOKEN}\") {{ return 403; }} {dav} }}\n\
           }}\n}}\n",
        d = d.display(),
        user = if unsafe_is_root() { "user root;\n" } else { "" },
        ssl = if tls.is_some() { " ssl" } else { "" },
        tls = match &tls {
            None => String::new(),
            Some(t) => format!(
                "    ssl_certificate {};\n    ssl_certificate_key {};\n{}",
                t.cert.display(),
                t.key.display(),
                t.client_ca
                    .as_ref()
                    .map(|ca| format!("    ssl_client_certificate {};\n    ssl_verify_client on;\n", ca.display()))
                    .unwrap_or_default()
            ),
        },
    );
    std::fs::write(d.join("nginx.conf"), config).expect("config");
    let log = d.join("server.log");
    let command = format!("{} -e {}/error.log -c {}/nginx.conf", bin.display(), d.display(), d.display());
    start(&command, port, dir, &log)
}

fn unsafe_is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// The nginx every test shares (each under its own path prefix).
pub fn nginx() -> &'static Server {
    static NGINX: OnceLock<Server> = OnceLock::new();
    NGINX.get_or_init(start_nginx)
}

/// BuildGrid's `bgd`: `$OCIB_BUILDGRID`, else the venv scripts/setup.sh makes. Fails the test
/// when it is missing.
pub fn bgd() -> PathBuf {
    let bin = std::env::var_os("OCIB_BUILDGRID")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(&std::env::var("OCIB_TOOLS").unwrap_or_else(|_| "/opt/ocib-tools".into())).join("buildgrid/bin/bgd"));
    assert!(bin.exists(), "this test needs BuildGrid's bgd at {} (scripts/setup.sh installs it)", bin.display());
    bin
}

/// Starts BuildGrid with an action cache, CAS and ByteStream on disk under `<dir>/root` (no
/// database: the Execution service is not configured), instance name `""`.
pub fn start_buildgrid() -> Server {
    start_buildgrid_with(None)
}

/// [`start_buildgrid`], serving `grpcs://` with `tls` if given (BuildGrid's `!channel`
/// `credentials`: `tls-server-key`, `tls-server-cert`, and `tls-client-certs`, which makes
/// the server require a client certificate signed by them).
pub fn start_buildgrid_with(tls: Option<ServerTls>) -> Server {
    let bin = bgd();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    std::fs::create_dir_all(d.join("root")).expect("mkdir");
    let port = free_port();
    let config = format!(
        "server:\n  - !channel\n    address: \"127.0.0.1:{port}\"\n{channel}\
         authorization:\n  method: none\n\
         storages:\n  - !disk-storage &cas-storage\n    path: {root}\n\
         caches:\n  - !lru-action-cache &ac\n    storage: *cas-storage\n    max-cached-refs: 100000\n    allow-updates: true\n    cache-failed-actions: false\n\
         instances:\n  - name: \"\"\n    services:\n      - !action-cache\n        cache: *ac\n      - !cas\n        storage: *cas-storage\n      - !bytestream\n        storage: *cas-storage\n",
        root = d.join("root").display(),
        channel = match &tls {
            None => "    insecure-mode: true\n".to_owned(),
            Some(t) => format!(
                "    insecure-mode: false\n    credentials:\n      tls-server-key: {}\n      tls-server-cert: {}\n{}",
                t.key.display(),
                t.cert.display(),
                t.client_ca.as_ref().map(|ca| format!("      tls-client-certs: {}\n", ca.display())).unwrap_or_default()
            ),
        },
    );
    std::fs::write(d.join("buildgrid.yml"), config).expect("config");
    let command = format!("{} server start {}/buildgrid.yml", bin.display(), d.display());
    let log = d.join("server.log");
    start(&command, port, dir, &log)
}

/// The BuildGrid every test shares.
pub fn buildgrid() -> &'static Server {
    static BUILDGRID: OnceLock<Server> = OnceLock::new();
    BUILDGRID.get_or_init(start_buildgrid)
}

/// Debian's PostgreSQL server binaries (`postgresql`, scripts/setup.sh), newest major first.
fn postgres_bin() -> PathBuf {
    let mut majors: Vec<PathBuf> =
        std::fs::read_dir("/usr/lib/postgresql").into_iter().flatten().flatten().map(|e| e.path().join("bin")).collect();
    majors.sort();
    let bin = majors.pop().filter(|b| b.join("postgres").is_file());
    bin.unwrap_or_else(|| panic!("this test needs Debian's postgresql (scripts/setup.sh installs it)"))
}

/// Runs a PostgreSQL tool: as the `postgres` user when the tests run as root (initdb and the
/// server refuse root), through `runuser`.
fn pg_command(tool: &Path) -> Command {
    if unsafe_is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(tool);
        c
    } else {
        Command::new(tool)
    }
}

/// Starts a private PostgreSQL cluster on a loopback port (trust authentication for the
/// `bgd` user, database `bgd`), with BuildGrid's schema migrated into it.
pub fn start_postgres() -> Server {
    let bin = postgres_bin();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let data = d.join("data");
    if unsafe_is_root() {
        // The server runs as `postgres`: it must reach and own its directory.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let status = Command::new("chown").arg("postgres").arg(d).status().expect("chown");
        assert!(status.success(), "chown postgres {}", d.display());
    }
    let out = pg_command(&bin.join("initdb"))
        .arg("-D")
        .arg(&data)
        .args(["-U", "bgd", "--auth=trust", "-E", "UTF8", "--no-sync"])
        .output()
        .expect("initdb");
    assert!(out.status.success(), "initdb: {}", String::from_utf8_lossy(&out.stderr));
    let port = free_port();
    // `runuser` passes the wrapper's SIGTERM on to the server (a fast shutdown).
    let runas = if unsafe_is_root() { "runuser -u postgres -- " } else { "" };
    let command = format!(
        "{runas}{} -D {} -h 127.0.0.1 -p {port} -k {} -c fsync=off -c max_connections=200",
        bin.join("postgres").display(),
        data.display(),
        d.display()
    );
    let log = d.join("server.log");
    let server = start(&command, port, dir, &log);
    let mut ready = false;
    for _ in 0..100 {
        let out = pg_command(&bin.join("createdb"))
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "bgd", "bgd"])
            .output()
            .expect("createdb");
        if out.status.success() {
            ready = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(ready, "createdb failed:\n{}", std::fs::read_to_string(&log).unwrap_or_default());
    let out = Command::new(bgd()).args(["migrate", "apply", &postgres_url(port)]).output().expect("bgd migrate");
    assert!(out.status.success(), "bgd migrate apply: {}", String::from_utf8_lossy(&out.stderr));
    server
}

/// The connection BuildGrid uses: psycopg2 (psycopg 3's notifier hangs BuildGrid 0.4.4).
fn postgres_url(port: u16) -> String {
    format!("postgresql+psycopg2://bgd@127.0.0.1:{port}/bgd")
}

/// BuildGrid with the Execution (and Bots) service over PostgreSQL, plus action cache, CAS and
/// ByteStream, instance `""`, and the test bots that run its actions.
pub struct ExecGrid {
    /// Stopped last (fields drop in order).
    pub server: Server,
    pub bots: Vec<Server>,
    pub postgres: Server,
}

impl ExecGrid {
    /// `grpc://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("grpc://127.0.0.1:{}", self.server.port)
    }
}

/// The platform property keys the test grid knows: `OSFamily` is matched against the bots'
/// (which say `linux`); `ocib-test` is accepted and ignored when matching.
pub const BOT_OS_FAMILY: &str = "linux";

/// The BuildGrid configuration with execution: the reference configuration's `sql-scheduler`
/// with a dynamic property set, and the shared services of [`start_buildgrid`]. The gRPC
/// thread pool is BuildGrid's limit on concurrent calls, and every running `Execute` stream
/// and bot long-poll holds one: 200 is room for remote `--jobs` of several builds at once.
pub fn exec_config(port: u16, cas_root: &Path, postgres_port: u16) -> String {
    format!(
        "server:\n  - !channel\n    address: \"127.0.0.1:{port}\"\n    insecure-mode: true\n\
         thread-pool-size: 200\n\
         authorization:\n  method: none\n\
         connections:\n  - !sql-connection &sql\n    connection-string: {url}\n    pool-size: 10\n    max-overflow: 20\n\
         storages:\n  - !disk-storage &cas-storage\n    path: {root}\n\
         caches:\n  - !lru-action-cache &ac\n    storage: *cas-storage\n    max-cached-refs: 100000\n    allow-updates: true\n    cache-failed-actions: false\n\
         schedulers:\n  - !sql-scheduler &scheduler\n    sql: *sql\n    storage: *cas-storage\n    action-cache: *ac\n\
         \x20   property-set: !dynamic-property-set\n      match-property-keys: [OSFamily]\n      wildcard-property-keys: [ocib-test]\n\
         instances:\n  - name: \"\"\n    services:\n      - !action-cache\n        cache: *ac\n      - !execution\n        scheduler: *scheduler\n\
         \x20     - !cas\n        storage: *cas-storage\n      - !bytestream\n        storage: *cas-storage\n",
        url = postgres_url(postgres_port),
        root = cas_root.display()
    )
}

/// Starts the test bot (tests/bot/bot.py, under BuildGrid's python) against `port`. Commands
/// get the bot's PATH, OCIB_GO, GOCACHE and HOME when they do not set them: the worker's
/// environment provides Go, as a worker image would.
pub fn start_bot(port: u16, name: &str) -> Server {
    let python = bgd().with_file_name("python");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bot/bot.py");
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("bot.log");
    let command = format!(
        "{} {} --remote 127.0.0.1:{port} --workdir {} --name {name} --property OSFamily={BOT_OS_FAMILY} \
         --inherit-env PATH --inherit-env OCIB_GO --inherit-env GOCACHE --inherit-env HOME",
        python.display(),
        script.display(),
        dir.path().display()
    );
    start_unlistening(&command, dir, &log)
}

/// Like [`start`], for a process that listens on no port.
fn start_unlistening(command: &str, dir: tempfile::TempDir, log: &Path) -> Server {
    let log_file = std::fs::File::create(log).expect("log");
    let child = Command::new("sh")
        .arg("-c")
        // The server's directory goes with it: a shared server lives in a `static`, whose
        // TempDir is never dropped (its files were left in /tmp by every run).
        .arg(format!("{command} & pid=$!; cat >/dev/null; kill $pid; wait $pid; rm -rf -- \"$0\""))
        .arg(dir.path())
        .stdin(Stdio::piped())
        .stdout(log_file.try_clone().expect("log"))
        .stderr(log_file)
        .spawn()
        .expect("start a process");
    Server { child, port: 0, dir }
}

/// Starts PostgreSQL, BuildGrid with execution, and `bots` bots.
pub fn start_exec_grid(bots: usize) -> ExecGrid {
    let postgres = start_postgres();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    std::fs::create_dir_all(d.join("root")).expect("mkdir");
    let port = free_port();
    std::fs::write(d.join("buildgrid.yml"), exec_config(port, &d.join("root"), postgres.port)).expect("config");
    let command = format!("{} server start {}/buildgrid.yml", bgd().display(), d.display());
    let log = d.join("server.log");
    let server = start(&command, port, dir, &log);
    let bots = (0..bots).map(|i| start_bot(port, &format!("ocib-test-bot-{}-{i}", std::process::id()))).collect();
    ExecGrid { server, bots, postgres }
}

/// The Execution-capable BuildGrid (and its bots) every test shares.
pub fn exec_grid() -> &'static ExecGrid {
    static GRID: OnceLock<ExecGrid> = OnceLock::new();
    GRID.get_or_init(|| start_exec_grid(2))
}

/// The `(remote hits, disk hits, executed)` counts of a build's summary line.
pub fn counts(stderr: &str) -> (usize, usize, usize) {
    let re = regex::Regex::new(r"(?m)^INFO: \d+ process(?:es)?[:.](.*)$").expect("regex");
    let caps = re.captures(stderr).unwrap_or_else(|| panic!("no summary line in:\n{stderr}"));
    let count = |what: &str| {
        regex::Regex::new(&format!(r"(\d+) {what}")).expect("regex").captures(&caps[1]).map_or(0, |c| c[1].parse().expect("count"))
    };
    (count("remote cache hit"), count("disk cache hit"), count("internal") + count("local"))
}

/// The number of actions a build's summary line says ran on the remote executor.
pub fn remote_executed(stderr: &str) -> usize {
    let re = regex::Regex::new(r"(?m)^INFO: \d+ process(?:es)?[:.].*?(\d+) remote\.?$").expect("regex");
    re.captures(stderr).map_or(0, |c| c[1].parse().expect("count"))
}

/// Every file under `dir` (relative path → bytes), for byte-identity checks.
pub fn files_under(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    walkdir::WalkDir::new(dir)
        .follow_links(false)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            let rel = e.path().strip_prefix(dir).expect("under dir").to_string_lossy().into_owned();
            (rel, std::fs::read(e.path()).expect("read"))
        })
        .collect()
}

/// A test PKI made with openssl: a CA, a server certificate it signs for `127.0.0.1` and
/// `localhost`, a client certificate it signs, and a second CA that signed nothing here.
pub struct Pki {
    pub dir: tempfile::TempDir,
}

impl Pki {
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }
    pub fn server_cert(&self) -> PathBuf {
        self.dir.path().join("server.pem")
    }
    pub fn server_key(&self) -> PathBuf {
        self.dir.path().join("server.key")
    }
    pub fn client_cert(&self) -> PathBuf {
        self.dir.path().join("client.pem")
    }
    pub fn client_key(&self) -> PathBuf {
        self.dir.path().join("client.key")
    }
    pub fn other_ca(&self) -> PathBuf {
        self.dir.path().join("other-ca.pem")
    }

    /// The server's TLS files, requiring client certificates of this CA if `mutual`.
    pub fn server(&self, mutual: bool) -> ServerTls {
        ServerTls { cert: self.server_cert(), key: self.server_key(), client_ca: mutual.then(|| self.ca()) }
    }
}

/// Makes a [`Pki`] (P-256 keys, valid two days). Fails the test when openssl is missing.
pub fn make_pki() -> Pki {
    super::require_tool("openssl", &["version"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let script = r#"set -e
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
key ca.key
openssl req -x509 -new -key ca.key -out ca.pem -days 2 -subj /CN=ocib-test-ca \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
key other-ca.key
openssl req -x509 -new -key other-ca.key -out other-ca.pem -days 2 -subj /CN=ocib-other-ca \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
sign() { # name, extensions
    key "$1.key"
    openssl req -new -key "$1.key" -out "$1.csr" -subj "/CN=$1"
    printf '%b' "$2" > "$1.ext"
    openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -out "$1.pem" -days 2 -extfile "$1.ext" 2>/dev/null
}
sign server 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n'
sign client 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n'
"#;
    let out = Command::new("sh").arg("-c").arg(script).current_dir(dir.path()).output().expect("run openssl");
    assert!(out.status.success(), "making the test PKI failed:\n{}", String::from_utf8_lossy(&out.stderr));
    Pki { dir }
}
