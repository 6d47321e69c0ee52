'use strict';
// rpm2's drain preload. The daemon passes it to Node workers with
// `--require` (opt out per app with `drain: false`). It changes nothing
// until the daemon drains the worker, or the app closes an HTTP server:
//
// - from then on every response carries `Connection: close`, so each
//   keep-alive client ends its connection after its current or next request
//   and opens a new one, to a live worker;
// - `server.close()` stops accepting but does not destroy idle keep-alive
//   connections (Node's own close does, even one whose next request already
//   sits unread in the socket): they end after their next response, or when
//   the linger expires;
// - once no request is in flight and no HTTP connection is open, it tells
//   the daemon (`NODE_RPM2_DRAINED`), which then interrupts it at once.
//
// It answers the daemon's watchdog ping (`NODE_RPM2_PING`, every second)
// with `NODE_RPM2_PONG` from the event loop: the daemon measures the loop's
// lag and replaces a worker whose loop stopped answering.
//
// It also reports the number of requests in flight (at most every 500 ms,
// only when it changed), and at start the app's name as `@pm2/io`'s
// configuration message, which pm2's injected agent sends for every Node
// app: jlist's `axm_options.module_name`, as pm2 shows it. Messages to and from the daemon are Node internal
// messages (`cmd` starting with `NODE_`): the app's process.on('message')
// never sees them, and listening for them does not keep the process alive.
// Requires Node 18 (diagnostics_channel http server events).
(function rpm2Drain() {
  if (typeof process.send !== 'function') return;
  const HELLO = 'NODE_RPM2_HELLO';
  const noop = () => {};
  const send = (msg) => {
    try {
      if (process.connected) process.send(msg, undefined, undefined, noop);
    } catch {
      // The channel is gone: nobody to tell.
    }
  };
  try {
    install(send);
    send({ cmd: HELLO, version: 1 });
    if (process.env.name) {
      send({ type: 'axm:option:configuration', data: { module_name: process.env.name } });
    }
  } catch (e) {
    send({ cmd: HELLO, version: 1, error: String((e && e.message) || e) });
  }
})();

