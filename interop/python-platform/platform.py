#!/usr/bin/env python3
"""A second Alumia platform, written from docs/target-contract.md and
../shared/spec/oauth-flow.md alone: Python's standard library, no framework, no code or page
script shared with the reference server. The harness runs its scenarios against it as a
remote target (harness/tests/python_platform.rs); whatever it needs that the contract does
not say is a gap in the contract.

Where the contract leaves a choice open it chooses otherwise than the reference server, on
purpose: its own paths (connect URL, redirect URI, client metadata document), cookie and
wording; client_secret_post at the token endpoint; refreshes only after the API answers 401
(no expiry clock); one API call to test a new connection; a step-up revokes the grant it
replaces; payloads as JSON text on BroadcastChannel and to the opener, connectionId null when
the callback names none, a refused replay names its connection; the callback closes at once.

    python3 interop/python-platform/platform.py --bind 127.0.0.1:0 \\
        --provider-url http://127.0.0.1:9000/ [--opener-policy site-wide] [--embeddable]

It prints one JSON line, {"listening": URL, "redirect_uri": URL}, then serves until killed.
"""

import argparse
import base64
import hashlib
import html
import http.server
import json
import os
import re
import secrets
import sqlite3
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
NAME = re.compile(r"^[a-z0-9-]{1,40}$")
COOKIE = "sp_session"
CONNECT_PATH = "/c/{org}/{connector}"
REDIRECT_PATH = "/oauth2/cb"
DOCUMENT_PATH = "/oauth/client.json"
CALLBACK_PATH = "/auth/connector-callback"


# How far POST /dev/clock moved this platform's clock ahead (virtual time). It judges no
# token's expiry by it (it refreshes after a 401), so only its timestamps move.
CLOCK_AHEAD_MS = [0]


def now_ms():
    return int(time.time() * 1000) + CLOCK_AHEAD_MS[0]


def token(prefix, size=18):
    return prefix + secrets.token_urlsafe(size)


# ---- configuration -------------------------------------------------------------------------


class Connector:
    def __init__(self, name, display, scope, api_url=None, client_id=None, secret=None, mcp=False):
        self.name = name
        self.display = display
        self.scope = scope
        self.api_url = api_url
        self.client_id = client_id
        self.secret = secret
        self.mcp = mcp


class Config:
    def __init__(self, args):
        self.provider = args.provider_url.rstrip("/")
        self.issuer = self.provider
        self.opener_policy = args.opener_policy
        self.embeddable = args.embeddable
        self.connectors = {
            "files": Connector("files", "Files", "files.read", self.provider + "/api/files",
                               args.files_client_id, args.files_client_secret),
            "calendar": Connector("calendar", "Calendar", "calendar.read",
                                  self.provider + "/api/calendar",
                                  args.calendar_client_id, args.calendar_client_secret),
            "notes": Connector("notes", "Notes", None, self.provider + "/mcp", mcp=True),
        }
        self.public_url = None  # known once bound

    @property
    def redirect_uri(self):
        return self.public_url + REDIRECT_PATH

    @property
    def document_url(self):
        return self.public_url + DOCUMENT_PATH


# ---- storage: one SQLite file, one lock --------------------------------------------------------

SCHEMA = """
CREATE TABLE sessions (id TEXT PRIMARY KEY, user TEXT NOT NULL);
CREATE TABLE members (user TEXT, org TEXT, PRIMARY KEY (user, org));
CREATE TABLE connections (id TEXT PRIMARY KEY, org TEXT, connector TEXT, status TEXT,
  message TEXT, created INTEGER);
CREATE TABLE credentials (connection TEXT PRIMARY KEY, access TEXT, refresh TEXT,
  scope TEXT);
CREATE TABLE attempts (state TEXT PRIMARY KEY, connection TEXT, session TEXT, verifier TEXT,
  used INTEGER DEFAULT 0, client_id TEXT, resource TEXT);
CREATE TABLE messages (id INTEGER PRIMARY KEY AUTOINCREMENT, org TEXT, chat TEXT, role TEXT,
  kind TEXT, text TEXT, connector TEXT, connection TEXT, queued TEXT);
CREATE TABLE queued (id TEXT PRIMARY KEY, org TEXT, chat TEXT, text TEXT, connector TEXT,
  connection TEXT, state TEXT);
CREATE TABLE clients (org TEXT, connector TEXT, client_id TEXT, secret TEXT, method TEXT,
  PRIMARY KEY (org, connector));
CREATE TABLE wanted (org TEXT, connector TEXT, scope TEXT, PRIMARY KEY (org, connector, scope));
"""


