// Entry point of a parse worker thread (see parse-workers.ts). Plain JavaScript: Node 20 workers do not inherit
// a TypeScript loader, so when Quarry runs from its TypeScript sources the worker registers tsx itself before
// importing the task module. Protocol: posts { type: 'ready' } once loaded; for each { id, task } it posts
// { id, ok: true, result } or { id, ok: false, error: { code?, message, details? } }.
import { parentPort, workerData } from 'node:worker_threads';

if (!parentPort) throw new Error('parse-worker-boot.mjs must run in a worker thread');
const port = parentPort;
if (workerData.tsx) {
  const { register } = await import('tsx/esm/api');
  register();
}
const { default: parse } = await import(workerData.module);

port.on('message', async ({ id, task }) => {
  try {
    port.postMessage({ id, ok: true, result: await parse(task) });
  } catch (e) {
    const error =
      e && typeof e === 'object' && typeof e.code === 'string' && e.name === 'QuarryError'
        ? { code: e.code, message: e.message, details: e.details ?? {} }
        : { message: e instanceof Error ? e.message : String(e) };
    port.postMessage({ id, ok: false, error });
  }
});
port.postMessage({ type: 'ready' });
