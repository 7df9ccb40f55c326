// mint.mjs — gets access tokens for an MCP endpoint the way the official
// TypeScript SDK gets them, without ever calling the endpoint itself: the
// SDK's auth() discovers the protected resource metadata (RFC 9728) and the
// authorization server, registers one client dynamically, and runs one PKCE
// authorization per token through the headless redirect walker of oauth.mjs.
// Each authorization starts a new issuer session, so each token belongs to a
// grant of its own: revoking one leaves the others alone (oidc-provider
// revokes every access token of the grant a revoked token belongs to).
//
// The tokens are for callers that must present, revoke or introspect a token
// the gateway has never seen.
//
// Usage:
//   node mint.mjs --url <MCP URL> --count <n> --tokens-out <file>
//   --url         MCP endpoint behind toolgate (only its metadata is fetched)
//   --count       how many access tokens (default 1)
//   --tokens-out  file that receives the tokens as a JSON array (mode 0600)
//
// On success prints one JSON line on stdout:
//   {"ok":true,"clientId":"…","issuer":"…","resource":"…","count":n}
// The tokens themselves are never printed. Fails with exit code 1 and a
// `mint: FAILED: …` line on stderr.

import { parseArgs } from 'node:util';

import { auth } from '@modelcontextprotocol/sdk/client/auth.js';

import { HeadlessOAuthProvider, saveFile, unusedLoopbackPort } from './oauth.mjs';

const { values: opts } = parseArgs({
  options: {
    url: { type: 'string' },
    count: { type: 'string', default: '1' },
    'tokens-out': { type: 'string' },
    'timeout-ms': { type: 'string', default: '30000' },
  },
});

function fail(message) {
  console.error(`mint: FAILED: ${message}`);
  process.exit(1);
}

const count = Number(opts.count);
if (!opts.url || !URL.canParse(opts.url)) fail('--url must be the absolute URL of the MCP endpoint');
if (!Number.isInteger(count) || count < 1 || count > 10) fail('--count must be an integer from 1 to 10');
if (!opts['tokens-out']) fail('--tokens-out <file> is required');
setTimeout(() => fail(`gave up after ${opts['timeout-ms']} ms`), Number(opts['timeout-ms'])).unref();

async function main() {
  const provider = new HeadlessOAuthProvider(`http://127.0.0.1:${await unusedLoopbackPort()}/callback`);
  const serverUrl = new URL(opts.url);
  const tokens = [];
  for (let i = 0; i < count; i += 1) {
    provider.invalidateCredentials('tokens'); // a new authorization, not a refresh
    const started = await auth(provider, { serverUrl });
    if (started !== 'REDIRECT' || !provider.pendingCode) {
      throw new Error(`token #${i + 1}: auth() returned ${started} without a login`);
    }
    const finished = await auth(provider, { serverUrl, authorizationCode: provider.takeCode() });
    const token = provider.tokens()?.access_token;
    if (finished !== 'AUTHORIZED' || !token) {
      throw new Error(`token #${i + 1}: auth() returned ${finished} without an access token`);
    }
    tokens.push(token);
  }
  saveFile(opts['tokens-out'], JSON.stringify(tokens));
  console.log(JSON.stringify({
    ok: true,
    clientId: provider.saved.clientInformation?.client_id,
    issuer: provider.saved.discovery?.authorizationServerUrl,
    resource: provider.authorizationRequest?.resource,
    count: tokens.length,
  }));
}

main().then(
  () => process.exit(0),
  (err) => fail(`${err?.message ?? String(err)}\n${err?.stack ?? ''}`),
);
