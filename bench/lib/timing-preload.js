'use strict';
// Loaded with `--require` into the crash section's app (under every
// manager and plain): when the app sends 'ready' (it has listened), append
// "<process start> <ready>" in epoch ms to $RPM2_BENCH_TIMING, so the app's
// own start-up time — the same code under any manager, and the noisiest
// part of a restart — can be told apart from what the manager adds.
const fs = require('node:fs');

const file = process.env.RPM2_BENCH_TIMING;
const send = process.send;
if (file && send) {
  process.send = function timedSend(msg, ...rest) {
    if (msg === 'ready') {
      const origin = performance.timeOrigin;
      fs.appendFileSync(file, `${origin.toFixed(3)} ${(origin + performance.now()).toFixed(3)}\n`);
    }
    return send.call(this, msg, ...rest);
  };
}
