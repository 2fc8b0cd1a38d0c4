//! A temporary PostgreSQL server: `initdb` into a temporary folder, started
//! with `pg_ctl` on a free port, stopped when dropped or when the test
//! process exits.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;

use super::dependency;

const INSTALL_HINT: &str = "PostgreSQL server binaries (initdb, pg_ctl, postgres) are needed \
     for the PostgreSQL registry tests; install them with `apt-get install postgresql` \
     or set FERROSERVE_PG_BIN to the folder that holds them";

pub(crate) struct TempPostgres {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    run_as_postgres: bool,
    /// Outlives the test process on purpose (see `spawn_watchdog`).
    watchdog: Option<std::process::Child>,
}

fn find_bin_dir() -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(dir) = std::env::var_os("FERROSERVE_PG_BIN") {
        candidates.push(dir.into());
    }
    candidates.push("/usr/local/bin".into());
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path));
    }
    if let Ok(versions) = std::fs::read_dir("/usr/lib/postgresql") {
        let mut dirs: Vec<PathBuf> = versions.flatten().map(|e| e.path().join("bin")).collect();
        dirs.sort();
        candidates.extend(dirs.into_iter().rev());
    }
    candidates
        .into_iter()
        .find(|d| d.join("initdb").is_file() && d.join("pg_ctl").is_file())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

impl TempPostgres {
    /// Creates and starts a server; panics with a clear message when that
    /// is impossible.
    pub(crate) fn start() -> Self {
        let bin = dependency::require(find_bin_dir(), "PostgreSQL (initdb, pg_ctl)", INSTALL_HINT);
        let dir = tempfile::Builder::new()
            .prefix("ferroserve-pg-")
            .tempdir()
            .expect("temp dir for PostgreSQL")
            .keep();
        let run_as_postgres = is_root();
        if run_as_postgres {
            // initdb refuses to run as root.
            let ok = Command::new("id")
                .arg("postgres")
                .output()
                .map(|o| o.status.success());
            assert!(
                matches!(ok, Ok(true)),
                "the tests run as root and PostgreSQL refuses root: a 'postgres' user is needed \
                 (apt-get install postgresql creates it)"
            );
            run(Command::new("chown").arg("-R").arg("postgres:").arg(&dir));
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let server = TempPostgres {
            bin,
            dir,
            port,
            run_as_postgres,
            watchdog: None,
        };
        run(&mut server.pg_command(
            "initdb",
            &[
                "-D",
                &server.data(),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        ));
        let opts = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            server.dir.display()
        );
        let log = server.dir.join("server.log").display().to_string();
        let data = server.data();
        // -w waits until the server accepts connections.
        run(&mut server.pg_command(
            "pg_ctl",
            &[
                "-D", &data, "-l", &log, "-o", &opts, "-w", "-t", "120", "start",
            ],
        ));
        let mut server = server;
        server.watchdog = Some(server.spawn_watchdog());
        server
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    /// URL of database `db` on this server.
    pub(crate) fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    fn pg_command(&self, tool: &str, args: &[&str]) -> Command {
        let exe = self.bin.join(tool);
        if self.run_as_postgres {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(exe).args(args);
            cmd
        } else {
            let mut cmd = Command::new(exe);
            cmd.args(args);
            cmd
        }
    }

    /// A static server is never dropped, so a small shell loop stops it and
    /// removes its folder once this test process has exited.
    fn spawn_watchdog(&self) -> std::process::Child {
        let stop = self.pg_command("pg_ctl", &["-D", &self.data(), "-m", "immediate", "stop"]);
        let stop = format!("{stop:?}");
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {stop} >/dev/null 2>&1; rm -rf '{dir}'",
            pid = std::process::id(),
            dir = self.dir.display()
        );
        Command::new("sh")
            .args(["-c", &script])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn the PostgreSQL watchdog")
    }
}

impl Drop for TempPostgres {
    fn drop(&mut self) {
        let _ = self
            .pg_command("pg_ctl", &["-D", &self.data(), "-m", "immediate", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
    }
}

fn run(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}; {INSTALL_HINT}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
