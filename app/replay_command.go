package app

import (
	"context"
	"io"
	"net"

	"github.com/cairn-dev/cairn/config"
	"github.com/cairn-dev/cairn/outbox/replay"
)

// ReplayCommand is `cairn replay`: a replay asked of the Cairn running on
// this machine (CAIRN_HTTP_ADDR, or --url) through its admin API
// (CAIRN_ADMIN_TOKEN), with its progress shown (outbox/replay.Command).
func ReplayCommand(ctx context.Context, cfg config.Config, args []string, stdout, stderr io.Writer) int {
	host, port, _ := net.SplitHostPort(cfg.HTTPAddr) // Validate checked it
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return replay.Command(ctx, "http://"+net.JoinHostPort(host, port), cfg.AdminToken, args, stdout, stderr)
}
