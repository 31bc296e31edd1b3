import type { Socket } from "node:net";

/**
 * Writes made in the same tick leave in one packet: the first write of a tick corks the socket
 * and the next tick uncorks it. Returns what `socket.write` returns (false = wait for 'drain').
 */
export class TickCork {
  private corked = false;

  constructor(private readonly socket: Socket) {}

  write(bytes: Uint8Array): boolean {
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(() => {
        this.corked = false;
        this.socket.uncork();
      });
    }
    return this.socket.write(bytes);
  }
}
