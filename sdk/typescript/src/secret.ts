/**
 * Plaintext from the access API, in objects that do not print themselves: `toString`, `toJSON`
 * (hence `JSON.stringify`), `util.inspect` (hence `console.log`) and template literals show the
 * credential's id and type and `[REDACTED]`, never a value. The values sit in private class
 * fields, which no enumeration, spread or inspection reaches; `reveal()` and `field()` are the
 * only ways out, so handing a value on is always a visible line of code.
 */
import { inspect } from "node:util";
import type { Credential } from "./types.js";

const REDACTED = "[REDACTED]";

/** The fields of a secret value by name; iterating or `get` gives values, printing does not. */
export class SecretFields implements ReadonlyMap<string, string> {
  readonly #values: ReadonlyMap<string, string>;
  readonly #label: string;

  /** @internal */
  constructor(values: Iterable<readonly [string, string]>, label: string) {
    this.#values = new Map(values);
    this.#label = label;
  }

  get size(): number {
    return this.#values.size;
  }
  get(name: string): string | undefined {
    return this.#values.get(name);
  }
  has(name: string): boolean {
    return this.#values.has(name);
  }
  keys(): MapIterator<string> {
    return this.#values.keys();
  }
  values(): MapIterator<string> {
    return this.#values.values();
  }
  entries(): MapIterator<[string, string]> {
    return this.#values.entries();
  }
  [Symbol.iterator](): MapIterator<[string, string]> {
    return this.#values.entries();
  }
  forEach(fn: (value: string, key: string, map: ReadonlyMap<string, string>) => void, thisArg?: unknown): void {
    this.#values.forEach((value, key) => fn.call(thisArg, value, key, this));
  }
  /** A plain object of the fields (the values included: the caller's explicit choice). */
  toObject(): Record<string, string> {
    return Object.fromEntries(this.#values);
  }

  get [Symbol.toStringTag](): string {
    return "SecretFields";
  }
  toString(): string {
    return `SecretFields(${this.#label}, fields=[${[...this.#values.keys()].join(", ")}], values=${REDACTED})`;
  }
  toJSON(): Record<string, string> {
    return Object.fromEntries([...this.#values.keys()].map((k) => [k, REDACTED]));
  }
  [inspect.custom](): string {
    return this.toString();
  }
}

/** A credential's plaintext, as `client.access()` returns it. */
export class Secret {
  /** The credential's metadata (masked preview only). */
  readonly credential: Credential;
  /** Every field of the value by name, the primary secret included. */
  readonly fields: SecretFields;
  readonly #secret: string;

  /** @internal */
  constructor(credential: Credential, secret: string, fields: Iterable<readonly [string, string]>) {
    this.credential = credential;
    this.#secret = secret;
    this.fields = new SecretFields(fields, label(credential));
  }

  /**
   * The type's primary secret: the one value that authenticates (the API key, the connection
   * string; bedrock's secret_access_key, smtp's password).
   */
  reveal(): string {
    return this.#secret;
  }

  /** One field of the value; undefined when the value has no such field. */
  field(name: string): string | undefined {
    return this.fields.get(name);
  }

  get [Symbol.toStringTag](): string {
    return "Secret";
  }
  toString(): string {
    return `Secret(${label(this.credential)}, value=${REDACTED})`;
  }
  toJSON(): { id: string; type: string; value: string } {
    return { id: this.credential.id, type: this.credential.type, value: REDACTED };
  }
  [inspect.custom](): string {
    return this.toString();
  }
}

function label(c: Credential): string {
  return `id=${c.id}, type=${c.type}`;
}
