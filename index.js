'use strict';
// require('rpm2'): pm2's programmatic API over the rpm2 daemon.
//
// The native addon (crates/rpm2-napi) is an RPC client only; the daemon is
// the native `rpm2` executable running `__daemon` in its own process. Every
// method takes a Node-style callback or, without one, returns a Promise.
// Errors are `Error`s with a stable `code` (PROCESS_NOT_FOUND,
// INVALID_OPTION, DAEMON_UNAVAILABLE…).
const childProcess = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { resolveBinary, resolveAddon } = require('./npm/resolve-binary.js');
const { openBus } = require('./bus.js');

let native = null;
function loadNative() {
  if (!native) {
    const file = resolveAddon();
    const mod = { exports: {} };
    // dlopen, not require: in a checkout the addon is cargo's lib*.so.
    process.dlopen(mod, file);
    native = mod.exports;
  }
  return native;
}

/** `err.code` strings by rpm2-proto `ErrorCode` variant (`DaemonUnavailable`…). */
let errorCodes = null;
function codes() {
  if (!errorCodes) errorCodes = loadNative().errorCodes();
  return errorCodes;
}

// The request ops this file sends, spelled as rpm2-proto's `Request::OPS`;
// js-tests/api-names.test.js fails when the two drift.
const OP = Object.freeze({
  ping: 'ping',
  list: 'list',
  describe: 'describe',
  stop: 'stop',
  delete: 'delete',
  restart: 'restart',
  reload: 'reload',
  reset: 'reset',
  scale: 'scale',
  sendSignal: 'send_signal',
  sendData: 'send_data',
  save: 'save',
  resurrect: 'resurrect',
  flush: 'flush',
  reloadLogs: 'reload_logs',
  kill: 'kill',
  trigger: 'trigger',
});

function rpm2Error(code, message) {
  const err = new Error(message);
  err.code = code;
  return err;
}

/** `(a, b, cb)` with optional middle arguments: split off the callback. */
function splitArgs(args) {
  const list = Array.from(args);
  let cb;
  while (list.length && list[list.length - 1] === undefined) list.pop();
  if (list.length && typeof list[list.length - 1] === 'function') cb = list.pop();
  return { list, cb };
}

/**
 * A public method from its body: the body gets the arguments without the
 * callback and runs at once (so `disconnect()` has closed when it returns);
 * its result or throw goes to the callback, or to the returned promise.
 */
function publicMethod(body) {
  return function method(...args) {
    const { list, cb } = splitArgs(args);
    let promise;
    try {
      promise = Promise.resolve(body.apply(this, list));
    } catch (err) {
      promise = Promise.reject(err);
    }
    if (typeof cb !== 'function') return promise;
    promise.then(
      (res) => cb(null, res),
      (err) => cb(err),
    );
    return undefined;
  };
}

/** pm2's action result: the process plus top-level status fields. */
function actionResult(p) {
  return {
    ...p,
    namespace: p.pm2_env.namespace,
    status: p.pm2_env.status,
    restart_time: p.pm2_env.restart_time,
  };
}

function toTargets(target) {
  const list = Array.isArray(target) ? target : [target];
  return list.map((t) => String(t));
}

/** pm2's regex target: `/^api-\d+$/`. */
function isRegexTarget(t) {
  return typeof t === 'string' && t.length > 2 && t.startsWith('/') && t.endsWith('/');
}

function badRequest(message) {
  return rpm2Error(codes().BadRequest, message);
}

function isConfigFile(t) {
  return loadNative().isConfigFile(t);
}

function shellEnv() {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (typeof v === 'string') env[k] = v;
  return env;
}

// Options that steer loading; everything else is an app option (any pm2
// spelling: `exec_mode`, `execMode`, `instances`, `name`…).
const CONTROL_KEYS = new Set(['only', 'env', 'cwd', 'updateEnv', 'update_env', 'parallel', 'force']);

