// Kubernetes label and field selectors, parsed and matched the way the API
// server does, so that one query gives the same answer on both registry back
// ends (the Kubernetes one sends the string to the server; the embedded one
// matches here).
import type { Device, Discovery, LabelSelector } from '../api/types.ts';
import { clip, quote } from '../util/quote.ts';
import { handlerNameOf } from './spec-valid.ts';

/** A selector that cannot be parsed or is not valid; never retried. */
export class SelectorError extends Error {
  readonly code = 'EDGEBRIDGE_INVALID_SELECTOR';
  readonly selector: string;
  constructor(selector: string, reason: string) {
    super(`invalid selector ${quote(selector)}: ${reason}`);
    this.name = 'SelectorError';
    this.selector = selector;
  }
}

/** One requirement of a label selector; `=`/`==` are `in` of one value, `!=` is `notin`. */
export type LabelRequirement =
  | { key: string; operator: 'in' | 'notin'; values: readonly string[] }
  | { key: string; operator: 'exists' | 'doesnotexist' }
  | { key: string; operator: 'gt' | 'lt'; value: number };

/** One requirement of a field selector. */
export interface FieldRequirement {
  field: string;
  operator: '=' | '!=';
  value: string;
}

/** Fields a Device can be selected by (the CRD's selectableFields plus metadata). */
export const DEVICE_FIELDS = [
  'metadata.name',
  'metadata.namespace',
  'spec.handler',
  'spec.discovery',
] as const;

/** Fields a Discovery can be selected by. */
export const DISCOVERY_FIELDS = [
  'metadata.name',
  'metadata.namespace',
  'spec.handler.name',
] as const;

const NAME_PART = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const INTEGER = /^[-+]?[0-9]{1,15}$/;

/** Why `key` is not a valid label key (`[prefix/]name`), or undefined if it is. */
export function labelKeyProblem(key: string): string | undefined {
  const parts = key.split('/');
  if (parts.length > 2) return `label key ${quote(key)} has more than one '/'`;
  const name = parts.length === 2 ? (parts[1] ?? '') : key;
  if (parts.length === 2) {
    const prefix = parts[0] ?? '';
    if (prefix.length === 0 || prefix.length > 253 || !DNS_SUBDOMAIN.test(prefix)) {
      return `label key prefix ${quote(prefix)} must be a DNS subdomain`;
    }
  }
  if (name.length === 0 || name.length > 63 || !NAME_PART.test(name)) {
    return (
      `label key name ${quote(name)} must be 1-63 characters of letters, digits, ` +
      `'-', '_' or '.', starting and ending with a letter or digit`
    );
  }
  return undefined;
}

/** Why `value` is not a valid label value, or undefined if it is (empty is valid). */
export function labelValueProblem(value: string): string | undefined {
  if (value === '') return undefined;
  if (value.length > 63 || !NAME_PART.test(value)) {
    return (
      `label value ${quote(value)} must be at most 63 characters of letters, digits, ` +
      `'-', '_' or '.', starting and ending with a letter or digit`
    );
  }
  return undefined;
}

type Token =
  | { kind: 'id'; text: string }
  | { kind: '(' | ')' | ',' | '=' | '==' | '!=' | '!' | '>' | '<' | 'in' | 'notin' | 'end' };

const SPECIAL = new Set(['!', '=', '>', '<', '(', ')', ',']);
const WHITESPACE = /\s/;

function tokenize(input: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < input.length) {
    const c = input.charAt(i);
    if (WHITESPACE.test(c)) {
      i++;
    } else if (c === '=' || c === '!') {
      const two = input.slice(i, i + 2);
      if (two === '==' || two === '!=') {
        tokens.push({ kind: two });
        i += 2;
      } else {
        tokens.push({ kind: c });
        i++;
      }
    } else if (SPECIAL.has(c)) {
      tokens.push({ kind: c as '(' | ')' | ',' | '>' | '<' });
      i++;
    } else {
      let j = i;
      while (j < input.length && !SPECIAL.has(input.charAt(j)) && !WHITESPACE.test(input.charAt(j)))
        j++;
      const text = input.slice(i, j);
      if (text === 'in' || text === 'notin') tokens.push({ kind: text });
      else tokens.push({ kind: 'id', text });
      i = j;
    }
  }
  tokens.push({ kind: 'end' });
  return tokens;
}

function describe(token: Token): string {
  if (token.kind === 'id') return `'${clip(token.text)}'`;
  if (token.kind === 'end') return 'the end';
  return `'${token.kind}'`;
}

/**
 * Parses a label selector string ("a=b,c in (x,y),!d"). The empty string
 * selects everything. Throws a SelectorError for bad syntax or bad keys/values.
 */
