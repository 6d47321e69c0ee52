'use strict';
// index.d.ts covers the whole API: a sample using every method, in both
// callback and promise forms, type-checks (and misuse does not).
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const path = require('node:path');
const { ROOT, FIXTURES } = require('./helpers.js');

test('tsc --noEmit accepts js-tests/fixtures/api-sample.ts against index.d.ts', () => {
  const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  const r = spawnSync(process.execPath, [tsc, '--noEmit', '-p', path.join(FIXTURES, 'api-tsconfig.json')], {
    encoding: 'utf8',
    timeout: 120_000,
  });
  assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
});
