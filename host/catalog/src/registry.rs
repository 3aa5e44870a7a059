//! A registry directory, as the original's `registryctl` reads it:
//!
//! ```text
//! manifests/<name>/<version>.yaml            a manifest
//! manifests/<name>/<version>.toolspec.yaml   a toolpack's toolspec, beside its manifest
//! denylist/exfil-domains.txt                 domains no egress entry may reach
//! ```
//!
//! [`lint`] reads every file strictly and reports every problem, each naming its file; [`load`] is lint
//! that fails unless the registry is clean.

use std::path::{Path, PathBuf};

use crate::egress::Denylist;
use crate::manifest::Manifest;
use crate::toolspec::ToolSpec;
use crate::yaml::Hazard;

pub const DENYLIST: &str = "denylist/exfil-domains.txt";

#[derive(Debug, Default)]
pub struct Registry {
    pub manifests: Vec<Manifest>,
    pub toolspecs: Vec<ToolSpec>,
}

#[derive(Debug, Default)]
pub struct Report {
    /// `<file>: <problem>`; any error fails lint.
    pub errors: Vec<String>,
    /// Worth a look, not a failure.
    pub warnings: Vec<String>,
}

/// Reads and checks a registry directory: strict parsing, `Validate`, the denylist, YAML 1.1 hazards, the
/// path rule, manifest↔toolspec pairing.
pub fn lint(dir: &Path) -> (Registry, Report) {
    let mut registry = Registry::default();
    let mut report = Report::default();
    let denylist = match std::fs::read_to_string(dir.join(DENYLIST)) {
        Ok(text) => Denylist::parse(&text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            report.warnings.push(format!(
                "{DENYLIST}: not found, so no egress entry is checked against a denylist"
            ));
            Denylist::default()
        }
        Err(e) => {
            report.errors.push(format!("{DENYLIST}: {e}"));
            Denylist::default()
        }
    };
    let mut files = Vec::new();
    if let Err(e) = yaml_files(&dir.join("manifests"), &mut files) {
        report.errors.push(format!("manifests: {e}"));
        return (registry, report);
    }
    files.sort();
    let mut manifest_files = Vec::new();
    let mut spec_files = Vec::new();
    // Manifests that did not parse: their toolspecs are not reported again as unpaired.
    let mut unreadable = std::collections::HashSet::new();
    for path in files {
        let shown = path.strip_prefix(dir).unwrap_or(&path).display().to_string();
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) => {
                report.errors.push(format!("{shown}: {e}"));
                continue;
            }
        };
        let mut problems = Vec::new();
        if shown.ends_with(".toolspec.yaml") {
            match ToolSpec::parse(&text) {
                Ok((spec, hazards)) => {
                    problems.extend(hazard_errors(&hazards));
                    problems.extend(spec.validate());
                    problems.extend(path_rule(&shown, &spec.name, &spec.version, ".toolspec.yaml"));
                    let warnings = spec
                        .tools
                        .iter()
                        .flat_map(|t| json_body_warnings(t).into_iter().chain(secret_param_warnings(t)));
                    report.warnings.extend(warnings.map(|w| format!("{shown}: {w}")));
                    spec_files.push((shown.clone(), spec));
                }
                Err(e) => problems.push(e.to_string()),
            }
        } else {
            match Manifest::parse(&text) {
                Ok((manifest, hazards)) => {
                    problems.extend(hazard_errors(&hazards));
                    problems.extend(manifest.lint(&denylist));
                    problems.extend(path_rule(&shown, &manifest.name, &manifest.version, ".yaml"));
                    manifest_files.push((shown.clone(), manifest));
                }
                Err(e) => {
                    unreadable.insert(shown.clone());
                    problems.push(e.to_string())
                }
            }
        }
        report
            .errors
            .extend(problems.into_iter().map(|p| format!("{shown}: {p}")));
    }
    if manifest_files.is_empty() && report.errors.is_empty() {
        report.errors.push("manifests: no manifests found".into());
    }
    for (shown, spec) in &spec_files {
        match manifest_files
            .iter()
            .find(|(_, m)| m.name == spec.name && m.version == spec.version)
        {
            Some((_, manifest)) => {
                report.errors.extend(
                    spec.check_against_manifest(manifest)
                        .into_iter()
                        .map(|p| format!("{shown}: {p}")),
                );
                report.warnings.extend(
                    unused_egress(spec, manifest)
                        .into_iter()
                        .map(|w| format!("{shown}: {w}")),
                );
            }
            None if unreadable.contains(&shown.replace(".toolspec.yaml", ".yaml")) => {}
            None => report
                .errors
                .push(format!("{shown}: no manifest {} beside it", spec.reference())),
        }
    }
    for (shown, manifest) in &manifest_files {
        if manifest.is_toolpack() && !spec_files.iter().any(|(_, s)| s.reference() == manifest.reference()) {
            report.errors.push(format!(
                "{shown}: builder toolpack needs manifests/{}/{}.toolspec.yaml",
                manifest.name, manifest.version
            ));
        }
    }
    registry.manifests = manifest_files.into_iter().map(|(_, m)| m).collect();
    registry.toolspecs = spec_files.into_iter().map(|(_, s)| s).collect();
    (registry, report)
}

