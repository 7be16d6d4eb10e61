# edgebridge agent and controller image. No Docker engine runs on the project's
# machines: scripts/lint-dockerfile.sh lints this file, and
# scripts/build-rootfs.sh builds the same filesystem without one.
FROM node:24.11-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY discovery-handlers ./discovery-handlers
RUN npm run build

# Production dependencies only, installed apart from the build's dev tools.
FROM node:24.11-bookworm-slim AS deps
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

FROM node:24.11-bookworm-slim
ENV NODE_ENV=production
# The agent allocates little but steadily; V8's default young generation grows
# to 32 MB of mostly empty pages. 2 MB semi-spaces keep it at 4 MB
# (bench/agents-converge.ts measures the agent with the same flags).
ENV NODE_OPTIONS=--max-semi-space-size=2
WORKDIR /opt/edgebridge
COPY --from=deps /src/package.json ./
COPY --from=deps /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
# The agent keeps its spool and embedded state here; the DaemonSet mounts a hostPath.
VOLUME ["/var/lib/edgebridge"]
# Non-root by default (the controller; the agent standalone). In a cluster the
# DaemonSet runs the agent as uid 0 with every capability dropped, because the
# hostPath state directory and the kubelet's sockets (device plugins, plugin
# registration, pod-resources) belong to root on the node. Multicast discovery
# on the host network and reading USB devices from sysfs and /dev need neither
# root nor a capability.
USER 1000:1000
# The node broker (MQTT) and /healthz, /readyz, /metrics.
EXPOSE 1883 8181
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:8181/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# V8's lite mode (no JIT) takes the agent with 1,000 devices from 94 to 72 MB
# and does not slow discovery, but halves the data path's throughput: the
# uplink patch (manifests/samples/uplink-patch.yaml) runs node without it.
ENTRYPOINT ["node", "--lite-mode", "/opt/edgebridge/dist/src/cli/main.js"]
CMD ["agent"]
