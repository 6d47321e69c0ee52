// Types for require('rpm2'): pm2's programmatic API over the rpm2 daemon.
// Every method takes a Node-style callback or, without one, returns a Promise.

import { EventEmitter } from 'node:events';

declare namespace rpm2 {
  type Callback<T> = (err: Rpm2Error | null, result?: T) => void;

  /** What `update()` resolves to; `success: false` when no daemon runs. */
  interface UpdateResult {
    success: boolean;
    pid?: number;
    /** The rpm2 version the daemon ran, and runs now. */
    from?: string;
    to?: string;
  }

  /** Stable error codes carried by `err.code`. */
  type ErrorCode =
    | 'PROCESS_NOT_FOUND'
    | 'BAD_REQUEST'
    | 'PROTOCOL_MISMATCH'
    | 'SPAWN_FAILED'
    | 'CRASH_LOOP'
    | 'RELOAD_FAILED'
    | 'NOTHING_TO_DO'
    | 'NO_DUMP'
    | 'SIGNAL_FAILED'
    | 'SHUTTING_DOWN'
    | 'DAEMON_UNAVAILABLE'
    | 'DAEMON_TIMEOUT'
    | 'DAEMON_BUSY'
    | 'TOO_LARGE'
    | 'IO_ERROR'
    | 'INVALID_CONFIG'
    | 'CONFIG_NOT_FOUND'
    | 'CONFIG_READ'
    | 'CONFIG_PARSE'
    | 'NODE_NOT_FOUND'
    | 'SCRIPT_NOT_FOUND'
    | 'INVALID_OPTION'
    | 'INTERPRETER_NOT_FOUND'
    | 'APP_NOT_IN_CONFIG'
    | 'UPDATE_FAILED'
    | 'INTERNAL_ERROR';

  interface Rpm2Error extends Error {
    code: ErrorCode | string;
  }

  type ProcessStatus = 'launching' | 'online' | 'stopping' | 'stopped' | 'errored' | 'waiting restart';
  type ExecMode = 'fork_mode' | 'cluster_mode';

  /** `pm2_env` of a list entry: the fields tools read, plus pm2's others. */
  interface Pm2Env {
    name: string;
    namespace: string;
    pm_id: number;
    status: ProcessStatus;
    exec_mode: ExecMode;
    instances: number;
    restart_time: number;
    unstable_restarts: number;
    created_at: number;
    pm_uptime: number;
    exit_code?: number | null;
    pm_exec_path: string;
    pm_cwd: string;
    exec_interpreter: string;
    node_args: string[];
    args: string[];
    pm_out_log_path: string;
    pm_err_log_path: string;
    pm_pid_path: string;
    merge_logs: boolean;
    autorestart: boolean;
    kill_timeout: number;
    /** rpm2: `false`, `'ip'` or `'forwarded'`. */
    sticky?: false | 'ip' | 'forwarded';
    /** rpm2: the drain preload is injected. */
    drain?: boolean;
    /** rpm2: HTTP requests in flight, as the drain preload last reported. */
    inflight_requests?: number;
    /** rpm2: the event-loop lag of the worker's process (the watchdog's last ping), in ms. */
    event_loop_lag_ms?: number;
    /** rpm2: why rpm2 last replaced the worker on its own (watchdog, liveness probe). */
    restart_reason?: string;
    /** `version` of the nearest package.json, `'N/A'` without one. */
    version: string;
    /** Node apps: the version of the interpreter that runs them. */
    node_version?: string;
    /** The environment as given, with the config's types; also flattened into `pm2_env`. */
    env: Record<string, string | number | boolean>;
    [key: string]: unknown;
  }

  /** One worker, as `list`/`describe` (and `rpm2 jlist`) give it. */
  interface ProcessDescription {
    /** 0 when the worker has no process. */
    pid: number;
    name: string;
    pm_id: number;
    monit: { memory: number; cpu: number };
    pm2_env: Pm2Env;
  }

