/** What several suites share: a raw gRPC client for what the SDK does not wrap (the audit log). */
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { CredentialsService } from "../src/gen/credentials/v1/credentials_service_pb.js";
import { AuditAction, AuditOutcome } from "../src/gen/credentials/v1/resources_pb.js";

/** How many successful accesses of the credential the workspace's audit log records. */
export async function countAccesses(target: string, token: string, credentialId: string): Promise<number> {
  const transport = createGrpcTransport({
    baseUrl: `http://${target}`,
    interceptors: [
      (next) => (req) => {
        req.header.set("authorization", `Bearer ${token}`);
        return next(req);
      },
    ],
  });
  const audit = createClient(CredentialsService, transport);
  let count = 0;
  let pageToken = "";
  do {
    const page = await audit.listAuditEvents({ credentialId, pageSize: 500, pageToken });
    count += page.events.filter(
      (e) => e.action === AuditAction.ACCESS && e.outcome === AuditOutcome.SUCCEEDED,
    ).length;
    pageToken = page.nextPageToken;
  } while (pageToken !== "");
  return count;
}

/** A random marker to find a value by, e.g. in printed output. */
export function marker(prefix: string): string {
  return `${prefix}${Math.random().toString(36).slice(2, 10)}${Date.now().toString(36)}`;
}
