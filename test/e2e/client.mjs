// client.mjs — drives the official MCP TypeScript SDK client through toolgate
// the way a real MCP client would: connect, get 401, discover the protected
// resource metadata (RFC 9728) and the authorization server (RFC 8414 / OIDC),
// register dynamically, authorize with PKCE, exchange the code, then list and
// call tools. The "browser" is a headless redirect walker, so the whole login
// is non-interactive.
//
// Usage:
//   node client.mjs --url <MCP URL> [--state <file>] [--reuse] [--token-out <file>]
//                   [--message <text>] [--timeout-ms <n>]
//   --url        MCP endpoint behind toolgate (or env MCP_URL)
//   --state      JSON file where client registration, tokens and discovery
//                state are saved after the run (mode 0600)
//   --reuse      start from the saved --state instead of logging in afresh
//   --token-out  file that receives the bare access token (mode 0600), for
//                callers that want to send raw requests with it
//   --message    text for the echo tool (default "hello through toolgate")
//
// On success prints one JSON line on stdout:
//   {"ok":true,"login":…,"registered":…,"tools":[…],"echo":"…","progress":n,
//    "token":{"header":{…},"claims":{…}}, …}
// The access token itself is never printed. Fails with exit code 1 and a
// `client: FAILED: …` line on stderr.

import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { parseArgs } from 'node:util';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const { values: opts } = parseArgs({
  options: {
    url: { type: 'string', default: process.env.MCP_URL },
    state: { type: 'string' },
    reuse: { type: 'boolean', default: false },
    'token-out': { type: 'string' },
    message: { type: 'string', default: 'hello through toolgate' },
    'timeout-ms': { type: 'string', default: '30000' },
  },
});

const HTTP_TIMEOUT_MS = 10_000;
const MAX_REDIRECTS = 12;

function fail(message) {
  console.error(`client: FAILED: ${message}`);
  process.exit(1);
}

if (!opts.url || !URL.canParse(opts.url)) {
  fail('--url (or MCP_URL) must be the absolute URL of the MCP endpoint');
}
if (opts.reuse && !opts.state) {
  fail('--reuse needs --state <file>');
}
setTimeout(() => fail(`gave up after ${opts['timeout-ms']} ms`), Number(opts['timeout-ms'])).unref();

// An unused loopback port: the redirect URI is never connected to, the
// walker below stops as soon as the issuer redirects there.
async function unusedLoopbackPort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// CookieJar keeps the issuer's cookies between redirects, which is what lets
// oidc-provider resume an authorization after its interaction step. One
// origin only, so names are enough; paths and expiry don't matter here.
class CookieJar {
  #cookies = new Map();

  store(response) {
    for (const line of response.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const eq = pair.indexOf('=');
      if (eq <= 0) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      if (value === '' || /expires=Thu, 01 Jan 1970/i.test(line)) {
        this.#cookies.delete(name);
      } else {
        this.#cookies.set(name, value);
      }
    }
  }

  header() {
    return [...this.#cookies].map(([name, value]) => `${name}=${value}`).join('; ');
  }
}

// UnknownClientError: the issuer has forgotten a saved registration (it was
// restarted); the saved client and tokens are dropped and the flow restarts.
class UnknownClientError extends Error {}

// HeadlessOAuthProvider is the SDK's OAuthClientProvider with an in-memory
// store (optionally loaded from / saved to a file) and a redirect walker in
// place of a browser.
class HeadlessOAuthProvider {
  constructor(redirectUrl, saved = {}) {
    this.redirectUrlValue = redirectUrl;
    this.saved = saved;
    this.stateValue = randomBytes(16).toString('base64url');
    this.pendingCode = undefined;
    this.loginCount = 0;
    this.registered = false;
  }

  get redirectUrl() {
    return this.redirectUrlValue;
  }

  get clientMetadata() {
    return {
      client_name: 'toolgate e2e client',
      redirect_uris: [this.redirectUrlValue],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
      application_type: 'native',
      // Used only when neither the challenge nor the PRM names scopes.
      scope: 'mcp:read mcp:write',
    };
  }

