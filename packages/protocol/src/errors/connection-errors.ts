// Errors about connections: attaching, joining a cluster, the head, and what arrives on the wire.
import { ShoalError, type ShoalErrorOptions } from './shoal-error.js';

/** A frame could not be read: too large or undecodable. The connection must be closed. */
export class FrameError extends ShoalError {
  static readonly code = 'ERR_BAD_FRAME';
  constructor(detail: string, options?: ShoalErrorOptions) {
    super(FrameError.code, `Received a bad frame: ${detail}. Closing the connection.`, options);
  }
}

/**
 * A message decoded but is not one the protocol allows: an unknown `type`, or a field of the
 * wrong type or out of range (`detail` names it). The peer is not a Shoal peer of this version,
 * or is broken: close the connection.
 */
export class BadMessageError extends ShoalError {
  static readonly code = 'ERR_BAD_MESSAGE';
  constructor(detail: string, options?: ShoalErrorOptions) {
    super(
      BadMessageError.code,
      `${detail}. The peer runs another version of Shoal, or is not a Shoal process: its connection is closed ` +
        '(run the same Shoal version on every machine and process of a cluster).',
      options,
    );
  }
}

/** `init({ address })` named a cluster none of whose nodes runs on this machine. */
export class NoLocalNodeError extends ShoalError {
  static readonly code = 'ERR_NO_LOCAL_NODE';
  constructor(address: string, shoalHome: string) {
    super(NoLocalNodeError.code, `No node of the cluster at ${address} runs on this machine (SHOAL_HOME=${shoalHome}).`);
  }
}

/** What an attach or join failed on: a local node's socket, or the head (refused by HTTP status, or unreachable). */
export type AttachFailure =
  | { readonly to: 'node'; readonly address: string; readonly errnoCode?: string | undefined; readonly reason: string }
  | { readonly to: 'head'; readonly headUrl: string; readonly statusCode: number }
  | { readonly to: 'head'; readonly headUrl: string; readonly reason: string };

function attachMessage(failure: AttachFailure): string {
  if (failure.to === 'node') {
    const { address, errnoCode } = failure;
    return (
      `Cannot attach to the Shoal node at ${address} (${errnoCode ?? failure.reason}). ` +
      (errnoCode === 'ENOENT' || errnoCode === 'ECONNREFUSED'
        ? 'No node runs there: is it running (`shoal status`)? Its process prints the address as `session.address` after init(); ' +
          'a SHOAL_ADDRESS left from a node that stopped names one that is gone (unset it to start a node here).'
        : errnoCode === 'EACCES'
          ? 'The node belongs to another user: attach as the user that started it.'
          : '')
    );
  }
  return 'statusCode' in failure
    ? `The head at ${failure.headUrl} cannot serve programs from other machines (HTTP ${failure.statusCode}).`
    : `Cannot join the cluster at ${failure.headUrl} (${failure.reason}). Is the head running?`;
}

/** A program could not attach to a node of this machine, or join a cluster through its head. */
export class AttachFailedError extends ShoalError {
  static readonly code = 'ERR_ATTACH_FAILED';
  constructor(failure: AttachFailure, options?: ShoalErrorOptions) {
    super(AttachFailedError.code, attachMessage(failure), options);
  }
}

/** Joining a head from a machine without a node needs the cluster token, and none was given. */
export class NoTokenError extends ShoalError {
  static readonly code = 'ERR_NO_TOKEN';
  constructor(headUrl: string) {
    super(
      NoTokenError.code,
      `Joining ${headUrl} from a machine without a node needs the cluster token: init({ address, token }) or SHOAL_TOKEN ` +
        '(on the head\'s machine it is in $SHOAL_HOME/token).',
    );
  }
}

/** The head refused the token. `hint` says how the caller passes a token (e.g. `'--token or SHOAL_TOKEN'`). */
export class BadTokenError extends ShoalError {
  static readonly code = 'ERR_BAD_TOKEN';
  constructor(url: string, hint?: string) {
    super(
      BadTokenError.code,
      `The head at ${url} refused the token. Use the cluster's token (${hint === undefined ? '' : `${hint}; `}on the head's ` +
        'machine it is in $SHOAL_HOME/token).',
    );
  }
}

/**
 * The node this program was connected to (attached, or joined through) closed the connection
 * without this program asking: it died or was stopped, and what was awaited from it is lost.
 */
export class NodeDisconnectedError extends ShoalError {
  static readonly code = 'ERR_NODE_DISCONNECTED';
  constructor(node: string) {
    super(
      NodeDisconnectedError.code,
      `The Shoal node ${node} closed its connection to this program: it died or was stopped, and what this program awaited from it is lost. ` +
        "Check the node's daemon log ($SHOAL_HOME/daemon.log) and `shoal status`; once it runs again (`shoal start`), call init() again.",
    );
  }
}

/** The head could not be reached; `reason` is the errno code or the socket's message. */
export class HeadUnreachableError extends ShoalError {
  static readonly code = 'ERR_HEAD_UNREACHABLE';
  constructor(url: string, reason: string, options?: ShoalErrorOptions) {
    super(HeadUnreachableError.code, `Cannot reach the head at ${url} (${reason}). Is it running? \`shoal start --head\` prints its address.`, options);
  }
}

/** The head closed the connection with this WebSocket close code and reason. */
export class HeadClosedError extends ShoalError {
  static readonly code = 'ERR_HEAD_CLOSED';
  constructor(url: string, closeCode: number, reason: string) {
    super(HeadClosedError.code, `The head at ${url} closed the connection (${closeCode}${reason ? `: ${reason}` : ''}).`);
  }
}

/** The head answered with something that is not the protocol: `what` says what it did. */
export class HeadProtocolError extends ShoalError {
  static readonly code = 'ERR_HEAD_PROTOCOL';
  /** `what` completes "The head at URL …" (e.g. `did not welcome this connection`). */
  constructor(url: string, what: string, options?: ShoalErrorOptions) {
    super(HeadProtocolError.code, `The head at ${url} ${what}. Check that it is a Shoal head of the same version as this program, and that it is not stalled.`, options);
  }
}

/** The head could not listen on its address; `why` explains (port in use, address not local...). */
export class HeadListenError extends ShoalError {
  static readonly code = 'ERR_HEAD_LISTEN';
  constructor(host: string, port: number, why: string, options?: ShoalErrorOptions) {
    super(HeadListenError.code, `The head cannot listen on ${host}:${port}: ${why}.`, options);
  }
}

/** An error that was not a ShoalError (a plain `Error`), as it arrives from another node: only its message is known. */
export class UnknownError extends ShoalError {
  static readonly code = 'ERR_UNKNOWN';
  constructor(message: string) {
    super(UnknownError.code, message);
  }
}
