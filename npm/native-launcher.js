'use strict';
// Make the installed commands cost what the native executables cost. A bin
// in package.json (bin/rpm2.js) is a JS launcher: Node starts (~55 ms) only
// to spawn the executable. When npm installed this package, the install
// step puts the executable itself at the launcher's path, so that
// node_modules/.bin/rpm2 and a global install's bin/rpm2 (symlinks to that
// path) run it directly. esbuild's installer does the same.
//
// Where that is not possible the JS launcher stays and works as before:
// Windows (bins are .cmd shims), other package managers (yarn and pnpm may
// write shims that run the bin with `node`, or re-run the step elsewhere),
// a checkout (bin/rpm2.js is a tracked file), RPM2_BINARY set (the
// launcher honours it at run time), or an executable that does not answer
// `--version` with this package's version.
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { NATIVE_BINARIES, DAEMON_BINARY } = require('./platform.js');
const { resolveBinary } = require('./resolve-binary.js');

/** Why the launchers must stay JS here, or null when they may be replaced. */
function reasonToKeepJs(root) {
  if (process.platform === 'win32') return 'Windows runs bins through .cmd shims';
  if (!/^npm\//.test(process.env.npm_config_user_agent || '')) return 'not installed by npm';
  const parent = path.dirname(root);
  const inNodeModules = path.basename(parent) === 'node_modules'
    || (path.basename(parent).startsWith('@') && path.basename(path.dirname(parent)) === 'node_modules');
  if (!inNodeModules) {
    return 'not installed as a package (a checkout keeps its launchers)';
  }
  if (process.env.RPM2_BINARY) return 'RPM2_BINARY is set';
  return null;
}

function answersVersion(exe, version) {
  const r = spawnSync(exe, ['--version'], { encoding: 'utf8', timeout: 10_000 });
  return r.status === 0 && r.stdout.trim().split(/\s+/).includes(version);
}

/** Hard-link (or copy) `exe` over `launcher` in one rename. */
function replaceWith(exe, launcher) {
  const tmp = `${launcher}.native-${process.pid}`;
  try {
    try {
      fs.linkSync(exe, tmp);
    } catch {
      fs.copyFileSync(exe, tmp);
      fs.chmodSync(tmp, 0o755);
    }
    fs.renameSync(tmp, launcher);
  } finally {
    // rename does nothing when both names are already the same inode (a re-run).
    fs.rmSync(tmp, { force: true });
  }
}

/**
 * Replace each bin of `root`'s package.json that names one of
 * NATIVE_BINARIES with that executable. Returns the names replaced.
 */
function useNativeLaunchers(root, log) {
  const why = reasonToKeepJs(root);
  if (why) return [];
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
  const replaced = [];
  for (const [name, rel] of Object.entries(pkg.bin || {})) {
    if (!NATIVE_BINARIES.includes(name)) continue;
    let exe;
    try {
      exe = resolveBinary(name);
    } catch {
      continue; // no such executable in this build: its JS launcher stays
    }
    if (!answersVersion(exe, pkg.version)) {
      log(`${exe} does not answer --version with ${pkg.version}: keeping the JS launcher for ${name}`);
      continue;
    }
    try {
      replaceWith(exe, path.join(root, rel));
      replaced.push(name);
    } catch (e) {
      log(`keeping the JS launcher for ${name}: ${e.message}`);
    }
  }
  if (replaced.includes('rpm2')) placeDaemon(path.dirname(path.join(root, pkg.bin.rpm2)), log);
  return replaced;
}

/**
 * `rpm2` starts the daemon from `rpm2-daemon` beside its own executable
 * (when that one was built from the same sources; else it runs the daemon
 * itself, with more pages resident): put it beside the native launcher.
 */
function placeDaemon(dir, log) {
  let exe;
  try {
    exe = resolveBinary(DAEMON_BINARY);
  } catch {
    return; // not built here: rpm2 runs the daemon itself
  }
  try {
    replaceWith(exe, path.join(dir, DAEMON_BINARY));
  } catch (e) {
    log(`${DAEMON_BINARY} not placed beside rpm2 (${e.message}): rpm2 runs the daemon itself`);
  }
}

module.exports = { useNativeLaunchers, reasonToKeepJs };
