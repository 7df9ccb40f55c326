# syntax=docker/dockerfile:1
# Build: docker build -t toolgate .
# Run:   docker run --env-file my.env -p 8080:8080 toolgate
#        (as the authorization server: add -v toolgate-data:/data, which keeps
#        its signing key and refresh tokens across container restarts)

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/toolgate ./cmd/toolgate
# The embedded authorization server's file store (STORE=file) lives here;
# created in the image so a named volume mounted on it is the user's.
RUN mkdir -p /out/data

# distroless/static has CA certificates and a nonroot user, and nothing else.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/toolgate /toolgate
COPY --from=build --chown=65532:65532 /out/data /data
ENV DATA_DIR=/data
VOLUME /data
USER nonroot:nonroot
EXPOSE 8080
ENTRYPOINT ["/toolgate"]
