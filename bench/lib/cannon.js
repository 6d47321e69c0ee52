'use strict';
// Child process that runs autocannon (so the load generator does not share
// an event loop with the orchestrator and can be pinned with taskset).
// argv[2] is autocannon's options as JSON; prints one JSON summary line.
// SIGTERM stops the run early (reload section) and still prints the summary.
const autocannon = require('autocannon');

const opts = JSON.parse(process.argv[2]);
const inst = autocannon(opts, (err, r) => {
  if (err) {
    process.stdout.write(JSON.stringify({ error: String(err) }) + '\n');
    process.exit(1);
  }
  const seconds = r.duration; // actual elapsed seconds (shorter if stopped)
  process.stdout.write(JSON.stringify({
    seconds,
    total: r.requests.total,
    rps: r.requests.total / seconds,
    p50: r.latency.p50, p99: r.latency.p99, max: r.latency.max,
    ok2xx: r['2xx'], non2xx: r.non2xx, errors: r.errors, timeouts: r.timeouts,
    resets: r.resets, mismatches: r.mismatches,
    // Every request the client saw fail, the figure the report uses.
    failed: (r.non2xx || 0) + (r.errors || 0) + (r.timeouts || 0) + (r.resets || 0),
  }) + '\n');
  process.exit(0);
});
process.on('SIGTERM', () => inst.stop());
