// A standalone agent whose embedded node broker knows some users, and nothing
// else (no Discoveries): for tests that attack the broker itself. Grants name
// a whole namespace, so clients may use any device topic in it without Devices.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { stringify } from 'yaml';
import { startAgent, type AgentProcess } from './agent.ts';
import { writeStandaloneConfig } from './standalone-config.ts';
import { scratchDir } from './workdir.ts';

export interface BrokerTestUser {
  name: string;
  password: string;
  /** The namespace whose every device the user may read (and publish to, with publish). */
  namespace: string;
  publish?: boolean;
}

export interface BrokerAgent {
  /** Starts the agent (again, for a restart: same files, same state directory). */
  start(): Promise<AgentProcess>;
}

/** Writes the agent's configuration; `extraArgs` go to the agent (e.g. --broker-max-connections). */
export function brokerAgent(
  node: string,
  users: BrokerTestUser[],
  opts: { extraArgs?: string[]; maxPacketBytes?: number } = {},
): BrokerAgent {
  const dir = scratchDir(`broker-agent-${node}`);
  const config = path.join(dir, 'edgebridge.yaml');
  writeStandaloneConfig(config, {
    secrets: [
      {
        namespace: 'default',
        name: 'broker-users',
        stringData: Object.fromEntries(users.map((u) => [u.name, u.password])),
      },
    ],
  });
  const brokerConfig = path.join(dir, 'broker.yaml');
  writeFileSync(
    brokerConfig,
    stringify({
      ...(opts.maxPacketBytes !== undefined ? { maxPacketBytes: opts.maxPacketBytes } : {}),
      users: users.map((u) => ({
        name: u.name,
        passwordFrom: { secretKeyRef: { namespace: 'default', name: 'broker-users', key: u.name } },
        devices: [{ namespace: u.namespace, publish: u.publish ?? false }],
      })),
    }),
  );
  return {
    start: async () => {
      const agent = await startAgent({
        node,
        registryArgs: ['--standalone', '--config', config, '--state-dir', path.join(dir, 'state')],
        extraArgs: ['--broker-config', brokerConfig, ...(opts.extraArgs ?? [])],
      });
      if (agent.brokerUrl === undefined) {
        await agent.stop();
        throw new Error('the agent reported no embedded broker');
      }
      return agent;
    },
  };
}
