//! A loopback Docker registry (Debian's `docker-registry`, filesystem storage in a temp dir) and
//! small images pushed to it with oci-client: one busybox-static layer with an image config.

#![allow(dead_code)]

use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub const BINARY: &str = "/usr/bin/docker-registry";

/// A running registry; killed on drop.
pub struct Registry {
    pub dir: tempfile::TempDir,
    pub port: u16,
    child: Child,
}

impl Registry {
    /// Starts one on a free loopback port. Panics naming the package when it is not installed.
    pub fn start() -> Registry {
        assert!(
            Path::new(BINARY).exists(),
            "{BINARY} is missing: install Debian's docker-registry package (scripts/deps does)"
        );
        let dir = tempfile::tempdir().expect("tmp");
        let port = super::free_port();
        let cfg = dir.path().join("config.yml");
        std::fs::write(
            &cfg,
            format!(
                "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.path().join("storage").display()
            ),
        )
        .expect("config");
        let log = std::fs::File::create(dir.path().join("registry.log")).expect("log");
        let child = Command::new(BINARY)
            .arg("serve")
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start docker-registry");
        Registry { dir, port, child }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// How many times a blob was fetched (GET) per the access log.
    pub fn blob_gets(&self, digest: &str) -> usize {
        self.log()
            .lines()
            .filter(|l| l.contains("\"GET /v2/") && l.contains(&format!("/blobs/{digest}")))
            .count()
    }

    /// The stored file of blob `digest`.
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.dir
            .path()
            .join("storage/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    pub async fn wait_ready(&self) {
        super::eventually(
            std::time::Duration::from_secs(30),
            "the registry to answer",
            || async {
                reqwest::get(format!("http://{}/v2/", self.host()))
                    .await
                    .ok()
                    .filter(|r| r.status().is_success())
                    .map(|_| ())
            },
        )
        .await
    }

    /// Pushes `layer` (a tar.gz) with `config` (the image config's `config` object) as
    /// `repo:tag`; returns the layer's digest.
    pub async fn push(
        &self,
        repo: &str,
        tag: &str,
        layer: Vec<u8>,
        config: serde_json::Value,
    ) -> String {
        let client = Client::new(ClientConfig {
            protocol: ClientProtocol::HttpsExcept(vec![self.host()]),
            ..ClientConfig::default()
        });
        let l = ImageLayer::oci_v1_gzip(layer, None);
        let digest = l.sha256_digest();
        let conf = serde_json::json!({
            "architecture": "amd64",
            "os": "linux",
            "config": config,
            "rootfs": {"type": "layers", "diff_ids": [digest.clone()]},
        });
        let c = Config::oci_v1(conf.to_string().into_bytes(), None);
        let r = Reference::with_tag(self.host(), repo.to_string(), tag.to_string());
        client
            .push(&r, &[l], c, &RegistryAuth::Anonymous, None)
            .await
            .expect("push the image");
        digest
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A tar.gz rootfs: busybox-static at /bin/busybox with applet links, `/etc/image-marker`,
/// `/www/index.html` and `/srv`.
pub fn busybox_layer(marker: &str) -> Vec<u8> {
    let bb = std::fs::read("/bin/busybox").expect("/bin/busybox: install busybox-static");
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut b = tar::Builder::new(gz);
    let dir = |b: &mut tar::Builder<_>, p: &str| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(0);
        h.set_cksum();
        b.append_data(&mut h, p, &[][..]).expect("dir");
    };
    let file = |b: &mut tar::Builder<_>, p: &str, data: &[u8], mode: u32| {
        let mut h = tar::Header::new_gnu();
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(data.len() as u64);
        h.set_cksum();
        b.append_data(&mut h, p, data).expect("file");
    };
    for d in ["bin", "etc", "www", "srv", "tmp", "proc", "dev"] {
        dir(&mut b, d);
    }
    file(&mut b, "bin/busybox", &bb, 0o755);
    for applet in [
        "sh", "httpd", "cat", "ls", "echo", "sleep", "test", "pwd", "env", "touch",
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_mode(0o777);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(0);
        b.append_link(&mut h, format!("bin/{applet}"), "busybox")
            .expect("link");
    }
    file(&mut b, "etc/image-marker", marker.as_bytes(), 0o644);
    file(&mut b, "www/index.html", b"served from the image\n", 0o644);
    b.into_inner().expect("tar").finish().expect("gzip")
}
