//! The local development CA: what lets `webhooks-local listen` serve HTTPS that the local
//! server trusts with no flag and no file to copy.
//!
//! Whichever of the two starts first makes it in the user's cache directory
//! (`$XDG_CACHE_HOME/agentvista-webhooks/dev-ca-v1/`, else `~/.cache/...`); the other
//! finds it there. The server trusts its certificate as a root; the listener issues
//! itself a fresh leaf with its key. Its name constraints limit it to loopback names
//! (`localhost`, `127.0.0.0/8`, `::1`), so even a leaked key cannot vouch for another
//! host. Deployed stacks never read it.

use rcgen::{
    BasicConstraints, CertificateParams, CidrSubnet, DistinguishedName, DnType, GeneralSubtree,
    IsCa, Issuer, KeyPair, KeyUsagePurpose, NameConstraints,
};
use shared::adapters::private_file;
use std::io::Write;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// The directory's name carries the layout's version: a later layout makes a new CA
/// rather than misreading an old one.
const DIR: &str = "agentvista-webhooks/dev-ca-v1";
const CERT_FILE: &str = "ca-cert.pem";
const KEY_FILE: &str = "ca-key.pem";

#[derive(Debug, Error)]
pub enum DevCaError {
    #[error("no cache directory: set XDG_CACHE_HOME or HOME")]
    NoCacheDir,
    #[error("development CA in {dir}: {source}")]
    Io {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("development CA in {dir}: {message}")]
    Invalid { dir: PathBuf, message: String },
}

/// The CA as found (or made) on disk.
pub struct DevCa {
    dir: PathBuf,
    cert_pem: String,
    key: KeyPair,
}

/// A leaf certificate for loopback, issued by the CA: chain (leaf, CA) and key, PEM.
pub struct Leaf {
    pub chain_pem: String,
    pub key_pem: String,
}

/// `$XDG_CACHE_HOME` or `$HOME/.cache`, from the given lookup.
pub fn cache_dir(get: impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
    get("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            get("HOME")
                .filter(|h| !h.is_empty())
                .map(|h| Path::new(&h).join(".cache"))
        })
}

/// The CA's subject and usages: the same at every load, so an issuer rebuilt from them
/// and the stored key signs leaves that chain to the stored certificate.
fn ca_params() -> Result<CertificateParams, rcgen::Error> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    let mut name = DistinguishedName::new();
    name.push(
        DnType::CommonName,
        "AgentVista Webhooks local development CA",
    );
    params.distinguished_name = name;
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.name_constraints = Some(NameConstraints {
        permitted_subtrees: vec![
            GeneralSubtree::DnsName("localhost".into()),
            GeneralSubtree::IpAddress(CidrSubnet::V4([127, 0, 0, 0], [255, 0, 0, 0])),
            GeneralSubtree::IpAddress(CidrSubnet::V6(
                std::net::Ipv6Addr::LOCALHOST.octets(),
                [0xff; 16],
            )),
        ],
        excluded_subtrees: Vec::new(),
    });
    Ok(params)
}

impl DevCa {
    /// Find the CA under `cache`, or make it. Two processes making it at once both end
    /// up with the one that was renamed into place first.
    pub fn find_or_create(cache: &Path) -> Result<Self, DevCaError> {
        let dir = cache.join(DIR);
        if !dir.exists() {
            Self::create(&dir)?;
        }
        Self::load(&dir)
    }

    /// The CA certificate's file: what the local server trusts.
    pub fn cert_path(&self) -> PathBuf {
        self.dir.join(CERT_FILE)
    }

