// A watch response is one JSON event per line. Lines are split as bytes
// arrive, without holding more than one event (up to a cap) in memory.
import { WatchStreamError } from './errors.ts';
import { parseJson } from '../../../util/yaml.ts';

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
const TYPES: readonly string[] = ['ADDED', 'MODIFIED', 'DELETED', 'BOOKMARK', 'ERROR'];

export interface WatchEvent {
  type: WatchEventType;
  /** The object (for ERROR, a Status). */
  object: Record<string, unknown>;
}

/** One parsed line: an event, or why the line was not one (the stream goes on after it). */
export type WatchItem = { ok: true; event: WatchEvent } | { ok: false; error: WatchStreamError };

const NEWLINE = 0x0a;

function parseLine(line: string): WatchItem {
  let value: unknown;
  try {
    value = parseJson(line);
  } catch (err) {
    // A ParseError gives the position only: the line may be a Secret.
    return {
      ok: false,
      error: new WatchStreamError(`watch event is ${(err as Error).message}`),
    };
  }
  const v = value as { type?: unknown; object?: unknown } | null;
  if (
    v === null ||
    typeof v !== 'object' ||
    typeof v.type !== 'string' ||
    !TYPES.includes(v.type) ||
    v.object === null ||
    typeof v.object !== 'object' ||
    Array.isArray(v.object)
  )
    return { ok: false, error: new WatchStreamError('watch line is not a {type, object} event') };
  return {
    ok: true,
    event: { type: v.type as WatchEventType, object: v.object as Record<string, unknown> },
  };
}

/**
 * The watch events in a byte stream. A malformed line or one larger than
 * `maxEventBytes` yields an error item and is skipped (an oversized line is
 * dropped as it arrives, never buffered whole); a partial last line (the
 * connection broke mid-event) is dropped.
 */
export async function* watchEvents(
  chunks: AsyncIterable<Buffer>,
  maxEventBytes: number,
): AsyncGenerator<WatchItem> {
  let parts: Buffer[] = [];
  let size = 0;
  let oversized = false;
  for await (const chunk of chunks) {
    let start = 0;
    while (start < chunk.length) {
      const nl = chunk.indexOf(NEWLINE, start);
      const end = nl === -1 ? chunk.length : nl;
      if (!oversized) {
        size += end - start;
        if (size > maxEventBytes) {
          oversized = true;
          parts = [];
        } else if (end > start) parts.push(chunk.subarray(start, end));
      }
      if (nl === -1) break;
      if (oversized) {
        yield {
          ok: false,
          error: new WatchStreamError(`watch event larger than ${maxEventBytes} bytes skipped`),
        };
      } else if (size > 0) {
        const line = (parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts)).toString(
          'utf8',
        );
        if (line.trim() !== '') yield parseLine(line);
      }
      parts = [];
      size = 0;
      oversized = false;
      start = nl + 1;
    }
  }
}
