// A claim's prepared devices as a CDI spec (Container Device Interface, JSON):
// per device its env (properties, node broker, topic prefix), device nodes and
// mounts; the container runtime reads it from the CDI directory.
import { randomUUID } from 'node:crypto';
import { mkdir, rename, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { deviceTopicPrefix } from '../dataplane/topics.ts';
import { DRIVER } from './driver.ts';
import { BadKubeletRequestError } from './errors.ts';
import type { NodeDevice } from './node-device.ts';

export const CDI_VERSION = '0.6.0';
export const CDI_KIND = `${DRIVER}/device`;
/** Where container runtimes look for CDI specs by default. */
export const DEFAULT_CDI_DIR = '/var/run/cdi';
/** A property value longer than this stays out of the env (an env block is not a data channel). */
const MAX_ENV_VALUE = 32 * 1024;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** A claim uid as a file-name part and CDI name part (Kubernetes uids are UUIDs). */
const UID = /^[A-Za-z0-9][A-Za-z0-9-]{0,63}$/;

/** One device of a claim, by its name in the pool. */
export interface ClaimDevice {
  draName: string;
  device: NodeDevice;
}

export interface CdiContext {
  /** The node broker's URL for pods, when the agent runs one. */
  brokerUrl?: string;
}

interface CdiDeviceNode {
  path: string;
  hostPath: string;
  permissions?: string;
}
interface CdiMount {
  hostPath: string;
  containerPath: string;
  options: string[];
}
export interface CdiSpec {
  cdiVersion: string;
  kind: string;
  devices: {
    name: string;
    containerEdits: { env: string[]; deviceNodes?: CdiDeviceNode[]; mounts?: CdiMount[] };
  }[];
}

/** Throws a BadKubeletRequestError unless `uid` is safe in a file name and a CDI device name. */
export function checkClaimUid(uid: string): string {
  if (!UID.test(uid))
    throw new BadKubeletRequestError(`claim uid ${JSON.stringify(uid.slice(0, 64))} is not valid`);
  return uid;
}

/** The CDI device name of a claim's device (letters, digits, '-': what CDI allows). */
export function cdiDeviceName(claimUid: string, draName: string): string {
  return `${claimUid}-${draName}`;
}

/** The fully qualified id the kubelet passes to the runtime. */
export function cdiDeviceId(claimUid: string, draName: string): string {
  return `${CDI_KIND}=${cdiDeviceName(claimUid, draName)}`;
}

/** The claim's spec file in `dir`. */
export function cdiSpecFile(dir: string, claimUid: string): string {
  return path.join(dir, `${DRIVER}-device_${checkClaimUid(claimUid)}.json`);
}

/** An absolute, normalised path without NUL, or undefined. */
function safePath(p: unknown): string | undefined {
  if (typeof p !== 'string' || !p.startsWith('/') || p.includes('\u0000')) return undefined;
  return path.posix.normalize(p) === p ? p : undefined;
}

/** The env of one device: its properties that are usable as variables, then edgebridge's own. */
export function deviceEnv(device: NodeDevice, ctx: CdiContext): string[] {
  const env: string[] = [];
  const properties = device.spec.properties ?? {};
  for (const key of Object.keys(properties).sort()) {
    const value = properties[key];
    if (key.startsWith('EDGEBRIDGE_') || !ENV_NAME.test(key) || key.length > 256) continue;
    if (typeof value !== 'string' || value.includes('\u0000') || value.length > MAX_ENV_VALUE)
      continue;
    env.push(`${key}=${value}`);
  }
  env.push(`EDGEBRIDGE_DEVICE=${device.name}`, `EDGEBRIDGE_DEVICE_NAMESPACE=${device.namespace}`);
  env.push(`EDGEBRIDGE_TOPIC_PREFIX=${deviceTopicPrefix(device.namespace, device.name)}`);
  if (ctx.brokerUrl !== undefined) env.push(`EDGEBRIDGE_BROKER_URL=${ctx.brokerUrl}`);
  return env;
}

/** The CDI spec for a claim's devices on this node. */
export function cdiSpecFor(claimUid: string, devices: ClaimDevice[], ctx: CdiContext): CdiSpec {
  checkClaimUid(claimUid);
  return {
    cdiVersion: CDI_VERSION,
    kind: CDI_KIND,
    devices: devices.map(({ draName, device }) => {
      const deviceNodes: CdiDeviceNode[] = [];
      for (const n of device.node.deviceNodes ?? []) {
        const hostPath = safePath(n.hostPath);
        const inContainer = n.containerPath === undefined ? hostPath : safePath(n.containerPath);
        if (hostPath === undefined || inContainer === undefined) continue;
        const permissions =
          typeof n.permissions === 'string' && /^[rwm]{1,3}$/.test(n.permissions)
            ? { permissions: n.permissions }
            : {};
        deviceNodes.push({ path: inContainer, hostPath, ...permissions });
      }
      const mounts: CdiMount[] = [];
      for (const m of device.node.mounts ?? []) {
        const hostPath = safePath(m.hostPath);
        const containerPath = safePath(m.containerPath);
        if (hostPath === undefined || containerPath === undefined) continue;
        mounts.push({
          hostPath,
          containerPath,
          options: ['bind', m.readOnly === true ? 'ro' : 'rw'],
        });
      }
      return {
        name: cdiDeviceName(claimUid, draName),
        containerEdits: {
          env: deviceEnv(device, ctx),
          ...(deviceNodes.length > 0 ? { deviceNodes } : {}),
          ...(mounts.length > 0 ? { mounts } : {}),
        },
      };
    }),
  };
}

/** Writes the spec whole (a temporary file renamed over it): a runtime never reads half of one. */
export async function writeCdiSpec(dir: string, claimUid: string, spec: CdiSpec): Promise<string> {
  const file = cdiSpecFile(dir, claimUid);
  await mkdir(dir, { recursive: true });
  const tmp = path.join(dir, `.${path.basename(file)}.${randomUUID()}.tmp`);
  try {
    await writeFile(tmp, JSON.stringify(spec, null, 2) + '\n', { mode: 0o644 });
    await rename(tmp, file);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  return file;
}

/** Removes a claim's spec; a spec that is not there is fine (Unprepare may come twice). */
export async function removeCdiSpec(dir: string, claimUid: string): Promise<void> {
  await unlink(cdiSpecFile(dir, claimUid)).catch((err: unknown) => {
    if ((err as { code?: unknown }).code !== 'ENOENT') throw err;
  });
}
