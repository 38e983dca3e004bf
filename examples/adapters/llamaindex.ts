import { MetadataMode } from 'llamaindex';
import { Quarry } from 'quarry';
import { QuarryRetriever } from 'quarry/llamaindex';

const quarry = Quarry.open(); // the store in $QUARRY_STORE, else ./.quarry
await quarry.addDocuments([
  { id: 'refunds', markdown: '# Refunds\n\nRefunds take 5 working days.', source: 'refunds.md' },
  { id: 'shipping', markdown: '# Shipping\n\nOrders ship within 24 hours.', source: 'shipping.md' },
]);
const retriever = new QuarryRetriever({ quarry, k: 2 });
for (const { node, score } of await retriever.retrieve({ query: 'How long do refunds and shipping take?' })) {
  const text = node.getContent(MetadataMode.NONE).replaceAll('\n', ' ');
  console.log(`${score?.toFixed(3)} ${node.metadata.source}: ${text}`);
}
quarry.close();
