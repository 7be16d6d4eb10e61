import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { PeerProcess, requireProgram } from './processes.ts';
import type { Namespace } from './netns.ts';
import { scratchDir } from './workdir.ts';

// avahi-daemon confined to one test namespace, with a private system D-Bus.
//
// - It runs inside a member namespace of netns.ts (so multicast can only reach
//   that namespace's veth) and allow-interfaces names only that veth.
// - Its pid file and socket paths (/run/avahi-daemon/...) and its static
//   services dir (/etc/avahi/services) are compiled in; `ip netns exec` already
//   gives the daemon a private mount namespace, so we bind-mount our own
//   directories over /run and /etc/avahi/services there. That lets several
//   daemons (and a system one) run side by side.
// - avahi-publish-service talks to the daemon over D-Bus, so each daemon gets
//   its own dbus-daemon (a direct child, --nofork) whose socket is
//   <dir>/run/dbus/system_bus_socket, i.e. /run/dbus/system_bus_socket as the
//   daemon sees it; clients get DBUS_SYSTEM_BUS_ADDRESS pointing at it.

const AVAHI_DAEMON = '/usr/sbin/avahi-daemon';
const DBUS_DAEMON = '/usr/bin/dbus-daemon';
const PUBLISH = '/usr/bin/avahi-publish-service';
const BROWSE = '/usr/bin/avahi-browse';
const MOUNT = '/usr/bin/mount';

export interface AvahiOptions {
  /** The namespace to run in; the daemon uses only its interface. */
  ns: Namespace;
  /** mDNS host name without `.local` (default: unique per daemon). */
  hostName?: string;
}

export interface ServiceToPublish {
  name: string;
  /** e.g. '_http._tcp' */
  type: string;
  port: number;
  txt?: Record<string, string>;
}

export interface PublishedService {
  readonly name: string;
  readonly type: string;
  readonly port: number;
  /** Withdraws the service (avahi sends goodbye packets) by stopping its publisher. */
  unpublish(): Promise<void>;
}

/** One resolved line of `avahi-browse -p -r`, as seen from inside the daemon's namespace. */
export interface BrowsedService {
  interface: string;
  protocol: string;
  name: string;
  type: string;
  domain: string;
  host: string;
  address: string;
  port: number;
  txt: Record<string, string>;
}

export interface Avahi {
  readonly ns: Namespace;
  readonly hostName: string;
  readonly dir: string;
  readonly configFile: string;
  /** The daemon's PID (it is exec'd by `ip netns exec`, so this is avahi-daemon itself). */
  readonly pid: number | undefined;
  readonly dbusAddress: string;
  /** process.env plus DBUS_SYSTEM_BUS_ADDRESS, for avahi client programs. */
  readonly env: NodeJS.ProcessEnv;
  publishService(service: ServiceToPublish): Promise<PublishedService>;
  /** Runs `avahi-browse -a -t -r -p -k` inside the namespace and returns the resolved services. */
  browse(): Promise<BrowsedService[]>;
  /** Stops publishers, the daemon and its D-Bus, by PID. Idempotent. */
  stop(): Promise<void>;
}

let daemonCount = 0;

