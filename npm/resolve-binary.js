'use strict';
// Where the native `rpm2` executable is: $RPM2_BINARY, then a cargo build in
// this package (what `npm install` from source produces), release first.
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');

function resolveBinary() {
  const candidates = [
    process.env.RPM2_BINARY,
    path.join(root, 'target', 'release', 'rpm2'),
    path.join(root, 'target', 'debug', 'rpm2'),
  ].filter(Boolean);
  for (const c of candidates) {
    try {
      fs.accessSync(c, fs.constants.X_OK);
      return c;
    } catch {
      // try the next one
    }
  }
  throw new Error(
    `rpm2: no native executable found (looked in ${candidates.join(', ')}); run \`npm run build\``,
  );
}

module.exports = { resolveBinary };
