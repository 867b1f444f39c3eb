# Multi-stage build of the DelTran engine. The runtime image carries the PostgreSQL
# server binaries so the engine can run its embedded cluster; pass DATABASE_URL to
# use an external Postgres instead. Mirrors the README: `deltran serve`.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY sql ./sql
# Cargo checks every target of the manifest, so the benchmark sources come along.
COPY loadtest ./loadtest
COPY benches ./benches
RUN cargo build --release --locked --bin deltran

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-15 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --create-home --home-dir /var/lib/deltran deltran
COPY --from=build /src/target/release/deltran /usr/local/bin/deltran
USER deltran
WORKDIR /var/lib/deltran
ENV DELTRAN_LISTEN=0.0.0.0:8080 \
    DELTRAN_DATA_DIR=/var/lib/deltran/data \
    DELTRAN_LOG_FORMAT=json
EXPOSE 8080
VOLUME ["/var/lib/deltran"]
HEALTHCHECK CMD ["/bin/sh", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080"]
ENTRYPOINT ["deltran"]
CMD ["serve"]
