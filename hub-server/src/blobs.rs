//! Where package archives live, by the hex sha256 of their bytes: files in a
//! directory (embedded) or an S3-compatible bucket (scale-out).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_util::StreamExt;

use crate::error::StoreError;
use crate::store::Blob;

/// A blob backend.
pub enum BlobBackend {
    /// Files under a directory: `sha256/<2 hex>/<hex>`.
    Files(FileBlobs),
    /// Objects in an S3-compatible bucket.
    S3(S3Blobs),
}

impl BlobBackend {
    /// Stores the file at `from` under `hex`, durably, reading it in a stream.
    pub async fn put(&self, hex: &str, from: &Path) -> Result<(), StoreError> {
        match self {
            BlobBackend::Files(f) => f.put(hex, from).await,
            BlobBackend::S3(s) => s.put(hex, from).await,
        }
    }

    /// Reads the blob `hex`, if present.
    pub async fn get(&self, hex: &str) -> Result<Option<Blob>, StoreError> {
        match self {
            BlobBackend::Files(f) => f.get(hex).await,
            BlobBackend::S3(s) => s.get(hex).await,
        }
    }
}

/// Content-addressed files in a directory. A blob is written to a temporary
/// file, fsynced, renamed into place and its directory fsynced: readers see
/// the whole blob or none.
pub struct FileBlobs {
    root: PathBuf,
}

impl FileBlobs {
    /// Blobs under `root` (created).
    pub fn new(root: &Path) -> Result<FileBlobs, StoreError> {
        std::fs::create_dir_all(root.join("tmp")).map_err(|e| blob_io(root, e))?;
        Ok(FileBlobs { root: root.to_path_buf() })
    }

    /// Where the blob `hex` lives.
    pub fn path(&self, hex: &str) -> PathBuf {
        self.root.join("sha256").join(&hex[..2.min(hex.len())]).join(hex)
    }

    async fn put(&self, hex: &str, from: &Path) -> Result<(), StoreError> {
        let path = self.path(hex);
        let tmp = self.root.join("tmp").join(format!("{hex}.{}", crate::auth::random_hex(8)));
        let from = from.to_path_buf();
        tokio::task::spawn_blocking(move || write_durably(&from, &tmp, &path))
            .await
            .map_err(|e| StoreError::Blob(format!("writer task failed: {e}")))?
    }

    async fn get(&self, hex: &str) -> Result<Option<Blob>, StoreError> {
        let path = self.path(hex);
        let file = match tokio::fs::File::open(&path).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(blob_io(&path, e)),
        };
        let size = file.metadata().await.map_err(|e| blob_io(&path, e))?.len();
        let body = tokio_util::io::ReaderStream::with_capacity(file, (size as usize).clamp(8 * 1024, 1 << 20)).boxed();
        Ok(Some(Blob { size, body }))
    }
}

fn blob_io(path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Blob(format!("{}: {e}", path.display()))
}

/// Copies `from` to `tmp`, syncs it, renames it to `path` and syncs the
/// directory: `path` appears whole or not at all, even after a crash.
fn write_durably(from: &Path, tmp: &Path, path: &Path) -> Result<(), StoreError> {
    let dir = path.parent().ok_or_else(|| StoreError::Blob(format!("{} has no parent", path.display())))?;
    std::fs::create_dir_all(dir).map_err(|e| blob_io(dir, e))?;
    let result = (|| {
        let mut src = std::fs::File::open(from).map_err(|e| blob_io(from, e))?;
        let mut file = std::fs::File::create_new(tmp).map_err(|e| blob_io(tmp, e))?;
        std::io::copy(&mut src, &mut file).map_err(|e| blob_io(tmp, e))?;
        file.flush().map_err(|e| blob_io(tmp, e))?;
        file.sync_all().map_err(|e| blob_io(tmp, e))?;
        std::fs::rename(tmp, path).map_err(|e| blob_io(path, e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(tmp);
    }
    result?;
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| blob_io(dir, e))
}

impl BlobBackend {
    /// An S3-compatible bucket (path-style requests, so any endpoint works).
    pub fn s3(config: &crate::S3Config) -> Result<BlobBackend, crate::HubError> {
        let store = object_store::aws::AmazonS3Builder::new()
            .with_endpoint(&config.endpoint)
            .with_bucket_name(&config.bucket)
            .with_region(&config.region)
            .with_access_key_id(&config.access_key)
            .with_secret_access_key(&config.secret_key)
            .with_allow_http(config.endpoint.starts_with("http://"))
            .with_virtual_hosted_style_request(false)
            .build()
            .map_err(|e| crate::HubError::Config(format!("S3 at {}: {e}", config.endpoint)))?;
        Ok(BlobBackend::S3(S3Blobs { store: Arc::new(store), prefix: config.prefix.trim_matches('/').to_owned() }))
    }
}

/// Content-addressed objects in an S3-compatible bucket: `PREFIX/sha256/<hex>`.
/// A PUT is atomic: the object appears whole or not at all.
pub struct S3Blobs {
    store: Arc<dyn object_store::ObjectStore>,
    prefix: String,
}

impl S3Blobs {
    fn key(&self, hex: &str) -> object_store::path::Path {
        if self.prefix.is_empty() {
            object_store::path::Path::from(format!("sha256/{hex}"))
        } else {
            object_store::path::Path::from(format!("{}/sha256/{hex}", self.prefix))
        }
    }

    /// Uploads in parts of a few MiB (one PUT when small), so memory holds a
    /// part, not the package; the object appears only once complete.
    async fn put(&self, hex: &str, from: &Path) -> Result<(), StoreError> {
        use tokio::io::AsyncWriteExt;
        let err = |e: &dyn std::fmt::Display| StoreError::Blob(format!("S3 put {hex}: {e}"));
        let mut file = tokio::fs::File::open(from).await.map_err(|e| blob_io(from, e))?;
        let mut writer = object_store::buffered::BufWriter::new(self.store.clone(), self.key(hex));
        if let Err(e) = tokio::io::copy(&mut file, &mut writer).await {
            let _ = writer.abort().await;
            return Err(err(&e));
        }
        writer.shutdown().await.map_err(|e| err(&e))
    }

    async fn get(&self, hex: &str) -> Result<Option<Blob>, StoreError> {
        match self.store.get(&self.key(hex)).await {
            Ok(result) => {
                let size = result.meta.size;
                let body = result.into_stream().map(|chunk| chunk.map_err(std::io::Error::other)).boxed();
                Ok(Some(Blob { size, body }))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(StoreError::Blob(format!("S3 get {hex}: {e}"))),
        }
    }
}
