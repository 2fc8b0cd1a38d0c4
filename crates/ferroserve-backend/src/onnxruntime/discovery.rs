//! Finding the ONNX Runtime shared library at run time and initialising it
//! once per process, with every failure turned into an error, never a panic.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use ort::environment::Environment;

use crate::error::panic_message;
use crate::BackendError;

/// Environment variable naming the library explicitly (also read by `ort`).
pub const ORT_DYLIB_PATH: &str = "ORT_DYLIB_PATH";

/// How to get a usable library, appended to every "not found" message.
const HOW_TO_FIX: &str = "run scripts/python-env.sh runtime, or set ORT_DYLIB_PATH to the path of libonnxruntime.so (ONNX Runtime 1.17 or newer)";

/// Directories searched last, where system packages install the library.
const SYSTEM_DIRS: [&str; 4] = [
    "/usr/lib",
    "/usr/local/lib",
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib64",
];

/// Finds the ONNX Runtime shared library.
///
/// Looks, in order, at: `explicit`; the `ORT_DYLIB_PATH` environment
/// variable; the `onnxruntime` Python package of a `.venv` in the current
/// directory or in any ancestor of the running executable's directory (so a
/// binary under `target/` finds the repository's `.venv`); the package that
/// `python3` imports; the system library directories. An explicit path or
/// `ORT_DYLIB_PATH` that names a missing file is an error rather than a reason
/// to look elsewhere. The error lists every place that was tried.
pub fn find_library(explicit: Option<&Path>) -> Result<PathBuf, BackendError> {
    if let Some(path) = explicit {
        return existing_file(path, "the configured path");
    }
    if let Some(value) = std::env::var_os(ORT_DYLIB_PATH).filter(|v| !v.is_empty()) {
        return existing_file(Path::new(&value), ORT_DYLIB_PATH);
    }
    let mut looked = vec![format!("{ORT_DYLIB_PATH} (not set)")];

    for root in venv_roots() {
        let lib = root.join(".venv").join("lib");
        match venv_library(&lib) {
            Some(found) => return Ok(found),
            None => looked.push(format!(
                "{}/python3*/site-packages/onnxruntime/capi",
                lib.display()
            )),
        }
    }

    match python_package_dir() {
        Ok(dir) => {
            let capi = dir.join("capi");
            if let Some(found) = library_in(&capi) {
                return Ok(found);
            }
            looked.push(capi.display().to_string());
        }
        Err(reason) => looked.push(format!("python3 onnxruntime package ({reason})")),
    }

    for dir in SYSTEM_DIRS {
        if let Some(found) = library_in(Path::new(dir)) {
            return Ok(found);
        }
        looked.push(dir.to_string());
    }

    Err(BackendError::LibraryNotFound(format!(
        "libonnxruntime not found; looked in {}; {HOW_TO_FIX}",
        looked.join(", ")
    )))
}

fn existing_file(path: &Path, origin: &str) -> Result<PathBuf, BackendError> {
    if path.is_file() {
        Ok(std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()))
    } else {
        Err(BackendError::LibraryNotFound(format!(
            "{} (from {origin}) is not a file; {HOW_TO_FIX}",
            path.display()
        )))
    }
}

/// The current directory, then the running executable's directory and each
/// of its ancestors, without duplicates.
fn venv_roots() -> Vec<PathBuf> {
    let mut roots: Vec<PathBuf> = Vec::new();
    if let Ok(dir) = std::env::current_dir() {
        roots.push(dir);
    }
    if let Some(exe_dir) = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
    {
        for dir in exe_dir.ancestors() {
            if !roots.iter().any(|r| r == dir) {
                roots.push(dir.to_path_buf());
            }
        }
    }
    roots
}

/// `<venv>/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime*`.
fn venv_library(lib: &Path) -> Option<PathBuf> {
    let mut pythons: Vec<PathBuf> = std::fs::read_dir(lib)
        .ok()?
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("python3"))
        .map(|e| e.path())
        .collect();
    pythons.sort();
    pythons.iter().rev().find_map(|python| {
        library_in(
            &python
                .join("site-packages")
                .join("onnxruntime")
                .join("capi"),
        )
    })
}

/// The ONNX Runtime library in `dir`: `libonnxruntime.so`, or a versioned
/// `libonnxruntime.so.1.x.y` (the PyPI wheel ships only that one), or the
/// macOS `libonnxruntime[.1.x.y].dylib`. The highest name wins.
fn library_in(dir: &Path) -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .filter(|e| is_library_name(&e.file_name().to_string_lossy()))
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    found.sort();
    found.pop()
}

fn is_library_name(name: &str) -> bool {
    name == "libonnxruntime.so"
        || name.starts_with("libonnxruntime.so.")
        || (name.starts_with("libonnxruntime.") && name.ends_with(".dylib"))
}

/// Directory of the `onnxruntime` package that `python3` imports.
fn python_package_dir() -> Result<PathBuf, String> {
    let output = Command::new("python3")
        .args([
            "-c",
            "import onnxruntime, os; print(os.path.dirname(onnxruntime.__file__))",
        ])
        .output()
        .map_err(|e| format!("cannot run python3: {e}"))?;
    if !output.status.success() {
        return Err("python3 cannot import onnxruntime".to_string());
    }
    let dir = String::from_utf8_lossy(&output.stdout).trim().to_string();
    if dir.is_empty() {
        return Err("python3 printed no package directory".to_string());
    }
    Ok(PathBuf::from(dir))
}

