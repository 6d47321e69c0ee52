'use strict';
// @pm2/io inside apps, as with pm2: real apps that `require('@pm2/io')`
// (fixtures/pm2-io-app.js, fork and cluster) report custom metrics and
// actions; `jlist`, `describe` and the API show them; `rpm2 trigger` and
// the API's `trigger` run actions and print pm2's reply lines; errors and
// events the app reports reach the bus. An app sending malformed or huge
// `axm:*` messages (fixtures/axm-bad-app.js) changes nothing for others
// and is logged once.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { makeHome, waitFor } = require('./helpers.js');

const h = makeHome('pm2io');
// The API reads RPM2_HOME when it first connects.
process.env.RPM2_HOME = h.home;
const rpm2 = require('..');

const packets = [];
let bus;

function proc(name) {
  return h.jlist().filter((p) => p.name === name);
}

function received(type, pred = () => true) {
  return packets.find((p) => p.type === type && pred(p.packet));
}

/** Wait until every worker of `name` reported its metrics and actions. */
function reported(name, count) {
  return waitFor(
    () => {
      const ps = proc(name);
      return (
        ps.length === count &&
        ps.every((p) => 'req/sec' in p.pm2_env.axm_monitor && p.pm2_env.axm_actions.some((a) => a.action_name === 'event')) &&
        ps
      );
    },
    { what: `${name} reporting through @pm2/io`, timeout: 30_000 },
  );
}

before(async () => {
  await rpm2.connect();
  bus = await rpm2.launchBus();
  bus.on('*', (type, packet) => packets.push({ type, packet }));
  let r = h.cli(['start', 'pm2-io-app.js', '--name', 'io']);
  assert.equal(r.code, 0, r.out);
  r = h.cli(['start', 'pm2-io-app.js', '--name', 'io-cluster', '-i', '2']);
  assert.equal(r.code, 0, r.out);
  await reported('io', 1);
  await reported('io-cluster', 2);
});

after(() => {
  rpm2.disconnect();
  h.cleanup();
});

test('custom metrics of each kind reach jlist, describe and the API', { timeout: 60_000 }, async () => {
  const [io] = proc('io');
  const env = io.pm2_env;
  const value = (name) => env.axm_monitor[name] && env.axm_monitor[name].value;
  assert.equal(value('Realtime user'), 42); // io.metric
  assert.equal(value('hits'), 3); // io.counter
  assert.equal(value('latency'), 20); // io.histogram, mean
  assert.equal(typeof value('req/sec'), 'number'); // io.meter
  // @pm2/io's own runtime metrics come along, units included.
  assert.equal(env.axm_monitor['Heap Size'].unit, 'MiB');
  const actions = env.axm_actions.map((a) => a.action_name);
  for (const a of ['hello', 'echo', 'notify', 'event', 'km:heapdump']) assert.ok(actions.includes(a), actions.join());
  assert.deepEqual(
    env.axm_actions.find((a) => a.action_name === 'echo'),
    { action_name: 'echo', action_type: 'custom', arity: 2 },
  );
  assert.equal(env.axm_options.error, true);
  assert.deepEqual(env.axm_dynamic, {});

  const r = h.cli(['describe', 'io']);
  assert.equal(r.code, 0, r.out);
  assert.match(r.stdout, / Actions available \n┌/);
  assert.match(r.stdout, /│ hello +│/);
  assert.match(r.stdout, / Trigger via: pm2 trigger io <action_name>\n/);
  assert.match(r.stdout, / Code metrics value \n┌/);
  assert.match(r.stdout, /│ hits +│ 3 +│/);
  assert.match(r.stdout, /│ Realtime user +│ 42 +│/);

  const [described] = await rpm2.describe('io');
  assert.equal(described.pm2_env.axm_monitor.hits.value, 3);
});

test('rpm2 trigger runs an action and prints pm2 reply lines', { timeout: 60_000 }, async () => {
  const [io] = proc('io');
  const id = io.pm_id;
  let r = h.cli(['trigger', 'io', 'hello']);
  assert.equal(r.code, 0, r.out);
  assert.equal(r.stdout, `1 processes have received command hello\n[io:${id}:default]={"ok":true,"instance":"0"}\n`);

  // Params arrive as the string typed, by name or by id.
  r = h.cli(['trigger', 'io', 'echo', 'hi']);
  assert.equal(r.stdout, `1 processes have received command echo\n[io:${id}:default]={"got":"hi"}\n`);
  r = h.cli(['trigger', String(id), 'echo', '{"a":1}']);
  assert.equal(r.code, 0, r.out);
  assert.equal(r.stdout, `1 processes have received command echo\n[io:${id}:default]={"got":"{\\"a\\":1}"}\n`);

  // Every worker of a cluster app answers; `all` reaches every app with the action.
  r = h.cli(['trigger', 'io-cluster', 'hello']);
  assert.equal(r.code, 0, r.out);
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines[0], '2 processes have received command hello');
  assert.deepEqual(
    lines.slice(1).map((l) => l.replace(/:\d+:/, ':N:')).sort(),
    ['[io-cluster:N:default]={"ok":true,"instance":"0"}', '[io-cluster:N:default]={"ok":true,"instance":"1"}'],
  );
  r = h.cli(['trigger', 'all', 'hello']);
  assert.equal(r.code, 0, r.out);
  assert.match(r.stdout, /^3 processes have received command hello\n/);
  assert.equal(r.stdout.trim().split('\n').length, 4);
});

