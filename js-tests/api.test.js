'use strict';
// require('rpm2') end to end against a real daemon with cluster workers:
// list shapes, the bus both ways, reload/scale/delete, callbacks and
// promises, error codes, disconnect letting Node exit, noDaemon, killDaemon.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { FIXTURES, RPM2, waitFor, freePort, get, alive } = require('./helpers.js');

// The API reads RPM2_HOME when it first connects.
const HOME = fs.mkdtempSync(path.join(os.tmpdir(), 'rpm2-api-'));
process.env.RPM2_HOME = HOME;
const rpm2 = require('..');

const ECHO = path.join(FIXTURES, 'api-echo.js');
const packets = [];
let bus;
let port;
let daemonPid;
const otherHomes = [];

function seen(pred) {
  return packets.find(pred);
}

/** Run a fixture client in a child Node; resolves {code, signal, stdout, stderr}. */
function runClient(args, env, timeout = 30_000) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(FIXTURES, 'api-client.js'), ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`client did not exit by itself within ${timeout} ms: ${stdout}${stderr}`));
    }, timeout);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

before(async () => {
  port = await freePort();
});

after(async () => {
  try {
    await rpm2.killDaemon();
  } catch {
    // already gone
  }
  await rpm2.disconnect();
  for (const home of [HOME, ...otherHomes]) {
    spawnSync(RPM2, ['kill'], { env: { ...process.env, RPM2_HOME: home }, timeout: 30_000 });
    fs.rmSync(home, { recursive: true, force: true });
  }
});

test('connect() starts the daemon and reports pm2-shaped info', async () => {
  const info = await rpm2.connect();
  assert.equal(info.new_pm2_instance, true);
  assert.equal(info.daemon_mode, true);
  assert.equal(info.pm2_home, HOME);
  assert.ok(info.daemon_pid > 0 && alive(info.daemon_pid));
  daemonPid = info.daemon_pid;
  // A second connect finds the same daemon.
  const again = await rpm2.connect();
  assert.equal(again.new_pm2_instance, false);
  assert.equal(again.daemon_pid, daemonPid);
  bus = await rpm2.launchBus();
  bus.on('*', (type, packet) => packets.push({ type, ...packet }));
});

test('start(appObject) in cluster mode; list() entries are jlist-shaped', { timeout: 60_000 }, async () => {
  const started = await rpm2.start({
    name: 'echo',
    script: ECHO,
    instances: 2,
    exec_mode: 'cluster',
    wait_ready: true,
    env: { PORT: String(port) },
  });
  assert.equal(started.length, 2);
  for (const p of started) {
    assert.equal(p.name, 'echo');
    assert.equal(p.status, p.pm2_env.status);
    assert.equal(typeof p.restart_time, 'number');
    assert.equal(p.namespace, 'default');
  }
  const list = await rpm2.list();
  assert.deepEqual(
    list.map((p) => p.pm_id).sort(),
    [0, 1],
  );
  for (const p of list) {
    assert.equal(p.name, 'echo');
    assert.ok(p.pid > 0 && alive(p.pid));
    assert.equal(typeof p.monit.memory, 'number');
    assert.equal(typeof p.monit.cpu, 'number');
    assert.equal(p.pm2_env.status, 'online');
    assert.equal(p.pm2_env.exec_mode, 'cluster_mode');
    assert.equal(p.pm2_env.restart_time, 0);
    assert.equal(p.pm2_env.pm_id, p.pm_id);
    assert.equal(p.pm2_env.env.PORT, String(port));
  }
  const res = await waitFor(() => get(port), { what: 'the cluster app to serve' });
  assert.match(res.body, /^hello from [01]/);
});

test('callbacks work like promises', async () => {
  const list = await new Promise((resolve, reject) =>
    rpm2.list((err, l) => (err ? reject(err) : resolve(l))),
  );
  assert.equal(list.length, 2);
  const described = await new Promise((resolve, reject) =>
    rpm2.describe(1, (err, d) => (err ? reject(err) : resolve(d))),
  );
  assert.equal(described.length, 1);
  assert.equal(described[0].pm_id, 1);
  const byName = await rpm2.describe('echo');
  assert.equal(byName.length, 2);
  // With a callback, nothing is returned (no stray promise to reject).
  assert.equal(rpm2.ping(() => {}), undefined);
  assert.deepEqual(await rpm2.ping(), { msg: 'pong' });
});

