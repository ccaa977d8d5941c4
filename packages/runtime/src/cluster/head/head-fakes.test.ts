// Fakes the head's unit tests share (this file has no tests of its own).
import type { FromHead, NodeReport } from '@shoal/protocol';
import type { MemberLink } from './membership.js';

/** A node's connection to the head that records what is sent on it. */
export class FakeLink implements MemberLink {
  readonly sent: FromHead[] = [];
  open = true;
  send(message: FromHead): boolean {
    if (this.open) this.sent.push(message);
    return this.open;
  }
  terminate(): void {
    this.open = false;
  }
  /** What was sent since the last take. */
  take(): FromHead[] {
    return this.sent.splice(0);
  }
}

/** The data server URL of fake node `nodeId`. */
export const dataUrlOf = (nodeId: string): string => `ws://127.0.0.1:1/${nodeId}`;

/** A report of fake node `nodeId`: one CPU, all free, unless `fields` say otherwise. */
export function nodeReport(nodeId: string, fields: Partial<NodeReport> = {}): NodeReport {
  return {
    nodeId,
    hostname: 'test',
    pid: 1,
    address: `unix:/nowhere/${nodeId}`,
    dataUrl: dataUrlOf(nodeId),
    resources: { CPU: 1 },
    available: { CPU: 1 },
    objects: 0,
    objectBytes: 0,
    capacityBytes: 0,
    queuedTasks: 0,
    runningTasks: 0,
    workers: 1,
    pulls: 0,
    pulledBytes: 0,
    runsSeen: 0,
    spill: { spilledBytes: 0, spilledObjects: 0, diskBytes: 0, spills: 0, spillBytesTotal: 0, spillMs: 0, restores: 0, restoreBytesTotal: 0, restoreMs: 0 },
    ...fields,
  };
}
