/**
 * Ports for tests that run side by side in parallel processes.
 *
 * - A server the test starts itself listens on port 0 and reads its port back (startUpstream,
 *   startNode, the gateway's listeners): nothing to choose, nothing another file can take.
 * - A "dead" target (connection refused) is `refusedOrigin()`: a port held bound, never listening,
 *   for as long as the test keeps it, so a connect is refused every time and no other process that
 *   asks the kernel for a port is given it.
 * - `freePort()` is only for a child process that must be told its port on the command line
 *   (redis-server, postgres, the sluice CLI): the port is free when probed but may be taken before
 *   the child binds it, so the caller retries the start on a bind failure.
 */
import { type AddressInfo, createServer } from 'node:net';

/** A port that was free a moment ago (listen on 0, read it, close): see the module comment. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export interface RefusedOrigin {
  /** `http://127.0.0.1:PORT`: every connection to it is refused (ECONNREFUSED). */
  origin: string;
  port: number;
  /**
   * Releases the port (after the gateway that points at it has stopped). Optional: the handle
   * does not keep the process alive, and the port is released when the test process exits.
   */
  close: () => void;
}

interface TcpHandle {
  bind(address: string, port: number): number;
  getsockname(out: Partial<AddressInfo>): number;
  close(): void;
  unref(): void;
}

/**
 * A loopback address nothing answers on: a TCP socket bound to 127.0.0.1 and a kernel-chosen port,
 * never put in the listening state. A connection to it is refused at once (the kernel answers the
 * SYN with a reset, as for a port nobody holds), and while it is bound the kernel gives the port to
 * no one who asks for port 0 (every server of this suite, and freePort()). Node has no public API
 * for a TCP bind without listen; its libuv TCP handle (tcp_wrap) does exactly that.
 */
export function refusedOrigin(): RefusedOrigin {
  const binding = (process as unknown as { binding: (name: string) => unknown }).binding('tcp_wrap') as {
    TCP: new (type: number) => TcpHandle;
    constants: { SOCKET: number };
  };
  const h = new binding.TCP(binding.constants.SOCKET);
  const err = h.bind('127.0.0.1', 0);
  if (err !== 0) throw new Error(`binding a TCP socket on 127.0.0.1 failed (${err})`);
  const addr: Partial<AddressInfo> = {};
  h.getsockname(addr);
  // Never what keeps a test process alive.
  h.unref();
  const port = addr.port!;
  let closed = false;
  return {
    origin: `http://127.0.0.1:${port}`,
    port,
    close: () => {
      if (closed) return;
      closed = true;
      h.close();
    },
  };
}