test('the bus carries logs, process events and raw messages', { timeout: 30_000 }, async () => {
  const out = await waitFor(() => seen((p) => p.type === 'log:out' && /api-echo \d listening/.test(p.data)), {
    what: 'log:out',
  });
  assert.deepEqual(Object.keys(out.process).sort(), ['name', 'namespace', 'pm_id', 'rev']);
  assert.equal(out.process.name, 'echo');
  assert.equal(typeof out.at, 'number');
  await waitFor(() => seen((p) => p.type === 'log:err' && /stderr line/.test(p.data)), { what: 'log:err' });
  await waitFor(() => seen((p) => p.type === 'process:event' && p.event === 'online'), { what: 'online event' });
  const ready = await waitFor(() => seen((p) => p.type === 'process:msg' && p.raw === 'ready'), {
    what: "'ready' as a raw process:msg",
  });
  assert.equal(ready.data, undefined);
});

test('sendDataToProcessId reaches the worker; its process.send reply reaches the bus', { timeout: 30_000 }, async () => {
  const replies = [];
  bus.on('process:msg', (p) => p.data && p.data.topic === 'ping-topic' && replies.push(p));
  const res = await rpm2.sendDataToProcessId(1, { type: 'process:msg', topic: 'ping-topic', data: { n: 42 } });
  assert.equal(res.success, true);
  const reply = await waitFor(() => replies[0], { what: 'the echo on the bus' });
  assert.deepEqual(reply.data.echo, { n: 42 });
  assert.equal(reply.process.pm_id, 1);
  assert.equal(reply.process.name, 'echo');
  // The (packet, cb) form, with a callback.
  await new Promise((resolve, reject) =>
    rpm2.sendDataToProcessId({ id: 0, topic: 'ping-topic', data: 'again' }, (err) => (err ? reject(err) : resolve())),
  );
  await waitFor(() => replies.find((p) => p.process.pm_id === 0 && p.data.echo === 'again'), {
    what: 'the second echo',
  });
  // A wildcard listener gets the type first.
  assert.ok(packets.some((p) => p.type === 'process:msg' && p.data && p.data.echo === 'again'));
});

test('errors carry stable codes', async () => {
  // As pm2: describe of an unknown name is an empty list, not an error.
  assert.deepEqual(await rpm2.describe('no-such-app'), []);
  await assert.rejects(rpm2.stop('no-such-app'), { code: 'PROCESS_NOT_FOUND' });
  await assert.rejects(rpm2.restart(99), { code: 'PROCESS_NOT_FOUND' });
  const cbErr = await new Promise((resolve) => rpm2.delete('no-such-app', (err) => resolve(err)));
  assert.equal(cbErr.code, 'PROCESS_NOT_FOUND');
  await assert.rejects(rpm2.sendDataToProcessId(0, { data: 1 }), {
    code: 'BAD_REQUEST',
    message: 'ID, DATA or TOPIC field is missing',
  });
  await assert.rejects(rpm2.start(path.join(FIXTURES, 'api-missing.js')), { code: 'SCRIPT_NOT_FOUND' });
  await assert.rejects(rpm2.start(path.join(FIXTURES, 'api-missing.config.js')), { code: 'CONFIG_NOT_FOUND' });
  await assert.rejects(rpm2.start({ script: ECHO, name: 'bad', max_restarts: 'many' }), {
    code: 'INVALID_OPTION',
  });
  await assert.rejects(rpm2.start('no-such-app-name'), { code: 'SCRIPT_NOT_FOUND' });
  // Nothing was started by the failures.
  assert.equal((await rpm2.list()).length, 2);
});

