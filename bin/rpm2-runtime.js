#!/usr/bin/env node
// The npm `rpm2-runtime` command: the native rpm2 executable, started
// under the name `rpm2-runtime` (it picks that mode by its argv[0]).
// Unlike bin/rpm2.js it forwards signals: a launcher that is a container's
// PID 1 would otherwise swallow SIGTERM. Images should run the native
// binary itself (a link named rpm2-runtime) so that it is PID 1.
'use strict';
const { spawn } = require('node:child_process');
const { resolveBinary } = require('../npm/resolve-binary.js');

const exe = resolveBinary();
const child = spawn(exe, process.argv.slice(2), { stdio: 'inherit', argv0: 'rpm2-runtime' });
const forwarded = ['SIGTERM', 'SIGINT', 'SIGQUIT', 'SIGHUP', 'SIGUSR2'];
for (const signal of forwarded) process.on(signal, () => child.kill(signal));
child.on('error', (e) => {
  console.error(`[RPM2][ERROR] cannot run ${exe}: ${e.message}`);
  process.exit(1);
});
child.on('exit', (code, signal) => {
  if (signal) {
    // Die of the same signal, as the runtime did.
    for (const s of forwarded) process.removeAllListeners(s);
    process.kill(process.pid, signal);
  }
  process.exit(code ?? 1);
});