  state() {
    return this.stateValue;
  }

  clientInformation() {
    return this.saved.clientInformation;
  }

  saveClientInformation(info) {
    this.registered = true;
    this.saved.clientInformation = info;
  }

  tokens() {
    return this.saved.tokens;
  }

  saveTokens(tokens) {
    this.saved.tokens = tokens;
    // Written as soon as it exists, so a caller can inspect a token that
    // the gateway then refused.
    if (opts['token-out'] && tokens.access_token) saveFile(opts['token-out'], tokens.access_token);
  }

  saveCodeVerifier(verifier) {
    this.saved.codeVerifier = verifier;
  }

  codeVerifier() {
    if (!this.saved.codeVerifier) throw new Error('no PKCE code verifier saved');
    return this.saved.codeVerifier;
  }

  discoveryState() {
    return this.saved.discovery;
  }

  saveDiscoveryState(state) {
    this.saved.discovery = state;
  }

  invalidateCredentials(scope) {
    if (scope === 'all' || scope === 'client') delete this.saved.clientInformation;
    if (scope === 'all' || scope === 'tokens') delete this.saved.tokens;
    if (scope === 'all' || scope === 'verifier') delete this.saved.codeVerifier;
    if (scope === 'all' || scope === 'discovery') delete this.saved.discovery;
  }

  // redirectToAuthorization plays the browser: follow the issuer's redirects
  // (authorization → interaction → resume → …) until one points at our
  // redirect URI, then keep the code for finishAuth.
  async redirectToAuthorization(authorizationUrl) {
    this.loginCount += 1;
    this.authorizationRequest = Object.fromEntries(authorizationUrl.searchParams);
    const jar = new CookieJar();
    let url = authorizationUrl;
    for (let hop = 0; hop < MAX_REDIRECTS; hop += 1) {
      if (url.href.startsWith(this.redirectUrlValue)) {
        this.pendingCode = this.#codeFrom(url);
        return;
      }
      const response = await fetch(url, {
        redirect: 'manual',
        headers: { cookie: jar.header(), accept: 'text/html' },
        signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
      });
      jar.store(response);
      const location = response.headers.get('location');
      if (response.status < 300 || response.status > 399 || !location) {
        const body = (await response.text()).slice(0, 500);
        if (/"error"\s*:\s*"invalid_client"/.test(body)) {
          throw new UnknownClientError(`the issuer no longer knows client ${this.saved.clientInformation?.client_id}: ${body}`);
        }
        throw new Error(`authorization stopped at ${url.origin}${url.pathname} with HTTP ${response.status}: ${body}`);
      }
      await response.arrayBuffer().catch(() => {});
      url = new URL(location, url);
    }
    throw new Error(`authorization did not reach ${this.redirectUrlValue} within ${MAX_REDIRECTS} redirects`);
  }

  #codeFrom(callback) {
    const params = callback.searchParams;
    if (params.get('error')) {
      throw new Error(`authorization error: ${params.get('error')}: ${params.get('error_description') ?? ''}`);
    }
    if (params.get('state') !== this.stateValue) {
      throw new Error('authorization response state does not match the request');
    }
    // RFC 9207: the issuer says who answered; it must be the one we asked.
    const issuer = this.saved.discovery?.authorizationServerMetadata?.issuer;
    if (params.has('iss') && issuer && params.get('iss') !== issuer) {
      throw new Error(`authorization response iss ${params.get('iss')} is not the discovered issuer ${issuer}`);
    }
    const code = params.get('code');
    if (!code) throw new Error('authorization response carries no code');
    return code;
  }
}

function decodeJwt(token) {
  const parts = token.split('.');
  if (parts.length !== 3) return { opaque: true };
  const part = (s) => JSON.parse(Buffer.from(s, 'base64url').toString('utf8'));
  return { header: part(parts[0]), claims: part(parts[1]) };
}

function loadState(file) {
  if (!file || !existsSync(file)) return {};
  return JSON.parse(readFileSync(file, 'utf8'));
}

function saveFile(file, contents) {
  writeFileSync(file, contents, { mode: 0o600 });
}

