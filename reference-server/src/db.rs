//! The platform's SQLite database: users, orgs, sessions, connections, OAuth attempts,
//! credentials and chats. `secure_delete` is on, so deleted credentials leave the file.

use crate::clock::Clock;
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS memberships (
    user_id TEXT NOT NULL,
    org TEXT NOT NULL,
    PRIMARY KEY (user_id, org)
);
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS connections (
    id TEXT PRIMARY KEY,
    org TEXT NOT NULL,
    connector TEXT NOT NULL,
    created_by TEXT NOT NULL,
    status TEXT NOT NULL,
    message TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS attempts (
    state TEXT PRIMARY KEY,
    connection_id TEXT NOT NULL,
    session_id TEXT NOT NULL,
    pkce_verifier TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    used_at INTEGER
);
CREATE TABLE IF NOT EXISTS credentials (
    connection_id TEXT PRIMARY KEY,
    access_token TEXT NOT NULL,
    refresh_token TEXT,
    expires_at INTEGER,
    scope TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    org TEXT NOT NULL,
    chat TEXT NOT NULL,
    role TEXT NOT NULL,
    kind TEXT NOT NULL,
    text TEXT NOT NULL,
    connector TEXT,
    connection_id TEXT,
    queued_id TEXT,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS mcp_clients (
    org TEXT NOT NULL,
    connector TEXT NOT NULL,
    settings TEXT NOT NULL,
    PRIMARY KEY (org, connector)
);
CREATE TABLE IF NOT EXISTS scope_requests (
    org TEXT NOT NULL,
    connector TEXT NOT NULL,
    scopes TEXT NOT NULL,
    PRIMARY KEY (org, connector)
);
CREATE TABLE IF NOT EXISTS queued (
    id TEXT PRIMARY KEY,
    org TEXT NOT NULL,
    chat TEXT NOT NULL,
    text TEXT NOT NULL,
    connector TEXT NOT NULL,
    connection_id TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    resent_at INTEGER
);
"#;

/// Where a connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ConnectionStatus {
    Pending,
    Connected,
    Failed,
    Revoked,
}

impl ConnectionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionStatus::Pending => "pending",
            ConnectionStatus::Connected => "connected",
            ConnectionStatus::Failed => "failed",
            ConnectionStatus::Revoked => "revoked",
        }
    }

    fn parse(text: &str) -> Self {
        match text {
            "connected" => ConnectionStatus::Connected,
            "failed" => ConnectionStatus::Failed,
            "revoked" => ConnectionStatus::Revoked,
            _ => ConnectionStatus::Pending,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConnectionRecord {
    pub id: String,
    pub org: String,
    pub connector: String,
    pub status: ConnectionStatus,
    pub message: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Attempt {
    pub connection_id: String,
    pub session_id: String,
    pub pkce_verifier: String,
}

/// What taking an attempt by its state found.
#[derive(Debug)]
pub enum AttemptLookup {
    Fresh(Attempt),
    AlreadyUsed(Attempt),
    Unknown,
}

#[derive(Debug, Clone)]
pub struct Credentials {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub expires_at_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageRecord {
    pub id: i64,
    pub role: String,
    pub kind: String,
    pub text: String,
    pub connector: Option<String>,
    pub connection_id: Option<String>,
    pub queued_id: Option<String>,
}

/// A message to append.
#[derive(Debug, Clone, Default)]
pub struct NewMessage<'a> {
    pub role: &'a str,
    pub kind: &'a str,
    pub text: &'a str,
    pub connector: Option<&'a str>,
    pub connection_id: Option<&'a str>,
    pub queued_id: Option<&'a str>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueuedRecord {
    pub id: String,
    pub text: String,
    pub connector: String,
    pub connection_id: String,
    pub state: String,
}

#[derive(Debug, Clone)]
pub struct Database {
    connection: std::sync::Arc<Mutex<Connection>>,
    clock: Clock,
}

type Result<T> = rusqlite::Result<T>;

fn connection_from_row(row: &rusqlite::Row<'_>) -> Result<ConnectionRecord> {
    Ok(ConnectionRecord {
        id: row.get(0)?,
        org: row.get(1)?,
        connector: row.get(2)?,
        status: ConnectionStatus::parse(&row.get::<_, String>(3)?),
        message: row.get(4)?,
    })
}

const CONNECTION_COLUMNS: &str = "id, org, connector, status, message";

impl Database {
    /// A database that lives in memory only (the simulator's).
    pub fn open_in_memory(clock: Clock) -> Result<Self> {
        Self::prepare(Connection::open_in_memory()?, clock)
    }

    pub fn open(path: &Path, clock: Clock) -> Result<Self> {
        Self::prepare(Connection::open(path)?, clock)
    }

    /// The clock every time the database writes is read from.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    fn prepare(connection: Connection, clock: Clock) -> Result<Self> {
        // Every statement is prepared once per connection (`prepare_cached`), and the query
        // planner keeps its plan whatever the bound values (no re-preparation per binding).
        connection.set_prepared_statement_cache_capacity(64);
        connection.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
            true,
        )?;
        connection.execute_batch(
            "PRAGMA secure_delete = ON; PRAGMA journal_mode = DELETE; PRAGMA foreign_keys = ON;",
        )?;
        connection.execute_batch(SCHEMA)?;
        Ok(Self {
            connection: std::sync::Arc::new(Mutex::new(connection)),
            clock,
        })
    }

    /// Empties every table, as if just created (the simulator reuses one in-memory database,
    /// and its prepared statements, across flows).
    pub fn reset(&self) -> Result<()> {
        let db = self.lock();
        for table in [
            "mcp_clients",
            "scope_requests",
            "queued",
            "messages",
            "credentials",
            "attempts",
            "connections",
            "sessions",
            "memberships",
            "sqlite_sequence",
        ] {
            db.prepare_cached(&format!("DELETE FROM {table} WHERE 1"))?
                .execute([])?;
        }
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.connection.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn add_membership(&self, user: &str, org: &str) -> Result<()> {
        self.lock()
            .prepare_cached("INSERT OR IGNORE INTO memberships (user_id, org) VALUES (?1, ?2)")?
            .execute(params![user, org])?;
        Ok(())
    }

    pub fn is_member(&self, user: &str, org: &str) -> Result<bool> {
        self.lock()
            .prepare_cached("SELECT 1 FROM memberships WHERE user_id = ?1 AND org = ?2")?
            .query_row(params![user, org], |_| Ok(()))
            .optional()
            .map(|found| found.is_some())
    }

    pub fn create_session(&self, id: &str, user: &str) -> Result<()> {
        self.lock()
            .prepare_cached("INSERT INTO sessions (id, user_id, created_at) VALUES (?1, ?2, ?3)")?
            .execute(params![id, user, self.now_ms()])?;
        Ok(())
    }

    pub fn session_user(&self, id: &str) -> Result<Option<String>> {
        self.lock()
            .prepare_cached("SELECT user_id FROM sessions WHERE id = ?1")?
            .query_row(params![id], |row| row.get(0))
            .optional()
    }

    pub fn create_connection(
        &self,
        id: &str,
        org: &str,
        connector: &str,
        user: &str,
    ) -> Result<()> {
        let now = self.now_ms();
        self.lock()
            .prepare_cached(
                "INSERT INTO connections (id, org, connector, created_by, status, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, 'pending', ?5, ?5)",
            )?
            .execute(params![id, org, connector, user, now])?;
        Ok(())
    }

    /// A connection of this org; `None` for another org's connection.
    pub fn connection(&self, org: &str, id: &str) -> Result<Option<ConnectionRecord>> {
        self.lock()
            .prepare_cached(&format!(
                "SELECT {CONNECTION_COLUMNS} FROM connections WHERE org = ?1 AND id = ?2"
            ))?
            .query_row(params![org, id], connection_from_row)
            .optional()
    }

    pub fn connection_by_id(&self, id: &str) -> Result<Option<ConnectionRecord>> {
        self.lock()
            .prepare_cached(&format!(
                "SELECT {CONNECTION_COLUMNS} FROM connections WHERE id = ?1"
            ))?
            .query_row(params![id], connection_from_row)
            .optional()
    }

    /// The newest connection of an org to a connector.
    pub fn latest_connection(
        &self,
        org: &str,
        connector: &str,
    ) -> Result<Option<ConnectionRecord>> {
        self.lock()
            .query_row(
                &format!(
                    "SELECT {CONNECTION_COLUMNS} FROM connections WHERE org = ?1 AND connector = ?2
                     ORDER BY created_at DESC, rowid DESC LIMIT 1"
                ),
                params![org, connector],
                connection_from_row,
            )
            .optional()
    }

    /// What an org's MCP connector was found and registered as (its connector settings, as
    /// JSON, client secret included: the database is the platform's, never the browser's).
    pub fn mcp_client(&self, org: &str, connector: &str) -> Result<Option<String>> {
        self.lock()
            .prepare_cached("SELECT settings FROM mcp_clients WHERE org = ?1 AND connector = ?2")?
            .query_row(params![org, connector], |row| row.get(0))
            .optional()
    }

    pub fn store_mcp_client(&self, org: &str, connector: &str, settings: &str) -> Result<()> {
        self.lock()
            .prepare_cached(
                "INSERT OR REPLACE INTO mcp_clients (org, connector, settings) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![org, connector, settings])?;
        Ok(())
    }

    /// Forgets what an org's MCP connector was registered as: the next connect finds and
    /// registers it anew.
    pub fn forget_mcp_client(&self, org: &str, connector: &str) -> Result<()> {
        self.lock()
            .prepare_cached("DELETE FROM mcp_clients WHERE org = ?1 AND connector = ?2")?
            .execute(params![org, connector])?;
        Ok(())
    }

    /// The scopes an org's connector must ask for beyond its settings' (a provider answered
    /// `insufficient_scope` naming them), space-separated; empty when none.
    pub fn wanted_scopes(&self, org: &str, connector: &str) -> Result<String> {
        Ok(self
            .lock()
            .prepare_cached("SELECT scopes FROM scope_requests WHERE org = ?1 AND connector = ?2")?
            .query_row(params![org, connector], |row| row.get(0))
            .optional()?
            .unwrap_or_default())
    }

    /// Adds `scopes` to those an org's connector must ask for from now on; returns them all.
    pub fn add_wanted_scopes(
        &self,
        org: &str,
        connector: &str,
        scopes: &[String],
    ) -> Result<Vec<String>> {
        let mut wanted: Vec<String> = self
            .wanted_scopes(org, connector)?
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        for scope in scopes {
            if !wanted.contains(scope) {
                wanted.push(scope.clone());
            }
        }
        self.lock()
            .prepare_cached(
                "INSERT OR REPLACE INTO scope_requests (org, connector, scopes) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![org, connector, wanted.join(" ")])?;
        Ok(wanted)
    }

    pub fn set_connection_status(
        &self,
        id: &str,
        status: ConnectionStatus,
        message: Option<&str>,
    ) -> Result<()> {
        self.lock()
            .prepare_cached(
                "UPDATE connections SET status = ?2, message = ?3, updated_at = ?4 WHERE id = ?1",
            )?
            .execute(params![id, status.as_str(), message, self.now_ms()])?;
        Ok(())
    }

    pub fn create_attempt(
        &self,
        state: &str,
        connection_id: &str,
        session_id: &str,
        verifier: &str,
    ) -> Result<()> {
        self.lock()
            .prepare_cached(
                "INSERT INTO attempts (state, connection_id, session_id, pkce_verifier, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                state,
                connection_id,
                session_id,
                verifier,
                self.now_ms()
            ])?;
        Ok(())
    }

    /// Marks an attempt used and returns it; a second take finds it already used.
    pub fn take_attempt(&self, state: &str) -> Result<AttemptLookup> {
        let db = self.lock();
        let found = db
            .prepare_cached("SELECT connection_id, session_id, pkce_verifier, used_at FROM attempts WHERE state = ?1",
            )?
            .query_row(params![state],
                |row| {
                    Ok((
                        Attempt {
                            connection_id: row.get(0)?,
                            session_id: row.get(1)?,
                            pkce_verifier: row.get(2)?,
                        },
                        row.get::<_, Option<i64>>(3)?,
                    ))
                },
            )
            .optional()?;
        match found {
            None => Ok(AttemptLookup::Unknown),
            Some((attempt, Some(_))) => Ok(AttemptLookup::AlreadyUsed(attempt)),
            Some((attempt, None)) => {
                db.prepare_cached(
                    "UPDATE attempts SET used_at = ?2, pkce_verifier = '' WHERE state = ?1",
                )?
                .execute(params![state, self.now_ms()])?;
                Ok(AttemptLookup::Fresh(attempt))
            }
        }
    }

    pub fn store_credentials(
        &self,
        connection_id: &str,
        credentials: &Credentials,
        scope: &str,
    ) -> Result<()> {
        self.lock()
            .prepare_cached(
                "INSERT OR REPLACE INTO credentials (connection_id, access_token, refresh_token, expires_at, scope) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                connection_id,
                credentials.access_token,
                credentials.refresh_token,
                credentials.expires_at_ms,
                scope
            ])?;
        Ok(())
    }

    pub fn credentials(&self, connection_id: &str) -> Result<Option<Credentials>> {
        self.lock()
            .prepare_cached("SELECT access_token, refresh_token, expires_at FROM credentials WHERE connection_id = ?1",
            )?
            .query_row(params![connection_id],
                |row| {
                    Ok(Credentials {
                        access_token: row.get(0)?,
                        refresh_token: row.get(1)?,
                        expires_at_ms: row.get(2)?,
                    })
                },
            )
            .optional()
    }

    /// Deletes the stored credentials and marks the connection revoked, in one transaction.
    /// Returns the credentials that were deleted, for revoking at the provider.
    pub fn revoke_connection(&self, id: &str, message: &str) -> Result<Option<Credentials>> {
        let mut db = self.lock();
        let tx = db.transaction()?;
        let credentials = tx
            .prepare_cached("SELECT access_token, refresh_token, expires_at FROM credentials WHERE connection_id = ?1",
            )?
            .query_row(params![id],
                |row| {
                    Ok(Credentials {
                        access_token: row.get(0)?,
                        refresh_token: row.get(1)?,
                        expires_at_ms: row.get(2)?,
                    })
                },
            )
            .optional()?;
        tx.prepare_cached("DELETE FROM credentials WHERE connection_id = ?1")?
            .execute(params![id])?;
        tx.prepare_cached("UPDATE connections SET status = 'revoked', message = ?2, updated_at = ?3 WHERE id = ?1",
            )?
            .execute(params![id, message, self.now_ms()],
        )?;
        tx.prepare_cached("UPDATE attempts SET pkce_verifier = '' WHERE connection_id = ?1")?
            .execute(params![id])?;
        tx.commit()?;
        Ok(credentials)
    }

    pub fn add_message(
        &self,
        org: &str,
        chat: &str,
        message: &NewMessage<'_>,
    ) -> Result<MessageRecord> {
        let db = self.lock();
        db
            .prepare_cached(
                "INSERT INTO messages (org, chat, role, kind, text, connector, connection_id, queued_id, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![
                org,
                chat,
                message.role,
                message.kind,
                message.text,
                message.connector,
                message.connection_id,
                message.queued_id,
                self.now_ms()
            ])?;
        Ok(MessageRecord {
            id: db.last_insert_rowid(),
            role: message.role.to_owned(),
            kind: message.kind.to_owned(),
            text: message.text.to_owned(),
            connector: message.connector.map(str::to_owned),
            connection_id: message.connection_id.map(str::to_owned),
            queued_id: message.queued_id.map(str::to_owned),
        })
    }

    pub fn messages(&self, org: &str, chat: &str) -> Result<Vec<MessageRecord>> {
        let db = self.lock();
        let mut statement = db.prepare_cached(
            "SELECT id, role, kind, text, connector, connection_id, queued_id FROM messages
             WHERE org = ?1 AND chat = ?2 ORDER BY id",
        )?;
        let rows = statement.query_map(params![org, chat], |row| {
            Ok(MessageRecord {
                id: row.get(0)?,
                role: row.get(1)?,
                kind: row.get(2)?,
                text: row.get(3)?,
                connector: row.get(4)?,
                connection_id: row.get(5)?,
                queued_id: row.get(6)?,
            })
        })?;
        rows.collect()
    }

    pub fn queue_message(&self, record: &QueuedRecord, org: &str, chat: &str) -> Result<()> {
        self.lock()
            .prepare_cached(
                "INSERT INTO queued (id, org, chat, text, connector, connection_id, state, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'waiting', ?7)",
            )?
            .execute(params![
                record.id,
                org,
                chat,
                record.text,
                record.connector,
                record.connection_id,
                self.now_ms()
            ])?;
        Ok(())
    }

    pub fn queued(&self, org: &str, chat: &str) -> Result<Vec<QueuedRecord>> {
        let db = self.lock();
        let mut statement = db.prepare_cached(
            "SELECT id, text, connector, connection_id, state FROM queued
             WHERE org = ?1 AND chat = ?2 ORDER BY created_at, rowid",
        )?;
        let rows = statement.query_map(params![org, chat], |row| {
            Ok(QueuedRecord {
                id: row.get(0)?,
                text: row.get(1)?,
                connector: row.get(2)?,
                connection_id: row.get(3)?,
                state: row.get(4)?,
            })
        })?;
        rows.collect()
    }

    pub fn queued_message(&self, org: &str, chat: &str, id: &str) -> Result<Option<QueuedRecord>> {
        Ok(self.queued(org, chat)?.into_iter().find(|q| q.id == id))
    }

    /// Marks a waiting message re-sent. `false` when it was re-sent already: the caller
    /// must not re-send it again.
    pub fn mark_resent(&self, id: &str) -> Result<bool> {
        let changed = self.lock().prepare_cached("UPDATE queued SET state = 'resent', resent_at = ?2 WHERE id = ?1 AND state = 'waiting'",
            )?
            .execute(params![id, self.now_ms()],
        )?;
        Ok(changed == 1)
    }
}
