'use strict';
// `jlist` has pm2 7's shape: the same ecosystem file is started under pm2 (the
// devDependency, in a temporary PM2_HOME) and under rpm2, and the two lists
// are compared key by key with value types, recursively. Only the differences
// listed below (each with its reason) are allowed. The API's `list` and
// `describe` must give what `jlist` gives.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { ROOT, makeHome, waitFor, freePort } = require('./helpers.js');

const PM2_BIN = path.join(ROOT, 'node_modules', 'pm2', 'bin', 'pm2');

/** `pm2_env` keys only pm2 has. */
const PM2_ONLY = {
  _pm2_version: "pm2's own version (cluster mode); rpm2 is not pm2",
  PM2_USAGE: "set in the pm2 CLI's own environment, which leaks into the app's",
  PM2_INTERACTOR_PROCESSING: "set in the pm2 CLI's own environment, which leaks into the app's",
  PM2_JSON_PROCESSING: "set in the pm2 CLI's own environment, which leaks into the app's",
};
/** `pm2_env.env` keys only pm2 has (plus, flattened, in `pm2_env`). */
const PM2_ONLY_ENV = {
  PM2_USAGE: PM2_ONLY.PM2_USAGE,
  PM2_INTERACTOR_PROCESSING: PM2_ONLY.PM2_INTERACTOR_PROCESSING,
  PM2_JSON_PROCESSING: PM2_ONLY.PM2_JSON_PROCESSING,
};
/** The entry named like the app is its module configuration: pm2 gives it
 * as an object to an app started from the command line, and as its JSON
 * text (then flattened into `pm2_env` too) to one started from a config
 * file; rpm2 always gives the object, which is not flattened (MODULE_CONF
 * below). */
/** `pm2_env` keys only rpm2 has: options rpm2 acts on, shown with their
 * effective value even when the config does not give them (pm2 shows only
 * the ones given; then both have the key, with the same type). */
const RPM2_ONLY = {
  watch: 'effective option value',
  wait_ready: 'effective option value',
  merge_logs: 'effective option value (pm2 sets it in fork mode only)',
  kill_timeout: 'effective option value',
  listen_timeout: 'effective option value',
  min_uptime: 'effective option value',
  max_restarts: 'effective option value',
  restart_delay: 'effective option value',
  prev_restart_delay: 'effective value (pm2 sets it with exp_backoff_restart_delay)',
  sticky: "rpm2's sticky sessions",
  drain: "rpm2's drain preload is on",
  inflight_requests: "rpm2's drain preload reports requests in flight",
  event_loop_lag_ms: "rpm2's event-loop watchdog",
};
/** Objects whose content is not compared, only their type: pm2 injects
 * @pm2/io into every app, which fills them with its internal metrics and
 * actions; rpm2 injects nothing, so they stay empty until the app reports. */
const CONTENT_NOT_COMPARED = new Set(['axm_monitor', 'axm_actions', 'axm_options', 'axm_dynamic']);

let dir;
let pm2Home;
let h;
let pm2List;
let rpm2List;
let port;

function typeOf(v) {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

/** Differences between two values as `path: reason` lines (types, keys). */
function compare(a, b, at, allow, out) {
  if (typeOf(a) !== typeOf(b)) {
    out.push(`${at}: pm2 ${typeOf(a)} ${JSON.stringify(a)}, rpm2 ${typeOf(b)} ${JSON.stringify(b)}`);
    return;
  }
  if (typeOf(a) === 'array') {
    for (let i = 0; i < Math.min(a.length, b.length); i++) compare(a[i], b[i], `${at}[${i}]`, allow, out);
    if (a.length !== b.length) out.push(`${at}: pm2 has ${a.length} items, rpm2 ${b.length}`);
    return;
  }
  if (typeOf(a) !== 'object') return;
  const rule = allow(at) || {};
  for (const k of Object.keys(a)) {
    if (!(k in b)) {
      if (!(rule.pm2Only && rule.pm2Only(k))) out.push(`${at}.${k}: only in pm2 (${JSON.stringify(a[k])})`);
    } else if (!(rule.skip && rule.skip(k))) {
      compare(a[k], b[k], `${at}.${k}`, allow, out);
    }
  }
  for (const k of Object.keys(b)) {
    if (!(k in a) && !(rule.rpm2Only && rule.rpm2Only(k))) {
      out.push(`${at}.${k}: only in rpm2 (${JSON.stringify(b[k])})`);
    }
  }
}

/** Which documented differences apply at a path of one process entry. */
function rulesFor(name) {
  return (at) => {
    if (at === 'p.pm2_env') {
      return {
        // MODULE_CONF
        pm2Only: (k) => k in PM2_ONLY || k === name,
        rpm2Only: (k) => k in RPM2_ONLY,
        skip: (k) => CONTENT_NOT_COMPARED.has(k),
      };
    }
    if (at === 'p.pm2_env.env') {
      // MODULE_CONF: compared by key, not by type.
      return { pm2Only: (k) => k in PM2_ONLY_ENV, skip: (k) => k === name };
    }
    return null;
  };
}

function key(p) {
  return `${p.name}#${p.pm2_env.NODE_APP_INSTANCE}`;
}

function pm2(args) {
  const r = spawnSync(process.execPath, [PM2_BIN, ...args], {
    cwd: dir,
    env: { ...h.env, PM2_HOME: pm2Home },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, out: r.stdout + r.stderr };
}

/** All 3 workers online, each with the node_version its worker reported. */
function settled(list) {
  return (
    list.length === 3 &&
    list.every((p) => p.pm2_env.status === 'online' && typeof p.pm2_env.node_version === 'string') &&
    list
  );
}

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rpm2-shape-'));
  pm2Home = path.join(dir, 'pm2-home');
  h = makeHome('shape');
  port = await freePort();
  // `web` has a package.json (its version is shown), `tick` has none (N/A).
  fs.mkdirSync(path.join(dir, 'web'));
  fs.mkdirSync(path.join(dir, 'tick'));
  fs.writeFileSync(path.join(dir, 'web', 'package.json'), JSON.stringify({ name: 'web', version: '1.2.3' }));
  const app = "require('http').createServer((q, s) => s.end('ok')).listen(process.env.PORT);\n";
  fs.writeFileSync(path.join(dir, 'web', 'server.js'), app);
  fs.writeFileSync(path.join(dir, 'tick', 'tick.js'), 'setInterval(() => {}, 1000);\n');
  const config = {
    apps: [
      {
        name: 'web',
        script: './web/server.js',
        instances: 2,
        exec_mode: 'cluster',
        args: ['--mode', 'test'],
        env: { PORT: port, GREETING: 'hi', DEBUG_ON: true },
      },
      { name: 'tick', script: './tick/tick.js', args: 'a b', env: { TICK_MS: 1000 } },
    ],
  };
  fs.writeFileSync(path.join(dir, 'ecosystem.config.js'), `module.exports = ${JSON.stringify(config)};\n`);

  const started = pm2(['start', 'ecosystem.config.js']);
  try {
    assert.equal(started.code, 0, started.out);
    pm2List = await waitFor(() => settled(JSON.parse(pm2(['jlist']).stdout)), { what: 'pm2 apps online' });
  } finally {
    pm2(['kill']);
  }
  const r = h.cli(['start', 'ecosystem.config.js'], { cwd: dir });
  assert.equal(r.code, 0, r.out);
  rpm2List = await waitFor(() => settled(h.jlist()), { what: 'rpm2 apps online' });
});

