# syntax=docker/dockerfile:1
# devenv-scheduler: one image for both Deployments in k8s/ (SERVICE_ROLE=api or worker).
#   docker build -t registry.example.com/devenv-scheduler:0.1.0 .
# Stage 1 compiles TypeScript (`npm run build`, tsconfig.build.json: src/ -> lib/);
# stage 2 holds production dependencies and lib/ only: no compiler, no ts-node, no tests.
# Runs as uid 10001 and works with a read-only root file system (k8s/ mounts /tmp).
ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# `npm ci`, as .ci/run does: what package-lock.json pins, or a failure if it disagrees
# with package.json.
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM ${NODE_IMAGE} AS runtime
# No passwd entry for uid 10001 and a read-only root file system: /tmp (an emptyDir in
# k8s/) is the one writable place.
ENV NODE_ENV=production HOME=/tmp
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund \
    && npm cache clean --force \
    && rm -rf /root/.npm
# lib/ holds the workflows already bundled (lib/workflow-bundle.js, written by npm run
# build): the worker loads it instead of running webpack at start-up.
COPY --from=build /app/lib ./lib
# `kubectl exec ... -- devenv status dev1`: the CLI runs lib/cli.js here.
COPY bin ./bin
RUN ln -s /app/bin/devenv.js /usr/local/bin/devenv
# jemalloc as malloc: glibc's per-thread arenas fragment under the worker's native
# threads (Temporal's Rust core). A worker holding 1,000 environments measured 375 MB with
# jemalloc and 547 MB without (bench/scale.ts, which preloads the same library).
RUN apt-get update \
    && apt-get install -y --no-install-recommends libjemalloc2 \
    && rm -rf /var/lib/apt/lists/* \
    && ln -s "$(ls /usr/lib/*-linux-gnu/libjemalloc.so.2)" /usr/local/lib/libjemalloc.so.2
ENV LD_PRELOAD=/usr/local/lib/libjemalloc.so.2
USER 10001:10001
EXPOSE 3000 8443
CMD ["node", "--enable-source-maps", "lib/main.js"]
