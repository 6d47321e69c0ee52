'use strict';
// Load generation: autocannon in its own process, pinned to one core with
// taskset when available. Keep-alive = autocannon's pooled connections with
// pipelining 1; new connection per request = the `connection: close` header,
// which makes the server close after each response and autocannon reconnect
// (verifyCloseMode() checks that on a counting server, every run).
const http = require('node:http');
const path = require('node:path');
const os = require('node:os');
const { spawn, spawnSync } = require('node:child_process');
const { freePort } = require('./util');

const CANNON = path.join(__dirname, 'cannon.js');
const hasTaskset = spawnSync('taskset', ['-c', '0', 'true']).status === 0;
const ncpu = os.availableParallelism ? os.availableParallelism() : os.cpus().length;
/** The last core: the servers are not pinned and may use every core. */
const LOAD_CORE = hasTaskset ? String(ncpu - 1) : null;
const running = new Set();

/**
 * Start autocannon against 127.0.0.1:port. Returns { done: Promise<summary>, stop() }.
 * mode: 'keepalive' | 'close'. `rate`: a fixed total of requests per second
 * (autocannon's -R, overallRate) instead of as fast as possible.
 */
function cannon({ port, mode = 'keepalive', connections = 50, duration = 10, rate = null }) {
  const opts = {
    url: `http://127.0.0.1:${port}/`, connections, pipelining: 1, duration, timeout: 10,
    headers: mode === 'close' ? { connection: 'close' } : {},
    ...(rate ? { overallRate: rate } : {}),
  };
  const argv = [process.execPath, CANNON, JSON.stringify(opts)];
  // Its own session: with the kernel's autogroup scheduling (on by default
  // on many distributions) CPU is shared fairly between sessions, and both
  // daemons run their workers in a session of their own. Without this the
  // plain-node reference, started from this process, would share a group
  // with the load generator and be scheduled differently from the products.
  const spawnOpts = { stdio: ['ignore', 'pipe', 'inherit'], detached: true };
  const child = hasTaskset ? spawn('taskset', ['-c', LOAD_CORE, ...argv], spawnOpts)
    : spawn(argv[0], argv.slice(1), spawnOpts);
  running.add(child);
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  const done = new Promise((resolve) => child.on('close', () => {
    running.delete(child);
    try { resolve(JSON.parse(out.trim().split('\n').pop())); } catch { resolve({ error: `bad output: ${out}` }); }
  }));
  // taskset execs node, so the child pid is autocannon's own pid.
  return { done, stop: () => child.kill('SIGTERM'), pid: child.pid };
}

const run = (o) => cannon(o).done;

/** Stop every load generator still running (SIGINT / finally). */
function killLoads() {
  for (const c of running) { try { c.kill('SIGKILL'); } catch { /* gone */ } }
}

/** Does `connection: close` really open one TCP connection per request? */
async function verifyCloseMode() {
  const port = await freePort();
  let conns = 0; let reqs = 0;
  const srv = http.createServer((q, r) => { reqs++; r.end('ok'); });
  srv.on('connection', () => conns++);
  await new Promise((r) => srv.listen(port, r));
  const res = await run({ port, mode: 'close', connections: 10, duration: 1 });
  await new Promise((r) => srv.close(r));
  return { serverConnections: conns, serverRequests: reqs, clientResponses: res.total,
    oneConnectionPerRequest: conns >= reqs && reqs > 0 };
}

module.exports = { cannon, run, killLoads, verifyCloseMode, LOAD_CORE, hasTaskset, ncpu };