  /** What start/stop/restart/reload/delete/scale answer with, per worker. */
  interface Proc extends ProcessDescription {
    namespace: string;
    status: ProcessStatus;
    restart_time: number;
  }

  /** An app as in an ecosystem file; any pm2 spelling of options works. */
  interface StartOptions {
    name?: string;
    script?: string;
    args?: string | string[];
    interpreter?: string;
    interpreter_args?: string | string[];
    node_args?: string | string[];
    cwd?: string;
    /** N workers; `'max'` or 0: one per CPU rpm2 may use (affinity mask, cgroup CPU quota); -1: one fewer. */
    instances?: number | string;
    exec_mode?: 'fork' | 'cluster' | ExecMode;
    execMode?: 'fork' | 'cluster' | ExecMode;
    namespace?: string;
    env?: Record<string, string | number | boolean>;
    [env_name: `env_${string}`]: Record<string, string | number | boolean> | undefined;
    watch?: boolean | string | string[];
    ignore_watch?: string | string[];
    autorestart?: boolean;
    autostart?: boolean;
    max_restarts?: number;
    min_uptime?: number | string;
    restart_delay?: number;
    exp_backoff_restart_delay?: number;
    max_memory_restart?: number | string;
    cron_restart?: string;
    kill_timeout?: number;
    listen_timeout?: number;
    wait_ready?: boolean;
    shutdown_with_message?: boolean;
    stop_exit_codes?: number | number[];
    merge_logs?: boolean;
    out_file?: string;
    error_file?: string;
    log_file?: string;
    log_date_format?: string;
    time?: boolean;
    /**
     * rpm2: route cluster connections by client: `true`/`'ip'` by the peer
     * address, `'forwarded'` by X-Forwarded-For (else X-Real-IP) behind a proxy.
     */
    sticky?: boolean | 'ip' | 'forwarded';
    /** rpm2: `false` to run Node workers without the drain preload. */
    drain?: boolean;
    /** rpm2: ms a Node worker's event loop may stay silent before it is replaced (30000; 0: off). */
    unresponsive_timeout?: number;
    /** rpm2: a worker gets connections, and counts as ready in a reload, once this passes. */
    readiness_probe?: Probe;
    /** rpm2: `failure_threshold` failures in a row replace the worker. */
    liveness_probe?: Probe;
    [option: string]: unknown;
  }

  /** rpm2: a health probe (README, "Health checks"): one check and its timing. */
  type Probe = (
    | { http_get: { path: string; port?: number; status?: number } }
    | { tcp_socket: { port?: number } }
    | { exec: { command: string | string[] } }
  ) & {
    period_ms?: number;
    timeout_ms?: number;
    failure_threshold?: number;
    initial_delay_ms?: number;
  };

  /** `start`'s second argument: CLI-style flags applied over every app. */
  interface StartFlags extends Omit<StartOptions, 'env'> {
    /** Names of the apps of a config to start (`--only`). */
    only?: string | string[];
    /** `env_<name>` to merge (`--env <name>`), or extra variables. */
    env?: string | Record<string, string | number | boolean>;
    /** Where relative paths resolve; default `process.cwd()`. */
    cwd?: string;
  }

  interface ActionOptions {
    /** Merge this process's environment over the apps' (`--update-env`). */
    updateEnv?: boolean;
    /** With a config path: merge its `env_<name>`. */
    env?: string;
    /** With a config path: only these apps. */
    only?: string | string[];
    /** reload: workers replaced at once. */
    parallel?: number;
  }

  /** name, pm_id, namespace, 'all', `/regex/` (on names), a config path, or app objects. */
  type Target = string | number | StartOptions | Array<string | number | StartOptions>;

  interface Success {
    success: true;
  }

  interface ConnectResult {
    daemon_mode: boolean;
    new_pm2_instance: boolean;
    rpc_socket_file: string;
    pub_socket_file: string;
    pm2_home: string;
    daemon_pid: number;
  }

