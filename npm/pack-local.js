#!/usr/bin/env node
'use strict';
// A checkout's stand-in for the release: pack this machine's platform
// package (with the executable and addon this checkout built) and the main
// package with the optionalDependencies npm/prepublish.js writes, as
// tarballs an `npm install` takes without a registry.
//
//   node npm/pack-local.js <dir>   writes the two .tgz files into <dir>
//
// Used by js-tests/prebuilt.test.js and `npm run bench -- --only install`.
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { platformName, NATIVE_BINARIES } = require('./platform.js');
const { resolveBinary, resolveAddon } = require('./resolve-binary.js');

const root = path.join(__dirname, '..');

function npm(args, cwd, env = process.env) {
  const r = spawnSync('npm', args, { cwd, env, encoding: 'utf8', timeout: 300_000 });
  const out = `${r.stdout || ''}${r.stderr || ''}`;
  if (r.status !== 0) throw new Error(`npm ${args.join(' ')} failed (${r.status ?? r.signal ?? r.error}):\n${out.slice(-3000)}`);
  return r.stdout;
}

function pack(dir, dest, env) {
  return JSON.parse(npm(['pack', '--json', '--pack-destination', dest], dir, env))[0];
}

/** Returns { platformTgz, mainTgz, platformFiles, optionalDependencies }. */
function packLocal(dest, { platform = platformName(), env } = {}) {
  const manifest = path.join(root, 'npm', platform, 'package.json');
  if (!fs.existsSync(manifest)) throw new Error(`no platform package npm/${platform}/`);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'rpm2-pack-local-'));
  try {
    const plat = path.join(work, 'platform');
    fs.mkdirSync(plat);
    fs.copyFileSync(manifest, path.join(plat, 'package.json'));
    for (const name of NATIVE_BINARIES) {
      let exe;
      try {
        exe = resolveBinary(name);
      } catch (e) {
        if (name === 'rpm2') throw e;
        continue; // not built here
      }
      fs.copyFileSync(exe, path.join(plat, name));
      fs.chmodSync(path.join(plat, name), 0o755);
    }
    fs.copyFileSync(resolveAddon(), path.join(plat, `rpm2.${platform}.node`));
    const packedPlat = pack(plat, dest, env);

    // The main package as published: packed, given its optionalDependencies, packed again.
    const first = pack(root, work, env);
    const staged = path.join(work, 'main');
    fs.mkdirSync(staged);
    const untar = spawnSync('tar', ['-xzf', path.join(work, first.filename), '-C', staged]);
    if (untar.status !== 0) throw new Error(`tar failed: ${untar.stderr}`);
    const pkgDir = path.join(staged, 'package');
    const { prepublish } = require(path.join(pkgDir, 'npm', 'prepublish.js'));
    const optionalDependencies = prepublish(pkgDir);
    const packedMain = pack(pkgDir, dest, env);
    return {
      platformTgz: path.join(dest, packedPlat.filename),
      mainTgz: path.join(dest, packedMain.filename),
      platformFiles: packedPlat.files.map((f) => f.path),
      optionalDependencies,
    };
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/**
 * `npm install <args>` from npm's cache only; where the cache lacks some
 * metadata (a fresh machine after `npm ci` has express's tarball but not
 * its registry document), once more letting npm fill it from the registry.
 * Returns { code, out, offline }.
 */
function installFromCache(args, { cwd, env = process.env }) {
  const base = ['install', '--no-audit', '--no-fund', '--foreground-scripts', ...args];
  const run = (mode) => {
    const r = spawnSync('npm', [...base, mode], { cwd, env, encoding: 'utf8', timeout: 300_000 });
    return { code: r.status, out: `${r.stdout || ''}${r.stderr || ''}`, offline: mode === '--offline' };
  };
  const r = run('--offline');
  return r.code !== 0 && r.out.includes('ENOTCACHED') ? run('--prefer-offline') : r;
}

module.exports = { packLocal, installFromCache };

if (require.main === module) {
  const dest = path.resolve(process.argv[2] || '.');
  const r = packLocal(dest);
  console.log(`${r.platformTgz}\n${r.mainTgz}`);
}
