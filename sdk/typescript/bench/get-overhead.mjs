// What the SDK adds to a call: client CPU and wall time per GetCredential, through the SDK and
// through a bare Connect client of the same generated code, against a running vault.
// Usage (after `npm run build`): CREDVAULT_TARGET=localhost:50051 CREDVAULT_TOKEN=... node bench/get-overhead.mjs
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Client } from "../dist/index.js";
import { CredentialsService } from "../dist/gen/credentials/v1/credentials_service_pb.js";

const target = process.env.CREDVAULT_TARGET ?? "localhost:50051";
const token = process.env.CREDVAULT_TOKEN;
const calls = Number(process.env.CALLS ?? 3000);
const client = new Client({ target, token });
const [first] = await client.credentials.list({ pageSize: 1 }).toArray();
if (!first) throw new Error("the workspace needs one credential");
const bare = createClient(
  CredentialsService,
  createGrpcTransport({
    baseUrl: `http://${target}`,
    interceptors: [(next) => (req) => (req.header.set("authorization", `Bearer ${token}`), next(req))],
  }),
);

async function measure(call) {
  for (let i = 0; i < 200; i++) await call();
  const cpu = process.cpuUsage();
  const wall = performance.now();
  for (let i = 0; i < calls; i++) await call();
  const used = process.cpuUsage(cpu);
  return { cpu: (used.user + used.system) / calls, wall: ((performance.now() - wall) * 1000) / calls };
}

for (let run = 1; run <= 3; run++) {
  const raw = await measure(() => bare.getCredential({ id: first.id }, { timeoutMs: 30_000 }));
  const sdk = await measure(() => client.credentials.get(first.id));
  console.log(
    `run ${run}: client CPU per get ${raw.cpu.toFixed(0)} us bare, ${sdk.cpu.toFixed(0)} us credvault; ` +
      `wall ${raw.wall.toFixed(0)} us bare, ${sdk.wall.toFixed(0)} us credvault`,
  );
}
await client.close();
