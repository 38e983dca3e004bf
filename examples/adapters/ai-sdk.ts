import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { generateText, stepCountIs } from 'ai';
import { Quarry } from 'quarry';
import { quarryTools } from 'quarry/ai-sdk';

const quarry = Quarry.open(); // the store in $QUARRY_STORE, else ./.quarry
await quarry.addDocuments([{ id: 'refunds', text: 'Refunds take 5 working days.', source: 'refunds.md' }]);
const baseURL = process.env.OPENAI_BASE_URL ?? 'https://api.openai.com/v1';
const openai = createOpenAICompatible({ name: 'openai', baseURL, apiKey: process.env.OPENAI_API_KEY });
const { text, steps } = await generateText({
  model: openai('gpt-4o-mini'),
  tools: quarryTools(quarry, { k: 3 }),
  stopWhen: stepCountIs(3),
  prompt: 'How long does a refund take? Cite the source.',
});
for (const call of steps.flatMap((s) => s.toolResults))
  console.log(call.toolName, JSON.stringify(call.output));
console.log(text);
quarry.close();
