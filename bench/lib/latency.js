'use strict';
// Two sections beside `throughput`:
// - `latency`: the seed app in cluster mode (nproc workers) under a fixed
//   request rate well below saturation (autocannon -R), so p50/p99 show what
//   each product adds to a request instead of queueing in the accept
//   backlog and SYN retransmits (see bench/README.md). Ref: nproc plain
//   `node app.js` on one SO_REUSEPORT port.
// - `preload`: rpm2 alone, the same app with its drain preload on and off
//   (`drain: false`), one after the other in each round (which goes first
//   alternates), keep-alive at full speed:
//   what the preload costs per request.
const { withProduct } = require('./products');
const { sleep, freePort } = require('./util');
const { cannon, ncpu } = require('./load');
const { startReuse } = require('./plain');
const { startSeed } = require('./sections');

/** Fixed rates (req/s) for each connection mode, far below what any product serves here. */
const RATES = { keepalive: 1000, close: 100 };

async function fixedRate(port, cfg) {
  const out = {};
  for (const [mode, rate] of Object.entries(RATES)) {
    await cannon({ port, mode, connections: 10, duration: cfg.warmSeconds, rate }).done;
    const r = await cannon({ port, mode, connections: 10, duration: cfg.loadSeconds, rate }).done;
    if (r.error) throw new Error(`autocannon: ${r.error}`);
    Object.assign(out, { [`rps_${mode}`]: r.rps, [`p50_${mode}`]: r.p50, [`p99_${mode}`]: r.p99, [`failed_${mode}`]: r.failed });
    await sleep(300);
  }
  return out;
}

async function latency(kind, cfg) {
  if (kind === 'node') {
    const port = await freePort();
    const g = await startReuse(port, ncpu);
    try {
      return await fixedRate(port, cfg);
    } finally {
      await g.stop();
    }
  }
  return withProduct(kind, async (p) => {
    const port = await startSeed(p);
    await sleep(500);
    return fixedRate(port, cfg);
  });
}

/** Which of on/off goes first flips every round, so drift on a busy machine does not favour one. */
let preloadRound = 0;

async function preload(kind, cfg) {
  if (kind !== 'rpm2') return null;
  const out = {};
  const order = preloadRound++ % 2 === 0 ? [true, false] : [false, true];
  for (const [tag, mode, instances] of [['fork', 'fork', 1], ['cluster', 'cluster', 0]]) {
    for (const drain of order) {
      await withProduct(kind, async (p) => {
        const port = await startSeed(p, { mode, instances, drain });
        await sleep(500);
        await cannon({ port, connections: cfg.connections, duration: cfg.warmSeconds }).done;
        const r = await cannon({ port, connections: cfg.connections, duration: cfg.loadSeconds }).done;
        if (r.error) throw new Error(`autocannon: ${r.error}`);
        out[`${tag}_rps_${drain ? 'on' : 'off'}`] = r.rps;
      });
    }
    out[`${tag}_ratio`] = out[`${tag}_rps_on`] / out[`${tag}_rps_off`];
  }
  return out;
}

module.exports = { latency, preload, RATES };
