// Defensive reading of sensor payloads and of names taken from them: every
// convention goes through here, so that a bad byte gives one ConventionPayloadError.
import { ConventionPayloadError, type ConventionName } from '../convention.ts';
import { MAX_NAME_LENGTH, MAX_PAYLOAD_BYTES } from './options.ts';

const decoder = new TextDecoder('utf-8', { fatal: true });

/** The payload as UTF-8 text; refuses oversized or invalid UTF-8 payloads. */
export function payloadText(
  convention: ConventionName,
  topic: string,
  payload: Buffer,
  maxBytes = MAX_PAYLOAD_BYTES,
): string {
  if (payload.length > maxBytes) {
    throw payloadError(
      convention,
      topic,
      `payload of ${payload.length} bytes is over the ${maxBytes}-byte cap`,
    );
  }
  try {
    return decoder.decode(payload);
  } catch {
    throw payloadError(convention, topic, 'payload is not UTF-8');
  }
}

/** The payload parsed as JSON; refuses what payloadText refuses and invalid JSON. */
export function payloadJson(
  convention: ConventionName,
  topic: string,
  payload: Buffer,
  maxBytes = MAX_PAYLOAD_BYTES,
): unknown {
  const text = payloadText(convention, topic, payload, maxBytes);
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw payloadError(convention, topic, 'payload is not JSON');
  }
}

/** The payload as a JSON object (not an array, not null). */
export function payloadObject(
  convention: ConventionName,
  topic: string,
  payload: Buffer,
  maxBytes = MAX_PAYLOAD_BYTES,
): Record<string, unknown> {
  const value = payloadJson(convention, topic, payload, maxBytes);
  if (!isObject(value)) {
    throw payloadError(convention, topic, 'payload is not a JSON object');
  }
  return value;
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A string field, or undefined when absent or of another type; capped in length. */
export function stringField(obj: Record<string, unknown>, key: string): string | undefined {
  const v = obj[key];
  return typeof v === 'string' && v.length <= MAX_NAME_LENGTH ? v : undefined;
}

/**
 * Whether `name` may become part of a topic we subscribe or publish to:
 * no wildcards, no NUL, no empty or `..` level, not too long. A name that
 * fails would let a payload widen our subscriptions or aim a command elsewhere.
 */
export function isTopicSafe(name: string, allowSlash: boolean): boolean {
  if (name.length === 0 || name.length > MAX_NAME_LENGTH) return false;
  if (name.includes('+') || name.includes('#') || name.includes('\0')) return false;
  if (name.startsWith('$')) return false;
  const levels = name.split('/');
  if (!allowSlash && levels.length > 1) return false;
  return levels.every((l) => l.length > 0 && l !== '..' && l !== '.');
}

/** The one error for a bad payload on `topic`: the topic (shortened), then why. */
export function payloadError(
  convention: ConventionName,
  topic: string,
  why: string,
): ConventionPayloadError {
  return new ConventionPayloadError(convention, `${shortTopic(topic)}: ${why}`);
}

/** A topic shortened for an error message: a 10,000-character topic must not make a 10,000-character log line. */
export function shortTopic(topic: string): string {
  return topic.length <= 120 ? topic : `${topic.slice(0, 117)}...`;
}
