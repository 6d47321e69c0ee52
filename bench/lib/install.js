'use strict';
// What an installed command costs (`--version`, nothing else): rpm2 as npm
// installs it — the platform package and the main package packed from this
// checkout (npm/pack-local.js), installed into a temp project and into a
// temp global prefix — against the native executable, the JS launcher the
// install step replaces, and pm2's own commands.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { ROOT } = require('./products');
const { now, stats } = require('./util');
const { packLocal, installFromCache } = require('../../npm/pack-local');

let installed = null; // packed and installed once, reused by every round

function setup() {
  if (installed) return installed;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-install-'));
  process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));
  const { platformTgz, mainTgz } = packLocal(tmp);
  const project = path.join(tmp, 'project');
  fs.mkdirSync(project);
  fs.writeFileSync(path.join(project, 'package.json'), '{"name":"bench-install","version":"1.0.0","private":true}');
  const global = path.join(tmp, 'global');
  for (const [args, cwd] of [[[platformTgz, mainTgz], project], [['-g', '--prefix', global, platformTgz, mainTgz], tmp]]) {
    const r = installFromCache(args, { cwd });
    if (r.code !== 0) throw new Error(`npm install ${args.join(' ')} failed:\n${r.out.slice(-2000)}`);
  }
  installed = { tmp, project, global };
  return installed;
}

/** Median wall time of `cmd args` over `runs` runs (one unmeasured warm-up). */
function timed(cmd, args, { cwd, env, runs }) {
  const once = () => {
    const t0 = now();
    const r = spawnSync(cmd, args, { cwd, env, encoding: 'utf8', timeout: 60000 });
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${(r.stderr || r.error || '').toString().slice(-500)}`);
    return now() - t0;
  };
  once();
  return stats(Array.from({ length: runs }, once)).median;
}

async function install(kind, cfg) {
  if (kind === 'node') return null;
  const runs = cfg.cliRuns;
  if (kind === 'pm2') {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-pm2-version-'));
    const env = { ...process.env, PM2_HOME: home };
    try {
      return {
        npxMs: timed('npx', ['--no-install', 'pm2', '--version'], { cwd: ROOT, env, runs }),
        binMs: timed(path.join(ROOT, 'node_modules', '.bin', 'pm2'), ['--version'], { cwd: ROOT, env, runs }),
      };
    } finally {
      fs.rmSync(home, { recursive: true, force: true });
    }
  }
  const { project, global } = setup();
  const env = { ...process.env };
  delete env.RPM2_BINARY;
  const bin = path.join(project, 'node_modules', '.bin', 'rpm2');
  return {
    npxMs: timed('npx', ['--no-install', 'rpm2', '--version'], { cwd: project, env, runs }),
    binMs: timed(bin, ['--version'], { cwd: project, env, runs }),
    globalMs: timed(path.join(global, 'bin', 'rpm2'), ['--version'], { cwd: project, env, runs }),
    nativeMs: timed(path.join(ROOT, 'target', 'release', 'rpm2'), ['--version'], { cwd: project, env, runs }),
    jsLauncherMs: timed(process.execPath, [path.join(ROOT, 'bin', 'rpm2.js'), '--version'], { cwd: project, env, runs }),
  };
}

module.exports = { install };
