# One static binary in a minimal image. In a container Cairn uses the
# PostgreSQL and NATS you give it (CAIRN_DATABASE_URL, CAIRN_NATS_URL);
# see docker-compose.yml.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/cairn .

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/cairn /cairn
ENV CAIRN_HTTP_ADDR=:8080 \
    CAIRN_LOG_FORMAT=json \
    CAIRN_DATA_DIR=/tmp/cairn
EXPOSE 8080
USER nonroot:nonroot
ENTRYPOINT ["/cairn"]
CMD ["serve"]
