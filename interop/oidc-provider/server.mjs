// panva/oidc-provider for the harness's interop test (harness/tests/interop.rs).
//
// What it adds to the provider, all on one loopback port:
// - POST /_interop/clients (client_id, client_secret, redirect_uri): registers a confidential
//   client at run time (the platform's redirect URI is known only once it listens);
// - GET /_interop/issued: every access and refresh token issued (model, id, grantId), so the test can
//   ask the provider's own introspection about each after a disconnect;
// - GET /api/files, /api/calendar: a protected resource that accepts the provider's access
//   tokens for the matching scope (401 with WWW-Authenticate otherwise; 403 insufficient_scope).
// Everything else is oidc-provider as configured below, with its development interactions
// (login, then consent) for pages. Prints `public URL: http://localhost:PORT` once it listens.
//
// Environment (what profile.toml's [behaviour] declares; keep the two in step):
// ACCESS_TOKEN_TTL (seconds, default 3600), TOKEN_DELAY_MS (the token endpoint answers that
// much later, default 0: two refreshes then overlap, as on a loaded provider).
import http from 'node:http';
import Provider from 'oidc-provider';

function wholeNumber(name, fallback, least) {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(value) || value < least) {
    console.error(`${name}=${process.env[name]} is not a whole number of at least ${least} (hint: ${name}=${fallback})`);
    process.exit(2);
  }
  return value;
}
const accessTokenTtl = wholeNumber('ACCESS_TOKEN_TTL', 3600, 1);
const tokenDelayMs = wholeNumber('TOKEN_DELAY_MS', 0, 0);

// The provider's storage: a Map per model, and the ids of the tokens issued.
const stores = new Map();
const issued = [];
class Store {
  constructor(model) {
    this.model = model;
    if (!stores.has(model)) stores.set(model, new Map());
    this.items = stores.get(model);
  }
  async upsert(id, payload) {
    if ((this.model === 'AccessToken' || this.model === 'RefreshToken') && !this.items.has(id)) {
      issued.push({ model: this.model, id, grantId: payload.grantId });
    }
    this.items.set(id, { ...payload });
  }
  async find(id) { return this.items.get(id); }
  async findByUserCode(code) { return [...this.items.values()].find((p) => p.userCode === code); }
  async findByUid(uid) { return [...this.items.values()].find((p) => p.uid === uid); }
  async consume(id) { const p = this.items.get(id); if (p) p.consumed = Math.floor(Date.now() / 1000); }
  async destroy(id) { this.items.delete(id); }
  async revokeByGrantId(grantId) {
    for (const store of stores.values()) {
      for (const [id, payload] of store) if (payload.grantId === grantId) store.delete(id);
    }
  }
}

const server = http.createServer();
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  // `localhost`, not 127.0.0.1: the provider is another site than the platform.
  const issuer = `http://localhost:${port}`;
  const provider = new Provider(issuer, {
    adapter: Store,
    clients: [],
    scopes: ['openid', 'offline_access', 'files.read', 'calendar.read'],
    claims: { openid: ['sub'] },
    features: {
      devInteractions: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
    },
    pkce: { required: () => true },
    // Every refresh answers a new refresh token; presenting a used one revokes the grant.
    rotateRefreshToken: true,
    ttl: {
      AccessToken: accessTokenTtl,
      AuthorizationCode: 60,
      Grant: 86400,
      Interaction: 3600,
      RefreshToken: 86400,
      Session: 86400,
    },
    cookies: { keys: ['alumia-interop-cookie-key'] },
    findAccount: async (_ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
  });
  const providerCallback = provider.callback();

  server.on('request', async (req, res) => {
    const url = new URL(req.url, issuer);
    try {
      if (req.method === 'POST' && url.pathname === '/_interop/clients') {
        const form = new URLSearchParams(await body(req));
        const id = form.get('client_id');
        await new Store('Client').upsert(id, {
          client_id: id,
          client_secret: form.get('client_secret'),
          redirect_uris: [form.get('redirect_uri')],
          grant_types: ['authorization_code', 'refresh_token'],
          response_types: ['code'],
          token_endpoint_auth_method: 'client_secret_basic',
        });
        return send(res, 201, { registered: id });
      }
      if (req.method === 'GET' && url.pathname === '/_interop/issued') {
        return send(res, 200, issued);
      }
      if (url.pathname === '/token' && tokenDelayMs > 0) {
        await new Promise((resolve) => { setTimeout(resolve, tokenDelayMs); });
      }
      const api = url.pathname.match(/^\/api\/(files|calendar)$/);
      if (api) return await protectedApi(provider, api[1], req, res);
      return providerCallback(req, res);
    } catch (error) {
      console.error(error);
      return send(res, 500, { error: 'server_error' });
    }
  });
  console.log(`public URL: ${issuer}/`);
});

async function protectedApi(provider, name, req, res) {
  const header = req.headers.authorization ?? '';
  const value = header.startsWith('Bearer ') ? header.slice(7) : '';
  const token = value && (await provider.AccessToken.find(value));
  const challenge = `Bearer realm="${name}", scope="${name}.read"`;
  if (!token || token.isExpired) {
    res.setHeader('WWW-Authenticate', `${challenge}, error="invalid_token"`);
    return send(res, 401, { error: 'invalid_token' });
  }
  if (!(token.scope ?? '').split(' ').includes(`${name}.read`)) {
    res.setHeader('WWW-Authenticate', `${challenge}, error="insufficient_scope"`);
    return send(res, 403, { error: 'insufficient_scope' });
  }
  const items = name === 'files'
    ? [{ name: 'interop-notes.md' }, { name: 'oidc-provider.txt' }]
    : [{ title: 'Interop review', starts: '2026-12-04T10:00:00Z' }];
  return send(res, 200, { client: token.clientId, items });
}

function body(req) {
  return new Promise((resolve, reject) => {
    let text = '';
    req.on('data', (chunk) => { text += chunk; });
    req.on('end', () => resolve(text));
    req.on('error', reject);
  });
}

function send(res, status, json) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(json));
}
