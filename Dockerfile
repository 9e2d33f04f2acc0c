# checkpoint_exporter container image: the static release binary on an empty
# base, so building it pulls nothing from a registry. Build the binaries
# first, then the image, with any of:
#   make release && docker build -t checkpoint-exporter .
#   make release && podman build -t checkpoint-exporter .
#   make release && buildah bud -t checkpoint-exporter .
# For arm64 add --build-arg ARCH=arm64 (and --platform linux/arm64 or
# --arch arm64 so the image is labelled arm64). The architecture is an
# explicit argument because not every builder sets TARGETARCH (Debian 12's
# buildah 1.28 does not).
FROM scratch

ARG OS=linux
ARG ARCH=amd64

LABEL org.opencontainers.image.title="checkpoint_exporter" \
      org.opencontainers.image.description="Prometheus exporter for machine-learning checkpoint directories, with alert-driven pruning" \
      org.opencontainers.image.licenses="Apache-2.0"

COPY LICENSE /LICENSE
COPY .build/${OS}-${ARCH}/checkpoint_exporter /bin/checkpoint_exporter

# Non-root by default (nobody). The pruner can only delete what this UID may
# delete: run the container as the UID:GID that owns the checkpoints
# (docker run --user 1000:1000, Kubernetes securityContext.runAsUser).
USER 65534:65534
WORKDIR /
EXPOSE 9866
ENTRYPOINT ["/bin/checkpoint_exporter"]
# Quick start: watch the directory mounted at /checkpoints, dry run. Pass
# --config.file=... (and a mounted config) for anything else.
CMD ["--checkpoint.dir=/checkpoints"]
