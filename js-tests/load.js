'use strict';
// Continuous load for reload/crash tests: one client opening a new
// connection per request, one reusing a keep-alive connection. Bounded by
// `durationMs`; `stop()` ends it early and resolves the counts.
//
// The keep-alive client follows Node's documented pattern for keep-alive
// races (see `request.reusedSocket` in Node's http docs): a request that
// fails with ECONNRESET on a *reused* socket — the server closed the idle
// connection while the request was on its way — is sent again once, as
// browsers do for idempotent requests. Retries are counted, not hidden.
// With `retry: false` it never retries: a plain `http.Agent({ keepAlive:
// true })`, as many HTTP client libraries and proxies use it; with
// `keepAliveClients` several such clients run at once (so every worker
// holds keep-alive connections when it is drained).
const http = require('node:http');

function runLoad(port, { durationMs = 30_000, retry = true, keepAliveClients = 1, path = '/' } = {}) {
  const stats = {
    newconn: { ok: 0, failed: 0, errors: {} },
    keepalive: { ok: 0, failed: 0, errors: {}, retriedOnReusedSocket: 0 },
  };
  const deadline = Date.now() + durationMs;
  let stopped = false;
  const agents = Array.from({ length: keepAliveClients }, () => new http.Agent({ keepAlive: true, maxSockets: 1 }));

  function once(useAgent, s, retry) {
    return new Promise((resolve) => {
      const req = http.get({ host: '127.0.0.1', port, path, agent: useAgent, timeout: 10_000 }, (res) => {
        res.resume();
        res.on('end', () => {
          if (res.statusCode === 200) s.ok++;
          else fail(s, `status ${res.statusCode}`);
          resolve();
        });
        res.on('error', (e) => {
          fail(s, e.code || e.message);
          resolve();
        });
      });
      req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
      req.on('error', (e) => {
        if (retry && req.reusedSocket && e.code === 'ECONNRESET') {
          s.retriedOnReusedSocket++;
          once(useAgent, s, false).then(resolve);
          return;
        }
        fail(s, e.code || e.message);
        resolve();
      });
    });
  }

  async function loop(useAgent, s) {
    while (!stopped && Date.now() < deadline) await once(useAgent, s, retry && useAgent !== false);
  }

  const loops = [loop(false, stats.newconn), ...agents.map((agent) => loop(agent, stats.keepalive))];
  const done = Promise.all(loops).then(() => {
    for (const agent of agents) agent.destroy();
    return stats;
  });
  return {
    stats,
    stop() {
      stopped = true;
      return done;
    },
  };
}

function fail(s, what) {
  s.failed++;
  s.errors[what] = (s.errors[what] || 0) + 1;
}

module.exports = { runLoad };