  interface BusProcess {
    pm_id: number;
    name: string;
    namespace: string;
    rev: null;
  }

  interface LogPacket {
    process: BusProcess;
    at: number;
    data: string;
  }

  interface ProcessEventPacket {
    process: BusProcess;
    at: number;
    event: 'start' | 'online' | 'exit' | 'stop' | 'restart' | 'delete' | 'reload' | 'restart overlimit' | string;
    manually: boolean;
  }

  /** `process.send({type, data})` arrives under `type` with `data`;
   * anything else (`process.send('ready')`) as `process:msg` with `raw`. */
  interface MessagePacket<T = unknown> {
    process: BusProcess;
    at: number;
    data?: T;
    raw?: unknown;
  }

  /** An action's answer (`trigger`'s result, the bus's `axm:reply`). */
  interface ActionReplyPacket<R = unknown> {
    process: BusProcess;
    at: number;
    data: { action_name: string; at: number; return: R };
  }

  interface Bus extends EventEmitter {
    on(event: 'log:out' | 'log:err', listener: (packet: LogPacket) => void): this;
    on(event: 'process:event', listener: (packet: ProcessEventPacket) => void): this;
    on(event: 'process:msg', listener: (packet: MessagePacket) => void): this;
    on(event: 'close', listener: () => void): this;
    on(event: 'error', listener: (err: Rpm2Error) => void): this;
    /** Wildcards (`log:*`, `*`) get the event name first. */
    on(event: `${string}*${string}`, listener: (type: string, packet: unknown) => void): this;
    on(event: string, listener: (packet: MessagePacket) => void): this;
    /** Stop receiving events (also done by `disconnect()`). */
    close(): void;
  }

  interface DataPacket<T = unknown> {
    id?: number;
    type?: string;
    topic: string | boolean;
    data: T;
    [key: string]: unknown;
  }

  interface ApiOptions {
    /** Daemon home; default `$RPM2_HOME`, else `~/.rpm2`. */
    rpm2_home?: string;
    /** pm2's name for the same. */
    pm2_home?: string;
    home?: string;
    /** A home of its own in the temp folder (pm2's `independent`). */
    independent?: boolean;
    /** Where relative scripts and config files resolve; default `process.cwd()`. */
    cwd?: string;
    /** false: like `connect(true)` (the daemon is our child). */
    daemon_mode?: boolean;
  }

  interface APIConstructor {
    new (opts?: ApiOptions): API;
  }

  interface API {

    connect(cb: Callback<ConnectResult>): void;
    connect(noDaemon: boolean, cb: Callback<ConnectResult>): void;
    connect(noDaemon?: boolean): Promise<ConnectResult>;
    disconnect(cb: Callback<void>): void;
    disconnect(): Promise<void>;
    close(cb: Callback<void>): void;
    close(): Promise<void>;

    start(target: string | StartOptions | StartOptions[], cb: Callback<Proc[]>): void;
    start(target: string | StartOptions | StartOptions[], opts: StartFlags | null, cb: Callback<Proc[]>): void;
    start(target?: string | StartOptions | StartOptions[], opts?: StartFlags): Promise<Proc[]>;

    stop(target: Target, cb: Callback<Proc[]>): void;
    stop(target: Target, opts: ActionOptions | null, cb: Callback<Proc[]>): void;
    stop(target: Target, opts?: ActionOptions): Promise<Proc[]>;
    restart(target: Target, cb: Callback<Proc[]>): void;
    restart(target: Target, opts: ActionOptions | null, cb: Callback<Proc[]>): void;
    restart(target: Target, opts?: ActionOptions): Promise<Proc[]>;
    reload(target: Target, cb: Callback<Proc[]>): void;
    reload(target: Target, opts: ActionOptions | null, cb: Callback<Proc[]>): void;
    reload(target: Target, opts?: ActionOptions): Promise<Proc[]>;
    delete(target: Target, cb: Callback<Proc[]>): void;
    delete(target: Target, opts: ActionOptions | null, cb: Callback<Proc[]>): void;
    delete(target: Target, opts?: ActionOptions): Promise<Proc[]>;
    reset(target: string | number, cb: Callback<Success>): void;
    reset(target: string | number): Promise<Success>;

