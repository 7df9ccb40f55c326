# syntax=docker/dockerfile:1
# Build: docker build -t toolgate .
# Run:   docker run --env-file my.env -p 8080:8080 toolgate

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/toolgate ./cmd/toolgate

# distroless/static has CA certificates and a nonroot user, and nothing else.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/toolgate /toolgate
USER nonroot:nonroot
EXPOSE 8080
ENTRYPOINT ["/toolgate"]