    /// A fresh leaf for `localhost`, `127.0.0.1` and `::1`.
    pub fn issue_leaf(&self) -> Result<Leaf, DevCaError> {
        let invalid = |e: rcgen::Error| DevCaError::Invalid {
            dir: self.dir.clone(),
            message: e.to_string(),
        };
        let issuer = Issuer::new(ca_params().map_err(invalid)?, &self.key);
        let mut params = CertificateParams::new(vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
        ])
        .map_err(invalid)?;
        params
            .distinguished_name
            .push(DnType::CommonName, "webhooks-local listen");
        let key = KeyPair::generate().map_err(invalid)?;
        let leaf = params.signed_by(&key, &issuer).map_err(invalid)?;
        Ok(Leaf {
            chain_pem: format!("{}{}", leaf.pem(), self.cert_pem),
            key_pem: key.serialize_pem(),
        })
    }

    fn create(dir: &Path) -> Result<(), DevCaError> {
        let io = |source| DevCaError::Io {
            dir: dir.to_owned(),
            source,
        };
        let invalid = |e: rcgen::Error| DevCaError::Invalid {
            dir: dir.to_owned(),
            message: e.to_string(),
        };
        let parent = dir.parent().unwrap_or(dir);
        std::fs::create_dir_all(parent).map_err(io)?;
        let key = KeyPair::generate().map_err(invalid)?;
        let cert = ca_params()
            .map_err(invalid)?
            .self_signed(&key)
            .map_err(invalid)?;
        // Written aside, then renamed into place whole: a reader never sees half a CA.
        let staging = parent.join(format!(
            ".dev-ca-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&staging);
        std::fs::create_dir(&staging).map_err(io)?;
        std::fs::write(staging.join(CERT_FILE), cert.pem()).map_err(io)?;
        private_file::create(&staging.join(KEY_FILE))
            .and_then(|mut file| file.write_all(key.serialize_pem().as_bytes()))
            .map_err(io)?;
        match std::fs::rename(&staging, dir) {
            Ok(()) => Ok(()),
            // Another process renamed its CA into place first: use that one.
            Err(_) if dir.join(KEY_FILE).exists() => {
                let _ = std::fs::remove_dir_all(&staging);
                Ok(())
            }
            Err(source) => {
                let _ = std::fs::remove_dir_all(&staging);
                Err(io(source))
            }
        }
    }

    fn load(dir: &Path) -> Result<Self, DevCaError> {
        let read = |file: &str| {
            std::fs::read_to_string(dir.join(file)).map_err(|source| DevCaError::Io {
                dir: dir.to_owned(),
                source,
            })
        };
        let cert_pem = read(CERT_FILE)?;
        let key = KeyPair::from_pem(&read(KEY_FILE)?).map_err(|e| DevCaError::Invalid {
            dir: dir.to_owned(),
            message: format!("{KEY_FILE}: {e}"),
        })?;
        Ok(Self {
            dir: dir.to_owned(),
            cert_pem,
            key,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_cache() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "avw-dev-ca-test-{}-{}",
            std::process::id(),
            uuid_like()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    fn uuid_like() -> u128 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    }

    #[test]
    fn made_once_then_found() {
        let cache = temp_cache();
        let first = DevCa::find_or_create(&cache).expect("made");
        let again = DevCa::find_or_create(&cache).expect("found");
        assert_eq!(first.cert_pem, again.cert_pem);
        assert_eq!(first.cert_path(), cache.join(DIR).join(CERT_FILE));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(cache.join(DIR).join(KEY_FILE))
                .expect("key file")
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "the key is private: {mode:o}");
        }
        let leaf = again.issue_leaf().expect("leaf");
        assert!(leaf.chain_pem.ends_with(&first.cert_pem));
        assert!(leaf.key_pem.contains("PRIVATE KEY"));
        let _ = std::fs::remove_dir_all(cache);
    }

    #[test]
    fn racing_creators_agree() {
        let cache = temp_cache();
        let pems: Vec<String> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| s.spawn(|| DevCa::find_or_create(&cache).map(|ca| ca.cert_pem)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("thread").expect("CA"))
                .collect()
        });
        assert!(pems.windows(2).all(|w| w[0] == w[1]));
        let _ = std::fs::remove_dir_all(cache);
    }

    #[test]
    fn cache_dir_prefers_xdg() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        assert_eq!(
            cache_dir(env(&[("XDG_CACHE_HOME", "/x"), ("HOME", "/h")])),
            Some(PathBuf::from("/x"))
        );
        assert_eq!(
            cache_dir(env(&[("HOME", "/h")])),
            Some(PathBuf::from("/h/.cache"))
        );
        assert_eq!(cache_dir(env(&[])), None);
    }
}