class Store:
    def __init__(self, path):
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        self.db.executescript(SCHEMA)
        self.lock = threading.RLock()

    def all(self, sql, *args):
        with self.lock:
            return [dict(r) for r in self.db.execute(sql, args).fetchall()]

    def one(self, sql, *args):
        rows = self.all(sql, *args)
        return rows[0] if rows else None

    def run(self, sql, *args):
        with self.lock:
            return self.db.execute(sql, args)

    # Connections

    def latest(self, org, connector):
        return self.one("SELECT * FROM connections WHERE org=? AND connector=? "
                        "ORDER BY created DESC, rowid DESC LIMIT 1", org, connector)

    def connection(self, org, id):
        return self.one("SELECT * FROM connections WHERE org=? AND id=?", org, id)

    def new_connection(self, org, connector):
        id = token("pc-", 12)
        self.run("INSERT INTO connections VALUES (?,?,?,?,?,?)", id, org, connector, "pending",
                 None, now_ms())
        return self.connection(org, id)

    def set_status(self, id, status, message=None):
        self.run("UPDATE connections SET status=?, message=? WHERE id=?", status, message, id)

    def waiting_connection(self, org, connector):
        """The connector's pending or failed connection, reused, or a new one."""
        with self.lock:
            latest = self.latest(org, connector)
            if latest and latest["status"] in ("pending", "failed"):
                return latest
            return self.new_connection(org, connector)

    def take_credentials(self, connection):
        with self.lock:
            held = self.one("SELECT * FROM credentials WHERE connection=?", connection)
            self.run("DELETE FROM credentials WHERE connection=?", connection)
            return held


# ---- the provider, over HTTP ------------------------------------------------------------------


class Answer:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        try:
            return json.loads(self.body or b"null")
        except ValueError:
            return None

    def header(self, name):
        return self.headers.get(name.lower(), "")


def request(method, url, form=None, body=None, headers=None, timeout=10):
    headers = dict(headers or {})
    data = None
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    elif body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    headers.setdefault("Accept", "application/json")
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Answer(response.status,
                          {k.lower(): v for k, v in response.headers.items()}, response.read())
    except urllib.error.HTTPError as error:
        return Answer(error.code, {k.lower(): v for k, v in error.headers.items()}, error.read())
    except (urllib.error.URLError, OSError) as error:
        return Answer(0, {}, str(error).encode())


def challenge_params(value):
    """The parameters of a WWW-Authenticate Bearer challenge."""
    return dict(re.findall(r'([a-z_]+)="([^"]*)"', value or ""))


class Refused(Exception):
    """A connect the platform will not go on with: the card shows why."""


# ---- the platform ----------------------------------------------------------------------------