/// [`lint`], failing with every error unless there are none.
pub fn load(dir: &Path) -> Result<(Registry, Vec<String>), Vec<String>> {
    let (registry, report) = lint(dir);
    if report.errors.is_empty() {
        Ok((registry, report.warnings))
    } else {
        Err(report.errors)
    }
}

fn hazard_errors(hazards: &[Hazard]) -> impl Iterator<Item = String> + '_ {
    hazards.iter().map(|h| h.to_string())
}

fn path_rule(shown: &str, name: &str, version: &str, suffix: &str) -> Option<String> {
    let expected = format!("manifests/{name}/{version}{suffix}");
    (shown != expected).then(|| format!("path must be {expected}"))
}

/// JSON body keys like `assignment[name]` are sent literally; most APIs that use brackets expect a form.
fn json_body_warnings(tool: &crate::toolspec::SpecTool) -> Vec<String> {
    if tool.encoding == "form" {
        return Vec::new();
    }
    tool.params
        .iter()
        .filter(|p| p.location == "body" && p.name.contains('['))
        .map(|p| {
            format!(
                "tool {:?}: JSON body param {:?} is sent as a literal key (did the API mean encoding: form?)",
                tool.name, p.name
            )
        })
        .collect()
}

/// Param names that look like a secret the model would have to supply: they bypass the credential model (the
/// gateway injects credentials; a model that sends one has seen it).
fn secret_param_warnings(tool: &crate::toolspec::SpecTool) -> Vec<String> {
    const SECRET_WORDS: [&str; 9] = [
        "apikey",
        "password",
        "passwd",
        "secret",
        "token",
        "accesstoken",
        "developertoken",
        "clientsecret",
        "privatekey",
    ];
    tool.params
        .iter()
        .filter(|p| {
            let squashed: String = p
                .name
                .chars()
                .filter(|c| c.is_ascii_alphanumeric())
                .collect::<String>()
                .to_ascii_lowercase();
            SECRET_WORDS.contains(&squashed.as_str())
        })
        .map(|p| {
            format!(
                "tool {:?}: param {:?} looks like a secret the model would have to supply, outside the credential model",
                tool.name, p.name
            )
        })
        .collect()
}

/// Egress entries no base URL of the toolspec uses (identity hosts, mostly): the engine never calls them, and
/// they widen what the sandbox may reach.
fn unused_egress(spec: &ToolSpec, manifest: &Manifest) -> Vec<String> {
    let hosts: Vec<&str> = std::iter::once(spec.base_url.as_str())
        .chain(spec.tools.iter().map(|t| t.base_url.as_str()))
        .filter_map(|b| b.strip_prefix("https://"))
        .collect();
    manifest
        .entitlements
        .egress
        .iter()
        .filter(|entry| {
            !hosts
                .iter()
                .any(|host| crate::egress::allows(std::slice::from_ref(entry), host))
        })
        .map(|entry| {
            format!(
                "egress {entry:?} is used by no base URL: the engine never calls it, and it widens the sandbox's reach"
            )
        })
        .collect()
}

/// Every `*.yaml` under `dir`, symlinks skipped (as the original does).
fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_symlink() {
            continue;
        }
        let path = entry.path();
        if kind.is_dir() {
            yaml_files(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "yaml") {
            out.push(path);
        }
    }
    Ok(())
}
