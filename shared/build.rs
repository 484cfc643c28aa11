//! Turns `docs/openapi.yaml` into JSON in `OUT_DIR` (served by `api::openapi`).
//!
//! Converting here rather than at run time keeps a YAML parser out of every binary, the
//! Lambdas included, and a document that is not valid YAML, or not an OpenAPI 3.1
//! document at all, fails the build instead of a request.

use std::path::{Path, PathBuf};

fn main() {
    if let Err(message) = convert() {
        eprintln!("error: {message}");
        std::process::exit(1);
    }
}

fn convert() -> Result<(), String> {
    let manifest = env_path("CARGO_MANIFEST_DIR")?;
    let source = manifest.join("../docs/openapi.yaml");
    println!("cargo::rerun-if-changed={}", source.display());

    let yaml = std::fs::read_to_string(&source)
        .map_err(|e| format!("cannot read {}: {e}", source.display()))?;
    let json = yaml_to_json(&yaml).map_err(|e| format!("{}: {e}", source.display()))?;
    let target = env_path("OUT_DIR")?.join("openapi.json");
    std::fs::write(&target, json).map_err(|e| format!("cannot write {}: {e}", target.display()))
}

/// Through `serde_norway::Value` rather than straight into JSON: its mappings refuse
/// duplicate keys, which a direct conversion would silently let the last one win.
/// Number keys (an unquoted `200:` status) become the strings OpenAPI wants; keys that
/// are not scalars are refused.
fn yaml_to_json(yaml: &str) -> Result<String, String> {
    let value: serde_norway::Value =
        serde_norway::from_str(yaml).map_err(|e| format!("not valid YAML: {e}"))?;
    let json =
        serde_json::to_value(&value).map_err(|e| format!("not representable as JSON: {e}"))?;
    match json.get("openapi").and_then(|v| v.as_str()) {
        Some(version) if version.starts_with("3.1.") => {}
        _ => return Err("`openapi` must be a 3.1.x version string".into()),
    }
    if !json.get("paths").is_some_and(|p| p.is_object()) {
        return Err("`paths` must be a mapping".into());
    }
    serde_json::to_string(&json).map_err(|e| e.to_string())
}

fn env_path(name: &str) -> Result<PathBuf, String> {
    std::env::var_os(name)
        .map(|v| Path::new(&v).to_path_buf())
        .ok_or_else(|| format!("{name} is not set (cargo sets it for build scripts)"))
}
