'use strict';
// Shared by the js-tests: a temporary RPM2_HOME per test file, the real CLI,
// free ports, polling with deadlines, and a daemon that is always killed.
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const http = require('node:http');
const { resolveBinary } = require('../npm/resolve-binary.js');

const ROOT = path.join(__dirname, '..');
const FIXTURES = path.join(__dirname, 'fixtures');
const RPM2 = resolveBinary();

/** A fresh home; `cli(args)` runs rpm2 in it; `cleanup()` kills its daemon. */
function makeHome(tag = 'test') {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), `rpm2-${tag}-`));
  const env = { ...process.env, RPM2_HOME: home, NO_COLOR: '1' };
  function cli(args, opts = {}) {
    const r = spawnSync(RPM2, args, {
      env: { ...env, ...(opts.env || {}) },
      cwd: opts.cwd || FIXTURES,
      encoding: 'utf8',
      timeout: opts.timeout || 60_000,
    });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr, out: r.stdout + r.stderr };
  }
  // Async variant: a load generator in this process keeps running meanwhile
  // (spawnSync would freeze it mid-request and fake failures).
  function cliAsync(args, opts = {}) {
    return new Promise((resolve) => {
      const child = spawn(RPM2, args, { env: { ...env, ...(opts.env || {}) }, cwd: opts.cwd || FIXTURES });
      let out = '';
      child.stdout.on('data', (c) => (out += c));
      child.stderr.on('data', (c) => (out += c));
      child.on('exit', (code) => resolve({ code, out }));
    });
  }
  async function jlistAsync() {
    const r = await cliAsync(['jlist']);
    if (r.code !== 0) throw new Error(`jlist failed: ${r.out}`);
    return JSON.parse(r.out);
  }
  function jlist() {
    const r = cli(['jlist']);
    if (r.code !== 0) throw new Error(`jlist failed: ${r.out}`);
    return JSON.parse(r.stdout);
  }
  function cleanup() {
    cli(['kill']);
    fs.rmSync(home, { recursive: true, force: true });
  }
  return { home, env, cli, cliAsync, jlist, jlistAsync, cleanup };
}

/** Children of `pid` that exited and were never reaped (state Z). */
function zombieChildren(pid) {
  const found = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat;
    try {
      stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // gone while we looked
    }
    const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (state === 'Z' && Number(ppid) === pid) found.push(Number(entry));
  }
  return found;
}

/** Poll `fn` until it returns a truthy value or the deadline passes. */
async function waitFor(fn, { timeout = 20_000, interval = 50, what = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  while (Date.now() < deadline) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    await sleep(interval);
  }
  throw new Error(`timed out waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A TCP port nobody listens on right now. */
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** GET http://127.0.0.1:port/path with a fresh connection; resolves {status, body}. */
function get(port, urlPath = '/', { agent = false, timeout = 5000, localAddress } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: urlPath, agent, timeout, localAddress }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

/** Wait until `port` answers an HTTP GET (workers listen after `online`). */
function waitServing(port, opts = {}) {
  return waitFor(async () => (await get(port)).status > 0, { what: `port ${port} serving`, ...opts });
}

/** Is `pid` alive? */
function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** GET `port` and parse the JSON body (fixture apps answer JSON). */
async function getJson(port, opts) {
  return JSON.parse((await get(port, '/', opts)).body);
}

/** The workers of app `name` in a jlist, in pm_id order. */
function byName(list, name) {
  return list.filter((p) => p.name === name).sort((a, b) => a.pm_id - b.pm_id);
}

module.exports = { ROOT, FIXTURES, RPM2, makeHome, waitFor, waitServing, sleep, freePort, get, getJson, byName, alive, zombieChildren };
