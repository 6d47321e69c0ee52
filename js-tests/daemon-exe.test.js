'use strict';
// The daemon runs from its own executable, `rpm2-daemon`, found beside
// `rpm2` (fewer pages resident for a process that lives for weeks); one
// from another build is never started, and rpm2 then runs the daemon itself.
const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { RPM2, makeHome } = require('./helpers.js');

const DAEMON = path.join(path.dirname(fs.realpathSync(RPM2)), 'rpm2-daemon');

const daemonExe = (home) => fs.readlinkSync(`/proc/${Number(fs.readFileSync(path.join(home, 'pm2.pid'), 'utf8'))}/exe`);

test('rpm2 starts the daemon from rpm2-daemon beside it', () => {
  const h = makeHome('daemon-exe');
  try {
    assert.equal(h.cli(['ping']).code, 0);
    assert.equal(daemonExe(h.home), DAEMON);
    // It answers as the daemon of this rpm2 (same version, same protocol).
    assert.equal(h.cli(['start', 'cluster-nolisten.js', '--name', 'e']).code, 0);
    assert.equal(h.jlist()[0].name, 'e');
  } finally {
    h.cleanup();
  }
});

/** A copy of rpm2 in a temp dir with `script` as the rpm2-daemon beside it:
 * `rpm2 ping` must start the daemon from the copy itself. */
function runsItselfBeside(script) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rpm2-daemon-exe-'));
  const h = makeHome('daemon-other');
  try {
    const rpm2 = path.join(dir, 'rpm2');
    fs.copyFileSync(fs.realpathSync(RPM2), rpm2);
    fs.chmodSync(rpm2, 0o755);
    const started = path.join(dir, 'started');
    fs.writeFileSync(path.join(dir, 'rpm2-daemon'), `#!/bin/sh\n${script}\ntouch '${started}'; exit 1\n`, { mode: 0o755 });
    const r = spawnSync(rpm2, ['ping'], { env: h.env, encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(daemonExe(h.home), rpm2);
    assert.ok(!fs.existsSync(started), 'the foreign rpm2-daemon was run as the daemon');
  } finally {
    h.cleanup();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test('an rpm2-daemon from another build is not started: rpm2 runs the daemon itself', () => {
  runsItselfBeside(`if [ "$1" = "__handover-check" ]; then echo '{"reads":[1],"version":"0.0.0","build":"another"}'; exit 0; fi`);
});

test('an rpm2-daemon that does not answer its check in time is not started', () => {
  runsItselfBeside('if [ "$1" = "__handover-check" ]; then exec sleep 30; fi');
});

test('rpm2-daemon alone says what it is and exits 2', () => {
  const r = spawnSync(DAEMON, [], { encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /^rpm2-daemon \d+\.\d+\.\d+: the rpm2 daemon, started by rpm2/);
});
