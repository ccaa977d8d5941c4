import type { FromHead, NodeReport, NodeStatus, PeerView } from '@shoal/protocol';
import type { Logger } from '../../log.js';
import type { Resources } from '../../scheduling/resources.js';
import { roomOf, type DroppedSnapshot, type MemberSnapshot } from './placement-policy.js';

/** How long the head remembers a node it dropped for missed heartbeats (to explain failures). */
const DROPPED_MEMORY_MS = 10 * 60_000;
/** At most this many such nodes are remembered. */
const DROPPED_MEMORY_COUNT = 256;

/** What the membership needs of a node's connection to the head. */
export interface MemberLink {
  /** Sends a message if the connection is still open; false if it is not. */
  send(message: FromHead): boolean;
  /** Drops the connection at once (the node went silent). */
  terminate(): void;
}

/** Options of a {@link Membership}. */
export interface MembershipOptions {
  /** A member not heard from for this long is removed by {@link Membership.sweep}. */
  readonly heartbeatTimeoutMs: number;
  readonly logger: Logger;
  /** Called once a member is out of the membership: its connection closed, or it went silent (`silent`). */
  readonly departed: (nodeId: string, silent: boolean) => void;
  /** The clock heartbeats are timed by (tests pass their own). @default Date.now */
  readonly now?: () => number;
}

interface Member {
  readonly report: NodeReport;
  readonly lastSeen: number;
  readonly link: MemberLink;
  /** Runs sent to the node that its last report did not account for yet (by `run` seq). */
  readonly sinceReport: { readonly seq: number; readonly demand: Readonly<Resources> }[];
  /** The seq of the last `run` sent to it. */
  runs: number;
}

/**
 * The nodes of the cluster as the head knows them: each one's last report, when it was heard
 * from, and the runs sent to it since (which take room its report does not show yet). Nodes join
 * and stay by reporting (register, then heartbeats); one that disconnects or stays silent for
 * `heartbeatTimeoutMs` is removed and `departed` is told.
 *
 * @example
 * ```ts
 * const membership = new Membership({ heartbeatTimeoutMs: 5000, logger, departed: (id) => forwarder.departed(id) });
 * membership.report(message.node, connection);
 * setInterval(() => membership.sweep(), 1000);
 * ```
 */
export class Membership {
  readonly #members = new Map<string, Member>();
  /** Nodes dropped for missed heartbeats, until they rejoin or are forgotten: by node id. */
  readonly #dropped = new Map<string, DroppedSnapshot & { readonly at: number }>();
  readonly #options: MembershipOptions;
  readonly #now: () => number;

