/**
 * Response validation: every JSON response of the admin API is checked against the schema its route
 * declares before it is sent. The admin API is not the hot path, so the cost (one compiled ajv
 * check per response) buys a guarantee: what /openapi.json promises is what clients get, and an
 * undeclared field (a key hash, say) fails the response instead of leaking.
 */

import { Ajv } from 'ajv';
import addFormats from 'ajv-formats';
import type { FastifySchemaCompiler, FastifySerializerCompiler } from 'fastify/types/schema.js';

export class ResponseInvalidError extends Error {
  constructor(route: string, status: number | string, detail: string) {
    super(`response of ${route} (${status}) does not match its schema: ${detail}`);
    this.name = 'ResponseInvalidError';
  }
}

/** A serializer compiler (one ajv instance per admin server) that validates, then stringifies. */
export function responseSerializerCompiler(): FastifySerializerCompiler<unknown> {
  const ajv = new Ajv({ allErrors: true, strict: false });
  (addFormats as unknown as (a: Ajv) => void)(ajv);
  return ({ schema, method, url, httpStatus }) => {
    const check = ajv.compile(schema as object);
    return (data: unknown) => {
      if (!check(data)) {
        const detail = (check.errors ?? [])
          .map((e) => `${e.instancePath || '/'} ${e.message ?? ''}`)
          .join('; ');
        throw new ResponseInvalidError(`${method} ${url}`, httpStatus ?? 'default', detail);
      }
      return JSON.stringify(data);
    };
  };
}

/**
 * Request validation. Bodies are JSON and must match exactly: no coercion, unknown fields refused
 * (not silently dropped), defaults filled. Path and query parameters are text, so they are coerced
 * to the declared types (`?limit=20` is the integer 20).
 */
export function requestValidatorCompiler(): FastifySchemaCompiler<unknown> {
  const strict = new Ajv({ allErrors: true, strict: false, useDefaults: true, coerceTypes: false });
  const coercing = new Ajv({ allErrors: true, strict: false, useDefaults: true, coerceTypes: 'array' });
  for (const a of [strict, coercing]) (addFormats as unknown as (a: Ajv) => void)(a);
  // Fastify calls the ajv function and reads its `errors` when it returns false.
  return ({ schema, httpPart }) => (httpPart === 'body' ? strict : coercing).compile(schema as object);
}
