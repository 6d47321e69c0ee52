#!/usr/bin/env node
'use strict';
// rpm2 vs pm2 benchmark on the seed app (see bench/README.md).
//   npm run bench -- [--quick] [--rounds N] [--only rss,cli,...] [--out results.json]
//   sections: rss cli cold throughput latency preload reload crash logs rotation install watchdog
// Products run in alternation (rpm2, pm2, then the plain-node reference) in
// every round; each run has its own temp home and free ports, and every
// daemon we start is killed in `finally`, on SIGINT/SIGTERM and at exit.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { killAll, ROOT } = require('./lib/products');
const { killLoads, verifyCloseMode, LOAD_CORE, hasTaskset, ncpu } = require('./lib/load');
const { killPlain } = require('./lib/plain');
const { method: reuseMethod } = require('./reuseport');
const sections = require('./lib/sections');
const { throughput } = require('./lib/throughput');
const { summarize, table } = require('./lib/report');

const { latency, preload } = require('./lib/latency');
const { rotation } = require('./lib/rotation');
const { install } = require('./lib/install');
const { watchdog } = require('./lib/watchdog');
const ALL = { rss: sections.rss, cli: sections.cli, cold: sections.cold, throughput, latency, preload, reload: sections.reload, crash: sections.crash, logs: sections.logs, rotation, install, watchdog };

function parseArgs(argv) {
  const a = { quick: false, out: null, only: Object.keys(ALL), rounds: null };
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i];
    if (v === '--quick') a.quick = true;
    else if (v === '--out') a.out = argv[++i];
    else if (v === '--rounds') a.rounds = Number(argv[++i]);
    else if (v === '--only') a.only = argv[++i].split(',').map((s) => s.trim()).filter(Boolean);
    else if (v === '--help' || v === '-h') { console.log(fs.readFileSync(__filename, 'utf8').split('\n').slice(2, 7).join('\n')); process.exit(0); }
    else throw new Error(`unknown argument ${v}`);
  }
  for (const s of a.only) if (!ALL[s]) throw new Error(`unknown section ${s} (have: ${Object.keys(ALL).join(', ')})`);
  return a;
}

function cleanup() {
  killLoads();
  killPlain();
  killAll();
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const cfg = args.quick
    ? { rounds: 2, cliRuns: 20, loadSeconds: 4, warmSeconds: 1, connections: 50, logSeconds: 3 }
    : { rounds: 3, cliRuns: 20, loadSeconds: 10, warmSeconds: 2, connections: 50, logSeconds: 5 };
  if (args.rounds) cfg.rounds = args.rounds;
  const rpm2Bin = path.join(ROOT, 'target', 'release', 'rpm2');
  if (!fs.existsSync(rpm2Bin)) throw new Error(`${rpm2Bin} missing: run \`cargo build --release -p rpm2-cli\` first`);

  const env = {
    date: new Date().toISOString(), node: process.version, cpus: ncpu, cpuModel: os.cpus()[0] && os.cpus()[0].model,
    loadavgAtStart: os.loadavg(), loadGeneratorCores: hasTaskset ? LOAD_CORE : 'unpinned (no taskset)',
    reuseportMethod: reuseMethod(), config: cfg, sections: args.only,
  };
  console.error(`[bench] node ${env.node}, ${ncpu} cpus, autocannon pinned to core ${env.loadGeneratorCores}, loadavg ${env.loadavgAtStart.map((x) => x.toFixed(2)).join(' ')}`);
  if (['throughput', 'latency', 'reload'].some((s) => args.only.includes(s))) {
    env.closeModeCheck = await verifyCloseMode();
    console.error(`[bench] connection: close check: ${JSON.stringify(env.closeModeCheck)}`);
  }

  const raw = {};
  for (const name of args.only) {
    raw[name] = { rpm2: [], pm2: [], node: [] };
    for (let round = 0; round < cfg.rounds; round++) {
      for (const kind of ['rpm2', 'pm2', 'node']) {
        const t0 = Date.now();
        let res;
        try {
          res = await ALL[name](kind, cfg);
        } catch (e) {
          console.error(`[bench] ${name} ${kind} round ${round + 1} FAILED: ${e.message}`);
          res = { error: e.message };
        }
        if (res !== null) {
          raw[name][kind].push(res);
          console.error(`[bench] ${name} round ${round + 1}/${cfg.rounds} ${kind} (${((Date.now() - t0) / 1000).toFixed(1)}s): ${JSON.stringify(res, (k, v) => (k.startsWith('detail_') ? undefined : typeof v === 'number' ? +v.toFixed(2) : v))}`);
        }
      }
    }
  }

  const rows = summarize(raw);
  env.loadavgAtEnd = os.loadavg();
  console.log(`\nrpm2 vs pm2 on the seed app — ${cfg.rounds} rounds${args.quick ? ' (--quick)' : ''}, node ${env.node}, ${ncpu} cpus, autocannon on core ${env.loadGeneratorCores}, loadavg start ${env.loadavgAtStart.map((x) => x.toFixed(2)).join(' ')} end ${env.loadavgAtEnd.map((x) => x.toFixed(2)).join(' ')}`);
  console.log(`node ref: RSS = bare node process; cold = one \`node app.js\` to 200; fork = 1 \`node app.js\`; cluster = ${ncpu} node processes with SO_REUSEPORT (${env.reuseportMethod}); logs = flooder redirected to a file\n`);
  console.log(table(rows));
  if (args.out) {
    fs.writeFileSync(args.out, JSON.stringify({ env, summary: rows, raw }, null, 2) + '\n');
    console.log(`\nraw figures written to ${args.out}`);
  }
}

process.on('SIGINT', () => { cleanup(); process.exit(130); });
process.on('SIGTERM', () => { cleanup(); process.exit(143); });
process.on('exit', cleanup);
main().then(cleanup, (e) => { console.error(e.stack || e.message); cleanup(); process.exitCode = 1; });
