/** The request headers the cache reads, found in one pass over the raw list. */

export interface RequestFacts {
  cacheControl: string | undefined;
  pragmaNoCache: boolean;
  authorization: boolean;
  /** Range, If-Range, If-Match, If-Unmodified-Since: the cache steps aside. */
  bypass: boolean;
  ifNoneMatch: string | undefined;
  ifModifiedSince: string | undefined;
}

export function requestFacts(raw: readonly string[]): RequestFacts {
  const f: RequestFacts = {
    cacheControl: undefined,
    pragmaNoCache: false,
    authorization: false,
    bypass: false,
    ifNoneMatch: undefined,
    ifModifiedSince: undefined,
  };
  // Switch on the name's length first: one comparison rejects almost every header.
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    switch (name.length) {
      case 5:
        if (name.toLowerCase() === 'range') f.bypass = true;
        break;
      case 6:
        if (name.toLowerCase() === 'pragma' && /no-cache/i.test(raw[i + 1]!)) f.pragmaNoCache = true;
        break;
      case 8: {
        const l = name.toLowerCase();
        if (l === 'if-match' || l === 'if-range') f.bypass = true;
        break;
      }
      case 13: {
        const l = name.toLowerCase();
        if (l === 'cache-control')
          f.cacheControl = f.cacheControl === undefined ? raw[i + 1]! : `${f.cacheControl}, ${raw[i + 1]}`;
        else if (l === 'authorization') f.authorization = true;
        else if (l === 'if-none-match')
          f.ifNoneMatch = f.ifNoneMatch === undefined ? raw[i + 1]! : `${f.ifNoneMatch}, ${raw[i + 1]}`;
        break;
      }
      case 17:
        if (name.toLowerCase() === 'if-modified-since') f.ifModifiedSince ??= raw[i + 1];
        break;
      case 19:
        if (name.toLowerCase() === 'if-unmodified-since') f.bypass = true;
        break;
    }
  }
  return f;
}
