'use strict';
// rpm2-runtime (pm2-runtime): as PID 1 of a fresh PID namespace it reaps
// orphans, serves `rpm2 list` and require('rpm2'), prints pure JSON with
// --json, drains under HTTP load on SIGTERM with 0 failed requests and
// exits 0; by itself it exits once every app ended, with 0 or the first
// failing app's code. The namespace needs root (`unshare --pid --fork
// --mount-proc --kill-child`); where that is not permitted the PID 1 test
// is skipped with a message.
const { test, describe, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { ROOT, FIXTURES, RPM2, makeHome, waitFor, waitServing, freePort, byName } = require('./helpers.js');
const { runLoad } = require('./load.js');

/** Start `argv` (argv[0] the program); collects output, resolves `exited` with its code. */
function run(argv, env) {
  const child = spawn(argv[0], argv.slice(1), { env, cwd: FIXTURES });
  const r = { child, stdout: '', stderr: '' };
  child.stdout.on('data', (c) => (r.stdout += c));
  child.stderr.on('data', (c) => (r.stderr += c));
  r.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal)));
  return r;
}

function writeConfig(dir, name, apps) {
  const file = path.join(dir, `${name}.config.js`);
  fs.writeFileSync(file, `module.exports = { apps: ${JSON.stringify(apps)} };\n`);
  return file;
}

/** The host pid of the process unshare forked (PID 1 inside). */
function childOf(pid) {
  for (const entry of fs.readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) return Number(entry);
    } catch {
      // gone meanwhile
    }
  }
  throw new Error(`no child of ${pid}`);
}

const unshareWorks = () =>
  spawnSync('unshare', ['--pid', '--fork', '--mount-proc', '--kill-child', 'true'], { stdio: 'ignore' }).status === 0;

describe('rpm2-runtime', () => {
  let h;
  let runtime;
  before(() => {
    h = makeHome('runtime');
    // The executable picks the runtime by its name.
    runtime = path.join(h.home, 'rpm2-runtime');
    fs.symlinkSync(RPM2, runtime);
  });
  after(() => h.cleanup());

  test('as PID 1: reaps an orphan, answers rpm2 list, --json only JSON, SIGTERM under load: 0 failed, exit 0', async (t) => {
    if (!unshareWorks()) {
      t.skip('unshare --pid --fork --mount-proc is not permitted here (needs root)');
      return;
    }
    const port = await freePort();
    const config = writeConfig(h.home, 'pid1', [
      { name: 'web', script: path.join(FIXTURES, 'drain-express.js'), instances: 2, env: { PORT: String(port) } },
      { name: 'orphan', script: path.join(FIXTURES, 'runtime-orphan.js') },
    ]);
    const r = run(['unshare', '--pid', '--fork', '--mount-proc', '--kill-child', runtime, 'start', config, '--json'], h.env);
    try {
      await waitFor(() => /orphan \d+ reaped/.test(r.stdout), { what: 'the orphan reaped' });
      await waitServing(port);
      const list = (await h.jlistAsync()).filter((p) => p.pm2_env.status === 'online');
      assert.equal(byName(list, 'web').length, 2);
      assert.equal(byName(list, 'orphan').length, 1);
      // require('rpm2') reaches it too, and starts no daemon of its own.
      const api = spawnSync(process.execPath, [path.join(FIXTURES, 'api-client.js')], { env: h.env, encoding: 'utf8' });
      assert.equal(api.status, 0, api.stderr);
      assert.deepEqual({ ...JSON.parse(api.stdout), daemon_pid: 0 }, { daemon_pid: 0, new: false, count: 3 });

      const load = runLoad(port, { durationMs: 60_000, retry: false, keepAliveClients: 2, path: '/slow?ms=300' });
      await waitFor(() => load.stats.newconn.ok >= 2 && load.stats.keepalive.ok >= 4, { what: 'load running' });
      const okBefore = load.stats.newconn.ok + load.stats.keepalive.ok;
      process.kill(childOf(r.child.pid), 'SIGTERM');
      // No request starts after the signal; those in flight must succeed.
      const stats = await load.stop();
      assert.deepEqual(stats.newconn.errors, {}, JSON.stringify(stats));
      assert.deepEqual(stats.keepalive.errors, {}, JSON.stringify(stats));
      assert.ok(stats.newconn.ok + stats.keepalive.ok > okBefore, 'requests in flight at SIGTERM completed');
      assert.equal(await r.exited, 0, r.stderr);
    } finally {
      r.child.kill('SIGKILL');
    }
    const lines = r.stdout.split('\n').filter(Boolean);
    for (const line of lines) {
      const o = JSON.parse(line);
      assert.deepEqual(Object.keys(o).sort(), ['app', 'id', 'message', 'stream', 'time']);
    }
    assert.ok(lines.some((l) => JSON.parse(l).app === 'orphan'));
  });

  test('exits by itself once every app ended: 0 when clean, else the first failing code; npm launcher', async () => {
    const exitApp = path.join(FIXTURES, 'runtime-exit.js');
    const launcher = path.join(ROOT, 'bin', 'rpm2-runtime.js');
    const env = { ...h.env, RPM2_BINARY: RPM2 };
    const clean = writeConfig(h.home, 'clean', [
      { name: 'zero', script: exitApp, autorestart: false, env: { EXIT_CODE: '0' } },
    ]);
    const r0 = run([process.execPath, launcher, 'start', clean, '--raw'], env);
    assert.equal(await r0.exited, 0, r0.stderr);
    assert.match(r0.stdout, /^exiting with 0$/m);

    const failing = writeConfig(h.home, 'failing', [
      { name: 'zero', script: exitApp, autorestart: false, env: { EXIT_CODE: '0' } },
      { name: 'three', script: exitApp, autorestart: false, env: { EXIT_CODE: '3' } },
    ]);
    const r3 = run([runtime, failing], h.env);
    assert.equal(await r3.exited, 3, r3.stderr);
    assert.match(r3.stdout, /^\d\|three\s+\| exiting with 3$/m);
    assert.ok(!fs.existsSync(path.join(h.home, 'logs', 'three-out.log')), 'no log file unless asked');
  });
});
