# One image for orderd, mailer and orderctl: static binaries on a distroless base.
# Build: docker build -t spaceorders .   (docker-compose.yml builds it for you)
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# No cgo: the binaries are static and run on an image with no libc.
RUN CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/ ./cmd/orderd ./cmd/mailer ./cmd/orderctl
# The data folder, made here so it can be handed to the unprivileged user: a named volume
# mounted on it takes its owner from the image.
RUN mkdir -p /data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ /usr/local/bin/
COPY --from=build --chown=nonroot:nonroot /data /var/lib/spaceorders
USER nonroot:nonroot
WORKDIR /var/lib/spaceorders
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/orderd"]
