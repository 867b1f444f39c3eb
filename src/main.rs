//! The `deltran` command: parses the command line and calls into the library.

use anyhow::Context as _;
use clap::Parser as _;

use deltran::actors::keys;
use deltran::config::{
    load_config_file, value_origin, AuditArgs, Cli, ClusterAction, ClusterCommandArgs, Command,
    DatabaseArgs, KeysAction, KeysArgs, Settings,
};
use deltran::domain::{KeyId, Origin};
use deltran::startup::Application;
use deltran::store::embedded::{
    ClusterKeeper, EmbeddedOptions, EmbeddedPostgres, EMBEDDED_DATABASE,
};
use deltran::store::{prepare_database, Store};

/// The file in the data directory where the first start writes the keys it makes.
const KEYS_FILE: &str = "api-keys";

/// mimalloc instead of glibc malloc: the request path allocates many small short-lived
/// objects across threads, where glibc's allocator showed up at ~15% of CPU in a
/// profile under load (docs/PERFORMANCE.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit code of a setting refused at start (clap's own for a bad flag or variable).
const EXIT_BAD_SETTING: i32 = 2;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let file = load_config_file(&args).unwrap_or_else(|message| {
        eprintln!("error: {message}");
        std::process::exit(EXIT_BAD_SETTING);
    });
    // Every setting is checked here, whether from a flag, a variable or the config
    // file: a value out of range stops the engine with exit code 2.
    let cli = Cli::try_parse_from(&args).unwrap_or_else(|error| {
        let origin = value_origin(&error, &args, file.as_ref());
        let _ = error.print();
        if let Some(origin) = origin {
            eprintln!("{origin}");
        }
        std::process::exit(error.exit_code());
    });
    match cli.command {
        Command::Serve(settings) => serve(settings),
        Command::Audit(args) => audit(args),
        Command::Keys(args) => keys(args),
        Command::Cluster(args) => cluster(args),
        Command::Openapi => {
            println!("{}", deltran::http::openapi::json());
            Ok(())
        }
    }
}

/// Runs `work` against the engine's database: the embedded cluster of a running engine
/// (attached to), else the embedded cluster started for the purpose and stopped
/// after, or `--database-url`. For `deltran audit` and `deltran keys`.
fn with_store<T, F, Fut>(database_args: &DatabaseArgs, work: F) -> anyhow::Result<T>
where
    F: FnOnce(Store) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    let mut embedded = None;
    let database = match &database_args.database_url {
        Some(url) => url
            .parse::<tokio_postgres::Config>()
            .context("DATABASE_URL is not a valid Postgres URL")?,
        None => match EmbeddedPostgres::attach(&database_args.data_dir, EMBEDDED_DATABASE) {
            Some(config) => config,
            None => {
                let cluster =
                    EmbeddedPostgres::start(&database_args.data_dir, &EmbeddedOptions::engine())
                        .context("cannot start the embedded Postgres")?;
                let config = cluster.config(EMBEDDED_DATABASE);
                embedded = Some(cluster);
                config
            }
        },
    };
    let result = actix_web::rt::System::new().block_on(async {
        prepare_database(&database).await?;
        let store = Store::connect(database.clone(), 2);
        store.migrate().await?;
        work(store).await
    });
    if let Some(mut cluster) = embedded {
        cluster.stop();
    }
    result
}

/// `deltran audit`: checks every rule of the stored data; exit code 1 on a violation.
fn audit(args: AuditArgs) -> anyhow::Result<()> {
    let checks = with_store(&args.database, |store| async move {
        store
            .audit()
            .await
            .context("the audit could not read the database")
    })?;
    let mut violated = 0;
    for check in &checks {
        if check.violations.is_empty() {
            println!("ok         {}", check.rule);
        } else {
            violated += 1;
            println!("VIOLATED   {}", check.rule);
            for v in &check.violations {
                println!("           {v}");
            }
        }
    }
    println!("{} rules checked, {} violated", checks.len(), violated);
    if violated > 0 {
        std::process::exit(1);
    }
    Ok(())
}

