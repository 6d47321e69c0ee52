'use strict';
// Loaded with `--require` into the crash section's app (under every
// manager and plain). Appends "<what> <process start> <time>" lines (epoch
// ms) to $RPM2_BENCH_TIMING at each step of the app's start:
//   main     the app's main module starts (Node's bootstrap and every
//            preload are done)
//   listen   the app calls listen()
//   ready    the app sends 'ready'
//   request  its first request starts
// main → listen is the app's own code (requiring Express and the rest): the
// same code under any manager and the noisiest part of a restart, so it can
// be told apart from what the manager adds in the other steps.
const fs = require('node:fs');
const net = require('node:net');
const Module = require('node:module');
const dc = require('node:diagnostics_channel');

const file = process.env.RPM2_BENCH_TIMING;
const send = process.send;
if (file && send) {
  const origin = performance.timeOrigin;
  const stamp = (what) => fs.appendFileSync(file, `${what} ${origin.toFixed(3)} ${(origin + performance.now()).toFixed(3)}\n`);
  const once = (what) => {
    let done = false;
    return () => {
      if (!done) stamp(what);
      done = true;
    };
  };
  const main = once('main');
  const load = Module._load;
  Module._load = function timedLoad(request, parent, isMain) {
    if (isMain) main();
    return load.apply(this, arguments);
  };
  const listenCalled = once('listen');
  const listen = net.Server.prototype.listen;
  net.Server.prototype.listen = function timedListen(...args) {
    listenCalled();
    return listen.apply(this, args);
  };
  process.send = function timedSend(msg, ...rest) {
    if (msg === 'ready') stamp('ready');
    return send.call(this, msg, ...rest);
  };
  const firstRequest = () => {
    dc.unsubscribe('http.server.request.start', firstRequest);
    stamp('request');
  };
  dc.subscribe('http.server.request.start', firstRequest);
}
