'use strict';
// Small helpers shared by every section: stats, polling, ports, HTTP probes,
// and /proc readings (RSS, CPU ticks) for the daemons.
const fs = require('node:fs');
const net = require('node:net');
const http = require('node:http');
const { execFileSync } = require('node:child_process');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const now = () => Number(process.hrtime.bigint()) / 1e6; // ms, monotonic

/** median / min / max / all samples of a list of numbers (nulls dropped). */
function stats(xs) {
  const v = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return { median: null, min: null, max: null, n: 0, samples: xs };
  const m = v.length >> 1;
  const median = v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
  return { median, min: v[0], max: v[v.length - 1], n: v.length, samples: xs };
}

/** Poll `fn` (sync or async) every `interval` ms until truthy; null on timeout. */
async function waitFor(fn, { timeout = 20000, interval = 10 } = {}) {
  const deadline = Date.now() + timeout;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
    } catch { /* not yet */ }
    await sleep(interval);
  }
  return null;
}

/** A TCP port nobody listens on right now (0.0.0.0, as the app binds). */
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** GET / on a fresh connection; resolves the status code, rejects on error. */
function httpStatus(port, timeout = 2000) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', agent: false, timeout }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}
const is200 = (port) => httpStatus(port).then((s) => s === 200, () => false);

/** Resident set size of a pid in bytes (VmRSS), or null if it is gone. */
function rssBytes(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

let clkTck = 100;
try { clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100; } catch { /* keep 100 */ }

/** utime+stime of a pid in seconds (from /proc/<pid>/stat), or null. */
function cpuSeconds(pid) {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the ")" that closes comm; utime/stime are fields 14/15.
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / clkTck;
  } catch {
    return null;
  }
}

/** Measure a pid's CPU use over an async action: % of one core. */
async function cpuDuring(pid, action) {
  const c0 = cpuSeconds(pid); const t0 = now();
  const result = await action();
  const c1 = cpuSeconds(pid); const t1 = now();
  const pct = c0 == null || c1 == null ? null : ((c1 - c0) / ((t1 - t0) / 1000)) * 100;
  return { result, cpuPct: pct, seconds: (t1 - t0) / 1000 };
}

function alive(pid) {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

module.exports = { sleep, now, stats, waitFor, freePort, httpStatus, is200, rssBytes, cpuSeconds, cpuDuring, alive, clkTck };
