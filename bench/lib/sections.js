'use strict';
// The daemon-centred measurements: memory, CLI latency, cold start, crash
// recovery, reload and log throughput. Each section is a function
// (kind, cfg) -> one round's figures for that product ('rpm2' | 'pm2' |
// 'node', the plain-node reference where one makes sense; null = no figure).
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { withProduct, seedApp, fixtureApp, APPS, ROOT } = require('./products');
const { sleep, now, stats, waitFor, freePort, is200, rssBytes, cpuDuring } = require('./util');
const { cannon, ncpu } = require('./load');

const LISTENING = /listening/;
const MB = 1024 * 1024;

/** Start the seed app (cluster, nproc workers) and wait until it serves. */
async function startSeed(p, opts = {}) {
  const port = await freePort();
  p.start([seedApp({ port, ...opts })]);
  if (!(await waitFor(() => is200(port), { timeout: 20000 }))) throw new Error(`${p.kind}: seed app never served`);
  return port;
}

// ---------------------------------------------------------------- memory
async function rss(kind) {
  if (kind === 'node') {
    // A bare Node process (bench/apps/tiny.js): what any Node daemon starts from.
    const child = spawn(process.execPath, [path.join(APPS, 'tiny.js')], { stdio: 'ignore' });
    await sleep(1000);
    const bytes = rssBytes(child.pid);
    child.kill('SIGKILL');
    return { idleMB: bytes / MB };
  }
  const out = {};
  await withProduct(kind, async (p) => {
    p.cli(['ping']); // starts the daemon with no app
    await sleep(1000);
    out.idleMB = rssBytes(p.daemonPid()) / MB;
    await startSeed(p);
    await sleep(1000);
    out.seedMB = rssBytes(p.daemonPid()) / MB;
  });
  await withProduct(kind, async (p) => {
    const apps = Array.from({ length: 20 }, (_, i) => fixtureApp(`tiny${i}`, 'tiny.js'));
    p.start(apps);
    const ok = await waitFor(() => {
      const l = p.jlist();
      return l && l.length === 20 && l.every((x) => x.pm2_env.status === 'online');
    }, { timeout: 30000, interval: 200 });
    if (!ok) throw new Error(`${kind}: 20 apps not online`);
    await sleep(1000);
    out.apps20MB = rssBytes(p.daemonPid()) / MB;
  });
  return out;
}

// ---------------------------------------------------------------- CLI latency
async function cli(kind, cfg) {
  if (kind === 'node') return null;
  return withProduct(kind, async (p) => {
    await startSeed(p);
    const variants = kind === 'rpm2'
      ? { list: ['list', 'bin'], jlist: ['jlist', 'bin'], listNpx: ['list', 'npx'], jlistNpx: ['jlist', 'npx'] }
      : { list: ['list', 'bin'], jlist: ['jlist', 'bin'] };
    const out = {};
    for (const [key, [cmd, via]] of Object.entries(variants)) {
      p.cli([cmd], { via }); // warm the page cache; not counted
      const ms = [];
      for (let i = 0; i < cfg.cliRuns; i++) {
        const r = p.cli([cmd], { via });
        if (r.code !== 0) throw new Error(`${kind} ${cmd} via ${via} failed: ${r.out.slice(-500)}`);
        ms.push(r.ms);
      }
      out[`${key}Ms`] = stats(ms).median;
    }
    return out;
  });
}

// ---------------------------------------------------------------- cold start
/** One plain `node app.js` from spawn to its first 200 (ms). */
async function plainSpawnToServing() {
  const port = await freePort();
  const t0 = now();
  const { startPlain } = require('./plain');
  const g = await startPlain(port);
  const ms = now() - t0;
  await g.stop();
  return ms;
}

async function cold(kind) {
  // Physical reference: nproc plain processes from spawn to all serving is
  // not comparable; one `node app.js` from spawn to 200 is.
  if (kind === 'node') return { servingMs: await plainSpawnToServing() };
  return withProduct(kind, async (p) => {
    const port = await freePort();
    const t0 = now();
    const started = p.start([seedApp({ port })], { async: true });
    let returnedMs = null;
    started.then((r) => { returnedMs = now() - t0; if (r.code !== 0) console.error(`${kind} start: ${r.out}`); });
    // Serving = every worker has logged its listening line (it sends 'ready'
    // right after) and a fresh connection gets 200.
    const ok = await waitFor(async () => p.countLogLines('app-out', LISTENING) >= ncpu && is200(port),
      { timeout: 30000, interval: 10 });
    const servingMs = ok ? now() - t0 : null;
    await started;
    return { startReturnMs: returnedMs, servingMs };
  });
}

