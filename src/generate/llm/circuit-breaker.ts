/**
 * A circuit breaker in front of an LLM service: after N consecutive failed calls (each already retried) it
 * opens and rejects at once for a cooldown, so a dead or overloaded endpoint costs callers nothing; then one
 * probe call is let through (half-open) and its outcome closes or re-opens the circuit.
 */
import { QuarryError } from '../../errors.js';

export type CircuitState = 'closed' | 'open' | 'half-open';

/** How a call that passed the breaker ended. `neutral` (caller abort, client-side 4xx) proves nothing either way. */
export type CallOutcome = 'success' | 'failure' | 'neutral';

export interface CircuitBreakerOptions {
  /** Shown in the LLM_UNAVAILABLE message, e.g. the provider id. */
  name: string;
  /** Consecutive failed calls that open the circuit. */
  failureThreshold: number;
  /** How long the circuit stays open before a probe is allowed. */
  cooldownMs: number;
  /** Clock (tests inject one). */
  now?: () => number;
  /** Called on every state transition (metrics, logs). */
  onStateChange?: (from: CircuitState, to: CircuitState) => void;
}

export interface CircuitSnapshot {
  state: CircuitState;
  consecutiveFailures: number;
  /** While open: ms until a probe is allowed. */
  retryInMs?: number;
  /** While half-open: whether the single probe is running. */
  probeInFlight: boolean;
  /** Calls rejected without reaching the service since the breaker was created. */
  rejected: number;
}

export class CircuitBreaker {
  private failures = 0;
  private openedAt: number | undefined;
  private probing = false;
  private rejectedCalls = 0;
  private current: CircuitState = 'closed';
  private readonly now: () => number;

  constructor(private readonly opts: CircuitBreakerOptions) {
    if (!Number.isInteger(opts.failureThreshold) || opts.failureThreshold < 1) {
      throw new QuarryError('INVALID_CONFIG', 'circuitBreaker.failureThreshold must be a positive integer', {
        failureThreshold: opts.failureThreshold,
      });
    }
    if (!(Number.isFinite(opts.cooldownMs) && opts.cooldownMs >= 0)) {
      throw new QuarryError('INVALID_CONFIG', 'circuitBreaker.cooldownMs must be a non-negative number', {
        cooldownMs: opts.cooldownMs,
      });
    }
    this.now = opts.now ?? Date.now;
  }

  /** The state as of now: an open circuit whose cooldown has passed reports half-open. */
  get state(): CircuitState {
    if (this.current === 'open' && this.now() - (this.openedAt ?? 0) >= this.opts.cooldownMs) {
      this.transition('half-open');
    }
    return this.current;
  }

  snapshot(): CircuitSnapshot {
    const state = this.state;
    return {
      state,
      consecutiveFailures: this.failures,
      ...(state === 'open'
        ? { retryInMs: Math.max(0, this.opts.cooldownMs - (this.now() - (this.openedAt ?? 0))) }
        : {}),
      probeInFlight: this.probing,
      rejected: this.rejectedCalls,
    };
  }

  /**
   * Admits one call or throws LLM_UNAVAILABLE. The returned function must be called exactly once with the
   * call's outcome (extra calls are ignored).
   */
  acquire(): (outcome: CallOutcome) => void {
    const state = this.state;
    if (state === 'open' || (state === 'half-open' && this.probing)) {
      this.rejectedCalls++;
      const retryInMs =
        state === 'open'
          ? Math.max(0, this.opts.cooldownMs - (this.now() - (this.openedAt ?? 0)))
          : undefined;
      throw new QuarryError(
        'LLM_UNAVAILABLE',
        `${this.opts.name}: circuit ${state} after ${this.failures} consecutive failed call(s)` +
          (retryInMs !== undefined
            ? `; next attempt allowed in ${retryInMs} ms`
            : '; a probe call is running'),
        { provider: this.opts.name, circuit: state, consecutiveFailures: this.failures, retryInMs },
      );
    }
    const probe = state === 'half-open';
    if (probe) this.probing = true;
    let settled = false;
    return (outcome) => {
      if (settled) return;
      settled = true;
      if (probe) this.probing = false;
      this.record(outcome, probe);
    };
  }

  private record(outcome: CallOutcome, probe: boolean): void {
    if (outcome === 'success') {
      this.failures = 0;
      if (this.current !== 'closed') this.transition('closed');
    } else if (outcome === 'failure') {
      this.failures++;
      if (probe || (this.current === 'closed' && this.failures >= this.opts.failureThreshold)) {
        this.openedAt = this.now();
        this.transition('open');
      }
    }
    // neutral: a half-open circuit stays half-open and admits the next probe.
  }

  private transition(to: CircuitState): void {
    const from = this.current;
    if (from === to) return;
    this.current = to;
    this.opts.onStateChange?.(from, to);
  }
}
