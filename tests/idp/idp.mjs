// Loopback OpenID Provider for the auth-tests Rust fixtures (panva oidc-provider 9.x).
//
// Run: `node idp.mjs` (after `npm ci`). It prints exactly one line to stdout once
// it is listening:
//
//     READY http://127.0.0.1:<port>
//
// The issuer is that URL (no trailing slash). All other output goes to stderr.
//
// Registered clients (mirrored as constants in tests/src/idp.rs):
//
//   client_id    secret                               token_endpoint_auth_method
//   -----------  -----------------------------------  --------------------------
//   conf-basic   conf-basic-secret-0123456789abcdef   client_secret_basic
//   conf-post    conf-post-secret-0123456789abcdef    client_secret_post
//   conf-jwt     (keys/conf-jwt.private.pem RSA,      private_key_jwt
//                 keys/conf-jwt-es256.private.pem EC P-256; kids conf-jwt-rsa / conf-jwt-es256)
//   public       (none)                               none
//
// Every client: grant_types authorization_code + refresh_token, response_types code,
// PKCE (S256) required.
//
// Environment:
//   PORT                            listen port on 127.0.0.1 (default 0 = random)
//   IDP_REDIRECT_URIS               extra redirect_uris, comma-separated
//   IDP_POST_LOGOUT_REDIRECT_URIS   extra post_logout_redirect_uris, comma-separated
//   IDP_BACKCHANNEL_LOGOUT_URI      backchannel_logout_uri for conf-basic
//   IDP_ACCESS_TOKEN_TTL            access token lifetime in seconds (default 3600)
//   IDP_EXIT_WITH_STDIN=1           exit when stdin reaches EOF (parent process died)
//   IDP_DEBUG=1                     log every request and provider error event to stderr
//
// Test-only routes (handled before the provider's own router):
//   GET  /__test/requests  recorded authorization / PAR / token / revocation / end_session requests
//   POST /__test/reset     clear the records
//   POST /__test/sign      {"header": {...}, "claims": {...}} → a JWS signed RS256 with the provider's key

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

import Provider, { errors } from 'oidc-provider';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const DEBUG = process.env.IDP_DEBUG === '1';

const API_AUDIENCE = 'https://api.example.test/';
const API_SCOPES = 'read:data write:data';
const RAR_TYPES = ['payment_initiation', 'account_information'];

function log(...args) {
  console.error('[idp]', ...args);
}

