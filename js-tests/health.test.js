'use strict';
// Health: the event-loop watchdog replaces a hung worker (successor first,
// its unanswered connections to the others), probes gate readiness and
// replace a sick worker, and a slow but healthy worker is left alone.
// Real workers and sockets, the real CLI; short timeouts, no timing thresholds.
const { test, describe, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { FIXTURES, makeHome, waitFor, waitServing, freePort, get, getJson, byName } = require('./helpers.js');
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

  test('a cluster worker whose health path answers 500 is replaced after the threshold', async () => {
    const port = await freePort();
    const sick = path.join(h.home, 'sick-once');
    const file = ecosystem(h, 'sick', {
      instances: 2,
      exec_mode: 'cluster',
      env: { PORT: String(port), SICK_ONCE_FILE: sick },
      liveness_probe: { http_get: { path: '/health' }, period_ms: 200, failure_threshold: 2 },
    });
    assert.equal(h.cli(['start', file]).code, 0);
    await waitFor(() => fs.existsSync(sick) && fs.readFileSync(sick, 'utf8'), { what: 'the sick worker started' });
    const sickPid = Number(fs.readFileSync(sick, 'utf8'));
    const before = byName(h.jlist(), 'sick');
    const list = await waitFor(
      async () => {
        const l = byName(await h.jlistAsync(), 'sick');
        return l.every((w) => w.pid !== sickPid && w.pm2_env.status === 'online') ? l : null;
      },
      { what: 'the sick worker replaced' },
    );
    const replaced = list.find((w) => w.pm_id === before.find((b) => b.pid === sickPid).pm_id);
    assert.equal(replaced.pm2_env.restart_time, 1);
    assert.equal(replaced.pm2_env.restart_reason, 'liveness probe failed 2 times: GET /health answered 500');
    // Each probe reached its own worker: the healthy one was never failed.
    const healthy = list.find((w) => w !== replaced);
    assert.equal(healthy.pm2_env.restart_time, 0);
    assert.equal(healthy.pid, before.find((b) => b.pid !== sickPid).pid);
    assert.equal(h.cli(['delete', 'sick']).code, 0);
  });

  test('a reload whose successor never passes readiness keeps the old worker and says why', async () => {
    const port = await freePort();
    const notReady = path.join(h.home, 'not-ready');
    const file = ecosystem(h, 'gated', {
      instances: 1,
      exec_mode: 'cluster',
      listen_timeout: 1500,
      env: { PORT: String(port), NOT_READY_FILE: notReady },
      readiness_probe: { http_get: { path: '/health', status: 200 }, period_ms: 1000 },
    });
    assert.equal(h.cli(['start', file]).code, 0);
    await waitServing(port);
    const [before] = byName(h.jlist(), 'gated');
    fs.writeFileSync(notReady, '');
    const r = h.cli(['reload', 'gated']);
    assert.notEqual(r.code, 0, r.out);
    assert.match(r.out, /readiness probe did not pass within listen_timeout \(1500 ms\): GET \/health answered 503/);
    assert.match(r.out, /the old process keeps serving/);
    const [after] = byName(h.jlist(), 'gated');
    assert.equal(after.pid, before.pid);
    assert.equal((await getJson(port)).pid, before.pid);
    assert.equal(h.cli(['delete', 'gated']).code, 0);
  });

  test('a worker whose loop is slow but whose health is fine is not replaced', async () => {
    const port = await freePort();
    const file = ecosystem(h, 'slow', {
      unresponsive_timeout: 1500,
      env: { PORT: String(port), SLOW_LOOP_MS: '200' },
      liveness_probe: { http_get: { path: '/health' }, period_ms: 300, timeout_ms: 1000, failure_threshold: 2 },
    });
    assert.equal(h.cli(['start', file]).code, 0);
    await waitServing(port);
    // Several blocks of its loop pass, each longer than a healthy ping.
    const { pid } = await waitFor(
      async () => {
        const b = JSON.parse((await get(port, '/blocks')).body);
        return b.blocks >= 4 ? b : null;
      },
      { what: 'four slow turns of its loop', interval: 200 },
    );
    const [w] = byName(h.jlist(), 'slow');
    assert.equal(w.pid, pid);
    assert.equal(w.pm2_env.restart_time, 0);
    assert.equal(w.pm2_env.restart_reason, undefined);
    assert.equal(typeof w.pm2_env.event_loop_lag_ms, 'number');
    assert.match(h.cli(['describe', 'slow']).out, /event loop lag/);
    assert.equal(h.cli(['delete', 'slow']).code, 0);
  });

  test('a probe that cannot work is a config error naming app and option; nothing starts', () => {
    const file = ecosystem(h, 'bad', { readiness_probe: { http_get: { port: 3000 } } });
    const r = h.cli(['start', file]);
    assert.notEqual(r.code, 0);
    assert.match(r.out, /app "bad": option "readiness_probe": http_get: needs a path/);
    assert.deepEqual(byName(h.jlist(), 'bad'), []);
  });
});
