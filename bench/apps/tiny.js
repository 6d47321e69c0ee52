'use strict';
// The smallest long-lived app: a timer and nothing else. Used 20 times over
// to see what the daemon costs per supervised app.
setInterval(() => {}, 1 << 30);