test('reload replaces every worker and keeps serving', { timeout: 60_000 }, async () => {
  const before = await rpm2.list();
  const onlineEvents = () => packets.filter((p) => p.type === 'process:event' && p.event === 'online').length;
  const onlineBefore = onlineEvents();
  const res = await rpm2.reload('echo');
  assert.equal(res.length, 2);
  const after = await rpm2.list();
  for (const p of after) {
    assert.equal(p.pm2_env.status, 'online');
    assert.ok(!before.some((b) => b.pid === p.pid), `worker ${p.pm_id} has a new pid`);
  }
  assert.match((await get(port)).body, /^hello from/);
  // The successors' online events reach the bus.
  await waitFor(() => onlineEvents() >= onlineBefore + 2, { what: 'online events of the new workers' });
});

test('restart, scale and stop by name and id', { timeout: 60_000 }, async () => {
  const restarted = await rpm2.restart(0);
  assert.equal(restarted.length, 1);
  assert.equal(restarted[0].pm_id, 0);
  await rpm2.scale('echo', 3);
  await waitFor(async () => (await rpm2.list()).filter((p) => p.pm2_env.status === 'online').length === 3, {
    what: '3 online workers',
  });
  await rpm2.scale('echo', '-1');
  await waitFor(async () => (await rpm2.list()).length === 2, { what: 'scale down to 2' });
  const stopped = await rpm2.stop('echo');
  assert.equal(stopped.length, 2);
  assert.ok(stopped.every((p) => p.status === 'stopped'));
  await rpm2.restart('echo');
  const list = await rpm2.list();
  assert.ok(list.every((p) => p.pm2_env.status === 'online'));
});

test('start(configPath), then stop/delete by config path', { timeout: 60_000 }, async () => {
  const config = path.join(FIXTURES, 'api-ecosystem.config.js');
  const started = await rpm2.start(config);
  assert.equal(started.length, 1);
  assert.equal(started[0].name, 'api-fork');
  assert.equal(started[0].pm2_env.exec_mode, 'fork_mode');
  const stopped = await rpm2.stop(config);
  assert.deepEqual(stopped.map((p) => p.name), ['api-fork']);
  const restarted = await rpm2.restart(config);
  assert.deepEqual(restarted.map((p) => p.name), ['api-fork']);
  await rpm2.delete(config);
  assert.ok(!(await rpm2.list()).some((p) => p.name === 'api-fork'));
});

test('dump, flush and reloadLogs', async () => {
  assert.deepEqual(await rpm2.dump(), { success: true });
  assert.ok(fs.existsSync(path.join(HOME, 'dump.pm2')));
  // pm2's answers: flush gives the process list, reloadLogs an empty object.
  assert.ok((await rpm2.flush()).some((p) => p.name === 'echo'));
  assert.ok((await rpm2.flush('echo')).some((p) => p.name === 'echo'));
  assert.deepEqual(await rpm2.reloadLogs(), {});
});

test('disconnect() lets a client process exit by itself', { timeout: 60_000 }, async () => {
  const r = await runClient([], { RPM2_HOME: HOME });
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim());
  assert.equal(out.daemon_pid, daemonPid);
  assert.equal(out.new, false);
  assert.equal(out.count, 2);
});

test('connect(true): the daemon is a child of its caller and dies with it', { timeout: 60_000 }, async () => {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'rpm2-api-nodaemon-'));
  otherHomes.push(home);
  const r = await runClient(['noDaemon'], { RPM2_HOME: home });
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim());
  assert.equal(out.new, true);
  await waitFor(() => !alive(out.daemon_pid), { what: 'the noDaemon daemon to exit with its parent' });
});

test('delete, then killDaemon stops the daemon and closes the bus', { timeout: 60_000 }, async () => {
  const deleted = await rpm2.delete('echo');
  assert.equal(deleted.length, 2);
  assert.deepEqual(await rpm2.list(), []);
  await waitFor(() => seen((p) => p.type === 'process:event' && p.event === 'delete'), { what: 'delete event' });
  const closed = new Promise((resolve) => bus.once('close', resolve));
  assert.deepEqual(await rpm2.killDaemon(), { success: true });
  await closed;
  await waitFor(() => !alive(daemonPid), { what: 'the daemon to exit' });
});
