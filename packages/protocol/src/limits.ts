/**
 * Every size limit, close code, header and wire path of Shoal's connections, in one place:
 * both ends of a boundary must agree on them, and a limit changed on one side only shows up as a
 * connection closed with 1009 on the other. Each says why it has the value it has.
 */

const MiB = 1 << 20;
const GiB = 1024 ** 3;

// --- Local sockets (node <-> workers and attached processes) --------------------------------------

/**
 * Largest frame on a node's unix socket. Objects above the inline threshold go through shared
 * memory, so frames carry only control messages and small values; a frame this large means a
 * peer gone wrong (or not a Shoal peer), and the connection is closed rather than buffered.
 */
export const DEFAULT_MAX_FRAME_BYTES = 256 * MiB;

/**
 * Most ids one message from a worker or an attached program may list (a `resolve`, `wait`, `free`
 * or `refs`). The node answers a `resolve` with a map keyed by those ids, and msgpackr encodes a
 * map of at most 65,535 keys: a longer list once made the answer fail to encode in a callback,
 * which took the node's process down. Senders split longer lists (RefTracker does).
 */
export const MAX_IDS_PER_MESSAGE = 65_535;

/**
 * Characters of a task's output one `output` message carries (a worker splits longer writes):
 * far below every frame limit, the head's 16 MiB included, even as UTF-8.
 */
export const MAX_OUTPUT_CHARS = 256 * 1024;

/**
 * How deep a message may nest arrays and maps (message-check.ts). The deepest real message (a
 * spilled task's arguments inside `run`) nests 5; a deeper one is not a Shoal peer's, and each
 * level is a byte of input that the decoder and the schema check recurse on.
 */
export const MESSAGE_MAX_DEPTH = 32;

// --- Remote drivers (a program on a machine without a node, through the head) ---------------------

/**
 * Largest object a program on a machine without a node sends or receives. It has no shared
 * memory with the node, so each object travels whole in one message: the limit keeps one message
 * from holding both ends' memory for too long. Its errors (ObjectTooLargeError) name 1 GiB.
 */
export const REMOTE_OBJECT_LIMIT_BYTES = GiB;

/** Room in a remote driver's message for the envelope around an object of the full limit. */
export const REMOTE_ENVELOPE_BYTES = MiB;

/**
 * Largest message (WebSocket payload, and frame on the node's side of the bridge) of a remote
 * driver's connection: one object of the full limit plus its envelope.
 */
export const REMOTE_MAX_FRAME_BYTES = REMOTE_OBJECT_LIMIT_BYTES + REMOTE_ENVELOPE_BYTES;

/** The head's path remote drivers connect to (nodes and CLI commands use `/`). */
export const DRIVER_PATH = '/driver';

/**
 * The HTTP header a remote driver sends the cluster token in: checked at the upgrade, so a wrong
 * token is refused with 401 before a WebSocket exists.
 */
export const TOKEN_HEADER = 'x-shoal-token';

// --- The head's control connections (nodes, CLI commands) ------------------------------------------

/**
 * Default largest message on a control connection to the head. Tasks that spill carry their
 * small arguments inline and heartbeats carry a node's report, so 16 MiB is far above any real
 * message while bounding what an unauthenticated peer can make the head buffer.
 */
export const HEAD_MAX_PAYLOAD_BYTES = 16 * MiB;

/**
 * How long a new connection (to the head, or to a data server) has to say `hello` with the token
 * before it is closed: long enough for a loaded machine, short enough that idle sockets do not pile up.
 */
export const HELLO_TIMEOUT_MS = 5000;


/** How long a WebSocket's opening handshake may take before the connect fails (head links, pulls). */
export const HANDSHAKE_TIMEOUT_MS = 5000;

