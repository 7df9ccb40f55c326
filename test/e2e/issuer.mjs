// issuer.mjs — a real external OAuth 2.1 / OpenID Connect authorization server
// for toolgate's end-to-end test, built on oidc-provider.
//
// It stands in for Auth0 / Keycloak / any OIDC issuer: open dynamic client
// registration, PKCE S256 required for every client, RFC 8707 resource
// indicators that turn the MCP URL into an RS256 JWT access token (RFC 9068)
// whose `aud` is that URL, or into an opaque one that a registered resource
// server looks up at the RFC 7662 introspection endpoint. A single fixed
// user is logged in and consents without any page to click, so a headless
// client can follow the redirects with plain fetch (keeping the cookies
// oidc-provider sets) and get a code.
//
// Usage:  RESOURCE=http://127.0.0.1:8080/mcp node issuer.mjs <port>
//   PORT      listen port on 127.0.0.1 (argv[2] wins over the env var)
//   RESOURCE  the only accepted resource indicator (the MCP URL)
//   KID       `kid` of the RSA signing key generated at start (default k1).
//             Key rotation = restart the process with another KID: the old
//             key is gone from the JWKS, new tokens carry the new kid.
//   SCOPES    resource scopes (default "mcp:read mcp:write")
//   STEP_UP_SCOPES  more resource scopes, granted when an authorization
//             request asks for them but never part of a client's registration
//             (default none). oidc-provider refuses a request for a static
//             scope the client did not register, and the SDK registers with
//             the scope of its first login; a scope a client steps up to later
//             must therefore not be static. (RFC 7591 does not make the
//             registered scope a limit on requests; the MCP SDKs' own
//             authorization servers dropped that check for step-up, see
//             python-sdk#2301.)
//   ACCESS_TOKEN_FORMAT  jwt (default) or opaque: the format of access tokens
//             for RESOURCE. An opaque token is a random string; oidc-provider
//             keeps its claims (aud = RESOURCE among them) and reveals them
//             only at the introspection endpoint.
//   INTROSPECTION_CLIENT_ID, INTROSPECTION_CLIENT_SECRET  when set, the
//             RFC 7662 introspection endpoint is enabled (published as
//             `introspection_endpoint`) and this statically registered
//             confidential client (client_secret_basic) is the only caller
//             allowed an answer; anyone else gets `{"active": false}`. The
//             names match toolgate's, so one environment serves both.
//   LOGIN_CLIENT_ID, LOGIN_CLIENT_SECRET, LOGIN_REDIRECT_URI (comma-separated)  when set, a
//             statically registered confidential client that signs users in
//             with OpenID Connect (code flow, ID token with the user's email):
//             toolgate's embedded authorization server playing the relying
//             party, as it does with Google or Keycloak (IDP=oidc).
//
// Prints `READY <issuer>` on stdout once listening. Binds 127.0.0.1 only.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';

import Provider, { errors } from 'oidc-provider';

const port = Number(process.argv[2] ?? process.env.PORT);
const resource = process.env.RESOURCE;
const kid = process.env.KID || 'k1';
const scopeList = (value) => (value ?? '').split(/[\s,]+/).filter(Boolean);
const registrableScopes = scopeList(process.env.SCOPES || 'mcp:read mcp:write');
const resourceScopes = [...registrableScopes, ...scopeList(process.env.STEP_UP_SCOPES)];
const accessTokenFormat = process.env.ACCESS_TOKEN_FORMAT || 'jwt';
const introspector = process.env.INTROSPECTION_CLIENT_ID
  ? { id: process.env.INTROSPECTION_CLIENT_ID, secret: process.env.INTROSPECTION_CLIENT_SECRET }
  : undefined;

if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  fail('a listen port is required: `node issuer.mjs <port>` or PORT=<port>');
}
if (!resource || !URL.canParse(resource)) {
  fail('RESOURCE must be the absolute URL of the MCP endpoint, e.g. http://127.0.0.1:8080/mcp');
}
if (!['jwt', 'opaque'].includes(accessTokenFormat)) {
  fail(`ACCESS_TOKEN_FORMAT must be jwt or opaque; got ${JSON.stringify(accessTokenFormat)}`);
}
if (introspector && !introspector.secret) {
  fail('INTROSPECTION_CLIENT_SECRET is required with INTROSPECTION_CLIENT_ID: the introspection endpoint authenticates its callers');
}

const issuer = `http://127.0.0.1:${port}`;

const relyingParty = process.env.LOGIN_CLIENT_ID ? [{
  client_id: process.env.LOGIN_CLIENT_ID,
  client_secret: process.env.LOGIN_CLIENT_SECRET,
  client_name: 'toolgate (signs users in here)',
  token_endpoint_auth_method: 'client_secret_basic',
  grant_types: ['authorization_code'],
  response_types: ['code'],
  redirect_uris: (process.env.LOGIN_REDIRECT_URI ?? '').split(',').filter(Boolean),
  scope: 'openid email',
}] : [];

// The fixed end user every login resolves to.
const user = { sub: 'alice', email: 'alice@example.test', email_verified: true };

