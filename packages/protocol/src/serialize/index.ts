// Values <-> a msgpackr header plus 64-byte-aligned out-of-band buffers: tags.ts (the header's
// vocabulary), encoder.ts, decoder.ts, value-path.ts (paths in encoding errors).
export { decodeValue, type DecodeOptions } from './decoder.js';
export { encodeValue, encodeViewShell, writeFrontBytes, writeInline, type EncodedValue } from './encoder.js';
export { MAX_DEPTH, TYPED_ARRAY_CONSTRUCTORS, type TypedArrayConstructor } from './tags.js';
