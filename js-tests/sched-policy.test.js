'use strict';
// Node's other cluster scheduling policy: NODE_CLUSTER_SCHED_POLICY=none
// makes the daemon hand the listening socket itself to every worker (as
// Node's primary does), instead of accepting and passing each connection.
// The daemon keeps its own copy, so workers coming and going never close
// the port. Real workers, real sockets, the real CLI.
const { test, describe, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const path = require('node:path');
const { FIXTURES, makeHome, waitFor, waitServing, freePort, getJson, byName } = require('./helpers.js');
const { runLoad } = require('./load.js');

const APP = path.join(FIXTURES, 'cluster-app.js');
const NONE = { NODE_CLUSTER_SCHED_POLICY: 'none' };

const workers = (h, name) => byName(h.jlist(), name);

/** Resolves true when a TCP connect to `port` is refused. */
function refused(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.on('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.on('error', (e) => resolve(e.code === 'ECONNREFUSED'));
  });
}

describe('NODE_CLUSTER_SCHED_POLICY', () => {
  let h;
  before(() => {
    h = makeHome('sched');
  });
  after(() => h.cleanup());

  test('the default is round robin: workers get connections, not the socket', async () => {
    const port = await freePort();
    assert.equal(h.cli(['start', APP, '-i', '2', '--name', 'rr'], { env: { PORT: String(port) } }).code, 0);
    await waitServing(port);
    assert.equal((await getJson(port)).handle, 'Object');
    h.cli(['delete', 'rr']);
  });

  test('none: workers accept on the shared socket; reloads under load fail no request', async () => {
    const port = await freePort();
    const r = h.cli(['start', APP, '-i', '2', '--name', 'shared'], { env: { PORT: String(port), ...NONE } });
    assert.equal(r.code, 0, r.out);
    await waitServing(port);
    assert.equal((await getJson(port)).handle, 'TCP');
    const first = workers(h, 'shared').map((w) => w.pid);
    assert.equal(first.length, 2);

    const load = runLoad(port, { durationMs: 120_000 });
    await waitFor(() => load.stats.newconn.ok > 50 && load.stats.keepalive.ok > 50, { what: 'load running' });
    for (let i = 0; i < 2; i++) {
      const rr = await h.cliAsync(['reload', 'shared']);
      assert.equal(rr.code, 0, rr.out);
    }
    const mark = load.stats.newconn.ok;
    await waitFor(() => load.stats.newconn.ok > mark + 50, { what: 'requests after the reloads' });
    const stats = await load.stop();
    assert.deepEqual(stats.newconn.errors, {}, JSON.stringify(stats));
    assert.deepEqual(stats.keepalive.errors, {}, JSON.stringify(stats));
    const now = workers(h, 'shared');
    assert.equal(now.every((w) => !first.includes(w.pid) && w.pm2_env.restart_time === 2), true);
    // Only the new workers answer (which of them is the kernel's choice).
    const nowPids = now.map((w) => w.pid);
    for (let i = 0; i < 10; i++) assert.ok(nowPids.includes((await getJson(port)).pid));

    // kill -9: the survivor keeps the port open, a new worker joins it.
    const [victim, other] = now;
    process.kill(victim.pid, 'SIGKILL');
    await waitFor(() => {
      const w = workers(h, 'shared')[0];
      return w.pid !== victim.pid && w.pm2_env.status === 'online';
    }, { what: 'worker 0 back' });
    assert.equal((await getJson(port)).handle, 'TCP');
    assert.equal(workers(h, 'shared')[1].pid, other.pid);

    // Deleting the app closes the daemon's copy too: the port is free again.
    assert.equal(h.cli(['delete', 'shared']).code, 0);
    await waitFor(() => refused(port), { what: 'port closed after delete' });
  });

  test('none with one worker: a connection made while it is dead waits in the backlog', async () => {
    const port = await freePort();
    const r = h.cli(['start', APP, '-i', '1', '--name', 'solo'], { env: { PORT: String(port), ...NONE } });
    assert.equal(r.code, 0, r.out);
    await waitServing(port);
    const [victim] = workers(h, 'solo');
    process.kill(victim.pid, 'SIGKILL');
    // No worker holds the socket now; only the daemon's copy keeps it open.
    const body = await getJson(port);
    assert.notEqual(body.pid, victim.pid);
    assert.equal(body.handle, 'TCP');
    h.cli(['delete', 'solo']);
  });

  test('none on a unix socket path: workers share the bound socket', async () => {
    const socketPath = path.join(h.home, 'app.sock');
    const r = h.cli(['start', APP, '-i', '2', '--name', 'unix'], { env: { SOCKET_PATH: socketPath, ...NONE } });
    assert.equal(r.code, 0, r.out);
    const viaSocket = () => new Promise((resolve, reject) => {
      http.get({ socketPath, path: '/', agent: false }, (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve(JSON.parse(body)));
      }).on('error', reject);
    });
    const body = await waitFor(() => viaSocket().catch(() => null), { what: 'unix socket serving' });
    assert.equal(body.handle, 'Pipe');
    assert.equal(h.cli(['delete', 'unix']).code, 0);
    // The daemon bound the path, so it removes it.
    await waitFor(() => !fs.existsSync(socketPath), { what: 'socket file removed' });
  });

  test('sticky apps stay on round robin under none', async () => {
    const port = await freePort();
    const r = h.cli(['start', APP, '-i', '2', '--name', 'sticky', '--sticky'], { env: { PORT: String(port), ...NONE } });
    assert.equal(r.code, 0, r.out);
    await waitServing(port);
    // The daemon must see each connection to pick a worker by client IP.
    assert.equal((await getJson(port)).handle, 'Object');
    h.cli(['delete', 'sticky']);
  });
});
