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
const { platformName, cargoLibName } = require('./platform.js');

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
    return path.dirname(require.resolve(`@rpm2/binding-${platform}/package.json`, { paths: [root] }));
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

function resolveBinary() {
  const pkg = platformPackageDir();
  return pick(
    [
      [process.env.RPM2_BINARY],
      [path.join(root, 'npm', platform, 'rpm2'), path.join(root, 'target', 'release', 'rpm2')],
      [pkg && path.join(pkg, 'rpm2')],
      [path.join(root, 'target', 'debug', 'rpm2')],
    ],
    fs.constants.X_OK,
    'native rpm2 executable',
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

module.exports = { resolveBinary, resolveAddon, platform };
