'use strict';
// The npm package as a user gets it: `npm pack`, install the tarball into a
// fresh Express project (its install step compiles the Rust parts from the
// sources in the tarball), then `npx rpm2 start ecosystem.config.js` serves
// the seed app and `require('rpm2')` lists it.
//
// The compile reuses this repo's cargo target dir (CARGO_TARGET_DIR), so
// registry dependencies are already built and only rpm2's crates compile.
const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { ROOT, waitFor, freePort, get } = require('./helpers.js');

const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'rpm2-pack-'));
const PROJECT = path.join(TMP, 'project');
const HOME = path.join(TMP, 'home');

// Nothing from this checkout may leak into the installed package's lookups.
const env = { ...process.env, RPM2_HOME: HOME, NO_COLOR: '1', CARGO_TARGET_DIR: path.join(ROOT, 'target') };
delete env.RPM2_BINARY;
delete env.RPM2_NATIVE_LIBRARY_PATH;
delete env.NAPI_RS_NATIVE_LIBRARY_PATH;
delete env.RPM2_SKIP_BUILD;

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { env, encoding: 'utf8', timeout: 15 * 60_000, ...opts });
  const out = `${r.stdout || ''}${r.stderr || ''}`;
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')} failed (${r.status ?? r.signal}):\n${out.slice(-4000)}`);
  return r.stdout;
}

after(() => {
  if (fs.existsSync(path.join(PROJECT, 'node_modules', '.bin', 'rpm2'))) {
    spawnSync('npx', ['--no-install', 'rpm2', 'kill'], { cwd: PROJECT, env, timeout: 60_000 });
  }
  fs.rmSync(TMP, { recursive: true, force: true });
});

test('npm pack → npm install into an Express project → npx rpm2 start + require("rpm2")', { timeout: 25 * 60_000 }, async () => {
  // 1. The tarball: sources and JS, no build output.
  const packed = JSON.parse(run('npm', ['pack', '--json', '--pack-destination', TMP], { cwd: ROOT }));
  const tarball = path.join(TMP, packed[0].filename);
  const files = packed[0].files.map((f) => f.path);
  for (const needed of ['index.js', 'bus.js', 'index.d.ts', 'bin/rpm2.js', 'npm/install.js', 'npm/linux-x64-gnu/package.json', 'Cargo.toml', 'Cargo.lock', 'crates/rpm2-napi/build.rs', 'crates/rpm2-core/src/lib.rs']) {
    assert.ok(files.includes(needed), `tarball lacks ${needed}`);
  }
  assert.ok(!files.some((f) => f.startsWith('target/') || f.endsWith('.node') || f === 'npm/linux-x64-gnu/rpm2'), 'tarball holds build output');

  // 2. A fresh project with the seed app on a free port.
  const port = await freePort();
  fs.mkdirSync(PROJECT, { recursive: true });
  fs.writeFileSync(path.join(PROJECT, 'package.json'), JSON.stringify({ name: 'pack-project', version: '1.0.0', private: true }, null, 2));
  fs.copyFileSync(path.join(ROOT, 'app.js'), path.join(PROJECT, 'app.js'));
  const eco = fs.readFileSync(path.join(ROOT, 'ecosystem.config.js'), 'utf8');
  fs.writeFileSync(
    path.join(PROJECT, 'ecosystem.config.js'),
    eco.replace("exec_mode: 'cluster',", `exec_mode: 'cluster',\n        env: { port: ${port} },`),
  );
  assert.match(fs.readFileSync(path.join(PROJECT, 'ecosystem.config.js'), 'utf8'), new RegExp(`port: ${port}`));

  // 3. Install: compiles the native parts with cargo.
  run('npm', ['install', '--no-audit', '--no-fund', '--foreground-scripts', tarball, 'express'], { cwd: PROJECT });
  const pkgDir = path.join(PROJECT, 'node_modules', 'rpm2');
  assert.ok(fs.existsSync(path.join(pkgDir, 'npm', 'linux-x64-gnu', 'rpm2')), 'the install step built the executable');
  assert.ok(fs.existsSync(path.join(pkgDir, 'npm', 'linux-x64-gnu', 'rpm2.linux-x64-gnu.node')), 'the install step built the addon');

  // 4. The CLI through npx.
  run('npx', ['--no-install', 'rpm2', 'start', 'ecosystem.config.js'], { cwd: PROJECT });
  const res = await waitFor(async () => {
    const r = await get(port);
    return r.status === 200 && r.body === 'Hello world' && r;
  }, { timeout: 30_000, what: `the seed app on port ${port}` });
  assert.equal(res.body, 'Hello world');

  // 5. The API from the project.
  const script = `
    const rpm2 = require('rpm2');
    rpm2.list().then(async (l) => {
      console.log(JSON.stringify(l.map((p) => [p.name, p.pm2_env.status, p.pm2_env.exec_mode])));
      await rpm2.disconnect();
    }, (e) => { console.error(e); process.exit(1); });`;
  const listed = JSON.parse(run(process.execPath, ['-e', script], { cwd: PROJECT }).trim());
  assert.ok(listed.length >= 1);
  for (const [name, status, mode] of listed) {
    assert.equal(name, 'app');
    assert.equal(status, 'online');
    assert.equal(mode, 'cluster_mode');
  }
  const resolved = run(process.execPath, ['-e', "console.log(require('rpm2/npm/resolve-binary.js').resolveBinary())"], { cwd: PROJECT }).trim();
  assert.ok(resolved.startsWith(pkgDir), `the installed package uses its own executable (${resolved})`);

  run('npx', ['--no-install', 'rpm2', 'kill'], { cwd: PROJECT });
});
