//! The hub commands of `envhub`.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use envhub_sandbox::package::Package;
use serde_json::json;

use envhub_client::hub::{Client, Credentials};
use envhub_client::pull::{PullOptions, fetch};
use envhub_client::spec::{Spec, parse_exact};

/// Commands that talk to (or are) a hub.
#[derive(Subcommand)]
pub enum HubCommand {
    /// Run a hub (embedded storage: SQLite and files under --data).
    Serve(ServeArgs),
    /// Store a hub URL and token (under the cache root, mode 0600).
    Login(LoginArgs),
    /// Manage tokens (needs an admin token).
    #[command(subcommand)]
    Token(TokenCommand),
    /// Publish a built package (.envpkg, or an environment crate's built package).
    Publish(PublishArgs),
    /// Resolve owner/name@REQ, download and verify it, and pin it in envhub.lock.
    Pull(PullArgs),
    /// Search the hub.
    Search(SearchArgs),
    /// Yank a version (hidden from new resolutions; lockfiles still download it).
    Yank(YankArgs),
}

/// `envhub serve`.
#[derive(Args)]
pub struct ServeArgs {
    /// Data directory (default: $ENVHUB_HOME/hub).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:7878")]
    addr: SocketAddr,
    /// Largest package accepted, in bytes.
    #[arg(long, default_value_t = 64 << 20)]
    max_package_bytes: u64,
    /// Require a token with the `read` scope for every read.
    #[arg(long)]
    private: bool,
    /// Serve HTTPS with this certificate chain (PEM; needs --tls-key).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Uploads checked at once (default: half the cores); more wait, then get 503.
    #[arg(long)]
    max_concurrent_publishes: Option<usize>,
    /// Requests per second allowed per client address and per token, with
    /// bursts of four times as many (0: no limit).
    #[arg(long, default_value_t = 100)]
    rate_limit: u32,
    /// Instructions one upload's whole self-test may run.
    #[arg(long, default_value_t = 100_000_000_000)]
    self_test_fuel: u64,
    /// Wall-clock seconds one upload's whole self-test may take.
    #[arg(long, default_value_t = 120)]
    self_test_seconds: u64,
}

/// `envhub login`.
#[derive(Args)]
pub struct LoginArgs {
    /// Hub URL (else ENVHUB_HUB).
    #[arg(long)]
    hub: Option<String>,
    /// The token secret.
    #[arg(long)]
    token: String,
}

/// `envhub token ...`.
#[derive(Subcommand)]
pub enum TokenCommand {
    /// Create a token (the secret is printed once).
    Create(TokenCreateArgs),
    /// Revoke a token by its id.
    Revoke(TokenRevokeArgs),
}

/// `envhub token revoke`.
#[derive(Args)]
pub struct TokenRevokeArgs {
    /// The token's id (shown by `token create`).
    id: String,
    /// Hub URL.
    #[arg(long)]
    hub: Option<String>,
}

/// `envhub token create`.
#[derive(Args)]
pub struct TokenCreateArgs {
    /// The login the token acts for.
    #[arg(long)]
    login: String,
    /// Scopes: read, publish-new, publish-update, yank, change-owners, revoke-tokens (repeatable or comma-separated).
    #[arg(long = "scope", value_delimiter = ',', required = true)]
    scopes: Vec<String>,
    /// Package name patterns, e.g. `alice/*` (default: `LOGIN/*`).
    #[arg(long = "pattern")]
    patterns: Vec<String>,
    /// Expire after this many days.
    #[arg(long)]
    expires_in_days: Option<i64>,
    /// Hub URL.
    #[arg(long)]
    hub: Option<String>,
}

/// `envhub publish`.
#[derive(Args)]
pub struct PublishArgs {
    /// A package file or an environment crate directory (built with `envhub build`).
    #[arg(default_value = ".")]
    package: PathBuf,
    /// Hub URL.
    #[arg(long)]
    hub: Option<String>,
}

/// `envhub pull`.
#[derive(Args)]
pub struct PullArgs {
    /// owner/name@REQ (e.g. envhub/math@0.1).
    spec: String,
    /// Use exactly the digest pinned in the lockfile.
    #[arg(long)]
    locked: bool,
    /// The lockfile.
    #[arg(long, default_value = envhub_client::lockfile::LOCKFILE)]
    lockfile: PathBuf,
    /// Hub URL.
    #[arg(long)]
    hub: Option<String>,
}

/// `envhub search`.
#[derive(Args)]
pub struct SearchArgs {
    /// Words in the name or description.
    #[arg(default_value = "")]
    query: String,
    /// Hub URL.
    #[arg(long)]
    hub: Option<String>,
}

/// `envhub yank`.
#[derive(Args)]
pub struct YankArgs {
    /// owner/name@VERSION.
    spec: String,
    /// Unyank.
    #[arg(long)]
    undo: bool,
    /// Hub URL.
    #[arg(long)]
    hub: Option<String>,
}

/// Runs a hub command.
fn run(command: HubCommand) -> Result<()> {
    match command {
        HubCommand::Serve(args) => serve(args),
        HubCommand::Login(args) => login(args),
        HubCommand::Token(TokenCommand::Create(args)) => token_create(args),
        HubCommand::Token(TokenCommand::Revoke(args)) => {
            let client = Client::new(args.hub.as_deref())?;
            client.send("revoking a token", "DELETE", &format!("/api/v1/tokens/{}", args.id), None)?;
            println!("revoked token {}", args.id);
            Ok(())
        }
        HubCommand::Publish(args) => publish(args),
        HubCommand::Pull(args) => pull(args),
        HubCommand::Search(args) => search(args),
        HubCommand::Yank(args) => yank(args),
    }
}

