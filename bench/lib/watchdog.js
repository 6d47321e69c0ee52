'use strict';
// What the event-loop watchdog costs: rpm2 with N idle fork workers (the
// drain preload on), once with the default watchdog (a ping per worker per
// second) and once with `unresponsive_timeout: 0`, each in its own daemon.
// Daemon CPU and the workers' summed CPU over the same window; the rows
// divide the difference by N. rpm2 only (pm2 and node have no watchdog).
// CPU time comes from /proc/<pid>/task/*/sched (ns resolution, every
// thread): the clock ticks of /proc/<pid>/stat (10 ms) are too coarse for
// what one ping a second costs.
const fs = require('node:fs');
const { withProduct, fixtureApp } = require('./products');
const { sleep, now, waitFor, cpuSeconds } = require('./util');

/** CPU seconds of every thread of `pid` (sum_exec_runtime), else /proc/<pid>/stat's. */
function cpuOf(pid) {
  try {
    let ms = 0;
    for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
      const m = /se\.sum_exec_runtime\s*:\s*([\d.]+)/.exec(fs.readFileSync(`/proc/${pid}/task/${tid}/sched`, 'utf8'));
      if (!m) return cpuSeconds(pid);
      ms += Number(m[1]);
    }
    return ms / 1000;
  } catch {
    return cpuSeconds(pid);
  }
}

const WORKERS = 10;

async function measure(timeoutMs, seconds) {
  return withProduct('rpm2', async (p) => {
    const apps = Array.from({ length: WORKERS }, (_, i) => ({
      ...fixtureApp(`idle${i}`, 'tiny.js'),
      unresponsive_timeout: timeoutMs,
    }));
    p.start(apps);
    let pids = [];
    const ok = await waitFor(
      () => {
        const l = p.jlist();
        pids = (l || []).map((x) => x.pid).filter(Boolean);
        return l && l.length === WORKERS && l.every((x) => x.pm2_env.status === 'online');
      },
      { timeout: 30000, interval: 200 },
    );
    if (!ok) throw new Error(`rpm2: ${WORKERS} apps not online`);
    await sleep(2000); // start-up done, pings under way
    const daemon = p.daemonPid();
    const sum = (xs) => xs.reduce((a, b) => a + (b || 0), 0);
    const d0 = cpuOf(daemon);
    const w0 = sum(pids.map(cpuOf));
    const t0 = now();
    await sleep(seconds * 1000);
    const wall = (now() - t0) / 1000;
    const d1 = cpuOf(daemon);
    const w1 = sum(pids.map(cpuOf));
    const lags = (p.jlist() || []).map((x) => x.pm2_env.event_loop_lag_ms).filter((x) => x !== undefined);
    return {
      daemonPct: ((d1 - d0) / wall) * 100,
      workersPct: ((w1 - w0) / wall) * 100,
      lagged: lags.length,
    };
  });
}

async function watchdog(kind, cfg) {
  if (kind !== 'rpm2') return null;
  const seconds = cfg.loadSeconds * 2; // 8 s with --quick, 20 s otherwise
  const on = await measure(30000, seconds);
  const off = await measure(0, seconds);
  if (on.lagged !== WORKERS || off.lagged !== 0) {
    throw new Error(`watchdog on: ${on.lagged} workers with a lag, off: ${off.lagged} (want ${WORKERS} and 0)`);
  }
  return {
    daemonCpuPct_on: on.daemonPct,
    daemonCpuPct_off: off.daemonPct,
    workerCpuPct_on: on.workersPct / WORKERS,
    workerCpuPct_off: off.workersPct / WORKERS,
    // % of a core → µs of CPU per second, per watched worker.
    daemonUsPerWorkerSec: ((on.daemonPct - off.daemonPct) / WORKERS) * 1e4,
    workerUsPerSec: ((on.workersPct - off.workersPct) / WORKERS) * 1e4,
  };
}

module.exports = { watchdog, WORKERS };
