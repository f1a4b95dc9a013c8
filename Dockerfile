# Inference Gateway container image.
#
#   docker build -t inference-gateway:0.1.0 .
#   docker run --rm -p 8000:8000 -p 8100:8100 -v "$PWD/my-config:/etc/inference-gateway:ro" inference-gateway:0.1.0
#
# Mount the config *folder* (not a single file): --watch watches the folder, and a file bind mount
# keeps showing the old file once an editor replaces it. Kubernetes mounts a ConfigMap the same way
# (deploy/kubernetes). Not built in CI (no container engine there); the tests check this file statically.
ARG NODE_IMAGE=node:20-bookworm-slim

# --- build: all dependencies, compile TypeScript to dist/ ---
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# --- runtime: production dependencies, dist/, schema/, examples/ only ---
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY schema ./schema
COPY examples ./examples
# Everything above is owned by root and only readable by the process: nothing is written at run
# time except stdout (access log) and stderr (gateway log), so a read-only root filesystem works.
# (With a tls_listen, give proxy.tls cert and key files: the self-signed fallback needs the
# openssl command and a writable /tmp, which this image does not offer.)
# Numeric user ("node" in the official image) so Kubernetes' runAsNonRoot can verify it.
USER 1000:1000
# proxy HTTP, proxy HTTPS (proxy.tls_listen), admin, admin HTTPS (admin.tls_listen), status, status HTTPS (status.tls_listen)
EXPOSE 8000 8443 8001 8442 8100 8101
# Node runs as PID 1 on purpose, without an init: the gateway installs its own SIGTERM/SIGINT
# handlers (drain: readiness 503 at once, in-flight requests get shutdown_grace_s) and SIGHUP
# (reload), and it starts no child processes that would need reaping.
ENTRYPOINT ["node", "dist/main.js"]
CMD ["start", "--config", "/etc/inference-gateway/gateway.yaml", "--watch"]
