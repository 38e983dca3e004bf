import { Document } from '@langchain/core/documents';
import { Quarry } from 'quarry';
import { QuarryRetriever, QuarryVectorStore } from 'quarry/langchain';

const quarry = Quarry.open(); // the store in $QUARRY_STORE, else ./.quarry
const store = new QuarryVectorStore(undefined, { quarry });
await store.addDocuments([
  new Document({ pageContent: 'Refunds take 5 working days.', metadata: { source: 'refunds.md' } }),
  new Document({ pageContent: 'Orders ship within 24 hours.', metadata: { source: 'shipping.md' } }),
]);
const retriever = new QuarryRetriever({ quarry, k: 1 });
for (const doc of await retriever.invoke('How long does a refund take?')) {
  const { source, start, end } = doc.metadata;
  console.log(`${doc.pageContent} (${source}, chars ${start}-${end})`);
}
quarry.close();
