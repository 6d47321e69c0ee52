'use strict';
// `rpm2 update`: the daemon re-executes itself in place, under load, and
// nothing a client or a log reader sees changes; the ways it refuses.
const { test, describe, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');

const { FIXTURES, makeHome, waitFor, waitServing, freePort, byName, zombieChildren } = require('./helpers.js');
const { runLoad } = require('./load.js');

const APP = path.join(FIXTURES, 'cluster-app.js');
const LINES = path.join(FIXTURES, 'numbered-lines.js');

const daemonPid = (h) => Number(fs.readFileSync(path.join(h.home, 'pm2.pid'), 'utf8'));
const tookOver = (h) => (fs.readFileSync(path.join(h.home, 'pm2.log'), 'utf8').match(/took over in place/g) || []).length;
const snapshot = (list) => list.map((w) => [w.name, w.pm_id, w.pid, w.pm2_env.status, w.pm2_env.restart_time]);

/** The numbers of the `line N` lines of a log (date prefix or not). */
function numbers(file) {
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .map((l) => /line (\d+)$/.exec(l))
    .filter(Boolean)
    .map((m) => Number(m[1]));
}

describe('rpm2 update', () => {
  let h;
  before(() => {
    h = makeHome('update');
  });
  after(() => h.cleanup());

  test('under load: same daemon pid, same workers, same port, 0 failed requests, every log line once', async () => {
    const port = await freePort();
    assert.equal(h.cli(['start', APP, '-i', '2', '--name', 'web'], { env: { PORT: String(port) } }).code, 0);
    assert.equal(h.cli(['start', LINES, '--name', 'raw'], { env: { COUNT: '20000' } }).code, 0);
    assert.equal(
      h.cli(['start', LINES, '--name', 'stamped', '--log-date-format', 'HH:mm:ss.SSS'], { env: { COUNT: '20000' } }).code,
      0,
    );
    await waitServing(port);
    await waitFor(async () => new Set((await h.jlistAsync()).filter((w) => w.name === 'web').map((w) => w.pid)).size === 2);
    const pid = daemonPid(h);
    const before = snapshot(await h.jlistAsync());
    const load = runLoad(port, { durationMs: 60_000, keepAliveClients: 2 });
    await waitFor(() => load.stats.newconn.ok > 50 && load.stats.keepalive.ok > 50, { what: 'load running' });
    for (let i = 0; i < 3; i++) {
      const r = await h.cliAsync(['update']);
      assert.equal(r.code, 0, r.out);
      assert.match(r.out, /updated in place/);
    }
    // The updates came while the apps were still writing.
    const rawLog = byName(await h.jlistAsync(), 'raw')[0].pm2_env.pm_out_log_path;
    assert.ok(!fs.readFileSync(rawLog, 'utf8').includes('done'), 'the lines were all written before the updates');
    // Served after the last update too.
    const served = load.stats.newconn.ok;
    await waitFor(() => load.stats.newconn.ok > served + 20, { what: 'load still served' });
    const stats = await load.stop();
    assert.equal(stats.newconn.failed + stats.keepalive.failed, 0, JSON.stringify(stats));
    assert.equal(daemonPid(h), pid);
    assert.equal(tookOver(h), 3);
    // What a previous image was waiting for (a `node --version`) is reaped too.
    await waitFor(() => zombieChildren(pid).length === 0, { what: `no zombie children (${zombieChildren(pid)})` });
    assert.deepEqual(snapshot(await h.jlistAsync()), before);
    // Every numbered line exactly once, in order, in both log formats.
    for (const name of ['raw', 'stamped']) {
      const file = byName(await h.jlistAsync(), name)[0].pm2_env.pm_out_log_path;
      await waitFor(() => fs.readFileSync(file, 'utf8').includes('done'), { what: `${name} done` });
      const got = numbers(file);
      assert.equal(got.length, 20000, `${name}: ${got.length} lines`);
      assert.ok(got.every((n, i) => n === i + 1), `${name}: lines out of order or doubled`);
    }
    // The daemon still supervises: a crash is restarted, a reload works.
    const [w0] = byName(await h.jlistAsync(), 'web');
    process.kill(w0.pid, 'SIGKILL');
    await waitFor(async () => {
      const w = byName(await h.jlistAsync(), 'web')[0];
      return w.pid !== w0.pid && w.pm2_env.status === 'online' && w.pm2_env.restart_time === 1;
    }, { what: 'crash restart after the update' });
    assert.equal((await h.cliAsync(['reload', 'web'])).code, 0);
    h.cli(['delete', 'all']);
  });

  test('a new image that cannot carry on gives the daemon back: nothing changes, the error says why', async () => {
    const g = makeHome('update-refuse');
    try {
      const port = await freePort();
      const env = { PORT: String(port), RPM2_TEST_HANDOVER: 'refuse' };
      assert.equal(g.cli(['start', APP, '-i', '2', '--name', 'web'], { env }).code, 0);
      await waitServing(port);
      const pid = daemonPid(g);
      const before = snapshot(g.jlist());
      const r = g.cli(['update']);
      assert.equal(r.code, 1, r.out);
      assert.match(r.out, /could not take over.*carries on as before/);
      assert.equal(daemonPid(g), pid);
      assert.deepEqual(snapshot(g.jlist()), before);
      await waitServing(port);
    } finally {
      g.cleanup();
    }
  });

  test('a binary that cannot read the state is refused before anything happens', async () => {
    const g = makeHome('update-check');
    try {
      const port = await freePort();
      const env = { PORT: String(port), RPM2_TEST_HANDOVER: 'refuse-check' };
      assert.equal(g.cli(['start', APP, '--name', 'web'], { env }).code, 0);
      await waitServing(port);
      const r = g.cli(['update']);
      assert.equal(r.code, 1, r.out);
      assert.match(r.out, /cannot read this daemon's state.*nothing changed/);
      assert.equal(tookOver(g), 0);
    } finally {
      g.cleanup();
    }
  });

  test('a daemon of another version: every command says so and suggests rpm2 update', () => {
    const g = makeHome('update-version');
    try {
      assert.equal(g.cli(['ping'], { env: { RPM2_TEST_DAEMON_VERSION: '0.0.1' } }).code, 0);
      const r = g.cli(['jlist']);
      assert.equal(r.code, 0);
      assert.deepEqual(JSON.parse(r.stdout), []);
      assert.match(r.stderr, /In-memory RPM2 is out-of-date, do:\n>>>> \$ rpm2 update\nIn memory RPM2 version: 0\.0\.1/);
    } finally {
      g.cleanup();
    }
  });

  test('without a daemon there is nothing to update', () => {
    const g = makeHome('update-none');
    try {
      const r = g.cli(['update']);
      assert.equal(r.code, 0, r.out);
      assert.match(r.out, /nothing to update/);
      assert.equal(fs.existsSync(path.join(g.home, 'pm2.pid')), false);
    } finally {
      g.cleanup();
    }
  });

  test("the API's update() hands over in place", async () => {
    const g = makeHome('update-api');
    const prev = process.env.RPM2_HOME;
    process.env.RPM2_HOME = g.home;
    const rpm2 = new (require('../index.js').custom)();
    try {
      await rpm2.connect();
      await rpm2.start({ script: LINES, name: 'lines', env: { COUNT: '10' } });
      const pid = daemonPid(g);
      const out = await rpm2.update();
      assert.equal(out.success, true);
      assert.equal(out.pid, pid);
      const list = await rpm2.list();
      assert.equal(list.length, 1);
      assert.equal(tookOver(g), 1);
    } finally {
      rpm2.disconnect();
      process.env.RPM2_HOME = prev;
      g.cleanup();
    }
  });
});