/// The initialised ONNX Runtime of this process.
#[derive(Debug)]
pub(crate) struct OrtRuntime {
    /// Library that was loaded.
    pub(crate) path: PathBuf,
    /// Version of that library, as `1.31.1`.
    pub(crate) version: String,
    /// The process-wide environment every session is created in.
    pub(crate) environment: Environment,
}

/// The process-wide runtime; `None` until one initialisation succeeds, so a
/// failed attempt with one path does not stop a later one with another.
static RUNTIME: Mutex<Option<Arc<OrtRuntime>>> = Mutex::new(None);

/// Loads the library at `path` (or returns the runtime already loaded, from
/// whichever path that was: a process holds one ONNX Runtime).
///
/// `ort` loads the library, checks that it exports `OrtGetApiBase` and that
/// its version is at least the one `ort` needs (1.17), and reports failures
/// as errors. Anything that still panics in this first use is caught.
pub(crate) fn runtime(path: &Path) -> Result<Arc<OrtRuntime>, BackendError> {
    let mut slot = RUNTIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(runtime) = slot.as_ref() {
        if runtime.path != path {
            tracing::debug!(
                requested = %path.display(),
                loaded = %runtime.path.display(),
                "ONNX Runtime is already loaded from another path; using that one"
            );
        }
        return Ok(runtime.clone());
    }
    let unusable = |reason: String| {
        BackendError::LibraryNotFound(format!(
            "{} cannot be used: {reason}; {HOW_TO_FIX}",
            path.display()
        ))
    };
    let initialise = || -> Result<OrtRuntime, BackendError> {
        let environment = ort::init_from(path)
            .map_err(|e| unusable(e.to_string()))?
            .with_name("ferroserve")
            .with_telemetry(false)
            .build()
            .map_err(|e| unusable(e.to_string()))?;
        let version = version_of(ort::info(), path);
        Ok(OrtRuntime {
            path: path.to_path_buf(),
            version,
            environment,
        })
    };
    let runtime = catch_unwind(AssertUnwindSafe(initialise))
        .map_err(|payload| unusable(panic_message(payload.as_ref())))??;
    let runtime = Arc::new(runtime);
    *slot = Some(runtime.clone());
    Ok(runtime)
}

/// The library version, read from its build info (`git-branch=rel-1.31.1`)
/// or else from a versioned file name (`libonnxruntime.so.1.31.1`).
fn version_of(build_info: &str, path: &Path) -> String {
    const BRANCH: &str = "git-branch=rel-";
    let from_info = build_info.find(BRANCH).and_then(|at| {
        let rest = &build_info[at + BRANCH.len()..];
        let version = rest.split([',', ' ']).next()?;
        (!version.is_empty()).then(|| version.to_string())
    });
    let from_name = || {
        let name = path.file_name()?.to_string_lossy().into_owned();
        let version = name
            .strip_prefix("libonnxruntime.so.")
            .or_else(|| name.strip_prefix("libonnxruntime.")?.strip_suffix(".dylib"))?;
        Some(version.to_string())
    };
    from_info
        .or_else(from_name)
        .unwrap_or_else(|| "(unknown version)".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_names_include_versioned_wheel_files() {
        assert!(is_library_name("libonnxruntime.so"));
        assert!(is_library_name("libonnxruntime.so.1.31.1"));
        assert!(is_library_name("libonnxruntime.1.31.1.dylib"));
        assert!(!is_library_name("libonnxruntime_providers_shared.so"));
        assert!(!is_library_name("onnxruntime_pybind11_state.so"));
    }

    #[test]
    fn version_comes_from_build_info_or_file_name() {
        let info = "ORT Build Info: git-branch=rel-1.31.1, git-commit-id=abc, build type=Release";
        assert_eq!(
            version_of(info, Path::new("/x/libonnxruntime.so")),
            "1.31.1"
        );
        assert_eq!(
            version_of("", Path::new("/x/libonnxruntime.so.1.20.0")),
            "1.20.0"
        );
        assert_eq!(
            version_of("", Path::new("/x/libonnxruntime.so")),
            "(unknown version)"
        );
    }

    #[test]
    fn missing_explicit_path_is_reported_with_the_fix() {
        let error = find_library(Some(Path::new("/nonexistent/libonnxruntime.so"))).unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains("/nonexistent/libonnxruntime.so"),
            "{message}"
        );
        assert!(
            message.contains("scripts/python-env.sh runtime"),
            "{message}"
        );
    }

    #[test]
    fn venv_library_is_found_by_its_versioned_name() {
        let root = std::env::temp_dir().join(format!("ferroserve-venv-{}", std::process::id()));
        let capi = root.join("lib/python3.11/site-packages/onnxruntime/capi");
        std::fs::create_dir_all(&capi).expect("create temp venv");
        std::fs::write(capi.join("libonnxruntime.so.1.31.1"), b"").expect("write file");
        std::fs::write(capi.join("libonnxruntime_providers_shared.so"), b"").expect("write");
        let found = venv_library(&root.join("lib"));
        std::fs::remove_dir_all(&root).expect("clean up");
        assert_eq!(
            found.map(|p| p.file_name().map(|n| n.to_owned())),
            Some(Some("libonnxruntime.so.1.31.1".into()))
        );
    }
}