  constructor(options: MembershipOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  /** A register or heartbeat of the node behind `link`: its report replaces the last one. */
  report(report: NodeReport, link: MemberLink): void {
    const previous = this.#members.get(report.nodeId);
    this.#dropped.delete(report.nodeId);
    this.#members.set(report.nodeId, {
      report,
      lastSeen: this.#now(),
      link,
      // Runs the node had not received when it reported still count against its room.
      sinceReport: (previous?.sinceReport ?? []).filter((sent) => sent.seq > report.runsSeen),
      runs: previous?.runs ?? 0,
    });
  }

  /** The node's connection `link` closed; it leaves unless it already reconnected on another. */
  leave(nodeId: string, link: MemberLink, why: string): void {
    const member = this.#members.get(nodeId);
    if (!member || member.link !== link) return;
    this.#members.delete(nodeId);
    this.#options.logger.info({ nodeId, reason: why }, `node ${nodeId} left: ${why}`);
    this.#options.departed(nodeId, false);
  }

  /** Removes (and disconnects) every member not heard from within `heartbeatTimeoutMs`. */
  sweep(): void {
    const { heartbeatTimeoutMs, logger } = this.#options;
    const deadline = this.#now() - heartbeatTimeoutMs;
    for (const [nodeId, member] of this.#members) {
      if (member.lastSeen >= deadline) continue;
      this.#members.delete(nodeId);
      member.link.terminate();
      this.#rememberDropped(member);
      logger.warn({ nodeId, reason: 'no heartbeat', heartbeatTimeoutMs }, `node ${nodeId} removed: no heartbeat for ${heartbeatTimeoutMs} ms`);
      this.#options.departed(nodeId, true);
    }
  }

  /**
   * The nodes dropped for missed heartbeats in the last {@link DROPPED_MEMORY_MS} that have not
   * rejoined: a task only they could run failed because they went silent, not because it never can.
   */
  dropped(): DroppedSnapshot[] {
    // Asked at every placement, and almost always empty.
    if (this.#dropped.size === 0) return [];
    const since = this.#now() - DROPPED_MEMORY_MS;
    for (const [nodeId, dropped] of this.#dropped) if (dropped.at < since) this.#dropped.delete(nodeId);
    return [...this.#dropped.values()].map(({ at: _at, ...dropped }) => dropped);
  }

  #rememberDropped(member: Member): void {
    const { nodeId, hostname, resources } = member.report;
    this.#dropped.set(nodeId, { nodeId, hostname, resources, heartbeatTimeoutMs: this.#options.heartbeatTimeoutMs, at: this.#now() });
    // The oldest go first (a Map keeps insertion order).
    for (const oldest of this.#dropped.keys()) {
      if (this.#dropped.size <= DROPPED_MEMORY_COUNT) break;
      this.#dropped.delete(oldest);
    }
  }

  /** Whether `nodeId` is a member now. */
  has(nodeId: string): boolean {
    return this.#members.has(nodeId);
  }

  /** The members for a status query. */
  nodes(): NodeStatus[] {
    const now = this.#now();
    return [...this.#members.values()].map((member) => ({ ...member.report, lastSeenMs: now - member.lastSeen }));
  }

  /** The other members as `nodeId` should see them (sent after each of its heartbeats). */
  viewFor(nodeId: string): PeerView[] {
    const view: PeerView[] = [];
    for (const [id, member] of this.#members) {
      if (id === nodeId) continue;
      view.push({ nodeId: id, dataUrl: member.report.dataUrl, total: member.report.resources, available: roomOf({ available: member.report.available, sentSinceReport: member.sinceReport }) });
    }
    return view;
  }

  /** The members as placement decides over them, in the order they joined. */
  snapshot(): MemberSnapshot[] {
    return [...this.#members.values()].map((member) => this.#snapshotOf(member));
  }

  /** The data server URLs of those of `nodeIds` that are members. */
  dataUrls(nodeIds: Iterable<string>): string[] {
    const urls: string[] = [];
    for (const nodeId of nodeIds) {
      const url = this.#members.get(nodeId)?.report.dataUrl;
      if (url) urls.push(url);
    }
    return urls;
  }

  /** The data server URL of a member. */
  dataUrl(nodeId: string): string | undefined {
    return this.#members.get(nodeId)?.report.dataUrl;
  }

  /**
   * A run of `demand` is being sent to member `nodeId`: it takes room until a report accounts
   * for it. Returns the run's `seq`, by which the node's reports say which runs they saw.
   */
  recordRun(nodeId: string, demand: Readonly<Resources>): number {
    const member = this.#members.get(nodeId);
    if (!member) throw new RangeError(`Expected \`nodeId\` to be a member, got \`${nodeId}\``);
    member.runs += 1;
    member.sinceReport.push({ seq: member.runs, demand });
    return member.runs;
  }

  /** Sends to a member; false if it is not one, or its connection is not open. */
  send(nodeId: string, message: FromHead): boolean {
    return this.#members.get(nodeId)?.link.send(message) ?? false;
  }

  #snapshotOf(member: Member): MemberSnapshot {
    const { report } = member;
    return {
      nodeId: report.nodeId,
      hostname: report.hostname,
      resources: report.resources,
      available: report.available,
      sentSinceReport: member.sinceReport,
      queuedTasks: report.queuedTasks,
    };
  }
}
