//! gale against Go: `examples/interop/go` (`gevclient`) frames like gev's
//! `plugins/protobuf` (`PackMessage`, `Protocol.UnPacket`) and encodes gev's example messages
//! with Go's protobuf runtime (`protowire`). Both directions are checked:
//!
//! - gev → gale: the Go client against the `protobuf` example's server on every driver;
//!   it checks every reply byte for byte and field by field.
//! - gale → gev: the `protobuf-client` logic (gale's encoder and decoder) against the Go
//!   program's server mode.
//!
//! The Go program is built with `go build` into `CARGO_TARGET_TMPDIR`, offline, against
//! Debian's `golang-google-protobuf-dev` (`GO111MODULE=off`, `GOPATH=/usr/share/gocode`;
//! `GALE_GOPATH` overrides the path). Without `go` or that package the tests print a note
//! and pass, so machines without Go still pass; under CI (`CI` set, and not `false` or `0`)
//! they fail instead. Everything runs on 127.0.0.1 and every wait has a deadline.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Output, Stdio};
use std::sync::{OnceLock, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use gale_core::server::ServerConfig;
use gale_core::{Handler, Outgoing};
use gale_examples::protobuf::ProtobufServer;
use gale_examples::protobuf::client::{self, ClientConfig};
use gale_examples::{Driver, RunningServer, start};

#[test]
fn a_go_client_packing_like_gev_gets_the_replies_gale_owes_on_every_driver() {
    let Some(gevclient) = gevclient() else { return };
    for (i, &driver) in Driver::ALL.iter().enumerate() {
        let server = serve(driver, ProtobufServer::new());
        let addr = server.local_addr().expect("a TCP address");
        let out = run(
            Command::new(gevclient)
                .arg("-addr")
                .arg(addr.to_string())
                .args(["-conns", "4", "-n", "1500", "-timeout", "60s"])
                .arg("-seed")
                .arg((11 + i).to_string()),
            RUN_TIMEOUT,
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{driver:?}: gevclient {}: {stdout}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        // 1500 random messages and 7 edge cases on each of the 4 connections.
        assert_eq!(
            stdout.trim(),
            "ok: 6028 replies verified on 4 connections",
            "{driver:?}"
        );
        wait_for_no_connections(&*server);
        server.stop();
    }
}

#[test]
fn the_go_client_notices_a_server_that_answers_wrongly() {
    let Some(gevclient) = gevclient() else { return };
    // The length-prefixed echo server sends each request back: a "msg1"/"msg2" frame where
    // a "response" is due.
    let server = serve(Driver::Mio, gale_examples::handlers::FrameEcho);
    let addr = server.local_addr().expect("a TCP address");
    let out = run(
        Command::new(gevclient)
            .arg("-addr")
            .arg(addr.to_string())
            .args(["-n", "10", "-timeout", "60s"]),
        RUN_TIMEOUT,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("mismatch: connection 0, reply 0:") && stderr.contains(r#"a "msg1" frame"#),
        "{stderr}"
    );
    server.stop();
}

#[test]
fn gales_client_gets_the_replies_it_owes_from_a_go_server() {
    let Some(gevclient) = gevclient() else { return };
    let go_server = GoServer::start(gevclient);
    let mut config = ClientConfig::new(go_server.addr);
    config.conns = 4;
    config.count = 1500;
    config.seed = 5;
    config.timeout = SOCKET_TIMEOUT;
    let report = client::run(&config).unwrap_or_else(|e| panic!("against the Go server: {e}"));
    assert_eq!(report.messages(), 6000);
    assert!(report.msg1 > 0 && report.msg2 > 0, "{report:?}");
    let status = go_server.stop();
    assert!(status.success(), "the Go server exited with {status}");
}

/// The Go program, built once per test binary; `None` (after a note on stderr) when Go or
/// Go's protobuf package is missing outside CI.
fn gevclient() -> Option<&'static Path> {
    static BUILT: OnceLock<Option<PathBuf>> = OnceLock::new();
    BUILT.get_or_init(build).as_deref()
}

fn build() -> Option<PathBuf> {
    let go = std::env::var_os("GALE_GO").unwrap_or_else(|| "go".into());
    match Command::new(&go).arg("version").output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => {
            return missing(&format!(
                "`{} version` failed: {}",
                go.display(),
                out.status
            ));
        }
        Err(e) => return missing(&format!("`{}` cannot run: {e}", go.display())),
    }
    let gopath = std::env::var_os("GALE_GOPATH").unwrap_or_else(|| DEBIAN_GOPATH.into());
    let has_protowire = std::env::split_paths(&gopath).any(|dir| {
        dir.join("src/google.golang.org/protobuf/encoding/protowire")
            .is_dir()
    });
    if !has_protowire {
        return missing(&format!(
            "google.golang.org/protobuf is not under GOPATH {}",
            gopath.display()
        ));
    }
    let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("go-interop");
    std::fs::create_dir_all(&out_dir).expect("create the Go build directory");
    let binary = out_dir.join("gevclient");
    let out = run(
        Command::new(&go)
            .args([
                OsStr::new("build"),
                OsStr::new("-o"),
                binary.as_os_str(),
                OsStr::new("."),
            ])
            .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("interop/go"))
            // Offline, from GOPATH; no cgo, so no C compiler is needed.
            .env("GO111MODULE", "off")
            .env("GOPATH", &gopath)
            .env("GOFLAGS", "")
            .env("GOPROXY", "off")
            .env("GOTOOLCHAIN", "local")
            .env("CGO_ENABLED", "0")
            .env("GOCACHE", out_dir.join("cache")),
        BUILD_TIMEOUT,
    );
    assert!(
        out.status.success(),
        "go build of examples/interop/go failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Some(binary)
}

/// Skips the Go tests with a note, or fails them under CI.
fn missing(why: &str) -> Option<PathBuf> {
    let ci = std::env::var("CI").is_ok_and(|v| !matches!(v.as_str(), "" | "false" | "0"));
    assert!(
        !ci,
        "CI is set, so the Go interop tests must run, but {why} \
         (apt-get install golang-go golang-google-protobuf-dev)"
    );
    // Straight to stderr: the test harness would capture `eprintln!` of a passing test.
    let _ = writeln!(
        std::io::stderr(),
        "note: skipping the Go interop test: {why} \
         (apt-get install golang-go golang-google-protobuf-dev to run it)"
    );
    None
}

/// `gevclient -serve 0`, stopped (by closing its standard input) on drop at the latest.
struct GoServer {
    child: Child,
    addr: SocketAddr,
}

impl GoServer {
    fn start(gevclient: &Path) -> Self {
        let mut child = Command::new(gevclient)
            .args(["-serve", "0", "-timeout", "60s"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start gevclient -serve");
        // invariant: stdout is piped just above.
        let stdout = child.stdout.take().expect("piped stdout");
        let mut server = Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        let line = first_line(stdout, RUN_TIMEOUT);
        server.addr = line
            .strip_prefix("listening on ")
            .and_then(|addr| addr.trim().parse().ok())
            .unwrap_or_else(|| panic!("gevclient -serve printed {line:?}"));
        server
    }

    /// Closes the server's standard input and waits for it to exit.
    fn stop(mut self) -> ExitStatus {
        drop(self.child.stdin.take());
        wait(&mut self.child, RUN_TIMEOUT, "gevclient -serve")
    }
}

impl Drop for GoServer {
    fn drop(&mut self) {
        // Only reached with the server still running when a test failed.
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The first line `stdout` prints, within `timeout`.
fn first_line(stdout: ChildStdout, timeout: Duration) -> String {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        let _ = reader.read_line(&mut line);
        let _ = tx.send(line);
        // Keep draining so the child never blocks on a full pipe.
        let _ = std::io::copy(&mut reader, &mut std::io::sink());
    });
    rx.recv_timeout(timeout)
        .expect("gevclient -serve prints its address in time")
}

/// Runs `cmd` to completion (stdin closed, output captured), killing it after `timeout`.
fn run(cmd: &mut Command, timeout: Duration) -> Output {
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let status = wait(&mut child, timeout, &what);
    Output {
        status,
        // invariant: the readers only read into a Vec.
        stdout: stdout.join().expect("reader does not panic"),
        stderr: stderr.join().expect("reader does not panic"),
    }
}

/// Waits for `child`, killing it and failing after `timeout`.
fn wait(child: &mut Child, timeout: Duration, what: &str) -> ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} still running after {timeout:?}; killed");
        }
        thread::sleep(POLL);
    }
}

fn drain(pipe: Option<impl Read + Send + 'static>) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut buf);
        }
        buf
    })
}

fn serve<H: Handler>(driver: Driver, handler: H) -> Box<dyn RunningServer<Outgoing<H>>> {
    let mut config = ServerConfig::default();
    config.set_loops(Some(2));
    start(driver, handler, config, "127.0.0.1:0".parse().unwrap()).expect("server starts")
}

fn wait_for_no_connections<O>(server: &dyn RunningServer<O>) {
    let deadline = Instant::now() + SOCKET_TIMEOUT;
    while server.connection_count() != 0 {
        assert!(Instant::now() < deadline, "connections still open");
        thread::sleep(POLL);
    }
}

/// Where Debian's `golang-*-dev` packages put Go sources.
const DEBIAN_GOPATH: &str = "/usr/share/gocode";
/// A cold `go build` compiles the standard library's packages it uses.
const BUILD_TIMEOUT: Duration = Duration::from_secs(300);
const RUN_TIMEOUT: Duration = Duration::from_secs(90);
const SOCKET_TIMEOUT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(5);
