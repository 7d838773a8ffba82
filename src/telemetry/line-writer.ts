/**
 * The log writer of the gateway process: every line (the access log's and pino's) is appended to a
 * string, and the string is written with one `writeSync` on the file descriptor 10 ms after the
 * first line of a batch (a timer), or at once when 64 KiB are pending, as Envoy's file access logs
 * (flushed on an interval or at 64 KiB) and nginx's `access_log … buffer=64k flush=…` do.
 *
 * Why a batch of several turns: one `writeSync` per turn of the event loop (what this did before)
 * cost 5% of the gateway's CPU under load, since a busy turn serves only a few requests: access log
 * on / off was 0.87x, with a 10 ms batch 0.95x (bench/README.md, "Access log to a file"). A line
 * waits at most 10 ms; a clean stop or an uncaught exception writes what is pending at exit, so only
 * a SIGKILL or a crash of the runtime itself can lose the last 10 ms of lines.
 *
 * Why not pino's async destination (sonic-boom, `sync: false`), which this replaced: on the bench
 * machine (Sluice pinned to one core, stdout to a file) sonic-boom's `fs.write` hands each buffer to
 * libuv's thread pool, whose thread then competes with the event loop for the same core and wakes it
 * again with a completion callback; that round trip costs more than the write itself (a few KiB into
 * the page cache). A synchronous write costs a single syscall and nothing in between, and leaves
 * nothing in flight: at exit the pending string is written synchronously and no line is lost or cut.
 *
 * The cost of being synchronous: a reader that stops reading a pipe (a stalled log shipper) makes
 * the write wait. A non-blocking descriptor answers EAGAIN instead; the lines are kept, in order,
 * and written again shortly, so nothing is lost while the process lives (memory grows meanwhile).
 */
import { writeSync } from 'node:fs';

/** Pending lines are written this long after the first of them. */
const flushAfterMs = 10;
/** Pending lines beyond this are written at once (bounds the string and the write). */
const flushAtChars = 64 * 1024;
/** After EAGAIN (pipe full, non-blocking): try again after this long. */
const retryMs = 10;
/** At exit, how long to keep trying a full non-blocking pipe before giving up. */
const exitRetryMs = 5_000;

export class LineWriter {
  private pending = '';
  private scheduled = false;
  private retry: NodeJS.Timeout | undefined;
  /** Error codes already reported on stderr (each once). */
  private readonly reported = new Set<string>();

  constructor(readonly fd: number) {}

  /** `chunk` is one or more complete lines, each ending with "\n". */
  write(chunk: string): boolean {
    this.pending += chunk;
    if (this.pending.length >= flushAtChars) this.flushSync();
    else if (!this.scheduled && this.retry === undefined) {
      this.scheduled = true;
      // Unref'd: a timer of its own must not keep a stopping process alive; exit writes what is left.
      setTimeout(this.onTimer, flushAfterMs).unref();
    }
    return true;
  }

  private readonly onTimer = (): void => {
    this.scheduled = false;
    this.flushSync();
  };

  /** pino's `logger.flush(cb)` calls this. */
  flush(cb?: (err?: Error) => void): void {
    this.flushSync();
    cb?.();
  }

  /**
   * Write everything pending now. `atExit`: a full non-blocking pipe is waited for (up to 5 s)
   * instead of retried later, since there is no later.
   */
  flushSync(atExit = false): void {
    if (this.pending.length === 0) return;
    if (this.retry !== undefined) {
      clearTimeout(this.retry);
      this.retry = undefined;
    }
    let buf = Buffer.from(this.pending, 'utf8');
    this.pending = '';
    let waitedUntil = 0;
    while (buf.length > 0) {
      try {
        const n = writeSync(this.fd, buf, 0, buf.length);
        buf = buf.subarray(n); // a pipe may take part of it
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') {
          this.fail(err as NodeJS.ErrnoException);
          return;
        }
        if (!atExit) {
          // Keep the rest in front of what comes next, and try again shortly.
          this.pending = buf.toString('utf8') + this.pending;
          this.retry = setTimeout(() => {
            this.retry = undefined;
            this.flushSync();
          }, retryMs);
          return;
        }
        waitedUntil ||= Date.now() + exitRetryMs;
        if (Date.now() > waitedUntil) return;
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1);
      }
    }
  }

  /**
   * The write failed for good (EPIPE: the reader exited; ENOSPC: the disk is full): the lines of
   * this write are dropped, the process goes on serving, and later turns try again (a full disk may
   * get space back; a closed pipe fails fast each time). Each kind of failure is said once on stderr.
   */
  private fail(err: NodeJS.ErrnoException): void {
    const code = err.code ?? err.message;
    if (this.reported.has(code)) return;
    this.reported.add(code);
    try {
      writeSync(2, `sluice: log output failed, log lines are dropped while it fails: ${err.message}\n`);
    } catch {
      // stderr is gone too
    }
  }
}