/** A server that is closing says so (RFC 6455 "going away"); its peers reconnect elsewhere or later. */
export const CLOSE_GOING_AWAY = 1001;
/** A server hit a bug handling a message (RFC 6455 "internal error"): only that connection ends. */
export const CLOSE_INTERNAL_ERROR = 1011;
/** Close code (application range 4000-4999): a message did not decode, or is not one the protocol allows. */
export const CLOSE_PROTOCOL_ERROR = 4002;
/** Close code: no hello within {@link HELLO_TIMEOUT_MS}. */
export const CLOSE_TIMEOUT = 4003;
/** Close code: an authenticated connection carried nothing for its listener's idle timeout; reconnect when needed. */
export const CLOSE_IDLE = 4004;

// --- Budgets of every listener (head, data server, attach socket) ---------------------------------

/**
 * Default most connections one listener holds at once, authenticated or not. Each is a file
 * descriptor of the daemon, so the budget keeps a flood of connections that never authenticate
 * from taking the descriptors its tasks and segments need (a daemon raises its soft limit to the
 * hard one, typically far above this; under `ulimit -n 1024` two listeners' budgets stay below it
 * only because one source gets {@link MAX_CONNECTIONS_PER_SOURCE}).
 */
export const MAX_CONNECTIONS = 1024;

/**
 * Default most connections one source address holds on one TCP listener (the head, a data
 * server). A node makes one to the head and one to each other node's data server, a CLI command
 * one to the head: even a cluster whose nodes all run on one machine (one address) stays far
 * below this, while one host cannot take a listener's whole budget.
 */
export const MAX_CONNECTIONS_PER_SOURCE = 64;

/**
 * Default time an authenticated data connection may carry no message and no transfer before its
 * data server closes it ({@link CLOSE_IDLE}): pullers connect again on their next pull, so an idle
 * connection only holds a descriptor on both ends. (Control connections to the head carry a
 * heartbeat every second and the attach socket's clients are long-lived drivers: neither is
 * closed for idleness; both have the handshake deadline.)
 */
export const DATA_IDLE_TIMEOUT_MS = 5 * 60_000;

// --- Node <-> node object transfer (data-protocol.ts) ---------------------------------------------

/** Objects a node pulls at once from all holders; further pulls queue. Each streams on a bulk connection of its own. */
export const CONCURRENT_PULLS = 4;

/**
 * The `Upgrade` protocol of a data server's bulk connections: an HTTP upgrade carrying the
 * cluster token (TOKEN_HEADER) and the data connection it serves ({@link BULK_CONNECTION_HEADER}),
 * after which the holder writes the raw bytes of segment objects, one object after another, and
 * the puller reads them straight into their segments (data-protocol.ts).
 */
export const BULK_UPGRADE = 'shoal-bulk';

/** Header of a bulk upgrade: the `connection` number the data connection's welcome gave. */
export const BULK_CONNECTION_HEADER = 'x-shoal-connection';

/** Header of a bulk upgrade's 101 answer: the stream number a `pull` names to have its bytes sent there. */
export const BULK_STREAM_HEADER = 'x-shoal-stream';

/**
 * Segment objects at least this large are relayed: a holder already sending one to a puller that
 * serves it on (its `hello` gave its own data URL) sends later pullers of it to that puller, which
 * passes the bytes on as they arrive (data-protocol.ts, `relay`). Smaller ones are sent by the
 * holder itself: a relay's extra hop would cost more than the holder's second copy.
 */
export const RELAY_MIN_BYTES = 8 * MiB;

/** Bulk connections a data server keeps per data connection: more are refused (429). */
export const MAX_BULK_STREAMS_PER_CONNECTION = 2 * CONCURRENT_PULLS;

/**
 * Largest message a data server accepts from a puller: only hello, pull and release, all tiny
 * (a release of many ids is the largest), so anything above this is not a Shoal puller.
 */
export const DATA_SERVER_MAX_PAYLOAD_BYTES = MiB;

/**
 * Largest message a puller accepts from a holder: an inline object's bytes in its `object`
 * answer, which stay far below this; the margin is for a holder with a larger inline threshold.
 */
export const PULLER_MAX_PAYLOAD_BYTES = 64 * MiB;
