#!/usr/bin/env node
'use strict';
// Before `npm publish` (the release workflow runs it; napi-rs's `napi
// prepublish` does the same): give every platform package under npm/ the
// main package's version, and list them all as the main package's
// optionalDependencies, pinned to that version. npm then installs only the
// one whose os/cpu/libc match, and the install step finds it.
//
// The committed package.json has no optionalDependencies on purpose: in a
// checkout, `npm ci` would otherwise look them up on the registry.
//
//   node npm/prepublish.js [<package dir>]   (default: this package)
const fs = require('node:fs');
const path = require('node:path');
const { platformPackageName } = require('./platform.js');

function readJson(file) {
  return JSON.parse(fs.readFileSync(file, 'utf8'));
}

function writeJson(file, value) {
  fs.writeFileSync(file, `${JSON.stringify(value, null, 2)}\n`);
}

/** The platform names that have a manifest under `<root>/npm/`. */
function platformDirs(root) {
  const npmDir = path.join(root, 'npm');
  return fs
    .readdirSync(npmDir)
    .filter((d) => fs.existsSync(path.join(npmDir, d, 'package.json')))
    .sort();
}

function prepublish(root) {
  const mainFile = path.join(root, 'package.json');
  const main = readJson(mainFile);
  const optional = {};
  for (const platform of platformDirs(root)) {
    const file = path.join(root, 'npm', platform, 'package.json');
    const manifest = readJson(file);
    if (manifest.name !== platformPackageName(platform)) {
      throw new Error(`${file}: name ${manifest.name} should be ${platformPackageName(platform)}`);
    }
    manifest.version = main.version;
    writeJson(file, manifest);
    optional[manifest.name] = main.version;
  }
  main.optionalDependencies = { ...main.optionalDependencies, ...optional };
  writeJson(mainFile, main);
  return optional;
}

module.exports = { prepublish, platformDirs };

if (require.main === module) {
  const root = path.resolve(process.argv[2] || path.join(__dirname, '..'));
  const optional = prepublish(root);
  console.log(`${path.join(root, 'package.json')}: optionalDependencies ${JSON.stringify(optional)}`);
}
