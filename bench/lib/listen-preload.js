'use strict';
// Preloaded (node -r) into the unmodified seed app by bench/reuseport.js and
// bench/lib/plain.js. It changes only how the app's one server listens:
// BENCH_LISTEN_FD=n -> listen on an inherited, already listening socket (a
// SO_REUSEPORT socket made by python on Node < 22.12); BENCH_REUSEPORT=1 ->
// Node's own `reusePort: true` (Node >= 22.12). It also gives the app a
// no-op process.send when it has no IPC channel, since app.js calls
// process.send('ready').
const net = require('node:net');

if (typeof process.send !== 'function') process.send = () => true;

const fd = process.env.BENCH_LISTEN_FD;
const reuse = process.env.BENCH_REUSEPORT === '1';
if (fd || reuse) {
  const listen = net.Server.prototype.listen;
  net.Server.prototype.listen = function patchedListen(...args) {
    const cb = typeof args[args.length - 1] === 'function' ? args.pop() : undefined;
    const opts = fd ? { fd: Number(fd) } : { port: Number(process.env.port), reusePort: true };
    return listen.call(this, opts, cb);
  };
}