function listFromEnv(name) {
  return (process.env[name] || '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

function uniq(list) {
  return [...new Set(list)];
}

function intFromEnv(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number.parseInt(raw, 10);
  if (!Number.isInteger(n) || n < 0) {
    throw new Error(`${name} must be a non-negative integer, got ${JSON.stringify(raw)}`);
  }
  return n;
}

// ---------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------

function randomKid(prefix) {
  return `${prefix}-${crypto.randomBytes(6).toString('hex')}`;
}

// Fresh provider signing keys on every start. The RSA key comes first so that it
// is the default for RS256 (the ID token signing algorithm).
let SIGNING_KEYS = null;
function providerSigningKeys() {
  const rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const ec = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  SIGNING_KEYS = [
    { ...rsa.privateKey.export({ format: 'jwk' }), kid: randomKid('rs'), use: 'sig' },
    { ...ec.privateKey.export({ format: 'jwk' }), kid: randomKid('es256'), use: 'sig', alg: 'ES256' },
  ];
  return SIGNING_KEYS;
}

// Test-only: signs arbitrary claims RS256 with the provider's own key, so tests can craft
// logout tokens that differ from valid ones in exactly one rule.
function signWithProviderKey(header, claims) {
  const jwk = SIGNING_KEYS[0];
  const key = crypto.createPrivateKey({ key: jwk, format: 'jwk' });
  const h = { alg: 'RS256', kid: jwk.kid, ...header };
  const enc = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const input = `${enc(h)}.${enc(claims)}`;
  const sig = crypto.sign('sha256', Buffer.from(input), key).toString('base64url');
  return `${input}.${sig}`;
}

async function readJsonBody(ctx) {
  const chunks = [];
  for await (const c of ctx.req) chunks.push(c);
  return JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
}

// Public JWKs of the committed conf-jwt test keys. The RSA key carries no `alg`
// so that both RS256 and PS256 assertions verify with it.
function confJwtPublicKeys() {
  const read = (file) => fs.readFileSync(path.join(HERE, 'keys', file), 'utf8');
  const rsa = crypto.createPublicKey(read('conf-jwt.private.pem'));
  const ec = crypto.createPublicKey(read('conf-jwt-es256.private.pem'));
  return [
    { ...rsa.export({ format: 'jwk' }), kid: 'conf-jwt-rsa', use: 'sig' },
    { ...ec.export({ format: 'jwk' }), kid: 'conf-jwt-es256', use: 'sig', alg: 'ES256' },
  ];
}

// ---------------------------------------------------------------------------
// Clients
// ---------------------------------------------------------------------------

function clients() {
  const redirectUris = uniq([
    'http://127.0.0.1:3000/auth/callback',
    'http://localhost:3000/auth/callback',
    'http://127.0.0.1:1/callback',
    ...listFromEnv('IDP_REDIRECT_URIS'),
  ]);
  const postLogoutRedirectUris = uniq([
    'http://127.0.0.1:3000/',
    'http://localhost:3000/',
    ...listFromEnv('IDP_POST_LOGOUT_REDIRECT_URIS'),
  ]);
  const common = {
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    redirect_uris: redirectUris,
    post_logout_redirect_uris: postLogoutRedirectUris,
    authorization_details_types: RAR_TYPES,
  };

  const backchannel = process.env.IDP_BACKCHANNEL_LOGOUT_URI
    ? {
      backchannel_logout_uri: process.env.IDP_BACKCHANNEL_LOGOUT_URI,
      backchannel_logout_session_required: true,
    }
    : {};

  return [
    {
      ...common,
      ...backchannel,
      client_id: 'conf-basic',
      client_secret: 'conf-basic-secret-0123456789abcdef',
      token_endpoint_auth_method: 'client_secret_basic',
    },
    {
      ...common,
      client_id: 'conf-post',
      client_secret: 'conf-post-secret-0123456789abcdef',
      token_endpoint_auth_method: 'client_secret_post',
    },
    {
      ...common,
      client_id: 'conf-jwt',
      token_endpoint_auth_method: 'private_key_jwt',
      jwks: { keys: confJwtPublicKeys() },
    },
    {
      ...common,
      client_id: 'public',
      token_endpoint_auth_method: 'none',
    },
  ];
}

// ---------------------------------------------------------------------------
// Request recording (test observability)
// ---------------------------------------------------------------------------

const records = {
  authorize: [],
  par: [],
  token: [],
  revocation: [],
  end_session: [],
};

function resetRecords() {
  for (const list of Object.values(records)) list.length = 0;
}

// Flattens a parsed query/form object into name -> string. Repeated parameters
// keep their first value.
function flatParams(obj) {
  const out = {};
  if (!obj || typeof obj !== 'object') return out;
  for (const [k, v] of Object.entries(obj)) {
    if (v === undefined || v === null) continue;
    out[k] = Array.isArray(v) ? String(v[0]) : String(v);
  }
  return out;
}

function requestParams(ctx) {
  // The provider parses urlencoded bodies itself into ctx.oidc.body; we only read
  // them after it is done, so its parsing is never disturbed.
  if (ctx.method === 'POST') return flatParams(ctx.oidc?.body);
  return flatParams(ctx.query);
}

function clientAuthRecord(ctx) {
  const header = ctx.get('authorization');
  const error = typeof ctx.body?.error === 'string' ? ctx.body.error : null;
  // ctx.oidc.client is also set when the client was found but failed to authenticate.
  const authenticated = error !== 'invalid_client' && ctx.status !== 401;
  return {
    params: requestParams(ctx),
    auth_header: header ? header.split(' ')[0] : null,
    auth_header_value: header || null,
    client_id: authenticated ? (ctx.oidc?.client?.clientId ?? null) : null,
    status: ctx.status,
    error,
  };
}

async function testRoutes(ctx, next) {
  if (ctx.path === '/__test/requests' && ctx.method === 'GET') {
    ctx.set('cache-control', 'no-store');
    ctx.type = 'json';
    ctx.body = JSON.stringify(records);
    return;
  }
  if (ctx.path === '/__test/sign' && ctx.method === 'POST') {
    const body = await readJsonBody(ctx);
    ctx.type = 'text';
    ctx.body = signWithProviderKey(body.header || {}, body.claims || {});
    return;
  }
  if (ctx.path === '/__test/reset' && ctx.method === 'POST') {
    resetRecords();
    ctx.status = 204;
    return;
  }

  try {
    await next();
  } finally {
    switch (ctx.oidc?.route) {
      case 'authorization':
        records.authorize.push(requestParams(ctx));
        break;
      case 'pushed_authorization_request':
        records.par.push(requestParams(ctx));
        break;
      case 'token':
        records.token.push(clientAuthRecord(ctx));
        break;
      case 'revocation':
        records.revocation.push(clientAuthRecord(ctx));
        break;
      case 'end_session':
        records.end_session.push(requestParams(ctx));
        break;
      default:
        break;
    }
    if (DEBUG) log(ctx.method, ctx.url, '->', ctx.status, ctx.oidc?.route ?? '');
  }
}

// ---------------------------------------------------------------------------
// Auth0-style behaviour
// ---------------------------------------------------------------------------

function decodeJwtPayload(jwt) {
  try {
    const parts = String(jwt).split('.');
    if (parts.length !== 3) return undefined;
    return JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
}

// The scope the client originally asked for, before oidc-provider's checkScope
// removed `offline_access` (it keeps it only together with prompt=consent).
function originallyRequestedScope(ctx) {
  const par = ctx.oidc.entities.PushedAuthorizationRequest;
  if (par?.request) {
    return decodeJwtPayload(par.request)?.scope;
  }
  if (ctx.oidc.params.request) {
    return decodeJwtPayload(ctx.oidc.params.request)?.scope;
  }
  const raw = ctx.method === 'POST' ? ctx.oidc.body?.scope : ctx.query.scope;
  return Array.isArray(raw) ? raw[0] : raw;
}

// Runs (as the `audience` extraParams validator) on the authorization and PAR
// endpoints after the provider's own scope/resource checks and before the
// interaction/grant logic. Auth0 issues a refresh token whenever offline_access
// is requested; oidc-provider would drop that scope unless prompt=consent is
// present, so it is put back here.
async function restoreOfflineAccess(ctx, client) {
  const { params } = ctx.oidc;
  const original = originallyRequestedScope(ctx);
  if (typeof original !== 'string') return;
  if (!original.split(' ').includes('offline_access')) return;
  if (!String(params.response_type || '').split(' ').includes('code')) return;
  if (!client.grantTypeAllowed('refresh_token')) return;

  const current = params.scope ? params.scope.split(' ') : [];
  if (!current.includes('offline_access')) {
    params.scope = [...current, 'offline_access'].join(' ');
  }
}

async function audienceParam(ctx, value, client) {
  if (value !== undefined && typeof value !== 'string') {
    throw new errors.InvalidRequest('audience must be a single string');
  }
  await restoreOfflineAccess(ctx, client);
}

// ---------------------------------------------------------------------------
// Provider
// ---------------------------------------------------------------------------

function configuration() {
  const accessTokenTtl = intFromEnv('IDP_ACCESS_TOKEN_TTL', 3600);

  return {
    clients: clients(),
    jwks: { keys: providerSigningKeys() },
    // The provider refuses outgoing requests to special-use addresses (SSRF protection). Our
    // relying parties live on loopback, so back-channel logout calls must be allowed there:
    // drop the protective dispatcher for this test-only provider.
    fetch(url, options) {
      const { dispatcher, ...rest } = options;
      return globalThis.fetch(url, rest);
    },
    cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },

    // Auth0 puts the profile/email claims into the ID token.
    conformIdTokenClaims: false,
    claims: {
      acr: null,
      auth_time: null,
      iss: null,
      sid: null,
      openid: ['sub'],
      profile: ['name', 'nickname'],
      email: ['email', 'email_verified'],
    },
    async findAccount(_ctx, id) {
      return {
        accountId: id,
        async claims() {
          return {
            sub: id,
            name: `Test User ${id}`,
            nickname: id,
            email: `${id}@example.test`,
            email_verified: true,
          };
        },
      };
    },

    extraParams: { audience: audienceParam },

    responseTypes: ['code'],
    pkce: { required: () => true },
    rotateRefreshToken: true,

    ttl: {
      AccessToken: accessTokenTtl,
      IdToken: 3600,
    },

    features: {
      devInteractions: { enabled: true },
      pushedAuthorizationRequests: { enabled: true, requirePushedAuthorizationRequests: false },
      rpInitiatedLogout: { enabled: true },
      backchannelLogout: { enabled: true },
      revocation: { enabled: true },
      richAuthorizationRequests: {
        enabled: true,
        types: Object.fromEntries(RAR_TYPES.map((type) => [type, {
          // Any object of a known type is accepted.
          async validate() {},
        }])),
        async authorizationDetailsForGrantSource(ctx) {
          const raw = ctx.oidc.params.authorization_details;
          return raw === undefined ? undefined : JSON.parse(raw);
        },
        async authorizationDetailsForAccessToken(_ctx, _token, source) {
          return source?.rar;
        },
        async authorizationDetailsForIntrospection(_ctx, token) {
          return token.rar;
        },
      },
      resourceIndicators: {
        enabled: true,
        // `audience` (Auth0) stands in for `resource` when the latter is absent.
        // Rich authorization requests need a resource, so they default to the API.
        async defaultResource(ctx, _client, oneOf) {
          if (oneOf) return oneOf.length === 1 ? oneOf[0] : oneOf;
          const { params } = ctx.oidc;
          if (typeof params.audience === 'string' && params.audience) return params.audience;
          if (params.authorization_details !== undefined) return API_AUDIENCE;
          return undefined;
        },
        // A refresh or code exchange without `resource` gets a token for the
        // resource granted at the authorization endpoint (as Auth0 does with audience).
        async useGrantedResource() {
          return true;
        },
        async getResourceServerInfo(_ctx, resourceIndicator) {
          if (resourceIndicator === API_AUDIENCE) {
            return {
              scope: API_SCOPES,
              audience: API_AUDIENCE,
              accessTokenTTL: accessTokenTtl,
              accessTokenFormat: 'jwt',
              jwt: { sign: { alg: 'RS256' } },
            };
          }
          throw new errors.InvalidTarget(`unknown resource/audience ${resourceIndicator}`);
        },
      },
    },
  };
}

function installSidForEveryClient(provider) {
  // oidc-provider only puts `sid` into ID tokens for clients registered with
  // backchannel_logout_session_required (or when requested through the claims
  // parameter). The tests want it for every client.
  provider.Client.prototype.includeSid = function includeSid() {
    return true;
  };
}

async function main() {
  const port = intFromEnv('PORT', 0);

  let handler = (_req, res) => {
    res.statusCode = 503;
    res.end('starting');
  };
  const server = http.createServer((req, res) => handler(req, res));
  // Test clients keep pooled connections across pauses (e.g. waiting for a token
  // to expire); Node's default 5 s keep-alive would race with their reuse.
  server.keepAliveTimeout = 120_000;
  server.headersTimeout = 125_000;

  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  const issuer = `http://127.0.0.1:${server.address().port}`;

  const provider = new Provider(issuer, configuration());
  installSidForEveryClient(provider);
  provider.use(testRoutes);

  provider.on('server_error', (_ctx, err) => log('server_error', err));
  if (DEBUG) {
    for (const event of ['authorization.error', 'grant.error', 'end_session.error',
      'pushed_authorization_request.error', 'backchannel.error', 'revocation.error']) {
      provider.on(event, (_ctx, err) => log(event, err?.message, err?.error_description ?? '', err?.cause?.message ?? err?.cause?.code ?? ''));
    }
  } else {
    provider.on('backchannel.error', (_ctx, err, client, uri) => log('backchannel.error', client?.clientId, uri, err?.message));
  }

  handler = provider.callback();

  const shutdown = () => {
    server.close();
    process.exit(0);
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
  if (process.env.IDP_EXIT_WITH_STDIN === '1') {
    process.stdin.on('end', shutdown);
    process.stdin.on('error', shutdown);
    process.stdin.resume();
  }

  process.stdout.write(`READY ${issuer}\n`);
}

main().catch((err) => {
  log('failed to start:', err);
  process.exit(1);
});