after(() => {
  if (h) h.cleanup();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test('every key and value type matches pm2 but the documented differences', () => {
  const problems = [];
  const byKey = new Map(rpm2List.map((p) => [key(p), p]));
  for (const a of pm2List) {
    const b = byKey.get(key(a));
    if (!b) {
      problems.push(`${key(a)}: no such rpm2 worker`);
      continue;
    }
    compare(a, b, 'p', rulesFor(a.name), problems);
  }
  assert.deepEqual(problems, []);
});

test('pm2_env.env is the environment as given, typed, without pm2 bookkeeping', () => {
  for (const list of [pm2List, rpm2List]) {
    for (const p of list) {
      const e = p.pm2_env;
      for (const internal of ['status', 'exec_mode', 'restart_time', 'pm_id', 'name', 'pm_uptime']) {
        assert.equal(internal in e.env, false, `${internal} in ${p.name}'s env`);
      }
      assert.equal(e.env.unique_id, e.unique_id);
      if (p.name === 'web') {
        // Given as a number and a boolean: kept so, nested and flattened.
        assert.equal(e.env.PORT, port);
        assert.equal(e.PORT, port);
        assert.equal(e.env.DEBUG_ON, true);
        assert.equal(e.GREETING, 'hi');
      } else {
        assert.equal(e.TICK_MS, 1000);
      }
    }
  }
});

test('values pm2 derives are the same', () => {
  const byKey = new Map(pm2List.map((p) => [key(p), p]));
  for (const b of rpm2List) {
    const a = byKey.get(key(b)).pm2_env;
    const e = b.pm2_env;
    for (const k of ['exec_interpreter', 'version', 'node_version', 'exec_mode', 'instances', 'NODE_APP_INSTANCE',
      'vizion', 'treekill', 'kill_retry_time', 'windowsHide', 'automation', 'pmx', 'km_link', 'vizion_running',
      'args', 'node_args', 'namespace', 'instance_var', 'autostart', 'autorestart', 'status', 'restart_time']) {
      assert.deepEqual(e[k], a[k], `${b.name}: ${k}`);
    }
  }
  assert.equal(rpm2List.find((p) => p.name === 'web').pm2_env.version, '1.2.3');
  assert.equal(rpm2List.find((p) => p.name === 'tick').pm2_env.version, 'N/A');
});

test('prettylist counts each pm2_env key once, as pm2 does', () => {
  const pretty = h.cli(['prettylist']).stdout;
  const count = (s) => pretty.split(s).length - 1;
  assert.equal(count("status: 'online'"), 3);
  assert.equal(count('restart_time: 0'), 3);
  assert.equal(count("exec_mode: 'cluster_mode'"), 2);
  // pm2 has PORT twice per worker: in `env` and flattened.
  assert.equal(count(`PORT: ${port}`), 4);
});

test("the API's list and describe give jlist's shape", async () => {
  const script = `
    const rpm2 = require(${JSON.stringify(ROOT)});
    rpm2.connect((err) => {
      if (err) throw err;
      rpm2.list((err, list) => {
        if (err) throw err;
        rpm2.describe('web', (err, desc) => {
          if (err) throw err;
          process.stdout.write(JSON.stringify({ list, desc }));
          rpm2.disconnect();
        });
      });
    });`;
  const r = spawnSync(process.execPath, ['-e', script], { env: h.env, encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  const { list, desc } = JSON.parse(r.stdout);
  const jlist = h.jlist();
  const shape = (v) => JSON.stringify(v, (k, x) => (x !== null && typeof x === 'object' ? x : typeOf(x)));
  const bare = (ps) => ps.map((p) => ({ ...p, monit: null, pm2_env: { ...p.pm2_env, inflight_requests: null, event_loop_lag_ms: null } }));
  assert.equal(shape(bare(list)), shape(bare(jlist)));
  assert.equal(desc.length, 2);
  assert.equal(shape(bare(desc)), shape(bare(jlist.filter((p) => p.name === 'web'))));
});
