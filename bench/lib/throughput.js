'use strict';
// HTTP throughput and p99 latency on the seed app: fork mode with 1 worker
// and cluster mode with nproc workers, keep-alive and a new connection per
// request (and cluster mode with shared sockets, new connection per request). 'node' is the reference: one plain `node app.js` for fork mode,
// nproc plain processes on one SO_REUSEPORT port for cluster mode.
const { withProduct } = require('./products');
const { sleep, freePort, cpuDuring } = require('./util');
const { cannon, ncpu } = require('./load');
const { startPlain, startReuse } = require('./plain');
const { startSeed } = require('./sections');

/** Warm up, then one measured run per connection mode; daemon CPU meanwhile. */
async function loads(port, daemonPid, cfg, modes = ['keepalive', 'close']) {
  const out = {};
  for (const mode of modes) {
    await cannon({ port, mode, connections: cfg.connections, duration: cfg.warmSeconds }).done;
    const measure = () => cannon({ port, mode, connections: cfg.connections, duration: cfg.loadSeconds }).done;
    const { result, cpuPct } = daemonPid ? await cpuDuring(daemonPid, measure) : { result: await measure(), cpuPct: null };
    if (result.error) throw new Error(`autocannon: ${result.error}`);
    out[`rps_${mode}`] = result.rps;
    out[`p99_${mode}`] = result.p99;
    out[`failed_${mode}`] = result.failed;
    if (daemonPid) out[`daemonCpuPct_${mode}`] = cpuPct;
    await sleep(300);
  }
  return out;
}

const prefix = (tag, o) => Object.fromEntries(Object.entries(o).map(([k, v]) => [`${tag}_${k}`, v]));

// [tag, instances, exec_mode, load modes, daemon env]. `shared` is cluster
// mode with Node's other scheduling policy, NODE_CLUSTER_SCHED_POLICY=none in
// the daemon's environment (both products honour it): workers accept on
// the listening socket themselves and the daemon leaves the data path.
const SETUPS = [
  ['fork', 1, 'fork', ['keepalive', 'close'], {}],
  ['cluster', 0, 'cluster', ['keepalive', 'close'], {}],
  ['shared', 0, 'cluster', ['close'], { NODE_CLUSTER_SCHED_POLICY: 'none' }],
];

async function throughput(kind, cfg) {
  const out = {};
  for (const [tag, instances, mode, modes, env] of SETUPS) {
    if (kind === 'node') {
      // One SO_REUSEPORT group is the reference for both cluster setups
      // (the report's refKey).
      if (tag === 'shared') continue;
      const port = await freePort();
      const g = tag === 'fork' ? await startPlain(port) : await startReuse(port, ncpu);
      try {
        Object.assign(out, prefix(tag, await loads(port, null, cfg, modes)));
        out[`${tag}_method`] = g.method;
      } finally {
        await g.stop();
      }
      continue;
    }
    await withProduct(kind, async (p) => {
      Object.assign(p.env, env);
      const port = await startSeed(p, { instances, mode });
      await sleep(500);
      Object.assign(out, prefix(tag, await loads(port, p.daemonPid(), cfg, modes)));
    });
  }
  return out;
}

module.exports = { throughput };
