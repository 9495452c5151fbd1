/**
 * Paged listings: one implementation of following `next_page_token`, shared by every list call
 * (credentials, audit events).
 */

/** What every page of a listing carries: the token of the next page. */
export interface PageToken {
  /** Empty on the last page. */
  readonly nextPageToken: string;
}

/**
 * A listing that follows `next_page_token` as it is iterated: `for await (const item of list)`
 * gives every item once, `for await (const page of list.pages)` gives the pages. Nothing is
 * requested before iteration starts, and each iteration starts again from the first page.
 */
export class Listing<T, P extends PageToken> implements AsyncIterable<T> {
  readonly #fetch: (pageToken: string) => Promise<P>;
  readonly #items: (page: P) => readonly T[];

  /** @internal */
  constructor(fetch: (pageToken: string) => Promise<P>, items: (page: P) => readonly T[]) {
    this.#fetch = fetch;
    this.#items = items;
  }

  /** The pages, each with its items and the token of the next. */
  get pages(): AsyncIterable<P> {
    const fetch = this.#fetch;
    return {
      async *[Symbol.asyncIterator]() {
        let token = "";
        do {
          const page = await fetch(token);
          yield page;
          token = page.nextPageToken;
        } while (token !== "");
      },
    };
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for await (const page of this.pages) yield* this.#items(page);
  }

  /** Every item of the listing in an array (all pages). */
  async toArray(): Promise<T[]> {
    const all: T[] = [];
    for await (const item of this) all.push(item);
    return all;
  }
}