class Platform:
    def __init__(self, config, store):
        self.config = config
        self.store = store
        self.refresh_locks = {}
        self.refresh_locks_guard = threading.Lock()

    # Clients, one per connector; MCP clients found and registered per org.

    def client_for(self, org, connector):
        """(client_id, secret, method, endpoints, resource) for a connect or a token call."""
        c = self.config.connectors[connector]
        provider = self.config.provider
        if not c.mcp:
            return {"client_id": c.client_id, "secret": c.secret, "method": "client_secret_post",
                    "authorize": provider + "/authorize", "token": provider + "/token",
                    "revoke": provider + "/revoke", "resource": None, "scope": c.scope}
        return self.mcp_client(org, c)

    def mcp_client(self, org, c):
        # The MCP server's authorization, found from its URL (MCP authorization, RFC 9728,
        # RFC 8414): the 401 challenge, the protected resource metadata, the authorization
        # server's metadata. Refused before any authorization request on a foreign resource or
        # issuer.
        probe = request("POST", c.api_url, body={"jsonrpc": "2.0", "id": 0, "method": "initialize",
                                              "params": {}})
        params = challenge_params(probe.header("www-authenticate"))
        metadata_url = params.get("resource_metadata")
        if not metadata_url:
            parsed = urllib.parse.urlsplit(c.api_url)
            metadata_url = "%s://%s/.well-known/oauth-protected-resource%s" % (
                parsed.scheme, parsed.netloc, parsed.path)
        resource_metadata = request("GET", metadata_url).json() or {}
        if resource_metadata.get("resource") != c.api_url:
            raise Refused("%s names another resource (%s) than its server" % (
                c.display, resource_metadata.get("resource")))
        servers = resource_metadata.get("authorization_servers") or []
        if not servers:
            raise Refused("%s names no authorization server" % c.display)
        issuer = servers[0].rstrip("/")
        parsed = urllib.parse.urlsplit(issuer)
        as_metadata = request("GET", "%s://%s/.well-known/oauth-authorization-server%s" % (
            parsed.scheme, parsed.netloc, parsed.path)).json() or {}
        if as_metadata.get("issuer", "").rstrip("/") != issuer:
            raise Refused("the authorization server of %s names another issuer" % c.display)
        scope = params.get("scope") or " ".join(resource_metadata.get("scopes_supported") or [])
        endpoints = {"authorize": as_metadata.get("authorization_endpoint"),
                     "token": as_metadata.get("token_endpoint"),
                     "revoke": as_metadata.get("revocation_endpoint"),
                     "resource": c.api_url, "scope": scope}
        known = self.store.one("SELECT * FROM clients WHERE org=? AND connector=?", org, c.name)
        if known:
            return dict(endpoints, client_id=known["client_id"], secret=known["secret"],
                        method=known["method"])
        if as_metadata.get("client_id_metadata_document_supported"):
            client = {"client_id": self.config.document_url, "secret": None, "method": "none"}
        elif as_metadata.get("registration_endpoint"):
            answer = request("POST", as_metadata["registration_endpoint"], body={
                "client_name": "Python platform", "redirect_uris": [self.config.redirect_uri],
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"], "token_endpoint_auth_method": "client_secret_post"})
            registered = answer.json() or {}
            if answer.status != 201 or not registered.get("client_id"):
                raise Refused("the authorization server of %s refused to register this platform (%s)"
                              % (c.display, registered.get("error", answer.status)))
            client = {"client_id": registered["client_id"],
                      "secret": registered.get("client_secret"),
                      "method": registered.get("token_endpoint_auth_method",
                                               "client_secret_post")}
        else:
            raise Refused("the authorization server of %s offers no way to know this platform"
                          % c.display)
        self.store.run("INSERT OR REPLACE INTO clients VALUES (?,?,?,?,?)", org, c.name,
                       client["client_id"], client["secret"], client["method"])
        return dict(endpoints, **client)

    def client_auth(self, client, form):
        """Client authentication at the token and revocation endpoints."""
        headers = {}
        if client["method"] == "client_secret_basic":
            pair = "%s:%s" % (urllib.parse.quote(client["client_id"], safe=""),
                              urllib.parse.quote(client["secret"] or "", safe=""))
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        else:
            form["client_id"] = client["client_id"]
            if client["method"] != "none":
                form["client_secret"] = client["secret"] or ""
        return form, headers

    def token_request(self, client, form):
        if client.get("resource"):
            form["resource"] = client["resource"]
        form, headers = self.client_auth(client, form)
        return request("POST", client["token"], form=form, headers=headers)

    def revoke(self, client, value, hint):
        if not client.get("revoke") or not value:
            return
        form, headers = self.client_auth(client, {"token": value, "token_type_hint": hint})
        request("POST", client["revoke"], form=form, headers=headers, timeout=5)

    def revoke_credentials(self, org, connector, held):
        if not held:
            return
        try:
            client = self.client_for(org, connector)
        except Refused:
            return
        self.revoke(client, held["refresh"], "refresh_token")
        self.revoke(client, held["access"], "access_token")

    # The connect hops.

    def start(self, session, org, connector, connection_id):
        """The authorization URL to send the browser to, or the callback URL saying why not."""
        store = self.store
        with store.lock:
            connection = store.connection(org, connection_id) if connection_id else None
            if not connection or connection["connector"] != connector or \
                    connection["status"] not in ("pending", "failed"):
                connection = store.waiting_connection(org, connector)
            store.set_status(connection["id"], "pending")
        try:
            client = self.client_for(org, connector)
        except Refused as why:
            store.set_status(connection["id"], "failed", str(why))
            return callback_url("error", connection["id"], str(why))
        scopes = (client["scope"] or "").split()
        for row in store.all("SELECT scope FROM wanted WHERE org=? AND connector=?", org,
                             connector):
            if row["scope"] not in scopes:
                scopes.append(row["scope"])
        state = token("st-", 24)
        verifier = token("", 48)
        challenge = base64.urlsafe_b64encode(
            hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
        store.run("INSERT INTO attempts (state, connection, session, verifier, client_id, resource)"
                  " VALUES (?,?,?,?,?,?)", state, connection["id"], session, verifier,
                  client["client_id"], client.get("resource"))
        query = {"response_type": "code", "client_id": client["client_id"],
                 "redirect_uri": self.config.redirect_uri, "scope": " ".join(scopes),
                 "state": state, "code_challenge": challenge, "code_challenge_method": "S256"}
        if client.get("resource"):
            query["resource"] = client["resource"]
        return client["authorize"] + "?" + urllib.parse.urlencode(query)

    def redirect(self, session, query):
        """The redirect URI: state bound to the browser session, single use; then the
        exchange. Returns the callback URL."""
        store = self.store
        state = query.get("state", "")
        with store.lock:
            attempt = store.one("SELECT * FROM attempts WHERE state=?", state) if state else None
            if not attempt:
                return callback_url("error", None, "This sign-in response is not one of ours.")
            if attempt["session"] != session:
                return callback_url("error", None,
                                    "This sign-in was started in another browser session.")
            if attempt["used"]:
                return callback_url("error", attempt["connection"],
                                    "This sign-in response was used already.")
            store.run("UPDATE attempts SET used=1 WHERE state=?", state)
            connection = store.one("SELECT * FROM connections WHERE id=?", attempt["connection"])
        if not connection or connection["status"] != "pending":
            return callback_url("error", attempt["connection"],
                                "This connection is no longer waiting for a sign-in.")
        org, name = connection["org"], connection["connector"]
        display = self.config.connectors[name].display
        issuer = query.get("iss")
        if issuer is not None and issuer.rstrip("/") != self.config.issuer:
            return self.fail(connection, "The sign-in answer came from another provider than %s."
                             % display)
        if query.get("error"):
            detail = query.get("error_description") or ""
            return self.fail(connection, "%s did not connect (%s)%s" % (
                display, query["error"][:64], (": " + detail[:200]) if detail else "."))
        try:
            client = self.client_for(org, name)
        except Refused as why:
            return self.fail(connection, str(why))
        answer = self.token_request(client, {
            "grant_type": "authorization_code", "code": query.get("code", ""),
            "redirect_uri": self.config.redirect_uri, "code_verifier": attempt["verifier"]})
        tokens = answer.json() or {}
        if answer.status != 200 or not tokens.get("access_token"):
            return self.fail(connection, "%s refused the sign-in (%s)." % (
                display, tokens.get("error", answer.status)))
        with store.lock:
            current = store.one("SELECT status FROM connections WHERE id=?", connection["id"])
            if not current or current["status"] != "pending":
                held = None
            else:
                store.run("INSERT OR REPLACE INTO credentials VALUES (?,?,?,?)", connection["id"],
                          tokens["access_token"], tokens.get("refresh_token"),
                          tokens.get("scope", ""))
                store.set_status(connection["id"], "connected")
                held = True
        if not held:
            self.revoke(client, tokens.get("refresh_token"), "refresh_token")
            self.revoke(client, tokens.get("access_token"), "access_token")
            return callback_url("error", connection["id"],
                                "This connection was removed during the sign-in.")
        # One call to see that the new connection works; its answer changes nothing.
        self.call(client, self.config.connectors[name], tokens["access_token"])
        return callback_url("success", connection["id"], "%s is connected." % display)

    def fail(self, connection, message):
        self.store.set_status(connection["id"], "failed", message)
        return callback_url("error", connection["id"], message)

    def disconnect(self, org, connector):
        store = self.store
        with store.lock:
            latest = store.latest(org, connector)
            if not latest or latest["status"] == "revoked":
                return "none"
            held = store.take_credentials(latest["id"])
            store.set_status(latest["id"], "revoked", "Disconnected.")
        # Deleted here at once; revoked at the provider, best-effort.
        self.revoke_credentials(org, connector, held)
        return "revoked"

    # The agent.

    def call(self, client, c, access):
        """One API call: ("ok", body) | ("unauthorized",) | ("scope", [scopes]) | ("down", why)."""
        headers = {"Authorization": "Bearer " + access}
        if c.mcp:
            return mcp_tool_call(c.api_url, headers)
        return outcome_of(request("GET", c.api_url, headers=headers))

    def refresh_lock(self, connection):
        with self.refresh_locks_guard:
            return self.refresh_locks.setdefault(connection, threading.Lock())

    def tool_call(self, org, connection):
        """("answer", text) | ("reconnect", what) | ("scope", scopes) | ("error", why)."""
        c = self.config.connectors[connection["connector"]]
        try:
            client = self.client_for(org, c.name)
        except Refused as why:
            return ("error", str(why))
        refreshed = False
        for _ in range(2):
            held = self.store.one("SELECT * FROM credentials WHERE connection=?",
                                  connection["id"])
            if not held:
                return ("reconnect", "was disconnected")
            result = self.call(client, c, held["access"])
            if result[0] == "ok":
                text = answer_text(c, result[1])
                return ("answer", text) if text else (
                    "error", "the provider answered in a form this platform does not read")
            if result[0] == "scope":
                return ("scope", result[1])
            if result[0] == "down":
                return ("error", result[1])
            # 401: one refresh per call, one at a time per connection.
            if refreshed or not self.refresh(client, connection["id"], held["access"]):
                return ("reconnect", "is no longer accepted by %s" % c.display)
            refreshed = True
        return ("reconnect", "is no longer accepted by %s" % c.display)

    def refresh(self, client, connection, stale_access):
        with self.refresh_lock(connection):
            held = self.store.one("SELECT * FROM credentials WHERE connection=?", connection)
            if not held:
                return False
            if held["access"] != stale_access:
                return True  # another request refreshed meanwhile
            if not held["refresh"]:
                return False
            answer = self.token_request(client, {"grant_type": "refresh_token",
                                                 "refresh_token": held["refresh"]})
            tokens = answer.json() or {}
            if answer.status != 200 or not tokens.get("access_token"):
                return False
            with self.store.lock:
                if not self.store.one("SELECT 1 FROM credentials WHERE connection=?", connection):
                    return False  # disconnected meanwhile
                self.store.run("UPDATE credentials SET access=?, refresh=? WHERE connection=?",
                               tokens["access_token"],
                               tokens.get("refresh_token") or held["refresh"], connection)
            return True

    def respond(self, org, chat, text):
        """The agent's messages for a user's message."""
        store = self.store
        name = connector_for(text)
        if not name:
            return [self.say(org, chat, "agent", "text",
                             "I read your files, your calendar and your notes.")]
        c = self.config.connectors[name]
        latest = store.latest(org, name)
        if latest and latest["status"] == "connected":
            outcome = self.tool_call(org, latest)
            if outcome[0] == "answer":
                return [self.say(org, chat, "agent", "answer", outcome[1], name, latest["id"])]
            if outcome[0] == "error":
                return [self.say(org, chat, "agent", "tool-error",
                                 "%s could not answer: %s." % (c.display, outcome[1]), name)]
            if outcome[0] == "scope":
                for scope in outcome[1]:
                    store.run("INSERT OR IGNORE INTO wanted VALUES (?,?,?)", org, name, scope)
                held = store.take_credentials(latest["id"])
                store.set_status(latest["id"], "revoked", "More access is needed.")
                # The grant this reconnect replaces is of no use any more: revoked.
                self.revoke_credentials(org, name, held)
                what = "needs more access (%s)" % ", ".join(outcome[1])
            else:
                store.take_credentials(latest["id"])
                store.set_status(latest["id"], "revoked", "The provider refused it.")
                what = outcome[1]
            return [self.say(org, chat, "agent", "tool-error",
                             "The %s connection %s." % (c.display, what), name),
                    self.card(org, chat, name, text, "reconnect-card")]
        if latest and latest["status"] == "revoked":
            return [self.say(org, chat, "agent", "tool-error",
                             "The %s connection was removed." % c.display, name),
                    self.card(org, chat, name, text, "reconnect-card")]
        return [self.card(org, chat, name, text, "connect-card")]

    def card(self, org, chat, name, text, kind):
        connection = self.store.waiting_connection(org, name)
        queued = token("q-", 10)
        self.store.run("INSERT INTO queued VALUES (?,?,?,?,?,?,?)", queued, org, chat, text, name,
                       connection["id"], "waiting")
        return self.say(org, chat, "agent", kind, "Connect %s to go on: your message waits."
                        % self.config.connectors[name].display, name, connection["id"], queued)

    def say(self, org, chat, role, kind, text, connector=None, connection=None, queued=None):
        cursor = self.store.run("INSERT INTO messages (org, chat, role, kind, text, connector, "
                                "connection, queued) VALUES (?,?,?,?,?,?,?,?)", org, chat, role,
                                kind, text, connector, connection, queued)
        return self.message(self.store.one("SELECT * FROM messages WHERE id=?",
                                           cursor.lastrowid))

    def message(self, row):
        out = {"id": row["id"], "role": row["role"], "kind": row["kind"], "text": row["text"]}
        if row["queued"]:
            queued = self.store.one("SELECT * FROM queued WHERE id=?", row["queued"])
            out.update(queuedId=row["queued"], connectionId=row["connection"],
                       waiting=queued["state"] == "waiting",
                       connectUrl=CONNECT_PATH.format(org=row["org"], connector=row["connector"])
                       + "?connection=" + urllib.parse.quote(row["connection"]),
                       connector=self.config.connectors[row["connector"]].display)
        return out

    def resend(self, org, chat, queued_id):
        store = self.store
        with store.lock:
            queued = store.one("SELECT * FROM queued WHERE id=? AND org=? AND chat=?", queued_id,
                               org, chat)
            if not queued:
                return 404, {"error": "not found"}
            if queued["state"] != "waiting":
                return 200, {"messages": []}
            connection = store.one("SELECT status FROM connections WHERE id=?",
                                   queued["connection"])
            if not connection or connection["status"] != "connected":
                return 409, {"error": "not connected"}
            store.run("UPDATE queued SET state='resent' WHERE id=?", queued_id)
            again = self.say(org, chat, "user", "resent", queued["text"])
        return 200, {"messages": [again] + self.respond(org, chat, queued["text"])}


def outcome_of(answer, body=None):
    """An answer as a tool call's outcome (see Platform.call)."""
    if answer.status in (200, 202):
        return ("ok", answer.json() if body is None else body)
    if answer.status == 401:
        return ("unauthorized",)
    params = challenge_params(answer.header("www-authenticate"))
    if answer.status == 403 and params.get("error") == "insufficient_scope":
        return ("scope", params.get("scope", "").split())
    return ("down", "the provider answered %s" % answer.status)


def rpc_answer(answer, id):
    """The JSON-RPC message with `id` in a Streamable HTTP answer: JSON, or server-sent
    events whose data carries it."""
    if not answer.header("content-type").startswith("text/event-stream"):
        return answer.json()
    for event in answer.body.decode("utf-8", "replace").replace("\r\n", "\n").split("\n\n"):
        data = "\n".join(line[5:].lstrip(" ") for line in event.split("\n")
                         if line.startswith("data:"))
        try:
            message = json.loads(data) if data else None
        except ValueError:
            continue
        if isinstance(message, dict) and message.get("id") == id:
            return message
    return None


def mcp_tool_call(url, headers):
    """A session with an MCP server (initialize, the initialized notification, tools/list),
    then a call of the first tool it lists, with a value for each required argument."""
    headers = dict(headers, Accept="application/json, text/event-stream")
    steps = [("initialize", {"protocolVersion": "2025-11-25", "capabilities": {},
                             "clientInfo": {"name": "python-platform", "version": "1"}})]
    answer = request("POST", url, headers=headers,
                     body={"jsonrpc": "2.0", "id": 1, "method": steps[0][0],
                           "params": steps[0][1]})
    if answer.status != 200:
        return outcome_of(answer)
    initialized = rpc_answer(answer, 1) or {}
    headers["MCP-Protocol-Version"] = (initialized.get("result") or {}).get(
        "protocolVersion", "2025-11-25")
    if answer.header("mcp-session-id"):
        headers["Mcp-Session-Id"] = answer.header("mcp-session-id")
    answer = request("POST", url, headers=headers,
                     body={"jsonrpc": "2.0", "method": "notifications/initialized"})
    if answer.status not in (200, 202):
        return outcome_of(answer)
    answer = request("POST", url, headers=headers,
                     body={"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
    if answer.status != 200:
        return outcome_of(answer)
    tools = ((rpc_answer(answer, 2) or {}).get("result") or {}).get("tools") or []
    if not tools:
        return ("down", "the MCP server lists no tool")
    tool = tools[0]
    schema = tool.get("inputSchema") or {}
    arguments = {}
    for name in schema.get("required") or []:
        kind = ((schema.get("properties") or {}).get(name) or {}).get("type")
        arguments[name] = {"number": 1, "integer": 1, "boolean": True, "array": [],
                           "object": {}}.get(kind, "notes")
    answer = request("POST", url, headers=headers,
                     body={"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                           "params": {"name": tool.get("name"), "arguments": arguments}})
    if answer.status != 200:
        return outcome_of(answer)
    return ("ok", rpc_answer(answer, 3))


def connector_for(text):
    text = text.lower()
    if "file" in text:
        return "files"
    if "calendar" in text or "meeting" in text:
        return "calendar"
    if "note" in text:
        return "notes"
    return None


def answer_text(c, body):
    """What the agent says of an API answer, or None for an answer of a shape it does not read."""
    if not isinstance(body, dict):
        return None
    if c.mcp:
        content = (body.get("result") or {}).get("content")
        texts = [part.get("text") for part in content or [] if isinstance(part, dict)
                 and part.get("type") == "text" and isinstance(part.get("text"), str)]
        return ("Here are your notes: %s." % " ".join(texts)) if texts else None
    items = body.get("items")
    if not isinstance(items, list):
        return None
    fields = ("name",) if c.name == "files" else ("title", "starts")
    if not all(isinstance(i, dict) and all(isinstance(i.get(f), str) for f in fields)
               for i in items):
        return None
    shown = [" at ".join(i[f] for f in fields) for i in items]
    return "Here is your %s: %s." % (c.display.lower(), "; ".join(shown))


def callback_url(result, connection, message):
    query = {"oauth_result": result}
    if connection:
        query["connection_id"] = connection
    query["oauth_message"] = message
    return CALLBACK_PATH + "?" + urllib.parse.urlencode(query)


# ---- pages ------------------------------------------------------------------------------------


def page(title, body_attributes, content, script=None):
    scripts = '<script src="/static/%s"></script>' % script if script else ""
    return ('<!doctype html><html lang="en"><head><meta charset="utf-8"><title>%s</title>'
            '<link rel="stylesheet" href="/static/platform.css"></head><body %s>%s%s</body>'
            '</html>') % (html.escape(title), body_attributes, content, scripts)


def chat_page(org, chat):
    return page("Chat", 'data-org="%s" data-chat="%s"' % (html.escape(org), html.escape(chat)),
                '<main><h1>Chat</h1><ol data-testid="chat-messages"></ol>'
                '<form data-testid="chat-form"><input data-testid="chat-input" autocomplete="off"'
                ' aria-label="Message"><button type="submit" data-testid="chat-send">Send'
                '</button></form></main>', "chat.js")


def connectors_page(platform, org):
    rows = []
    for name, c in platform.config.connectors.items():
        latest = platform.store.latest(org, name)
        status = latest["status"] if latest else "not connected"
        rows.append(
            '<li><span>%s</span> <span data-testid="connector-status-%s">%s</span> '
            '<button type="button" data-testid="connect-%s" data-url="%s">Connect</button> '
            '<button type="button" data-testid="disconnect-%s" data-connector="%s">Disconnect'
            '</button></li>' % (c.display, name, status, name,
                                html.escape(CONNECT_PATH.format(org=org, connector=name)), name,
                                name))
    return page("Connectors", 'data-org="%s"' % html.escape(org),
                "<main><h1>Connectors</h1><ul>%s</ul></main>" % "".join(rows), "connectors.js")


def callback_page(query):
    message = query.get("oauth_message", "")
    return page("Sign-in finished", "",
                '<main><p data-testid="callback-message">%s</p>'
                '<p data-testid="callback-close-hint" hidden>You can close this tab.</p></main>'
                % html.escape(message), "callback.js")


STATIC_TYPES = {".js": "text/javascript", ".css": "text/css"}


# ---- HTTP -------------------------------------------------------------------------------------


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    platform = None  # set in main

    def log_message(self, format, *args):
        if os.environ.get("PLATFORM_LOG"):
            sys.stderr.write("%.3f %s\n" % (time.time(), format % args))

    # Plumbing

    def send(self, status, body, content_type="text/html; charset=utf-8", headers=()):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        if content_type.startswith("text/html"):
            policy = self.platform.config.opener_policy
            if policy == "site-wide":
                self.send_header("Cross-Origin-Opener-Policy", "same-origin")
            elif policy == "callback-noopener-allow-popups" and \
                    self.path.startswith(CALLBACK_PATH):
                self.send_header("Cross-Origin-Opener-Policy", "noopener-allow-popups")
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def json(self, status, value):
        self.send(status, json.dumps(value), "application/json")

    def found(self, location, headers=()):
        self.send(302, "", "text/plain", [("Location", location)] + list(headers))

    def not_found(self):
        self.json(404, {"error": "not found"})

    def session(self):
        cookies = self.headers.get("Cookie", "")
        for part in cookies.split(";"):
            name, _, value = part.strip().partition("=")
            if name == COOKIE:
                row = self.platform.store.one("SELECT * FROM sessions WHERE id=?", value)
                if row:
                    return value, row["user"]
        return None, None

    def member(self, org):
        session, user = self.session()
        if not user:
            return None
        if not self.platform.store.one("SELECT 1 FROM members WHERE user=? AND org=?", user, org):
            return None
        return session

    def body_json(self):
        try:
            return json.loads(self.body or b"{}")
        except ValueError:
            return {}

    # Routes

    def do_GET(self):
        self.route("GET")

    def do_POST(self):
        self.route("POST")

    def route(self, method):
        # Every body is read, used or not: the connection is kept alive for the next request.
        self.body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            url = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
            parts = [urllib.parse.unquote(p) for p in url.path.split("/")[1:]]
            self.dispatch(method, url.path, parts, query)
        except Exception as error:  # a bug here must show, not hang the browser
            sys.stderr.write("error on %s %s: %r\n" % (method, self.path, error))
            self.json(500, {"error": "internal"})

    def dispatch(self, method, path, parts, query):
        platform = self.platform
        store = platform.store
        if method == "GET" and path == "/":
            return self.send(200, page("Python platform", "", "<main>Alumia, in Python.</main>"))
        if method == "GET" and path == "/dev/login":
            user, org, next_ = query.get("user", ""), query.get("org", ""), query.get("next", "/")
            if not NAME.match(user) or not NAME.match(org) or not next_.startswith("/") \
                    or next_.startswith("//"):
                return self.send(400, page("Sign-in", "", "<p>Bad user, org or next.</p>"))
            session = token("s-", 24)
            store.run("INSERT INTO sessions VALUES (?,?)", session, user)
            store.run("INSERT OR IGNORE INTO members VALUES (?,?)", user, org)
            attributes = "Path=/; HttpOnly; SameSite=Lax"
            if platform.config.embeddable:
                attributes = "Path=/; HttpOnly; SameSite=None; Secure; Partitioned"
            return self.found(next_, [("Set-Cookie", "%s=%s; %s" % (COOKIE, session, attributes))])
        if method == "POST" and path == "/dev/clock":
            advance = self.body_json().get("advance_ms")
            if not isinstance(advance, int) or isinstance(advance, bool) or advance < 0:
                return self.json(400, {"error": "send {\"advance_ms\": N}"})
            CLOCK_AHEAD_MS[0] += advance
            return self.json(200, {"now_ms": now_ms()})
        if method == "GET" and parts[0] == "static" and len(parts) == 2:
            name = parts[1]
            extension = os.path.splitext(name)[1]
            file = os.path.join(HERE, "static", name)
            if extension not in STATIC_TYPES or "/" in name or not os.path.isfile(file):
                return self.not_found()
            with open(file, "rb") as handle:
                return self.send(200, handle.read(), STATIC_TYPES[extension])
        if method == "GET" and path == DOCUMENT_PATH:
            config = platform.config
            return self.json(200, {"client_id": config.document_url,
                                   "client_name": "Python platform",
                                   "redirect_uris": [config.redirect_uri],
                                   "grant_types": ["authorization_code", "refresh_token"],
                                   "response_types": ["code"],
                                   "token_endpoint_auth_method": "none"})
        if method == "GET" and path == CALLBACK_PATH:
            return self.send(200, callback_page(query))
        if method == "GET" and path == REDIRECT_PATH:
            session, _ = self.session()
            return self.found(platform.redirect(session, query))
        if len(parts) == 3 and parts[0] == "c" and method == "GET":
            org, connector = parts[1], parts[2]
            session = self.member(org)
            if not session or connector not in platform.config.connectors:
                return self.send(404, page("Not found", "", "<p>Not found.</p>"))
            return self.found(platform.start(session, org, connector, query.get("connection")))
        if len(parts) == 3 and parts[1] == "chat" and method == "GET":
            if not self.member(parts[0]):
                return self.send(404, page("Not found", "", "<p>Not found.</p>"))
            headers = []
            if platform.config.embeddable:
                headers.append(("Content-Security-Policy", "frame-ancestors http: https:"))
            return self.send(200, chat_page(parts[0], parts[2]), headers=headers)
        if len(parts) == 2 and parts[1] == "connectors" and method == "GET":
            if not self.member(parts[0]):
                return self.send(404, page("Not found", "", "<p>Not found.</p>"))
            return self.send(200, connectors_page(platform, parts[0]))
        if len(parts) >= 3 and parts[0] == "api" and parts[1] == "orgs":
            return self.api(method, parts[2], parts[3:])
        return self.not_found()

    def api(self, method, org, rest):
        platform = self.platform
        store = platform.store
        if not self.member(org):
            return self.not_found()
        if method == "GET" and rest == ["connectors"]:
            listed = []
            for name in platform.config.connectors:
                latest = store.latest(org, name)
                listed.append({"name": name, "status": latest["status"] if latest else "none",
                               "connectionId": latest["id"] if latest else ""})
            return self.json(200, {"connectors": listed})
        if method == "GET" and len(rest) == 2 and rest[0] == "connections":
            connection = store.connection(org, rest[1])
            if not connection:
                return self.not_found()
            answer = {"status": connection["status"]}
            if connection["message"]:
                answer["message"] = connection["message"]
            return self.json(200, answer)
        if method == "POST" and len(rest) == 3 and rest[0] == "connectors" and \
                rest[2] == "disconnect" and rest[1] in platform.config.connectors:
            return self.json(200, {"status": platform.disconnect(org, rest[1])})
        if len(rest) >= 3 and rest[0] == "chats":
            chat = rest[1]
            if method == "GET" and rest[2:] == ["messages"]:
                rows = store.all("SELECT * FROM messages WHERE org=? AND chat=? ORDER BY id", org,
                                 chat)
                return self.json(200, {"messages": [platform.message(r) for r in rows]})
            if method == "POST" and rest[2:] == ["messages"]:
                text = str(self.body_json().get("text", "")).strip()[:2000]
                if not text:
                    return self.json(400, {"error": "empty message"})
                said = platform.say(org, chat, "user", "text", text)
                return self.json(200, {"messages": [said] + platform.respond(org, chat, text)})
            if method == "POST" and len(rest) == 5 and rest[2] == "queued" and rest[4] == "resend":
                status, answer = platform.resend(org, chat, rest[3])
                return self.json(status, answer)
        return self.not_found()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bind", default="127.0.0.1:0")
    parser.add_argument("--provider-url", required=True)
    parser.add_argument("--opener-policy", default="unset",
                        choices=["unset", "site-wide", "callback-noopener-allow-popups"])
    parser.add_argument("--embeddable", action="store_true")
    parser.add_argument("--files-client-id", default="alumia-files")
    parser.add_argument("--files-client-secret", default="files-client-secret-0001")
    parser.add_argument("--calendar-client-id", default="alumia-calendar")
    parser.add_argument("--calendar-client-secret", default="calendar-client-secret-0002")
    parser.add_argument("--database", help="SQLite file (default: a new temporary file)")
    args = parser.parse_args()
    config = Config(args)
    database = args.database or os.path.join(tempfile.mkdtemp(prefix="python-platform-"),
                                             "platform.db")
    Handler.platform = Platform(config, Store(database))
    host, _, port = args.bind.rpartition(":")
    server = http.server.ThreadingHTTPServer((host, int(port)), Handler)
    server.daemon_threads = True
    config.public_url = "http://%s:%d" % (host, server.server_address[1])
    print(json.dumps({"listening": config.public_url + "/",
                      "redirect_uri": config.redirect_uri}), flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
