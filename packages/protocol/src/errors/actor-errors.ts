// Errors about actors: instances of a class living in a worker process of their own.
import { ShoalError } from './shoal-error.js';

/** Why an actor is dead, as {@link ActorDiedError} says it. */
export type ActorDeathReason =
  | { readonly kind: 'exited'; readonly exitCode: number | null; readonly signal: string | null }
  | { readonly kind: 'killed' }
  | { readonly kind: 'constructor'; readonly message: string }
  | { readonly kind: 'out-of-scope' }
  | { readonly kind: 'not-here' }
  | { readonly kind: 'creator-exited' }
  | { readonly kind: 'node-closed' }
  | { readonly kind: 'name-taken'; readonly name: string }
  | { readonly kind: 'infeasible'; readonly detail: string }
  | { readonly kind: 'spawn-failed'; readonly message: string }
  | { readonly kind: 'node-died'; readonly nodeId: string };

function describe(reason: ActorDeathReason): string {
  switch (reason.kind) {
    case 'exited':
      return `its process died (${reason.signal ? `signal ${reason.signal}` : `exit code ${reason.exitCode}`})`;
    case 'killed':
      return 'it was killed with kill()';
    case 'constructor':
      return `its constructor threw: ${reason.message}`;
    case 'out-of-scope':
      return 'no handle to it remained';
    case 'not-here':
      return 'no node of the cluster knows it (the handle is not of an actor of this cluster, or its node is not part of one)';
    case 'creator-exited':
      return "the process that created it exited (pass `lifetime: 'detached'` to keep an actor past its creator)";
    case 'node-closed':
      return 'its node shut down';
    case 'name-taken':
      return `the name ${JSON.stringify(reason.name)} is taken by another live actor (getActor(name) finds that one)`;
    case 'infeasible':
      return `no node can place it: ${reason.detail}`;
    case 'spawn-failed':
      return `its process could not be started: ${reason.message}`;
    case 'node-died':
      return `the node it ran on (${reason.nodeId}) left the cluster, and no restart was left or no other node fits it`;
  }
}

/**
 * A call on an actor failed because the actor is dead, or died while the call ran: `reason`
 * says why (its process exited and the restarts ran out, it was killed, its constructor threw,
 * its creator exited...). `restarts`: times it was restarted before.
 *
 * @example
 * ```ts
 * try { await counter.increment(); } catch (error) {
 *   if (error instanceof ActorDiedError) console.log(error.reason.kind); // 'exited'
 * }
 * ```
 */
export class ActorDiedError extends ShoalError {
  static readonly code = 'ERR_ACTOR_DIED';
  readonly actorName: string;
  readonly reason: ActorDeathReason;
  readonly restarts: number;
  /** Whether the actor is dead for good (false: this call was lost, and the actor restarts). */
  readonly final: boolean;

  constructor(actorName: string, reason: ActorDeathReason, restarts: number, final = true) {
    const after = restarts > 0 ? ` after ${restarts} restart${restarts === 1 ? '' : 's'}` : '';
    super(
      ActorDiedError.code,
      final
        ? `Actor ${actorName} is dead${after}: ${describe(reason)}. ` +
            (reason.kind === 'exited' ? 'Raise `maxRestarts` to restart it when its process dies; ' : '') +
            'Create a new one to go on.'
        : `A call on actor ${actorName} was lost: ${describe(reason)}. The actor is restarting (state reset); ` +
            'raise `maxTaskRetries` to run such calls again on the restarted actor.',
    );
    this.actorName = actorName;
    this.reason = reason;
    this.restarts = restarts;
    this.final = final;
  }
}

/** `getActor(name)` found no live actor of that name. */
export class ActorNotFoundError extends ShoalError {
  static readonly code = 'ERR_ACTOR_NOT_FOUND';
  readonly actorName: string;
  constructor(name: string) {
    super(
      ActorNotFoundError.code,
      `No live actor is named ${JSON.stringify(name)} on this node. Create it with actor(Class, { name }), ` +
        'check the spelling, or wait until its creator has made it.',
    );
    this.actorName = name;
  }
}