function signingKey() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' };
}

const provider = new Provider(issuer, {
  jwks: { keys: [signingKey()] },
  cookies: { keys: [randomBytes(32).toString('base64url')] },

  // The resource server's own client: it never signs anyone in, it only
  // authenticates at the introspection endpoint.
  clients: [...relyingParty, ...(introspector ? [{
    client_id: introspector.id,
    client_secret: introspector.secret,
    client_name: 'resource server (introspection only)',
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: [],
    response_types: [],
    redirect_uris: [],
  }] : [])],

  // Static scopes must include the scopes clients register with: oidc-provider
  // validates a registering client's `scope` metadata against this list, and
  // later holds the client's authorization requests to what it registered,
  // for static scopes only (see STEP_UP_SCOPES).
  scopes: ['openid', 'offline_access', 'email', ...registrableScopes],
  claims: { openid: ['sub'], email: ['email', 'email_verified'] },

  features: {
    devInteractions: { enabled: false }, // replaced by the auto-login route below
    registration: { enabled: true, initialAccessToken: false }, // open DCR
    revocation: { enabled: true },
    // The answer carries the token's aud (the resource indicator's
    // `audience` below), iss, sub, client_id, scope, exp, token_type and the
    // extraTokenClaims (email). The default policy would answer any
    // confidential client; only the resource server may ask.
    introspection: {
      enabled: Boolean(introspector),
      allowedPolicy: async (_ctx, caller) => caller.clientId === introspector?.id,
    },
    resourceIndicators: {
      enabled: true,
      defaultResource: async (_ctx, _client, oneOf) => oneOf,
      // A code granted for one resource is exchanged for that resource even
      // when the token request omits `resource`.
      useGrantedResource: async () => true,
      getResourceServerInfo: async (_ctx, indicator) => {
        if (indicator !== resource) {
          throw new errors.InvalidTarget(`unknown resource indicator; this issuer serves only ${resource}`);
        }
        return {
          scope: resourceScopes.join(' '),
          audience: resource,
          accessTokenTTL: 10 * 60,
          accessTokenFormat,
          ...(accessTokenFormat === 'jwt' && { jwt: { sign: { alg: 'RS256' } } }),
        };
      },
    },
  },

  // ID tokens carry the scopes' claims (email) even when an access token is
  // issued too, as Google's and Keycloak's do; toolgate reads them there.
  conformIdTokenClaims: false,
  pkce: { required: () => true }, // oidc-provider 9 only supports S256

  // Put the user's email into access tokens so toolgate can forward it (an
  // opaque token's extra claims appear in its introspection answer).
  extraTokenClaims: async (_ctx, token) => (token.accountId === user.sub ? { email: user.email } : undefined),

  findAccount: async (_ctx, sub) => (sub === user.sub
    ? { accountId: sub, claims: async () => ({ ...user }) }
    : undefined),

  interactions: { url: async (_ctx, interaction) => `/interaction/${interaction.uid}` },

  ttl: {
    AccessToken: 10 * 60,
    AuthorizationCode: 60,
    IdToken: 10 * 60,
    Interaction: 10 * 60,
    Session: 60 * 60,
    Grant: 60 * 60,
    RefreshToken: 60 * 60,
  },
  renderError: async (ctx, out) => {
    ctx.type = 'application/json';
    ctx.body = out;
  },
});

provider.on('server_error', (_ctx, err) => console.error('issuer server_error:', err));

// autoInteraction settles every interaction without a page: the login prompt
// logs in the fixed user, the consent prompt grants exactly what is missing.
// oidc-provider then resumes the authorization at /auth/<uid>, which needs the
// interaction cookies set on the way here.
async function autoInteraction(req, res) {
  const details = await provider.interactionDetails(req, res);
  const { prompt, params, session } = details;

  if (prompt.name === 'login') {
    await provider.interactionFinished(req, res, { login: { accountId: user.sub } }, { mergeWithLastSubmission: false });
    return;
  }
  if (prompt.name !== 'consent') {
    throw new Error(`unexpected prompt ${prompt.name}`);
  }

  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  const missing = prompt.details;
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
    grant.addResourceScope(indicator, scopes.join(' '));
  }
  const grantId = await grant.save();
  await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
}

const oidc = provider.callback();

const server = createServer((req, res) => {
  if (req.url.startsWith('/interaction/')) {
    autoInteraction(req, res).catch((err) => {
      console.error('issuer interaction failed:', err);
      if (!res.headersSent) {
        res.writeHead(500, { 'content-type': 'text/plain' });
      }
      res.end(`interaction failed: ${err.message}\n`);
    });
    return;
  }
  oidc(req, res);
});

server.on('error', (err) => fail(`cannot listen on 127.0.0.1:${port}: ${err.message}`));
server.listen(port, '127.0.0.1', () => {
  console.log(`READY ${issuer}`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    server.close();
    server.closeAllConnections();
    process.exit(0);
  });
}

function fail(message) {
  console.error(`issuer: ${message}`);
  process.exit(2);
}