export function parseLabelSelector(selector: string): LabelRequirement[] {
  const fail = (reason: string): never => {
    throw new SelectorError(selector, reason);
  };
  const tokens = tokenize(selector);
  let pos = 0;
  const peek = (): Token => tokens[pos] ?? { kind: 'end' };
  const next = (): Token => tokens[pos++] ?? { kind: 'end' };

  const key = (): string => {
    const t = next();
    if (t.kind !== 'id') return fail(`found ${describe(t)}, expected a label key`);
    const problem = labelKeyProblem(t.text);
    return problem === undefined ? t.text : fail(problem);
  };
  const value = (): string => {
    const t = peek();
    // "a=" selects the empty value, as in Kubernetes.
    if (t.kind === ',' || t.kind === 'end' || t.kind === ')') return '';
    next();
    if (t.kind !== 'id') return fail(`found ${describe(t)}, expected a label value`);
    const problem = labelValueProblem(t.text);
    return problem === undefined ? t.text : fail(problem);
  };
  const valueSet = (): string[] => {
    const open = next();
    if (open.kind !== '(') return fail(`found ${describe(open)}, expected '('`);
    const values: string[] = [];
    for (;;) {
      values.push(value());
      const t = next();
      if (t.kind === ')') return values;
      if (t.kind !== ',') return fail(`found ${describe(t)}, expected ',' or ')'`);
    }
  };
  const integer = (): number => {
    const t = next();
    if (t.kind !== 'id' || !INTEGER.test(t.text)) {
      return fail(`found ${describe(t)}, expected an integer`);
    }
    return Number(t.text);
  };

  const requirement = (): LabelRequirement => {
    if (peek().kind === '!') {
      next();
      return { key: key(), operator: 'doesnotexist' };
    }
    const k = key();
    const op = peek();
    switch (op.kind) {
      case ',':
      case 'end':
        return { key: k, operator: 'exists' };
      case '=':
      case '==':
        next();
        return { key: k, operator: 'in', values: [value()] };
      case '!=':
        next();
        return { key: k, operator: 'notin', values: [value()] };
      case 'in':
      case 'notin':
        next();
        return { key: k, operator: op.kind, values: valueSet() };
      case '>':
        next();
        return { key: k, operator: 'gt', value: integer() };
      case '<':
        next();
        return { key: k, operator: 'lt', value: integer() };
      default:
        return fail(`found ${describe(op)} after '${clip(k)}', expected an operator`);
    }
  };

  const requirements: LabelRequirement[] = [];
  if (peek().kind === 'end') return requirements;
  for (;;) {
    requirements.push(requirement());
    const t = next();
    if (t.kind === 'end') return requirements;
    if (t.kind !== ',') return fail(`found ${describe(t)}, expected ',' or the end`);
  }
}

/** Whether labels satisfy every requirement (an empty list matches everything). */
export function matchesLabels(
  requirements: readonly LabelRequirement[],
  labels: Readonly<Record<string, string>> | undefined,
): boolean {
  const own = labels ?? {};
  return requirements.every((r) => {
    const has = Object.hasOwn(own, r.key);
    const actual = has ? own[r.key] : undefined;
    switch (r.operator) {
      case 'exists':
        return has;
      case 'doesnotexist':
        return !has;
      case 'in':
        return actual !== undefined && r.values.includes(actual);
      case 'notin':
        return actual === undefined || !r.values.includes(actual);
      case 'gt':
      case 'lt': {
        if (actual === undefined || !INTEGER.test(actual)) return false;
        const n = Number(actual);
        return r.operator === 'gt' ? n > r.value : n < r.value;
      }
    }
  });
}

/** Splits on unescaped `sep`; escapes are kept for the caller to undo. */
function splitUnescaped(input: string, sep: string): string[] {
  const parts: string[] = [];
  let current = '';
  for (let i = 0; i < input.length; i++) {
    const c = input.charAt(i);
    if (c === '\\' && i + 1 < input.length) {
      current += c + input.charAt(i + 1);
      i++;
    } else if (c === sep) {
      parts.push(current);
      current = '';
    } else {
      current += c;
    }
  }
  parts.push(current);
  return parts;
}

/**
 * Parses a field selector ("spec.handler=onvif,metadata.name!=x") over the
 * given supported fields; `\,` `\=` `\\` escape, as in Kubernetes. The empty
 * string selects everything.
 */
export function parseFieldSelector(
  selector: string,
  supported: readonly string[],
): FieldRequirement[] {
  const fail = (reason: string): never => {
    throw new SelectorError(selector, reason);
  };
  const requirements: FieldRequirement[] = [];
  for (const rawTerm of splitUnescaped(selector, ',')) {
    const term = rawTerm.trim();
    if (term === '') continue;
    let found: { at: number; op: '!=' | '==' | '=' } | undefined;
    for (let i = 0; i < term.length && found === undefined; i++) {
      if (term.charAt(i) === '\\') {
        i++;
        continue;
      }
      for (const op of ['!=', '==', '='] as const) {
        if (term.startsWith(op, i)) {
          found = { at: i, op };
          break;
        }
      }
    }
    if (found === undefined) return fail(`${quote(term)} is not field=value or field!=value`);
    const field = term.slice(0, found.at).trim();
    if (!supported.includes(field)) {
      return fail(`field ${quote(field)} is not supported (supported: ${supported.join(', ')})`);
    }
    const value = unescapeFieldValue(term.slice(found.at + found.op.length).trim(), fail);
    requirements.push({ field, operator: found.op === '!=' ? '!=' : '=', value });
  }
  return requirements;
}

