# syntax=docker/dockerfile:1
# The seed app (app.js + ecosystem.config.js) under rpm2 in a container.
#   docker build -t rpm2-app .
#   docker run --rm -p 8000:8000 -p 9209:9209 rpm2-app
# Stage 1 compiles the rpm2 executables with cargo; stage 2 is a slim Node
# image with only those executables, the app and its production
# dependencies. rpm2-runtime runs the daemon in the foreground as PID 1:
# apps' logs go to the container's stdout/stderr, SIGTERM drains the workers
# and stops them within kill_timeout, and the exit code is the apps'.

FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY crates ./crates
RUN cargo build --release --locked -p rpm2-cli -p rpm2-daemon \
 && install -D -m 755 target/release/rpm2 /out/rpm2 \
 && install -m 755 target/release/rpm2-daemon /out/rpm2-daemon \
 && if [ -f target/release/rpm2-runtime ]; then install -m 755 target/release/rpm2-runtime /out/rpm2-runtime; fi

# Same Debian release as the build stage, so the same glibc.
FROM node:20-bookworm-slim
ENV NODE_ENV=production
COPY --from=build /out/ /usr/local/bin/
WORKDIR /app
# Production dependencies only; no install scripts (they would build rpm2,
# whose executables are already in /usr/local/bin).
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY app.js ecosystem.config.js ./
USER node
# The app's port, and rpm2's metrics and health endpoints (/metrics,
# /healthz, /readyz) for Prometheus and the orchestrator's probes.
ENV RPM2_METRICS_ADDR=0.0.0.0:9209
EXPOSE 8000 9209
CMD ["rpm2-runtime", "start", "ecosystem.config.js"]
