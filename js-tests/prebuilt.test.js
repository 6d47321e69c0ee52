'use strict';
// Installing without a Rust toolchain, as a user on a supported platform
// does: the platform package @rpm2/binding-<platform> (its manifest from
// npm/<platform>/, with the executable and addon this checkout built) and
// the main package with the optionalDependencies the release writes (both
// packed by npm/pack-local.js) are installed from their tarballs into a
// fresh project, on a PATH with node and npm but no cargo, from npm's cache
// (express comes from it, as in pack.test.js). Then node_modules/.bin/rpm2
// is the native executable, not the JS launcher, and
// `npx rpm2 start ecosystem.config.js` serves the seed app.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { ROOT, waitFor, freePort, get } = require('./helpers.js');
const { platformName, platformPackageName } = require('../npm/platform.js');
const { packLocal, installFromCache } = require('../npm/pack-local.js');

const PLATFORM = platformName();
const MANIFEST = path.join(ROOT, 'npm', PLATFORM, 'package.json');
const skip = !fs.existsSync(MANIFEST) && `no platform package for ${PLATFORM}`;
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'rpm2-prebuilt-'));
const PROJECT = path.join(TMP, 'project');

/** node, npm and npx, but no cargo: a bin dir of links plus the system dirs that hold no cargo. */
function pathWithoutCargo() {
  const bin = path.join(TMP, 'bin');
  fs.mkdirSync(bin);
  const npmCli = fs.realpathSync(spawnSync('sh', ['-c', 'command -v npm'], { encoding: 'utf8' }).stdout.trim());
  fs.symlinkSync(process.execPath, path.join(bin, 'node'));
  fs.symlinkSync(npmCli, path.join(bin, 'npm'));
  fs.symlinkSync(path.join(path.dirname(npmCli), 'npx-cli.js'), path.join(bin, 'npx'));
  const system = ['/usr/local/bin', '/usr/bin', '/bin'].filter((d) => !fs.existsSync(path.join(d, 'cargo')));
  return [bin, ...system].join(path.delimiter);
}

// Nothing from this checkout or from the npm running this test may leak in.
const env = { PATH: '', HOME: process.env.HOME, RPM2_HOME: path.join(TMP, 'home'), NO_COLOR: '1' };
for (const k of ['npm_config_cache', 'npm_config_registry', 'TMPDIR']) if (process.env[k]) env[k] = process.env[k];

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { env, encoding: 'utf8', timeout: 120_000, ...opts });
  return { code: r.status, out: `${r.stdout || ''}${r.stderr || ''}`, stdout: r.stdout || '' };
}

function ok(cmd, args, opts) {
  const r = run(cmd, args, opts);
  assert.equal(r.code, 0, `${cmd} ${args.join(' ')} failed:\n${r.out.slice(-4000)}`);
  return r;
}

function npmInstall(args, cwd) {
  const r = installFromCache(args, { cwd, env });
  if (!r.offline) console.error("# npm's cache lacked some metadata: installed with --prefer-offline");
  return r;
}

function freshProject(dir) {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'prebuilt-project', version: '1.0.0', private: true }));
}

function isElf(file) {
  const fd = fs.openSync(file, 'r');
  const head = Buffer.alloc(4);
  fs.readSync(fd, head, 0, 4, 0);
  fs.closeSync(fd);
  return head.equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]));
}

let platformTgz;
let mainTgz;

before(() => {
  if (skip) return;
  env.PATH = pathWithoutCargo();
  assert.notEqual(run('sh', ['-c', 'command -v cargo']).code, 0, 'cargo must not be on the test PATH');

  const packed = packLocal(TMP, { platform: PLATFORM, env });
  assert.deepEqual(packed.platformFiles.filter((f) => f !== 'rpm2-runtime').sort(), ['package.json', 'rpm2', 'rpm2-daemon', `rpm2.${PLATFORM}.node`]);
  assert.equal(packed.optionalDependencies[platformPackageName(PLATFORM)], JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version);
  ({ platformTgz, mainTgz } = packed);
});

after(() => {
  const rpm2 = path.join(PROJECT, 'node_modules', '.bin', 'rpm2');
  if (fs.existsSync(rpm2)) run(rpm2, ['kill'], { timeout: 60_000 });
  fs.rmSync(TMP, { recursive: true, force: true });
});

