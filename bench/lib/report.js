'use strict';
// Turns the per-round figures into medians [min–max] per product, ratios
// rpm2/pm2 and rpm2/reference, goal checks, and one printed table.
const { stats } = require('./util');

// [section, key, label, goal, pm2Key, refKey]. Goal kinds: vsPm2 ≤/≥ x,
// vsRef ≥ x, abs ≤/< x. pm2Key lets a row compare rpm2-through-npx with
// pm2's own command; refKey names the reference figure measured elsewhere.
const ROWS = [
  ['rss', 'idleMB', 'daemon RSS, idle (MB)', { vsPm2: ['<=', 0.1] }],
  ['rss', 'seedMB', 'daemon RSS, seed app 2 workers (MB)', { vsPm2: ['<=', 0.1] }],
  ['rss', 'apps20MB', 'daemon RSS, 20 fork apps (MB)', { vsPm2: ['<=', 0.1] }],
  ['cli', 'listMs', '`list` latency, native binary (ms)', { vsPm2: ['<=', 1 / 20] }],
  ['cli', 'jlistMs', '`jlist` latency, native binary (ms)', {}],
  ['cli', 'listNpxMs', '`list` via npx rpm2 vs pm2 list (ms)', {}, 'listMs'],
  ['cli', 'jlistNpxMs', '`jlist` via npx rpm2 vs pm2 jlist (ms)', {}, 'jlistMs'],
  ['cold', 'startReturnMs', 'cold start → `start` returns (ms)', {}],
  ['cold', 'servingMs', 'cold start → all workers serving (ms)', { vsPm2: ['<=', 0.5] }],
  ['throughput', 'fork_rps_keepalive', 'fork 1 worker, keep-alive (req/s)', {}],
  ['throughput', 'fork_p99_keepalive', 'fork 1 worker, keep-alive p99 (ms)', {}],
  ['throughput', 'fork_rps_close', 'fork 1 worker, new conn/req (req/s)', {}],
  ['throughput', 'fork_p99_close', 'fork 1 worker, new conn/req p99 (ms)', {}],
  ['throughput', 'cluster_rps_keepalive', 'cluster nproc, keep-alive (req/s)', { vsPm2: ['>=', 1], vsRef: ['>=', 0.95] }],
  ['throughput', 'cluster_p99_keepalive', 'cluster nproc, keep-alive p99 (ms)', {}],
  ['throughput', 'cluster_rps_close', 'cluster nproc, new conn/req (req/s)', { vsPm2: ['>=', 1.5] }],
  ['throughput', 'cluster_p99_close', 'cluster nproc, new conn/req p99 (ms)', {}],
  ['throughput', 'shared_rps_close', 'cluster, SCHED_POLICY=none, new conn/req (req/s)', {}, null, 'cluster_rps_close'],
  ['throughput', 'shared_p99_close', 'cluster, SCHED_POLICY=none, new conn/req p99 (ms)', {}, null, 'cluster_p99_close'],
  ['throughput', 'cluster_daemonCpuPct_keepalive', 'daemon CPU, cluster keep-alive (% core)', {}],
  ['throughput', 'cluster_daemonCpuPct_close', 'daemon CPU, cluster new conn/req (% core)', {}],
  ['throughput', 'shared_daemonCpuPct_close', 'daemon CPU, SCHED_POLICY=none new conn/req (% core)', {}],
  ['latency', 'rps_keepalive', 'cluster nproc, keep-alive at 1000 req/s: served (req/s)', {}],
  ['latency', 'p50_keepalive', 'cluster nproc, keep-alive at 1000 req/s p50 (ms)', {}],
  ['latency', 'p99_keepalive', 'cluster nproc, keep-alive at 1000 req/s p99 (ms)', {}],
  ['latency', 'rps_close', 'cluster nproc, new conn/req at 100 req/s: served (req/s)', {}],
  ['latency', 'p50_close', 'cluster nproc, new conn/req at 100 req/s p50 (ms)', {}],
  ['latency', 'p99_close', 'cluster nproc, new conn/req at 100 req/s p99 (ms)', {}],
  ['preload', 'fork_rps_on', 'rpm2 fork 1 worker keep-alive, drain preload on (req/s)', {}],
  ['preload', 'fork_rps_off', 'rpm2 fork 1 worker keep-alive, drain: false (req/s)', {}],
  ['preload', 'fork_ratio', '  preload on / off, same round (fork)', {}],
  ['preload', 'cluster_rps_on', 'rpm2 cluster nproc keep-alive, drain preload on (req/s)', {}],
  ['preload', 'cluster_rps_off', 'rpm2 cluster nproc keep-alive, drain: false (req/s)', {}],
  ['preload', 'cluster_ratio', '  preload on / off, same round (cluster)', {}],
  ['reload', 'reloadMs', '`reload app` wall time, idle (ms)', {}],
  ['reload', 'failed_keepalive', 'failed req, 2 reloads, keep-alive load', { abs: ['<=', 0] }],
  ['reload', 'failed_close', 'failed req, 2 reloads, new conn/req load', { abs: ['<=', 0] }],
  ['crash', 'onlineMs', 'kill -9 → new pid online in jlist (ms)', {}],
  ['crash', 'jlistMs', '  (one jlist call = poll resolution, ms)', {}],
  ['crash', 'servingMs', 'kill -9 → successor serving, 1 worker (median of 12, ms)', { vsPm2: ['<=', 0.5] }],
  ['crash', 'servingFastestMs', '  the same, fastest of 12; node ref: spawn → 200 (ms)', {}],
  ['crash', 'teardownMs', '  kill -9 → exit seen, plain node (kernel teardown, ms)', {}],
  ['crash', 'codeMs', "  the app's own code, main module → listen() (fastest, ms)", {}],
  ['crash', 'restMs', "  the rest: serving − app's code − teardown (fastest, ms)", {}],
  ['crash', 'toStartMs', '    kill -9 − teardown (ref: spawn) → new process starts (fastest, ms)', {}],
  ['crash', 'toMainMs', "    process start → app's main module: bootstrap, preloads (fastest, ms)", {}],
  ['crash', 'toReadyMs', "    listen() → the app's 'ready' (fastest, ms)", {}],
  ['crash', 'toRequestMs', '    ready → the first request reaches the app (fastest, ms)', {}],
  ['crash', 'toAnswerMs', '    that request → 200 at the client (fastest, ms)', {}],
  ['crash', 'addedMs', '  added by the manager beyond the teardown (rest vs plain node, ms)', { abs: ['<=', 3] }],
  ['crash', 'addedWholeMs', "    the same, app's code left in (fastest vs fastest; noisy, ms)", {}],
  ['logs', 'linesPerSec_max', 'log lines/s to file, flat out', {}],
  ['logs', 'daemonCpuPct_max', 'daemon CPU, flat-out logging (% core)', {}],
  ['logs', 'linesPerSec_100k', 'log lines/s to file, at 100k/s', {}],
  ['logs', 'daemonCpuPct_100k', 'daemon CPU at 100k lines/s (% core)', { abs: ['<', 5] }],
  ['rotation', 'linesPerSec_off', 'rpm2 flat-out logging, rotation off (lines/s)', {}],
  ['rotation', 'linesPerSec_on', 'rpm2 flat-out logging, rotating every 4 MB (lines/s)', {}],
  ['rotation', 'linesRatio', '  rotation on / off lines/s, same round (read the median)', {}],
  ['rotation', 'daemonCpuPct_off', 'rpm2 daemon CPU, rotation off (% core)', {}],
  ['rotation', 'daemonCpuPct_on', 'rpm2 daemon CPU, rotating every 4 MB (% core)', {}],
  ['rotation', 'cpuPerLineRatio', '  daemon CPU per line, on / off (read the median)', {}],
  ['install', 'npxMs', '`--version` via npx, npm-installed (ms)', {}],
  ['install', 'binMs', '`--version` via node_modules/.bin (ms)', {}],
  ['install', 'globalMs', '`--version` via a global install vs pm2 .bin (ms)', {}, 'binMs'],
  ['install', 'nativeMs', '`--version`, native executable vs pm2 .bin (ms)', {}, 'binMs'],
  ['install', 'jsLauncherMs', '`--version` via the JS launcher bin/rpm2.js vs pm2 .bin (ms)', {}, 'binMs'],
  ['watchdog', 'daemonCpuPct_on', 'rpm2 daemon CPU, 10 idle workers, watchdog on (% core)', {}],
  ['watchdog', 'daemonCpuPct_off', 'rpm2 daemon CPU, 10 idle workers, unresponsive_timeout 0 (% core)', {}],
  ['watchdog', 'workerCpuPct_on', 'rpm2 idle worker CPU, watchdog on (% core, per worker)', {}],
  ['watchdog', 'workerCpuPct_off', 'rpm2 idle worker CPU, watchdog off (% core, per worker)', {}],
  ['watchdog', 'daemonUsPerWorkerSec', '  watchdog cost in the daemon (µs CPU per worker per s)', {}],
  ['watchdog', 'workerUsPerSec', '  watchdog cost in a worker (µs CPU per s)', {}],
];

