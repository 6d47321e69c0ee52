#!/usr/bin/env node
'use strict';
// Why a keep-alive client that never retries sees failures in any graceful
// reload of a Node http server, with or without a process manager. The
// cluster `disconnect` makes a worker call `server.close()`. Node then
// destroys the connections that are idle at that instant. A client may
// already be sending a request on one of them: it gets ECONNRESET. Busy
// connections get no `Connection: close`. They go on being answered with
// keep-alive and close only after keepAliveTimeout of idleness, so a client
// that keeps one busy keeps the draining worker alive. After kill_timeout
// the worker is killed with a request in flight on each such connection.
// Run: node bench/keepalive-close-race.js
const http = require('node:http');
const net = require('node:net');

const REQ = 'GET / HTTP/1.1\r\nHost: x\r\n\r\n';
const AFTER_CLOSE = 20; // requests sent on the connection after close()

const server = http.createServer((req, res) => setTimeout(() => res.end('hi'), 5));
let closed = false;
server.listen(0, '127.0.0.1', () => {
  const s = net.connect(server.address().port, '127.0.0.1', () => {
    s.write(REQ);
    setTimeout(() => server.close(() => (closed = true)), 2); // drain starts mid-request
  });
  let buf = '';
  let answers = 0;
  const headers = [];
  s.on('data', (d) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf('\r\n\r\nhi')) >= 0) {
      headers.push(/^connection: (.*)$/im.exec(buf.slice(0, i))[1]);
      buf = buf.slice(i + 6);
      answers++;
      if (answers <= AFTER_CLOSE) s.write(REQ);
      else report(s, answers, headers);
    }
  });
});

function report(s, answers, headers) {
  console.log(`node ${process.version}: ${answers} requests answered on one connection after server.close();`);
  console.log(`Connection headers seen: ${[...new Set(headers)].join(', ')}; close callback fired: ${closed}`);
  s.destroy();
  process.exit(0);
}
