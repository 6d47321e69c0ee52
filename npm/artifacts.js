#!/usr/bin/env node
'use strict';
// Copy what cargo built — the executables of NATIVE_BINARIES that exist and
// the addon — into a platform package directory, under the names the
// resolver looks for. Used by the install step's cargo fallback and by the
// release workflow:
//
//   node npm/artifacts.js <cargo release dir> [<platform>]
//     copies into npm/<platform>/ (default: this machine's platform)
const fs = require('node:fs');
const path = require('node:path');
const { platformName, cargoLibName, NATIVE_BINARIES } = require('./platform.js');

/** Copy through a temporary name: overwriting a running executable in place fails (ETXTBSY). */
function copyInto(from, to, mode) {
  const tmp = `${to}.tmp-${process.pid}`;
  fs.copyFileSync(from, tmp);
  fs.chmodSync(tmp, mode);
  fs.renameSync(tmp, to);
}

/** Returns the names copied (the executables, then the addon's file name). */
function copyBuild(releaseDir, destDir, platform = platformName()) {
  fs.mkdirSync(destDir, { recursive: true });
  const copied = [];
  for (const name of NATIVE_BINARIES) {
    const from = path.join(releaseDir, name);
    if (!fs.existsSync(from)) {
      if (name === 'rpm2') throw new Error(`${from} is missing: cargo did not build the rpm2 executable`);
      continue;
    }
    copyInto(from, path.join(destDir, name), 0o755);
    copied.push(name);
  }
  const lib = path.join(releaseDir, cargoLibName());
  if (!fs.existsSync(lib)) throw new Error(`${lib} is missing: cargo did not build the addon`);
  const addon = `rpm2.${platform}.node`;
  copyInto(lib, path.join(destDir, addon), 0o644);
  copied.push(addon);
  return copied;
}

module.exports = { copyBuild };

if (require.main === module) {
  const [releaseDir, platform = platformName()] = process.argv.slice(2);
  if (!releaseDir) {
    console.error('usage: node npm/artifacts.js <cargo release dir> [<platform>]');
    process.exit(2);
  }
  const dest = path.join(__dirname, platform);
  if (!fs.existsSync(path.join(dest, 'package.json'))) {
    console.error(`no platform package npm/${platform}/ (have: ${fs.readdirSync(__dirname).filter((d) => fs.existsSync(path.join(__dirname, d, 'package.json'))).join(', ')})`);
    process.exit(2);
  }
  console.log(`npm/${platform}/: ${copyBuild(releaseDir, dest, platform).join(', ')}`);
}
