'use strict';
// HTTP throughput and p99 latency on the seed app: fork mode with 1 worker
// and cluster mode with nproc workers, keep-alive and a new connection per
// request. 'node' is the reference: one plain `node app.js` for fork mode,
// nproc plain processes on one SO_REUSEPORT port for cluster mode.
const { withProduct } = require('./products');
const { sleep, freePort, cpuDuring } = require('./util');
const { cannon, ncpu } = require('./load');
const { startPlain, startReuse } = require('./plain');
const { startSeed } = require('./sections');

/** Warm up, then one measured run per connection mode; daemon CPU meanwhile. */
async function loads(port, daemonPid, cfg) {
  const out = {};
  for (const mode of ['keepalive', 'close']) {
    await cannon({ port, mode, connections: cfg.connections, duration: cfg.warmSeconds }).done;
    const measure = () => cannon({ port, mode, connections: cfg.connections, duration: cfg.loadSeconds }).done;
    const { result, cpuPct } = daemonPid ? await cpuDuring(daemonPid, measure) : { result: await measure(), cpuPct: null };
    if (result.error) throw new Error(`autocannon: ${result.error}`);
    out[`rps_${mode}`] = result.rps;
    out[`p99_${mode}`] = result.p99;
    out[`failed_${mode}`] = result.non2xx + result.errors + result.timeouts + result.resets;
    if (daemonPid) out[`daemonCpuPct_${mode}`] = cpuPct;
    await sleep(300);
  }
  return out;
}

const prefix = (tag, o) => Object.fromEntries(Object.entries(o).map(([k, v]) => [`${tag}_${k}`, v]));

async function throughput(kind, cfg) {
  const out = {};
  for (const [tag, instances, mode] of [['fork', 1, 'fork'], ['cluster', 0, 'cluster']]) {
    if (kind === 'node') {
      const port = await freePort();
      const g = tag === 'fork' ? await startPlain(port) : await startReuse(port, ncpu);
      try {
        Object.assign(out, prefix(tag, await loads(port, null, cfg)));
        out[`${tag}_method`] = g.method;
      } finally {
        await g.stop();
      }
      continue;
    }
    await withProduct(kind, async (p) => {
      const port = await startSeed(p, { instances, mode });
      await sleep(500);
      Object.assign(out, prefix(tag, await loads(port, p.daemonPid(), cfg)));
    });
  }
  return out;
}

module.exports = { throughput };
