'use strict';
// Soak (issue 15): many reloads, in-place updates and kill -9
// crash-restarts of a 2-worker cluster app under continuous load, then
// checks that the daemon is as it was: 0 failed requests during the reloads
// and updates, flat RSS and fd count, no zombie child, no leaked socket.
// Prints a table; exits 1 if a check fails.
//
//   npm run soak                  # 1000 reloads, 1000 updates, 1000 crashes
//   npm run soak -- --reloads 100 --crashes 100
//   RPM2_BINARY=target/debug/rpm2 npm run soak -- --reloads 20 --crashes 20
//
// Flags: --reloads N, --crashes N, --keepalive-clients N (2), --rss-slack-mib
// M (4: how much the RSS may grow from the first tenth of the run to its
// end), --updates N (`rpm2 update`: same daemon pid, same worker pids).
// The binary is the one the js-tests use (npm/resolve-binary.js).
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { RPM2, FIXTURES, freePort, waitServing, waitFor, sleep, byName, zombieChildren } = require('../js-tests/helpers.js');
const { runLoad } = require('../js-tests/load.js');

const APP = path.join(FIXTURES, 'cluster-app.js');

function parseArgs(argv) {
  const opts = { reloads: 1000, crashes: 1000, updates: 1000, keepaliveClients: 2, rssSlackMib: 4 };
  const names = { '--reloads': 'reloads', '--crashes': 'crashes', '--updates': 'updates',
    '--keepalive-clients': 'keepaliveClients', '--rss-slack-mib': 'rssSlackMib' };
  for (let i = 0; i < argv.length; i++) {
    const key = names[argv[i]];
    const value = Number(argv[i + 1]);
    if (!key || !Number.isFinite(value) || value < 0) {
      console.error(`usage: node bench/soak.js [${Object.keys(names).join(' N] [')} N]`);
      process.exit(2);
    }
    opts[key] = value;
    i++;
  }
  return opts;
}

// ---- the daemon seen from /proc -------------------------------------------

function daemonPid(home) {
  return Number(fs.readFileSync(path.join(home, 'pm2.pid'), 'utf8').trim());
}

function rssKib(pid) {
  const m = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmRSS:\s+(\d+)/m);
  return m ? Number(m[1]) : 0;
}

/** The daemon's open fds, and how many of them are sockets. */
function fds(pid) {
  let total = 0;
  let sockets = 0;
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    let target;
    try {
      target = fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue; // closed while we looked
    }
    total++;
    if (target.startsWith('socket:')) sockets++;
  }
  return { total, sockets };
}


// ---- the CLI, without blocking the load generator --------------------------

function cli(env, args) {
  return new Promise((resolve) => {
    const child = spawn(RPM2, args, { env, cwd: FIXTURES });
    let out = '';
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (out += c));
    const guard = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('exit', (code) => {
      clearTimeout(guard);
      resolve({ code, out });
    });
  });
}

async function jlist(env) {
  const r = await cli(env, ['jlist']);
  if (r.code !== 0) throw new Error(`jlist failed: ${r.out}`);
  return JSON.parse(r.out);
}

