'use strict';
// launchBus()'s EventEmitter (pm2's bus) over the addon's event stream:
// the daemon's events as pm2 shapes them, and wildcard listeners (`log:*`,
// `*`) that get the event name first.
const { EventEmitter } = require('node:events');

/** Bus pattern (`log:*`, `*`) → RegExp. */
function patternRegExp(pattern) {
  const escaped = pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*');
  return new RegExp(`^${escaped}$`);
}

/**
 * Subscribe on `conn` (an addon `Connection`); resolves to the bus once the
 * daemon has said ready. The bus is in `buses` while open; `makeError(code,
 * message)` builds the API's errors.
 */
function openBus(conn, buses, makeError) {
  const bus = new EventEmitter();
  const patterns = new Map();
  const emit = (type, packet) => {
    bus.emit(type, packet);
    for (const name of bus.eventNames()) {
      if (typeof name !== 'string' || !name.includes('*')) continue;
      let re = patterns.get(name);
      if (!re) patterns.set(name, (re = patternRegExp(name)));
      if (re.test(type)) bus.emit(name, type, packet);
    }
  };
  let id = null;
  let closed = false;
  return new Promise((resolve, reject) => {
    let ready = false;
    const onPacket = (text) => {
      const ev = JSON.parse(text);
      if (ev.rpm2 === 'ready') {
        ready = true;
        resolve(bus);
        return;
      }
      if (ev.rpm2 === 'error') {
        const err = makeError(ev.code, ev.message);
        if (!ready) reject(err);
        else if (bus.listenerCount('error')) bus.emit('error', err);
        return;
      }
      if (ev.rpm2 === 'closed') {
        buses.delete(bus);
        if (!closed) {
          closed = true;
          bus.emit('close');
        }
        return;
      }
      if (closed) return;
      const proc = { ...ev.process, rev: null };
      switch (ev.type) {
        case 'log:out':
        case 'log:err':
          emit(ev.type, { process: proc, at: ev.at, data: ev.data });
          break;
        case 'process:event':
          emit('process:event', { event: ev.event, manually: ev.manually, process: proc, at: ev.at });
          break;
        case 'process:msg':
          if (ev.msg_type) emit(ev.msg_type, { process: proc, at: ev.at, data: ev.data });
          else emit('process:msg', { process: proc, at: ev.at, raw: ev.raw });
          break;
        default:
          emit(ev.type, ev);
      }
    };
    id = conn.subscribe(onPacket);
    bus.close = () => {
      if (closed) return;
      closed = true;
      conn.closeBus(id);
      buses.delete(bus);
      bus.emit('close');
    };
    buses.add(bus);
  });
}

module.exports = { openBus };
