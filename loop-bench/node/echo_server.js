// An echo server on Node.js (net module), as uvloop's benchmark runs node.
// Usage: node echo_server.js 127.0.0.1:PORT
'use strict';
const net = require('net');

const addr = process.argv[2] || '127.0.0.1:8888';
const i = addr.lastIndexOf(':');
const host = addr.slice(0, i);
const port = Number(addr.slice(i + 1));

const server = net.createServer({ noDelay: true }, (socket) => {
  socket.setNoDelay(true);
  socket.on('data', (data) => socket.write(data));
  socket.on('error', () => {});
});
server.listen({ host, port, backlog: 4096 }, () => {
  console.log(`listening on ${addr} (node ${process.version})`);
});