// Loads nothing at start-up: `net` and `diagnostics_channel` are loaded by
// Node for every child with an IPC channel, while `http`, `https` and `tls`
// (about 4 ms) are required only once the app runs an HTTP server, when it
// has loaded them itself. A worker's start-up is on the restart path.
function install(send) {
  const dc = require('diagnostics_channel');
  const net = require('net');

  /** Linger for idle connections when the app closes a server itself. */
  const DEFAULT_LINGER_MS = 1000;
  const STATS_EVERY_MS = 500;
  const kActive = Symbol('rpm2.activeRequests');
  const kClosing = Symbol('rpm2.closing');

  /** Open HTTP connections of the servers we saw listen. */
  const connections = new Set();
  const servers = new Set();
  let inflight = 0;
  let draining = false;
  let drainedSent = false;
  /** Idle connections are destroyed after this (set by a drain or a close). */
  let lingerOver = false;
  let lingerTimer = null;

  // In-flight count, reported when it changed, at most every 500 ms.
  let reported = 0;
  let statsTimer = null;
  const report = () => {
    if (statsTimer !== null || inflight === reported) return;
    statsTimer = setTimeout(() => {
      statsTimer = null;
      if (inflight !== reported) {
        reported = inflight;
        send({ cmd: 'NODE_RPM2_STATS', inflight });
      }
    }, STATS_EVERY_MS);
    statsTimer.unref();
  };

  const closing = (server) => draining || (server && server[kClosing]);

  const checkDrained = () => {
    if (!draining || drainedSent || inflight > 0 || connections.size > 0) return;
    drainedSent = true;
    send({ cmd: 'NODE_RPM2_DRAINED', inflight: 0 });
  };

  /** An idle connection of a closing server may go once the linger is over. */
  const endIfIdle = (socket) => {
    if ((socket[kActive] || 0) === 0 && lingerOver && closing(socket.server)) {
      socket.destroy();
    }
  };

  const startLinger = (ms) => {
    if (lingerTimer !== null) return;
    lingerTimer = setTimeout(() => {
      lingerOver = true;
      for (const socket of connections) endIfIdle(socket);
    }, ms);
    lingerTimer.unref();
  };

  // Per connection: its requests in flight (more than one when pipelined).
  // A connection that closes takes its unfinished requests with it.
  const track = (socket) => {
    if (connections.has(socket)) return;
    connections.add(socket);
    if (socket[kActive] === undefined) socket[kActive] = 0;
    socket.once('close', () => {
      connections.delete(socket);
      inflight -= socket[kActive];
      socket[kActive] = 0;
      report();
      checkDrained();
    });
  };

  // http.Server and https.Server (Node >= 18.2) have closeIdleConnections;
  // TLS servers have setSecureContext. Duck typing, so that telling them
  // apart loads neither module.
  const isHttpServer = (server) => typeof server.closeIdleConnections === 'function';
  const isTlsServer = (server) => typeof server.setSecureContext === 'function';

  // Every HTTP server that listens: its connections are tracked from the
  // first byte (an idle one holds no request, so no diagnostics event).
  const watchServer = (server) => {
    if (servers.has(server)) return;
    servers.add(server);
    const tls = isTlsServer(server);
    gentleCloseFor(tls);
    server.on(tls ? 'secureConnection' : 'connection', track);
    server.once('close', () => servers.delete(server));
  };
  // http.Server inherits listen from net.Server.
  const listen = net.Server.prototype.listen;
  net.Server.prototype.listen = function rpm2Listen(...args) {
    if (isHttpServer(this)) watchServer(this);
    return listen.apply(this, args);
  };

  const done = (socket) => {
    if (!(socket[kActive] > 0)) return;
    inflight--;
    socket[kActive]--;
    report();
    if (closing(socket.server)) {
      // Headers sent before the drain kept the connection alive: end it
      // once the linger is over.
      process.nextTick(endIfIdle, socket);
    }
    checkDrained();
  };

  // No listener or closure per request: two events Node publishes anyway
  // once someone subscribes.
  dc.channel('http.server.request.start').subscribe(({ response, socket, server }) => {
    if (!connections.has(socket)) {
      if (server) watchServer(server);
      track(socket);
    }
    inflight++;
    socket[kActive]++;
    if (draining || server[kClosing]) response.shouldKeepAlive = false;
    report();
  });
  dc.channel('http.server.response.finish').subscribe(({ socket }) => done(socket));

  // Stop accepting without destroying idle keep-alive connections: each
  // ends after its next response (`Connection: close`) or at the linger.
  const gentleClose = (base) =>
    function rpm2Close(callback) {
      if (this[kClosing]) {
        // Already closed by a drain: answer as the first close will.
        if (typeof callback === 'function') {
          if (this.listening) this.once('close', () => callback());
          else process.nextTick(callback);
        }
        return this;
      }
      this[kClosing] = true;
      startLinger(DEFAULT_LINGER_MS);
      for (const socket of connections) {
        if (socket.server === this) endIfIdle(socket);
      }
      return base.call(this, callback);
    };
  // Installed on the first HTTP(S) server seen, whose module the app has
  // loaded by then; every server of that kind has the gentle close after.
  let httpClose = false;
  let httpsClose = false;
  const gentleCloseFor = (secure) => {
    if (secure && !httpsClose) {
      httpsClose = true;
      require('https').Server.prototype.close = gentleClose(require('tls').Server.prototype.close);
    } else if (!secure && !httpClose) {
      httpClose = true;
      require('http').Server.prototype.close = gentleClose(net.Server.prototype.close);
    }
  };

  const drain = (lingerMs) => {
    if (draining) return;
    draining = true;
    startLinger(lingerMs > 0 ? lingerMs : DEFAULT_LINGER_MS);
    for (const server of [...servers]) {
      if (server.listening && !server[kClosing]) server.close();
    }
    checkDrained();
  };

  // The watchdog: the daemon pings, we answer from the event loop, so a
  // loop that is blocked answers late or never. No timer of our own.
  process.on('internalMessage', (msg) => {
    if (!msg) return;
    if (msg.cmd === 'NODE_RPM2_PING') send({ cmd: 'NODE_RPM2_PONG', seq: msg.seq });
    else if (msg.cmd === 'NODE_RPM2_DRAIN') drain(Number(msg.linger));
  });
}
