'use strict';
// A stopped daemon (SIGSTOP): the addon's calls give up within
// RPM2_TIMEOUT_MS with err.code DAEMON_TIMEOUT, naming the daemon's pid and
// what to do; resumed, the same daemon answers again.
const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { FIXTURES } = require('./helpers.js');

const HOME = fs.mkdtempSync(path.join(os.tmpdir(), 'rpm2-timeout-'));
process.env.RPM2_HOME = HOME;
// Generous for a start on a busy machine; the stopped daemon costs this once.
process.env.RPM2_TIMEOUT_MS = '5000';
const rpm2 = require('..');

after(async () => {
  try {
    await rpm2.killDaemon();
  } catch {
    // already gone
  }
  await rpm2.disconnect();
  fs.rmSync(HOME, { recursive: true, force: true });
});

test('calls to a stopped daemon fail with DAEMON_TIMEOUT, then work once it resumes', { timeout: 120_000 }, async () => {
  await rpm2.connect();
  await rpm2.start({ script: path.join(FIXTURES, 'api-echo.js'), name: 'calm' });
  const pid = Number(fs.readFileSync(path.join(HOME, 'pm2.pid'), 'utf8'));
  process.kill(pid, 'SIGSTOP');
  try {
    await assert.rejects(rpm2.list(), (err) => {
      assert.equal(err.code, 'DAEMON_TIMEOUT');
      assert.match(err.message, new RegExp(`pid ${pid}\\b`));
      assert.match(err.message, new RegExp(`kill -CONT ${pid}`));
      return true;
    });
  } finally {
    process.kill(pid, 'SIGCONT');
  }
  const list = await rpm2.list();
  assert.deepEqual(list.map((p) => p.name), ['calm']);
});