test('an unknown action or process gives pm2 error text and exit 1', { timeout: 60_000 }, () => {
  const [io] = proc('io');
  let r = h.cli(['trigger', 'io', 'nope']);
  assert.equal(r.code, 1, r.out);
  assert.equal(r.stdout, '');
  assert.equal(r.stderr, 'Not any process has received a command (offline or unexistent)\n');
  r = h.cli(['trigger', String(io.pm_id), 'nope']);
  assert.equal(r.code, 1, r.out);
  assert.equal(r.stderr, "Action doesn't exist nope for io\n");
  r = h.cli(['trigger', '99', 'hello']);
  assert.equal(r.code, 1, r.out);
  assert.equal(r.stderr, '99 id unknown\n');
});

test("the API's trigger resolves to pm2's axm:reply packets", { timeout: 60_000 }, async () => {
  const res = await rpm2.trigger('io', 'echo', { a: 1 });
  assert.equal(res.length, 1);
  assert.equal(res[0].process.name, 'io');
  assert.equal(res[0].data.action_name, 'echo');
  assert.deepEqual(res[0].data.return, { got: { a: 1 } });
  const viaCallback = await new Promise((resolve, reject) => {
    rpm2.trigger('io-cluster', 'hello', (err, out) => (err ? reject(err) : resolve(out)));
  });
  assert.deepEqual(viaCallback.map((p) => p.data.return.instance).sort(), ['0', '1']);
  await assert.rejects(rpm2.trigger('io', 'nope'), /^Error: Unknown process$/);
  const [io] = proc('io');
  await assert.rejects(rpm2.trigger(io.pm_id, 'nope'), /Action doesn't exist nope for io/);
});

test('process:exception and human:event reach the bus, axm registrations do not', { timeout: 60_000 }, async () => {
  assert.equal(h.cli(['trigger', 'io', 'notify']).code, 0);
  assert.equal(h.cli(['trigger', 'io', 'event']).code, 0);
  const exception = await waitFor(() => received('process:exception', (p) => p.process.name === 'io'), {
    what: 'process:exception on the bus',
  });
  assert.equal(exception.packet.data.message, 'reported by the app');
  assert.equal(exception.packet.data.name, 'Error');
  assert.equal(typeof exception.packet.at, 'number');
  const event = await waitFor(() => received('human:event', (p) => p.process.name === 'io'), {
    what: 'human:event on the bus',
  });
  assert.equal(event.packet.data.__name, 'deployed');
  assert.equal(event.packet.data.version, 3);
  assert.ok(received('axm:reply', (p) => p.data.action_name === 'event'), 'axm:reply is published');
  // The apps started after the bus opened and sent their metrics every
  // second since: pm2 keeps these off the bus, so must we.
  const types = new Set(packets.map((p) => p.type));
  for (const t of ['axm:monitor', 'axm:action', 'axm:option:configuration']) assert.ok(!types.has(t), `${t} published`);
});

test('malformed and huge axm messages are dropped, logged once, and touch no other app', { timeout: 90_000 }, async () => {
  const [before] = proc('io');
  const r = h.cli(['start', 'axm-bad-app.js', '--name', 'bad']);
  assert.equal(r.code, 0, r.out);
  // Its last message: everything before it was handled.
  await waitFor(() => received('human:event', (p) => p.process.name === 'bad' && p.data.__name === 'bad-app-done'), {
    what: "the bad app's last message",
    timeout: 60_000,
  });
  const [bad] = proc('bad');
  assert.equal(bad.name, 'bad');
  assert.equal(bad.pm2_env.status, 'online');
  assert.equal(bad.pm2_env.axm_actions[0].action_name, 'alive');
  // Capped: what one worker keeps stays small whatever it sends.
  assert.ok(bad.pm2_env.axm_actions.length < 5001, `${bad.pm2_env.axm_actions.length} actions kept`);
  assert.ok(Object.keys(bad.pm2_env.axm_monitor).length < 100_000);
  const kept = JSON.stringify([bad.pm2_env.axm_monitor, bad.pm2_env.axm_actions, bad.pm2_env.axm_options]).length;
  assert.ok(kept < 256 * 1024, `${kept} bytes kept`);

  // The other app's data is untouched (the spoofed metric included).
  const [after] = proc('io');
  assert.deepEqual(after.pm2_env.axm_actions, before.pm2_env.axm_actions);
  assert.deepEqual(after.pm2_env.axm_options, before.pm2_env.axm_options);
  assert.equal(after.pm2_env.axm_monitor['Realtime user'].value, 42);

  // The bad app still works, and so does everything else.
  let t = h.cli(['trigger', 'bad', 'alive']);
  assert.equal(t.code, 0, t.out);
  assert.equal(t.stdout, `1 processes have received command alive\n[bad:${bad.pm_id}:default]={"alive":true}\n`);
  t = h.cli(['trigger', 'io', 'hello']);
  assert.equal(t.code, 0, t.out);

  // One log line for the app, not one per message.
  const log = fs.readFileSync(path.join(h.home, 'pm2.log'), 'utf8');
  const warned = log.split('\n').filter((l) => l.includes(`App [bad:${bad.pm_id}] sent a bad @pm2/io message`));
  assert.equal(warned.length, 1, warned.join('\n'));
});
