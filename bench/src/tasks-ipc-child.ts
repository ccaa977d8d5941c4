// Child of tasks.ts reached over Node's own IPC channel (child_process.fork). argv[2] picks the role:
//   add            the fork pool contender: { id, a, b } -> { id, r: a + b }
//   echo-json      transport comparison, `serialization: 'json'`: JSON cannot carry bytes, so the
//                  64-byte payload travels as base64 and is decoded to bytes on receipt, as a real
//                  protocol would have to (a Uint8Array would silently arrive as { "0": .., "1": .. })
//   echo-advanced  transport comparison, `serialization: 'advanced'` (structured clone): echoed as
//                  decoded, its payload a real Uint8Array
// Every role first sends { ready: true } so the parent knows the child is up.
import type { Serializable } from 'node:child_process';

interface AddRequest {
  id: number;
  a: number;
  b: number;
}
interface JsonEcho {
  type: string;
  id: number;
  payload: string;
}

const role = process.argv[2];
const send = (message: Serializable): void => {
  process.send!(message);
};

if (role === 'add') {
  process.on('message', (message: AddRequest) => send({ id: message.id, r: message.a + message.b }));
} else if (role === 'echo-json') {
  process.on('message', (message: JsonEcho) => {
    const payload = Buffer.from(message.payload, 'base64');
    send({ type: message.type, id: message.id, payload: payload.toString('base64') });
  });
} else if (role === 'echo-advanced') {
  process.on('message', (message: Serializable) => send(message));
} else {
  throw new Error(`unknown role \`${String(role)}\`; expected add, echo-json or echo-advanced`);
}
// The parent going away closes the channel: exit then, so no child outlives the benchmark.
process.on('disconnect', () => process.exit(0));
send({ ready: true });
