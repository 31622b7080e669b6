# syntax=docker/dockerfile:1

# One Dockerfile builds every service. Choose the service with
# `--build-arg SERVICE=<directory under services/>` and the flavour with `--target`:
#
#   dev   Go toolchain, downloaded modules and a warm build cache. Tilt syncs edited
#         sources into /src and rebuilds inside the running container: confluent-kafka-go
#         is cgo, so a binary built on a macOS laptop could not run in a Linux container.
#   prod  one static binary on a distroless base, running as a non-root user.
#
# The build context is the repository root, trimmed by .dockerignore. Every module is
# built on its own (GOWORK=off): its go.mod replaces the libs it uses with ../../libs/<x>.
# Nothing here names a CPU architecture, so the same file builds natively on amd64 and
# arm64 (Apple Silicon).

ARG GO_VERSION=1.26
ARG RUNTIME_IMAGE=gcr.io/distroless/static-debian13:nonroot

# ---------------------------------------------------------------------------------------
# toolchain: Go plus a C toolchain for cgo (confluent-kafka-go links librdkafka, which it
# ships prebuilt for musl; the `musl` build tag selects that copy).
FROM golang:${GO_VERSION}-alpine AS toolchain
RUN apk add --no-cache gcc musl-dev
# Everything a dev container writes to (sources, caches, the binary) belongs to the
# unprivileged user the pods run as, so live updates work without root.
ENV GOTOOLCHAIN=local \
    GOWORK=off \
    GOFLAGS=-buildvcs=false \
    CGO_ENABLED=1 \
    HOME=/home/app \
    GOPATH=/home/app/go \
    GOCACHE=/home/app/.cache/go-build
RUN mkdir -p /src /app /home/app/go /home/app/.cache/go-build \
 && chown -R 65532:65532 /src /app /home/app
USER 65532:65532
WORKDIR /src

# ---------------------------------------------------------------------------------------
# modules: the dependency layer. Only go.mod/go.sum files are copied before
# `go mod download`, so editing code never invalidates it.
FROM toolchain AS modules
ARG SERVICE
RUN test -n "${SERVICE}" \
 || { echo 'missing --build-arg SERVICE=<directory under services/>' >&2; exit 1; }
COPY --chown=65532:65532 libs/brokertest/go.mod libs/brokertest/go.sum* libs/brokertest/
COPY --chown=65532:65532 libs/genproto/go.mod libs/genproto/go.sum* libs/genproto/
COPY --chown=65532:65532 libs/kafka/go.mod libs/kafka/go.sum* libs/kafka/
COPY --chown=65532:65532 libs/platform/go.mod libs/platform/go.sum* libs/platform/
COPY --chown=65532:65532 libs/rabbitmq/go.mod libs/rabbitmq/go.sum* libs/rabbitmq/
COPY --chown=65532:65532 services/${SERVICE}/go.mod services/${SERVICE}/go.sum* services/${SERVICE}/
WORKDIR /src/services/${SERVICE}
RUN go mod download

# ---------------------------------------------------------------------------------------
# dev: what Tilt runs. The first build happens here so the image ships a warm build
# cache; a live update then recompiles only the packages that changed.
FROM modules AS dev
ARG SERVICE
COPY --chown=65532:65532 libs/ /src/libs/
COPY --chown=65532:65532 services/${SERVICE}/ /src/services/${SERVICE}/
# /app/.restart-proc is the file Tilt's restart_process extension writes to after a
# rebuild; creating it here makes it writable by the unprivileged user.
RUN go build -tags musl -o /app/server . \
 && touch /app/.restart-proc
USER 65532:65532
ENTRYPOINT ["/app/server"]

# ---------------------------------------------------------------------------------------
# build: the release binary. Services that link Kafka (confluent-kafka-go, cgo) are linked
# statically against musl; the others are pure Go with cgo off.
FROM modules AS build
ARG SERVICE
COPY --chown=65532:65532 libs/ /src/libs/
COPY --chown=65532:65532 services/${SERVICE}/ /src/services/${SERVICE}/
RUN --mount=type=cache,target=/home/app/.cache/go-build,uid=65532,gid=65532 \
    if go list -deps . | grep -q '^github.com/confluentinc/confluent-kafka-go/'; then \
      CGO_ENABLED=1 go build -tags musl -trimpath \
        -ldflags '-s -w -linkmode external -extldflags "-static"' -o /app/server . ; \
    else \
      CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o /app/server . ; \
    fi \
 && mkdir /app/state

# ---------------------------------------------------------------------------------------
# prod: no shell, no package manager, no root.
FROM ${RUNTIME_IMAGE} AS prod
COPY --from=build /app/server /server
# The one directory the service may write to. Docker fills an empty named volume from the
# image's directory at the mount point, owner included, so a volume mounted here is writable
# without root: Compose keeps the notifier's journal in one (compose.yaml).
COPY --from=build --chown=65532:65532 /app/state/ /var/lib/backend-prep/
USER 65532:65532
ENTRYPOINT ["/server"]