// ---------------------------------------------------------------- crash recovery
/** First 200 on a fresh connection, trying again every `pollMs` (ms since t0). */
async function firstServed(port, t0, pollMs) {
  for (;;) {
    if (await is200(port)) return now() - t0;
    if (now() - t0 > 30000) return null;
    await sleep(pollMs);
  }
}

/** Samples per round of each crash figure. */
const CRASH_SAMPLES = 12;
const TIMING_PRELOAD = path.join(__dirname, 'timing-preload.js');

/** The last start of the timed app, from the timing preload's lines in
 * `file` (epoch ms): { origin, main, listen, ready, request }, or null. */
function lastStart(file) {
  try {
    const lines = fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => l.split(' '));
    const ready = lines.filter(([what]) => what === 'ready').pop();
    if (!ready) return null;
    const origin = ready[1];
    const at = (step) => {
      const line = lines.find(([what, o]) => what === step && o === origin);
      return line ? Number(line[2]) : null;
    };
    return { origin: Number(origin), main: at('main'), listen: at('listen'), ready: Number(ready[2]), request: at('request') };
  } catch {
    return null;
  }
}

/** Epoch ms now, comparable with the timing preload's stamps. */
const epochNow = () => performance.timeOrigin + performance.now();

/** A crash or plain sample from `t0` (epoch ms, the kill or the spawn) to
 * the client's 200 (`total` ms later), split at the app's stamps. `code` is
 * the app's own code (main module → listen()); the other phases are where a
 * manager acts. */
function sample(total, t0, start) {
  const ok = total != null && start && start.main != null && start.listen != null && start.request != null;
  if (!ok) return { total, code: null };
  return {
    total,
    code: start.listen - start.main,
    toStart: start.origin - t0, // kill (plain: spawn) → the new process starts
    toMain: start.main - start.origin, // Node's bootstrap and the preloads
    toReady: start.ready - start.listen, // listen() → listening → the app's 'ready'
    toRequest: start.request - start.ready, // ready → the first request reaches the app
    toAnswer: t0 + total - start.request, // that request → 200 at the client
  };
}

/** Env for an app timed by the preload. */
const timedEnv = (file) => ({ NODE_OPTIONS: `--require ${TIMING_PRELOAD}`, RPM2_BENCH_TIMING: file });

/** kill -9 of a plain `node app.js` → its exit seen: the kernel's teardown
 * of the process, which comes before any manager can notice (ms). */
