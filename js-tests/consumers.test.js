'use strict';
// Real tools written for pm2, from npm (devDependencies), run unchanged with
// `require('pm2')` resolved to rpm2: each runs from a temporary folder whose
// node_modules/pm2 is a link to this package, next to a copy of the tool and
// links to its other dependencies.
const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { ROOT, FIXTURES, makeHome, waitFor, freePort, get } = require('./helpers.js');

const cleanups = [];
after(() => {
  for (const f of cleanups.reverse()) f();
});

/**
 * A folder where `require('<pkg>')` is the npm package `pkg` and its
 * `require('pm2')` is rpm2. Returns the folder and the package's copy.
 */
function consumerDir(pkg) {
  const src = path.dirname(require.resolve(`${pkg}/package.json`, { paths: [ROOT] }));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `rpm2-consumer-${pkg}-`));
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  const nm = path.join(dir, 'node_modules');
  fs.mkdirSync(nm);
  fs.symlinkSync(ROOT, path.join(nm, 'pm2'), 'dir');
  const meta = JSON.parse(fs.readFileSync(path.join(src, 'package.json'), 'utf8'));
  for (const dep of Object.keys(meta.dependencies || {})) {
    if (dep === 'pm2') continue;
    const depDir = path.dirname(require.resolve(`${dep}/package.json`, { paths: [src] }));
    fs.mkdirSync(path.dirname(path.join(nm, dep)), { recursive: true });
    fs.symlinkSync(depDir, path.join(nm, dep), 'dir');
  }
  const copy = path.join(nm, pkg);
  fs.cpSync(src, copy, { recursive: true, filter: (f) => !path.relative(src, f).split(path.sep).includes('node_modules') });
  // The copy must see rpm2, not a pm2 of its own.
  const seen = require.resolve('pm2', { paths: [copy] });
  assert.equal(fs.realpathSync(seen), fs.realpathSync(path.join(ROOT, 'index.js')));
  return { dir, copy };
}

/** Start a Node child; it is killed at the end of the file. */
function node(args, opts) {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  let out = '';
  child.stdout.on('data', (c) => (out += c));
  child.stderr.on('data', (c) => (out += c));
  child.output = () => out;
  cleanups.push(() => child.exitCode === null && child.signalCode === null && child.kill('SIGKILL'));
  return child;
}

// pm2-prometheus-exporter 0.1.1 (exporter.js): on each GET /metrics it calls
// `pm2.list([], cb)` without connect(), and reads per process `name`,
// `monit.cpu/memory`, `pm2_env.status`, `NODE_APP_INSTANCE`, `pm_uptime`,
// `instances`, `unstable_restarts` and `axm_monitor['Loop delay']`.
test('pm2-prometheus-exporter lists the workers of an rpm2 app as up', { timeout: 120_000 }, async () => {
  const home = makeHome('exporter');
  cleanups.push(home.cleanup);
  const r = home.cli(['start', path.join(FIXTURES, 'shapes-app.js'), '-i', '2', '--name', 'exported']);
  assert.equal(r.code, 0, r.out);

  const { dir, copy } = consumerDir('pm2-prometheus-exporter');
  const port = await freePort();
  // It takes its port from process.argv[1], which `node -e` leaves to us.
  const exporter = node(['-e', `require(${JSON.stringify(path.join(copy, 'exporter.js'))})`, String(port)], {
    cwd: dir,
    env: home.env,
  });
  // The watchdog (30 s) catches the hang this test was written for: a
  // /metrics request whose list() never called back.
  const body = await waitFor(
    async () => {
      if (exporter.exitCode !== null) return new Error(`the exporter exited: ${exporter.output()}`);
      const res = await get(port, '/metrics', { timeout: 30_000 });
      return res.status === 200 && res.body.includes('pm2_up{') ? res.body : null;
    },
    { what: "the exporter's /metrics" },
  );
  if (body instanceof Error) throw body;
  for (const instance of ['0', '1']) {
    assert.match(body, new RegExp(`^pm2_up\\{name="exported",instance="${instance}"\\} 1$`, 'm'), body);
    assert.match(body, new RegExp(`^pm2_instances\\{name="exported",instance="${instance}"\\} 2$`, 'm'), body);
  }
  // Stopped workers are listed as down.
  assert.equal(home.cli(['stop', 'exported']).code, 0);
  const stopped = (await get(port, '/metrics', { timeout: 30_000 })).body;
  assert.match(stopped, /^pm2_up\{name="exported",instance="0"\} 0$/m, stopped);
});

// pm2-promise 2.0.1 wraps every lowercase method of `require('pm2').custom`'s
// prototype so that a call without a callback gets one appended and returns
// a promise, and exports `new API`. So this runs rpm2's class export and the
// callback forms connect(cb), start(app, cb), list(cb), describe(name, cb),
// launchBus(cb), restart/stop/delete(name, cb), a refused call and
// disconnect(cb), after which the client must exit by itself.
test('pm2-promise drives rpm2 through its promise wrapper', { timeout: 120_000 }, async () => {
  const home = makeHome('promise');
  cleanups.push(home.cleanup);
  const { dir } = consumerDir('pm2-promise');
  const script = path.join(dir, 'client.js');
  fs.writeFileSync(
    script,
    `const pm2 = require('pm2-promise');
(async () => {
  const out = {};
  out.connect = Object.keys(await pm2.connect()).sort();
  const started = await pm2.start({ script: ${JSON.stringify(path.join(FIXTURES, 'shapes-app.js'))}, name: 'promised', instances: 2, exec_mode: 'cluster' });
  out.started = started.map((p) => p.name + ':' + p.pm_id);
  const bus = await pm2.launchBus();
  const events = [];
  bus.on('process:event', (p) => events.push(p.event + ':' + p.process.name));
  out.list = (await pm2.list()).map((p) => p.name + ':' + p.pm2_env.status);
  out.describe = (await pm2.describe('promised')).length;
  out.restart = (await pm2.restart('promised')).map((p) => p.name);
  out.stop = (await pm2.stop('promised')).map((p) => p.status);
  try {
    await pm2.stop('no-such-app');
    out.refused = 'no error';
  } catch (e) {
    out.refused = e.code;
  }
  out.deleted = (await pm2.delete('promised')).length;
  out.after = (await pm2.list()).length;
  out.events = [...new Set(events)].sort();
  await pm2.disconnect();
  console.log(JSON.stringify(out));
})();
`,
  );
  const client = node([script], { cwd: dir, env: home.env });
  const code = await new Promise((resolve) => client.on('exit', (c, s) => resolve(c ?? s)));
  assert.equal(code, 0, client.output());
  const out = JSON.parse(client.output().trim().split('\n').pop());
  assert.deepEqual(out.connect.filter((k) => ['daemon_mode', 'new_pm2_instance', 'pm2_home'].includes(k)).length, 3);
  assert.deepEqual(out.started.sort(), ['promised:0', 'promised:1']);
  assert.deepEqual(out.list, ['promised:online', 'promised:online']);
  assert.equal(out.describe, 2);
  assert.deepEqual(out.restart, ['promised', 'promised']);
  assert.deepEqual(out.stop, ['stopped', 'stopped']);
  assert.equal(out.refused, 'PROCESS_NOT_FOUND');
  assert.equal(out.deleted, 2);
  assert.equal(out.after, 0);
  assert.ok(out.events.includes('restart:promised') || out.events.includes('online:promised'), out.events.join());
});
