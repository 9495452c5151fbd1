/**
 * `client.credentials`: the management API (CredentialsService). Never returns a secret; use
 * `client.access()` for the plaintext.
 */
import type { Transport } from "./client.js";
import { PROBE_TIMEOUT } from "./defaults.js";
import { Listing } from "./listing.js";
import {
  requireCredential,
  toCredential,
  toCredentialType,
  toCredentialValue,
  toSchema,
  toValidationResult,
} from "./convert.js";
import type {
  CallOptions,
  CreateOptions,
  Credential,
  CredentialPage,
  CredentialType,
  DeleteOptions,
  DiscoverSchemaOptions,
  ListOptions,
  Schema,
  TestOptions,
  TypesOptions,
  UpdateOptions,
  ValidationResult,
} from "./types.js";
import { SchemaDiscovery } from "./types.js";

/**
 * The credentials of a listing (see {@link Listing}): `for await (const c of list)` gives every
 * credential once, `list.pages` the {@link CredentialPage}s, `toArray()` all of them.
 */
export class CredentialList extends Listing<Credential, CredentialPage> {
  /** @internal */
  constructor(fetch: (pageToken: string) => Promise<CredentialPage>) {
    super(fetch, (page) => page.credentials);
  }
}

/** The credentials of a workspace. */
export class Credentials {
  readonly #t: Transport;

  /** @internal */
  constructor(transport: Transport) {
    this.#t = transport;
  }

  /**
   * Creates a credential. `value` is the type's primary secret as a string, or an object of
   * field name -> string; `category`, when given, must be the type's.
   */
  async create(options: CreateOptions): Promise<Credential> {
    const t = this.#t;
    const value = toCredentialValue(options.value);
    const r = await t.call(
      (opts) =>
        t.credentialsService.createCredential(
          {
            workspaceId: t.workspace(options),
            name: options.name,
            type: options.type,
            category: options.category ?? "",
            description: options.description ?? "",
            value,
            makeDefault: options.makeDefault ?? false,
          },
          opts,
        ),
      options,
    );
    return requireCredential(r.credential);
  }

  /** A credential by id (deleted ones too, with deletedAt set). */
  async get(credentialId: string, options: CallOptions = {}): Promise<Credential> {
    const t = this.#t;
    const r = await t.call(
      (opts) => t.credentialsService.getCredential({ workspaceId: t.workspace(options), id: credentialId }, opts),
      options,
    );
    return requireCredential(r.credential);
  }

  /** The workspace's credentials, newest first, optionally filtered; pages are followed as you iterate. */
  list(options: ListOptions = {}): CredentialList {
    const t = this.#t;
    return new CredentialList(async (pageToken) => {
      const r = await t.call(
        (opts) =>
          t.credentialsService.listCredentials(
            {
              workspaceId: t.workspace(options),
              type: options.type ?? "",
              category: options.category ?? "",
              showDeleted: options.showDeleted ?? false,
              pageSize: options.pageSize ?? 0,
              pageToken,
            },
            opts,
          ),
        options,
      );
      return { credentials: r.credentials.map(toCredential), nextPageToken: r.nextPageToken };
    });
  }

  /** Changes a credential's name, description and/or value; only the fields given change. */
  async update(credentialId: string, options: UpdateOptions = {}): Promise<Credential> {
    const t = this.#t;
    const value = options.value === undefined ? undefined : toCredentialValue(options.value);
    const r = await t.call(
      (opts) =>
        t.credentialsService.updateCredential(
          {
            workspaceId: t.workspace(options),
            id: credentialId,
            etag: options.etag ?? "",
            ...(options.name !== undefined ? { name: options.name } : {}),
            ...(options.description !== undefined ? { description: options.description } : {}),
            ...(value ? { value } : {}),
          },
          opts,
        ),
      options,
    );
    return requireCredential(r.credential);
  }

  /** Deletes a credential: its metadata stays (deletedAt set), its secret is destroyed. */
  async delete(credentialId: string, options: DeleteOptions = {}): Promise<Credential> {
    const t = this.#t;
    const r = await t.call(
      (opts) =>
        t.credentialsService.deleteCredential(
          { workspaceId: t.workspace(options), id: credentialId, etag: options.etag ?? "" },
          opts,
        ),
      options,
    );
    return requireCredential(r.credential);
  }

  /** Makes a credential the default for its type; the previous default stops being one. */
  async setDefault(credentialId: string, options: CallOptions = {}): Promise<Credential> {
    const t = this.#t;
    const r = await t.call(
      (opts) =>
        t.credentialsService.setDefaultCredential({ workspaceId: t.workspace(options), id: credentialId }, opts),
      options,
    );
    return requireCredential(r.credential);
  }

  /** Tests a stored credential against its real target and stores the outcome on it. */
  async validate(credentialId: string, options: CallOptions = {}): Promise<ValidationResult> {
    const t = this.#t;
    const r = await t.call(
      (opts) =>
        t.credentialsService.validateCredential({ workspaceId: t.workspace(options), id: credentialId }, opts),
      options,
      PROBE_TIMEOUT,
    );
    return toValidationResult(r.result, requireCredential(r.credential));
  }

  /** The same as {@link validate}. */
  checkConnection(credentialId: string, options: CallOptions = {}): Promise<ValidationResult> {
    return this.validate(credentialId, options);
  }

  /**
   * Tests a value that is not stored (a type and a value), or a stored credential with some of
   * its secret fields replaced (`credentialId` and a value of those fields). Stores nothing.
   */
  async test(options: TestOptions): Promise<ValidationResult> {
    const t = this.#t;
    const value = options.value === undefined ? undefined : toCredentialValue(options.value);
    const r = await t.call(
      (opts) =>
        t.credentialsService.testCredential(
          {
            workspaceId: t.workspace(options),
            type: options.type ?? "",
            credentialId: options.credentialId ?? "",
            ...(value ? { value } : {}),
          },
          opts,
        ),
      options,
      PROBE_TIMEOUT,
    );
    return toValidationResult(r.result, null);
  }

  /** Reads a data warehouse credential's database schema and stores it on the credential. */
  async discoverSchema(credentialId: string, options: DiscoverSchemaOptions = {}): Promise<SchemaDiscovery> {
    const t = this.#t;
    const r = await t.call(
      (opts) =>
        t.credentialsService.discoverSchema(
          {
            workspaceId: t.workspace(options),
            id: credentialId,
            includeSchemas: [...(options.includeSchemas ?? [])],
            excludeSchemas: [...(options.excludeSchemas ?? [])],
            maxTables: options.maxTables ?? 0,
          },
          opts,
        ),
      options,
      PROBE_TIMEOUT,
    );
    return new SchemaDiscovery({
      credential: r.credential ? toCredential(r.credential) : null,
      tableCount: r.tableCount,
      truncated: r.truncated,
    });
  }

  /** A credential's stored schema, structured and as DDL; FailedPrecondition when none was discovered. */
  async getSchema(credentialId: string, options: CallOptions = {}): Promise<Schema> {
    const t = this.#t;
    const r = await t.call(
      (opts) => t.credentialsService.getSchema({ workspaceId: t.workspace(options), id: credentialId }, opts),
      options,
    );
    return toSchema(r);
  }

  /** The type catalogue, optionally of one category. */
  async types(options: TypesOptions = {}): Promise<CredentialType[]> {
    const t = this.#t;
    const r = await t.call(
      (opts) => t.credentialsService.listCredentialTypes({ category: options.category ?? "" }, opts),
      options,
    );
    return r.types.map(toCredentialType);
  }
}
