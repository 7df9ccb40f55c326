// policy-client.mjs — the official MCP TypeScript SDK client against toolgate
// in per-tool mode (TOOL_POLICY_FILE), in one of two runs:
//
//   --mode anonymous  a Client with no auth provider at all: list the tools,
//                     call the public and the mixed tool, then the protected
//                     one. Meant for CHALLENGE_MODE=auto, where the refusal of
//                     the protected call comes back as a tool result.
//   --mode oauth      a Client whose OAuthClientProvider holds no tokens yet:
//                     connect, list and call the public tool anonymously, then
//                     call the protected tool (HTTP 401 → discovery →
//                     registration → PKCE → token → the call again) and the
//                     admin tool (HTTP 403 insufficient_scope → the SDK's
//                     step-up → the call again). Meant for CHALLENGE_MODE=http:
//                     the SDK logs in on HTTP 401 and 403 only; a tool result
//                     carrying a challenge is just a result to it.
//
// Usage:
//   node policy-client.mjs --mode anonymous|oauth --url <MCP URL> --calls <JSON>
//   --calls  {"public":{"name":…,"arguments":{…}},"mixed":…,"protected":…,"admin":…}
//            (anonymous mode uses public, mixed, protected; oauth mode uses
//            public, protected, admin)
//
// On success prints one JSON line on stdout:
//   tools          tools/list as the SDK parsed it: name, whether a top-level
//                  securitySchemes survived its schema, _meta
//   rawTools       the very same tools/list response as it came over HTTP
//   exchanges      every request the transport sent to the MCP URL, in order:
//                  HTTP method, JSON-RPC method and tool, status,
//                  WWW-Authenticate, and the token it carried (0 = none,
//                  n = the n-th access token issued)
//   calls          each call's final result (isError, content, _meta) and,
//                  in oauth mode, whether it took a login
//   logins         each authorization request: scope, resource, PKCE method
//   registrations  each dynamic client registration: client id and scope
//   tokens         header and claims of each access token (never the token)
// Fails with exit code 1 and a `policy-client: FAILED: …` line on stderr.

import { parseArgs } from 'node:util';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

import { HeadlessOAuthProvider, decodeJwt, unusedLoopbackPort } from './oauth.mjs';

const { values: opts } = parseArgs({
  options: {
    mode: { type: 'string' },
    url: { type: 'string' },
    calls: { type: 'string' },
    'timeout-ms': { type: 'string', default: '30000' },
  },
});

function fail(message) {
  console.error(`policy-client: FAILED: ${message}`);
  process.exit(1);
}

if (opts.mode !== 'anonymous' && opts.mode !== 'oauth') fail('--mode must be anonymous or oauth');
if (!opts.url || !URL.canParse(opts.url)) fail('--url must be the absolute URL of the MCP endpoint');
let calls;
try {
  calls = JSON.parse(opts.calls ?? '');
} catch (err) {
  fail(`--calls must be JSON: ${err.message}`);
}
setTimeout(() => fail(`gave up after ${opts['timeout-ms']} ms`), Number(opts['timeout-ms'])).unref();

const issued = []; // access tokens in the order the issuer granted them
const exchanges = [];
const rawListings = [];

// recordingFetch is the transport's fetch. It notes every request to the MCP
// URL and keeps a copy of each tools/list response body for the raw view.
// Discovery and token requests go to other URLs and are left alone.
async function recordingFetch(input, init) {
  const response = await fetch(input, init);
  if (String(input) !== opts.url) return response;
  let message = {};
  try {
    message = JSON.parse(init?.body ?? '{}');
  } catch {
    // not JSON-RPC; recorded by HTTP method only
  }
  const bearer = new Headers(init?.headers).get('authorization')?.replace(/^Bearer /i, '');
  exchanges.push({
    http: init?.method ?? 'GET',
    method: message.method,
    tool: message.method === 'tools/call' ? message.params?.name : undefined,
    status: response.status,
    wwwAuthenticate: response.headers.get('www-authenticate') ?? undefined,
    token: bearer ? issued.indexOf(bearer) + 1 || -1 : 0,
  });
  if (message.method === 'tools/list' && response.ok) {
    rawListings.push({ contentType: response.headers.get('content-type'), body: response.clone().text() });
  }
  return response;
}