/** API options → the addon's typed `LoadOpts` (`#[napi(object)]`; absent fields are `undefined`, not `null`). */
function loadOpts(opts = {}, { forStart = true } = {}) {
  const overrides = {};
  if (forStart) {
    for (const [k, v] of Object.entries(opts)) {
      if (!CONTROL_KEYS.has(k) && v !== undefined && typeof v !== 'function') overrides[k] = v;
    }
  }
  let envName;
  if (typeof opts.env === 'string') envName = opts.env;
  else if (forStart && opts.env && typeof opts.env === 'object') overrides.env = opts.env;
  let only = [];
  if (typeof opts.only === 'string') only = opts.only.split(',');
  else if (Array.isArray(opts.only)) only = opts.only.map(String);
  const updateEnv = opts.updateEnv || opts.update_env ? shellEnv() : undefined;
  return {
    cwd: opts.cwd ? path.resolve(opts.cwd) : process.cwd(),
    only,
    envName,
    overrides,
    updateEnv,
  };
}

class API {
  /**
   * @param {object} [opts] `rpm2_home` or pm2's `pm2_home` (else a fresh
   *   temporary home with pm2's `independent`, else $RPM2_HOME, else
   *   ~/.rpm2), `daemon_mode` (false: like `connect(true)`), `cwd` (where
   *   relative scripts and config files resolve).
   */
  constructor(opts) {
    this._opts = opts || {};
    this._conn = null;
    this._home = null;
    this._child = null;
    this._pin = null;
    this._buses = new Set();
    for (const name of Object.getOwnPropertyNames(API.prototype)) {
      if (name !== 'constructor' && typeof this[name] === 'function') this[name] = this[name].bind(this);
    }
  }

  _homeDir() {
    if (!this._home) {
      this._home =
        this._opts.rpm2_home ||
        this._opts.pm2_home ||
        this._opts.home ||
        (this._opts.independent ? fs.mkdtempSync(path.join(os.tmpdir(), 'rpm2-')) : null) ||
        process.env.RPM2_HOME ||
        path.join(os.homedir(), '.rpm2');
      this._home = path.resolve(this._home);
    }
    return this._home;
  }

  _exe() {
    try {
      return resolveBinary();
    } catch {
      return null;
    }
  }

  _connection() {
    // As pm2's client: once it has talked to the daemon, Node keeps running
    // until disconnect() or killDaemon().
    if (!this._pin) this._pin = setInterval(() => {}, 0x7fffffff);
    if (!this._conn) {
      const { Connection } = loadNative();
      this._conn = new Connection(this._homeDir(), this._exe());
    }
    return this._conn;
  }

  async _unwrap(pending) {
    const out = JSON.parse(await pending);
    if (out.error) throw rpm2Error(out.error.code, out.error.message);
    return out.ok;
  }

  async _request(req) {
    return this._unwrap(this._connection().request(req));
  }

  async _processes(req) {
    const resp = await this._request(req);
    return resp && resp.processes ? resp.processes : [];
  }

  async _actionResults(req) {
    const procs = await this._processes(req);
    // pm2: `all` with no process is an error, not an empty success.
    if (!procs.length && (req.targets || []).includes('all')) {
      throw rpm2Error(codes().ProcessNotFound, 'process name not found: no process is running');
    }
    return procs.map(actionResult);
  }

  async _connect(noDaemon) {
    const conn = this._connection();
    let info;
    if (!noDaemon) {
      info = await this._unwrap(conn.connect(true, 0));
    } else {
      try {
        info = await this._unwrap(conn.connect(false, 0));
      } catch {
        info = await this._spawnForeground(conn);
      }
    }
    return {
      daemon_mode: !noDaemon,
      new_pm2_instance: info.newDaemon,
      rpc_socket_file: info.rpcSocketFile,
      pub_socket_file: info.rpcSocketFile,
      pm2_home: info.home,
      daemon_pid: info.daemonPid,
    };
  }

