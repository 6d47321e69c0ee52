'use strict';
// The drain preload: Node workers drain themselves on reload, scale down,
// restart and stop, so keep-alive clients that never retry see no failure;
// apps of every shape still run with it; `drain: false` leaves it out.
// Real workers, real sockets, the real CLI; no timing thresholds.
const { test, describe, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { pathToFileURL } = require('node:url');
const https = require('node:https');
const { FIXTURES, makeHome, waitFor, waitServing, freePort, get, getJson, byName } = require('./helpers.js');
const { runLoad } = require('./load.js');

const EXPRESS = path.join(FIXTURES, 'drain-express.js');
const ARGV = path.join(FIXTURES, 'drain-argv.js');

/** Keep-alive load that never retries, until `n` more requests of each kind succeeded after `fn`. */
async function underLoad(port, fn) {
  const load = runLoad(port, { durationMs: 120_000, retry: false, keepAliveClients: 4 });
  await waitFor(() => load.stats.newconn.ok > 50 && load.stats.keepalive.ok > 200, { what: 'load running' });
  await fn();
  const mark = { n: load.stats.newconn.ok, k: load.stats.keepalive.ok };
  await waitFor(() => load.stats.newconn.ok > mark.n + 50 && load.stats.keepalive.ok > mark.k + 200, {
    what: 'requests after the change',
  });
  const stats = await load.stop();
  assert.equal(stats.keepalive.retriedOnReusedSocket, 0);
  assert.deepEqual(stats.newconn.errors, {}, `new-connection client: ${JSON.stringify(stats)}`);
  assert.deepEqual(stats.keepalive.errors, {}, `keep-alive clients: ${JSON.stringify(stats)}`);
  return stats;
}

/** The app's drain preload path in this home. */
const preloadOf = (h) => path.join(h.home, 'drain.cjs');

/** An ecosystem file for one app in the home. */
function ecosystem(h, name, app) {
  const file = path.join(h.home, `${name}.config.js`);
  fs.writeFileSync(file, `module.exports = { apps: [${JSON.stringify({ name, ...app })}] };\n`);
  return file;
}

describe('drain preload', () => {
  let h;
  before(() => {
    h = makeHome('drain');
  });
  after(() => h.cleanup());

  test('two reloads of an Express cluster app under keep-alive load: 0 failed requests, no retry', async () => {
    const port = await freePort();
    const r = h.cli(['start', EXPRESS, '-i', '2', '--name', 'ka'], { env: { PORT: String(port) } });
    assert.equal(r.code, 0, r.out);
    await waitServing(port);
    const first = byName(h.jlist(), 'ka').map((w) => w.pid);
    await underLoad(port, async () => {
      for (let i = 0; i < 2; i++) {
        const rr = await h.cliAsync(['reload', 'ka']);
        assert.equal(rr.code, 0, rr.out);
      }
    });
    const now = byName(await h.jlistAsync(), 'ka');
    assert.ok(now.every((w) => !first.includes(w.pid) && w.pm2_env.restart_time === 2));
    assert.ok(now.every((w) => w.pm2_env.drain === true));
    h.cli(['delete', 'ka']);
  });

  test('scale down and restart of a cluster app under keep-alive load: 0 failed requests', async () => {
    const port = await freePort();
    const r = h.cli(['start', EXPRESS, '-i', '4', '--name', 'ka2'], { env: { PORT: String(port) } });
    assert.equal(r.code, 0, r.out);
    await waitServing(port);
    await underLoad(port, async () => {
      for (const args of [['scale', 'ka2', '2'], ['restart', 'ka2']]) {
        const rr = await h.cliAsync(args);
        assert.equal(rr.code, 0, `${args.join(' ')}: ${rr.out}`);
      }
    });
    assert.equal(byName(await h.jlistAsync(), 'ka2').length, 2);
    h.cli(['delete', 'ka2']);
  });

  test('fork mode: restart answers the request in flight, and jlist shows it in flight', async () => {
    const port = await freePort();
    const r = h.cli(['start', EXPRESS, '--name', 'forky'], { env: { PORT: String(port) } });
    assert.equal(r.code, 0, r.out);
    await waitServing(port);
    const slow = get(port, '/slow?ms=1500', { timeout: 10_000 });
    await waitFor(async () => byName(await h.jlistAsync(), 'forky')[0].pm2_env.inflight_requests === 1, {
      what: 'the slow request in jlist',
    });
    const restarted = h.cliAsync(['restart', 'forky']);
    const answer = await slow;
    assert.equal(answer.status, 200);
    assert.equal(JSON.parse(answer.body).slow, true);
    assert.equal((await restarted).code, 0);
    await waitServing(port);
    h.cli(['delete', 'forky']);
  });

  test('node_args, NODE_OPTIONS, a user --require and --import still work beside the preload', async () => {
    const port = await freePort();
    const file = ecosystem(h, 'args', {
      script: ARGV,
      exec_mode: 'cluster',
      instances: 1,
      node_args: [
        '--max-old-space-size=200',
        '--require',
        path.join(FIXTURES, 'drain-user-preload.js'),
        '--import',
        pathToFileURL(path.join(FIXTURES, 'drain-user-import.mjs')).href,
      ],
      env: { PORT: String(port), NODE_OPTIONS: '--no-warnings' },
    });
    const r = h.cli(['start', file]);
    assert.equal(r.code, 0, r.out);
    await waitServing(port);
    const got = await getJson(port);
    assert.equal(got.execArgv[0], '--require');
    assert.equal(got.execArgv[1], preloadOf(h));
    assert.ok(got.execArgv.includes('--max-old-space-size=200'), JSON.stringify(got));
    assert.equal(got.heapLimitMb < 400, true, JSON.stringify(got));
    assert.equal(got.required, true);
    assert.equal(got.imported, true, JSON.stringify(got));
    assert.equal(got.nodeOptions, '--no-warnings');
    assert.deepEqual(got.serverModulesAtStart, []);
    assert.equal(got.closeName, 'rpm2Close');
    assert.equal(h.cli(['reload', 'args']).code, 0);
    await waitServing(port);
    h.cli(['delete', 'args']);
  });

  test('an ESM app runs and reloads with the preload', async () => {
    const port = await freePort();
    const r = h.cli(['start', path.join(FIXTURES, 'drain-esm.mjs'), '-i', '2', '--name', 'esm'], {
      env: { PORT: String(port) },
    });
    assert.equal(r.code, 0, r.out);
    await waitServing(port);
    const got = await getJson(port);
    assert.equal(got.esm, true);
    assert.ok(got.execArgv.includes(preloadOf(h)));
    assert.equal(h.cli(['reload', 'esm']).code, 0);
    assert.equal((await getJson(port)).esm, true);
    h.cli(['delete', 'esm']);
  });

  test("the preload reports the app's name as pm2's agent does (axm_options.module_name)", async () => {
    const port = await freePort();
    const file = ecosystem(h, 'named', { script: ARGV, env: { PORT: String(port) } });
    assert.equal(h.cli(['start', file]).code, 0);
    await waitServing(port);
    const optionsNow = () => byName(h.jlist(), 'named')[0].pm2_env.axm_options;
    const options = await waitFor(() => optionsNow().module_name && optionsNow(), { what: 'axm_options.module_name' });
    assert.deepEqual(options, { module_name: 'named' });
    h.cli(['delete', 'named']);
  });

  test('an app with no server reloads and stops with the preload', async () => {
    const r = h.cli(['start', path.join(FIXTURES, 'cluster-nolisten.js'), '-i', '1', '--name', 'worker']);
    assert.equal(r.code, 0, r.out);
    assert.ok(byName(h.jlist(), 'worker')[0].pm2_env.drain);
    assert.equal(h.cli(['reload', 'worker']).code, 0);
    assert.equal(h.cli(['stop', 'worker']).code, 0);
    assert.equal(byName(h.jlist(), 'worker')[0].pm2_env.status, 'stopped');
    h.cli(['delete', 'worker']);
  });

  test('an https cluster app serves and reloads with the preload', async () => {
    const port = await freePort();
    const file = ecosystem(h, 'tls', {
      script: ARGV,
      exec_mode: 'cluster',
      instances: 2,
      env: { PORT: String(port), HTTPS: '1' },
    });
    assert.equal(h.cli(['start', file]).code, 0);
    const fetchTls = () =>
      new Promise((resolve, reject) => {
        https
          .get({ host: '127.0.0.1', port, rejectUnauthorized: false, agent: false }, (res) => {
            let body = '';
            res.on('data', (c) => (body += c));
            res.on('end', () => resolve(JSON.parse(body)));
          })
          .on('error', reject);
      });
    const got = await waitFor(fetchTls, { what: 'https serving' });
    assert.ok(got.execArgv.includes(preloadOf(h)));
    // The preload loads no server module itself (they cost a worker's
    // start-up ~4 ms), yet the https server has its gentle close.
    assert.deepEqual(got.serverModulesAtStart, []);
    assert.equal(got.closeName, 'rpm2Close');
    assert.equal(h.cli(['reload', 'tls']).code, 0);
    assert.ok((await waitFor(fetchTls, { what: 'https after reload' })).pid > 0);
    h.cli(['delete', 'tls']);
  });

  test('drain: false runs the app without the preload', async () => {
    const port = await freePort();
    const file = ecosystem(h, 'plain', {
      script: ARGV,
      exec_mode: 'cluster',
      instances: 1,
      drain: false,
      env: { PORT: String(port) },
    });
    assert.equal(h.cli(['start', file]).code, 0);
    await waitServing(port);
    const got = await getJson(port);
    assert.deepEqual(got.execArgv, []);
    assert.notEqual(got.closeName, 'rpm2Close');
    const w = byName(h.jlist(), 'plain')[0];
    assert.equal(w.pm2_env.drain, false);
    // Only the preload reports the name as pm2's injected agent does.
    assert.deepEqual(w.pm2_env.axm_options, {});
    assert.match(h.cli(['describe', 'plain']).stdout, /drain\s*│\s*✘/);
    assert.equal(h.cli(['reload', 'plain']).code, 0);
    h.cli(['delete', 'plain']);
  });
});
