//! Configuration errors that name the file or key at fault, and reading a daemon's TOML file (keys
//! as the flags, so flags, `GANTRY_*` variables and the file share one vocabulary).

use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};

/// A configuration error, naming the file or key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {path}: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: toml::de::Error,
    },
    #[error("{key}: {why}")]
    Invalid { key: &'static str, why: String },
}

/// Reads and parses a TOML config file.
pub fn read_toml<T: DeserializeOwned>(path: &Path) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    toml::from_str(&text).map_err(|source| ConfigError::Parse {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    struct Cfg {
        listen: String,
    }

    #[test]
    fn errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.toml");
        std::fs::write(&good, "listen = \"x\"").unwrap();
        assert_eq!(read_toml::<Cfg>(&good).unwrap().listen, "x");
        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, "lissen = \"x\"").unwrap();
        let e = read_toml::<Cfg>(&bad).unwrap_err().to_string();
        assert!(e.contains("bad.toml") && e.contains("lissen"), "{e}");
        let e = read_toml::<Cfg>(&dir.path().join("none.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("cannot read config file"), "{e}");
    }
}