  /** noDaemon: the daemon as our child, dying with us (not keeping us alive). */
  async _spawnForeground(conn) {
    const exe = this._exe();
    if (!exe) throw rpm2Error(codes().DaemonUnavailable, 'rpm2: no native executable to start a daemon');
    const home = this._homeDir();
    fs.mkdirSync(home, { recursive: true, mode: 0o700 });
    const log = fs.openSync(path.join(home, 'pm2.log'), 'a');
    const child = childProcess.spawn(exe, ['__daemon'], {
      env: { ...process.env, RPM2_HOME: home, RPM2_DAEMON_FOREGROUND: '1' },
      stdio: ['ignore', log, log],
    });
    fs.closeSync(log);
    child.unref();
    this._child = child;
    let exited = null;
    child.once('exit', (code, signal) => {
      exited = { code, signal };
      if (this._child === child) this._child = null;
    });
    try {
      const info = await this._unwrap(conn.connect(false, 10_000));
      return { ...info, newDaemon: exited === null };
    } catch (e) {
      if (exited) e.message += ` (the daemon exited: ${exited.signal || exited.code}; see ${path.join(home, 'pm2.log')})`;
      throw e;
    }
  }

  _unpin() {
    if (this._pin) clearInterval(this._pin);
    this._pin = null;
  }

  async _kill() {
    const child = this._child;
    try {
      await this._request({ op: OP.kill });
    } finally {
      for (const bus of this._buses) bus.close();
      this._buses.clear();
      if (this._conn) this._conn.close();
      this._unpin();
    }
    if (child && child.exitCode === null && child.signalCode === null) {
      await new Promise((resolve) => child.once('exit', resolve));
    }
    return { success: true };
  }

  /** pm2's `new API({ cwd })`: where relative paths resolve unless a call says. */
  _withCwd(opts) {
    const o = opts && typeof opts === 'object' ? opts : {};
    return this._opts.cwd && !o.cwd ? { ...o, cwd: this._opts.cwd } : o;
  }

  async _start(target, opts) {
    if (target === undefined || target === null) target = 'ecosystem.config.js';
    if (typeof target !== 'string' && typeof target !== 'object') {
      throw badRequest(`start needs a script, a config file or app objects, not ${JSON.stringify(target)}`);
    }
    if (Array.isArray(target) && !target.length) return [];
    if (typeof target === 'string' && !isConfigFile(target) && !opts.force) await this._refuseRunning(target, opts);
    const out = await this._unwrap(this._connection().start(target, loadOpts(this._withCwd(opts))));
    const result = out.processes.map(actionResult);
    Object.defineProperty(result, 'warnings', { value: out.warnings, enumerable: false });
    return result;
  }

  /**
   * pm2's rule for `start(script)`: the same script under the same name,
   * running, is refused (stopped or errored, it is started again).
   */
  async _refuseRunning(script, opts) {
    const cwd = path.resolve(opts.cwd || this._opts.cwd || process.cwd());
    const file = path.resolve(cwd, script);
    const name = typeof opts.name === 'string' ? opts.name : path.basename(script, path.extname(script));
    const running = (await this._processes({ op: OP.list })).filter(
      (p) =>
        p.name === name && p.pm2_env.pm_exec_path === file && !['stopped', 'stopping', 'errored'].includes(p.pm2_env.status),
    );
    if (running.length) throw badRequest('Script already launched, add -f option to force re-execution');
  }

  /**
   * Targets for a config path (its apps that are running: pm2 skips the
   * others), an app object, an array, or names, ids and `/regex/`es.
   */
  async _names(target, opts) {
    if (target === undefined) throw badRequest('a process name, id, namespace or "all" is needed');
    let names;
    if (typeof target === 'string' && isConfigFile(target)) {
      const apps = await this._unwrap(this._connection().load(target, loadOpts(this._withCwd(opts), { forStart: false })));
      const running = new Set((await this._processes({ op: OP.list })).map((p) => p.name));
      return apps.map((a) => a.name).filter((n) => running.has(n));
    }
    if (target && typeof target === 'object' && !Array.isArray(target)) names = [String(target.name)];
    else if (Array.isArray(target)) names = target.map((t) => (t && typeof t === 'object' ? String(t.name) : String(t)));
    else names = toTargets(target);
    if (!names.some(isRegexTarget)) return names;
    // pm2 matches a regex against the names and acts on the ids found.
    const list = await this._processes({ op: OP.list });
    return names.flatMap((t) => {
      if (!isRegexTarget(t)) return [t];
      let re;
      try {
        re = new RegExp(t.slice(1, -1));
      } catch (e) {
        throw badRequest(`invalid regex target ${t}: ${e.message}`);
      }
      const ids = list.filter((p) => re.test(p.name)).map((p) => String(p.pm_id));
      if (!ids.length) throw rpm2Error(codes().ProcessNotFound, `no process name matches ${t}`);
      return ids;
    });
  }