function unescapeFieldValue(raw: string, fail: (reason: string) => never): string {
  let out = '';
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charAt(i);
    if (c !== '\\') {
      out += c;
      continue;
    }
    const escaped = raw.charAt(++i);
    if (escaped !== '\\' && escaped !== ',' && escaped !== '=') {
      return fail(`invalid escape ${quote('\\' + escaped)} in field value ${quote(raw)}`);
    }
    out += escaped;
  }
  return out;
}

/** Whether an object's field values satisfy every requirement (missing fields are ""). */
export function matchesFields(
  requirements: readonly FieldRequirement[],
  fields: Readonly<Record<string, string>>,
): boolean {
  return requirements.every((r) => {
    const actual = Object.hasOwn(fields, r.field) ? (fields[r.field] ?? '') : '';
    return r.operator === '=' ? actual === r.value : actual !== r.value;
  });
}

/** The selectable field values of a Device. */
export function deviceFields(device: Device): Record<string, string> {
  return {
    'metadata.name': device.metadata.name,
    'metadata.namespace': device.metadata.namespace ?? 'default',
    'spec.handler': device.spec.handler,
    'spec.discovery': device.spec.discovery,
  };
}

/** The selectable field values of a Discovery. */
export function discoveryFields(discovery: Discovery): Record<string, string> {
  return {
    'metadata.name': discovery.metadata.name,
    'metadata.namespace': discovery.metadata.namespace ?? 'default',
    'spec.handler.name': handlerNameOf(discovery),
  };
}

const EXPRESSION_OPERATORS = new Map([
  ['In', 'in'],
  ['NotIn', 'notin'],
  ['Exists', 'exists'],
  ['DoesNotExist', 'doesnotexist'],
] as const);

/**
 * The requirements of a LabelSelector object (matchLabels and matchExpressions),
 * validated as the API server does. Throws a SelectorError if it is not valid.
 */
export function labelSelectorRequirements(selector: LabelSelector): LabelRequirement[] {
  const text = JSON.stringify(selector);
  const fail = (reason: string): never => {
    throw new SelectorError(text, reason);
  };
  const checkKey = (key: unknown): string => {
    if (typeof key !== 'string') return fail('a key is not a string');
    const problem = labelKeyProblem(key);
    return problem === undefined ? key : fail(problem);
  };
  const checkValue = (value: unknown): string => {
    if (typeof value !== 'string') return fail('a value is not a string');
    const problem = labelValueProblem(value);
    return problem === undefined ? value : fail(problem);
  };
  const requirements: LabelRequirement[] = [];
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) {
    requirements.push({ key: checkKey(key), operator: 'in', values: [checkValue(value)] });
  }
  const expressions: unknown = selector.matchExpressions ?? [];
  if (!Array.isArray(expressions)) return fail('matchExpressions is not a list');
  for (const e of expressions as unknown[]) {
    if (typeof e !== 'object' || e === null) return fail('a match expression is not an object');
    const { key, operator, values } = e as Record<string, unknown>;
    const op = EXPRESSION_OPERATORS.get(operator as 'In');
    if (op === undefined) {
      return fail(`operator ${quote(String(operator))} is not In, NotIn, Exists or DoesNotExist`);
    }
    const k = checkKey(key);
    const list: unknown = values ?? [];
    if (!Array.isArray(list)) return fail(`values of ${quote(k)} is not a list`);
    if (op === 'in' || op === 'notin') {
      if (list.length === 0)
        return fail(`values of ${quote(k)} must not be empty for ${String(operator)}`);
      requirements.push({ key: k, operator: op, values: list.map(checkValue) });
    } else {
      if (list.length !== 0)
        return fail(`values of ${quote(k)} must be empty for ${String(operator)}`);
      requirements.push({ key: k, operator: op });
    }
  }
  return requirements;
}

/**
 * Whether labels match a LabelSelector object (e.g. spec.nodeSelector). An
 * absent or empty selector matches everything. Throws a SelectorError if the
 * selector is not valid.
 */
export function matchLabelSelector(
  selector: LabelSelector | undefined,
  labels: Readonly<Record<string, string>> | undefined,
): boolean {
  if (selector === undefined) return true;
  return matchesLabels(labelSelectorRequirements(selector), labels);
}
