/**
 * The flag side of a Gateway: the flag snapshot the data plane reads (`flag`, `flags` and `ofrep`
 * routes) and the repository the admin API writes through. Opened with the store, whenever one is
 * open: the admin API manages flags even before a route uses them.
 */
import type { Logger } from 'pino';
import { FlagSource } from '../delivery/flags/snapshot.js';
import { FlagRepository } from '../delivery/flags/store.js';
import type { Store } from '../store/store.js';

export class FlagServices {
  private constructor(
    readonly source: FlagSource,
    readonly repository: FlagRepository,
  ) {}

  static async open(store: Store, logger: Logger): Promise<FlagServices> {
    const source = new FlagSource(store, {
      onError: (err) =>
        logger.warn(
          { event: 'flag_snapshot_failed', err: err.message },
          'flag snapshot reload failed; serving the last one',
        ),
      onBadFlag: (key, err) =>
        logger.error(
          { event: 'flag_not_compiled', flag: key, err: err.message },
          'a stored flag does not compile; it is left out',
        ),
    });
    await source.start();
    logger.info({ event: 'flags_loaded', flags: source.current.flags.size }, 'flag snapshot loaded');
    return new FlagServices(source, new FlagRepository(store));
  }

  close(): Promise<void> {
    return this.source.close();
  }
}