  /** A config file whose apps are not running is no error in pm2: nothing to do. */
  async _simple(op, target, opts) {
    const targets = await this._names(target, opts);
    if (!targets.length) return [];
    return this._actionResults({ op, targets });
  }

  async _restart(op, target, opts) {
    if (typeof target === 'string' && isConfigFile(target)) {
      // As `rpm2 restart|reload <file>`: the file's spec applies.
      const out = await this._unwrap(
        this._connection().startOr(target, loadOpts(this._withCwd(opts), { forStart: false }), op === OP.reload),
      );
      return out.processes.map(actionResult);
    }
    if (opts.env && (typeof target !== 'object' || target === null)) {
      // pm2's refusal, word for word: `env_<name>` lives in a config file.
      throw badRequest('Using --env [env] without passing the ecosystem.config.js does not work');
    }
    const targets = await this._names(target, opts);
    if (!targets.length) return [];
    const req = { op, targets, update_env: opts.updateEnv || opts.update_env ? shellEnv() : null };
    if (op === OP.reload && opts.parallel) req.parallel = Number(opts.parallel);
    return this._actionResults(req);
  }

  async _sendData(list) {
    let id;
    let packet;
    if (list.length === 1 && list[0] && typeof list[0] === 'object') {
      packet = list[0];
      id = packet.id;
    } else {
      [id, packet] = list;
      if (packet && typeof packet === 'object') packet.id = id;
    }
    if (!packet || typeof packet !== 'object' || id === undefined || id === null || packet.data === undefined || !packet.topic) {
      throw badRequest('ID, DATA or TOPIC field is missing');
    }
    const pmId = Number(id);
    if (!Number.isInteger(pmId) || pmId < 0) throw badRequest(`invalid process id: ${id}`);
    await this._request({ op: OP.sendData, pm_id: pmId, packet });
    return { success: true, data: packet };
  }

  /** As pm2's: the daemon is started if none runs, then the bus opens. */
  async _launchBus() {
    const conn = this._connection();
    await this._unwrap(conn.connect(this._child === null && this._opts.daemon_mode !== false, 0));
    return openBus(conn, this._buses, rpm2Error);
  }
}

