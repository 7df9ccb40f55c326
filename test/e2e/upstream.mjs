// upstream.mjs — runs @modelcontextprotocol/server-everything, unmodified, in
// its streamable HTTP mode (endpoint /mcp) as toolgate's upstream, bound to
// 127.0.0.1 only.
//
// The server calls `app.listen(PORT)`, which binds every interface; the test
// must not open ports beyond loopback, so net.Server#listen is wrapped to add
// the host before the server's own entry point is loaded.
//
// Usage:  PORT=<port> node upstream.mjs

import net from 'node:net';

const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function listenOnLoopback(...args) {
  const [port, host] = args;
  const numericPort = typeof port === 'number' || (typeof port === 'string' && /^\d+$/.test(port));
  if (numericPort && typeof host !== 'string') {
    args.splice(1, 0, '127.0.0.1');
  }
  return listen.apply(this, args);
};

process.argv = [process.argv[0], 'server-everything', 'streamableHttp'];
await import('@modelcontextprotocol/server-everything/dist/index.js');