test('platform + main package, no cargo: .bin/rpm2 is the native executable and `npx rpm2 start` serves', { skip, timeout: 240_000 }, async () => {
  const port = await freePort();
  freshProject(PROJECT);
  fs.copyFileSync(path.join(ROOT, 'app.js'), path.join(PROJECT, 'app.js'));
  const eco = fs.readFileSync(path.join(ROOT, 'ecosystem.config.js'), 'utf8');
  fs.writeFileSync(path.join(PROJECT, 'ecosystem.config.js'), eco.replace("exec_mode: 'cluster',", `exec_mode: 'cluster',\n        env: { port: ${port} },`));
  assert.match(fs.readFileSync(path.join(PROJECT, 'ecosystem.config.js'), 'utf8'), new RegExp(`port: ${port}`));

  const install = npmInstall([platformTgz, mainTgz, 'express'], PROJECT);
  assert.equal(install.code, 0, `npm install failed:\n${install.out.slice(-4000)}`);
  assert.doesNotMatch(install.out, /building|cargo/i, 'the install step must not build');
  assert.match(install.out, /rpm2: the installed command runs the native executable directly/);

  // The launcher is the executable itself (a hard link to the platform package's).
  const bin = path.join(PROJECT, 'node_modules', '.bin', 'rpm2');
  const target = fs.realpathSync(bin);
  assert.equal(target, path.join(PROJECT, 'node_modules', 'rpm2', 'bin', 'rpm2.js'));
  if (process.platform === 'linux') assert.ok(isElf(target), `${target} should be an ELF executable, not a script`);
  const shipped = path.join(PROJECT, 'node_modules', ...platformPackageName(PLATFORM).split('/'), 'rpm2');
  assert.equal(fs.statSync(target).ino, fs.statSync(shipped).ino);
  assert.match(ok(bin, ['--version']).stdout, /^rpm2 \d+\.\d+\.\d+/);

  ok('npx', ['--no-install', 'rpm2', 'start', 'ecosystem.config.js'], { cwd: PROJECT });
  const res = await waitFor(async () => {
    const r = await get(port);
    return r.status === 200 && r;
  }, { timeout: 30_000, what: `the seed app on port ${port}` });
  assert.equal(res.body, 'Hello world');
  // The daemon runs from its own executable, placed beside the launcher.
  const daemonPid = Number(fs.readFileSync(path.join(env.RPM2_HOME, 'pm2.pid'), 'utf8'));
  assert.equal(fs.readlinkSync(`/proc/${daemonPid}/exe`), path.join(PROJECT, 'node_modules', 'rpm2', 'bin', 'rpm2-daemon'));
  ok(bin, ['kill'], { cwd: PROJECT });
});

test('global install from the tarballs: bin/rpm2 is the native executable', { skip, timeout: 120_000 }, () => {
  const prefix = path.join(TMP, 'global');
  const r = npmInstall(['-g', '--prefix', prefix, platformTgz, mainTgz], TMP);
  assert.equal(r.code, 0, `npm install -g failed:\n${r.out.slice(-4000)}`);
  const target = fs.realpathSync(path.join(prefix, 'bin', 'rpm2'));
  if (process.platform === 'linux') assert.ok(isElf(target), `${target} should be an ELF executable`);
  assert.match(ok(path.join(prefix, 'bin', 'rpm2'), ['--version']).stdout, /^rpm2 /);
});

test('main package alone, no cargo: the install fails and says what to do', { skip, timeout: 120_000 }, () => {
  const dir = path.join(TMP, 'no-prebuilt');
  freshProject(dir);
  const r = npmInstall([mainTgz], dir);
  assert.notEqual(r.code, 0, `the install should fail without a prebuilt package or cargo:\n${r.out.slice(-2000)}`);
  assert.match(r.out, new RegExp(`${platformPackageName(PLATFORM)} is not installed`));
  assert.match(r.out, /cannot run cargo \(ENOENT\): the Rust toolchain is needed/);
  assert.match(r.out, /https:\/\/rustup\.rs/);
  assert.ok(!fs.existsSync(path.join(dir, 'node_modules', 'rpm2')), 'a failed install leaves no rpm2 behind');
});
