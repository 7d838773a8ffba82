/**
 * The outbox acknowledgements a request's answer waits for, by request id: the bus listener files
 * the promise `FileOutbox.append` returned, the refusal writer takes it (src/dataplane/stages/
 * reply.ts). An entry lives until its acknowledgement settles (a group commit: milliseconds), so
 * the map holds only events in flight to the disk. Requests that emit nothing never touch it.
 *
 * Request ids can come from the client (`x-request-id`): two requests with one id wait for both
 * requests' events, which costs one of them a little latency and never answers one unrecorded.
 */
export class RecordAcks {
  private readonly byRequest = new Map<string, Promise<unknown>>();

  track(requestId: string, ack: Promise<unknown>): void {
    const before = this.byRequest.get(requestId);
    const all = before === undefined ? ack : Promise.all([before, ack]);
    this.byRequest.set(requestId, all);
    const done = () => {
      if (this.byRequest.get(requestId) === all) this.byRequest.delete(requestId);
    };
    // Handled here, so an acknowledgement nobody waits for (an event whose request is not refused)
    // never counts as an unhandled rejection; a waiter sees the rejection through its own handler.
    all.then(done, done);
  }

  pending(requestId: string): Promise<unknown> | undefined {
    return this.byRequest.get(requestId);
  }

  get size(): number {
    return this.byRequest.size;
  }
}
