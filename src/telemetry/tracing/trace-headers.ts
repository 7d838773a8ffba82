/** The W3C trace headers on a try's flat header list ([name, value, ...]). */

const isTraceHeader = (n: string) => (n.length === 11 || n.length === 10) && /^trace(parent|state)$/i.test(n);

/**
 * A copy of `headers` without traceparent/tracestate: the try sends its own. A copy always (the
 * list may be the one every try of the request starts from); a plain slice when there is nothing
 * to drop, which is the usual case.
 */
export function withoutTraceHeaders(headers: string[]): string[] {
  let found = false;
  for (let i = 0; i < headers.length; i += 2)
    if (isTraceHeader(headers[i]!)) {
      found = true;
      break;
    }
  if (!found) return headers.slice();
  const out: string[] = [];
  for (let i = 0; i < headers.length; i += 2) {
    const n = headers[i]!;
    if (!isTraceHeader(n)) out.push(n, headers[i + 1]!);
  }
  return out;
}