    scale(name: string, count: number | string, cb: Callback<Success>): void;
    scale(name: string, count: number | string): Promise<Success>;

    list(cb: Callback<ProcessDescription[]>): void;
    /** pm2's `list(opts, cb)`: the options are ignored (pm2-prometheus-exporter passes `[]`). */
    list(opts: object | null, cb: Callback<ProcessDescription[]>): void;
    list(): Promise<ProcessDescription[]>;
    /** An unknown name or id gives `[]`, as in pm2. */
    describe(target: string | number, cb: Callback<ProcessDescription[]>): void;
    describe(target: string | number): Promise<ProcessDescription[]>;

    sendDataToProcessId<T>(id: number, packet: DataPacket<T>, cb: Callback<{ success: true; data: DataPacket<T> }>): void;
    sendDataToProcessId<T>(packet: DataPacket<T> & { id: number }, cb: Callback<{ success: true; data: DataPacket<T> }>): void;
    sendDataToProcessId<T>(id: number, packet: DataPacket<T>): Promise<{ success: true; data: DataPacket<T> }>;
    sendDataToProcessId<T>(packet: DataPacket<T> & { id: number }): Promise<{ success: true; data: DataPacket<T> }>;
    /** Answers with the whole process list, as pm2. */
    sendSignalToProcessName(signal: string | number, name: string, cb: Callback<ProcessDescription[]>): void;
    sendSignalToProcessName(signal: string | number, name: string): Promise<ProcessDescription[]>;
    sendSignalToProcessId(signal: string | number, id: number | string, cb: Callback<ProcessDescription[]>): void;
    sendSignalToProcessId(signal: string | number, id: number | string): Promise<ProcessDescription[]>;

    launchBus(cb: Callback<Bus>): void;
    launchBus(): Promise<Bus>;

    /** Run an `@pm2/io` action (`io.action`) of the matching workers; one reply packet each. */
    trigger<R = unknown>(target: string | number, action: string, cb: Callback<ActionReplyPacket<R>[]>): void;
    trigger<R = unknown>(target: string | number, action: string, params: unknown, cb: Callback<ActionReplyPacket<R>[]>): void;
    trigger<R = unknown>(target: string | number, action: string, params?: unknown): Promise<ActionReplyPacket<R>[]>;

    killDaemon(cb: Callback<{ success: true }>): void;
    killDaemon(): Promise<{ success: true }>;
    kill(cb: Callback<{ success: true }>): void;
    kill(): Promise<{ success: true }>;
    ping(cb: Callback<{ msg: 'pong' }>): void;
    ping(): Promise<{ msg: 'pong' }>;
    /** The daemon re-executes the rpm2 binary now on disk in place: same pid, every process kept. */
    update(cb: Callback<UpdateResult>): void;
    update(): Promise<UpdateResult>;

    dump(cb: Callback<{ success: true }>): void;
    dump(force: boolean, cb: Callback<{ success: true }>): void;
    dump(force?: boolean): Promise<{ success: true }>;
    resurrect(cb: Callback<Proc[]>): void;
    resurrect(): Promise<Proc[]>;
    /** Answers with the process list, as pm2. */
    flush(cb: Callback<ProcessDescription[]>): void;
    flush(target: string | number | null, cb: Callback<ProcessDescription[]>): void;
    flush(target?: string | number | null): Promise<ProcessDescription[]>;
    /** Answers `{}`, as pm2. */
    reloadLogs(cb: Callback<Record<string, never>>): void;
    reloadLogs(): Promise<Record<string, never>>;
  }
}

declare const rpm2: rpm2.API & {
  /** The class, for an API bound to another home (pm2's `custom`). */
  custom: rpm2.APIConstructor;
  API: rpm2.APIConstructor;
};

export = rpm2;
