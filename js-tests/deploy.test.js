'use strict';
// The deployment examples, checked without Docker or a cluster (neither is
// on the test machine): the Dockerfile copies only files that exist and that
// .dockerignore lets through, builds with cargo and runs the documented
// command; the Kubernetes example parses, and its probes, ports, preStop and
// grace period fit the documented endpoints and rpm2's shutdown; the release
// workflow builds every platform package under npm/.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const yaml = require('js-yaml'); // already in the tree (pm2 depends on it)
const { ROOT } = require('./helpers.js');

const CMD = ['rpm2-runtime', 'start', 'ecosystem.config.js'];
const read = (file) => fs.readFileSync(path.join(ROOT, file), 'utf8');

/** Dockerfile instructions as [keyword, args], continuation lines joined. */
function instructions(text) {
  return text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const [, kw, args] = /^(\S+)\s+(.*)$/.exec(l);
      return [kw.toUpperCase(), args];
    });
}

/** .dockerignore patterns as regexes over slash paths (`*`, `**`, and a dir covers what is under it). */
function ignored(patterns, file) {
  const parts = file.split('/');
  const prefixes = parts.map((_, i) => parts.slice(0, i + 1).join('/'));
  return patterns.some((p) => {
    const re = new RegExp(`^${p.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*\*\//g, '\u0000').replace(/\*/g, '[^/]*').replace(/\u0000/g, '(?:.*/)?')}$`);
    return prefixes.some((f) => re.test(f));
  });
}

test('Dockerfile: a cargo build stage, a slim Node stage, files that exist, the documented CMD', () => {
  const steps = instructions(read('Dockerfile'));
  const froms = steps.filter(([kw]) => kw === 'FROM').map(([, a]) => a);
  assert.equal(froms.length, 2, 'two stages');
  assert.match(froms[0], /^rust:\S+ AS build$/i);
  assert.match(froms[1], /^node:\S+-slim$/);
  const runs = steps.filter(([kw]) => kw === 'RUN').map(([, a]) => a);
  assert.ok(runs.some((r) => /cargo build --release --locked -p rpm2-cli/.test(r)), 'the build stage compiles rpm2 with cargo');

  const ignore = read('.dockerignore').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  for (const must of ['target', 'node_modules', '.git']) assert.ok(ignored(ignore, must), `.dockerignore should keep ${must} out of the context`);
  const copies = steps.filter(([kw, a]) => kw === 'COPY' && !a.startsWith('--from'));
  assert.ok(copies.length >= 3);
  for (const [, args] of copies) {
    const sources = args.split(/\s+/).filter((a) => !a.startsWith('--')).slice(0, -1);
    for (const src of sources) {
      assert.ok(fs.existsSync(path.join(ROOT, src)), `COPY ${src}: no such file in the repo`);
      assert.ok(!ignored(ignore, src), `COPY ${src}: excluded by .dockerignore`);
    }
  }
  // Every crate the workspace builds is in the context (the build stage copies crates/ whole).
  for (const crate of fs.readdirSync(path.join(ROOT, 'crates'))) assert.ok(!ignored(ignore, `crates/${crate}/src/lib.rs`));
  assert.ok(steps.some(([kw, a]) => kw === 'COPY' && /^--from=build \/out\/ \/usr\/local\/bin\/$/.test(a)), 'the executables land on PATH');

  // What runs: the documented command, in exec form, with no ENTRYPOINT around it.
  assert.ok(!steps.some(([kw]) => kw === 'ENTRYPOINT'));
  const cmds = steps.filter(([kw]) => kw === 'CMD');
  assert.equal(cmds.length, 1);
  assert.deepEqual(JSON.parse(cmds[0][1]), CMD);
  assert.ok(read('README.md').includes(`CMD ${JSON.stringify(CMD).replace(/","/g, '", "')}`), 'README documents the same CMD');
  // The file CMD starts is copied into the final stage's WORKDIR.
  const last = steps.slice(steps.findIndex(([kw, a]) => kw === 'FROM' && a === froms[1]));
  assert.ok(last.some(([kw, a]) => kw === 'COPY' && a.split(/\s+/).includes(CMD[2])));
  const env = steps.filter(([kw]) => kw === 'ENV').map(([, a]) => a).join(' ');
  assert.match(env, /RPM2_METRICS_ADDR=0\.0\.0\.0:9209/);
});

test('kubernetes.yaml: Deployment + Service, probes on /healthz and /readyz, preStop pause, grace above kill_timeout', () => {
  const docs = yaml.loadAll(read('deploy/kubernetes.yaml'));
  const deployment = docs.find((d) => d.kind === 'Deployment');
  const service = docs.find((d) => d.kind === 'Service');
  assert.ok(deployment && service);
  const pod = deployment.spec.template;
  for (const [k, v] of Object.entries(deployment.spec.selector.matchLabels)) assert.equal(pod.metadata.labels[k], v);
  for (const [k, v] of Object.entries(service.spec.selector)) assert.equal(pod.metadata.labels[k], v, 'the Service selects the pods');

  const [c] = pod.spec.containers;
  const ports = Object.fromEntries(c.ports.map((p) => [p.name, p.containerPort]));
  const metricsAddr = c.env.find((e) => e.name === 'RPM2_METRICS_ADDR').value;
  assert.equal(Number(metricsAddr.split(':').pop()), ports.metrics, 'the metrics port is where RPM2_METRICS_ADDR listens');
  assert.match(metricsAddr, /^0\.0\.0\.0:/, 'the kubelet probes the pod IP: listen on all addresses');
  assert.deepEqual([c.readinessProbe.httpGet.path, c.readinessProbe.httpGet.port], ['/readyz', 'metrics']);
  assert.deepEqual([c.livenessProbe.httpGet.path, c.livenessProbe.httpGet.port], ['/healthz', 'metrics']);
  for (const p of ['/healthz', '/readyz', 'RPM2_METRICS_ADDR']) assert.ok(read('README.md').includes(p), `README documents ${p}`);
  for (const p of service.spec.ports) assert.ok(ports[p.targetPort], `Service targetPort ${p.targetPort} is a container port`);

  // Endpoints drain during preStop, then SIGTERM; the grace period covers the pause and the stop.
  const pause = c.lifecycle.preStop.exec.command;
  assert.equal(pause[0], 'sleep');
  const eco = require(path.join(ROOT, 'ecosystem.config.js'));
  const killTimeoutMs = Math.max(...eco.apps.map((a) => a.kill_timeout ?? 1600));
  const listenTimeoutMs = Math.max(...eco.apps.map((a) => a.listen_timeout ?? 0));
  assert.ok(pod.spec.terminationGracePeriodSeconds * 1000 > Number(pause[1]) * 1000 + killTimeoutMs, 'grace period > preStop pause + kill_timeout');
  assert.ok(pod.spec.terminationGracePeriodSeconds * 1000 > listenTimeoutMs);
});

test('release workflow: one build per platform package under npm/', () => {
  const wf = yaml.load(read('.github/workflows/release.yml'));
  const built = wf.jobs.build.strategy.matrix.include.map((m) => m.platform).sort();
  const packages = fs.readdirSync(path.join(ROOT, 'npm')).filter((d) => fs.existsSync(path.join(ROOT, 'npm', d, 'package.json'))).sort();
  assert.deepEqual(built, packages);
  const napiTargets = JSON.parse(read('package.json')).napi.targets.sort();
  assert.deepEqual(wf.jobs.build.strategy.matrix.include.map((m) => m.target).sort(), napiTargets);
  assert.deepEqual(wf.jobs.publish.needs, 'build');
});