async function teardownMs() {
  const port = await freePort();
  const child = spawn(process.execPath, [path.join(ROOT, 'app.js')], {
    cwd: ROOT, env: { ...process.env, port: String(port) }, stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  await new Promise((resolve) => child.once('message', resolve)); // 'ready'
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const t0 = now();
  child.kill('SIGKILL');
  await exited;
  return now() - t0;
}

/** Plain `node app.js`: spawn → its `ready` message → one request's 200
 * (no polling client competing with its start-up); and its own start-up. */
async function plainServed(timing) {
  const port = await freePort();
  const t0 = now();
  const t0Epoch = epochNow();
  const child = spawn(process.execPath, [path.join(ROOT, 'app.js')], {
    cwd: ROOT, env: { ...process.env, port: String(port), ...timedEnv(timing) }, stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  await new Promise((resolve) => child.once('message', resolve));
  const total = await firstServed(port, t0, 1);
  child.kill('SIGKILL');
  return sample(total, t0Epoch, lastStart(timing));
}

/** Over samples: the fastest total, the fastest app code, the fastest total
 * less its own app code (its tens of ms of variation drop out), and the
 * fastest of each phase. */
function floors(samples) {
  const min = (xs) => (xs.length ? Math.min(...xs) : null);
  const served = samples.filter((s) => s.total != null);
  // pm2 runs the app in its own wrapper: no phases there.
  const timed = served.filter((s) => s.code != null);
  const phase = (key) => min(timed.map((s) => s[key]));
  return {
    total: min(served.map((s) => s.total)),
    median: served.length ? stats(served.map((s) => s.total)).median : null,
    code: phase('code'),
    rest: min(timed.map((s) => s.total - s.code)),
    toStart: phase('toStart'),
    toMain: phase('toMain'),
    toReady: phase('toReady'),
    toRequest: phase('toRequest'),
    toAnswer: phase('toAnswer'),
  };
}

/** The section's figures from floors(); `teardown` is taken off the rest
 * and the first phase of a crash, so that they compare with plain node's. */
function figures(f, teardown = 0) {
  const less = (x) => (x == null ? null : x - teardown);
  return {
    servingMs: f.median, servingFastestMs: f.total, codeMs: f.code, restMs: less(f.rest),
    toStartMs: less(f.toStart), toMainMs: f.toMain, toReadyMs: f.toReady, toRequestMs: f.toRequest, toAnswerMs: f.toAnswer,
  };
}

async function repeat(n, measure) {
  const out = [];
  for (let i = 0; i < n; i++) out.push(await measure(i));
  return out;
}

async function crash(kind) {
  const timing = path.join(os.tmpdir(), `rpm2-bench-timing-${process.pid}-${kind}`);
  fs.rmSync(timing, { force: true });
  // The floor for any manager: the killed process's teardown, then a new
  // `node app.js` from spawn to serving.
  if (kind === 'node') {
    const teardown = Math.min(...(await repeat(CRASH_SAMPLES, teardownMs)));
    const plain = floors(await repeat(CRASH_SAMPLES, () => plainServed(timing)));
    fs.rmSync(timing, { force: true });
    return { teardownMs: teardown, ...figures(plain) };
  }
  // The workers started after the last kill write their stamps too: the
  // file goes once the product is stopped.
  const removeTiming = () => fs.rmSync(timing, { force: true });
  return withProduct(kind, async (p) => {
    // One worker: whatever answers after the kill is its successor.
    const port = await startSeed(p, { instances: 1, env: timedEnv(timing) });
    const pidOf0 = () => p.jlist().find((x) => x.pm_id === 0).pid;
    // Each kill is paired with its references (a teardown, a plain start)
    // taken just before it, so that the machine's mood cancels out.
    const plainTiming = `${timing}-plain`;
    const served = [];
    const plainRuns = [];
    const teardowns = [];
    let servingSince = now();
    for (let i = 0; i < CRASH_SAMPLES; i++) {
      teardowns.push(await teardownMs());
      plainRuns.push(await plainServed(plainTiming));
      // Past min_uptime, so that the kill is an ordinary restart.
      await sleep(Math.max(0, 1500 - (now() - servingSince)));
      // Serving: one client, trying again every 1 ms from the kill on;
      // nothing else runs meanwhile (a jlist poller would compete for the CPU).
      const pid = pidOf0();
      const t0 = now();
      const t0Epoch = epochNow();
      process.kill(pid, 'SIGKILL');
      const total = await firstServed(port, t0, 1);
      servingSince = now();
      served.push(sample(total, t0Epoch, lastStart(timing)));
    }
    const teardown = Math.min(...teardowns);
    const plain = floors(plainRuns);
    const ours = floors(served);
    fs.rmSync(plainTiming, { force: true });
    fs.rmSync(timing, { force: true });
    await sleep(1500);
    // Online: one more kill, with `jlist` polled back to back.
    const before = pidOf0();
    const jlistMs = p.cli(['jlist']).ms; // poll resolution of the "online" figure
    const t0 = now();
    process.kill(before, 'SIGKILL');
    const ok = await waitFor(async () => {
      const l = await p.jlistAsync();
      const w = l && l.find((x) => x.pm_id === 0);
      return w && w.pid && w.pid !== before && w.pm2_env.status === 'online';
    }, { timeout: 30000, interval: 0 });
    const onlineMs = ok ? now() - t0 : null;
    // What the manager adds beyond the teardown: everything but the app's
    // own code, against plain node from spawn to its first 200.
    const addedMs = ours.rest == null || plain.rest == null ? null : ours.rest - teardown - plain.rest;
    // The same with the app's code left in: tens of ms of noise, shown so
    // that a manager slowing the app's own start-up could not hide.
    const addedWholeMs = ours.total == null || plain.total == null ? null : ours.total - teardown - plain.total;
    return { onlineMs, jlistMs, teardownMs: teardown, ...figures(ours, teardown), addedMs, addedWholeMs };
  }).finally(removeTiming);
}

// ---------------------------------------------------------------- reload
async function reload(kind, cfg) {
  if (kind === 'node') return null;
  return withProduct(kind, async (p) => {
    const port = await startSeed(p);
    await sleep(1000);
    const r = p.cli(['reload', 'app']);
    if (r.code !== 0) throw new Error(`${kind} reload failed: ${r.out.slice(-1000)}`);
    const out = { reloadMs: r.ms };
    // Two reloads under each kind of load; every non-2xx, error, timeout or
    // reset the client sees is a failed request.
    for (const mode of ['keepalive', 'close']) {
      const load = cannon({ port, mode, connections: 10, duration: 300 });
      await sleep(1000);
      const codes = [];
      for (let i = 0; i < 2; i++) {
        codes.push((await p.cliAsync(['reload', 'app'])).code);
        await sleep(500);
      }
      await sleep(500);
      load.stop();
      const res = await load.done;
      out[`failed_${mode}`] = res.failed;
      out[`requests_${mode}`] = res.total;
      out[`reloadExitCodes_${mode}`] = codes.join(',');
      out[`detail_${mode}`] = res;
    }
    return out;
  });
}

// ---------------------------------------------------------------- log throughput
function logBytes(dir, prefix) {
  try {
    return fs.readdirSync(dir).filter((f) => f.startsWith(prefix))
      .reduce((n, f) => n + fs.statSync(path.join(dir, f)).size, 0);
  } catch {
    return 0;
  }
}

/** Lines/s reaching `bytesFn()` over cfg.logSeconds, and `pid`'s CPU meanwhile. */
async function measureLog(bytesFn, pid, cfg) {
  await waitFor(() => bytesFn() > 0, { timeout: 10000 });
  await sleep(1000); // warm-up
  const b0 = bytesFn();
  const { cpuPct, seconds } = await cpuDuring(pid, () => sleep(cfg.logSeconds * 1000));
  const lines = (bytesFn() - b0) / 100; // flood.js lines are 100 bytes
  return { linesPerSec: lines / seconds, cpuPct };
}

async function logs(kind, cfg) {
  const out = {};
  for (const [tag, rate] of [['max', 0], ['100k', 100000]]) {
    if (kind === 'node') {
      // Physical reference: the same flooder redirected straight to a file.
      const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'bench-node-')), 'out.log');
      const fd = fs.openSync(file, 'w');
      const child = spawn(process.execPath, [path.join(APPS, 'flood.js')], { stdio: ['ignore', fd, 'inherit'], env: { ...process.env, RATE: String(rate) } });
      fs.closeSync(fd);
      const m = await measureLog(() => fs.statSync(file).size, child.pid, cfg);
      out[`linesPerSec_${tag}`] = m.linesPerSec;
      child.kill('SIGKILL');
      fs.rmSync(path.dirname(file), { recursive: true, force: true });
      continue;
    }
    await withProduct(kind, async (p) => {
      p.start([fixtureApp('flood', 'flood.js', { RATE: String(rate) })]);
      const m = await measureLog(() => logBytes(p.logDir, 'flood-out'), p.daemonPid(), cfg);
      // Check the 100-byte assumption (no prefix added by the product).
      const fd = fs.openSync(path.join(p.logDir, fs.readdirSync(p.logDir).find((f) => f.startsWith('flood-out'))), 'r');
      const buf = Buffer.alloc(1000);
      fs.readSync(fd, buf, 0, 1000, 0);
      fs.closeSync(fd);
      out[`lineBytes_${tag}`] = buf.indexOf(10) + 1;
      out[`linesPerSec_${tag}`] = m.linesPerSec;
      out[`daemonCpuPct_${tag}`] = m.cpuPct;
    });
  }
  return out;
}

module.exports = { rss, cli, cold, crash, reload, logs, startSeed };
