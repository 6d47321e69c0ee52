#!/usr/bin/env node
// The npm `rpm2` command: run the native rpm2 executable with our argv and
// stdio, and leave with its exit code (or die of the same signal).
'use strict';
const { spawnSync } = require('node:child_process');
const { resolveBinary } = require('../npm/resolve-binary.js');

const exe = resolveBinary();
const result = spawnSync(exe, process.argv.slice(2), { stdio: 'inherit' });
if (result.error) {
  console.error(`[RPM2][ERROR] cannot run ${exe}: ${result.error.message}`);
  process.exit(1);
}
if (result.signal) {
  // Re-raise so our parent sees the same death (Ctrl-C on `rpm2 logs`).
  process.kill(process.pid, result.signal);
}
process.exit(result.status ?? 1);
