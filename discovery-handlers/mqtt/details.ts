import { validateDetails, type DetailsSchema } from '../details.ts';
import { InvalidDetailsError } from '../handler.ts';
import { CONVENTION_NAMES, type ConventionName } from './convention.ts';
import { hasConvention } from './conventions/index.ts';
import { parseTopicPattern, type TopicPattern } from './topic-pattern.ts';

export interface MqttDetails {
  /** The sensors' broker (mqtt://, mqtts://, ws://, wss://); absent: the node broker. */
  brokerUrl?: string;
  /** Which conventions to follow; default every one this build has. */
  conventions: ConventionName[];
  /** Topic prefix per convention, where it differs from the convention's default. */
  prefixes: Partial<Record<ConventionName, string>>;
  /** Topic patterns with named levels (`sensors/{id}/{metric}`) for sensors that follow no convention. */
  patterns: TopicPattern[];
  /** Devices tracked at most, over all conventions and patterns. */
  maxDevices: number;
  /** Larger sensor messages are dropped (one log line per topic a minute). */
  maxPayloadBytes: number;
}

/** A prefix: topic levels without wildcards, NUL or empty levels. */
const PREFIX = '^[^/+#\\u0000]+(/[^/+#\\u0000]+)*$';

type Checked = Omit<MqttDetails, 'patterns' | 'conventions'> & {
  patterns: string[];
  conventions?: ConventionName[];
};

const schema: DetailsSchema<Checked> = {
  type: 'object',
  properties: {
    brokerUrl: {
      type: 'string',
      maxLength: 2048,
      pattern: '^(mqtt|mqtts|ws|wss)://[^@/\\s]+(/\\S*)?$',
      'x-hint':
        'a URL such as mqtt://host:1883 or mqtts://host:8883, without credentials (they come from MQTT_USERNAME and MQTT_PASSWORD)',
    },
    conventions: {
      type: 'array',
      minItems: 1,
      maxItems: CONVENTION_NAMES.length,
      items: { type: 'string', enum: CONVENTION_NAMES },
    },
    prefixes: {
      type: 'object',
      default: {},
      properties: Object.fromEntries(
        CONVENTION_NAMES.map((n) => [
          n,
          {
            type: 'string',
            maxLength: 256,
            pattern: PREFIX,
            'x-hint': 'topic levels without + or #',
          },
        ]),
      ),
    },
    patterns: {
      type: 'array',
      maxItems: 64,
      default: [],
      items: { type: 'string', minLength: 1, maxLength: 1024 },
    },
    maxDevices: { type: 'integer', minimum: 1, maximum: 100_000, default: 10_000 },
    maxPayloadBytes: { type: 'integer', minimum: 256, maximum: 1_048_576, default: 65_536 },
  },
};

export function parseMqttDetails(details: unknown): MqttDetails {
  const checked = validateDetails(schema, details);
  const patterns = checked.patterns.map((text, i) => {
    try {
      return parseTopicPattern(text);
    } catch (err) {
      throw new InvalidDetailsError(`details.patterns[${i}]: ${(err as Error).message}`);
    }
  });
  const missing = checked.conventions?.find((name) => !hasConvention(name));
  if (missing !== undefined)
    throw new InvalidDetailsError(
      `details.conventions: '${missing}' is not built into this agent (it follows ${CONVENTION_NAMES.filter(hasConvention).join(', ')})`,
    );
  const conventions = [...new Set(checked.conventions ?? CONVENTION_NAMES.filter(hasConvention))];
  return { ...checked, conventions, patterns };
}
