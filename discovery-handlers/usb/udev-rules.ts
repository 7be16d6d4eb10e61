// The match part of udev rules (man 7 udev), as Akri users write them for its
// udev handler: comma-separated `KEY=="pattern"` / `KEY!="pattern"` pairs,
// all of which must hold. Assignments (`=`, `+=`, `:=`) and keys that run
// programs or test files are refused: discovery only matches.
import { compileGlob, type GlobMatcher } from './glob.ts';

/** One device in sysfs as a rule sees it (the USB device or one of its interfaces' nodes). */
export interface RuleNode {
  /** Kernel name, e.g. `1-1.2`, `1-1.2:1.0`, `ttyACM0`. */
  kernel: string;
  subsystem?: string;
  driver?: string;
  /** Device path below /sys, e.g. `/devices/pci0000:00/.../1-1.2`. */
  devpath: string;
  /** A sysfs attribute of this node (trailing newline removed), or undefined. */
  attr(name: string): string | undefined;
  /** The node's udev properties (its uevent file, and udev's database where there is one). */
  env: Readonly<Record<string, string>>;
}

/** Keys a rule may use: the node's own (KERNEL, ATTR{x}, ...) and its parents' (KERNELS, ATTRS{x}, ...). */
const KEYS = new Set([
  'ACTION',
  'DEVPATH',
  'KERNEL',
  'SUBSYSTEM',
  'DRIVER',
  'ATTR',
  'ENV',
  'KERNELS',
  'SUBSYSTEMS',
  'DRIVERS',
  'ATTRS',
]);
const WITH_NAME = new Set(['ATTR', 'ATTRS', 'ENV']);

interface Match {
  key: string;
  /** The `{...}` part of ATTR/ATTRS/ENV. */
  name?: string;
  negate: boolean;
  test: GlobMatcher;
}

/** A parsed rule: every match must hold. */
export interface UdevRule {
  /** The rule as written, for logs and messages. */
  text: string;
  matches: readonly Match[];
}

/** A rule that cannot be used; the message names the key or the spot. */
export class UdevRuleError extends Error {
  readonly code = 'EDGEBRIDGE_UDEV_RULE';
  constructor(message: string) {
    super(message);
    this.name = 'UdevRuleError';
  }
}

const PAIR = /^([A-Z_]+)(?:\{([^{}]*)\})?\s*(==|!=|\+=|-=|:=|=)\s*"((?:[^"\\]|\\.)*)"\s*(?:,\s*|$)/;

/** Parses one rule (line continuations `\`+newline allowed); throws a UdevRuleError. */
export function parseUdevRule(text: string): UdevRule {
  const joined = text.replace(/\\\r?\n/g, ' ').trim();
  if (/[\r\n]/.test(joined))
    throw new UdevRuleError('one rule per entry (end a line with \\ to continue it)');
  const matches: Match[] = [];
  let rest = joined;
  while (rest.length > 0) {
    const m = PAIR.exec(rest);
    if (m === null) {
      const near = rest.slice(0, 40);
      throw new UdevRuleError(`expected KEY=="value" at '${near}'`);
    }
    const [whole, key = '', name, op = '', raw = ''] = m;
    if (!KEYS.has(key)) throw new UdevRuleError(`unsupported key ${key}`);
    if (WITH_NAME.has(key) !== (name !== undefined))
      throw new UdevRuleError(
        WITH_NAME.has(key) ? `${key} needs a name: ${key}{name}` : `${key} takes no {name}`,
      );
    if (name !== undefined && !/^[A-Za-z0-9_.:/-]{1,128}$/.test(name))
      throw new UdevRuleError(`${key}{${name.slice(0, 40)}}: not a valid name`);
    if (name?.split('/').includes('..'))
      throw new UdevRuleError(`${key}{${name}}: '..' is not allowed`);
    if (op !== '==' && op !== '!=')
      throw new UdevRuleError(
        `${key}${name !== undefined ? `{${name}}` : ''}${op}: only == and != match; discovery does not assign`,
      );
    const pattern = raw.replace(/\\(.)/g, '$1');
    let test: GlobMatcher;
    try {
      test = compileGlob(pattern);
    } catch {
      throw new UdevRuleError(`${key}: bad pattern "${pattern.slice(0, 40)}"`);
    }
    matches.push({ key, ...(name !== undefined ? { name } : {}), negate: op === '!=', test });
    rest = rest.slice(whole.length);
  }
  if (matches.length === 0) throw new UdevRuleError('empty rule');
  return { text: joined, matches };
}

/**
 * Whether `rule` matches `chain`: the node first, then its parents up the
 * device tree. Keys without S look at the node; KERNELS, SUBSYSTEMS, DRIVERS
 * and ATTRS hold if one parent (or the node) fits all of them at once, as in
 * udev. A missing value never matches `==` and always matches `!=`.
 */
export function ruleMatches(rule: UdevRule, chain: readonly RuleNode[]): boolean {
  const node = chain[0];
  if (node === undefined) return false;
  const own = rule.matches.filter((m) => !m.key.endsWith('S'));
  const parents = rule.matches.filter((m) => m.key.endsWith('S'));
  if (!own.every((m) => holds(m, node))) return false;
  return parents.length === 0 || chain.some((n) => parents.every((m) => holds(m, n)));
}

function holds(m: Match, node: RuleNode): boolean {
  const value = valueOf(m, node);
  const fits = value !== undefined && m.test(value);
  return m.negate ? !fits : fits;
}

function valueOf(m: Match, node: RuleNode): string | undefined {
  switch (m.key) {
    case 'ACTION':
      return 'add';
    case 'DEVPATH':
      return node.devpath;
    case 'KERNEL':
    case 'KERNELS':
      return node.kernel;
    case 'SUBSYSTEM':
    case 'SUBSYSTEMS':
      return node.subsystem;
    case 'DRIVER':
    case 'DRIVERS':
      return node.driver;
    case 'ATTR':
    case 'ATTRS':
      return node.attr(m.name ?? '');
    case 'ENV':
      return Object.hasOwn(node.env, m.name ?? '') ? node.env[m.name ?? ''] : undefined;
    default:
      return undefined;
  }
}
