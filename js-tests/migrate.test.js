'use strict';
// Moving over from pm2: a real pm2 7 (the devDependency) saves its list in a
// temporary PM2_HOME, then `rpm2 resurrect --from` starts the same apps in
// rpm2's daemon. Also: bad dumps start nothing, and `install pm2-logrotate`.
const { test, describe, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { ROOT, FIXTURES, makeHome, waitFor, waitServing, freePort, getJson, byName } = require('./helpers.js');

const PM2 = path.join(ROOT, 'node_modules', 'pm2', 'bin', 'pm2');
const FORK_APP = path.join(FIXTURES, 'migrate-fork.js');
const WEB_APP = path.join(FIXTURES, 'cluster-app.js');

/** A pm2 of its own: PM2_HOME under `dir`, killed by `kill()`. */
function makePm2(dir) {
  const home = path.join(dir, 'pm2-home');
  const base = { ...process.env, PM2_HOME: home, PM2_DISCRETE_MODE: 'true' };
  delete base.RPM2_HOME;
  function run(args, env = {}) {
    const r = spawnSync(process.execPath, [PM2, ...args], {
      env: { ...base, ...env },
      cwd: FIXTURES,
      encoding: 'utf8',
      timeout: 60_000,
    });
    const out = `${r.stdout}${r.stderr}`;
    assert.equal(r.status, 0, `pm2 ${args.join(' ')}: ${out}`);
    return out;
  }
  return { home, run, kill: () => spawnSync(process.execPath, [PM2, 'kill'], { env: base, timeout: 60_000 }) };
}

/** Values of one app in a jlist, for comparison. */
function shape(workers) {
  const e = workers[0].pm2_env;
  return {
    count: workers.length,
    script: e.pm_exec_path,
    cwd: e.pm_cwd,
    exec_mode: e.exec_mode,
    namespace: e.namespace,
    // pm2's jlist leaves `args` out when there are none.
    args: e.args ?? [],
    node_args: e.node_args ?? [],
  };
}

describe('resurrect --from a real pm2 dump', () => {
  let dir;
  let pm2;
  let port;
  let report;
  let pm2List;
  const homes = [];

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rpm2-migrate-'));
    pm2 = makePm2(dir);
    port = await freePort();
    report = path.join(dir, 'fork-report.json');
    pm2.run(
      ['start', FORK_APP, '--name', 'forky', '--namespace', 'mig', '--max-memory-restart', '300M',
        '--node-args=--max-old-space-size=200', '--', 'a1', '--flag', 'b 2'],
      { GREETING: 'hello from pm2', REPORT_FILE: report },
    );
    pm2.run(['start', WEB_APP, '-i', '2', '--name', 'web'], { PORT: String(port), GREETING: 'web greeting' });
    pm2.run(['start', FORK_APP, '--name', 'idle'], { REPORT_FILE: path.join(dir, 'idle.json') });
    pm2.run(['stop', 'idle']);
    pm2.run(['set', 'pm2-logrotate:max_size', '20M']);
    pm2.run(['set', 'pm2-logrotate:rotateInterval', '0 3 * * *']);
    pm2List = JSON.parse(pm2.run(['jlist']).replace(/^[^[]*/, ''));
    pm2.run(['save']);
    pm2.run(['kill']);
    fs.rmSync(report, { force: true });
  });

  after(() => {
    pm2?.kill();
    for (const h of homes) h.cleanup();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test('from the pm2 home: same apps, options, env and args; they run and serve', async () => {
    const h = makeHome('migrate');
    homes.push(h);
    const r = h.cli(['resurrect', '--from', pm2.home]);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /dump\.pm2/);
    // pm2-logrotate's settings in pm2's store, as the commands for rpm2.
    assert.match(r.stdout, /rpm2 set pm2-logrotate:max_size 20M\n/);
    assert.match(r.stdout, /rpm2 set pm2-logrotate:rotateInterval '0 3 \* \* \*'\n/);
    const list = h.jlist();
    assert.deepEqual([...new Set(list.map((p) => p.name))].sort(), ['forky', 'idle', 'web']);
    for (const name of ['forky', 'web', 'idle']) {
      assert.deepEqual(shape(byName(list, name)), shape(byName(pm2List, name)), name);
    }
    const [forky] = byName(list, 'forky');
    assert.equal(forky.pm2_env.namespace, 'mig');
    assert.deepEqual(forky.pm2_env.args, ['a1', '--flag', 'b 2']);
    assert.equal(forky.pm2_env.max_memory_restart, 300 * 1024 * 1024);
    assert.equal(forky.pm2_env.env.GREETING, 'hello from pm2');
    assert.equal(forky.pm2_env.env.PM2_HOME === pm2.home, false, "pm2's own PM2_HOME is not carried over");
    const web = byName(list, 'web');
    assert.equal(web.length, 2);
    assert.equal(web[0].pm2_env.exec_mode, 'cluster_mode');
    assert.equal(web[0].pm2_env.instances, 2);
    assert.equal(web[0].pm2_env.env.PORT, String(port));
    assert.equal(web[0].pm2_env.env.GREETING, 'web greeting');
    assert.deepEqual(web.map((w) => w.pm2_env.status), ['online', 'online']);
    assert.deepEqual(byName(list, 'idle').map((w) => w.pm2_env.status), ['stopped'], 'stopped in pm2, stopped here');
    // Logs at pm2's default place go to rpm2's.
    assert.ok(forky.pm2_env.pm_out_log_path.startsWith(h.home), forky.pm2_env.pm_out_log_path);

    // The fork app runs with its argv, env and node args.
    const seen = await waitFor(() => fs.existsSync(report) && JSON.parse(fs.readFileSync(report, 'utf8')), {
      what: 'the fork app report',
    });
    assert.deepEqual(seen.argv, ['a1', '--flag', 'b 2']);
    assert.equal(seen.greeting, 'hello from pm2');
    assert.ok(seen.execArgv.includes('--max-old-space-size=200'), JSON.stringify(seen.execArgv));
    // The cluster app serves from both workers.
    await waitServing(port);
    const instances = await waitFor(async () => {
      const got = new Set();
      for (let i = 0; i < 8; i++) got.add((await getJson(port)).instance);
      return got.size === 2 && got;
    }, { what: 'both web workers answering' });
    assert.deepEqual([...instances].sort(), ['0', '1']);
    assert.equal((await getJson(port)).greeting, 'web greeting');

    // Again: apps already known are left alone, nothing doubles.
    const again = h.cli(['resurrect', '--from', pm2.home]);
    assert.equal(again.code, 0, again.out);
    assert.equal(h.jlist().length, list.length);
    h.cli(['kill']);
  });

  test('from the dump file itself', () => {
    const h = makeHome('migrate-file');
    homes.push(h);
    const r = h.cli(['resurrect', '--from', path.join(pm2.home, 'dump.pm2')]);
    assert.equal(r.code, 0, r.out);
    // `--from` alone reads $PM2_HOME: the apps are known now, left alone.
    const again = h.cli(['resurrect', '--from'], { env: { PM2_HOME: pm2.home } });
    assert.equal(again.code, 0, again.out);
    assert.match(again.stdout, new RegExp(`${pm2.home}/dump\\.pm2`));
    assert.match(again.stdout, /already known, left as it is/);
    const list = h.jlist();
    for (const name of ['forky', 'web', 'idle']) {
      assert.deepEqual(shape(byName(list, name)), shape(byName(pm2List, name)), name);
    }
    assert.equal(byName(list, 'forky')[0].pm2_env.env.GREETING, 'hello from pm2');
    h.cli(['kill']);
  });
});

describe('resurrect --from bad input starts nothing', () => {
  let h;
  let dir;
  before(() => {
    h = makeHome('migrate-bad');
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rpm2-migrate-bad-'));
  });
  after(() => {
    h.cleanup();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  function refused(from, pattern) {
    const r = h.cli(['resurrect', '--from', from]);
    assert.notEqual(r.code, 0, r.out);
    assert.match(r.stderr, pattern);
    assert.deepEqual(h.jlist(), [], 'nothing started');
  }

  test('a missing path', () => {
    refused(path.join(dir, 'nope'), /no such pm2 home or dump file/);
  });

  test('a directory without dump.pm2', () => {
    refused(dir, /holds no dump\.pm2/);
  });

  test('malformed JSON, and JSON that is not a list', () => {
    const file = path.join(dir, 'broken.pm2');
    fs.writeFileSync(file, '[{"name": "a", ');
    refused(file, /invalid JSON/);
    assert.ok(fs.existsSync(file), 'the file is left as it is');
    fs.writeFileSync(file, '{"name": "a"}');
    refused(file, /expected an array/);
  });

  test('an entry without a script: the good entries do not start either', () => {
    const file = path.join(dir, 'noscript.pm2');
    fs.writeFileSync(file, JSON.stringify([
      { name: 'good', pm_exec_path: FORK_APP, pm_cwd: FIXTURES, exec_mode: 'fork_mode', env: {} },
      { name: 'bad', exec_mode: 'fork_mode', env: {} },
    ]));
    refused(file, /entry #2 \("bad"\): no script/);
  });

  test('a script that no longer exists', () => {
    const file = path.join(dir, 'gone.pm2');
    fs.writeFileSync(file, JSON.stringify([
      { name: 'gone', pm_exec_path: path.join(dir, 'gone.js'), pm_cwd: dir, exec_mode: 'fork_mode', env: {} },
    ]));
    refused(file, /script not found/);
  });
});

describe('install pm2-logrotate', () => {
  let h;
  before(() => {
    h = makeHome('migrate-install');
  });
  after(() => h.cleanup());

  const KEYS = ['max_size', 'retain', 'compress', 'dateFormat', 'rotateInterval', 'workerInterval', 'rotateModule'];

  test('every form pm2 accepts succeeds and names the set keys', () => {
    for (const args of [
      ['install', 'pm2-logrotate'],
      ['module:install', 'pm2-logrotate'],
      ['install', 'pm2-logrotate@latest', '--safe'],
      ['module:update', 'pm2-logrotate', '--tarball'],
      ['install', '--docker', 'pm2-logrotate@2.7.0'],
    ]) {
      const r = h.cli(args);
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.out}`);
      assert.match(r.stdout, /built into rpm2/);
      for (const key of KEYS) assert.ok(r.stdout.includes(`rpm2 set pm2-logrotate:${key} `), `${key} in ${r.stdout}`);
    }
  });

  test('other modules are refused, saying modules are not supported', () => {
    for (const args of [['install', 'pm2-server-monit'], ['module:install', 'pm2-logrotate-s3'], ['uninstall', 'pm2-auto-pull']]) {
      const r = h.cli(args);
      assert.equal(r.code, 1, `${args.join(' ')}: ${r.out}`);
      assert.match(r.stderr, /modules are not supported/);
    }
  });

  test('uninstall pm2-logrotate succeeds with a note', () => {
    for (const verb of ['uninstall', 'module:uninstall']) {
      const r = h.cli([verb, 'pm2-logrotate']);
      assert.equal(r.code, 0, r.out);
      assert.match(r.stdout, /built into rpm2: nothing to uninstall/);
    }
  });
});
