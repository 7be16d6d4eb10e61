import { execFile, spawnSync, type ExecFileOptions } from 'node:child_process';
import { promisify } from 'node:util';
import { PeerProcess, requireProgram } from './processes.ts';

// Test networks live entirely in network namespaces that this module creates:
// member namespaces, each with one veth end, joined through a bridge in a
// separate "hub" namespace (or, for two members, by one direct veth pair).
// Nothing is added to the root namespace, so test multicast cannot leave
// through the machine's real interface, and the test process itself never
// joins a namespace: programs that use the test network run inside one via
// `ip netns exec`.

const run = promisify(execFile);

export interface NetworkOptions {
  /** Roles of the member namespaces, e.g. ['camera', 'agent']; each gets one address. */
  members: string[];
  /** 'bridge' (default): every member is cabled to a bridge. 'pair': exactly two members joined by one veth pair. */
  topology?: 'bridge' | 'pair';
}

export interface SpawnInNamespaceOptions {
  name: string;
  command: string;
  args: string[];
  logDir: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export interface Namespace {
  readonly role: string;
  /** Kernel name of the namespace (for `ip netns exec`, `ip -n`). */
  readonly name: string;
  /** The member's interface inside its namespace. */
  readonly ifname: string;
  /** IPv4 address of `ifname`, e.g. 10.213.7.2. */
  readonly address: string;
  /** address/prefix, e.g. 10.213.7.2/24. */
  readonly cidr: string;
  /** The `ip netns exec` command line that runs `command args` inside this namespace. */
  wrap(command: string, args: string[]): { command: string; args: string[] };
  /** Runs a program to completion inside the namespace; rejects on a non-zero exit. */
  exec(
    command: string,
    args: string[],
    opts?: ExecFileOptions,
  ): Promise<{ stdout: string; stderr: string }>;
  /** Starts a long-running program inside the namespace; `ip netns exec` execs it, so its PID is the program's. */
  spawn(opts: SpawnInNamespaceOptions): PeerProcess;
}

export interface Network {
  /** Prefix of every namespace name of this network (members are `<id>-<role>`, the bridge's is `<id>-hub`). */
  readonly id: string;
  /** e.g. 10.213.7.0/24 */
  readonly subnet: string;
  readonly prefixLength: number;
  readonly members: readonly Namespace[];
  /** The member with this role; throws if there is none. */
  ns(role: string): Namespace;
  /** Stops the processes spawned in the namespaces and deletes every namespace (and so every link). Idempotent. */
  destroy(): Promise<void>;
}

const IP = '/usr/sbin/ip';
const MEMBER_IF = 'eb0';
const BRIDGE_IF = 'ebbr0';

let networkCount = 0;
const liveNamespaces = new Set<string>();

// If the test process exits without destroy() (a crash, process.exit), still remove our namespaces.
process.on('exit', () => {
  for (const name of liveNamespaces) spawnSync(IP, ['netns', 'del', name]);
});

/** Creates namespaces for `members`, cabled together, with addresses in a private /24 and a multicast route. */
export async function createNetwork(opts: NetworkOptions): Promise<Network> {
  requireProgram(IP);
  const topology = opts.topology ?? 'bridge';
  if (opts.members.length === 0 || new Set(opts.members).size !== opts.members.length) {
    throw new Error(
      `createNetwork: members must be distinct and non-empty, got ${JSON.stringify(opts.members)}`,
    );
  }
  if (topology === 'pair' && opts.members.length !== 2)
    throw new Error('createNetwork: topology "pair" needs exactly two members');
  if (opts.members.length > 200) throw new Error('createNetwork: at most 200 members');

  networkCount += 1;
  // Short, unique per process and per network: eb<pid base36>n<count>-<role>.
  const id = `eb${process.pid.toString(36)}n${networkCount}`;
  // The subnet only exists inside our namespaces; varying it per network just makes logs easier to tell apart.
  const third = ((process.pid + networkCount) % 250) + 1;
  const subnet = `10.213.${third}.0/24`;

  const created: string[] = [];
  const processes: PeerProcess[] = [];
  let destroyed = false;

  const addNamespace = async (name: string): Promise<void> => {
    await ip(['netns', 'add', name]);
    created.push(name);
    liveNamespaces.add(name);
    await ip(['-n', name, 'link', 'set', 'lo', 'up']);
  };

  const destroy = async (): Promise<void> => {
    if (destroyed) return;
    destroyed = true;
    // A process still inside a namespace would keep it (and its links) alive after `ip netns del`.
    await Promise.all(processes.map((p) => p.stop(2000)));
    for (const name of created.reverse()) {
      await ip(['netns', 'del', name]).catch(() => undefined);
      liveNamespaces.delete(name);
    }
  };

  try {
    const members: Namespace[] = [];
    for (const [i, role] of opts.members.entries()) {
      const name = `${id}-${role}`;
      await addNamespace(name);
      const address = `10.213.${third}.${i + 1}`;
      members.push(makeNamespace(role, name, address, processes));
    }

    if (topology === 'pair') {
      const [a, b] = members as [Namespace, Namespace];
      await ip([
        '-n',
        a.name,
        'link',
        'add',
        MEMBER_IF,
        'type',
        'veth',
        'peer',
        'name',
        MEMBER_IF,
        'netns',
        b.name,
      ]);
    } else {
      const hub = `${id}-hub`;
      await addNamespace(hub);
      await ip(['-n', hub, 'link', 'add', BRIDGE_IF, 'type', 'bridge']);
      // No snooping: with no multicast router on the bridge, every group's traffic reaches every port at once.
      await ip(['-n', hub, 'link', 'set', BRIDGE_IF, 'type', 'bridge', 'mcast_snooping', '0']);
      await ip(['-n', hub, 'link', 'set', BRIDGE_IF, 'up']);
      for (const [i, m] of members.entries()) {
        // Created inside the hub with the far end moved straight into the member: the root namespace never sees either.
        const port = `ebp${i}`;
        await ip([
          '-n',
          hub,
          'link',
          'add',
          port,
          'type',
          'veth',
          'peer',
          'name',
          MEMBER_IF,
          'netns',
          m.name,
        ]);
        await ip(['-n', hub, 'link', 'set', port, 'master', BRIDGE_IF]);
        await ip(['-n', hub, 'link', 'set', port, 'up']);
      }
    }

    for (const m of members) {
      await ip(['-n', m.name, 'addr', 'add', m.cidr, 'dev', MEMBER_IF]);
      await ip(['-n', m.name, 'link', 'set', MEMBER_IF, 'up']);
      // Multicast (mDNS, WS-Discovery) needs a route; there is no default route in a member namespace.
      await ip(['-n', m.name, 'route', 'add', '224.0.0.0/4', 'dev', MEMBER_IF]);
    }

    return {
      id,
      subnet,
      prefixLength: 24,
      members,
      ns(role) {
        const m = members.find((x) => x.role === role);
        if (m === undefined)
          throw new Error(`no namespace with role '${role}' (have ${opts.members.join(', ')})`);
        return m;
      },
      destroy,
    };
  } catch (err) {
    await destroy();
    throw err;
  }
}

function makeNamespace(
  role: string,
  name: string,
  address: string,
  processes: PeerProcess[],
): Namespace {
  const wrap = (command: string, args: string[]): { command: string; args: string[] } => ({
    command: IP,
    args: ['netns', 'exec', name, command, ...args],
  });
  return {
    role,
    name,
    ifname: MEMBER_IF,
    address,
    cidr: `${address}/24`,
    wrap,
    async exec(command, args, opts = {}) {
      const w = wrap(command, args);
      const r = await run(w.command, w.args, { encoding: 'utf8', ...opts });
      return { stdout: String(r.stdout), stderr: String(r.stderr) };
    },
    spawn(o) {
      const w = wrap(o.command, o.args);
      const p = new PeerProcess({ ...o, command: w.command, args: w.args });
      processes.push(p);
      return p;
    },
  };
}

async function ip(args: string[]): Promise<void> {
  try {
    await run(IP, args, { encoding: 'utf8' });
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr ?? '';
    throw new Error(`ip ${args.join(' ')} failed: ${stderr.trim() || String(err)}`, { cause: err });
  }
}
