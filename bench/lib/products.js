'use strict';
// The two products under test behind one interface. Each Product instance
// owns a fresh temp home (RPM2_HOME or PM2_HOME), runs its CLI there, and is
// registered so that killAll() can always stop every daemon we started.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn, spawnSync } = require('node:child_process');
const { now, alive, sleep } = require('./util');

const ROOT = path.resolve(__dirname, '..', '..');
const APPS = path.join(ROOT, 'bench', 'apps');
const BINS = {
  rpm2: path.join(ROOT, 'target', 'release', 'rpm2'),
  pm2: path.join(ROOT, 'node_modules', '.bin', 'pm2'),
};
const live = new Set();

class Product {
  constructor(kind) {
    if (!BINS[kind]) throw new Error(`unknown product ${kind}`);
    this.kind = kind;
    this.bin = BINS[kind];
    this.home = fs.mkdtempSync(path.join(os.tmpdir(), `bench-${kind}-`));
    this.env = { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' };
    this.env[kind === 'rpm2' ? 'RPM2_HOME' : 'PM2_HOME'] = this.home;
    this.pidFile = path.join(this.home, 'pm2.pid');
    this.logDir = path.join(this.home, 'logs');
    live.add(this);
  }

  /** Run the CLI synchronously; `via: 'npx'` goes through `npx rpm2`. */
  cli(args, { via = 'bin', timeout = 120000 } = {}) {
    const [cmd, argv] = via === 'npx' ? ['npx', ['--no-install', 'rpm2', ...args]] : [this.bin, args];
    const t0 = now();
    const r = spawnSync(cmd, argv, { env: this.env, cwd: ROOT, encoding: 'utf8', timeout, maxBuffer: 64 << 20 });
    return { code: r.status, stdout: r.stdout || '', out: (r.stdout || '') + (r.stderr || ''), ms: now() - t0 };
  }

  /** Run the CLI without blocking the event loop (so we can poll meanwhile). */
  cliAsync(args, { timeout = 120000 } = {}) {
    return new Promise((resolve) => {
      const t0 = now();
      const child = spawn(this.bin, args, { env: this.env, cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (out += d));
      const timer = setTimeout(() => child.kill('SIGKILL'), timeout);
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code, out, stdout: out, ms: now() - t0 });
      });
    });
  }

  /** Start (from a generated ecosystem file); throws with the CLI output on failure. */
  start(apps, { async = false } = {}) {
    const file = this.writeEcosystem(apps);
    if (async) return this.cliAsync(['start', file]);
    const r = this.cli(['start', file]);
    if (r.code !== 0) throw new Error(`${this.kind} start failed (${r.code}): ${r.out.slice(-2000)}`);
    return r;
  }

  writeEcosystem(apps) {
    const file = path.join(this.home, `ecosystem-${Date.now()}.config.js`);
    fs.writeFileSync(file, `module.exports = ${JSON.stringify({ apps }, null, 2)};\n`);
    return file;
  }

  daemonPid() {
    try {
      const pid = Number(fs.readFileSync(this.pidFile, 'utf8').trim());
      return pid && alive(pid) ? pid : null;
    } catch {
      return null;
    }
  }

  /** jlist parsed, or null if the CLI failed or printed something else. */
  jlist() {
    return parseJlist(this.cli(['jlist']));
  }
  async jlistAsync() {
    return parseJlist(await this.cliAsync(['jlist']));
  }

  /** Stop the daemon and every worker, then remove the home. Never throws. */
  kill() {
    if (!live.has(this)) return;
    live.delete(this);
    const daemon = this.daemonPid();
    let workers = [];
    if (daemon) {
      try { workers = (this.jlist() || []).map((p) => p.pid).filter(Boolean); } catch { /* ignore */ }
      this.cli(['kill'], { timeout: 30000 });
    }
    // Belt and braces: anything still alive after `kill` gets SIGKILL.
    for (const pid of [daemon, ...workers]) {
      if (pid && alive(pid)) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
    }
    fs.rmSync(this.home, { recursive: true, force: true });
  }

  /** Lines matching `re` over every log file whose name starts with `prefix`. */
  countLogLines(prefix, re) {
    let n = 0;
    let files = [];
    try { files = fs.readdirSync(this.logDir).filter((f) => f.startsWith(prefix)); } catch { return 0; }
    for (const f of files) {
      try {
        const text = fs.readFileSync(path.join(this.logDir, f), 'utf8');
        n += text.split('\n').filter((l) => re.test(l)).length;
      } catch { /* not yet */ }
    }
    return n;
  }
}

function parseJlist(r) {
  if (r.code !== 0) return null;
  const s = r.stdout;
  const i = s.indexOf('[');
  try { return JSON.parse(s.slice(i)); } catch { return null; }
}

/** Kill every daemon still registered (finally / SIGINT). */
function killAll() {
  for (const p of [...live]) p.kill();
}

/** The seed app as an ecosystem entry, on a given port. */
function seedApp({ port, instances = 0, mode = 'cluster', name = 'app', drain = true, env = {} }) {
  return {
    name, script: path.join(ROOT, 'app.js'), cwd: ROOT, instances, exec_mode: mode,
    wait_ready: true, listen_timeout: 10000, env: { port, ...env },
    // rpm2's opt-out of its drain preload (the preload row compares both).
    ...(drain ? {} : { drain: false }),
  };
}

/** A bench fixture app (bench/apps/<file>) in fork mode. */
function fixtureApp(name, file, env = {}) {
  return { name, script: path.join(APPS, file), cwd: ROOT, exec_mode: 'fork', instances: 1, env };
}

/** Run `fn(product)` with a fresh product, always killing it afterwards. */
async function withProduct(kind, fn) {
  const p = new Product(kind);
  try {
    return await fn(p);
  } finally {
    p.kill();
    await sleep(200); // let ports and CPU settle before the next product
  }
}

module.exports = { Product, ROOT, APPS, killAll, seedApp, fixtureApp, withProduct };
