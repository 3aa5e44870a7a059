//! The test HTTPS upstream (`tests/support/egress-upstream.js`): a CA of the test's own, a certificate for the
//! upstream's names, and the Node server started on loopback or in a namespace "outside".

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::{Guard, Netns, node_bin, repo_root};

/// Writes `ca.pem`, `upstream.pem` and `upstream-key.pem` into `dir`: a test CA and, signed by it, a
/// certificate for `names` (hosts or IP addresses).
pub fn make_certificates(dir: &Path, names: &[&str]) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Gig'MCP test CA");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign];
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let cert = rcgen::CertificateParams::new(names)
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
    std::fs::write(dir.join("upstream.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("upstream-key.pem"), key.serialize_pem()).unwrap();
}

/// The upstream listening on `address:port` (in `netns` when given) with the certificates `make_certificates`
/// wrote into `dir`, serving `files` under `/files/` when given. Its request log is `dir/upstream.log`.
pub fn start_upstream(
    netns: Option<&Netns>,
    dir: &Path,
    address: &str,
    port: u16,
    files: Option<&Path>,
) -> (Guard, PathBuf) {
    let log = dir.join("upstream.log");
    let mut command = match netns {
        Some(netns) => netns.command(),
        None => std::process::Command::new("env"),
    };
    command
        .arg(node_bin())
        .arg(repo_root().join("tests/support/egress-upstream.js"))
        .arg(dir.join("upstream.pem"))
        .arg(dir.join("upstream-key.pem"))
        .args([address, &port.to_string()]);
    if let Some(files) = files {
        command.arg(files);
    }
    let child = command
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let guard = Guard(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string(&log).unwrap_or_default().contains("listening") {
        assert!(Instant::now() < deadline, "the test upstream did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    (guard, log)
}
