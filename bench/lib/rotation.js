'use strict';
// Log rotation's cost (rpm2 only): the flat-out flooder of the `logs`
// section, once with rotation every few MB and once with rotation off, one
// after the other in each round (which goes first flips by round). Lines/s
// counts every byte written, rotated files included: a poller remembers
// each file's last size, so files deleted by `retain` still count.
const fs = require('node:fs');
const path = require('node:path');
const { withProduct, fixtureApp } = require('./products');
const { sleep, waitFor, cpuDuring } = require('./util');

const ROTATE_SIZE = '4M';
let round = 0;

/** Total bytes ever seen in files starting with `prefix` (polled every 50 ms). */
function tracker(dir, prefix) {
  const seen = new Map();
  const poll = () => {
    let names = [];
    try {
      names = fs.readdirSync(dir).filter((f) => f.startsWith(prefix));
    } catch {
      return;
    }
    for (const f of names) {
      try {
        const size = fs.statSync(path.join(dir, f)).size;
        // The live file shrinks to 0 when it rotates: its old bytes are
        // in the rotated file now, under another name.
        seen.set(f, size);
      } catch {
        // deleted between readdir and stat: its last size stays counted
      }
    }
  };
  const timer = setInterval(poll, 50);
  return {
    bytes() {
      poll();
      let n = 0;
      for (const v of seen.values()) n += v;
      return n;
    },
    stop() {
      clearInterval(timer);
    },
  };
}

async function run(p, cfg, on) {
  if (on) {
    p.cli(['set', 'pm2-logrotate:max_size', ROTATE_SIZE]);
    p.cli(['set', 'pm2-logrotate:retain', '5']);
  } else {
    p.cli(['set', 'pm2-logrotate:enabled', 'false']);
  }
  p.start([fixtureApp('flood', 'flood.js', { RATE: '0' })]);
  const t = tracker(p.logDir, 'flood-out');
  try {
    await waitFor(() => t.bytes() > 0, { timeout: 10000 });
    await sleep(1000); // warm-up
    const b0 = t.bytes();
    const { cpuPct, seconds } = await cpuDuring(p.daemonPid(), () => sleep(cfg.logSeconds * 1000));
    const lines = (t.bytes() - b0) / 100; // flood.js lines are 100 bytes
    const rotated = fs.readdirSync(p.logDir).filter((f) => f.startsWith('flood-out') && f.includes('__')).length;
    return { linesPerSec: lines / seconds, cpuPct, rotated };
  } finally {
    t.stop();
  }
}

async function rotation(kind, cfg) {
  if (kind !== 'rpm2') return null;
  const out = {};
  const order = round++ % 2 === 0 ? [true, false] : [false, true];
  for (const on of order) {
    const tag = on ? 'on' : 'off';
    await withProduct(kind, async (p) => {
      const m = await run(p, cfg, on);
      out[`linesPerSec_${tag}`] = m.linesPerSec;
      out[`daemonCpuPct_${tag}`] = m.cpuPct;
      if (on) out.rotatedFilesKept = m.rotated;
    });
  }
  out.linesRatio = out.linesPerSec_on / out.linesPerSec_off;
  out.cpuPerLineRatio = (out.daemonCpuPct_on / out.linesPerSec_on) / (out.daemonCpuPct_off / out.linesPerSec_off);
  return out;
}

module.exports = { rotation };
