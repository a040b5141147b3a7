//! Building the application apart from running it.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use reference_server::{Application, Settings};
//! let settings = Settings::for_provider("http://localhost:9000/");
//! let app = Application::build(settings).await?;
//! println!("open {}", app.url());
//! app.run_until_stopped().await?;
//! # Ok(()) }
//! ```

use crate::clock::Clock;
use crate::db::Database;
use crate::routes::router;
use crate::settings::Settings;
use crate::state::AppState;
use anyhow::Context;
use std::path::{Path, PathBuf};
use tokio::net::TcpListener;

/// The start of the line [`Application::announce`] prints with the platform's URL.
pub const LISTENING: &str = "reference-server listening on";
/// The start of the line [`Application::announce`] prints with the redirect URI.
pub const REDIRECT_URI: &str = "redirect URI to register at the provider:";

/// Changes the routes before they serve (tests use it to build deliberately broken platforms).
pub type RouterCustomizer = Box<dyn FnOnce(axum::Router) -> axum::Router + Send>;

/// The platform with no socket and no file: an in-memory database, its outgoing requests
/// handed to a function, and no wall clock either (its [`Clock`] reads what it is set to). The
/// simulator builds one and [`InMemoryPlatform::reset`]s it before each flow.
pub struct InMemoryPlatform {
    pub router: axum::Router,
    state: AppState,
}

impl InMemoryPlatform {
    pub fn new(
        settings: Settings,
        public_url: url::Url,
        http: crate::Http,
    ) -> anyhow::Result<Self> {
        settings.validate()?;
        let db = Database::open_in_memory(Clock::set_to(0))?;
        let state = AppState::with_http(settings, public_url, db, http)?;
        Ok(Self {
            router: router(state.clone()),
            state,
        })
    }

    /// The platform's clock: set it to the simulated time before each request.
    pub fn clock(&self) -> &Clock {
        self.state.clock()
    }

    /// As new: every table empty, the random values starting over from `seed`.
    pub fn reset(&self, seed: u64) -> anyhow::Result<()> {
        self.state.db().reset()?;
        self.state.entropy().reseed(seed);
        Ok(())
    }
}

/// A bound, ready-to-run platform.
pub struct Application {
    listener: TcpListener,
    state: AppState,
    port: u16,
    database_path: PathBuf,
    customize: Option<RouterCustomizer>,
    /// Holds the temporary data directory (when no data directory was given) until drop.
    _temporary_data_dir: Option<tempfile::TempDir>,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_with(settings, None).await
    }

    /// Like [`Application::build`], with the routes passed through `customize` before serving.
    pub async fn build_with(
        settings: Settings,
        customize: Option<RouterCustomizer>,
    ) -> anyhow::Result<Self> {
        settings.validate()?;
        let listener = TcpListener::bind(settings.bind).await.with_context(|| {
            format!(
                "cannot bind the reference server to {} (hint: pick a free port, or 127.0.0.1:0 for any)",
                settings.bind
            )
        })?;
        let port = listener.local_addr()?.port();
        let public_url = match &settings.public_url {
            Some(url) => url::Url::parse(url)?,
            None => url::Url::parse(&format!("http://127.0.0.1:{port}/"))?,
        };
        let (data_dir, temporary) = match &settings.data_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir).with_context(|| {
                    format!("cannot create the data directory {}", dir.display())
                })?;
                (dir.clone(), None)
            }
            None => {
                let temp = tempfile::Builder::new().prefix("alumia-data-").tempdir()?;
                (temp.path().to_owned(), Some(temp))
            }
        };
        let database_path = data_dir.join("alumia.sqlite3");
        let db = Database::open(&database_path, Clock::wall())
            .with_context(|| format!("cannot open the database {}", database_path.display()))?;
        let state = AppState::new(settings, public_url, db)?;
        Ok(Self {
            listener,
            state,
            port,
            database_path,
            customize,
            _temporary_data_dir: temporary,
        })
    }

    /// The platform's clock: a test advances it instead of sleeping through a token's lifetime.
    pub fn clock(&self) -> &Clock {
        self.state.clock()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The platform's public URL, e.g. `http://127.0.0.1:PORT/`.
    pub fn url(&self) -> url::Url {
        self.state.public_url().clone()
    }

    /// The redirect URI to register at the provider.
    pub fn redirect_uri(&self) -> String {
        self.state.redirect_uri()
    }

    /// Prints where it listens and the redirect URI to register, as
    /// `reference-server listening on URL` and `redirect URI to register at the provider: URI`
    /// (a harness that started it on port 0 reads them back).
    pub fn announce(&self) {
        println!("{LISTENING} {}", self.url());
        println!("{REDIRECT_URI} {}", self.redirect_uri());
        println!("database: {}", self.database_path().display());
    }

    pub fn database_path(&self) -> &Path {
        &self.database_path
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.run_until(std::future::pending()).await
    }

    /// Serves until `shutdown` completes.
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let Self {
            listener,
            state,
            customize,
            _temporary_data_dir,
            ..
        } = self;
        let routes = match customize {
            Some(customize) => customize(router(state)),
            None => router(state),
        };
        axum::serve(listener, routes)
            .with_graceful_shutdown(shutdown)
            .await
    }
}
