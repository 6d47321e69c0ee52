'use strict';
// The napi-rs platform name of this machine (linux-x64-gnu, darwin-arm64…):
// the suffix of the per-platform package `@rpm2/binding-<name>` and of the
// addon file `rpm2.<name>.node` it ships, next to the `rpm2` executable.
const fs = require('node:fs');

function isMusl() {
  try {
    return fs.readFileSync('/usr/bin/ldd', 'utf8').includes('musl');
  } catch {
    // No ldd: ask Node itself (slower, so only as a fallback).
    const header = process.report && process.report.getReport().header;
    return !(header && header.glibcVersionRuntime);
  }
}

function platformName() {
  const { platform, arch } = process;
  if (platform === 'linux') return `linux-${arch}-${isMusl() ? 'musl' : 'gnu'}`;
  if (platform === 'win32') return `win32-${arch}-msvc`;
  return `${platform}-${arch}`;
}

/** The npm package that carries the native parts for a platform. */
function platformPackageName(name = platformName()) {
  return `@rpm2/binding-${name}`;
}

/**
 * The executables a platform package may carry next to the addon. `rpm2`
 * is always there; the others ship when the build produced them.
 * `rpm2-daemon` is no npm bin: `rpm2` starts it from beside itself.
 */
const NATIVE_BINARIES = ['rpm2', 'rpm2-runtime', 'rpm2-daemon'];

/** The daemon's own executable (crates/rpm2-daemon). */
const DAEMON_BINARY = 'rpm2-daemon';

/** The shared library cargo produces for the addon crate, by OS. */
function cargoLibName(base = 'rpm2_napi') {
  if (process.platform === 'darwin') return `lib${base}.dylib`;
  if (process.platform === 'win32') return `${base}.dll`;
  return `lib${base}.so`;
}

module.exports = { platformName, platformPackageName, cargoLibName, NATIVE_BINARIES, DAEMON_BINARY };
