#!/usr/bin/env node
'use strict';
// The kernel-balanced reference for cluster mode: N plain `node app.js`
// processes, each with its own listening socket on the same port, all with
// SO_REUSEPORT, so the kernel spreads new connections over them (no primary,
// no fd passing). Node >= 22.12 sets SO_REUSEPORT itself (`reusePort`); older
// Node cannot, so a tiny python3 shim creates the socket with SO_REUSEPORT,
// puts it on fd 3 and execs node, which listens on that fd.
//   node bench/reuseport.js --port 8000 [--n nproc]    (Ctrl-C stops them)
const path = require('node:path');
const os = require('node:os');
const { spawn, spawnSync } = require('node:child_process');

const ROOT = path.resolve(__dirname, '..');
const PRELOAD = path.join(__dirname, 'lib', 'listen-preload.js');
const [major, minor] = process.versions.node.split('.').map(Number);
const nativeReusePort = major > 22 || (major === 22 && minor >= 12);

const PY = `
import os, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
s.bind(('0.0.0.0', int(sys.argv[1])))
s.listen(511)
if s.fileno() != 3: os.dup2(s.fileno(), 3)
os.set_inheritable(3, True)  # socket() may itself be fd 3, close-on-exec
os.execvp(sys.argv[2], sys.argv[2:])
`;

function method() {
  if (nativeReusePort) return 'node reusePort';
  return spawnSync('python3', ['-c', 'import socket; socket.SO_REUSEPORT']).status === 0 ? 'python3 SO_REUSEPORT fd' : null;
}

/** Spawn n processes sharing `port`; returns { pids, method, stop() }. */
function startReusePort({ port, n = os.availableParallelism ? os.availableParallelism() : os.cpus().length }) {
  const how = method();
  if (!how) throw new Error('no way to set SO_REUSEPORT: need Node >= 22.12 or python3');
  const children = [];
  for (let i = 0; i < n; i++) {
    const nodeArgv = [process.execPath, '-r', PRELOAD, path.join(ROOT, 'app.js')];
    const env = { ...process.env, port: String(port) };
    let child;
    if (nativeReusePort) {
      env.BENCH_REUSEPORT = '1';
      child = spawn(nodeArgv[0], nodeArgv.slice(1), { cwd: ROOT, env, stdio: ['ignore', 'ignore', 'inherit'] });
    } else {
      env.BENCH_LISTEN_FD = '3';
      child = spawn('python3', ['-c', PY, String(port), ...nodeArgv], { cwd: ROOT, env, stdio: ['ignore', 'ignore', 'inherit'] });
    }
    children.push(child); // exec keeps the pid: child.pid is node's pid
  }
  return {
    method: how,
    pids: children.map((c) => c.pid),
    stop: () => Promise.all(children.map((c) => new Promise((r) => {
      if (c.exitCode !== null || c.signalCode !== null) return r();
      c.once('exit', r);
      c.kill('SIGKILL');
    }))),
  };
}

module.exports = { startReusePort, method };

if (require.main === module) {
  const arg = (name, dflt) => { const i = process.argv.indexOf(name); return i > 0 ? process.argv[i + 1] : dflt; };
  const group = startReusePort({ port: Number(arg('--port', 8000)), n: Number(arg('--n', os.cpus().length)) });
  console.log(`${group.pids.length} processes (${group.method}) on port ${arg('--port', 8000)}: ${group.pids.join(' ')}`);
  const stop = () => group.stop().then(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
