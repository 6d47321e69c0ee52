'use strict';
// Where the native parts are: the `rpm2` executable (the CLI, and the
// daemon it starts) and the addon (`require('rpm2')`'s native half).
//
// Order: an env override; then the local build — `npm/<platform>/` (filled
// by the install step) or cargo's `target/release` in a checkout, whichever
// is newer; then the per-platform package `@rpm2/binding-<platform>`; last
// `target/debug`.
const fs = require('node:fs');
const path = require('node:path');
const { platformName, platformPackageName, cargoLibName } = require('./platform.js');

const root = path.join(__dirname, '..');
const platform = platformName();

function mtime(file, mode) {
  try {
    fs.accessSync(file, mode);
    return fs.statSync(file).mtimeMs;
  } catch {
    return -1;
  }
}

function platformPackageDir() {
  try {
    return path.dirname(require.resolve(`${platformPackageName(platform)}/package.json`, { paths: [root] }));
  } catch {
    return null;
  }
}

/** The first group with an existing file wins; inside a group, the newest. */
function pick(groups, mode, what, hint) {
  const tried = [];
  for (const group of groups) {
    let best = null;
    let bestTime = -1;
    for (const file of group.filter(Boolean)) {
      tried.push(file);
      const t = mtime(file, mode);
      if (t > bestTime) {
        best = file;
        bestTime = t;
      }
    }
    if (best) return best;
  }
  throw new Error(`rpm2: no ${what} found (looked in ${tried.join(', ')}); ${hint}`);
}

const HINT = 'run `npm run build` (or reinstall rpm2 so that its install step compiles it)';

/** A native executable by name: `rpm2`, or another of NATIVE_BINARIES. */
function resolveBinary(name = 'rpm2') {
  const pkg = platformPackageDir();
  return pick(
    [
      [name === 'rpm2' ? process.env.RPM2_BINARY : null],
      [path.join(root, 'npm', platform, name), path.join(root, 'target', 'release', name)],
      [pkg && path.join(pkg, name)],
      [path.join(root, 'target', 'debug', name)],
    ],
    fs.constants.X_OK,
    `native ${name} executable`,
    HINT,
  );
}

function resolveAddon() {
  const pkg = platformPackageDir();
  const node = `rpm2.${platform}.node`;
  return pick(
    [
      [process.env.RPM2_NATIVE_LIBRARY_PATH || process.env.NAPI_RS_NATIVE_LIBRARY_PATH],
      [
        path.join(root, node),
        path.join(root, 'npm', platform, node),
        path.join(root, 'target', 'release', cargoLibName()),
      ],
      [pkg && path.join(pkg, node)],
      [path.join(root, 'target', 'debug', cargoLibName())],
    ],
    fs.constants.R_OK,
    `rpm2 addon (${node})`,
    HINT,
  );
}

module.exports = { resolveBinary, resolveAddon, platformPackageDir, platform };