export async function startAvahi(opts: AvahiOptions): Promise<Avahi> {
  for (const p of [AVAHI_DAEMON, DBUS_DAEMON, PUBLISH, BROWSE, MOUNT]) requireProgram(p);
  daemonCount += 1;
  const hostName = opts.hostName ?? `eb${process.pid.toString(36)}-avahi${daemonCount}`;
  const dir = scratchDir(`avahi-${opts.ns.role}`);
  const runDir = path.join(dir, 'run');
  const servicesDir = path.join(dir, 'services');
  mkdirSync(path.join(runDir, 'dbus'), { recursive: true });
  mkdirSync(path.join(runDir, 'avahi-daemon'));
  mkdirSync(servicesDir);

  const socket = path.join(runDir, 'dbus', 'system_bus_socket');
  const dbusAddress = `unix:path=${socket}`;
  const dbusConfig = path.join(dir, 'dbus.conf');
  writeFileSync(dbusConfig, dbusConfigText(socket));
  const configFile = path.join(dir, 'avahi-daemon.conf');
  writeFileSync(configFile, avahiConfigText(hostName, opts.ns.ifname));
  const env = { ...process.env, DBUS_SYSTEM_BUS_ADDRESS: dbusAddress };

  const publishers = new Set<PeerProcess>();
  let published = 0;
  const procs: { dbus?: PeerProcess; daemon?: PeerProcess } = {};
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await Promise.all([...publishers].map((p) => p.stop(2000)));
    await procs.daemon?.stop();
    await procs.dbus?.stop();
  };

  try {
    // D-Bus runs in the root namespace: it only uses a Unix socket in our directory.
    const bus = new PeerProcess({
      name: 'dbus-daemon',
      command: DBUS_DAEMON,
      args: [`--config-file=${dbusConfig}`, '--nofork', '--print-address'],
      logDir: dir,
    });
    procs.dbus = bus;
    await bus.waitUntil(
      'the private D-Bus to listen',
      () => (bus.tail().includes(dbusAddress) ? true : undefined),
      10000,
    );

    const avahi = opts.ns.spawn({
      name: 'avahi-daemon',
      command: '/bin/sh',
      args: [
        '-c',
        `${MOUNT} --bind "$1" /run && ${MOUNT} --bind "$2" /etc/avahi/services && shift 2 && exec "$@"`,
        'avahi-in-netns',
        runDir,
        servicesDir,
        AVAHI_DAEMON,
        '-f',
        configFile,
        '--no-drop-root',
        '--no-chroot',
        '--no-rlimits',
        '--no-proc-title',
      ],
      logDir: dir,
      env,
    });
    procs.daemon = avahi;
    await avahi.waitUntil(
      'avahi-daemon to start up',
      () => (avahi.tail().includes('Server startup complete') ? true : undefined),
      15000,
    );
  } catch (err) {
    await stop();
    throw err;
  }

  return {
    ns: opts.ns,
    hostName,
    dir,
    configFile,
    dbusAddress,
    env,
    get pid() {
      const d = procs.daemon;
      return d !== undefined && !d.exited ? d.pid : undefined;
    },
    async publishService(service) {
      if (stopped) throw new Error('avahi is stopped');
      const txt = Object.entries(service.txt ?? {}).map(([k, v]) => `${k}=${v}`);
      const p = new PeerProcess({
        name: `avahi-publish-${++published}`,
        command: PUBLISH,
        args: ['-s', service.name, service.type, String(service.port), ...txt],
        logDir: dir,
        env,
      });
      publishers.add(p);
      try {
        await p.waitUntil(
          `'${service.name}' to be established`,
          () => (p.tail().includes('Established under name') ? true : undefined),
          15000,
        );
      } catch (err) {
        await p.stop();
        publishers.delete(p);
        throw err;
      }
      return {
        name: service.name,
        type: service.type,
        port: service.port,
        async unpublish() {
          await p.stop();
          publishers.delete(p);
        },
      };
    },
    async browse() {
      const { stdout } = await opts.ns.exec(BROWSE, ['-a', '-t', '-r', '-p', '-k'], {
        env,
        timeout: 15000,
      });
      return parseBrowse(stdout);
    },
    stop,
  };
}

/** Reads avahi-daemon.conf into `section.key` -> value (for confinement assertions). */
export function readAvahiConfig(file: string): Record<string, string> {
  const out: Record<string, string> = {};
  let section = '';
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const s = /^\[(.+)\]$/.exec(line.trim());
    if (s?.[1] !== undefined) section = s[1];
    const kv = /^([\w-]+)=(.*)$/.exec(line.trim());
    if (kv?.[1] !== undefined && kv[2] !== undefined) out[`${section}.${kv[1]}`] = kv[2];
  }
  return out;
}

function avahiConfigText(hostName: string, ifname: string): string {
  return `[server]
host-name=${hostName}
domain-name=local
use-ipv4=yes
use-ipv6=no
allow-interfaces=${ifname}
enable-dbus=yes
[wide-area]
enable-wide-area=no
[publish]
publish-hinfo=no
publish-workstation=no
publish-aaaa-on-ipv4=no
[reflector]
enable-reflector=no
[rlimits]
`;
}

function dbusConfigText(socket: string): string {
  // A bus for the test only: root owns it and may do anything on it.
  return `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=${socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="root"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
`;
}

/** Parses resolved ('=') lines of `avahi-browse -p`; names use \DDD decimal escapes. */
export function parseBrowse(stdout: string): BrowsedService[] {
  const unescape = (s: string): string =>
    s.replace(/\\(\d{3})/g, (_m, d: string) => String.fromCharCode(Number(d)));
  const out: BrowsedService[] = [];
  for (const line of stdout.split('\n')) {
    if (!line.startsWith('=;')) continue;
    const f = line.split(';');
    const [, iface, protocol, name, type, domain, host, address, port] = f;
    if (port === undefined) continue;
    const txt: Record<string, string> = {};
    for (const m of f
      .slice(9)
      .join(';')
      .matchAll(/"((?:[^"\\]|\\.)*)"/g)) {
      const entry = m[1] ?? '';
      const eq = entry.indexOf('=');
      if (eq > 0) txt[entry.slice(0, eq)] = entry.slice(eq + 1);
    }
    out.push({
      interface: iface ?? '',
      protocol: protocol ?? '',
      name: unescape(name ?? ''),
      type: type ?? '',
      domain: domain ?? '',
      host: host ?? '',
      address: address ?? '',
      port: Number(port),
      txt,
    });
  }
  return out;
}
