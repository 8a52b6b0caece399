// A movable `Date` for the user's bundle (esbuild `inject`s it in place of the global `Date`), so that
// scenarios can put the Worker at a UTC day or month boundary. It adds an offset to the real clock and
// nothing else: time still advances only as workerd lets it, and timers, KV expiry and Durable Object
// alarms keep the real clock. The offset is shared by the Worker and its Durable Objects (one module).
const RealDate = globalThis.Date;
let offsetMs = 0;

export function __aigwSetClockOffset(ms) {
  offsetMs = Number(ms) || 0;
}

function shiftedNow() {
  return RealDate.now() + offsetMs;
}

const AigwDate = new Proxy(RealDate, {
  construct(target, args, newTarget) {
    return Reflect.construct(target, args.length === 0 ? [shiftedNow()] : args, newTarget === AigwDate ? target : newTarget);
  },
  apply() {
    // `Date()` called as a function returns the current time as a string.
    return new RealDate(shiftedNow()).toString();
  },
  get(target, property, receiver) {
    if (property === "now") return shiftedNow;
    return Reflect.get(target, property, receiver === AigwDate ? target : receiver);
  },
});

export { AigwDate as Date };
