/**
 * `client.auditEvents`: the workspace's audit log (CredentialsService.ListAuditEvents): who did
 * what to which credential, never a value. Needs the `read` permission.
 */
import type { Transport } from "./client.js";
import { toAuditEvent } from "./convert.js";
import { Listing } from "./listing.js";
import type { AuditEvent, AuditEventListOptions, AuditEventPage } from "./types.js";

/**
 * The events of an audit log listing (see {@link Listing}): `for await (const e of list)` gives
 * every event once, newest first, `list.pages` the {@link AuditEventPage}s, `toArray()` all of them.
 */
export class AuditEventList extends Listing<AuditEvent, AuditEventPage> {
  /** @internal */
  constructor(fetch: (pageToken: string) => Promise<AuditEventPage>) {
    super(fetch, (page) => page.events);
  }
}

/** The audit log of a workspace. */
export class AuditEvents {
  readonly #t: Transport;

  /** @internal */
  constructor(transport: Transport) {
    this.#t = transport;
  }

  /**
   * Every event of the workspace (or, with `credentialId`, of one credential), newest first;
   * pages are followed as you iterate.
   */
  list(options: AuditEventListOptions = {}): AuditEventList {
    const t = this.#t;
    return new AuditEventList(async (pageToken) => {
      const r = await t.call(
        (opts) =>
          t.credentialsService.listAuditEvents(
            {
              workspaceId: t.workspace(options),
              credentialId: options.credentialId ?? "",
              pageSize: options.pageSize ?? 0,
              pageToken,
            },
            opts,
          ),
        options,
      );
      return { events: r.events.map(toAuditEvent), nextPageToken: r.nextPageToken };
    });
  }
}
