#!/usr/bin/env node
'use strict';
// npm's install step (and `npm run build`): make sure the native parts —
// the `rpm2` executable and the addon — exist for this platform.
//
// A prebuilt one (the `@rpm2/binding-<platform>` package, or an earlier
// build) is used as is. Otherwise both are compiled from the Rust sources
// shipped in this package with `cargo build --release`. CARGO_TARGET_DIR is
// honoured (a shared target dir makes this an incremental build); when it
// points outside the package, the results are copied to `npm/<platform>/`,
// where the resolver finds them.
//
//   node npm/install.js           build only if nothing usable is found
//   node npm/install.js --force   always build (what `npm run build` does)
//   RPM2_SKIP_BUILD=1             do nothing (e.g. CI that builds separately)
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { resolveBinary, resolveAddon, platform } = require('./resolve-binary.js');
const { cargoLibName } = require('./platform.js');

const root = path.join(__dirname, '..');
const force = process.argv.includes('--force');

function log(msg) {
  console.error(`[rpm2] ${msg}`);
}

function usablePrebuilt() {
  try {
    const files = [resolveBinary(), resolveAddon()];
    // A debug build is a developer's leftover, not something to ship with.
    return files.every((f) => !f.includes(`${path.sep}target${path.sep}debug${path.sep}`));
  } catch {
    return false;
  }
}

function main() {
  if (process.env.RPM2_SKIP_BUILD) {
    log('RPM2_SKIP_BUILD is set: not building the native parts');
    return 0;
  }
  if (!force && usablePrebuilt()) return 0;
  if (!fs.existsSync(path.join(root, 'Cargo.toml'))) {
    log(`no prebuilt binary for ${platform} and no Rust sources to build one`);
    return 1;
  }
  const cargo = process.env.CARGO || 'cargo';
  const targetDir = path.resolve(root, process.env.CARGO_TARGET_DIR || 'target');
  log(`building the rpm2 executable and addon for ${platform} with cargo (release)…`);
  const r = spawnSync(
    cargo,
    ['build', '--release', '-p', 'rpm2-cli', '-p', 'rpm2-napi'],
    { cwd: root, stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, CARGO_TARGET_DIR: targetDir } },
  );
  if (r.error) {
    log(`cannot run ${cargo}: ${r.error.message}. Install Rust (https://rustup.rs) or use a platform with a prebuilt @rpm2/binding package.`);
    return 1;
  }
  if (r.status !== 0) {
    log(`cargo build failed (exit ${r.status ?? r.signal})`);
    return 1;
  }
  const release = path.join(targetDir, 'release');
  if (path.relative(root, targetDir).startsWith('..') || path.isAbsolute(path.relative(root, targetDir))) {
    // Outside the package: copy what we need next to the platform manifest.
    const dest = path.join(root, 'npm', platform);
    fs.mkdirSync(dest, { recursive: true });
    fs.copyFileSync(path.join(release, 'rpm2'), path.join(dest, 'rpm2'));
    fs.chmodSync(path.join(dest, 'rpm2'), 0o755);
    fs.copyFileSync(path.join(release, cargoLibName()), path.join(dest, `rpm2.${platform}.node`));
    log(`installed ${path.relative(root, dest)}/{rpm2,rpm2.${platform}.node}`);
  }
  return 0;
}

process.exitCode = main();
