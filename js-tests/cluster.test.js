'use strict';
// Cluster mode: the daemon is the Node cluster primary of unmodified apps.
// Real node workers, real sockets, the real CLI; no timing thresholds.
const { test, describe, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const https = require('node:https');
const { ROOT, FIXTURES, makeHome, waitFor, waitServing, freePort, get, getJson, byName, alive, sleep } = require('./helpers.js');
const { runLoad } = require('./load.js');

const APP = path.join(FIXTURES, 'cluster-app.js');

/** pids answering on `port` over `n` fresh connections. */
async function pidsServing(port, n, opts) {
  const pids = new Set();
  for (let i = 0; i < n; i++) {
    const r = await get(port, '/', opts);
    assert.equal(r.status, 200);
    pids.add(JSON.parse(r.body).pid);
  }
  return pids;
}

describe('cluster mode', () => {
  let h;
  before(() => {
    h = makeHome('cluster');
  });
  after(() => h.cleanup());

  test('the seed: ecosystem.config.js starts nproc Express workers on one port, wait_ready honoured', async () => {
    const port = await freePort();
    const r = h.cli(['start', 'ecosystem.config.js'], { cwd: ROOT, env: { port: String(port) } });
    assert.equal(r.code, 0, r.out);
    const workers = byName(h.jlist(), 'app');
    assert.equal(workers.length, os.availableParallelism());
    for (const w of workers) {
      assert.equal(w.pm2_env.status, 'online');
      assert.equal(w.pm2_env.exec_mode, 'cluster_mode');
      assert.equal(w.pm2_env.wait_ready, true);
      assert.equal(w.pm2_env.listen_timeout, 10000);
    }
    assert.deepEqual(workers.map((w) => w.pm2_env.NODE_APP_INSTANCE), workers.map((_, i) => i));
    const res = await get(port);
    assert.equal(res.status, 200);
    assert.equal(res.body, 'Hello world');
    const del = h.cli(['delete', 'app']);
    assert.equal(del.code, 0, del.out);
  });

  test('connections are spread over every worker (round robin)', async () => {
    const port = await freePort();
    const r = h.cli(['start', APP, '-i', '3', '--name', 'rr'], { env: { PORT: String(port) } });
    assert.equal(r.code, 0, r.out);
    await waitServing(port);
    const workers = byName(h.jlist(), 'rr');
    assert.equal(workers.length, 3);
    const served = await pidsServing(port, 12);
    assert.deepEqual([...served].sort(), workers.map((w) => w.pid).sort());
    h.cli(['delete', 'rr']);
  });

  test('sticky: each client IP always reaches the same worker', async () => {
    const port = await freePort();
    const r = h.cli(['start', APP, '-i', '3', '--name', 'sticky', '--sticky'], { env: { PORT: String(port) } });
    assert.equal(r.code, 0, r.out);
    // Every worker listening (each has served some client) before we judge.
    const all = byName(h.jlist(), 'sticky').map((w) => w.pid);
    await waitFor(async () => {
      const pids = new Set();
      for (let ip = 1; ip <= 40; ip++) pids.add(...(await pidsServing(port, 1, { localAddress: `127.0.0.${ip}` })));
      return all.every((p) => pids.has(p));
    }, { what: 'every sticky worker serving' });
    const seen = new Map();
    for (let ip = 1; ip <= 12; ip++) {
      const localAddress = `127.0.0.${ip}`;
      const pids = await pidsServing(port, 6, { localAddress });
      assert.equal(pids.size, 1, `client ${localAddress} reached ${[...pids]}`);
      seen.set(localAddress, [...pids][0]);
    }
    // Twelve clients over three workers: more than one worker is used.
    assert.ok(new Set(seen.values()).size > 1, 'every client hashed to one worker');
    h.cli(['delete', 'sticky']);
  });

  test('reload of an ecosystem file applies its new env and instance count', async () => {
    const port = await freePort();
    const eco = (greeting, instances) =>
      `module.exports = { apps: [{ name: 'eco', script: ${JSON.stringify(APP)}, exec_mode: 'cluster', instances: ${instances}, env: { PORT: ${port}, GREETING: '${greeting}' } }] };\n`;
    const file = path.join(h.home, 'eco.config.js');
    fs.writeFileSync(file, eco('first', 3));
    assert.equal(h.cli(['start', file]).code, 0);
    await waitServing(port);
    assert.equal(byName(h.jlist(), 'eco').length, 3);
    fs.writeFileSync(file, eco('second', 2));
    const r = h.cli(['reload', file]);
    assert.equal(r.code, 0, r.out);
    const workers = byName(h.jlist(), 'eco');
    assert.equal(workers.length, 2);
    for (let i = 0; i < 6; i++) assert.equal((await getJson(port)).greeting, 'second');
    h.cli(['delete', 'eco']);
  });

  test('wait_ready: a worker is launching until it sends ready, and reload waits for it', async () => {
    const port = await freePort();
    const readyFile = path.join(h.home, 'ready-1');
    const spawnCli = (args) => h.cliAsync(args, { env: { PORT: String(port), READY_FILE: readyFile } });
    const started = spawnCli(['start', APP, '-i', '1', '--name', 'slow', '--wait-ready', '--listen-timeout', '60000']);
    const launching = await waitFor(() => {
      const [w] = byName(h.jlist(), 'slow');
      return w && w.pid && w.pm2_env.status === 'launching' && w;
    }, { what: 'a launching worker' });
    fs.writeFileSync(readyFile, '');
    assert.equal((await started).code, 0);
    const [w] = byName(h.jlist(), 'slow');
    assert.equal(w.pid, launching.pid);
    assert.equal(w.pm2_env.status, 'online');

    // Reload with a successor that is not ready yet: the old worker serves meanwhile.
    fs.rmSync(readyFile);
    const reloaded = spawnCli(['reload', 'slow']);
    await waitFor(() => fs.readdirSync(path.join(h.home, 'pids')).length > 0 && byName(h.jlist(), 'slow').length === 1);
    for (let i = 0; i < 5; i++) {
      const res = await getJson(port);
      assert.equal(res.pid, w.pid, 'the old worker keeps serving until its successor is ready');
    }
    assert.equal(alive(w.pid), true);
    fs.writeFileSync(readyFile, '');
    assert.equal((await reloaded).code, 0);
    const [after] = byName(h.jlist(), 'slow');
    assert.notEqual(after.pid, w.pid);
    assert.equal(after.pm2_env.restart_time, 1);
    await waitFor(() => !alive(w.pid), { what: 'old worker gone' });
    assert.equal((await getJson(port)).pid, after.pid);
    h.cli(['delete', 'slow']);
  });
});

describe('cluster mode: readiness edge cases', () => {
  let h;
  before(() => {
    h = makeHome('cluster-edge');
  });
  after(() => h.cleanup());

  test('listen_timeout bounds an app that never sends ready', async () => {
    const port = await freePort();
    const never = path.join(h.home, 'never');
    const r = h.cli(['start', APP, '-i', '2', '--name', 'never', '--wait-ready', '--listen-timeout', '300'], {
      env: { PORT: String(port), READY_FILE: never },
    });
    assert.equal(r.code, 0, r.out);
    for (const w of byName(h.jlist(), 'never')) assert.equal(w.pm2_env.status, 'online');
    const daemonLog = fs.readFileSync(path.join(h.home, 'pm2.log'), 'utf8');
    assert.match(daemonLog, /listen_timeout reached/);
    const rl = h.cli(['reload', 'never']);
    assert.equal(rl.code, 0, rl.out);
    assert.equal((await get(port)).status, 200);
    h.cli(['delete', 'never']);
  });

  test('an app that never listens starts, reloads and stops', async () => {
    const r = h.cli(['start', path.join(FIXTURES, 'cluster-nolisten.js'), '-i', '2', '--name', 'quiet', '--listen-timeout', '300']);
    assert.equal(r.code, 0, r.out);
    const before = byName(h.jlist(), 'quiet');
    assert.equal(before.length, 2);
    assert.equal(h.cli(['reload', 'quiet']).code, 0);
    const after = byName(h.jlist(), 'quiet');
    assert.equal(after.every((w, i) => w.pid !== before[i].pid && w.pm2_env.status === 'online'), true);
    assert.equal(h.cli(['stop', 'quiet']).code, 0);
    for (const w of byName(h.jlist(), 'quiet')) assert.equal(w.pm2_env.status, 'stopped');
    h.cli(['delete', 'quiet']);
  });

  test('an app listening on two ports serves both', async () => {
    const [p1, p2] = [await freePort(), await freePort()];
    const r = h.cli(['start', APP, '-i', '2', '--name', 'two'], { env: { PORT: String(p1), PORT2: String(p2) } });
    assert.equal(r.code, 0, r.out);
    await waitServing(p1);
    await waitServing(p2);
    const pids = byName(h.jlist(), 'two').map((w) => w.pid).sort();
    assert.deepEqual([...(await pidsServing(p1, 6))].sort(), pids);
    assert.deepEqual([...(await pidsServing(p2, 6))].sort(), pids);
    h.cli(['delete', 'two']);
  });

  test('https: the TLS data of queryServer is echoed back', async () => {
    const port = await freePort();
    const r = h.cli(['start', path.join(FIXTURES, 'cluster-https.js'), '-i', '2', '--name', 'tls'], {
      env: { PORT: String(port) },
    });
    assert.equal(r.code, 0, r.out);
    const body = await waitFor(() => new Promise((resolve, reject) => {
      https
        .get({ host: '127.0.0.1', port, rejectUnauthorized: false, agent: false }, (res) => {
          let b = '';
          res.on('data', (c) => (b += c));
          res.on('end', () => resolve(b));
        })
        .on('error', reject);
    }), { what: 'https serving' });
    assert.equal(JSON.parse(body).tls, true);
    for (const w of byName(h.jlist(), 'tls')) assert.equal(w.pm2_env.restart_time, 0, 'a worker crashed');
    h.cli(['delete', 'tls']);
  });

  test('listen(0): every worker gets the same port', async () => {
    const dir = fs.mkdtempSync(path.join(h.home, 'ports-'));
    const r = h.cli(['start', path.join(FIXTURES, 'cluster-listen0.js'), '-i', '2', '--name', 'zero'], {
      env: { PORT_DIR: dir },
    });
    assert.equal(r.code, 0, r.out);
    const ports = await waitFor(() => {
      const files = fs.readdirSync(dir);
      const ports = files.map((f) => fs.readFileSync(path.join(dir, f), 'utf8'));
      return files.length === 2 && ports.every((p) => p.length > 0) && ports;
    }, { what: 'both workers listening' });
    assert.equal(ports[0], ports[1]);
    const pids = byName(h.jlist(), 'zero').map((w) => w.pid).sort();
    assert.deepEqual([...(await pidsServing(Number(ports[0]), 6))].sort(), pids);
    h.cli(['delete', 'zero']);
  });
});

describe('cluster mode under load', () => {
  let h;
  before(() => {
    h = makeHome('cluster-load');
  });
  after(() => h.cleanup());

  test('a port in use: start says why the workers errored and exits non-zero; others keep serving', async () => {
    const [busy, okPort] = [await freePort(), await freePort()];
    assert.equal(h.cli(['start', APP, '-i', '1', '--name', 'bystander'], { env: { PORT: String(okPort) } }).code, 0);
    await waitServing(okPort);
    const holder = require('node:net').createServer();
    await new Promise((resolve) => holder.listen(busy, resolve));
    try {
      const r = h.cli(['start', APP, '-i', '2', '--name', 'clash', '--wait-ready'], { env: { PORT: String(busy) } });
      assert.notEqual(r.code, 0, r.out);
      assert.match(r.stderr, /\[clash\]\(\d+\) errored: .*EADDRINUSE/);
      const clash = byName(h.jlist(), 'clash');
      assert.equal(clash.length, 2);
      assert.equal(clash.every((w) => w.pm2_env.status === 'errored'), true);
      assert.equal((await get(okPort)).status, 200);
    } finally {
      holder.close();
      h.cli(['delete', 'clash']);
      h.cli(['delete', 'bystander']);
    }
  });

  // While load runs in this process, the CLI is only called asynchronously.
  test('kill -9 of a worker under load: it comes back and the others keep serving', async () => {
    const port = await freePort();
    assert.equal(h.cli(['start', APP, '-i', '2', '--name', 'crashy'], { env: { PORT: String(port) } }).code, 0);
    await waitServing(port);
    const [victim, other] = byName(h.jlist(), 'crashy');
    const load = runLoad(port, { durationMs: 60_000 });
    await sleep(200);
    process.kill(victim.pid, 'SIGKILL');
    const back = await waitFor(async () => {
      const w = byName(await h.jlistAsync(), 'crashy')[0];
      return w.pid !== victim.pid && w.pid !== 0 && w.pm2_env.status === 'online' && w;
    }, { what: 'a new worker 0' });
    assert.equal(back.pm2_env.restart_time, 1);
    await waitFor(async () => (await pidsServing(port, 4)).has(back.pid), { what: 'the new worker serving' });
    const stats = await load.stop();
    assert.ok(stats.newconn.ok > 0 && stats.keepalive.ok > 0);
    // The survivor never stopped: it served before, during and after.
    assert.equal(alive(other.pid), true);
    assert.equal(byName(await h.jlistAsync(), 'crashy')[1].pid, other.pid);
    h.cli(['delete', 'crashy']);
  });

  test('two reloads under continuous load: zero failed requests', async () => {
    const port = await freePort();
    assert.equal(h.cli(['start', APP, '-i', '2', '--name', 'zd'], { env: { PORT: String(port) } }).code, 0);
    await waitServing(port);
    const first = byName(h.jlist(), 'zd').map((w) => w.pid);
    const load = runLoad(port, { durationMs: 120_000 });
    await waitFor(() => load.stats.newconn.ok > 50 && load.stats.keepalive.ok > 50, { what: 'load running' });
    for (let i = 0; i < 2; i++) {
      const r = await h.cliAsync(['reload', 'zd']);
      assert.equal(r.code, 0, r.out);
    }
    const mark = { n: load.stats.newconn.ok, k: load.stats.keepalive.ok };
    await waitFor(() => load.stats.newconn.ok > mark.n + 50 && load.stats.keepalive.ok > mark.k + 50, {
      what: 'requests after the reloads',
    });
    const stats = await load.stop();
    const after = byName(h.jlist(), 'zd');
    assert.equal(after.every((w) => !first.includes(w.pid) && w.pm2_env.restart_time === 2), true);
    assert.deepEqual(stats.newconn.errors, {}, 'new-connection client saw failures');
    assert.deepEqual(stats.keepalive.errors, {}, 'keep-alive client saw failures');
    assert.equal(stats.newconn.failed + stats.keepalive.failed, 0);
    h.cli(['delete', 'zd']);
  });

  test('restart and scale under load never close the port', async () => {
    const port = await freePort();
    assert.equal(h.cli(['start', APP, '-i', '2', '--name', 'elastic'], { env: { PORT: String(port) } }).code, 0);
    await waitServing(port);
    const load = runLoad(port, { durationMs: 120_000 });
    await waitFor(() => load.stats.newconn.ok > 50, { what: 'load running' });
    for (const args of [['scale', 'elastic', '4'], ['restart', 'elastic'], ['scale', 'elastic', '1'], ['scale', 'elastic', '+1']]) {
      const r = await h.cliAsync(args);
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.out}`);
    }
    const workers = byName(await h.jlistAsync(), 'elastic');
    assert.equal(workers.length, 2);
    // Both serve: the scaled-up worker answered its first connection already.
    await waitFor(async () => (await pidsServing(port, 6)).size === 2, { what: 'both workers serving' });
    const stats = await load.stop();
    // A closed port would show as ECONNREFUSED on the new-connection client.
    assert.deepEqual(stats.newconn.errors, {}, JSON.stringify(stats));
    assert.equal(stats.newconn.failed + stats.keepalive.failed, 0, JSON.stringify(stats));
    h.cli(['delete', 'elastic']);
  });

  test('a successor that crashes during reload leaves the old worker serving', async () => {
    const port = await freePort();
    const poison = path.join(h.home, 'poison');
    assert.equal(
      // A long listen_timeout: a successor slow to start under a busy machine
      // must not count as ready before its crash is seen.
      h.cli(['start', APP, '-i', '2', '--name', 'bad', '--listen-timeout', '60000'], {
        env: { PORT: String(port), CRASH_IF_EXISTS: poison },
      }).code,
      0,
    );
    // `start` returns once both are spawned; the poison must come after both
    // ran their first line, or the second worker crashes on it at start.
    await waitFor(async () => (await pidsServing(port, 6)).size === 2, { what: 'both workers serving' });
    const before = byName(h.jlist(), 'bad').map((w) => w.pid);
    fs.writeFileSync(poison, '');
    const load = runLoad(port, { durationMs: 60_000 });
    const r = await h.cliAsync(['reload', 'bad']);
    assert.notEqual(r.code, 0);
    assert.match(r.out, /old process keeps serving/);
    const stats = await load.stop();
    assert.equal(stats.newconn.failed + stats.keepalive.failed, 0, JSON.stringify(stats));
    const after = byName(h.jlist(), 'bad');
    assert.deepEqual(after.map((w) => w.pid), before);
    assert.equal(after.every((w) => w.pm2_env.status === 'online'), true);
    fs.rmSync(poison);
    h.cli(['delete', 'bad']);
  });
});