// ---- the run ---------------------------------------------------------------

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'rpm2-soak-'));
  const env = { ...process.env, RPM2_HOME: home, NO_COLOR: '1' };
  const port = await freePort();
  const samples = [];
  const notes = [];
  let load;
  const cleanup = async () => {
    if (load) await load.stop();
    await cli(env, ['kill']);
    fs.rmSync(home, { recursive: true, force: true });
  };
  process.once('SIGINT', () => cleanup().then(() => process.exit(130)));
  try {
    console.log(`rpm2 soak: ${RPM2}, ${opts.reloads} reloads, ${opts.updates} updates, ${opts.crashes} crash-restarts, port ${port}`);
    // min_uptime 0: back-to-back kill -9s are crashes to restart from, not
    // a crash loop that ends in `errored`.
    const ecosystem = path.join(home, 'soak.config.js');
    fs.writeFileSync(ecosystem, `module.exports = { apps: [${JSON.stringify({
      name: 'soak', script: APP, exec_mode: 'cluster', instances: 2, min_uptime: 0,
      max_restarts: 1e9, env: { PORT: String(port) },
    })}] };\n`);
    const started = await cli(env, ['start', ecosystem]);
    if (started.code !== 0) throw new Error(`start failed: ${started.out}`);
    await waitServing(port);
    const pid = daemonPid(home);
    const before = { ...fds(pid), rss: rssKib(pid) };
    const sample = (phase, i) => samples.push({ phase, i, rss: rssKib(pid), ...fds(pid) });
    // A line every tenth of a phase, so a long run shows it is moving.
    const progress = (phase, i, n) => {
      if (n >= 10 && i % Math.floor(n / 10) === 0) {
        const s = samples[samples.length - 1];
        console.log(`  ${phase} ${i}/${n}: daemon RSS ${(s.rss / 1024).toFixed(1)} MiB, ${s.total} fds`);
      }
    };
    sample('start', 0);

    load = runLoad(port, { durationMs: 24 * 3600_000, keepAliveClients: opts.keepaliveClients });
    await waitFor(() => load.stats.newconn.ok > 20 && load.stats.keepalive.ok > 20, { what: 'load running' });
    const every = (n) => Math.max(1, Math.floor(n / 50));
    const snapshot = () => JSON.parse(JSON.stringify(load.stats));

    // Reloads: zero failed requests is the check.
    const reloadStart = snapshot();
    const t0 = Date.now();
    let reloadFailures = 0;
    for (let i = 1; i <= opts.reloads; i++) {
      const r = await cli(env, ['reload', 'soak']);
      if (r.code !== 0) {
        reloadFailures++;
        if (reloadFailures <= 3) notes.push(`reload ${i} failed: ${r.out.trim().split('\n').pop()}`);
      }
      if (i % every(opts.reloads) === 0 || i === opts.reloads) sample('reload', i);
      progress('reloads', i, opts.reloads);
    }
    const reloadSecs = (Date.now() - t0) / 1000;
    const reloadEnd = snapshot();

    // Updates in place: zero failed requests, and nothing moves.
    const pidsOf = (list) => byName(list, 'soak').map((w) => `${w.pm_id}:${w.pid}:${w.pm2_env.restart_time}`).join(' ');
    const workersBefore = pidsOf(await jlist(env));
    const t2 = Date.now();
    let updateFailures = 0;
    for (let i = 1; i <= opts.updates; i++) {
      const r = await cli(env, ['update']);
      if (r.code !== 0 || !/updated in place/.test(r.out)) {
        updateFailures++;
        if (updateFailures <= 3) notes.push(`update ${i} failed: ${r.out.trim().split('\n').pop()}`);
      }
      if (i % every(opts.updates) === 0 || i === opts.updates) sample('update', i);
      progress('updates', i, opts.updates);
    }
    const updateSecs = (Date.now() - t2) / 1000;
    const updateEnd = snapshot();
    const workersAfter = pidsOf(await jlist(env));

    // Crash-restarts: kill -9 one worker, wait for its successor online.
    const t1 = Date.now();
    let crashTimeouts = 0;
    for (let i = 1; i <= opts.crashes; i++) {
      const victim = byName(await jlist(env), 'soak')[i % 2];
      try {
        process.kill(victim.pid, 'SIGKILL');
      } catch {
        continue;
      }
      try {
        await waitFor(async () => {
          const w = byName(await jlist(env), 'soak').find((x) => x.pm_id === victim.pm_id);
          return w && w.pid !== victim.pid && w.pid > 0 && w.pm2_env.status === 'online';
        }, { timeout: 60_000, interval: 10, what: `worker ${victim.pm_id} back after kill -9 #${i}` });
      } catch (e) {
        crashTimeouts++;
        notes.push(e.message);
        break;
      }
      if (i % every(opts.crashes) === 0 || i === opts.crashes) sample('crash', i);
      progress('crash-restarts', i, opts.crashes);
    }
    const crashSecs = (Date.now() - t1) / 1000;
    await waitServing(port);
    const stats = await load.stop();
    load = null;
    const final = byName(await jlist(env), 'soak');

    // Let the last handed-off connections and reaped children settle.
    let after;
    let zombieList;
    await waitFor(() => {
      after = { ...fds(pid), rss: rssKib(pid) };
      zombieList = zombieChildren(pid);
      return after.sockets <= before.sockets && after.total <= before.total && zombieList.length === 0;
    }, { timeout: 5_000, what: 'settle' }).catch(() => {});
    samples.push({ phase: 'end', i: 0, ...after });

    // ---- checks ----
    const diff = (a, b, k) => (b[k].ok - a[k].ok);
    const failedIn = (a, b) => (b.newconn.failed - a.newconn.failed) + (b.keepalive.failed - a.keepalive.failed);
    const crashFailed = failedIn(updateEnd, stats);
    const rss = samples.map((s) => s.rss);
    const fdsAll = samples.map((s) => s.total);
    const tenth = samples[Math.max(1, Math.floor(samples.length / 10))] || samples[0];
    const restarts = final.reduce((n, w) => n + w.pm2_env.restart_time, 0);
    const rows = [];
    const check = (name, first, last, max, ok, detail = '') => rows.push({ name, first, last, max, ok, detail });
    const mib = (kib) => (kib / 1024).toFixed(1);
    check('reload commands ok', '', `${opts.reloads - reloadFailures}/${opts.reloads}`, '', reloadFailures === 0,
      `${reloadSecs.toFixed(0)} s, ${(reloadSecs / Math.max(1, opts.reloads) * 1000).toFixed(0)} ms each`);
    check('failed requests during reloads', '', failedIn(reloadStart, reloadEnd), '', failedIn(reloadStart, reloadEnd) === 0,
      `${diff(reloadStart, reloadEnd, 'newconn')} new-conn + ${diff(reloadStart, reloadEnd, 'keepalive')} keep-alive ok, ` +
      `${reloadEnd.keepalive.retriedOnReusedSocket - reloadStart.keepalive.retriedOnReusedSocket} keep-alive retries on a reused socket`);
    if (opts.updates > 0) {
      check('update commands ok', '', `${opts.updates - updateFailures}/${opts.updates}`, '', updateFailures === 0,
        `${updateSecs.toFixed(0)} s, ${(updateSecs / opts.updates * 1000).toFixed(0)} ms each`);
      check('failed requests during updates', '', failedIn(reloadEnd, updateEnd), '', failedIn(reloadEnd, updateEnd) === 0,
        `${diff(reloadEnd, updateEnd, 'newconn')} new-conn + ${diff(reloadEnd, updateEnd, 'keepalive')} keep-alive ok`);
      check('same daemon pid, workers and counters', '', daemonPid(home) === pid ? 'same' : 'moved', '',
        daemonPid(home) === pid && workersAfter === workersBefore, `${workersBefore} -> ${workersAfter}`);
    }
    check('crash-restarts back online', '', `${opts.crashes - crashTimeouts}/${opts.crashes}`, '', crashTimeouts === 0,
      `${crashSecs.toFixed(0)} s; restart_time total ${restarts}`);
    // Requests in flight on a worker killed with SIGKILL fail: expected.
    const errorsIn = (a, b) => ['newconn', 'keepalive'].map((k) => {
      const counts = Object.entries(b[k].errors).map(([e, n]) => `${e} ${n - (a[k].errors[e] || 0)}`);
      return `${k}: ${counts.join(', ') || 'none'}`;
    }).join('; ');
    check('failed requests during crashes (info)', '', crashFailed, '', true,
      `in flight on the killed worker (${errorsIn(updateEnd, stats)})`);
    check('daemon RSS MiB', mib(rss[0]), mib(after.rss), mib(Math.max(...rss)),
      after.rss - tenth.rss <= opts.rssSlackMib * 1024, `growth after the first tenth ≤ ${opts.rssSlackMib} MiB`);
    check('daemon fds', fdsAll[0], after.total, Math.max(...fdsAll), after.total <= before.total);
    check('daemon sockets', before.sockets, after.sockets, Math.max(...samples.map((s) => s.sockets)),
      after.sockets <= before.sockets);
    check('zombie children', '', zombieList.length, '', zombieList.length === 0, zombieList.join(' '));
    check('workers online at the end', '', final.filter((w) => w.pm2_env.status === 'online').length, '',
      final.length === 2 && final.every((w) => w.pm2_env.status === 'online'));

    const widths = [40, 8, 10, 8, 6];
    const line = (cells) => cells.map((c, i) => String(c).padEnd(widths[i] || 0)).join(' ');
    console.log(line(['check', 'first', 'last', 'max', 'ok']) + ' detail');
    for (const r of rows) console.log(line([r.name, r.first, r.last, r.max, r.ok ? 'ok' : 'FAIL']) + ' ' + r.detail);
    for (const n of notes) console.log(`note: ${n}`);
    const failed = rows.filter((r) => !r.ok);
    console.log(failed.length ? `soak: ${failed.length} check(s) failed` : 'soak: all checks passed');
    process.exitCode = failed.length ? 1 : 0;
  } finally {
    await cleanup();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
