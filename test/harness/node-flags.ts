// The flags node runs the agent with in the image; test/unit/node-flags.test.ts
// holds the Dockerfile and the uplink patch to them, and the benchmarks use them.

/** By default (the Dockerfile's ENTRYPOINT and NODE_OPTIONS): V8's lite mode, for memory. */
export const AGENT_NODE_ARGS = ['--max-semi-space-size=2', '--lite-mode'];

/** With manifests/samples/uplink-patch.yaml: the JIT on again, for the data path's throughput. */
export const UPLINK_NODE_ARGS = ['--max-semi-space-size=8'];

/**
 * The controller (manifests/controller/deployment.yaml, the chart): the JIT on
 * for its folds, and V8's heap sized for memory rather than speed.
 */
export const CONTROLLER_NODE_ARGS = ['--max-semi-space-size=2', '--optimize-for-size'];
