'use strict';
// Writes fixed-size 100-byte lines to stdout, one write() per line (as
// console.log does). RATE=0 (default) writes as fast as the pipe drains;
// RATE=N keeps N lines/s by catching up with the clock every few ms.
const rate = Number(process.env.RATE || 0);
const PAD = 'x'.repeat(86);
let i = 0;
const line = () => `${String(i++).padStart(12, '0')} ${PAD}\n`; // 12+1+86+1 = 100 bytes

function flat() {
  // Yield every 1000 lines so signals and the IPC channel are still served.
  for (let k = 0; k < 1000; k++) process.stdout.write(line());
  setImmediate(flat);
}

const t0 = Date.now();
function paced() {
  const due = Math.floor(((Date.now() - t0) / 1000) * rate);
  while (i < due) process.stdout.write(line());
  setTimeout(paced, 2);
}

if (rate > 0) paced();
else flat();