// lastRefusal remembers the gateway's most recent 401/403 challenge, so a
// failure says what the gateway objected to, not just "Unauthorized".
let lastRefusal;
async function observingFetch(input, init) {
  const response = await fetch(input, init);
  if (response.status === 401 || response.status === 403) {
    lastRefusal = `${init?.method ?? 'GET'} ${input} → ${response.status} WWW-Authenticate: ${response.headers.get('www-authenticate')}`;
  }
  return response;
}

function newSession(provider) {
  const transport = new StreamableHTTPClientTransport(new URL(opts.url), { authProvider: provider, fetch: observingFetch });
  const client = new Client({ name: 'toolgate-e2e', version: '1.0.0' });
  return { client, transport };
}

// connect follows the SDK's documented pattern: the first connect throws
// UnauthorizedError after redirectToAuthorization; finishAuth(code)
// exchanges the code, and a fresh transport connects with the token.
async function connect(provider, retryUnknownClient = true) {
  const first = newSession(provider);
  try {
    await first.client.connect(first.transport);
    return first;
  } catch (err) {
    if (err instanceof UnknownClientError && retryUnknownClient) {
      provider.invalidateCredentials('client');
      provider.invalidateCredentials('tokens');
      return connect(provider, false);
    }
    if (!(err instanceof UnauthorizedError)) throw err;
    if (!provider.pendingCode) throw new Error(`unauthorized and no login happened: ${err.message}`);
  }
  await first.transport.finishAuth(provider.pendingCode);
  provider.pendingCode = undefined;
  const second = newSession(provider);
  await second.client.connect(second.transport);
  return second;
}

async function main() {
  const saved = opts.reuse ? loadState(opts.state) : {};
  const redirectUrl = `http://127.0.0.1:${await unusedLoopbackPort()}/callback`;
  const provider = new HeadlessOAuthProvider(saved.redirectUrl ?? redirectUrl, saved);
  provider.saved.redirectUrl = provider.redirectUrl;

  const { client, transport } = await connect(provider);

  const { tools } = await client.listTools();
  const names = tools.map((tool) => tool.name);
  if (!names.includes('echo')) throw new Error(`tools/list has no echo tool: ${names.join(', ')}`);

  const echoed = await client.callTool({ name: 'echo', arguments: { message: opts.message } });
  const echo = echoed.content?.find((item) => item.type === 'text')?.text;
  if (echoed.isError || !echo) throw new Error(`echo failed: ${JSON.stringify(echoed)}`);

  // A tool that streams: its progress notifications come over SSE ahead of
  // the result.
  let progress = 0;
  await client.callTool(
    { name: 'trigger-long-running-operation', arguments: { duration: 0.6, steps: 3 } },
    undefined,
    { onprogress: () => { progress += 1; }, timeout: HTTP_TIMEOUT_MS },
  );

  const accessToken = provider.tokens()?.access_token;
  if (!accessToken) throw new Error('connected without an access token');
  if (opts['token-out']) saveFile(opts['token-out'], accessToken); // a reused token too

  const sessionId = transport.sessionId;
  await transport.terminateSession();
  await client.close();

  if (opts.state) saveFile(opts.state, JSON.stringify(provider.saved, null, 2));

  const token = decodeJwt(accessToken);
  console.log(JSON.stringify({
    ok: true,
    login: provider.loginCount > 0,
    registered: provider.registered,
    clientId: provider.saved.clientInformation?.client_id,
    authorizationRequest: provider.authorizationRequest && {
      resource: provider.authorizationRequest.resource,
      scope: provider.authorizationRequest.scope,
      code_challenge_method: provider.authorizationRequest.code_challenge_method,
    },
    issuer: provider.saved.discovery?.authorizationServerUrl,
    protocolVersion: transport.protocolVersion,
    sessionId: sessionId !== undefined,
    tools: names,
    echo,
    progress,
    token,
  }));
}

main().then(
  () => process.exit(0),
  (err) => fail([
    err?.message ?? String(err),
    lastRefusal && `last refusal: ${lastRefusal}`,
    err?.stack,
  ].filter(Boolean).join('\n')),
);
