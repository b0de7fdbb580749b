//! `envhub-hub --data DIR --addr HOST:PORT`: the hub server on its own (the
//! `envhub serve` command runs the same). With `--database-url` and the
//! `--s3-*` options it runs on PostgreSQL and S3 instead of SQLite and files.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use envhub_hub::{HubConfig, RateLimit, S3Config, StorageConfig, TlsFiles, serve_blocking};

fn main() -> Result<()> {
    let mut data = PathBuf::from("envhub-hub-data");
    let mut addr: SocketAddr = "127.0.0.1:7878".parse().context("default address")?;
    let mut database_url = None;
    let mut private = false;
    let (mut tls_cert, mut tls_key) = (None, None);
    let mut config = HubConfig::embedded(&data);
    let mut s3 = S3Config {
        endpoint: String::new(),
        bucket: "envhub".into(),
        prefix: String::new(),
        access_key: std::env::var("AWS_ACCESS_KEY_ID").unwrap_or_default(),
        secret_key: std::env::var("AWS_SECRET_ACCESS_KEY").unwrap_or_default(),
        region: "us-east-1".into(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--data" => data = PathBuf::from(value()?),
            "--addr" => addr = value()?.parse().context("--addr must be HOST:PORT")?,
            "--database-url" => database_url = Some(value()?),
            "--s3-endpoint" => s3.endpoint = value()?,
            "--s3-bucket" => s3.bucket = value()?,
            "--s3-prefix" => s3.prefix = value()?,
            "--s3-region" => s3.region = value()?,
            "--private" => private = true,
            "--tls-cert" => tls_cert = Some(PathBuf::from(value()?)),
            "--tls-key" => tls_key = Some(PathBuf::from(value()?)),
            "--max-concurrent-publishes" => {
                config.max_concurrent_publishes = number::<usize>(&flag, &value()?)?.max(1);
            }
            "--rate-limit" => {
                let per_second: u32 = number(&flag, &value()?)?;
                config.rate_limit = RateLimit::new(per_second, per_second.saturating_mul(4));
            }
            "--self-test-fuel" => config.self_test_fuel = number(&flag, &value()?)?,
            "--self-test-seconds" => config.self_test_seconds = number(&flag, &value()?)?,
            "-h" | "--help" => {
                println!(
                    "envhub-hub [--data DIR] [--addr HOST:PORT] [--private] [--tls-cert PEM --tls-key PEM] [--max-concurrent-publishes N] [--rate-limit PER_SECOND (0: none)] [--self-test-fuel N] [--self-test-seconds S] [--database-url URL --s3-endpoint URL [--s3-bucket B] [--s3-prefix P]]"
                );
                return Ok(());
            }
            other => bail!("unknown argument `{other}` (try --help)"),
        }
    }
    config.storage = StorageConfig::Embedded { dir: data.clone() };
    config.work_dir = data;
    config.public_read = !private;
    config.tls = match (tls_cert, tls_key) {
        (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
        (None, None) => None,
        _ => bail!("--tls-cert and --tls-key go together"),
    };
    if let Some(database_url) = database_url {
        if s3.endpoint.is_empty() {
            bail!("--database-url needs --s3-endpoint too (scale-out storage is PostgreSQL plus S3)");
        }
        config.storage = StorageConfig::ScaleOut { database_url, s3 };
    }
    serve_blocking(config, addr).context("the hub stopped")
}

/// `value` as the number `flag` takes.
fn number<T: std::str::FromStr>(flag: &str, value: &str) -> Result<T> {
    value.parse().ok().with_context(|| format!("{flag} takes a whole number, not `{value}`"))
}
