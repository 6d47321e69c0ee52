'use strict';
// Names index.js and index.d.ts share with rpm2-proto (request ops, error
// codes): they come from Rust through the addon, and these tests fail when
// a copy drifts.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { ROOT } = require('./helpers.js');
const { resolveAddon } = require('../npm/resolve-binary.js');
const { API } = require('../index.js');

let addon = null;
function native() {
  if (!addon) {
    const mod = { exports: {} };
    process.dlopen(mod, resolveAddon());
    addon = mod.exports;
  }
  return addon;
}

test("every request op index.js sends is one of rpm2-proto's", () => {
  const ops = new Set(native().requestOps());
  assert.ok(API.REQUEST_OPS.length > 0);
  for (const op of API.REQUEST_OPS) assert.ok(ops.has(op), `index.js sends op '${op}', unknown to rpm2-proto`);
});

test("index.d.ts lists exactly rpm2-proto's error codes", () => {
  const dts = fs.readFileSync(path.join(ROOT, 'index.d.ts'), 'utf8');
  const block = dts.match(/type ErrorCode =([^;]*);/)[1];
  const listed = [...block.matchAll(/'([A-Z_]+)'/g)].map((m) => m[1]).sort();
  assert.deepEqual(listed, Object.values(native().errorCodes()).sort());
});

test('index.js spells no error code itself', () => {
  const src = fs.readFileSync(path.join(ROOT, 'index.js'), 'utf8');
  for (const code of Object.values(native().errorCodes())) {
    assert.ok(!src.includes(`'${code}'`), `index.js spells '${code}': take it from codes()`);
  }
});

test('the addon refuses bad targets, signals and scale counts before sending', async () => {
  const { Connection } = native();
  // No daemon and no executable: anything that got past parsing would fail
  // with DAEMON_UNAVAILABLE instead.
  const conn = new Connection(fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'rpm2-names-')), null);
  for (const req of [
    { op: 'scale', name: 'a', count: 'lots' },
    { op: 'scale', name: 'a', count: '0' },
    { op: 'send_signal', signal: 'SIGNOPE', targets: ['a'] },
    { op: 'stop', targets: [''] },
  ]) {
    const out = JSON.parse(await conn.request(req));
    assert.equal(out.error && out.error.code, 'BAD_REQUEST', JSON.stringify(req));
  }
  const out = JSON.parse(await conn.request({ op: 'stop', targets: ['a'] }));
  assert.equal(out.error.code, 'DAEMON_UNAVAILABLE');
  conn.close();
});
