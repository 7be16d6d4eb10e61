// aedes' MQTT parser buffers a whole packet before it looks at it, whatever
// size its header announces (up to 256 MB). This guard sits between a client's
// socket and aedes and reads only the fixed headers: a packet announced larger
// than the limit closes the connection before its bytes are kept.
import { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import { PacketTooLargeError } from './errors.ts';

/** Follows MQTT frame boundaries in a byte stream; says when a frame is too large or malformed. */
export class FrameScanner {
  readonly #max: number;
  #state: 'type' | 'length' | 'body' = 'type';
  #length = 0;
  #multiplier = 1;
  #lengthBytes = 0;
  #remaining = 0;

  constructor(maxPacketBytes: number) {
    this.#max = maxPacketBytes;
  }

  /** Consumes a chunk; returns an error for the first frame over the limit or with a malformed length. */
  feed(chunk: Buffer): Error | undefined {
    let i = 0;
    while (i < chunk.length) {
      if (this.#state === 'body') {
        const skip = Math.min(this.#remaining, chunk.length - i);
        i += skip;
        this.#remaining -= skip;
        if (this.#remaining === 0) this.#state = 'type';
      } else if (this.#state === 'type') {
        i += 1;
        this.#state = 'length';
        this.#length = 0;
        this.#multiplier = 1;
        this.#lengthBytes = 0;
      } else {
        const byte = chunk[i] ?? 0;
        i += 1;
        this.#length += (byte & 0x7f) * this.#multiplier;
        this.#lengthBytes += 1;
        if ((byte & 0x80) !== 0) {
          if (this.#lengthBytes === 4) return new Error('malformed MQTT remaining length');
          this.#multiplier *= 128;
          continue;
        }
        const total = 1 + this.#lengthBytes + this.#length;
        if (total > this.#max) return new PacketTooLargeError(total, this.#max);
        this.#remaining = this.#length;
        this.#state = this.#remaining > 0 ? 'body' : 'type';
      }
    }
    return undefined;
  }
}

/** A client connection for aedes that passes bytes through unchanged while checking frame sizes. */
export class SizeLimitedConnection extends Duplex {
  readonly socket: Socket;
  /** The client's address, kept for log lines after the socket has closed. */
  readonly peer: string;

  /** Applied once, to the bytes of the first write (or corked batch of writes): the CONNACK. */
  #firstWrite: ((bytes: Buffer) => Buffer) | undefined;

  constructor(socket: Socket, maxPacketBytes: number, firstWrite?: (bytes: Buffer) => Buffer) {
    super({ allowHalfOpen: false });
    this.socket = socket;
    this.#firstWrite = firstWrite;
    this.peer = socket.remoteAddress ?? 'unknown';
    const scanner = new FrameScanner(maxPacketBytes);
    socket.on('data', (chunk: Buffer) => {
      const problem = scanner.feed(chunk);
      if (problem !== undefined) {
        this.destroy(problem);
        return;
      }
      if (!this.push(chunk)) socket.pause();
    });
    socket.on('end', () => this.push(null));
    socket.on('error', (err) => this.destroy(err));
    socket.on('close', () => this.destroy());
  }

  override _read(): void {
    this.socket.resume();
  }

  override _write(
    chunk: Buffer,
    _encoding: BufferEncoding,
    done: (err?: Error | null) => void,
  ): void {
    this.socket.write(this.#first(chunk), done);
  }

  override _writev(
    chunks: { chunk: Buffer; encoding: BufferEncoding }[],
    done: (err?: Error | null) => void,
  ): void {
    if (this.#firstWrite !== undefined) {
      this.socket.write(this.#first(Buffer.concat(chunks.map(({ chunk }) => chunk))), done);
      return;
    }
    // aedes writes many small packets; one syscall for all that queued up.
    this.socket.cork();
    chunks.forEach(({ chunk }, i) =>
      this.socket.write(chunk, i === chunks.length - 1 ? done : undefined),
    );
    this.socket.uncork();
  }

  #first(bytes: Buffer): Buffer {
    const rewrite = this.#firstWrite;
    if (rewrite === undefined) return bytes;
    this.#firstWrite = undefined;
    return rewrite(bytes);
  }

  override _final(done: (err?: Error | null) => void): void {
    this.socket.end(done);
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    this.socket.destroy();
    done(err);
  }
}
