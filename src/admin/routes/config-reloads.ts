/**
 * The last reload attempts of this process (GET /admin/v1/config/reloads): trigger (file watch,
 * SIGHUP, the admin API), result, the version running after it, and every error of a refused one
 * (file, line, column, path, message). In memory, the last 50 (src/config/reload-history.ts).
 */
import { Type as T } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { AdminContext } from '../context.js';
import { withAuthErrors } from '../schemas.js';

const closed = { additionalProperties: false } as const;

const Reloads = T.Object(
  {
    running: T.Object(
      { version: T.String(), file: T.String(), loadedAt: T.String({ format: 'date-time' }) },
      closed,
    ),
    capacity: T.Integer({ minimum: 0, description: 'How many attempts are kept.' }),
    reloads: T.Array(
      T.Object(
        {
          at: T.String({ format: 'date-time' }),
          trigger: T.String({ description: '`file`, `SIGHUP`, `admin`, …' }),
          result: T.Union([T.Literal('applied'), T.Literal('unchanged'), T.Literal('rejected')]),
          version: T.String({ description: 'The version running after the attempt.' }),
          previous: T.Optional(T.String()),
          errors: T.Optional(
            T.Array(
              T.Object(
                {
                  file: T.String(),
                  line: T.Integer(),
                  column: T.Integer(),
                  path: T.String(),
                  message: T.String(),
                },
                closed,
              ),
            ),
          ),
          durationMs: T.Number({ minimum: 0 }),
        },
        closed,
      ),
      { description: 'Newest first.' },
    ),
  },
  closed,
);

export function registerConfigReloadRoutes(app: FastifyInstance, { gw }: AdminContext): void {
  app.get(
    '/admin/v1/config/reloads',
    {
      config: { permission: 'config.read' },
      schema: {
        tags: ['config'],
        summary:
          'The last reload attempts of this process, newest first: trigger, result, version, and the errors of refused ones',
        response: withAuthErrors({ 200: Reloads }),
      },
    },
    async () => {
      const rt = gw.runtime;
      return {
        running: { version: rt.version, file: rt.file, loadedAt: rt.loadedAt.toISOString() },
        capacity: gw.reloadHistory?.capacity ?? 0,
        reloads: gw.reloadHistory?.list() ?? [],
      };
    },
  );
}