const pick = (rounds, key) => (rounds || []).map((r) => (r && typeof r[key] === 'number' ? r[key] : null));
const cmp = (op, a, b) => (op === '<=' ? a <= b : op === '>=' ? a >= b : op === '<' ? a < b : a > b);

/** raw[section][kind] = [round figures...] -> summary rows. */
function summarize(raw) {
  const rows = [];
  for (const [section, key, label, goal, pm2Key, refKey] of ROWS) {
    if (!raw[section]) continue;
    const r = stats(pick(raw[section].rpm2, key));
    const p = stats(pick(raw[section].pm2, pm2Key || key));
    const n = stats(pick(raw[section].node, refKey || key));
    const vsPm2 = r.median != null && p.median ? r.median / p.median : null;
    const vsRef = r.median != null && n.median ? r.median / n.median : null;
    const checks = [];
    if (goal.vsPm2 && vsPm2 != null) checks.push(cmp(goal.vsPm2[0], vsPm2, goal.vsPm2[1]));
    if (goal.vsRef && vsRef != null) checks.push(cmp(goal.vsRef[0], vsRef, goal.vsRef[1]));
    if (goal.abs && r.max != null) checks.push(cmp(goal.abs[0], r.max, goal.abs[1]));
    const goalText = [
      goal.vsPm2 && `rpm2/pm2 ${goal.vsPm2[0]} ${+goal.vsPm2[1].toFixed(3)}`,
      goal.vsRef && `rpm2/ref ${goal.vsRef[0]} ${goal.vsRef[1]}`,
      goal.abs && `rpm2 ${goal.abs[0]} ${goal.abs[1]}`,
    ].filter(Boolean).join(', ');
    rows.push({ section, key, label, rpm2: r, pm2: p, ref: n, vsPm2, vsRef, goal: goalText,
      pass: checks.length ? checks.every(Boolean) : null });
  }
  return rows;
}

function fmt(x) {
  if (x == null) return '-';
  const a = Math.abs(x);
  return a >= 1000 ? Math.round(x).toString() : a >= 100 ? x.toFixed(0) : a >= 10 ? x.toFixed(1) : x.toFixed(2);
}
const cell = (s) => (s.median == null ? '-' : s.n > 1 ? `${fmt(s.median)} [${fmt(s.min)}–${fmt(s.max)}]` : fmt(s.median));

function table(rows) {
  const head = ['figure', 'rpm2 med [min–max]', 'pm2 med [min–max]', 'node ref', 'rpm2/pm2', 'rpm2/ref', 'goal', 'ok'];
  const body = rows.map((r) => [r.label, cell(r.rpm2), cell(r.pm2), cell(r.ref), fmt(r.vsPm2), fmt(r.vsRef),
    r.goal || '', r.pass == null ? '' : r.pass ? 'yes' : 'NO']);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cols) => cols.map((c, i) => c.padEnd(w[i])).join(' | ');
  return [line(head), w.map((n) => '-'.repeat(n)).join('-|-'), ...body.map(line)].join('\n');
}

module.exports = { summarize, table };
