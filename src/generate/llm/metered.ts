/**
 * A provider that reports every completed call to a usage meter: the same LLM, wrapped per request and per
 * component (rewrite, rerank, generate, critique), so retries and extra passes are counted where they
 * happen instead of being summed by hand at each call site.
 */
import type { UsageMeter } from '../../observability/usage.js';
import type { UsageComponent } from '../../types.js';
import type { Completion, GenerateRequest, LlmEvent, LlmProvider, TokenUsage } from './types.js';

function record(meter: UsageMeter, component: UsageComponent, model: string, u: TokenUsage): void {
  meter.add({
    component,
    model,
    inputTokens: u.inputTokens,
    outputTokens: u.outputTokens,
    costUsd: u.costUsd,
    estimated: u.estimated,
  });
}

/**
 * `provider` with `stream` and `complete` metered into `meter` as `component`; every other member
 * (id, model, context window, circuit state…) is the provider's own.
 */
export function meteredLlm<P extends LlmProvider>(
  provider: P,
  meter: UsageMeter,
  component: UsageComponent,
): P {
  const wrapper = Object.create(provider) as P;
  Object.defineProperties(wrapper, {
    stream: {
      value: async function* (request: GenerateRequest): AsyncGenerator<LlmEvent> {
        for await (const e of provider.stream(request)) {
          if (e.type === 'done') record(meter, component, e.model || provider.model, e.usage);
          yield e;
        }
      },
    },
    complete: {
      value: async (request: GenerateRequest): Promise<Completion> => {
        const c = await provider.complete(request);
        record(meter, component, c.model || provider.model, c.usage);
        return c;
      },
    },
  });
  return wrapper;
}