// The public API, one row per method: its body gets the arguments without
// the callback (`publicMethod` adds the callback/promise split).
const METHODS = {
  // ---------------------------------------------------------------- daemon
  /** `connect([noDaemon], cb)`: reach the daemon, starting it if needed. */
  connect(noDaemon) {
    return this._connect(noDaemon === true || this._opts.daemon_mode === false);
  },
  /** `disconnect([cb])`: close every connection and bus; the process may then exit. */
  disconnect() {
    for (const bus of this._buses) bus.close();
    this._buses.clear();
    if (this._conn) this._conn.close();
    this._conn = null;
    this._unpin();
  },
  /** `killDaemon(cb)`: stop every app, then the daemon. */
  killDaemon() {
    return this._kill();
  },
  ping() {
    return this._request({ op: OP.ping }).then(() => ({ msg: 'pong' }));
  },
  /** `update(cb)`: the daemon re-executes the rpm2 binary now on disk in place, every process kept (pm2 restarts them all); `{ success: true, pid, from, to }`. */
  update() {
    return this._unwrap(this._connection().update());
  },

  // ---------------------------------------------------------------- apps
  /** `start(script | configPath | appObject | appArray, [opts], cb)`. */
  start(target, opts) {
    return this._start(target, opts || {});
  },
  stop(target, opts) {
    return this._simple(OP.stop, target, opts || {});
  },
  delete(target, opts) {
    return this._simple(OP.delete, target, opts || {});
  },
  restart(target, opts) {
    return this._restart(OP.restart, target, opts || {});
  },
  reload(target, opts) {
    return this._restart(OP.reload, target, opts || {});
  },
  /** `reset(target, cb)`: zero the restart counters; `{ success: true }` as pm2. */
  reset(target) {
    return this._simple(OP.reset, target, {}).then(() => ({ success: true }));
  },
  /** `scale(name, n | '+n' | '-n', cb)`; `{ success: true }` as pm2. */
  scale(name, count) {
    if (name === undefined || name === null || count === undefined || count === null) {
      throw badRequest('scale needs an app name and a number of workers');
    }
    return this._request({ op: OP.scale, name: String(name), count: String(count) }).then(() => ({ success: true }));
  },
  /** `list(cb)`: every worker, as `rpm2 jlist` prints it. */
  list() {
    return this._processes({ op: OP.list });
  },
  /** `describe(name | id, cb)`: the workers matching; none is `[]`, as in pm2. */
  describe(target) {
    if (target === undefined) throw badRequest('describe needs a process name or id');
    return this._processes({ op: OP.describe, targets: toTargets(target) }).catch((e) => {
      if (e.code === codes().ProcessNotFound) return [];
      throw e;
    });
  },

  // ---------------------------------------------------------------- messages
  /** `sendDataToProcessId(id, packet, cb)` or `(packet, cb)`. */
  sendDataToProcessId(...list) {
    return this._sendData(list);
  },
  /** `sendSignalToProcessName(signal, name, cb)`: answers with the whole list, as pm2. */
  sendSignalToProcessName(signal, name) {
    if (signal === undefined || name === undefined) throw badRequest('a signal and a process are needed');
    return this._request({ op: OP.sendSignal, signal: String(signal), targets: toTargets(name) }).then(() =>
      this._processes({ op: OP.list }),
    );
  },
  /** `launchBus(cb)`: an EventEmitter of the daemon's events (pm2's bus). */
  launchBus() {
    return this._launchBus();
  },
  /** `trigger(id | name | namespace | 'all', action, [params], cb)`: run an `@pm2/io` action; resolves to the `axm:reply` packets. */
  trigger(target, action, params) {
    const req = { op: OP.trigger, target: String(target), action: String(action) };
    if (params) req.params = params;
    return this._request(req).then((out) => {
      if (!out.sent.length) throw rpm2Error(codes().ProcessNotFound, 'Unknown process');
      return out.replies.map((r) => ({ process: { ...r.process, rev: null }, at: r.at, data: r.data }));
    });
  },

  // ---------------------------------------------------------------- files
  /** `dump([force], cb)`: save the process list for `resurrect`. */
  dump(force) {
    return this._request({ op: OP.save, force: force === true }).then(() => ({ success: true }));
  },
  /** `resurrect(cb)`: start what the dump holds and is not running. */
  resurrect() {
    return this._actionResults({ op: OP.resurrect });
  },
  /** `flush([name | id], cb)`: truncate log files (all when no target); answers with the list, as pm2. */
  flush(target) {
    const targets = target === undefined || target === null || target === 'all' ? [] : toTargets(target);
    return this._request({ op: OP.flush, targets }).then(() => this._processes({ op: OP.list }));
  },
  /** `reloadLogs(cb)`: reopen every log file (after rotation); `{}` as pm2. */
  reloadLogs() {
    return this._request({ op: OP.reloadLogs }).then(() => ({}));
  },
};

// pm2's other names for the same methods.
const ALIASES = {
  close: 'disconnect',
  kill: 'killDaemon',
  sendSignalToProcessId: 'sendSignalToProcessName',
};

for (const [name, body] of Object.entries(METHODS)) API.prototype[name] = publicMethod(body);
for (const [alias, name] of Object.entries(ALIASES)) API.prototype[alias] = API.prototype[name];
// For js-tests/api-names.test.js: the ops this file sends.
Object.defineProperty(API, 'REQUEST_OPS', { value: Object.values(OP) });

const rpm2 = new API();
rpm2.custom = API;
rpm2.API = API;
module.exports = rpm2;