impl HubCommand {
    /// Runs the command.
    pub fn run(self) -> Result<()> {
        run(self)
    }
}

fn serve(args: ServeArgs) -> Result<()> {
    let data = args.data.unwrap_or_else(|| envhub_client::home::root().join("hub"));
    let mut config = envhub_hub::HubConfig::embedded(&data);
    config.max_package_bytes = args.max_package_bytes;
    config.public_read = !args.private;
    config.tls = args.tls_cert.zip(args.tls_key).map(|(cert, key)| envhub_hub::TlsFiles { cert, key });
    if let Some(n) = args.max_concurrent_publishes {
        config.max_concurrent_publishes = n.max(1);
    }
    config.rate_limit = envhub_hub::RateLimit::new(args.rate_limit, args.rate_limit.saturating_mul(4));
    config.self_test_fuel = args.self_test_fuel;
    config.self_test_seconds = args.self_test_seconds;
    envhub_hub::serve_blocking(config, args.addr).context("the hub stopped")
}

fn login(args: LoginArgs) -> Result<()> {
    let hub =
        args.hub.or_else(|| std::env::var("ENVHUB_HUB").ok()).context("which hub? pass --hub URL or set ENVHUB_HUB")?;
    let hub = hub.trim_end_matches('/').to_owned();
    let client = Client::with(hub.clone(), Some(args.token.clone()))?;
    let me = client.get("checking the token", "/api/v1/me")?;
    if me["token"].is_null() {
        bail!("{hub} did not accept the token");
    }
    let mut credentials = Credentials::load()?;
    credentials.add(&hub, args.token);
    let path = credentials.save()?;
    println!("logged in to {hub} as {} (saved in {})", me["token"]["login"].as_str().unwrap_or("?"), path.display());
    Ok(())
}

fn token_create(args: TokenCreateArgs) -> Result<()> {
    let client = Client::new(args.hub.as_deref())?;
    let body = json!({
        "login": args.login,
        "scopes": args.scopes,
        "patterns": args.patterns,
        "expires_in_secs": args.expires_in_days.map(|d| d.saturating_mul(86_400)),
    });
    let answer = client.send("creating a token", "POST", "/api/v1/tokens", Some(&body))?;
    let record = &answer["record"];
    eprintln!(
        "token {} for {} (scopes {}; names {}); shown once:",
        record["id"].as_str().unwrap_or("?"),
        record["login"].as_str().unwrap_or("?"),
        record["scopes"],
        record["patterns"],
    );
    println!("{}", answer["token"].as_str().unwrap_or_default());
    Ok(())
}

fn publish(args: PublishArgs) -> Result<()> {
    let path = if args.package.is_file() {
        args.package.clone()
    } else if let Some(dir) = envhub_client::resolve::crate_dir(&args.package) {
        let path = envhub_client::resolve::package_path(&dir)?;
        if !path.is_file() {
            bail!("{} is not built yet: run `envhub build {}` first", dir.display(), dir.display());
        }
        path
    } else {
        bail!("{} is neither a package file nor an environment crate", args.package.display());
    };
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let package = Package::from_bytes(&bytes).with_context(|| format!("{} is not a valid package", path.display()))?;
    let p = &package.manifest.package;
    let client = Client::new(args.hub.as_deref())?;
    eprintln!(
        "publishing {} {} ({} bytes) to {}; the hub self-tests it first",
        p.name,
        p.version,
        bytes.len(),
        client.base
    );
    let answer = client.publish(&bytes, &package.digest_string())?;
    println!(
        "published {} {} {} (self-test: {} tasks passed)",
        p.name,
        p.version,
        package.digest_string(),
        answer["self_test"]["tasks"]
    );
    Ok(())
}

fn pull(args: PullArgs) -> Result<()> {
    let spec = Spec::parse(&args.spec)?;
    let options =
        PullOptions { hub: args.hub, locked: args.locked, lockfile: args.lockfile, update_lockfile: !args.locked };
    let fetched = fetch(&spec, &options)?;
    let e = &fetched.entry;
    let how = if fetched.from_lockfile { " (locked)" } else { "" };
    println!("{} {} {}{how} -> {}", e.name, e.version, e.digest, fetched.path.display());
    Ok(())
}

fn search(args: SearchArgs) -> Result<()> {
    let client = Client::new(args.hub.as_deref())?;
    let q: String = args
        .query
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let answer = client.get("searching", &format!("/api/v1/search?q={q}"))?;
    let hits = answer["packages"].as_array().cloned().unwrap_or_default();
    if hits.is_empty() {
        eprintln!("no environments match `{}`", args.query);
    }
    for hit in hits {
        println!(
            "{:<32} {:<10} {}",
            hit["name"].as_str().unwrap_or_default(),
            hit["latest"].as_str().unwrap_or("(yanked)"),
            hit["description"].as_str().unwrap_or_default()
        );
    }
    Ok(())
}

fn yank(args: YankArgs) -> Result<()> {
    let (name, version) = parse_exact(&args.spec)?;
    let client = Client::new(args.hub.as_deref())?;
    let method = if args.undo { "DELETE" } else { "PUT" };
    let path = format!("/api/v1/packages/{name}/{version}/yank");
    client.send(if args.undo { "unyanking" } else { "yanking" }, method, &path, None)?;
    println!("{} {name} {version}", if args.undo { "unyanked" } else { "yanked" });
    Ok(())
}
