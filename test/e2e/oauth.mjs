// oauth.mjs — what the test clients share: the SDK's OAuthClientProvider
// with a headless "browser" that walks the issuer's redirects itself, so the
// whole login (authorization → interaction → consent → redirect with a code)
// needs no person and no page.

import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';

export const HTTP_TIMEOUT_MS = 10_000;
const MAX_REDIRECTS = 12;

// An unused loopback port: the redirect URI is never connected to, the
// walker below stops as soon as the issuer redirects there.
export async function unusedLoopbackPort() {
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
export class UnknownClientError extends Error {}

// HeadlessOAuthProvider is the SDK's OAuthClientProvider with an in-memory
// store (optionally loaded from / saved to a file by the caller) and a
// redirect walker in place of a browser. onTokens sees every token response
// as soon as it is saved.
export class HeadlessOAuthProvider {
  constructor(redirectUrl, saved = {}, { onTokens } = {}) {
    this.redirectUrlValue = redirectUrl;
    this.saved = saved;
    this.onTokens = onTokens;
    this.stateValue = randomBytes(16).toString('base64url');
    this.pendingCode = undefined;
    this.loginCount = 0;
    this.registered = false;
    this.registrations = [];
    this.authorizationRequests = [];
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

  // The last authorization request's parameters.
  get authorizationRequest() {
    return this.authorizationRequests.at(-1);
  }

  state() {
    return this.stateValue;
  }

  clientInformation() {
    return this.saved.clientInformation;
  }

  saveClientInformation(info) {
    this.registered = true;
    this.registrations.push({ clientId: info.client_id, scope: info.scope });
    this.saved.clientInformation = info;
  }

  tokens() {
    return this.saved.tokens;
  }

  saveTokens(tokens) {
    this.saved.tokens = tokens;
    this.onTokens?.(tokens);
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

  // takeCode hands the code of the last login to finishAuth, once.
  takeCode() {
    const code = this.pendingCode;
    this.pendingCode = undefined;
    return code;
  }

  // redirectToAuthorization plays the browser: follow the issuer's redirects
  // (authorization → interaction → resume → …) until one points at our
  // redirect URI, then keep the code for finishAuth.
  async redirectToAuthorization(authorizationUrl) {
    this.loginCount += 1;
    this.authorizationRequests.push(Object.fromEntries(authorizationUrl.searchParams));
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

export function decodeJwt(token) {
  const parts = token.split('.');
  if (parts.length !== 3) return { opaque: true };
  const part = (s) => JSON.parse(Buffer.from(s, 'base64url').toString('utf8'));
  return { header: part(parts[0]), claims: part(parts[1]) };
}

export function loadState(file) {
  if (!file || !existsSync(file)) return {};
  return JSON.parse(readFileSync(file, 'utf8'));
}

export function saveFile(file, contents) {
  writeFileSync(file, contents, { mode: 0o600 });
}
