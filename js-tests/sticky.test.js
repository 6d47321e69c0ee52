'use strict';
// sticky: 'forwarded' behind a reverse proxy: a real socket.io server in
// cluster mode (2 workers) behind an http-proxy that sets X-Forwarded-For
// per client, real socket.io-client clients forced to long polling. With
// the forwarded mode every handshake and message succeeds and the clients
// spread over the workers; without sticky they fail.
const { test, describe, before, after } = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const path = require('node:path');
const httpProxy = require('http-proxy');
const { io } = require('socket.io-client');
const { FIXTURES, makeHome, waitFor, freePort, get, byName } = require('./helpers.js');

const SERVER = path.join(FIXTURES, 'sio-server.js');
const CLIENTS = 16;
const MESSAGES = 3;

/** A reverse proxy to `port` that says which client a request is from in
 * X-Forwarded-For (the test's clients name themselves in `x-client`). One
 * upstream connection per request, so each is routed on its own. */
async function startProxy(port) {
  const proxy = httpProxy.createProxyServer({ target: `http://127.0.0.1:${port}`, agent: false });
  proxy.on('proxyReq', (proxyReq, req) => proxyReq.setHeader('X-Forwarded-For', `${req.headers['x-client']}, 10.9.9.9`));
  proxy.on('error', (e, req, res) => {
    res.writeHead(502);
    res.end(String(e.code || e.message));
  });
  const server = http.createServer((req, res) => proxy.web(req, res));
  const proxyPort = await freePort();
  await new Promise((resolve) => server.listen(proxyPort, '127.0.0.1', resolve));
  // Long polls hang for up to socket.io's ping interval: cut them.
  const close = () =>
    new Promise((resolve) => {
      server.close(resolve);
      server.closeAllConnections();
    });
  return { port: proxyPort, close };
}

/** One socket.io client through the proxy: connect, then MESSAGES acked
 * messages. Resolves the worker pids that answered, or the first error. */
function client(proxyPort, addr) {
  return new Promise((resolve) => {
    const socket = io(`http://127.0.0.1:${proxyPort}`, {
      transports: ['polling'],
      reconnection: false,
      forceNew: true,
      timeout: 5000,
      extraHeaders: { 'x-client': addr },
    });
    const done = (result) => {
      socket.disconnect();
      resolve(result);
    };
    socket.on('connect_error', (e) => done({ error: `connect_error: ${e.message}` }));
    socket.on('connect', async () => {
      const pids = new Set();
      try {
        for (let n = 0; n < MESSAGES; n++) {
          const r = await socket.timeout(3000).emitWithAck('hello', n);
          assert.equal(r.n, n);
          pids.add(r.pid);
        }
        done({ pids: [...pids] });
      } catch (e) {
        done({ error: e.message });
      }
    });
  });
}

const runClients = (proxyPort) =>
  Promise.all(Array.from({ length: CLIENTS }, (_, i) => client(proxyPort, `203.0.113.${i + 1}`)));

describe('sticky behind a proxy', () => {
  let h;
  before(() => {
    h = makeHome('sticky');
  });
  after(() => h.cleanup());

  async function startApp(name, extra) {
    const port = await freePort();
    const r = h.cli(['start', SERVER, '-i', '2', '--name', name, ...extra], { env: { PORT: String(port) } });
    assert.equal(r.code, 0, r.out);
    await waitFor(async () => (await get(port, '/socket.io/?EIO=4&transport=polling')).status === 200, {
      what: 'socket.io serving',
    });
    return { port, proxy: await startProxy(port) };
  }

  test("sticky 'forwarded': every handshake and message succeeds, clients spread over the workers", async () => {
    const { proxy } = await startApp('sio', ['--sticky', 'forwarded']);
    const workers = byName(h.jlist(), 'sio');
    assert.deepEqual(
      workers.map((w) => w.pm2_env.sticky),
      ['forwarded', 'forwarded'],
    );
    const results = await runClients(proxy.port);
    const errors = results.filter((r) => r.error);
    assert.deepEqual(errors, []);
    assert.ok(results.every((r) => r.pids.length === 1), 'each client stays on one worker');
    const used = new Set(results.map((r) => r.pids[0]));
    assert.deepEqual([...used].sort(), workers.map((w) => w.pid).sort(), 'clients spread over both workers');
    await proxy.close();
    h.cli(['delete', 'sio']);
  });

  test('without sticky, long-polling clients behind the proxy fail', async () => {
    const { proxy } = await startApp('sio-rr', []);
    const results = await runClients(proxy.port);
    assert.ok(results.some((r) => r.error), JSON.stringify(results));
    await proxy.close();
    h.cli(['delete', 'sio-rr']);
  });

  test("sticky 'ip' behind the proxy puts every client on one worker", async () => {
    const { proxy } = await startApp('sio-ip', ['--sticky']);
    const results = await runClients(proxy.port);
    assert.deepEqual(results.filter((r) => r.error), []);
    assert.equal(new Set(results.map((r) => r.pids[0])).size, 1, 'the proxy is one address');
    await proxy.close();
    h.cli(['delete', 'sio-ip']);
  });

  test('an unknown sticky mode is refused and nothing starts', async () => {
    const r = h.cli(['start', SERVER, '-i', '2', '--name', 'bad', '--sticky', 'cookie']);
    assert.notEqual(r.code, 0);
    assert.match(r.out, /cookie/);
    assert.equal(byName(h.jlist(), 'bad').length, 0);
  });
});
