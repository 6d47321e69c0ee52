#!/usr/bin/env node
'use strict';
// What Node's http server does to keep-alive connections when it is drained.
// The cluster `disconnect` makes a worker call `server.close()`, with or
// without a process manager. The two cases below are why a keep-alive client
// that never retries sees failures in any graceful reload.
//  1. A connection with no request being parsed counts as idle, even when the
//     client's next request already sits unread in the socket. close()
//     destroys it: the request gets no answer (ECONNRESET or a bare close).
//  2. A connection whose request is being answered gets no `Connection:
//     close`: it goes on being answered with keep-alive.
// Run: node bench/keepalive-close-race.js
const http = require('node:http');
const net = require('node:net');

const REQ = 'GET / HTTP/1.1\r\nHost: x\r\n\r\n';

/** Case 1: close() while the next request is in the socket, unread. */
function idleWithUnreadRequest() {
  return new Promise((resolve) => {
    const server = http.createServer((req, res) => res.end('hi'));
    server.listen(0, '127.0.0.1', () => {
      const s = net.connect(server.address().port, '127.0.0.1', () => s.write(REQ));
      let answers = 0;
      s.on('data', (d) => {
        answers += d.toString().split('HTTP/1.1 ').length - 1;
        if (answers !== 1) return;
        // The server is busy for 50 ms; the client's next request arrives
        // meanwhile; then the drain starts in the same tick.
        setImmediate(() => {
          const until = Date.now() + 50;
          setTimeout(() => s.write(REQ), 10);
          while (Date.now() < until); // eslint-disable-line no-empty
          server.close();
        });
      });
      s.on('error', (e) => resolve(`the request got ${e.code}`));
      s.on('close', () => resolve(answers > 1 ? 'the request was answered' : 'the connection was closed under the request, no answer'));
    });
  });
}

/** Case 2: requests keep coming on a connection that was busy at close(). */
function busyConnection() {
  return new Promise((resolve) => {
    const server = http.createServer((req, res) => setTimeout(() => res.end('hi'), 5));
    let closed = false;
    server.listen(0, '127.0.0.1', () => {
      const s = net.connect(server.address().port, '127.0.0.1', () => {
        s.write(REQ);
        setTimeout(() => server.close(() => (closed = true)), 2);
      });
      let buf = '';
      let answers = 0;
      const conn = new Set();
      s.on('data', (d) => {
        buf += d.toString();
        let i;
        while ((i = buf.indexOf('\r\n\r\nhi')) >= 0) {
          conn.add(/^connection: (.*)$/im.exec(buf.slice(0, i))[1]);
          buf = buf.slice(i + 6);
          if (++answers < 20) s.write(REQ);
          else {
            s.destroy();
            resolve(`${answers} answers after close(), Connection: ${[...conn].join(', ')}, close callback fired: ${closed}`);
          }
        }
      });
    });
  });
}

(async () => {
  console.log(`node ${process.version}`);
  console.log(`1. idle at close() with the next request unread: ${await idleWithUnreadRequest()}`);
  console.log(`2. busy at close(): ${await busyConnection()}`);
  process.exit(0);
})();
