#!/usr/bin/env node
'use strict';
// npm's install step (and `npm run build`): make sure the native parts —
// the executables (`rpm2`, and `rpm2-runtime` when built) and the addon —
// exist for this platform, then let the installed commands run them
// directly (npm/native-launcher.js).
//
// A prebuilt one is used as is: the `@rpm2/binding-<platform>` package npm
// installs from optionalDependencies (no Rust toolchain needed), or an
// earlier build. Otherwise both are compiled from the Rust sources shipped
// in this package with `cargo build --release`. CARGO_TARGET_DIR is
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
const { platformPackageName } = require('./platform.js');
const { copyBuild } = require('./artifacts.js');
const { platformDirs } = require('./prepublish.js');
const { useNativeLaunchers } = require('./native-launcher.js');

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

/** Why no prebuilt package is there: none is published, or npm skipped it. */
function whyNoPrebuilt() {
  const pkg = platformPackageName(platform);
  const published = platformDirs(root);
  if (!published.includes(platform)) {
    return `no prebuilt package exists for ${platform} (prebuilt: ${published.join(', ')})`;
  }
  const manifest = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
  if (!(manifest.optionalDependencies || {})[pkg]) {
    return `this copy of rpm2 lists no prebuilt packages (a checkout, or packed from one)`;
  }
  return `${pkg} is not installed (were optional dependencies omitted, e.g. --omit=optional?)`;
}

function build() {
  if (!fs.existsSync(path.join(root, 'Cargo.toml'))) {
    log(`no prebuilt binary for ${platform} and no Rust sources to build one`);
    return 1;
  }
  const cargo = process.env.CARGO || 'cargo';
  const targetDir = path.resolve(root, process.env.CARGO_TARGET_DIR || 'target');
  log(`building the rpm2 executable and addon for ${platform} with cargo (release)…`);
  const r = spawnSync(
    cargo,
    ['build', '--release', '-p', 'rpm2-cli', '-p', 'rpm2-daemon', '-p', 'rpm2-napi'],
    { cwd: root, stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, CARGO_TARGET_DIR: targetDir } },
  );
  if (r.error) {
    log(`cannot run ${cargo} (${r.error.code || r.error.message}): the Rust toolchain is needed to build rpm2 for ${platform}.`);
    log(`Install Rust (https://rustup.rs) and reinstall rpm2, or install on a platform with a prebuilt package (${platformDirs(root).join(', ')}) with optional dependencies included.`);
    return 1;
  }
  if (r.status !== 0) {
    log(`cargo build failed (exit ${r.status ?? r.signal})`);
    return 1;
  }
  const rel = path.relative(root, targetDir);
  if (rel.startsWith('..') || path.isAbsolute(rel)) {
    // Outside the package: copy what we need next to the platform manifest.
    const dest = path.join(root, 'npm', platform);
    const copied = copyBuild(path.join(targetDir, 'release'), dest, platform);
    log(`installed ${path.relative(root, dest)}/{${copied.join(',')}}`);
  }
  return 0;
}

function main() {
  if (process.env.RPM2_SKIP_BUILD) {
    log('RPM2_SKIP_BUILD is set: not building the native parts');
    return 0;
  }
  if (force || !usablePrebuilt()) {
    if (!force) log(`${whyNoPrebuilt()}: building from source with cargo instead`);
    const code = build();
    if (code !== 0) return code;
  }
  const replaced = useNativeLaunchers(root, log);
  if (replaced.length) log(`${replaced.join(', ')}: the installed command runs the native executable directly`);
  return 0;
}

process.exitCode = main();
