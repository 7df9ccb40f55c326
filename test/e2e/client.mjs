// client.mjs — drives the official MCP TypeScript SDK client through toolgate
// the way a real MCP client would: connect, get 401, discover the protected
// resource metadata (RFC 9728) and the authorization server (RFC 8414 / OIDC),
// register dynamically, authorize with PKCE, exchange the code, then list and
// call tools. The "browser" is the headless redirect walker of oauth.mjs, so
// the whole login is non-interactive.
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
//   --username   sign in with this user on a sign-in page (password from the
//                LOGIN_PASSWORD environment variable, kept out of argv)
//   --idp        sign in by pressing the upstream identity provider's button
//   --client-id, --client-secret
//                a pre-registered client instead of dynamic registration
//   --client-metadata-url
//                use this client ID metadata document URL as client_id
//   --redirect-url  the redirect URI (default http://127.0.0.1:<free port>/callback)
//   --call       also call this tool with no arguments and report its text
//
// On success prints one JSON line on stdout:
//   {"ok":true,"login":…,"registered":…,"tools":[…],"echo":"…","progress":n,
//    "token":{"header":{…},"claims":{…}}, …}
// The access token itself is never printed. Fails with exit code 1 and a
// `client: FAILED: …` line on stderr.

import { parseArgs } from 'node:util';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

import {
  HTTP_TIMEOUT_MS, HeadlessOAuthProvider, UnknownClientError, decodeJwt, loadState, saveFile, unusedLoopbackPort,
} from './oauth.mjs';

const { values: opts } = parseArgs({
  options: {
    url: { type: 'string', default: process.env.MCP_URL },
    state: { type: 'string' },
    reuse: { type: 'boolean', default: false },
    'token-out': { type: 'string' },
    message: { type: 'string', default: 'hello through toolgate' },
    'timeout-ms': { type: 'string', default: '30000' },
    username: { type: 'string' },
    idp: { type: 'boolean', default: false },
    'client-id': { type: 'string' },
    'client-secret': { type: 'string' },
    'client-metadata-url': { type: 'string' },
    'redirect-url': { type: 'string' },
    call: { type: 'string' },
  },
});

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
  await first.transport.finishAuth(provider.takeCode());
  const second = newSession(provider);
  await second.client.connect(second.transport);
  return second;
}

async function main() {
  const saved = opts.reuse ? loadState(opts.state) : {};
  const redirectUrl = opts['redirect-url'] ?? `http://127.0.0.1:${await unusedLoopbackPort()}/callback`;
  if (opts['client-id'] && !saved.clientInformation) {
    saved.clientInformation = { client_id: opts['client-id'], ...(opts['client-secret'] && { client_secret: opts['client-secret'] }) };
  }
  let login;
  if (opts.username !== undefined) login = { username: opts.username, password: process.env.LOGIN_PASSWORD ?? '' };
  if (opts.idp) login = { idp: true };
  // A token is written as soon as it exists, so a caller can inspect a token
  // that the gateway then refused.
  const provider = new HeadlessOAuthProvider(saved.redirectUrl ?? redirectUrl, saved, {
    onTokens: (tokens) => {
      if (opts['token-out'] && tokens.access_token) saveFile(opts['token-out'], tokens.access_token);
    },
    login,
    clientMetadataUrl: opts['client-metadata-url'],
  });
  provider.saved.redirectUrl = provider.redirectUrl;

  let { client, transport } = await connect(provider);

  const { tools } = await client.listTools();
  const names = tools.map((tool) => tool.name);
  if (!names.includes('echo')) throw new Error(`tools/list has no echo tool: ${names.join(', ')}`);

  // server-everything's echo takes "message", toolgate demo's takes "text".
  const echoTool = tools.find((tool) => tool.name === 'echo');
  const echoArgs = echoTool.inputSchema?.properties?.text ? { text: opts.message } : { message: opts.message };
  const echoed = await client.callTool({ name: 'echo', arguments: echoArgs });
  const echo = echoed.content?.find((item) => item.type === 'text')?.text;
  if (echoed.isError || !echo) throw new Error(`echo failed: ${JSON.stringify(echoed)}`);

  // A tool that streams: its progress notifications come over SSE ahead of
  // the result.
  let progress = 0;
  if (names.includes('trigger-long-running-operation')) await client.callTool(
    { name: 'trigger-long-running-operation', arguments: { duration: 0.6, steps: 3 } },
    undefined,
    { onprogress: () => { progress += 1; }, timeout: HTTP_TIMEOUT_MS },
  );

  // --call: in per-tool mode the session may be anonymous until a tool
  // needs sign-in; the gateway's 401 then starts the login (the SDK throws
  // UnauthorizedError after redirectToAuthorization), and the call is
  // repeated on a session with the token.
  let called;
  if (opts.call) {
    let result;
    try {
      result = await client.callTool({ name: opts.call, arguments: {} });
    } catch (err) {
      if (!(err instanceof UnauthorizedError) || !provider.pendingCode) throw err;
      await transport.finishAuth(provider.takeCode());
      await client.close();
      ({ client, transport } = newSession(provider));
      await client.connect(transport);
      result = await client.callTool({ name: opts.call, arguments: {} });
    }
    called = { isError: result.isError === true, text: result.content?.find((item) => item.type === 'text')?.text };
  }

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
    called,
    pages: provider.pages,
    refreshToken: Boolean(provider.tokens()?.refresh_token),
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
