import type { Dispatcher } from 'undici';

/** One upstream endpoint with its connection pool. Health and breaker state attach here (issue 4). */
export interface Target {
  readonly id: string;
  /** `http://host:port` */
  readonly origin: string;
  /** Host header value when the route's host policy is `upstream`. */
  readonly hostHeader: string;
  readonly weight: number;
  readonly dispatcher: Dispatcher;
}
