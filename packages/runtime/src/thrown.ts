// Errors across the wire now live in @shoal/protocol (wire-errors.ts); this file keeps the old
// import path working until its importers switch.
export { decodeThrown, encodeError, fromWireFailure, toWireFailure } from '@shoal/protocol';
