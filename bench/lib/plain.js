'use strict';
// Plain `node app.js` references: one process with an IPC channel (app.js
// calls process.send('ready')), and the SO_REUSEPORT group of bench/reuseport.js.
const path = require('node:path');
const { spawn } = require('node:child_process');
const { ROOT } = require('./products');
const { startReusePort } = require('../reuseport');
const { waitFor, is200 } = require('./util');

const live = new Set();

/** One `node app.js` on `port`, resolved once it answers 200. */
async function startPlain(port) {
  const child = spawn(process.execPath, [path.join(ROOT, 'app.js')], {
    cwd: ROOT, env: { ...process.env, port: String(port) }, stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  const group = { method: 'node app.js', pids: [child.pid], stop: () => new Promise((r) => {
    live.delete(group);
    if (child.exitCode !== null || child.signalCode !== null) return r();
    child.once('exit', r); child.kill('SIGKILL');
  }) };
  live.add(group);
  if (!(await waitFor(() => is200(port), { timeout: 15000 }))) throw new Error('plain node app.js did not serve');
  return group;
}

/** n processes sharing `port` with SO_REUSEPORT, resolved once serving. */
async function startReuse(port, n) {
  const g = startReusePort({ port, n });
  const stop = g.stop;
  const group = { ...g, stop: () => { live.delete(group); return stop(); } };
  live.add(group);
  if (!(await waitFor(() => is200(port), { timeout: 15000 }))) throw new Error('reuseport group did not serve');
  await require('./util').sleep(300); // every process listening, not just the first
  return group;
}

function killPlain() {
  for (const g of [...live]) g.stop();
}

module.exports = { startPlain, startReuse, killPlain };