/// `deltran keys create|list|revoke`: manages API keys in the engine's database; a
/// running engine picks the change up within a second. `create` prints the new key
/// alone on the last line of stdout: it is shown this once and stored only as a hash.
fn keys(args: KeysArgs) -> anyhow::Result<()> {
    let origin = Origin::CommandLine;
    match args.action {
        KeysAction::Create {
            role,
            bank,
            label,
            database,
        } => {
            let (role, bank) = deltran::http::keys::role_and_bank(&role, bank.as_deref())
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            if let Some(label) = &label {
                deltran::http::keys::label_text(label).map_err(|e| anyhow::anyhow!("{e}"))?;
            }
            let (record, text) = with_store(&database, |store| async move {
                keys::create_key(&store, &origin, role, bank, label)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))
            })?;
            println!(
                "made {} key {}{}",
                record.principal.role,
                record.principal.key_id,
                record
                    .principal
                    .bank
                    .map(|b| format!(" for bank {b}"))
                    .unwrap_or_default()
            );
            println!("{text}");
        }
        KeysAction::List { database } => {
            let records = with_store(&database, |store| async move { Ok(store.keys().await?) })?;
            println!(
                "{:<32}  {:<8}  {:<11}  {:<25}  {:<25}  label",
                "id", "role", "bank", "created", "revoked"
            );
            for k in records {
                println!(
                    "{:<32}  {:<8}  {:<11}  {:<25}  {:<25}  {}",
                    k.principal.key_id.to_string(),
                    k.principal.role.as_str(),
                    k.principal.bank.as_ref().map(|b| b.as_str()).unwrap_or("-"),
                    k.created_at
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    k.revoked_at
                        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                        .unwrap_or_else(|| "-".into()),
                    k.label.unwrap_or_default()
                );
            }
        }
        KeysAction::Revoke { id, database } => {
            let id = KeyId::parse(&id).map_err(|e| anyhow::anyhow!("{id}: {e}"))?;
            let record = with_store(&database, |store| async move {
                keys::revoke_key(&store, &origin, id)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))
            })?;
            println!(
                "revoked key {} ({})",
                record.principal.key_id, record.principal.role
            );
        }
    }
    Ok(())
}

/// `deltran cluster move`: moves a partition's lease to another node.
fn cluster(args: ClusterCommandArgs) -> anyhow::Result<()> {
    use deltran::domain::cluster::{NodeId, PartitionId};
    match args.action {
        ClusterAction::Move {
            cluster_nats,
            partition,
            to_node,
            lease_ttl_ms,
            cluster_replicas,
        } => {
            let lease =
                actix_web::rt::System::new().block_on(deltran::cluster::node::move_partition(
                    &cluster_nats,
                    PartitionId(partition),
                    NodeId(to_node),
                    std::time::Duration::from_millis(lease_ttl_ms),
                    cluster_replicas,
                ))?;
            println!(
                "partition {partition} moved to node {} under epoch {}",
                lease.holder.0, lease.epoch.0
            );
        }
    }
    Ok(())
}

fn serve(mut settings: Settings) -> anyhow::Result<()> {
    deltran::telemetry::init(settings.log_format);
    if settings.database.database_url.is_none() {
        settings.first_start_keys_file = Some(settings.database.data_dir.join(KEYS_FILE));
    }
    // The embedded cluster is started from the main thread, which lives as long as
    // the process: the kernel ties the cluster's parent-death signal to this thread.
    let mut embedded = match &settings.database.database_url {
        Some(_) => None,
        None => Some(
            EmbeddedPostgres::start(&settings.database.data_dir, &EmbeddedOptions::engine())
                .context("cannot start the embedded Postgres")?,
        ),
    };
    let database = match (&settings.database.database_url, &embedded) {
        (Some(url), _) => url
            .parse::<tokio_postgres::Config>()
            .context("DATABASE_URL is not a valid Postgres URL")?,
        (None, Some(cluster)) => cluster.config(EMBEDDED_DATABASE),
        (None, None) => unreachable!("one of the two is set"),
    };
    if let Some(cluster) = &embedded {
        let location = cluster.location();
        let dir = location.cluster_dir();
        if location.relocated {
            let data_dir = &settings.database.data_dir;
            let data_dir = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.clone());
            tracing::info!(
                cluster = %dir.display(),
                data_dir = %data_dir.display(),
                "the postgres user cannot reach the data directory, so its embedded \
                 Postgres cluster lives in {} (the same for every start from this data \
                 directory)",
                dir.display()
            );
        } else {
            tracing::info!(
                cluster = %dir.display(),
                "embedded Postgres cluster in {}",
                dir.display()
            );
        }
    }
    let is_embedded = embedded.is_some();
    // From here a thread keeps the cluster running, starting it again if it dies.
    let mut keeper = embedded.take().map(|cluster| {
        ClusterKeeper::spawn(
            cluster,
            settings.database.data_dir.clone(),
            EmbeddedOptions::engine(),
        )
    });
    let result = actix_web::rt::System::new().block_on(async {
        if is_embedded {
            prepare_database(&database)
                .await
                .context("the embedded Postgres did not come up")?;
        }
        // Cluster mode: join first (the partition's lease), then open the store under
        // the lease's epoch, so that every write of this process carries it.
        let mut database = database.clone();
        let joined = match settings.cluster.cluster_nats {
            Some(_) => {
                let joined = deltran::cluster::node::join(&settings.cluster)
                    .await
                    .context("cannot join the cluster")?;
                deltran::store::fence::write_under(&mut database, joined.epoch());
                Some(joined)
            }
            None => None,
        };
        let app = Application::build_node(&settings, database, joined).await?;
        app.run_until_stopped().await
    });
    if let Some(keeper) = keeper.as_mut() {
        keeper.stop();
    }
    result
}
