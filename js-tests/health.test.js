'use strict';
// Health: the event-loop watchdog replaces a hung worker (successor first,
// its unanswered connections to the others), probes gate readiness and
// replace a sick worker, and a slow but healthy worker is left alone.
// Real workers and sockets, the real CLI; short timeouts, no timing thresholds.
const { test, describe, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { FIXTURES, makeHome, waitFor, waitServing, freePort, getJson, byName } = require('./helpers.js');
const { runLoad } = require('./load.js');

const APP = path.join(FIXTURES, 'health-app.js');

/** An ecosystem file (JSON) for one app in the home. */
function ecosystem(h, name, app) {
  const file = path.join(h.home, `${name}.json`);
  fs.writeFileSync(file, JSON.stringify({ apps: [{ name, script: APP, ...app }] }));
  return file;
}

const restarts = (list) => list.reduce((n, w) => n + w.pm2_env.restart_time, 0);

describe('health', () => {
  let h;
  before(() => {
    h = makeHome('health');
  });
  after(() => h.cleanup());

  test('a cluster worker stuck in while(true) under load is replaced; the other keeps serving', async () => {
    const port = await freePort();
    const marker = path.join(h.home, 'hung-once');
    const file = ecosystem(h, 'hang', {
      instances: 2,
      exec_mode: 'cluster',
      unresponsive_timeout: 1500,
      env: { PORT: String(port), HANG_AFTER: '30', HANG_INSTANCE: '0', HANG_ONCE_FILE: marker },
    });
    const r = h.cli(['start', file]);
    assert.equal(r.code, 0, r.out);
    await waitServing(port);
    const before = byName(h.jlist(), 'hang');
    const load = runLoad(port, { durationMs: 120_000, keepAliveClients: 2 });
    await waitFor(() => fs.existsSync(marker), { what: 'worker 0 hangs' });
    const hungPid = Number(fs.readFileSync(marker, 'utf8'));
    const replaced = await waitFor(
      async () => {
        const list = byName(await h.jlistAsync(), 'hang');
        return restarts(list) === 1 && list.every((w) => w.pm2_env.status === 'online' && w.pid !== hungPid)
          ? list
          : null;
      },
      { what: 'the hung worker replaced' },
    );
    const mark = load.stats.newconn.ok + load.stats.keepalive.ok;
    await waitFor(() => load.stats.newconn.ok + load.stats.keepalive.ok > mark + 100, { what: 'serving after' });
    const stats = await load.stop();
    // What the hung worker held when it hung: at most one request of each client.
    const failed = stats.newconn.failed + stats.keepalive.failed;
    assert.ok(failed <= 3, JSON.stringify(stats));
    const w0 = replaced.find((w) => w.pm_id === before[0].pm_id);
    assert.match(w0.pm2_env.restart_reason, /^event loop unresponsive for \d+ ms$/);
    const w1 = replaced.find((w) => w.pm_id === before[1].pm_id);
    assert.equal(w1.pid, before[1].pid, 'the other worker stays');
    assert.equal(typeof w1.pm2_env.event_loop_lag_ms, 'number');
    assert.match(w1.pm2_env.axm_monitor['Loop delay'].value, /^[\d.]+ms$/);
    const described = h.cli(['describe', String(w0.pm_id)]);
    assert.match(described.out, /restart reason\s*│?\s*event loop unresponsive/);
    const log = fs.readFileSync(path.join(h.home, 'pm2.log'), 'utf8');
    assert.match(log, /App \[hang:0\] unresponsive for \d+ ms: replaced/);
    assert.equal(h.cli(['delete', 'hang']).code, 0);
  });
});
