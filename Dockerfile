# flowwatch container image: a release build on the Rust image, run on Debian slim as a
# non-root user. librdkafka is built from source (rdkafka's cmake-build), hence cmake and a
# C/C++ toolchain in the builder; with TLS and SASL SCRAM against the distribution's OpenSSL
# (libssl-dev to build, libssl3 at run time, updated with the base image).
FROM rust:1.95-bookworm AS builder
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake make gcc g++ perl pkg-config libssl-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin flowwatch \
 && cp target/release/flowwatch /usr/local/bin/flowwatch

FROM debian:bookworm-slim
# curl only for the HEALTHCHECK (slim has no HTTP client; ~0.5 MB with its libraries).
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl libssl3 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/flowwatch --create-home flowwatch
COPY --from=builder /usr/local/bin/flowwatch /usr/local/bin/flowwatch
COPY flows /etc/flowwatch/flows
COPY config/flowwatch.toml /etc/flowwatch/flowwatch.toml
# Paths and listen address for a container; everything else from the shipped config.
ENV FLOWWATCH__FLOWS__DIR=/etc/flowwatch/flows \
    FLOWWATCH__STATE__DIR=/var/lib/flowwatch/state \
    FLOWWATCH__HTTP__LISTEN=0.0.0.0:9180
USER flowwatch
WORKDIR /var/lib/flowwatch
VOLUME /var/lib/flowwatch
EXPOSE 9180
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD curl -fsS http://127.0.0.1:9180/livez || exit 1
ENTRYPOINT ["flowwatch"]
CMD ["run", "--config", "/etc/flowwatch/flowwatch.toml"]
