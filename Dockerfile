# sitewatch: one static-ish binary on a small Debian image.
#   docker build -t sitewatch .
#   docker run --rm sitewatch check https://aiven.io/

FROM rust:1.95-bookworm AS build
WORKDIR /src
# librdkafka is built from source by rdkafka-sys (make, a C compiler, OpenSSL
# and zlib headers); the rust image has the tools, these are the headers.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libssl-dev zlib1g-dev \
 && rm -rf /var/lib/apt/lists/*

# Dependencies first, in their own layer: rebuilt only when Cargo.toml or
# Cargo.lock change, not on every source edit.
COPY Cargo.toml Cargo.lock ./
RUN mkdir src \
 && echo 'fn main() {}' > src/main.rs \
 && touch src/lib.rs \
 && cargo build --release --locked --bin sitewatch \
 && rm -rf src

COPY askama.toml ./
COPY src src
COPY migrations migrations
# touch: make cargo see the real sources as newer than the stub's build.
RUN touch src/main.rs src/lib.rs \
 && cargo build --release --locked --bin sitewatch \
 && strip target/release/sitewatch

FROM debian:bookworm-slim
# CA certificates for https checks and TLS to Kafka and PostgreSQL; libssl3
# and zlib for librdkafka and native-tls; tzdata for the IANA time zones of
# maintenance windows, announcements and SLA periods.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libssl3 tzdata zlib1g \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --no-create-home --home-dir /nonexistent sitewatch
COPY --from=build /src/target/release/sitewatch /usr/local/bin/sitewatch
# Secrets are mounted read-only (for example under /etc/sitewatch/secrets)
# and read through the SITEWATCH_*_FILE variables.
USER 10001:10001
WORKDIR /etc/sitewatch
ENTRYPOINT ["/usr/local/bin/sitewatch"]
CMD ["--help"]
