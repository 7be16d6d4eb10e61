// Sensors that follow no convention: a topic pattern such as
// `sensors/{id}/{metric}` names the levels that carry the device id (`{id}`,
// required), the reading's name (`{metric}`, optional) and further facts
// (any other `{name}`, a device attribute). Every message on a matching
// topic is a reading; a device is listed from its first message on.
import type { ConventionUpdate, SensorDevice } from './convention.ts';

const NAME = /^[a-z][a-z0-9_]{0,31}$/;
const MAX_VALUE_TEXT = 4096;

type Level = { literal: string } | { name: string };

export interface TopicPattern {
  readonly text: string;
  /** The MQTT filter that subscribes to it: each named level a `+`. */
  readonly filter: string;
  readonly levels: readonly Level[];
}

/** Parses `a/{id}/{metric}`; throws an Error saying what is wrong. */
export function parseTopicPattern(text: string): TopicPattern {
  const names = new Set<string>();
  const levels = text.split('/').map((level): Level => {
    const m = /^\{(.*)\}$/.exec(level);
    if (m === null) {
      if (level === '' || /[+#{}]/.test(level) || level.includes('\u0000'))
        throw new Error(
          `level ${JSON.stringify(level)}: literal levels are non-empty, without + # { }`,
        );
      return { literal: level };
    }
    const name = m[1] ?? '';
    if (!NAME.test(name)) throw new Error(`{${name}}: names are lower case letters, digits and _`);
    if (names.has(name)) throw new Error(`{${name}} appears twice`);
    names.add(name);
    return { name };
  });
  if (!names.has('id')) throw new Error('a pattern needs an {id} level');
  const filter = levels.map((l) => ('literal' in l ? l.literal : '+')).join('/');
  return { text, filter, levels };
}

/** The named levels of `topic`, or undefined if it does not fit the pattern. */
export function matchTopicPattern(
  pattern: TopicPattern,
  topic: string,
): Record<string, string> | undefined {
  const parts = topic.split('/');
  if (parts.length !== pattern.levels.length) return undefined;
  const named: Record<string, string> = {};
  for (const [i, level] of pattern.levels.entries()) {
    const part = parts[i] ?? '';
    if ('literal' in level) {
      if (level.literal !== part) return undefined;
    } else {
      if (part === '') return undefined;
      named[level.name] = part;
    }
  }
  return named;
}

/** The patterns of one handler run, as a source of updates like a convention. */
export class PatternSource {
  readonly name = 'patterns';
  readonly #patterns: readonly TopicPattern[];
  /** Key -> the device as last reported, to report only changes. */
  readonly #devices = new Map<string, string>();
  readonly #maxDevices: number;

  constructor(patterns: readonly TopicPattern[], maxDevices: number) {
    this.#patterns = patterns;
    this.#maxDevices = maxDevices;
  }

  filters(): string[] {
    return [...new Set(this.#patterns.map((p) => p.filter))];
  }

  handle(topic: string, payload: Buffer): ConventionUpdate[] {
    for (const pattern of this.#patterns) {
      const named = matchTopicPattern(pattern, topic);
      if (named === undefined) continue;
      const { id, metric, ...attributes } = named;
      if (id === undefined) continue;
      const key = id;
      // Ever-new ids from one publisher must not grow this without bound.
      if (!this.#devices.has(key) && this.#devices.size >= this.#maxDevices) return [];
      const updates: ConventionUpdate[] = [];
      const stateTopic = pattern.levels
        .map((l) => ('literal' in l ? l.literal : l.name === 'metric' ? '+' : named[l.name]))
        .join('/');
      const device: SensorDevice = { key, attributes, stateTopics: [stateTopic], commands: [] };
      const text = JSON.stringify(device);
      if (this.#devices.get(key) !== text) {
        this.#devices.set(key, text);
        updates.push({ kind: 'device', device });
      }
      // An empty message clears a retained one; it is no reading.
      if (payload.length > 0) {
        const value = readValue(payload);
        const values: Record<string, unknown> =
          metric !== undefined
            ? { [metric]: value }
            : typeof value === 'object' && value !== null && !Array.isArray(value)
              ? (value as Record<string, unknown>)
              : { value };
        updates.push({ kind: 'reading', key, values });
      }
      return updates;
    }
    return [];
  }

  command(): undefined {
    return undefined;
  }
}

/** JSON if the payload is JSON, else its text (capped). */
function readValue(payload: Buffer): unknown {
  const text = payload.toString('utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text.slice(0, MAX_VALUE_TEXT);
  }
}