// toolsFromBody finds the tools/list result in a JSON or SSE response body.
function toolsFromBody(contentType, body) {
  let messages = [];
  if (contentType?.startsWith('text/event-stream')) {
    for (const event of body.split(/\r?\n\r?\n/)) {
      const data = event.split(/\r?\n/).filter((l) => l.startsWith('data:')).map((l) => l.slice(5).replace(/^ /, ''));
      // An event without data (the priming event that opens a resumable
      // stream) carries no message.
      if (data.join('') !== '') messages.push(JSON.parse(data.join('\n')));
    }
  } else {
    messages = [JSON.parse(body)].flat();
  }
  const result = messages.find((m) => Array.isArray(m?.result?.tools));
  if (!result) throw new Error(`no tools/list result in ${body.slice(0, 300)}`);
  return result.result.tools;
}

function summarize(result) {
  return {
    isError: result.isError === true,
    content: (result.content ?? []).map((c) => ({ type: c.type, text: c.text?.slice(0, 300) })),
    meta: result._meta,
  };
}

// callSigningIn calls a tool and, if the SDK had to log in for it (a 401 or
// a 403 insufficient_scope made it run the authorization flow and throw
// UnauthorizedError), exchanges the code and calls again on the same session.
async function callSigningIn(client, transport, provider, params) {
  const logins = provider.loginCount;
  try {
    return { ...summarize(await client.callTool(params)), login: false };
  } catch (err) {
    if (!(err instanceof UnauthorizedError) || provider.loginCount === logins || !provider.pendingCode) throw err;
  }
  await transport.finishAuth(provider.takeCode());
  return { ...summarize(await client.callTool(params)), login: true };
}

async function main() {
  let provider;
  if (opts.mode === 'oauth') {
    const redirectUrl = `http://127.0.0.1:${await unusedLoopbackPort()}/callback`;
    provider = new HeadlessOAuthProvider(redirectUrl, {}, { onTokens: (t) => issued.push(t.access_token) });
  }
  const transport = new StreamableHTTPClientTransport(new URL(opts.url), { authProvider: provider, fetch: recordingFetch });
  const client = new Client({ name: 'toolgate-e2e-policy', version: '1.0.0' });

  // initialize and tools/list are anonymous methods: no login yet.
  await client.connect(transport);
  const { tools } = await client.listTools();
  if (provider?.loginCount) throw new Error('the client logged in before calling a protected tool');

  const results = {};
  results.public = summarize(await client.callTool(calls.public));
  if (opts.mode === 'anonymous') {
    results.mixed = summarize(await client.callTool(calls.mixed));
    results.protected = summarize(await client.callTool(calls.protected));
  } else {
    results.protected = await callSigningIn(client, transport, provider, calls.protected);
    results.admin = await callSigningIn(client, transport, provider, calls.admin);
  }

  await transport.terminateSession();
  await client.close();

  const rawTools = [];
  for (const listing of rawListings) rawTools.push(...toolsFromBody(listing.contentType, await listing.body));

  console.log(JSON.stringify({
    ok: true,
    mode: opts.mode,
    tools: tools.map((t) => ({ name: t.name, topLevelKept: 'securitySchemes' in t, meta: t._meta })),
    rawTools: rawTools.map((t) => ({ name: t.name, securitySchemes: t.securitySchemes, meta: t._meta })),
    exchanges,
    calls: results,
    logins: (provider?.authorizationRequests ?? []).map((r) => ({
      scope: r.scope, resource: r.resource, code_challenge_method: r.code_challenge_method,
    })),
    registrations: provider?.registrations ?? [],
    tokens: issued.map(decodeJwt),
  }));
}

main().then(
  () => process.exit(0),
  (err) => fail([
    err?.message ?? String(err),
    `exchanges so far: ${JSON.stringify(exchanges)}`,
    err?.stack,
  ].filter(Boolean).join('\n')),
);
