/**
 * Typed tool calls for the MCP tests over both transports: each Quarry tool's structured output, and the
 * tool error's stable code (`_meta["quarry/error"]`).
 */
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type {
  AddDocumentToolOutput,
  AskToolOutput,
  DocumentToolOutput,
  SearchToolOutput,
} from '../../src/mcp/server.js';

export interface ToolOutputs {
  search: SearchToolOutput;
  ask: AskToolOutput;
  get_document: DocumentToolOutput;
  add_document: AddDocumentToolOutput;
}

export interface ToolResult<T> {
  isError?: boolean;
  content: Array<{ type: string; text?: string; uri?: string }>;
  structuredContent?: T;
  _meta?: { 'quarry/error'?: { code: string; message: string } };
}

export async function call<N extends keyof ToolOutputs>(
  c: Client,
  name: N,
  args: Record<string, unknown>,
): Promise<ToolResult<ToolOutputs[N]>> {
  return (await c.callTool({ name, arguments: args })) as ToolResult<ToolOutputs[N]>;
}

export const errorCode = (r: ToolResult<unknown>) => r._meta?.['quarry/error']?.code;
