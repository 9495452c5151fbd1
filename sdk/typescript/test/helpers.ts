/** What several suites share. */
import type { Client } from "../src/index.js";

/** How many successful accesses of the credential the workspace's audit log records. */
export async function countAccesses(client: Client, credentialId: string): Promise<number> {
  let count = 0;
  for await (const e of client.auditEvents.list({ credentialId, pageSize: 500 })) {
    if (e.action === "access" && e.outcome === "succeeded") count += 1;
  }
  return count;
}

/** A random marker to find a value by, e.g. in printed output. */
export function marker(prefix: string): string {
  return `${prefix}${Math.random().toString(36).slice(2, 10)}${Date.now().toString(36)}`;
}
