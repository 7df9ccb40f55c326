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

// CookieJar keeps each origin's cookies between requests, which is what
// lets an authorization resume after its sign-in and consent steps.
// Paths and expiry don't matter here.
class CookieJar {
  #byOrigin = new Map();

  #cookies(url) {
    const origin = new URL(url).origin;
    if (!this.#byOrigin.has(origin)) this.#byOrigin.set(origin, new Map());
    return this.#byOrigin.get(origin);
  }

  store(url, response) {
    const cookies = this.#cookies(url);
    for (const line of response.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const eq = pair.indexOf('=');
      if (eq <= 0) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      if (value === '' || /expires=Thu, 01 Jan 1970/i.test(line) || /max-age=(0|-)/i.test(line)) {
        cookies.delete(name);
      } else {
        cookies.set(name, value);
      }
    }
  }

  header(url) {
    return [...this.#cookies(url)].map(([name, value]) => `${name}=${value}`).join('; ');
  }
}

const ENTITIES = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", '#39': "'", '#x27': "'", '#34': '"' };
function unescapeHtml(s) {
  return s.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (m, e) => {
    if (ENTITIES[e.toLowerCase()] !== undefined) return ENTITIES[e.toLowerCase()];
    if (e[0] === '#') return String.fromCodePoint(e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10));
    return m;
  });
}

function attr(tag, name) {
  const m = tag.match(new RegExp(`\\s${name}\\s*=\\s*("([^"]*)"|'([^']*)'|([^\\s>]+))`, 'i'));
  return m ? unescapeHtml(m[2] ?? m[3] ?? m[4] ?? '') : undefined;
}

// parseForms reads the forms of an HTML page: action, method, the named
// inputs with their values, and the submit buttons. Enough for the pages of
// toolgate's authorization server; not a general HTML parser.
export function parseForms(html, base) {
  const forms = [];
  for (const m of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const [, open, inner] = m;
    const fields = [];
    for (const t of inner.matchAll(/<input\b[^>]*>/gi)) {
      const name = attr(t[0], 'name');
      if (name) fields.push({ name, value: attr(t[0], 'value') ?? '', type: (attr(t[0], 'type') ?? 'text').toLowerCase() });
    }
    const buttons = [];
    for (const b of inner.matchAll(/<button\b([^>]*)>([\s\S]*?)<\/button>/gi)) {
      buttons.push({ name: attr(b[0], 'name'), value: attr(b[0], 'value') ?? '', text: b[2].replace(/<[^>]*>/g, '').trim() });
    }
    forms.push({
      action: new URL(attr(open, 'action') ?? base.href, base),
      method: (attr(open, 'method') ?? 'get').toUpperCase(),
      fields,
      buttons,
    });
  }
  return forms;
}

// UnknownClientError: the issuer has forgotten a saved registration (it was
// restarted); the saved client and tokens are dropped and the flow restarts.
export class UnknownClientError extends Error {}

// HeadlessOAuthProvider is the SDK's OAuthClientProvider with an in-memory
// store (optionally loaded from / saved to a file by the caller) and a
// redirect walker in place of a browser. onTokens sees every token response
// as soon as it is saved.
export class HeadlessOAuthProvider {
  // login: { username, password } for a sign-in form, or { idp: true } to
  // press the upstream provider's button; consent: 'approve' (default) or
  // 'deny'. clientMetadataUrl makes the SDK use a client ID metadata
  // document instead of registering.
  constructor(redirectUrl, saved = {}, { onTokens, login, consent = 'approve', clientMetadataUrl } = {}) {
    this.redirectUrlValue = redirectUrl;
    this.login = login;
    this.consent = consent;
    this.pages = [];
    if (clientMetadataUrl) this.clientMetadataUrl = clientMetadataUrl;
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
    // Only a registration response carries client_id_issued_at; the SDK also
    // saves pre-registered and metadata-document clients here.
    if (info.client_id_issued_at !== undefined) this.registered = true;
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
  // and fill in its pages (sign-in, consent) until a redirect points at our
  // redirect URI, then keep the code for finishAuth.
  async redirectToAuthorization(authorizationUrl) {
    this.loginCount += 1;
    this.authorizationRequests.push(Object.fromEntries(authorizationUrl.searchParams));
    const jar = new CookieJar();
    let request = { url: authorizationUrl, method: 'GET' };
    for (let hop = 0; hop < MAX_REDIRECTS; hop += 1) {
      const { url } = request;
      if (url.href.startsWith(this.redirectUrlValue)) {
        this.pendingCode = this.#codeFrom(url);
        return;
      }
      const headers = { cookie: jar.header(url), accept: 'text/html' };
      if (request.body) {
        headers['content-type'] = 'application/x-www-form-urlencoded';
        headers.origin = url.origin;
      }
      const response = await fetch(url, {
        method: request.method,
        body: request.body,
        redirect: 'manual',
        headers,
        signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
      });
      jar.store(url, response);
      const location = response.headers.get('location');
      if (response.status >= 300 && response.status <= 399 && location) {
        await response.arrayBuffer().catch(() => {});
        request = { url: new URL(location, url), method: 'GET' };
        continue;
      }
      const body = await response.text();
      const next = response.status === 200 && this.#submit(body, url);
      if (!next) {
        if (/"error"\s*:\s*"invalid_client"/.test(body)) {
          throw new UnknownClientError(`the issuer no longer knows client ${this.saved.clientInformation?.client_id}: ${body.slice(0, 500)}`);
        }
        const text = body.replace(/<style[\s\S]*?<\/style>/gi, '').replace(/<[^>]*>/g, ' ').replace(/\s+/g, ' ').trim();
        throw new Error(`authorization stopped at ${url.origin}${url.pathname} with HTTP ${response.status}: ${text.slice(0, 500)}`);
      }
      request = next;
    }
    throw new Error(`authorization did not reach ${this.redirectUrlValue} within ${MAX_REDIRECTS} steps`);
  }

  // #submit picks the form a user would use on this page and fills it in:
  // credentials on a sign-in form, the provider button when asked to sign
  // in upstream, the approve (or deny) button on a consent form.
  #submit(html, url) {
    const forms = parseForms(html, url);
    if (forms.length === 0) return undefined;
    const params = new URLSearchParams();
    let form;
    let button;
    const password = forms.find((f) => f.fields.some((x) => x.type === 'password'));
    if (password && this.login?.username !== undefined) {
      form = password;
      this.pages.push('sign-in');
    } else if (this.login?.idp && forms.some((f) => f.action.pathname.endsWith('/idp'))) {
      form = forms.find((f) => f.action.pathname.endsWith('/idp'));
      this.pages.push('sign-in-upstream');
    } else {
      const want = this.consent === 'deny' ? /deny|cancel|reject/i : /approve|allow|accept|continue/i;
      for (const f of forms) {
        button = f.buttons.find((b) => want.test(b.value) || want.test(b.text));
        if (button) {
          form = f;
          break;
        }
      }
      if (!form) return undefined;
      this.pages.push('consent');
    }
    for (const f of form.fields) {
      if (f.type === 'password') params.set(f.name, this.login.password);
      else if (f.name === 'username') params.set(f.name, this.login.username);
      else if (f.type !== 'submit' && f.type !== 'checkbox') params.set(f.name, f.value);
    }
    if (button?.name) params.set(button.name, button.value);
    if (form.method === 'GET') {
      const target = new URL(form.action);
      for (const [k, v] of params) target.searchParams.set(k, v);
      return { url: target, method: 'GET' };
    }
    return { url: form.action, method: 'POST', body: params.toString() };
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
