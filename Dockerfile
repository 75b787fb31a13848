# syntax=docker/dockerfile:1
#
# The Databus container image: a static binary on an empty base, run as
# nonroot (65532:65532). From the repository's root:
#
#   docker build -t ghcr.io/databus-gateway/databus:dev .
#
# deploy/cmd/databus-image builds the same image without Docker and without
# a base image. The tests of deploy/image parse this file and check that the
# two agree (user, entrypoint, command, ports, volumes, stop signal,
# environment, labels, go build flags, /etc/passwd and /etc/group): change
# both together.

ARG GO_VERSION=1.26
# Release metadata: the labels and `databus version`. SOURCE_DATE_EPOCH
# (seconds) also makes BuildKit stamp the image with that time.
ARG VERSION=dev
ARG COMMIT=unknown
ARG CREATED=1970-01-01T00:00:00Z

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
# Set by BuildKit from --platform (this machine's without it). No default
# here: a stage's default would win over BuildKit's value.
ARG TARGETOS
ARG TARGETARCH
ARG VERSION
ARG COMMIT
ARG CREATED
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# Static (CGO_ENABLED=0: the image has no libc), reproducible (-trimpath,
# -buildvcs=false), with Go's time zone database inside (-tags timetzdata).
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH GOFLAGS= \
    go build -trimpath -buildvcs=false -tags timetzdata \
      -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT} -X main.date=${CREATED}" \
      -o /out/databus ./cmd/databus
# The root filesystem: the users, the CA certificates of the golang image
# (Debian's ca-certificates), the folders the gateway uses. COPY --from keeps
# the owners and modes set here.
COPY deploy/image/rootfs/etc/passwd deploy/image/rootfs/etc/group /rootfs/etc/
RUN mkdir -p /rootfs/etc/ssl/certs /rootfs/config /rootfs/data /rootfs/home/nonroot /rootfs/root /rootfs/tmp /rootfs/usr/local/bin \
 && cp /etc/ssl/certs/ca-certificates.crt /rootfs/etc/ssl/certs/ca-certificates.crt \
 && chmod 0644 /rootfs/etc/passwd /rootfs/etc/group /rootfs/etc/ssl/certs/ca-certificates.crt \
 && chown 65532:65532 /rootfs/config /rootfs/data /rootfs/home/nonroot \
 && chmod 0755 /rootfs/config /rootfs/data \
 && chmod 0700 /rootfs/home/nonroot /rootfs/root \
 && chmod 1777 /rootfs/tmp

FROM scratch
ARG VERSION
ARG COMMIT
ARG CREATED
COPY --from=build /rootfs/ /
COPY --from=build /out/databus /usr/local/bin/databus
ENV PATH=/usr/local/bin
USER 65532:65532
WORKDIR /config
# /config: the config repository (mount it, read-only is fine).
# /data: the bbolt file (registry, access log), writable by 65532.
VOLUME ["/config", "/data"]
# 8080: the portal. 8082: /healthz, /readyz, /metrics (kubelet, Prometheus).
# The admin listener stays on 127.0.0.1:8081, inside the container.
EXPOSE 8080/tcp 8082/tcp
STOPSIGNAL SIGTERM
LABEL org.opencontainers.image.title="databus" \
      org.opencontainers.image.description="Databus, a declarative git-driven API gateway" \
      org.opencontainers.image.source="https://github.com/databus-gateway/databus" \
      org.opencontainers.image.revision="${COMMIT}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.created="${CREATED}"
ENTRYPOINT ["/usr/local/bin/databus"]
CMD ["serve", "--dir", "/config", "--listen", ":8080", "--health-listen", ":8082", "--storage", "/data/databus.db"]
