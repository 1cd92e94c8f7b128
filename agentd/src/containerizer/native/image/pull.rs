//! Pulling an image: the reference resolved (short names on Docker Hub, or on the
//! `--registry-mirror`), its manifest (a manifest list resolved to linux/amd64) and config read,
//! and each layer the store lacks downloaded, its digest checked and unpacked into the store.

use super::store::{digest_hex, LayerStore};
use super::unpack::unpack_layer;
use super::{ImageError, ImageSettings, Prepared};
use gantry_proto::ImageRef;
use oci_client::client::{linux_amd64_resolver, ClientConfig, ClientProtocol};
use oci_client::{Client, Reference};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};

/// Pulls images into a [`LayerStore`].
#[derive(Debug)]
pub struct Images {
    settings: ImageSettings,
    store: LayerStore,
    /// Layers downloaded since the agent started.
    pulled: AtomicU64,
}

/// The registry, repository and tag/digest to ask for, after the mirror.
pub fn resolve(image: &str, mirror: Option<&str>) -> Result<(ImageRef, Reference), ImageError> {
    let mut r = ImageRef::parse(image)?;
    if r.registry == gantry_proto::image_ref::DOCKER_HUB {
        if let Some(m) = mirror {
            r.registry = m.to_string();
        }
    }
    let reference = match (&r.digest, &r.tag) {
        (Some(d), _) => Reference::with_digest(r.registry.clone(), r.repository.clone(), d.clone()),
        (None, t) => Reference::with_tag(
            r.registry.clone(),
            r.repository.clone(),
            t.clone().unwrap_or_else(|| "latest".into()),
        ),
    };
    Ok((r, reference))
}

fn sha256_file(path: &std::path::Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    let out = h.finalize();
    Ok(out.iter().map(|b| format!("{b:02x}")).collect())
}

impl Images {
    pub fn new(settings: ImageSettings) -> Self {
        let store = LayerStore::new(settings.store_dir.clone(), settings.max_bytes);
        Self {
            settings,
            store,
            pulled: AtomicU64::new(0),
        }
    }

    pub fn store(&self) -> &LayerStore {
        &self.store
    }

    /// Layers downloaded since the agent started.
    pub fn layers_pulled(&self) -> u64 {
        self.pulled.load(Ordering::Relaxed)
    }

    fn client(&self) -> Client {
        Client::new(ClientConfig {
            protocol: ClientProtocol::HttpsExcept(self.settings.insecure.clone()),
            platform_resolver: Some(Box::new(linux_amd64_resolver)),
            ..ClientConfig::default()
        })
    }

    /// Pulls what the store lacks of `image` and makes `container`'s rootfs dirs.
    pub async fn prepare(&self, image: &str, container: &str) -> Result<Prepared, ImageError> {
        let (parsed, reference) = resolve(image, self.settings.mirror.as_deref())?;
        let shown = parsed.to_string();
        let auth = super::auth::auth_for(self.settings.docker_config.as_deref(), &parsed.registry);
        let client = self.client();
        let (manifest, _digest, config) = client
            .pull_manifest_and_config(&reference, &auth)
            .await
            .map_err(|e| ImageError::Pull {
                image: shown.clone(),
                why: e.to_string(),
            })?;
        let config = super::config::RuntimeConfig::parse(&config)
            .map_err(|e| ImageError::Manifest(format!("the image config of {shown}: {e}")))?;
        let mut hexes = Vec::new();
        for layer in &manifest.layers {
            let hex = digest_hex(&layer.digest)?.to_string();
            self.ensure_layer(&client, &reference, layer, &hex, &shown)
                .await?;
            hexes.push(hex);
        }
        let dirs = self.store.make_rootfs(container, &hexes)?;
        self.store.evict(&hexes);
        Ok(self.store.prepared(&hexes, dirs, config))
    }

    async fn ensure_layer(
        &self,
        client: &Client,
        reference: &Reference,
        layer: &oci_client::manifest::OciDescriptor,
        hex: &str,
        shown: &str,
    ) -> Result<(), ImageError> {
        let lock = self.store.lock(hex);
        let _held = lock.lock().await;
        if self.store.have(hex) {
            return Ok(());
        }
        let failed = |why: String| ImageError::Layer {
            image: shown.to_string(),
            digest: layer.digest.clone(),
            why,
        };
        let blob = self.store.partial_blob(hex);
        if let Some(d) = blob.parent() {
            std::fs::create_dir_all(d).map_err(|e| ImageError::io(d, e))?;
        }
        let result = async {
            let file = tokio::fs::File::create(&blob)
                .await
                .map_err(|e| failed(format!("cannot create {}: {e}", blob.display())))?;
            let mut out = tokio::io::BufWriter::new(file);
            client
                .pull_blob(reference, layer, &mut out)
                .await
                .map_err(|e| failed(format!("download failed: {e}")))?;
            tokio::io::AsyncWriteExt::flush(&mut out)
                .await
                .map_err(|e| failed(e.to_string()))?;
            // oci-client checks the digest as it streams; checked again on what reached the disk.
            let got = sha256_file(&blob).map_err(|e| failed(e.to_string()))?;
            if got != hex {
                return Err(failed(format!(
                    "digest mismatch: the bytes are sha256:{got}"
                )));
            }
            let dir = self.store.layer_dir(hex);
            let tmp = dir.with_extension("unpacking");
            let _ = std::fs::remove_dir_all(&tmp);
            std::fs::create_dir_all(&tmp).map_err(|e| ImageError::io(&tmp, e))?;
            let b = blob.clone();
            let t = tmp.clone();
            let unpacked = tokio::task::spawn_blocking(move || unpack_layer(&b, &t))
                .await
                .map_err(|e| failed(e.to_string()))?;
            if let Err(e) = unpacked {
                let _ = std::fs::remove_dir_all(&tmp);
                return Err(failed(format!("cannot unpack: {e}")));
            }
            std::fs::rename(&tmp, &dir).map_err(|e| ImageError::io(&dir, e))?;
            Ok(())
        }
        .await;
        let _ = std::fs::remove_file(&blob);
        result?;
        self.store.have(hex);
        self.pulled.fetch_add(1, Ordering::Relaxed);
        tracing::info!(image = %shown, layer = %layer.digest, bytes = layer.size, "image store: pulled a layer");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_hub_names_go_to_the_mirror() {
        let (r, reference) = resolve("nginx:1.11", Some("127.0.0.1:5000")).expect("ok");
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(reference.repository(), "library/nginx");
        assert_eq!(reference.tag(), Some("1.11"));
        let (r, _) = resolve("10.0.0.1:443/x:1", Some("127.0.0.1:5000")).expect("ok");
        assert_eq!(r.registry, "10.0.0.1:443", "only docker.io is mirrored");
        assert!(resolve("Bad Name", None).is_err());
    }
}
